//! One live subscriber of test-server's web inbox, for the store bench: what an open browser
//! tab of the inbox asks of the server, over plain `TcpStream`s (HTTP/1.1, `Host:
//! 127.0.0.1:PORT`, which the inbox requires). It opens `GET /api/v1/events` (Server-Sent
//! Events) and reads it on a thread of its own, counting the `message` events and parsing
//! each one's JSON summary, as the page does before it adds the row. On the first message
//! event and every hundredth after it, it also makes the requests the page makes when it is
//! opened (`GET /api/v1/server` and `GET /api/v1/messages?q=&limit=50&offset=0`), each on a
//! connection of its own while the event stream waits, as the page's one thread would.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

/// The inbox is loaded again on every this many message events, the first included.
pub(crate) const RELOAD_EVERY: usize = 100;
/// The inbox page's list request (app.js, `renderInbox`: `PAGE_SIZE` is 50).
pub(crate) const INBOX: &str = "/api/v1/messages?q=&limit=50&offset=0";
/// How long a request may take to connect, or to answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest line of a header section, a chunk size or an event stream.
const MAX_LINE: u64 = 64 * 1024;
/// The largest response body or chunk accepted.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// What the subscriber has seen so far.
#[derive(Debug, Default)]
struct Seen {
    messages: usize,
    last_message: Option<Instant>,
    inbox_loads: usize,
    resyncs: usize,
    /// Why the stream ended, once it has.
    ended: Option<String>,
}

type Shared = Arc<(Mutex<Seen>, Condvar)>;

fn lock(shared: &Shared) -> MutexGuard<'_, Seen> {
    shared.0.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The subscriber's thread, stopped (its socket shut down, the thread joined) when dropped.
pub(crate) struct Subscriber {
    stream: TcpStream,
    shared: Shared,
    thread: Option<JoinHandle<()>>,
}

impl Subscriber {
    /// Subscribes to the events of the inbox on 127.0.0.1:`port`; returns once the server
    /// has answered `200` with an event stream, so every message stored from then on is
    /// sent to it.
    pub(crate) fn open(port: u16) -> Result<Subscriber> {
        let mut stream = connect(port)?;
        write!(
            stream,
            "GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
             Accept: text/event-stream\r\n\r\n"
        )?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let head = read_head(&mut reader).context("reading the answer to GET /api/v1/events")?;
        if head.status != 200 {
            bail!("GET /api/v1/events answered {}", head.status);
        }
        if !head
            .header("content-type")
            .is_some_and(|v| v.starts_with("text/event-stream"))
        {
            bail!("GET /api/v1/events did not answer with an event stream");
        }
        // Between runs the stream is idle for as long as the other cases take; it ends when
        // the subscriber is dropped (the socket shut down) or the server goes.
        stream.set_read_timeout(None)?;
        let chunked = head.chunked();
        let shared: Shared = Arc::default();
        let thread = thread::Builder::new()
            .name("bench-inbox-subscriber".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || {
                    let why = match follow(reader, chunked, port, &shared) {
                        Ok(()) => "the server ended the event stream".to_owned(),
                        Err(error) => format!("{error:#}"),
                    };
                    lock(&shared).ended = Some(why);
                    shared.1.notify_all();
                }
            })?;
        Ok(Subscriber {
            stream,
            shared,
            thread: Some(thread),
        })
    }

    /// The message events seen so far.
    pub(crate) fn messages(&self) -> usize {
        lock(&self.shared).messages
    }

    /// How many times the inbox was loaded so far.
    pub(crate) fn inbox_loads(&self) -> usize {
        lock(&self.shared).inbox_loads
    }

    /// Waits (at most `timeout`) until `before + sent` message events in all have been seen,
    /// and fails unless exactly that many were, the stream still runs and the server never
    /// told the subscriber it fell behind. Returns when the last message event came.
    pub(crate) fn wait_for(
        &self,
        before: usize,
        sent: usize,
        timeout: Duration,
    ) -> Result<Instant> {
        let expected = before + sent;
        let (seen, _) = self
            .shared
            .1
            .wait_timeout_while(lock(&self.shared), timeout, |seen| {
                seen.messages < expected && seen.ended.is_none() && seen.resyncs == 0
            })
            .unwrap_or_else(PoisonError::into_inner);
        let got = seen.messages.saturating_sub(before);
        if seen.resyncs > 0 {
            bail!(
                "the subscriber fell behind: the server sent it `resync` (it drops the events \
                 of a subscriber that is more than 1024 behind) after {got} of the {sent} \
                 message events of this run"
            );
        }
        if let Some(why) = &seen.ended {
            bail!(
                "the subscriber's event stream ended after {got} of {sent} message events: {why}"
            );
        }
        if got != sent {
            bail!(
                "the subscriber saw {got} message events for the {sent} messages of this run \
                 (waited {timeout:?} after raw-client exited)"
            );
        }
        seen.last_message
            .context("the subscriber saw no message event at all")
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        // The thread blocks in a read of this socket: shutting it down ends the read.
        let _ = self.stream.shutdown(Shutdown::Both);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads the event stream until it ends, counting message events and loading the inbox on
/// every [`RELOAD_EVERY`]th.
fn follow(
    mut reader: BufReader<TcpStream>,
    chunked: bool,
    port: u16,
    shared: &Shared,
) -> Result<()> {
    let mut events = EventStream::default();
    loop {
        let bytes = if chunked {
            match read_chunk(&mut reader)? {
                Some(chunk) => chunk,
                None => return Ok(()),
            }
        } else {
            let buffered = reader.fill_buf()?.to_vec();
            if buffered.is_empty() {
                return Ok(());
            }
            reader.consume(buffered.len());
            buffered
        };
        for event in events.feed(&bytes)? {
            match event.kind.as_str() {
                "message" => {
                    // As the page does before it adds the row: the summary must parse.
                    let summary: Value = serde_json::from_str(&event.data).with_context(|| {
                        format!("a message event's data is not JSON: {}", event.data)
                    })?;
                    if !summary.get("id").is_some_and(Value::is_string) {
                        bail!("a message event without an id: {}", event.data);
                    }
                    let count = {
                        let mut seen = lock(shared);
                        seen.messages += 1;
                        seen.last_message = Some(Instant::now());
                        seen.messages
                    };
                    shared.1.notify_all();
                    if (count - 1) % RELOAD_EVERY == 0 {
                        load_inbox(port)?;
                        lock(shared).inbox_loads += 1;
                    }
                }
                "resync" => {
                    lock(shared).resyncs += 1;
                    shared.1.notify_all();
                }
                _ => {}
            }
        }
    }
}

/// What the inbox page asks for when it is opened (besides the event stream).
fn load_inbox(port: u16) -> Result<()> {
    let server = get_json(port, "/api/v1/server")?;
    if !server.is_object() {
        bail!("GET /api/v1/server did not answer with an object: {server}");
    }
    let list = get_json(port, INBOX)?;
    let listed = list.get("messages").and_then(Value::as_array).map(Vec::len);
    let total = list.get("total").and_then(Value::as_u64);
    if listed.is_none_or(|n| n > 50) || total.is_none() {
        bail!("GET {INBOX} did not answer with a page of at most 50 messages and a total");
    }
    Ok(())
}

fn connect(port: u16) -> Result<TcpStream> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let stream = TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT)
        .with_context(|| format!("connecting to the inbox on {addr}"))?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// One GET on a connection of its own, its JSON answer.
