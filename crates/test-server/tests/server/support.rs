//! A tiny raw SMTP client for the tests: lines in, replies out, over plain TCP or rustls.
//! It knows nothing of the clients' protocol code on purpose.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls::crypto::ring;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use test_server::{Config, Server};

/// A server that removes its store directory when dropped.
pub struct Harness(Option<Server>);

impl Deref for Harness {
    type Target = Server;
    fn deref(&self) -> &Server {
        self.0.as_ref().expect("server present until drop")
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(server) = self.0.take() {
            let dir = server.store_dir().to_owned();
            drop(server);
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

pub fn start(config: Config) -> Harness {
    Harness(Some(Server::start(config).expect("server starts")))
}

pub fn default_server() -> Harness {
    start(Config::default())
}

/// A server with one user, alice / s3cret.
pub fn auth_config() -> Config {
    Config {
        users: vec![("alice".into(), "s3cret".into())],
        ..Config::default()
    }
}

pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

pub struct Client {
    stream: Stream,
    buffer: Vec<u8>,
}

pub fn tls_config(ca_pem: &str) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(cert.expect("PEM certificate"))
            .expect("root added");
    }
    Arc::new(
        ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn tcp(addr: SocketAddr) -> TcpStream {
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    tcp
}

fn handshake(tcp: TcpStream, ca_pem: &str, name: &str) -> StreamOwned<ClientConnection, TcpStream> {
    let name = ServerName::try_from(name.to_owned()).expect("server name");
    let conn = ClientConnection::new(tls_config(ca_pem), name).expect("client connection");
    let mut stream = StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .expect("TLS handshake");
    }
    stream
}

impl Client {
    /// Connects without reading the greeting.
    pub fn connect_raw(addr: SocketAddr) -> Client {
        Client {
            stream: Stream::Plain(tcp(addr)),
            buffer: Vec::new(),
        }
    }

    /// Connects and checks the 220 greeting.
    pub fn connect(addr: SocketAddr) -> Client {
        let mut client = Self::connect_raw(addr);
        let greeting = client.reply();
        assert!(greeting.starts_with("220 "), "greeting: {greeting}");
        client
    }

    /// Connects to an implicit TLS listener and checks the greeting.
    pub fn connect_tls(addr: SocketAddr, ca_pem: &str, name: &str) -> Client {
        let mut client = Client {
            stream: Stream::Tls(Box::new(handshake(tcp(addr), ca_pem, name))),
            buffer: Vec::new(),
        };
        let greeting = client.reply();
        assert!(greeting.starts_with("220 "), "greeting: {greeting}");
        client
    }

    pub fn send(&mut self, bytes: &[u8]) {
        match &mut self.stream {
            Stream::Plain(tcp) => tcp.write_all(bytes).expect("write"),
            Stream::Tls(tls) => {
                tls.write_all(bytes).expect("write");
                tls.flush().expect("flush");
            }
        }
    }

    /// Reads more bytes; false at EOF or on a reset.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        let n = match &mut self.stream {
            Stream::Plain(tcp) => tcp.read(&mut chunk),
            Stream::Tls(tls) => tls.read(&mut chunk),
        };
        match n {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buffer.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    fn line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=i).collect();
                let text = String::from_utf8(line).expect("UTF-8 reply");
                let text = text.strip_suffix("\r\n").expect("reply ends in CRLF");
                return Some(text.to_owned());
            }
            if !self.fill() {
                return None;
            }
        }
    }

    /// Reads one whole reply; lines joined with `\n`, without CRLF.
    pub fn reply(&mut self) -> String {
        self.try_reply().expect("a reply before EOF")
    }

    pub fn try_reply(&mut self) -> Option<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line()?;
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return Some(lines.join("\n"));
            }
        }
    }

    /// Sends one command line (CRLF added) and returns the reply.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// Sends a command and asserts the reply starts with `prefix`.
    pub fn expect(&mut self, line: &str, prefix: &str) -> String {
        let reply = self.cmd(line);
        assert!(
            reply.starts_with(prefix),
            "{line:?}: expected {prefix:?}, got {reply:?}"
        );
        reply
    }

    /// Bytes received but not yet read as a reply.
    pub fn buffered(&self) -> &[u8] {
        &self.buffer
    }

    /// STARTTLS, check the 220, then handshake (trusting `ca_pem`).
    pub fn starttls(mut self, ca_pem: &str) -> Client {
        self.expect("STARTTLS", "220 2.0.0");
        assert!(self.buffer.is_empty(), "bytes after the STARTTLS 220");
        self.handshake_now(ca_pem)
    }

    /// The TLS handshake, for a STARTTLS already answered with 220.
    pub fn handshake_now(self, ca_pem: &str) -> Client {
        let Stream::Plain(tcp) = self.stream else {
            panic!("already TLS");
        };
        Client {
            stream: Stream::Tls(Box::new(handshake(tcp, ca_pem, "localhost"))),
            buffer: Vec::new(),
        }
    }

    /// Reads until the server closes; true if it closed (EOF or reset) in time.
    pub fn closed(&mut self) -> bool {
        while self.fill() {}
        true
    }

    /// Sends the message (already dot-stuffed, ending with CRLF.CRLF) and returns the reply.
    pub fn data(&mut self, wire: &[u8]) -> String {
        self.expect("DATA", "354 ");
        self.send(wire);
        self.reply()
    }

    /// EHLO, MAIL, RCPT, DATA with `wire`; returns the final reply.
    pub fn send_message(&mut self, from: &str, to: &[&str], wire: &[u8]) -> String {
        self.expect(&format!("MAIL FROM:<{from}>"), "250 ");
        for rcpt in to {
            self.expect(&format!("RCPT TO:<{rcpt}>"), "250 ");
        }
        self.data(wire)
    }

    pub fn shutdown(&mut self) {
        let tcp = match &self.stream {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => &tls.sock,
        };
        let _ = tcp.shutdown(Shutdown::Both);
    }
}

/// Files in the store directory that are not final names (temp files and the like).
pub fn non_final_files(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("store dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.') || name.ends_with(".tmp"))
        .collect()
}

/// The files with a given extension in the store directory, sorted.
pub fn files_with(dir: &std::path::Path, ext: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("store dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.') && name.ends_with(&format!(".{ext}")))
        .collect();
    names.sort();
    names
}
