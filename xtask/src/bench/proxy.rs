//! A delay proxy on loopback, and round trips counted from its trace.
//!
//! netem is not available in this kernel, so latency is emulated in user space: the proxy
//! listens on 127.0.0.1, and for each client connection it waits `delay` (the SYN/SYN-ACK
//! of a real link), connects to the target, and forwards every chunk it reads, in either
//! direction, `delay` after it read it. Each direction has its own timestamped queue and
//! writer thread, so a burst of chunks costs one `delay`, not one per chunk: throughput is
//! not serialized by the delay, only latency is added.
//!
//! Every chunk is recorded (direction, time, length) in the connection's trace, and the
//! round trips of a session are counted from that trace by [`round_trips`], never guessed
//! from wall time.

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

/// How long any socket of the proxy may stay silent before the connection is dropped, so a
/// hung peer cannot keep a forwarding thread alive for ever.
const IDLE: Duration = Duration::from_secs(120);

/// Which way a chunk went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    /// From the client to the server.
    ToServer,
    /// From the server to the client.
    ToClient,
}

/// One chunk the proxy read: which way, when (since the client connected), how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Chunk {
    pub(crate) dir: Dir,
    pub(crate) at: Duration,
    pub(crate) len: usize,
}

/// Round trips of one session, from its trace.
///
/// The rule: **RT = 1 + the number of server→client flights**, where a flight is a maximal
/// run of server→client chunks not interrupted by a client→server chunk (in the order the
/// proxy read them).
///
/// Why this counts what a user waits for: the 1 is the TCP handshake, which no trace
/// shows. After it, every time the server sends something the client was waiting for, one
/// round trip has passed — the greeting, each reply to a command or to a pipelined group of
/// commands, each TLS handshake flight. Several chunks in a row from the server (the replies
/// to a pipelined group written one by one, TLS records plus the EHLO reply) travel in the
/// same half trip and are one flight. Consecutive client chunks (a client writing a body and
/// its final `.` separately) do not add a trip either: only the server's answers do. What the
/// client sends after the last server flight (a QUIT it does not wait for) costs nothing.
pub(crate) fn round_trips(chunks: &[Chunk]) -> usize {
    1 + server_flights(chunks)
}

/// The number of server→client flights in a trace (see [`round_trips`]).
pub(crate) fn server_flights(chunks: &[Chunk]) -> usize {
    let mut sorted = chunks.to_vec();
    // Stable: chunks read at the same instant keep the order they were recorded in.
    sorted.sort_by_key(|chunk| chunk.at);
    let mut flights = 0;
    let mut in_flight = false;
    for chunk in sorted {
        match chunk.dir {
            Dir::ToClient if !in_flight => {
                flights += 1;
                in_flight = true;
            }
            Dir::ToClient => {}
            Dir::ToServer => in_flight = false,
        }
    }
    flights
}

/// The trace as text, one chunk a line, for `target/bench/traces/`.
pub(crate) fn render(chunks: &[Chunk]) -> String {
    let mut sorted = chunks.to_vec();
    sorted.sort_by_key(|chunk| chunk.at);
    let mut text = String::from("# time_ms direction bytes (flight)\n");
    let mut flights = 0;
    let mut in_flight = false;
    for chunk in sorted {
        let (arrow, note) = match chunk.dir {
            Dir::ToServer => {
                in_flight = false;
                ("C->S", String::new())
            }
            Dir::ToClient => {
                if !in_flight {
                    flights += 1;
                    in_flight = true;
                }
                ("S->C", format!(" (server flight {flights})"))
            }
        };
        text.push_str(&format!(
            "{:9.3} {arrow} {:>8}{note}\n",
            chunk.at.as_secs_f64() * 1000.0,
            chunk.len
        ));
    }
    text.push_str(&format!(
        "# round trips = 1 (TCP) + {flights} server flights = {}\n",
        1 + flights
    ));
    text
}

/// One proxied connection's trace.
#[derive(Default)]
struct Trace {
    chunks: Vec<Chunk>,
    /// Forwarding threads still running (two writers); the trace is complete at 0.
    open: usize,
    failed: Option<String>,
}

type Shared = Arc<Mutex<Trace>>;