fn get_json(port: u16, path: &str) -> Result<Value> {
    let mut stream = connect(port)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\n\
         Connection: close\r\n\r\n"
    )?;
    let mut reader = BufReader::new(stream);
    let head =
        read_head(&mut reader).with_context(|| format!("reading the answer to GET {path}"))?;
    let body =
        read_body(&mut reader, &head).with_context(|| format!("reading the body of GET {path}"))?;
    if head.status != 200 {
        bail!(
            "GET {path} answered {}: {}",
            head.status,
            String::from_utf8_lossy(&body)
        );
    }
    serde_json::from_slice(&body).with_context(|| format!("the answer to GET {path} is not JSON"))
}

/// A response's status and header fields (names in lower case).
#[derive(Debug)]
struct Head {
    status: u16,
    fields: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }
}

/// One line without its line end; an error at the end of the input or past [`MAX_LINE`].
fn read_line(reader: &mut impl BufRead) -> Result<String> {
    let mut line = String::new();
    reader.by_ref().take(MAX_LINE).read_line(&mut line)?;
    if line.is_empty() {
        bail!("the server closed the connection");
    }
    let Some(line) = line.strip_suffix('\n') else {
        bail!("a line longer than {MAX_LINE} octets, or cut short");
    };
    Ok(line.strip_suffix('\r').unwrap_or(line).to_owned())
}

fn read_head(reader: &mut impl BufRead) -> Result<Head> {
    let status_line = read_line(reader)?;
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("not an HTTP/1 status line: {status_line:?}"))?;
    let mut fields = Vec::new();
    loop {
        let line = read_line(reader)?;
        if line.is_empty() {
            return Ok(Head { status, fields });
        }
        let Some((name, value)) = line.split_once(':') else {
            bail!("not a header field: {line:?}");
        };
        fields.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        if fields.len() > 100 {
            bail!("more than 100 header fields");
        }
    }
}

/// The next chunk of a chunked body (RFC 9112 §7.1); `None` after the last.
fn read_chunk(reader: &mut impl BufRead) -> Result<Option<Vec<u8>>> {
    let line = read_line(reader)?;
    let digits = line.split(';').next().unwrap_or_default().trim();
    let size =
        usize::from_str_radix(digits, 16).with_context(|| format!("not a chunk size: {line:?}"))?;
    if size == 0 {
        // The trailer section, up to its empty line.
        while !read_line(reader)?.is_empty() {}
        return Ok(None);
    }
    if size > MAX_BODY {
        bail!("a chunk of {size} octets");
    }
    let mut chunk = vec![0; size];
    reader.read_exact(&mut chunk)?;
    if !read_line(reader)?.is_empty() {
        bail!("a chunk not followed by its CRLF");
    }
    Ok(Some(chunk))
}

