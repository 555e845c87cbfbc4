//! The socket: a `TcpStream`, maybe wrapped in rustls, with a read buffer for replies, a
//! timeout on every read and write, and a transcript of every byte each way.
//!
//! The dialogue uses it blocking. A load run's event loop (`crate::event_loop`) switches it
//! to non-blocking and uses [`Connection::queue`], [`Connection::write_pending`],
//! [`Connection::read_available`] and [`Connection::take_reply`] instead.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use transcript::Transcript;

use cli::Failure;

use crate::reply::{self, Reply};
use crate::session::Wait;

/// Plaintext or TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => &tls.sock,
        }
    }
}

/// What rustls negotiated, for `--serverinfo`.
pub(crate) struct TlsSession {
    /// `TLS 1.2` or `TLS 1.3`.
    pub(crate) version: Option<String>,
    /// The cipher suite's IANA-style name as rustls spells it.
    pub(crate) cipher: Option<String>,
    /// The certificate chain as the server sent it (DER), end-entity first.
    pub(crate) chain: Vec<Vec<u8>>,
}

/// One SMTP connection.
pub(crate) struct Connection {
    stream: Stream,
    /// Bytes read from the server but not yet taken as a reply.
    input: Vec<u8>,
    /// Everything sent and received, in order.
    pub(crate) transcript: Transcript,
    /// Whether the server has sent any byte yet (a port that expects a TLS ClientHello
    /// sends nothing).
    received_any: bool,
    /// Whether traffic is recorded (a load run records only its first message).
    recording: bool,
    /// The read timeout currently set on the socket.
    read_timeout: Option<Duration>,
    /// Bytes queued for a non-blocking write, each with how much of it is already written.
    /// They are shared: a load run renders its message once for every connection.
    pending: VecDeque<(Arc<[u8]>, usize)>,
}

impl Connection {
    /// RFC 5321 §3.1, §4.5.3.2.1: tries each resolved address in turn, with a timeout.
    pub(crate) fn connect(
        host: &str,
        port: u16,
        peer: &str,
        timeout: Duration,
        transcript: &mut Transcript,
    ) -> Result<Connection, Failure> {
        let addresses: Vec<_> = (host, port)
            .to_socket_addrs()
            .map_err(|source| Failure::Resolve {
                host: host.to_owned(),
                reason: source.to_string(),
            })?
            .collect();
        let mut last_error = None;
        for address in &addresses {
            match TcpStream::connect_timeout(address, timeout) {
                Ok(tcp) => {
                    let setup = tcp
                        .set_nodelay(true)
                        .and_then(|()| tcp.set_read_timeout(Some(timeout)))
                        .and_then(|()| tcp.set_write_timeout(Some(timeout)));
                    if let Err(source) = setup {
                        last_error = Some(source);
                        continue;
                    }
                    transcript.connected(peer);
                    return Ok(Connection {
                        stream: Stream::Plain(tcp),
                        input: Vec::new(),
                        transcript: std::mem::take(transcript),
                        received_any: false,
                        recording: true,
                        read_timeout: Some(timeout),
                        pending: VecDeque::new(),
                    });
                }
                Err(source) => last_error = Some(source),
            }
        }
        let source = last_error.unwrap_or_else(|| io::Error::other("the name has no address"));
        Err(if addresses.is_empty() {
            Failure::Resolve {
                host: host.to_owned(),
                reason: source.to_string(),
            }
        } else {
            Failure::Connect {
                peer: peer.to_owned(),
                reason: source.to_string(),
            }
        })
    }

    /// Writes one flight (one or more commands) in one write, and records it.
    pub(crate) fn send(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        self.write_all(bytes)
            .and_then(|()| self.flush())
            .map_err(|source| io_error(source, "sending a command"))
    }

    /// RFC 3030 §2: `lead` (pipelined commands and the BDAT line), one chunk's octets and
    /// `trailer` (pipelined commands after it), in one write. The transcript records the
    /// command lines, and the octets as a count: they are not lines, and may be binary.
    pub(crate) fn send_chunk(
        &mut self,
        lead: &[u8],
        octets: &[u8],
        trailer: &[u8],
        scratch: &mut Vec<u8>,
    ) -> io::Result<()> {
        scratch.clear();
        scratch.extend_from_slice(lead);
        scratch.extend_from_slice(octets);
        scratch.extend_from_slice(trailer);
        match &mut self.stream {
            Stream::Plain(tcp) => tcp.write_all(scratch)?,
            Stream::Tls(tls) => tls.write_all(scratch)?,
        }
        match &mut self.stream {
            Stream::Plain(tcp) => tcp.flush()?,
            Stream::Tls(tls) => tls.flush()?,
        }
        self.record(lead);
        if self.recording {
            self.transcript.chunk_data(octets.len() as u64);
        }
        self.record(trailer);
        Ok(())
    }

