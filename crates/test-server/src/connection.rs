//! One client connection: plaintext or TLS transport, a bounded line reader with idle and
//! session timeouts, and an output buffer flushed only when the server needs more input.
//!
//! Flushing only before a read is what makes PIPELINING work (RFC 2920 §3.2): replies to
//! every complete command already received are produced first and leave in one write.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use crate::config::Pacing;

/// Why no line could be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The client closed the connection (or it was shut down).
    Closed,
    /// No byte arrived within the idle timeout.
    IdleTimeout,
    /// The whole-session deadline passed.
    SessionTimeout,
    /// Any other I/O or TLS failure.
    Io(io::Error),
}

/// One line as read, with its line ending (LF, possibly preceded by CR).
#[derive(Debug)]
pub(crate) enum Line {
    /// A line within the length limit.
    Complete(Vec<u8>),
    /// A line over the limit: the first `limit` octets, the full length, and whether it
    /// ended with CRLF. The rest was read and discarded, so the reader is in sync again at
    /// the next line.
    TooLong {
        kept: Vec<u8>,
        length: usize,
        crlf: bool,
    },
}

enum Transport {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Transport {
    fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Plain(tcp) => tcp,
            Transport::Tls(stream) => &stream.sock,
        }
    }
}

/// When a client line arrived, relative to the server's reply to the line before it: what
/// the lab grades `waits-for-replies`, `reads-multiline` and `waits-for-354` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// After the whole previous reply was written.
    InTurn,
    /// Before any of the previous reply was written.
    BeforeReply,
    /// While the previous reply was being written in pieces (see [`Pacing`]).
    DuringReply,
}

/// A client connection with buffered input and output.
pub(crate) struct Connection {
    transport: Transport,
    input: Vec<u8>,
    consumed: usize,
    output: Vec<u8>,
    idle: Duration,
    deadline: Instant,
    pacing: Pacing,
    /// Octets received so far, in all.
    received: u64,
    /// `received` just before the first and just before the last piece of the latest
    /// reply was written.
    reply_marks: (u64, u64),
    /// Where in the input (counted as `received` is) the latest line began.
    line_start: u64,
    /// The client closed its side while a reply was held back.
    closed_early: bool,
}

const READ_CHUNK: usize = 16 * 1024;

impl Connection {
    pub(crate) fn new(tcp: TcpStream, idle: Duration, deadline: Instant, pacing: Pacing) -> Self {
        // A client that never reads must not block a writing session forever either.
        let _ = tcp.set_write_timeout(Some(idle.max(Duration::from_millis(1))));
        let _ = tcp.set_nodelay(true);
        Self {
            transport: Transport::Plain(tcp),
            input: Vec::new(),
            consumed: 0,
            output: Vec::new(),
            idle,
            deadline,
            pacing,
            received: 0,
            reply_marks: (0, 0),
            line_start: 0,
            closed_early: false,
        }
    }

    /// When the line last returned by [`Connection::read_line`] began to arrive, relative
    /// to the reply to the line before it. Asked before any reply to the line is queued.
    pub(crate) fn timing(&self) -> Timing {
        let (first, last) = self.reply_marks;
        if !self.output.is_empty() || self.line_start < first {
            Timing::BeforeReply
        } else if self.line_start < last {
            Timing::DuringReply
        } else {
            Timing::InTurn
        }
    }

    /// Whether the client closed the connection while a reply to it was held back.
    pub(crate) fn closed_early(&self) -> bool {
        self.closed_early
    }

    pub(crate) fn is_tls(&self) -> bool {
        matches!(self.transport, Transport::Tls(_))
    }

    /// Queues bytes to send; they leave at the next [`Connection::flush`].
    pub(crate) fn send(&mut self, bytes: &[u8]) {
        self.output.extend_from_slice(bytes);
    }

    pub(crate) fn flush(&mut self) -> io::Result<()> {
        if self.output.is_empty() {
            return Ok(());
        }
        let output = std::mem::take(&mut self.output);
        let pieces = self.pacing.pieces(&output);
        self.reply_marks.0 = self.received;
        for (i, piece) in pieces.iter().enumerate() {
            if i > 0 {
                // Whatever arrives now was sent before the reply was complete.
                self.listen_for(self.pacing.pause);
            }
            // Before the last piece written (or the one that could not be).
            self.reply_marks.1 = self.received;
            self.write(piece)?;
        }
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.transport {
            Transport::Plain(tcp) => {
                tcp.write_all(bytes)?;
                tcp.flush()
            }
            Transport::Tls(stream) => {
                stream.write_all(bytes)?;
                stream.flush()
            }
        }
    }

