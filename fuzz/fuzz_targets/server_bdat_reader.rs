//! The test server's BDAT reader (RFC 3030 §2: the chunk size, exactly that many octets in
//! any split, the next command right behind them, refused chunks still read, the SIZE
//! limit over a transaction's chunks) on arbitrary sessions, through a real server on
//! 127.0.0.1.
//!
//! Like `server_data_reader`, the target drives the real `test_server::Server`, since the
//! reader is a private part of its session loop: a pool of connections is taken through
//! EHLO; each input is a session of transactions (MAIL, RCPT, arbitrary chunks, then a
//! `LAST` chunk or RSET) written in arbitrary pieces, then arbitrary bytes (anything at
//! all: commands, BDAT lines with bad or huge sizes, stray octets), and the client side is
//! shut. A model of RFC 3030 written here, independently of the server, says what the
//! transactions must get:
//!
//! - no panic and no hang (a server thread's panic aborts the process);
//! - every reply is well formed (three digits, the same code on every line, CRLF);
//! - each command of the modelled part gets exactly its reply, in order: `250` for MAIL,
//!   RCPT, RSET and each chunk, `552` for the chunk that takes the transaction over the size
//!   limit, `503` for every chunk after a refused one until the `LAST` one;
//! - a transaction whose chunks were all accepted is stored with `250 ... queued as ID`,
//!   and `ID.eml` is exactly the concatenation of its chunks (the chunk sizes say where
//!   each one ends: dots, bare CR and LF, NUL and `.` lines are nothing special), with
//!   `"bdat": true` in its envelope;
//! - whatever follows, the server's replies stay well formed until it closes.

#![no_main]

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use test_server::{Config, Server};

/// Connections taken through EHLO in one go, so the listener's accept poll is paid rarely.
const POOL: usize = 16;
/// Inputs per server before it is replaced, which bounds the memory its finished sessions
/// and stored messages take.
const RESTART_EVERY: u64 = 5000;
/// The size limit of the small-limit server: small enough for inputs to cross it.
const SMALL_LIMIT: u64 = 64;
/// A server that has not answered by then is hung: a finding.
const READ_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Arbitrary, Debug)]
struct Input {
    /// Send to the server with a 64-octet size limit instead of the default 35 MiB.
    small_limit: bool,
    transactions: Vec<Transaction>,
    /// Where the modelled part is cut into writes (offsets, taken modulo its length).
    cuts: Vec<u16>,
    /// Sent after the modelled part; only the well-formedness of the replies is checked.
    tail: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
struct Transaction {
    /// `BODY=BINARYMIME` on MAIL (it changes nothing for BDAT).
    binarymime: bool,
    chunks: Vec<Chunk>,
    /// End with RSET instead of marking the last chunk `LAST`.
    rset: bool,
}

#[derive(Arbitrary, Debug)]
struct Chunk {
    octets: Vec<u8>,
    /// Write the size with leading zeros, and `last` in lower case: both valid.
    odd_spelling: bool,
}

/// What the server must answer to one command of the modelled part.
#[derive(Debug)]
enum Expected {
    /// This code, and this text after it when given.
    Reply(u16, Option<String>),
    /// `250 ... queued as ID`, and `ID.eml` holds these octets.
    Stored(Vec<u8>),
}

struct Running {
    server: Server,
    ready: VecDeque<TcpStream>,
    uses: u64,
}

struct Harness {
    scratch: PathBuf,
    generation: u64,
    servers: [Option<Running>; 2],
}

static HARNESS: Mutex<Option<Harness>> = Mutex::new(None);

fuzz_target!(|input: Input| {
    let (wire, expected) = model(&input);
    let mut harness = HARNESS.lock().unwrap_or_else(PoisonError::into_inner);
    let harness = harness.get_or_insert_with(Harness::new);
    let (mut connection, store) = harness.connection(input.small_limit);

    for piece in pieces(&wire, &input.cuts) {
        connection.write_all(piece).expect("writing the session");
    }
    let mut buffer = Vec::new();
    for (i, expected) in expected.iter().enumerate() {
        let reply = read_reply(&mut connection, &mut buffer)
            .unwrap_or_else(|| panic!("the server closed before reply {i}: {expected:?}"));
        check(&reply, expected, &store, i);
    }
    // The rest may make the server close at any point (QUIT), so writing may fail.
    let _ = connection.write_all(&input.tail);
    let _ = connection.shutdown(Shutdown::Write);
    while read_reply(&mut connection, &mut buffer).is_some() {}
    assert!(
        buffer.is_empty(),
        "the server ended on a partial reply: {buffer:?}"
    );
});

/// The bytes of the modelled part and the replies they must get, from RFC 3030 §2 and
/// RFC 1870 §6 as this target reads them.
fn model(input: &Input) -> (Vec<u8>, Vec<Expected>) {
    let limit = if input.small_limit {
        SMALL_LIMIT
    } else {
        Config::default().size_limit
    };
    let mut wire = Vec::new();
    let mut expected = Vec::new();
    let ok = |code: u16| Expected::Reply(code, None);
    for transaction in &input.transactions {
        let body = if transaction.binarymime {
            " BODY=BINARYMIME"
        } else {
            ""
        };
        wire.extend_from_slice(format!("MAIL FROM:<a@fuzz.example>{body}\r\n").as_bytes());
        wire.extend_from_slice(b"RCPT TO:<b@fuzz.example>\r\n");
        expected.extend([ok(250), ok(250)]);
        let empty = [Chunk {
            octets: Vec::new(),
            odd_spelling: false,
        }];
        // A transaction must end, or the next MAIL would be nested: BDAT 0 LAST at least.
        let chunks = match transaction.chunks.as_slice() {
            [] if !transaction.rset => &empty[..],
            chunks => chunks,
        };
        let mut message = Vec::new();
        let mut failed = false;
        for (i, chunk) in chunks.iter().enumerate() {
            let last = !transaction.rset && i + 1 == chunks.len();
            let size = chunk.octets.len();
            let (zeros, marker) = match (chunk.odd_spelling, last) {
                (true, true) => ("00", " last"),
                (false, true) => ("", " LAST"),
                (true, false) => ("0", ""),
                (false, false) => ("", ""),
            };
            wire.extend_from_slice(format!("BDAT {zeros}{size}{marker}\r\n").as_bytes());
            wire.extend_from_slice(&chunk.octets);
            if failed {
                expected.push(ok(503));
                continue;
            }
            message.extend_from_slice(&chunk.octets);
            if message.len() as u64 > limit {
                expected.push(ok(552));
                failed = true;
            } else if last {
                expected.push(Expected::Stored(std::mem::take(&mut message)));
            } else {
                expected.push(Expected::Reply(
                    250,
                    Some(format!("{size} octets received")),
                ));
            }
        }
        if transaction.rset {
            wire.extend_from_slice(b"RSET\r\n");
            expected.push(ok(250));
        }
    }
    (wire, expected)
}

/// `wire` cut at the given offsets (modulo its length), in order.
fn pieces<'a>(wire: &'a [u8], cuts: &[u16]) -> Vec<&'a [u8]> {
    if wire.is_empty() {
        return Vec::new();
    }
    let mut at: Vec<usize> = cuts
        .iter()
        .map(|&cut| usize::from(cut) % wire.len())
        .collect();
    at.extend([0, wire.len()]);
    at.sort_unstable();
    at.dedup();
    at.windows(2).map(|w| &wire[w[0]..w[1]]).collect()
}

