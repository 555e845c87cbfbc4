//! A scripted hostile server: it answers each client line with whatever bytes a test wants,
//! including ones no honest server would send, and records everything the client wrote.

use std::io::{BufRead as _, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One step of the script.
#[derive(Debug, Clone)]
pub enum Step {
    /// Write these bytes.
    Send(Vec<u8>),
    /// Read one line from the client (any content).
    Read,
    /// Read lines until the client's end-of-data line `.`.
    ReadData,
    /// Write these bytes one at a time, pausing between them.
    Trickle(Vec<u8>, Duration),
    /// Write the same bytes over and over (bounded, so the test always ends).
    Repeat(Vec<u8>, usize),
    /// Do nothing for a while.
    Stall(Duration),
    /// Answer each following client line with `334 <challenge>`, this many times.
    Challenges(usize),
    /// Close the connection.
    Close,
    /// Run the server side of a TLS handshake, then go on with the steps inside TLS.
    StartTls(Arc<rustls::ServerConfig>),
}

/// A server that runs one script for one connection.
pub struct Scripted {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<u8>>>,
    /// What happened on the server's side: a connection, a completed TLS handshake.
    seen: Arc<Seen>,
    thread: Option<JoinHandle<()>>,
}

/// What a scripted server saw happen.
#[derive(Debug, Default)]
pub struct Seen {
    /// A client connected.
    pub connected: AtomicBool,
    /// A TLS handshake completed.
    pub handshake: AtomicBool,
}

impl Scripted {
    /// Starts listening on 127.0.0.1 and runs `script` for the first connection.
    pub fn start(script: Vec<Step>) -> Scripted {
        let listener = match TcpListener::bind("127.0.0.1:0") {
            Ok(listener) => listener,
            Err(error) => panic!("cannot listen on loopback: {error}"),
        };
        let addr = match listener.local_addr() {
            Ok(addr) => addr,
            Err(error) => panic!("no local address: {error}"),
        };
        let received = Arc::new(Mutex::new(Vec::new()));
        let record = received.clone();
        let seen = Arc::new(Seen::default());
        let saw = seen.clone();
        let thread = std::thread::spawn(move || {
            if let Ok((stream, _)) = listener.accept() {
                saw.connected.store(true, Ordering::SeqCst);
                let _ = run(stream, &script, &record, &saw);
            }
        });
        Scripted {
            addr,
            received,
            seen,
            thread: Some(thread),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the server saw happen (so far).
    pub fn seen(&self) -> Arc<Seen> {
        self.seen.clone()
    }

    /// Everything the client wrote, once the script has finished.
    pub fn received(mut self) -> Vec<u8> {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        match self.received.lock() {
            Ok(bytes) => bytes.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

fn run(
    stream: TcpStream,
    script: &[Step],
    received: &Mutex<Vec<u8>>,
    seen: &Seen,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(15)))?;
    let tcp = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let Some(at) = run_steps(&mut reader, script, received)? else {
        return Ok(());
    };
    let Step::StartTls(config) = &script[at] else {
        return Ok(());
    };
    let connection =
        rustls::ServerConnection::new(config.clone()).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    seen.handshake.store(true, Ordering::SeqCst);
    let mut reader = BufReader::new(tls);
    run_steps(&mut reader, &script[at + 1..], received).map(|_| ())
}

/// Runs steps until the end, or until a `StartTls` step, whose index it returns.
fn run_steps<S: Read + Write>(
    reader: &mut BufReader<S>,
    script: &[Step],
    received: &Mutex<Vec<u8>>,
) -> std::io::Result<Option<usize>> {
    let read_line = |reader: &mut BufReader<S>| -> std::io::Result<Vec<u8>> {
        let mut line = Vec::new();
        reader.read_until(b'\n', &mut line)?;
        if let Ok(mut all) = received.lock() {
            all.extend_from_slice(&line);
        }
        Ok(line)
    };
    for (index, step) in script.iter().enumerate() {
        match step {
            Step::Send(bytes) => {
                reader.get_mut().write_all(bytes)?;
                reader.get_mut().flush()?;
            }
            Step::Read => {
                if read_line(reader)?.is_empty() {
                    return Ok(None);
                }
            }
            Step::ReadData => loop {
                let line = read_line(reader)?;
                if line.is_empty() || line == b".\r\n" {
                    break;
                }
            },
            Step::Trickle(bytes, pause) => {
                for byte in bytes {
                    reader.get_mut().write_all(&[*byte])?;
                    reader.get_mut().flush()?;
                    std::thread::sleep(*pause);
                }
            }
            Step::Repeat(bytes, times) => {
                for _ in 0..*times {
                    reader.get_mut().write_all(bytes)?;
                }
                reader.get_mut().flush()?;
            }
            Step::Stall(duration) => std::thread::sleep(*duration),
            Step::Challenges(times) => {
                for _ in 0..*times {
                    reader.get_mut().write_all(b"334 VXNlcm5hbWU6\r\n")?;
                    reader.get_mut().flush()?;
                    if read_line(reader)?.is_empty() {
                        return Ok(None);
                    }
                }
            }
            Step::Close => return Ok(None),
            Step::StartTls(_) => return Ok(Some(index)),
        }
    }
    Ok(None)
}
