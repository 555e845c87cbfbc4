//! The test server's DATA reader (end of data, dot-unstuffing, bare CR/LF detection, line
//! limit, the pipelining check) on arbitrary bytes, through a real server on 127.0.0.1.
//!
//! The reader is a private part of the session loop and reads from a socket, so the
//! target drives the real `test_server::Server`: a pool of connections is taken through
//! EHLO, MAIL, RCPT and DATA up to the `354` reply; each input then goes into one of them
//! as the message data, the client side is shut, and everything the server answers is read
//! until it closes. The first input byte picks the configuration (strict or permissive
//! line endings, PIPELINING offered or not) and whether the rest goes to the server as it
//! is or first through the client's `DotStuffer`, as raw-client sends a message. The
//! expected outcome comes from a model of RFC 5321 written here, independently of the
//! server:
//!
//! - no panic and no hang (a server thread's panic aborts the process);
//! - every reply parses with the client's reply parser;
//! - without `CRLF.CRLF` in the data the server answers nothing (end of data is never
//!   reported early, nothing is stored);
//! - with it, the first reply is 554 when bytes follow the terminator without PIPELINING,
//!   else 500 for a line over 1000 octets, else (strict) 550 for a bare CR or LF, else
//!   250 with a stored message equal to the data before the terminator with one leading
//!   dot removed from each line (and, permissive, every bare CR or LF made CRLF);
//! - client and server together: a message dot-stuffed by the client is stored as the
//!   message with every line ending made CRLF (unless a line is over the limit).

#![no_main]

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use raw_client::data::DotStuffer;
use raw_client::reply::{Reply, parse};
use test_server::{Config, LineEndings, Server};

/// Connections taken to `354` in one go, so the listener's accept poll is paid rarely.
const POOL: usize = 16;
/// Inputs per server before it is replaced, which bounds the memory its finished
/// sessions take and the files in its store.
const RESTART_EVERY: u64 = 5000;
/// RFC 5321 §4.5.3.1.6: a text line is at most 1000 octets including CRLF.
const TEXT_LINE_LIMIT: usize = 1000;
/// A server that has not answered by then is hung: a finding.
const READ_TIMEOUT: Duration = Duration::from_secs(20);

/// One configuration under test.
#[derive(Clone, Copy, Debug)]
struct Mode {
    strict: bool,
    pipelining: bool,
    /// The input is a message for the client's dot-stuffer, not bytes for the wire.
    stuffed: bool,
}

impl Mode {
    fn from_byte(byte: u8) -> Mode {
        Mode {
            strict: byte & 1 == 0,
            pipelining: byte & 2 == 0,
            stuffed: byte & 4 != 0,
        }
    }

    fn index(self) -> usize {
        usize::from(!self.strict) + 2 * usize::from(!self.pipelining)
    }
}

struct Running {
    server: Server,
    ready: VecDeque<TcpStream>,
    uses: u64,
}

struct Harness {
    scratch: PathBuf,
    generation: u64,
    servers: [Option<Running>; 4],
}

static HARNESS: Mutex<Option<Harness>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let mode = Mode::from_byte(selector);
    let mut harness = HARNESS.lock().unwrap_or_else(PoisonError::into_inner);
    let harness = harness.get_or_insert_with(Harness::new);
    let (mut connection, store) = harness.connection(mode);

    let wire = if mode.stuffed {
        stuff(input)
    } else {
        input.to_vec()
    };
    connection.write_all(&wire).expect("writing the data");
    connection
        .shutdown(Shutdown::Write)
        .expect("ending the data");
    let answer = read_to_close(&mut connection);
    let replies = replies(&answer);
    let stored = check(mode, &wire, &replies, &store);
    if mode.stuffed
        && !wire
            .split(|&b| b == b'\n')
            .any(|l| l.len() + 1 > TEXT_LINE_LIMIT)
    {
        assert_eq!(
            stored.as_deref(),
            Some(crlf_everywhere(&with_last_line_ended(input)).as_slice()),
            "a dot-stuffed message did not come back"
        );
    }
});

/// What raw-client puts on the wire for `message`: dot-stuffed, CRLF only, `.` line last.
fn stuff(message: &[u8]) -> Vec<u8> {
    let mut stuffer = DotStuffer::new(Vec::new());
    stuffer.write_all(message).expect("writing to a Vec");
    stuffer.finish().expect("writing to a Vec")
}