    /// Reads whatever the client sends within `wait`, into the input buffer, without
    /// failing: a closed connection or an error shows again at the next real read.
    fn listen_for(&mut self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut chunk = [0u8; READ_CHUNK];
        while let Some(left) = until
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        {
            if self.transport.tcp().set_read_timeout(Some(left)).is_err() {
                return;
            }
            let result = match &mut self.transport {
                Transport::Plain(tcp) => tcp.read(&mut chunk),
                Transport::Tls(stream) => stream.read(&mut chunk),
            };
            match result {
                Ok(0) => {
                    self.closed_early = true;
                    return;
                }
                Ok(n) => self.take_in(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // A TLS peer that closes without close_notify reads as an error.
                    self.closed_early |= matches!(classify(e, self.deadline), ReadError::Closed);
                    return;
                }
            }
        }
    }

    fn take_in(&mut self, bytes: &[u8]) {
        self.input.extend_from_slice(bytes);
        self.received += bytes.len() as u64;
    }

    /// The bytes received but not yet consumed.
    pub(crate) fn buffered(&self) -> &[u8] {
        &self.input[self.consumed..]
    }

    /// Removes and returns every buffered byte.
    pub(crate) fn take_buffered(&mut self) -> Vec<u8> {
        let rest = self.buffered().to_vec();
        self.input.clear();
        self.consumed = 0;
        rest
    }

    fn consume(&mut self, n: usize) {
        self.consumed += n;
        if self.consumed == self.input.len() {
            self.input.clear();
            self.consumed = 0;
        } else if self.consumed > 64 * 1024 {
            self.input.drain(..self.consumed);
            self.consumed = 0;
        }
    }

    /// Reads one line of at most `limit` octets including its LF; a longer line is
    /// reported as [`Line::TooLong`] after reading (and dropping) the rest of it.
    pub(crate) fn read_line(&mut self, limit: usize) -> Result<Line, ReadError> {
        self.line_start = self.received - self.buffered().len() as u64;
        let mut scanned = 0;
        // Some((kept prefix, octets dropped so far, last octet dropped)) once the line is
        // over the limit.
        let mut overflow: Option<(Vec<u8>, usize, u8)> = None;
        loop {
            let available = self.buffered();
            if let Some(i) = available[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + i + 1;
                let before_lf = |last: u8| if end >= 2 { available[end - 2] } else { last };
                let line = match overflow {
                    Some((kept, dropped, last)) => Line::TooLong {
                        kept,
                        length: dropped + end,
                        crlf: before_lf(last) == b'\r',
                    },
                    None if end <= limit => Line::Complete(available[..end].to_vec()),
                    None => Line::TooLong {
                        kept: available[..limit].to_vec(),
                        length: end,
                        crlf: before_lf(0) == b'\r',
                    },
                };
                self.consume(end);
                return Ok(line);
            }
            let length = available.len();
            let last = available.last().copied().unwrap_or(0);
            if let Some((_, dropped, last_dropped)) = &mut overflow {
                *dropped += length;
                if length > 0 {
                    *last_dropped = last;
                }
                self.consume(length);
                scanned = 0;
            } else if length > limit {
                overflow = Some((available[..limit].to_vec(), length, last));
                self.consume(length);
                scanned = 0;
            } else {
                scanned = length;
            }
            self.fill()?;
        }
    }

    /// Reads at most `max` octets as they are, not as lines (a BDAT chunk, RFC 3030 §2):
    /// those already received, or, when none is, whatever the next read brings. They are
    /// appended to `keep`, or dropped when it is `None`; returns how many were read (at
    /// least one when `max` is not 0). The caller asks again for the rest, so a chunk of
    /// any size passes through a buffer of [`READ_CHUNK`] octets.
    pub(crate) fn read_octets(
        &mut self,
        max: u64,
        keep: Option<&mut Vec<u8>>,
    ) -> Result<usize, ReadError> {
        if max == 0 {
            return Ok(0);
        }
        if self.buffered().is_empty() {
            self.fill()?;
        }
        let available = self.buffered();
        let n = usize::try_from(max).map_or(available.len(), |max| max.min(available.len()));
        if let Some(keep) = keep {
            keep.extend_from_slice(&available[..n]);
        }
        self.consume(n);
        Ok(n)
    }