fn read_body(reader: &mut impl BufRead, head: &Head) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    if head.chunked() {
        while let Some(chunk) = read_chunk(reader)? {
            body.extend(chunk);
            if body.len() > MAX_BODY {
                bail!("a body of more than {MAX_BODY} octets");
            }
        }
    } else if let Some(length) = head.header("content-length") {
        let length: usize = length
            .parse()
            .with_context(|| format!("not a Content-Length: {length:?}"))?;
        if length > MAX_BODY {
            bail!("a body of {length} octets");
        }
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
    } else {
        reader.take(MAX_BODY as u64).read_to_end(&mut body)?;
    }
    Ok(body)
}

/// One dispatched event of a stream.
#[derive(Debug, PartialEq)]
struct Event {
    kind: String,
    data: String,
}

/// The event-stream parser of the HTML standard (§9.2.6), fed the body in any pieces:
/// `event:` and `data:` fields, comments (`:`) ignored, an empty line dispatches, an event
/// without data is not dispatched, and one without `event:` is a `message`.
#[derive(Debug, Default)]
struct EventStream {
    line: Vec<u8>,
    kind: String,
    data: Option<String>,
}

impl EventStream {
    fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Event>> {
        let mut events = Vec::new();
        for &byte in bytes {
            if byte != b'\n' {
                self.line.push(byte);
                if self.line.len() as u64 > MAX_LINE {
                    bail!("an event-stream line longer than {MAX_LINE} octets");
                }
                continue;
            }
            let mut line = std::mem::take(&mut self.line);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8(line).context("an event-stream line not in UTF-8")?;
            if line.is_empty() {
                let kind = std::mem::take(&mut self.kind);
                if let Some(data) = self.data.take() {
                    let kind = if kind.is_empty() {
                        "message".into()
                    } else {
                        kind
                    };
                    events.push(Event { kind, data });
                }
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((&line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => value.clone_into(&mut self.kind),
                "data" => match &mut self.data {
                    Some(data) => {
                        data.push('\n');
                        data.push_str(value);
                    }
                    None => self.data = Some(value.to_owned()),
                },
                _ => {}
            }
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = ":\n\nevent: message\ndata: {\"id\":\"a\"}\n\nevent: session\r\n\
                          data: {}\r\n\r\nevent: resync\ndata:{}\n\ndata: one\ndata: two\n\n\
                          event: empty\n\n";

    fn events(pieces: &[&[u8]]) -> Vec<Event> {
        let mut stream = EventStream::default();
        let mut all = Vec::new();
        for piece in pieces {
            all.extend(stream.feed(piece).unwrap_or_default());
        }
        all
    }

    #[test]
    fn events_are_the_same_however_the_stream_is_cut() {
        let expected = [
            ("message", "{\"id\":\"a\"}"),
            ("session", "{}"),
            ("resync", "{}"),
            ("message", "one\ntwo"),
        ]
        .map(|(kind, data)| Event {
            kind: kind.into(),
            data: data.into(),
        });
        let bytes = STREAM.as_bytes();
        assert_eq!(events(&[bytes]), expected);
        for cut in 0..bytes.len() {
            let (a, b) = bytes.split_at(cut);
            assert_eq!(events(&[a, b]), expected, "cut at {cut}");
        }
    }

    #[test]
    fn chunked_bodies_are_decoded_across_lines() {
        let body = "7\r\nevent: \r\n1a;ext=1\r\nmessage\ndata: {\"id\":\"b\"}\n\n\r\n0\r\nX-Trailer: 1\r\n\r\n";
        let mut reader = body.as_bytes();
        let mut stream = EventStream::default();
        let mut seen = Vec::new();
        while let Some(chunk) = read_chunk(&mut reader).ok().flatten() {
            seen.extend(stream.feed(&chunk).unwrap_or_default());
        }
        assert!(reader.is_empty());
        assert_eq!(
            seen,
            [Event {
                kind: "message".into(),
                data: "{\"id\":\"b\"}".into()
            }]
        );
        for bad in ["x\r\n", "3\r\nabcX\r\n", "3\r\nab"] {
            assert!(read_chunk(&mut bad.as_bytes()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn heads_and_bodies() -> Result<()> {
        let answer =
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 2\r\n\r\n{}";
        let mut reader = answer.as_bytes();
        let head = read_head(&mut reader)?;
        assert_eq!(head.status, 200);
        assert_eq!(head.header("content-type"), Some("application/json"));
        assert!(!head.chunked());
        assert_eq!(read_body(&mut reader, &head)?, b"{}");
        let chunked =
            "HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nno\r\n0\r\n\r\n";
        let mut reader = chunked.as_bytes();
        let head = read_head(&mut reader)?;
        assert_eq!(
            (head.status, read_body(&mut reader, &head)?),
            (403, b"no".to_vec())
        );
        for bad in [
            "SMTP 220 hi\r\n\r\n",
            "HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            "HTTP/1.1 200 OK\r\n",
        ] {
            assert!(read_head(&mut bad.as_bytes()).is_err(), "{bad:?}");
        }
        Ok(())
    }
}