    /// Reads one reply, waiting at most `timeout` for all of it: a server that trickles a
    /// byte at a time cannot keep the client waiting longer than that.
    pub(crate) fn read_reply_within(
        &mut self,
        timeout: Duration,
        wait: Wait,
    ) -> Result<Reply, Failure> {
        let deadline = Instant::now() + timeout;
        let mut first_read = true;
        loop {
            if let Some(reply) = self.take_reply(wait)? {
                return Ok(reply);
            }
            let received_nothing = !self.received_any;
            let timed_out = || wait.timed_out(received_nothing);
            // The first read of a reply may wait the whole timeout; after a partial reply,
            // only what is left of it. The socket option is set only when it changes, which
            // saves a system call per reply in a load run.
            let remaining = if first_read {
                timeout
            } else {
                deadline.saturating_duration_since(Instant::now())
            };
            first_read = false;
            if remaining.is_zero() {
                self.transcript.server(&self.input);
                return Err(timed_out());
            }
            if self.read_timeout != Some(remaining) {
                self.stream
                    .tcp()
                    .set_read_timeout(Some(remaining))
                    .map_err(|source| read_error(source, wait))?;
                self.read_timeout = Some(remaining);
            }
            let mut chunk = [0u8; 8192];
            let read = match &mut self.stream {
                Stream::Plain(tcp) => tcp.read(&mut chunk),
                Stream::Tls(tls) => tls.read(&mut chunk),
            };
            match read {
                Ok(0) => {
                    self.transcript.server(&self.input);
                    return Err(wait.closed());
                }
                Ok(n) => {
                    self.received_any = true;
                    self.input.extend_from_slice(&chunk[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => {
                    self.transcript.server(&self.input);
                    return Err(timed_out());
                }
                Err(source) => return Err(read_error(source, wait)),
            }
        }
    }

    /// Takes one complete reply from the bytes read so far, if there is one ("need more
    /// bytes" is `None`, not an error).
    pub(crate) fn take_reply(&mut self, wait: Wait) -> Result<Option<Reply>, Failure> {
        match reply::parse(&self.input) {
            Ok(Some((reply, used))) => {
                if self.recording {
                    self.transcript.server(&self.input[..used]);
                }
                self.input.drain(..used);
                Ok(Some(reply))
            }
            Ok(None) => Ok(None),
            Err(violation) => {
                self.transcript.server(&self.input);
                Err(Failure::Protocol {
                    after: wait.name().to_owned(),
                    violation,
                })
            }
        }
    }

    /// The server's end-entity certificate (DER), once TLS is up.
    pub(crate) fn peer_certificate(&self) -> Option<&[u8]> {
        match &self.stream {
            Stream::Plain(_) => None,
            Stream::Tls(tls) => tls
                .conn
                .peer_certificates()?
                .first()
                .map(|der| der.as_ref()),
        }
    }

    /// The negotiated TLS session, once TLS is up (for `--serverinfo`).
    pub(crate) fn tls_session(&self) -> Option<TlsSession> {
        let Stream::Tls(tls) = &self.stream else {
            return None;
        };
        let version = tls.conn.protocol_version().map(|version| match version {
            rustls::ProtocolVersion::TLSv1_2 => "TLS 1.2".to_owned(),
            rustls::ProtocolVersion::TLSv1_3 => "TLS 1.3".to_owned(),
            other => format!("{other:?}"),
        });
        let cipher = tls.conn.negotiated_cipher_suite().map(|suite| {
            let suite = suite.suite();
            suite
                .as_str()
                .map_or_else(|| format!("{suite:?}"), str::to_owned)
        });
        let chain = tls
            .conn
            .peer_certificates()
            .map(|chain| chain.iter().map(|der| der.as_ref().to_vec()).collect())
            .unwrap_or_default();
        Some(TlsSession {
            version,
            cipher,
            chain,
        })
    }

    /// Bytes the server sent that no reply has taken yet.
    pub(crate) fn unread_input(&self) -> &[u8] {
        &self.input
    }

    /// Runs the TLS handshake now (RFC 3207 §4 after `220`, or RFC 8314 §3 on connect), then
    /// writes `first_flight` (the next command, or nothing) in the same TCP write as the
    /// client's Finished message, which saves a round trip.
    pub(crate) fn start_tls(
        &mut self,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
        shown_name: &str,
        first_flight: &[u8],
    ) -> Result<(), Failure> {
        let Stream::Plain(tcp) = &self.stream else {
            return Err(Failure::Internal("a second TLS handshake".into()));
        };
        let mut socket = tcp
            .try_clone()
            .map_err(|source| io_error(source, "the TLS handshake"))?;
        let mut tls =
            ClientConnection::new(config, name).map_err(|e| Failure::TlsSetup(e.to_string()))?;
        handshake(&mut tls, &mut socket).map_err(|error| handshake_error(error, shown_name))?;
        // The server spoke TLS: it is not a silent port.
        self.received_any = true;
        let detail = match (tls.protocol_version(), tls.negotiated_cipher_suite()) {
            (Some(version), Some(suite)) => Some(format!("{version:?}, {:?}", suite.suite())),
            _ => None,
        };
        self.transcript.tls_established(detail);
        if !first_flight.is_empty() {
            tls.writer()
                .write_all(first_flight)
                .map_err(|source| io_error(source, "sending a command"))?;
            self.record(first_flight);
        }
        while tls.wants_write() {
            tls.write_tls(&mut socket)
                .map_err(|source| io_error(source, "sending a command"))?;
        }
        self.stream = Stream::Tls(Box::new(StreamOwned::new(tls, socket)));
        Ok(())
    }

    /// Switches the socket to non-blocking (for the event loop of a load run) or back.
    pub(crate) fn set_nonblocking(&mut self, on: bool) -> Result<(), Failure> {
        self.stream
            .tcp()
            .set_nonblocking(on)
            .map_err(|source| io_error(source, "setting up the connection"))
    }

    /// The TCP socket, for `poll(2)`.
    pub(crate) fn socket(&self) -> &TcpStream {
        self.stream.tcp()
    }

    /// Queues bytes for [`Connection::write_pending`], and records them.
    pub(crate) fn queue(&mut self, bytes: Arc<[u8]>) {
        if self.recording {
            self.transcript.client(&bytes);
        }
        self.pending.push_back((bytes, 0));
    }

    /// Whether queued bytes (or TLS records) still wait for the socket.
    pub(crate) fn wants_write(&self) -> bool {
        !self.pending.is_empty()
            || match &self.stream {
                Stream::Plain(_) => false,
                Stream::Tls(tls) => tls.conn.wants_write(),
            }
    }

    /// Writes as much of the queue as the non-blocking socket takes now, all of a small
    /// flight in one system call; returns whether everything is out.
    pub(crate) fn write_pending(&mut self) -> Result<bool, Failure> {
        let during = "sending the next commands";
        match &mut self.stream {
            Stream::Plain(tcp) => loop {
                if self.pending.is_empty() {
                    return Ok(true);
                }
                let mut slices = [IoSlice::new(&[]); 4];
                for (slice, (chunk, at)) in slices.iter_mut().zip(&self.pending) {
                    *slice = IoSlice::new(&chunk[*at..]);
                }
                let count = self.pending.len().min(slices.len());
                match tcp.write_vectored(&slices[..count]) {
                    Ok(0) => return Err(io_error(io::ErrorKind::WriteZero.into(), during)),
                    Ok(written) => advance(&mut self.pending, written),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(io_error(e, during)),
                }
            },
            Stream::Tls(tls) => loop {
                // Hand rustls as much as its buffer takes, then write all the records at once.
                while let Some((chunk, at)) = self.pending.front() {
                    let taken = tls
                        .conn
                        .writer()
                        .write(&chunk[*at..])
                        .map_err(|e| io_error(e, during))?;
                    if taken == 0 {
                        break;
                    }
                    advance(&mut self.pending, taken);
                }
                if !tls.conn.wants_write() {
                    return Ok(self.pending.is_empty());
                }
                match tls.conn.write_tls(&mut tls.sock) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(io_error(e, during)),
                }
            },
        }
    }

    /// Reads what the non-blocking socket has now (one read) into the reply buffer; returns
    /// whether anything came. The end of the connection is an error: a reply was expected.
    pub(crate) fn read_available(&mut self, wait: Wait) -> Result<bool, Failure> {
        let mut chunk = [0u8; 8192];
        let read = match &mut self.stream {
            Stream::Plain(tcp) => tcp.read(&mut chunk),
            Stream::Tls(tls) => tls.conn.read_tls(&mut tls.sock),
        };
        match read {
            Ok(0) => {
                self.transcript.server(&self.input);
                return Err(wait.closed());
            }
            Ok(n) => {
                self.received_any = true;
                if let Stream::Plain(_) = self.stream {
                    self.input.extend_from_slice(&chunk[..n]);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                return Ok(false);
            }
            Err(e) => return Err(read_error(e, wait)),
        }
        self.take_tls_plaintext(wait)?;
        Ok(true)
    }

    /// Moves what rustls has decrypted into the reply buffer (plaintext: nothing to do).
    pub(crate) fn take_tls_plaintext(&mut self, wait: Wait) -> Result<(), Failure> {
        let Stream::Tls(tls) = &mut self.stream else {
            return Ok(());
        };
        tls.conn
            .process_new_packets()
            .map_err(|e| read_error(io::Error::new(io::ErrorKind::InvalidData, e), wait))?;
        let mut chunk = [0u8; 8192];
        loop {
            match tls.conn.reader().read(&mut chunk) {
                Ok(0) => return Ok(()),
                Ok(n) => self.input.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(read_error(e, wait)),
            }
        }
    }

    /// Whether what is written and read goes into the transcript (on by default).
    pub(crate) fn set_recording(&mut self, on: bool) {
        self.recording = on;
    }

    fn record(&mut self, bytes: &[u8]) {
        if self.recording {
            self.transcript.client(bytes);
        }
    }

    /// Closes the connection: TLS close_notify when encrypted, then TCP shutdown.
    pub(crate) fn close(mut self) -> Transcript {
        if let Stream::Tls(tls) = &mut self.stream {
            tls.conn.send_close_notify();
            let _ = tls.conn.complete_io(&mut tls.sock);
        }
        let _ = self.stream.tcp().shutdown(std::net::Shutdown::Both);
        self.transcript.closed();
        self.transcript
    }
}

impl Write for Connection {
    /// Every byte the client writes goes through here, so the transcript sees it all.
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let written = match &mut self.stream {
            Stream::Plain(tcp) => tcp.write(bytes)?,
            Stream::Tls(tls) => tls.write(bytes)?,
        };
        self.record(&bytes[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.stream {
            Stream::Plain(tcp) => tcp.flush(),
            Stream::Tls(tls) => tls.flush(),
        }
    }
}

/// Drops `written` bytes from the front of the queue.
fn advance(pending: &mut VecDeque<(Arc<[u8]>, usize)>, mut written: usize) {
    while let Some((chunk, at)) = pending.front_mut() {
        let left = chunk.len() - *at;
        if written < left {
            *at += written;
            return;
        }
        written -= left;
        pending.pop_front();
    }
}

/// The handshake, driven by hand so the client's Finished is not written on its own: once the
/// server's Finished is processed the handshake is complete, and the pending Finished waits
/// for the caller's first command.
fn handshake(tls: &mut ClientConnection, socket: &mut TcpStream) -> io::Result<()> {
    while tls.is_handshaking() {
        while tls.wants_write() {
            tls.write_tls(socket)?;
        }
        if tls.read_tls(socket)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection during the TLS handshake",
            ));
        }
        if let Err(error) = tls.process_new_packets() {
            // Tell the server why (a TLS alert), then report the error.
            while tls.wants_write() {
                if tls.write_tls(socket).is_err() {
                    break;
                }
            }
            return Err(io::Error::new(io::ErrorKind::InvalidData, error));
        }
    }
    Ok(())
}

fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// An I/O error while waiting for the reply `wait` names.
fn read_error(source: io::Error, wait: Wait) -> Failure {
    io_error(source, &format!("waiting for the reply to {}", wait.name()))
}

/// An I/O error while `during` (e.g. `sending a command`).
pub(crate) fn io_error(source: io::Error, during: &str) -> Failure {
    let during = during.to_owned();
    if is_timeout(&source) {
        return Failure::Timeout { during };
    }
    match source.kind() {
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionAborted => Failure::Closed { during },
        _ => Failure::Io {
            during,
            reason: source.to_string(),
        },
    }
}

/// Tells a certificate problem (exit 78, fix the trust) from other handshake failures.
fn handshake_error(error: io::Error, name: &str) -> Failure {
    let tls_error = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .cloned();
    match tls_error {
        Some(rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other))) => {
            match other.0.downcast_ref::<crate::tls::PinMismatch>() {
                Some(mismatch) => Failure::PinMismatch {
                    fingerprint: mismatch.0.clone(),
                },
                None => Failure::Certificate {
                    name: name.to_owned(),
                    reason: other.0.to_string(),
                },
            }
        }
        Some(other) => Failure::from_tls(&other, name),
        None if is_timeout(&error) => Failure::Handshake {
            reason: "the server stopped answering".into(),
        },
        None => Failure::Handshake {
            reason: error.to_string(),
        },
    }
}