fn check(reply: &Reply, expected: &Expected, store: &Path, i: usize) {
    match expected {
        Expected::Reply(code, text) => {
            assert_eq!(
                reply.code, *code,
                "reply {i}: {reply:?}, expected {expected:?}"
            );
            if let Some(text) = text {
                let got = reply.lines[0].split_once(' ').map(|(_, rest)| rest);
                assert_eq!(got, Some(text.as_str()), "reply {i}: {reply:?}");
            }
        }
        Expected::Stored(message) => {
            assert_eq!(
                reply.code, 250,
                "reply {i}: {reply:?}, expected a stored message"
            );
            let id = reply.lines[0]
                .strip_prefix("2.0.0 Ok: queued as ")
                .unwrap_or_else(|| panic!("reply {i} names no id: {reply:?}"));
            let stored =
                std::fs::read(store.join(format!("{id}.eml"))).expect("the stored message");
            assert!(
                stored == *message,
                "message {id}: stored {} octets, the chunks held {}",
                stored.len(),
                message.len()
            );
            let envelope =
                std::fs::read_to_string(store.join(format!("{id}.json"))).expect("its envelope");
            assert!(envelope.contains("\"bdat\": true"), "{envelope}");
        }
    }
}

/// One reply: its code and each line's text after the code and separator.
#[derive(Debug)]
struct Reply {
    code: u16,
    lines: Vec<String>,
}