/// `message` with CRLF after a last line that has no line ending.
fn with_last_line_ended(message: &[u8]) -> Vec<u8> {
    let mut out = message.to_vec();
    if !out.is_empty() && !out.ends_with(b"\n") && !out.ends_with(b"\r") {
        out.extend_from_slice(b"\r\n");
    }
    out
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
            servers: [None, None, None, None],
        }
    }

    /// A connection in DATA (after `354`) to the server for `mode`, and its store.
    fn connection(&mut self, mode: Mode) -> (TcpStream, PathBuf) {
        let slot = &mut self.servers[mode.index()];
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
                .join(format!("{}-{}", mode.index(), self.generation));
            *slot = Some(start(mode, store));
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

fn start(mode: Mode, store: PathBuf) -> Running {
    let config = Config {
        store: Some(store),
        line_endings: if mode.strict {
            LineEndings::Strict
        } else {
            LineEndings::Permissive
        },
        pipelining: mode.pipelining,
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

/// Opens [`POOL`] connections at once, then takes each to the `354` reply.
fn fill(running: &mut Running) {
    let addr = running.server.addr();
    let connections: Vec<TcpStream> = (0..POOL)
        .map(|_| TcpStream::connect(addr).expect("connecting to the test server"))
        .collect();
    for mut connection in connections {
        connection
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("setting a timeout");
        let mut buffer = Vec::new();
        let greeting = read_reply(&mut connection, &mut buffer);
        assert_eq!(greeting.code, 220, "{greeting}");
        for (command, code) in [
            (&b"EHLO fuzz.example\r\n"[..], 250),
            (b"MAIL FROM:<a@fuzz.example>\r\n", 250),
            (b"RCPT TO:<b@fuzz.example>\r\n", 250),
            (b"DATA\r\n", 354),
        ] {
            connection.write_all(command).expect("writing a command");
            let reply = read_reply(&mut connection, &mut buffer);
            assert_eq!(reply.code, code, "{reply}");
        }
        assert!(buffer.is_empty(), "more than a reply: {buffer:?}");
        running.ready.push_back(connection);
    }
}

/// Reads one reply with the client's parser; `buffer` keeps what came after it.
fn read_reply(connection: &mut TcpStream, buffer: &mut Vec<u8>) -> Reply {
    loop {
        match parse(buffer) {
            Ok(Some((reply, used))) => {
                buffer.drain(..used);
                return reply;
            }
            Ok(None) => {}
            Err(e) => panic!("the server sent a malformed reply: {e}"),
        }
        let mut chunk = [0; 4096];
        // libFuzzer's timeout alarm interrupts blocking reads now and then.
        let n = match connection.read(&mut chunk) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            read => read.expect("reading a reply"),
        };
        assert!(n > 0, "the server closed during the setup");
        buffer.extend_from_slice(&chunk[..n]);
    }
}

/// Everything the server sends until it closes the connection.
fn read_to_close(connection: &mut TcpStream) -> Vec<u8> {
    let mut answer = Vec::new();
    let mut chunk = [0; 4096];
    loop {
        match connection.read(&mut chunk) {
            Ok(0) => return answer,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return answer,
            Err(e) => panic!("the server did not close the connection: {e}"),
        }
    }
}

/// The answer as replies; each must parse, and nothing may be left over.
fn replies(mut answer: &[u8]) -> Vec<Reply> {
    let mut replies = Vec::new();
    while !answer.is_empty() {
        match parse(answer) {
            Ok(Some((reply, used))) => {
                replies.push(reply);
                answer = &answer[used..];
            }
            Ok(None) => panic!("the server ended on a partial reply: {answer:?}"),
            Err(e) => panic!("the server sent a malformed reply: {e}"),
        }
    }
    replies
}

/// Compares what the server did with the model; returns the stored message, if any.
fn check(mode: Mode, input: &[u8], replies: &[Reply], store: &Path) -> Option<Vec<u8>> {
    // "\r\n" stands for the end of the DATA command line before the data.
    let mut stream = b"\r\n".to_vec();
    stream.extend_from_slice(input);
    let Some(end) = find(&stream, b"\r\n.\r\n") else {
        assert!(
            replies.is_empty(),
            "the server answered data without CRLF.CRLF: {}",
            replies[0]
        );
        return None;
    };
    // `end` indexes `stream`; in `input` the data is [..end] and the terminator's
    // ".\r\n" is [end..end + 3].
    let data = &input[..end];
    let after = &input[end + 3..];
    let first = replies.first().expect("a reply to the end of data");

    if !mode.pipelining && !after.is_empty() {
        assert_eq!(first.code, 554, "bytes after the end of data: {first}");
        assert_eq!(replies.len(), 1, "the server went on after 554");
        return None;
    }
    let lines: Vec<&[u8]> = data.split_inclusive(|&b| b == b'\n').collect();
    if lines.iter().any(|line| line.len() > TEXT_LINE_LIMIT) {
        assert_eq!(first.code, 500, "a line over the limit: {first}");
        return None;
    }
    if mode.strict && has_bare_line_ending(data) {
        assert_eq!(first.code, 550, "a bare CR or LF: {first}");
        return None;
    }
    assert_eq!(first.code, 250, "a valid message: {first}");
    let mut expected = Vec::with_capacity(data.len());
    for line in lines {
        expected.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    if !mode.strict {
        expected = crlf_everywhere(&expected);
    }
    let id = first.lines[0]
        .rsplit(' ')
        .next()
        .expect("an id in the 250 reply");
    let stored = std::fs::read(store.join(format!("{id}.eml"))).expect("the stored message");
    assert_eq!(
        String::from_utf8_lossy(&stored),
        String::from_utf8_lossy(&expected),
        "stored message"
    );
    assert_eq!(stored, expected, "stored message bytes");
    Some(stored)
}

/// A CR not followed by LF, or an LF not after a CR (the byte before the data is LF).
fn has_bare_line_ending(data: &[u8]) -> bool {
    data.iter().enumerate().any(|(i, &byte)| match byte {
        b'\r' => data.get(i + 1) != Some(&b'\n'),
        b'\n' => i == 0 || data[i - 1] != b'\r',
        _ => false,
    })
}

/// Every CRLF, bare CR and bare LF as CRLF.
fn crlf_everywhere(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 8);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            byte => out.push(byte),
        }
        i += 1;
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
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