    /// Flushes pending replies (held back first by the lab's [`Pacing::hold`], to see
    /// whether the client waits for them), then waits for more input.
    fn fill(&mut self) -> Result<(), ReadError> {
        let before = self.received;
        if !self.output.is_empty() && !self.pacing.hold.is_zero() {
            self.listen_for(self.pacing.hold);
            if self.received > before {
                return Ok(());
            }
        }
        let flushed = self.flush();
        if self.received > before {
            // Lines came while the reply was written in pieces: they are read first, and
            // a failed write shows again at the next one.
            return Ok(());
        }
        flushed.map_err(write_failed)?;
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            let now = Instant::now();
            let Some(left) = self
                .deadline
                .checked_duration_since(now)
                .filter(|d| !d.is_zero())
            else {
                return Err(ReadError::SessionTimeout);
            };
            let wait = self.idle.min(left).max(Duration::from_millis(1));
            self.transport
                .tcp()
                .set_read_timeout(Some(wait))
                .map_err(ReadError::Io)?;
            let result = match &mut self.transport {
                Transport::Plain(tcp) => tcp.read(&mut chunk),
                Transport::Tls(stream) => stream.read(&mut chunk),
            };
            match result {
                Ok(0) => return Err(ReadError::Closed),
                Ok(n) => {
                    self.take_in(&chunk[..n]);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(classify(e, self.deadline)),
            }
        }
    }

    /// Runs the TLS handshake as the server and returns "version, cipher suite". Any
    /// buffered plaintext must have been taken (discarded) by the caller first.
    pub(crate) fn start_tls(&mut self, config: Arc<ServerConfig>) -> Result<String, ReadError> {
        self.flush().map_err(write_failed)?;
        debug_assert!(self.buffered().is_empty());
        let Transport::Plain(tcp) = &self.transport else {
            return Err(ReadError::Io(io::Error::other("TLS is already active")));
        };
        let mut tcp = tcp.try_clone().map_err(ReadError::Io)?;
        let mut tls =
            ServerConnection::new(config).map_err(|e| ReadError::Io(io::Error::other(e)))?;
        while tls.is_handshaking() {
            let left = self
                .deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
                .ok_or(ReadError::SessionTimeout)?;
            tcp.set_read_timeout(Some(self.idle.min(left).max(Duration::from_millis(1))))
                .map_err(ReadError::Io)?;
            match tls.complete_io(&mut tcp) {
                Ok((0, 0)) if tls.is_handshaking() => return Err(ReadError::Closed),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(classify(e, self.deadline)),
            }
        }
        let detail = format!(
            "{}, {}",
            tls.protocol_version()
                .map_or_else(|| "unknown version".to_owned(), |v| format!("{v:?}")),
            tls.negotiated_cipher_suite().map_or_else(
                || "unknown cipher suite".to_owned(),
                |s| format!("{:?}", s.suite())
            )
        );
        self.transport = Transport::Tls(Box::new(StreamOwned::new(tls, tcp)));
        Ok(detail)
    }

    /// Sends any pending output, then closes both directions (TLS with close_notify).
    pub(crate) fn close(&mut self) {
        if !self.output.is_empty() && !self.pacing.hold.is_zero() {
            // The last reply (such as QUIT's 221) is held back too: a client that closes
            // meanwhile did not wait for it.
            self.listen_for(self.pacing.hold);
        }
        let _ = self.flush();
        if let Transport::Tls(stream) = &mut self.transport {
            stream.conn.send_close_notify();
            let _ = stream.conn.complete_io(&mut stream.sock);
        }
        let _ = self.transport.tcp().shutdown(Shutdown::Both);
    }
}

/// Why replies could not be written: a client that went away, or one that stopped reading
/// (the write timeout is the idle timeout).
fn write_failed(e: io::Error) -> ReadError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ReadError::Io(io::Error::new(
            e.kind(),
            "the client did not read the server's replies within the idle timeout",
        )),
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => ReadError::Closed,
        _ => ReadError::Io(e),
    }
}

fn classify(e: io::Error, deadline: Instant) -> ReadError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            if Instant::now() >= deadline {
                ReadError::SessionTimeout
            } else {
                ReadError::IdleTimeout
            }
        }
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => ReadError::Closed,
        _ => ReadError::Io(e),
    }
}