/// Reads one whole reply, checking its form; `None` when the server closed first (with
/// `buffer` holding what came of a reply that never ended).
fn read_reply(connection: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<Reply> {
    let mut lines = Vec::new();
    let mut code = None;
    loop {
        let Some(end) = buffer.iter().position(|&b| b == b'\n') else {
            let mut chunk = [0; 4096];
            // libFuzzer's timeout alarm interrupts blocking reads now and then.
            match connection.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("the server did not answer: {e}"),
            }
            continue;
        };
        let line: Vec<u8> = buffer.drain(..=end).collect();
        let text = line
            .strip_suffix(b"\r\n")
            .unwrap_or_else(|| panic!("a reply line without CRLF: {line:?}"));
        let text = std::str::from_utf8(text).expect("a UTF-8 reply line");
        let digits = text
            .get(..3)
            .filter(|d| d.bytes().all(|b| b.is_ascii_digit()));
        let this: u16 = digits
            .and_then(|d| d.parse().ok())
            .unwrap_or_else(|| panic!("a reply line without a code: {text:?}"));
        assert!(
            code.is_none_or(|code| code == this),
            "a reply line with another code: {text:?}"
        );
        code = Some(this);
        let (more, rest) = match text.as_bytes().get(3) {
            Some(b'-') => (true, &text[4..]),
            Some(b' ') => (false, &text[4..]),
            None => (false, ""),
            Some(_) => panic!("a reply line with a bad separator: {text:?}"),
        };
        lines.push(rest.to_owned());
        if !more {
            return Some(Reply { code: this, lines });
        }
    }
}

impl Harness {
    fn new() -> Harness {
        let base = std::env::var_os("SMTP_FUZZ_SCRATCH")
            .map(PathBuf::from)
            .or_else(|| Some(PathBuf::from("/dev/shm")).filter(|shm| shm.is_dir()))
            .unwrap_or_else(std::env::temp_dir);
        remove_stale(&base);
        Harness {
            scratch: base.join(format!("smtp-fuzz-{}", std::process::id())),
            generation: 0,
            servers: [None, None],
        }
    }

    /// A connection after EHLO to the server for `small_limit`, and its store.
    fn connection(&mut self, small_limit: bool) -> (TcpStream, PathBuf) {
        let index = usize::from(small_limit);
        let slot = &mut self.servers[index];
        if slot
            .as_ref()
            .is_some_and(|running| running.uses >= RESTART_EVERY)
        {
            let old = slot.take().expect("a running server");
            let dir = old.server.store_dir().to_owned();
            // Our pooled connections first, then the server (which joins its threads).
            drop(old.ready);
            drop(old.server);
            let _ = std::fs::remove_dir_all(dir);
        }
        if slot.is_none() {
            self.generation += 1;
            let store = self
                .scratch
                .join(format!("bdat-{index}-{}", self.generation));
            *slot = Some(start(small_limit, store));
        }
        let running = slot.as_mut().expect("a running server");
        if running.ready.is_empty() {
            fill(running);
        }
        running.uses += 1;
        let connection = running.ready.pop_front().expect("a pooled connection");
        (connection, running.server.store_dir().to_owned())
    }
}

fn start(small_limit: bool, store: PathBuf) -> Running {
    let config = Config {
        store: Some(store),
        size_limit: if small_limit {
            SMALL_LIMIT
        } else {
            Config::default().size_limit
        },
        // Fuzzing measures the reader, not the disk.
        sync: false,
        // Pooled connections may wait a while before their input comes.
        idle_timeout: Duration::from_secs(24 * 3600),
        session_timeout: Duration::from_secs(24 * 3600),
        ..Config::default()
    };
    let server = Server::start(config).expect("starting the test server");
    Running {
        server,
        ready: VecDeque::new(),
        uses: 0,
    }
}

/// Opens [`POOL`] connections at once, then takes each through the greeting and EHLO.
fn fill(running: &mut Running) {
    let addr = running.server.addr();
    let connections: Vec<TcpStream> = (0..POOL)
        .map(|_| TcpStream::connect(addr).expect("connecting to the test server"))
        .collect();
    for mut connection in connections {
        connection
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("setting a timeout");
        // Each piece of the session goes out as its own segment.
        connection.set_nodelay(true).expect("setting TCP_NODELAY");
        let mut buffer = Vec::new();
        let greeting = read_reply(&mut connection, &mut buffer).expect("a greeting");
        assert_eq!(greeting.code, 220, "{greeting:?}");
        connection
            .write_all(b"EHLO fuzz.example\r\n")
            .expect("writing EHLO");
        let ehlo = read_reply(&mut connection, &mut buffer).expect("an EHLO reply");
        assert_eq!(ehlo.code, 250, "{ehlo:?}");
        assert!(ehlo.lines.iter().any(|line| line == "CHUNKING"), "{ehlo:?}");
        assert!(buffer.is_empty(), "more than a reply: {buffer:?}");
        running.ready.push_back(connection);
    }
}

/// Removes the scratch directories of fuzzing processes that are gone (where `/proc`
/// tells), since libFuzzer ends a run with `exit` and no destructor runs.
fn remove_stale(base: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("smtp-fuzz-")) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