/// The running proxy; dropping it stops accepting (established connections end when their
/// peers close, or after [`IDLE`]).
pub(crate) struct DelayProxy {
    addr: SocketAddr,
    traces: Arc<Mutex<Vec<Shared>>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl DelayProxy {
    /// Listens on 127.0.0.1:0 and forwards to `target` with `delay` each way.
    pub(crate) fn start(target: SocketAddr, delay: Duration) -> Result<DelayProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the delay proxy")?;
        let addr = listener.local_addr()?;
        let traces: Arc<Mutex<Vec<Shared>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let traces = traces.clone();
            let stop = stop.clone();
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = stream else { continue };
                    let trace: Shared = Arc::new(Mutex::new(Trace {
                        open: 2,
                        ..Trace::default()
                    }));
                    lock(&traces).push(trace.clone());
                    thread::spawn(move || connection(client, target, delay, trace));
                }
            })
        };
        Ok(DelayProxy {
            addr,
            traces,
            stop,
            acceptor: Some(acceptor),
        })
    }

    /// Where clients connect.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many connections were accepted so far.
    pub(crate) fn connections(&self) -> usize {
        lock(&self.traces).len()
    }

    /// The trace of connection `index` (0-based, in accept order), once both directions are
    /// closed; fails after `timeout`.
    pub(crate) fn trace(&self, index: usize, timeout: Duration) -> Result<Vec<Chunk>> {
        let deadline = Instant::now() + timeout;
        loop {
            let shared = lock(&self.traces).get(index).cloned();
            if let Some(shared) = shared {
                let trace = lock(&shared);
                if trace.open == 0 {
                    if let Some(why) = &trace.failed {
                        bail!("the proxied connection failed: {why}");
                    }
                    return Ok(trace.chunks.clone());
                }
            }
            if Instant::now() > deadline {
                bail!("proxied connection {index} did not finish within {timeout:?}");
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn connection(client: TcpStream, target: SocketAddr, delay: Duration, trace: Shared) {
    let started = Instant::now();
    // The TCP handshake of the emulated link.
    thread::sleep(delay);
    let server = match TcpStream::connect_timeout(&target, Duration::from_secs(10)) {
        Ok(server) => server,
        Err(error) => {
            let mut trace = lock(&trace);
            trace.failed = Some(format!("connecting to {target}: {error}"));
            trace.open = 0;
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
    };
    let setup = || -> std::io::Result<[TcpStream; 4]> {
        for stream in [&client, &server] {
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(IDLE))?;
            stream.set_write_timeout(Some(IDLE))?;
        }
        Ok([
            client.try_clone()?,
            server.try_clone()?,
            server.try_clone()?,
            client.try_clone()?,
        ])
    };
    match setup() {
        Ok([client_in, server_out, server_in, client_out]) => {
            let up = pump(
                client_in,
                server_out,
                Dir::ToServer,
                started,
                delay,
                trace.clone(),
            );
            let down = pump(server_in, client_out, Dir::ToClient, started, delay, trace);
            let _ = up.join();
            let _ = down.join();
        }
        Err(error) => {
            let mut trace = lock(&trace);
            trace.failed = Some(format!("setting up sockets: {error}"));
            trace.open = 0;
        }
    }
}

/// One direction: a reader that timestamps and queues each chunk, and a writer that sends
/// it when its time has come. Returns the writer's handle (the reader ends with it).
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    dir: Dir,
    started: Instant,
    delay: Duration,
    trace: Shared,
) -> JoinHandle<()> {
    let (queue, queued) = mpsc::channel::<(Instant, Option<Vec<u8>>)>();
    let reader_trace = trace.clone();
    let reader_from = from.try_clone();
    thread::spawn(move || {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buffer) {
                Ok(0) | Err(_) => {
                    let _ = queue.send((Instant::now() + delay, None));
                    return;
                }
                Ok(n) => {
                    let now = Instant::now();
                    lock(&reader_trace).chunks.push(Chunk {
                        dir,
                        at: now - started,
                        len: n,
                    });
                    if queue
                        .send((now + delay, Some(buffer[..n].to_vec())))
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    });
    thread::spawn(move || {
        while let Ok((due, bytes)) = queued.recv() {
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
            match bytes {
                Some(bytes) => {
                    if to.write_all(&bytes).is_err() {
                        // The receiver is gone: stop reading from the sender as well.
                        if let Ok(from) = &reader_from {
                            let _ = from.shutdown(Shutdown::Read);
                        }
                        let _ = to.shutdown(Shutdown::Both);
                        break;
                    }
                }
                None => {
                    let _ = to.shutdown(Shutdown::Write);
                    break;
                }
            }
        }
        lock(&trace).open -= 1;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(spec: &[(char, u64)]) -> Vec<Chunk> {
        spec.iter()
            .map(|&(dir, ms)| Chunk {
                dir: if dir == 'C' {
                    Dir::ToServer
                } else {
                    Dir::ToClient
                },
                at: Duration::from_millis(ms),
                len: 10,
            })
            .collect()
    }

    #[test]
    fn an_empty_trace_is_the_tcp_handshake_alone() {
        assert_eq!(round_trips(&[]), 1);
    }

    #[test]
    fn client_chunks_alone_cost_no_round_trip() {
        assert_eq!(round_trips(&trace(&[('C', 1), ('C', 2), ('C', 3)])), 1);
    }

    #[test]
    fn each_reply_after_a_command_is_one_round_trip() {
        // greeting, EHLO/250, QUIT/221
        let chunks = trace(&[('S', 50), ('C', 51), ('S', 101), ('C', 102), ('S', 152)]);
        assert_eq!(server_flights(&chunks), 3);
        assert_eq!(round_trips(&chunks), 4);
    }

    #[test]
    fn consecutive_server_chunks_are_one_flight() {
        // A pipelined group answered in four separate writes is still one trip.
        let chunks = trace(&[
            ('S', 50),
            ('C', 51),
            ('S', 101),
            ('S', 101),
            ('S', 102),
            ('S', 103),
        ]);
        assert_eq!(round_trips(&chunks), 3);
    }

    #[test]
    fn consecutive_client_chunks_do_not_split_or_add_flights() {
        // lettre-style: body and "." in two writes, then one reply.
        let chunks = trace(&[('S', 50), ('C', 51), ('C', 52), ('S', 102)]);
        assert_eq!(round_trips(&chunks), 3);
    }

    #[test]
    fn a_trailing_client_chunk_costs_nothing() {
        // QUIT written after the last reply, not waited for.
        let chunks = trace(&[('S', 50), ('C', 51), ('S', 101), ('C', 102)]);
        assert_eq!(round_trips(&chunks), 3);
    }

    #[test]
    fn chunks_are_ordered_by_time_not_by_recording_order() {
        // The two reader threads may record out of order; the timestamps decide.
        let chunks = trace(&[('S', 50), ('S', 101), ('C', 51)]);
        assert_eq!(round_trips(&chunks), 3);
    }

    #[test]
    fn the_starttls_floor_is_eight() {
        // TCP | 220 | EHLO→250 | STARTTLS→220 | ClientHello→ServerHello..Finished |
        // Finished+EHLO→tickets+250 | AUTH+MAIL+RCPT+DATA→235,250,250,354 | body+.+QUIT→250,221
        let chunks = trace(&[
            ('S', 50),
            ('C', 51),
            ('S', 101),
            ('C', 102),
            ('S', 152),
            ('C', 153),
            ('S', 203),
            ('S', 203),
            ('C', 204),
            ('S', 254),
            ('S', 254),
            ('C', 255),
            ('S', 305),
            ('S', 305),
            ('S', 306),
            ('S', 306),
            ('C', 307),
            ('S', 357),
            ('S', 357),
        ]);
        assert_eq!(round_trips(&chunks), 8);
        assert!(render(&chunks).ends_with("= 8\n"));
    }

    #[test]
    fn the_proxy_delays_each_way_and_records_the_trace() {
        // An echo server behind the proxy.
        let echo = TcpListener::bind("127.0.0.1:0").expect("bind");
        let target = echo.local_addr().expect("addr");
        let server = thread::spawn(move || {
            let (mut stream, _) = echo.accept().expect("accept");
            let mut buffer = [0u8; 1024];
            loop {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => stream.write_all(&buffer[..n]).expect("echo"),
                }
            }
        });
        let delay = Duration::from_millis(20);
        let proxy = DelayProxy::start(target, delay).expect("proxy");
        let started = Instant::now();
        let mut client = TcpStream::connect(proxy.addr()).expect("connect");
        client.write_all(b"ping").expect("write");
        let mut reply = [0u8; 4];
        client.read_exact(&mut reply).expect("read");
        assert_eq!(&reply, b"ping");
        // Connect delay, then one delay each way.
        assert!(started.elapsed() >= delay * 3, "{:?}", started.elapsed());
        // A burst of writes is not serialized by the delay: all ten echoes arrive about
        // one round trip later, not ten.
        let burst = Instant::now();
        for _ in 0..10 {
            client.write_all(b"x").expect("write");
            thread::sleep(Duration::from_millis(1));
        }
        let mut got = 0;
        let mut buffer = [0u8; 16];
        while got < 10 {
            got += client.read(&mut buffer).expect("read");
        }
        assert!(burst.elapsed() < delay * 6, "{:?}", burst.elapsed());
        drop(client);
        let chunks = proxy.trace(0, Duration::from_secs(5)).expect("trace");
        assert_eq!(proxy.connections(), 1);
        let sent: usize = chunks
            .iter()
            .filter(|c| c.dir == Dir::ToServer)
            .map(|c| c.len)
            .sum();
        let received: usize = chunks
            .iter()
            .filter(|c| c.dir == Dir::ToClient)
            .map(|c| c.len)
            .sum();
        assert_eq!((sent, received), (14, 14));
        assert!(round_trips(&chunks) >= 3);
        server.join().expect("echo server");
    }
}
