//! One SMTP session, server side: the state machine of RFC 5321 with STARTTLS (RFC 3207),
//! AUTH (RFC 4954), PIPELINING (RFC 2920), SIZE (RFC 1870), 8BITMIME, SMTPUTF8, CHUNKING
//! and BINARYMIME (RFC 3030), DSN's parameters (RFC 3461) and REQUIRETLS (RFC 8689), the
//! DATA reader with its smuggling defence, the BDAT reader, storage and fault injection.
//!
//! Every reply text is fixed (no times, no random ids) so that client transcripts can be
//! snapshotted.

use std::net::{SocketAddr, TcpStream};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::rand::SecureRandom as _;
use transcript::{RenderOptions, Transcript};

use crate::command::{self, Command, MAX_ENVID, Parameter, Refusal};
use crate::config::Voice;
use crate::config::{LineEndings, Stage};
use crate::connection::{Connection, Line, ReadError, Timing};
use crate::ending::{Phase, SessionEnd};
use crate::sasl::{self, Mechanism};
use crate::server::{Event, Runtime, Shared};
use crate::store::StoredEnvelope;

/// RFC 5321 §4.5.3.1.4: a command line is at most 512 octets including CRLF.
const COMMAND_LINE_LIMIT: usize = 512;
/// RFC 4954 §4: an AUTH command line or SASL response may be up to 12288 octets.
const AUTH_LINE_LIMIT: usize = 12288;
/// RFC 5321 §4.5.3.1.6: a text line is at most 1000 octets including CRLF.
const TEXT_LINE_LIMIT: usize = 1000;

/// A finished connection, as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The session's id, such as `000001`: its files are `sessions/{id}.transcript` and
    /// `sessions/{id}.json` in the store directory. Ids count connections in the order
    /// they were accepted and continue after those already in the directory.
    pub id: String,
    /// The whole connection: every line received and sent, TLS events and notes.
    pub transcript: Transcript,
    /// Only what happened after the TLS handshake (STARTTLS or implicit), or the whole
    /// connection if TLS was never used.
    pub after_tls: Transcript,
    /// The ids of the messages stored during this connection, in order.
    pub message_ids: Vec<String>,
    /// The client's address and port.
    pub peer: String,
    /// Why the session ended.
    pub reason: SessionEnd,
    /// Whether TLS was established (STARTTLS or implicit TLS).
    pub tls: bool,
    /// When the connection was accepted.
    pub started: SystemTime,
    /// How long the connection lasted.
    pub duration: Duration,
    /// Where the session's redacted transcript was saved (`sessions/{id}.transcript` in the
    /// store directory), or why it could not be.
    pub transcript_file: Result<PathBuf, String>,
    /// With [`Config::record_timings`](crate::Config::record_timings): for client lines of
    /// `transcript` (by index in [`Transcript::events`]) — commands, SASL responses, the
    /// first line of message data — when each arrived relative to the reply before it.
    pub timings: Vec<(usize, Timing)>,
    /// The client closed the connection while a reply to it was still held back (only
    /// seen with [`Pacing::hold`](crate::Pacing::hold)): it did not wait for that reply.
    pub closed_before_reply: bool,
}

/// Records into the whole transcript and, once TLS is up, into the after-TLS one too.
#[derive(Default)]
pub(crate) struct Recorder {
    whole: Transcript,
    after_tls: Option<Transcript>,
    /// Where the session's first transaction began (its MAIL line): what comes before is the
    /// set-up every message's `.transcript` starts with.
    first_transaction: Option<usize>,
    /// Where the dialogue after the last stored message begins, and how many were stored.
    after_stored: Option<(usize, usize)>,
    started: Option<(SystemTime, Instant)>,
    /// The ids of the messages stored so far: kept here, outside the dialogue, so that a
    /// session that panics still lists what it stored.
    message_ids: Vec<String>,
    timings: Vec<(usize, Timing)>,
    closed_before_reply: bool,
}

impl Recorder {
    pub(crate) fn new() -> Self {
        let mut recorder = Self {
            started: Some((SystemTime::now(), Instant::now())),
            ..Self::default()
        };
        // The peer's ephemeral port stays out of the transcript so it can be snapshotted;
        // it is in the envelope and in `Session::peer`.
        recorder.whole.note("client connected");
        recorder
    }

    fn each(&mut self, f: impl Fn(&mut Transcript)) {
        f(&mut self.whole);
        if let Some(after) = &mut self.after_tls {
            f(after);
        }
    }

    pub(crate) fn client(&mut self, bytes: &[u8]) {
        self.each(|t| t.client(bytes));
    }

    /// Records a client line with when it arrived (`None`: not recording timings).
    fn client_timed(&mut self, bytes: &[u8], timing: Option<Timing>) {
        let at = self.whole.len();
        self.client(bytes);
        if let Some(timing) = timing
            && self.whole.len() > at
        {
            self.timings.push((at, timing));
        }
    }

    pub(crate) fn server(&mut self, bytes: &[u8]) {
        self.each(|t| t.server(bytes));
    }

    pub(crate) fn note(&mut self, text: &str) {
        self.each(|t| t.note(text));
    }

    /// Records the octets of a BDAT chunk by their count, in the transcript crate's form
    /// (the clients record theirs the same way): they are not lines and may be binary, so
    /// they never enter the transcript as client lines, where they would break its lines
    /// and the redaction that follows them.
    fn chunk(&mut self, octets: u64) {
        self.each(|t| t.chunk_data(octets));
    }

    /// Marks the MAIL line just recorded as the start of a transaction.
    fn transaction_started(&mut self) {
        if self.first_transaction.is_none() {
            self.first_transaction = Some(self.whole.len().saturating_sub(1));
        }
    }

    /// Marks the end of a stored message (after its `250`).
    fn message_stored(&mut self, id: String) {
        let stored = self.after_stored.map_or(0, |(_, stored)| stored);
        self.after_stored = Some((self.whole.len(), stored + 1));
        self.message_ids.push(id);
    }

    /// The `.transcript` of the message being stored: the session so far, except that the
    /// transactions of messages stored earlier in the session are left out (with a note),
    /// so that a long session does not write ever longer files — a load run of N messages
    /// on one connection would otherwise write O(N²) bytes.
    fn message_transcript(&self) -> String {
        let options = RenderOptions::default();
        let (Some(head), Some((tail, stored))) = (self.first_transaction, self.after_stored) else {
            return self.whole.render_text(options);
        };
        let mut excerpt = self.whole.slice(0..head);
        excerpt.note(format!(
            "the {stored} earlier message(s) of this session are not repeated here"
        ));
        excerpt.extend(self.whole.slice(tail..self.whole.len()));
        excerpt.render_text(options)
    }

    fn tls_established(&mut self, detail: String) {
        self.whole.tls_established(Some(detail));
        self.after_tls = Some(Transcript::new());
    }

    /// The finished session. Its `transcript_file` is filled in when it has been saved.
    pub(crate) fn finish(mut self, id: String, peer: String, reason: SessionEnd) -> Session {
        self.each(Transcript::closed);
        let tls = self.after_tls.is_some();
        let after_tls = self.after_tls.unwrap_or_else(|| self.whole.clone());
        let (started, duration) = self
            .started
            .map_or((SystemTime::now(), Duration::ZERO), |(started, clock)| {
                (started, clock.elapsed())
            });
        Session {
            id,
            transcript: self.whole,
            after_tls,
            message_ids: self.message_ids,
            peer,
            reason,
            tls,
            started,
            duration,
            transcript_file: Err("not saved yet".to_owned()),
            timings: self.timings,
            closed_before_reply: self.closed_before_reply,
        }
    }
}

/// What the dialogue does after a command.
enum Flow {
    Continue,
    /// End the session, for this reason.
    Close(SessionEnd),
}

struct Transaction {
    from: String,
    parameters: Vec<String>,
    smtputf8: bool,
    /// MAIL said `BODY=BINARYMIME` (RFC 3030 §3): the message may come only by BDAT.
    binarymime: bool,
    recipients: Vec<String>,
    /// The RCPT parameters of each accepted recipient, as sent, in the order of
    /// `recipients`.
    rcpt_parameters: Vec<Vec<String>>,
    /// The BDAT chunks received so far, once the first one has come (RFC 3030 §2).
    chunks: Option<Chunks>,
}

/// The chunks of one BDAT transaction: their octets, concatenated as received, and their
/// sizes.
#[derive(Default)]
struct Chunks {
    data: Vec<u8>,
    sizes: Vec<u64>,
}

/// The state of one session.
struct Dialogue<'a> {
    shared: &'a Shared,
    /// The faults and AUTH mechanisms current when the session started.
    runtime: Arc<Runtime>,
    connection: Connection,
    recorder: &'a mut Recorder,
    peer: SocketAddr,
    /// The EHLO or HELO name, and whether it was EHLO (ESMTP).
    helo: Option<(String, bool)>,
    auth_user: Option<String>,
    transaction: Option<Transaction>,
    /// A BDAT chunk failed: the transaction is over, and the chunks a pipelining client
    /// sent after it are read and refused until RSET, MAIL or a `LAST` chunk
    /// (RFC 3030 §2).
    chunks_failed: bool,
}

/// Serves one accepted connection to its end and returns why it ended.
pub(crate) fn serve(
    shared: &Shared,
    tcp: TcpStream,
    peer: SocketAddr,
    implicit_tls: bool,
    recorder: &mut Recorder,
) -> SessionEnd {
    let config = &shared.config;
    let deadline = Instant::now() + config.session_timeout;
    let mut session = Dialogue {
        shared,
        runtime: shared.runtime(),
        connection: Connection::new(tcp, config.idle_timeout, deadline, config.pacing),
        recorder,
        peer,
        helo: None,
        auth_user: None,
        transaction: None,
        chunks_failed: false,
    };
    let end = match implicit_tls {
        true => session.handshake().err(),
        false => None,
    };
    let end = end.unwrap_or_else(|| session.dialogue());
    session.connection.close();
    if session.connection.closed_early() {
        session.recorder.closed_before_reply = true;
        session
            .recorder
            .note("the client closed the connection before the server's last reply was written");
    }
    end
}

impl Dialogue<'_> {
    fn hostname(&self) -> &str {
        &self.shared.config.hostname
    }

    /// When the line just read arrived, if the lab asked for timings.
    fn timing(&self) -> Option<Timing> {
        self.shared
            .config
            .record_timings
            .then(|| self.connection.timing())
    }

    /// Gmail's wording of a reply, where the Gmail voice has one; test-server's otherwise.
    fn voiced(&self, ours: &str, gmail: &str) -> String {
        match self.shared.config.voice {
            Voice::TestServer => ours.to_owned(),
            Voice::Gmail => gmail.to_owned(),
        }
    }

    /// Queues a one-line reply such as `250 2.0.0 Ok`.
    fn reply(&mut self, text: &str) {
        let line = format!("{text}\r\n");
        self.recorder.server(line.as_bytes());
        self.connection.send(line.as_bytes());
    }

    /// Queues a multiline reply: `code-line` ... `code line`.
    fn reply_lines(&mut self, code: u16, lines: &[String]) {
        let mut out = String::new();
        for (i, line) in lines.iter().enumerate() {
            let separator = if i + 1 == lines.len() { ' ' } else { '-' };
            out.push_str(&format!("{code}{separator}{line}\r\n"));
        }
        self.recorder.server(out.as_bytes());
        self.connection.send(out.as_bytes());
    }

    /// The `stall` fault: sleep before the reply at `stage` (still stopping with the
    /// server).
    fn stall(&mut self, stage: Stage) {
        let faults = &self.runtime.faults;
        if !faults.stall.iter().any(|(at, _)| *at == stage) {
            return;
        }
        let duration = faults.stall_before(stage);
        let parts: Vec<String> = faults
            .stall
            .iter()
            .filter(|(at, _)| *at == stage)
            .map(|(_, part)| format!("{} ms", part.as_millis()))
            .collect();
        // Several stalls at one stage add up; the note shows the sum and its parts.
        let sum = match parts.len() {
            1 => String::new(),
            _ => format!(" ({})", parts.join(" + ")),
        };
        self.recorder.note(&format!(
            "stalling {} ms before the {stage} reply{sum}",
            duration.as_millis()
        ));
        let until = Instant::now() + duration;
        while !self.shared.stop.load(Ordering::Relaxed) {
            let Some(left) = until.checked_duration_since(Instant::now()) else {
                break;
            };
            thread::sleep(left.min(Duration::from_millis(20)));
        }
    }

    /// Whether the server is being stopped (which also shuts the connection down).
    fn stopping(&self) -> bool {
        self.shared.stop.load(Ordering::SeqCst)
    }

    /// Reports why reading stopped and returns why the session ends: a timeout gets
    /// `421 4.4.2`, a vanished client a note. `during` is what the server was reading.
    fn read_failed(&mut self, error: ReadError, during: Phase) -> SessionEnd {
        let config = &self.shared.config;
        let (idle, limit) = (config.idle_timeout, config.session_timeout);
        let suffix = match during {
            Phase::Command => "",
            Phase::Auth => " during AUTH",
            Phase::Data => " during DATA; nothing stored",
            Phase::Chunk => " during a BDAT chunk; nothing stored",
        };
        // What arrived of a line that never ended is the clue a student needs most.
        let partial = self.connection.take_buffered();
        if !partial.is_empty() {
            self.recorder.client(&partial);
        }
        match error {
            _ if self.stopping() => {
                self.recorder
                    .note(&format!("the server is stopping{suffix}"));
                SessionEnd::ServerStopped
            }
            ReadError::IdleTimeout => {
                let text = format!(
                    "421 4.4.2 {} Idle timeout, closing connection",
                    self.hostname()
                );
                self.reply(&text);
                SessionEnd::IdleTimeout { after: idle }
            }
            ReadError::SessionTimeout => {
                let text = format!(
                    "421 4.4.2 {} Session time limit exceeded, closing connection",
                    self.hostname()
                );
                self.reply(&text);
                SessionEnd::SessionTimeout { limit }
            }
            ReadError::Closed => {
                self.recorder
                    .note(&format!("the client closed the connection{suffix}"));
                SessionEnd::ClientClosed { during }
            }
            ReadError::Io(e) => {
                self.recorder
                    .note(&format!("connection error{suffix}: {e}"));
                SessionEnd::ConnectionError {
                    error: e.to_string(),
                }
            }
        }
    }

    /// The implicit TLS handshake (RFC 8314) before the greeting.
    fn handshake(&mut self) -> Result<(), SessionEnd> {
        match self.connection.start_tls(self.shared.tls.clone()) {
            Ok(detail) => {
                self.recorder.tls_established(detail);
                Ok(())
            }
            Err(e) => Err(self.tls_failed(e)),
        }
    }

    fn tls_failed(&mut self, error: ReadError) -> SessionEnd {
        let why = match error {
            ReadError::Closed => "the client closed the connection".to_owned(),
            ReadError::IdleTimeout => "the client sent nothing within the idle timeout".to_owned(),
            ReadError::SessionTimeout => "the session time limit passed".to_owned(),
            ReadError::Io(e) => e.to_string(),
        };
        self.recorder.note(&format!("TLS handshake failed: {why}"));
        if self.stopping() {
            SessionEnd::ServerStopped
        } else {
            SessionEnd::TlsFailed { why }
        }
    }

    /// The greeting and the command loop, until the session ends; returns why it ended.
    fn dialogue(&mut self) -> SessionEnd {
        self.stall(Stage::Greeting);
        let ours = format!("220 {} ESMTP test-server ready", self.hostname());
        let greeting = self.voiced(&ours, &format!("220 smtp.gmail.com ESMTP {GMAIL_ID}"));
        self.reply(&greeting);
        loop {
            let line = match self.connection.read_line(AUTH_LINE_LIMIT) {
                Ok(line) => line,
                Err(e) => return self.read_failed(e, Phase::Command),
            };
            let flow = match line {
                Line::TooLong { kept, length, .. } => {
                    self.recorder.client(&kept);
                    self.recorder
                        .note(&format!("command line of {length} octets cut short here"));
                    self.reply("500 5.5.2 Line too long");
                    Flow::Continue
                }
                Line::Complete(bytes) => {
                    let timing = self.timing();
                    self.recorder.client_timed(&bytes, timing);
                    self.command_line(&bytes)
                }
            };
            if let Flow::Close(end) = flow {
                return end;
            }
        }
    }

    fn command_line(&mut self, bytes: &[u8]) -> Flow {
        let config = &self.shared.config;
        let body = match strip_line_ending(bytes) {
            (body, true) => body,
            (body, false)
                if config.line_endings == LineEndings::Permissive || config.bare_lf_commands =>
            {
                body
            }
            (_, false) => {
                self.reply("500 5.5.2 Command lines must end with CRLF");
                return Flow::Continue;
            }
        };
        let is_auth = body.len() >= 5 && body[..5].eq_ignore_ascii_case(b"AUTH ");
        if bytes.len() > COMMAND_LINE_LIMIT && !is_auth {
            self.reply("500 5.5.2 Line too long");
            return Flow::Continue;
        }
        if self.shared.config.strict_syntax && space_after_colon(body) {
            self.reply(
                "501 5.5.4 Syntax error: no space is allowed after FROM: or TO: (RFC 5321 4.1.2)",
            );
            return Flow::Continue;
        }
        match command::parse(body) {
            Ok(command) => self.command(command),
            Err(refusal) => {
                let text = match refusal {
                    Refusal::Unrecognized => "500 5.5.2 Command not recognized".to_owned(),
                    Refusal::BadBytes => {
                        "501 5.5.4 Invalid characters or UTF-8 in command".to_owned()
                    }
                    Refusal::Syntax(why) => format!("501 5.5.4 Syntax error: {why}"),
                    Refusal::BadPath { rcpt: false, why } => {
                        format!("501 5.1.7 Bad sender address: {why}")
                    }
                    Refusal::BadPath { rcpt: true, why } => {
                        format!("501 5.1.3 Bad recipient address: {why}")
                    }
                    Refusal::BadChunk(_) if self.runtime.faults.no_chunking => {
                        "502 5.5.1 BDAT not implemented".to_owned()
                    }
                    Refusal::BadChunk(why) => {
                        // The octets that follow cannot be told from commands, so the
                        // message could only be stored with a piece missing.
                        if self.transaction.take().is_some() || self.chunks_failed {
                            self.chunks_failed = true;
                            self.recorder
                                .note("the chunk's size is unknown, so the transaction fails");
                        }
                        format!("501 5.5.4 Syntax error: {why}")
                    }
                };
                self.reply(&text);
                Flow::Continue
            }
        }
    }

    fn command(&mut self, command: Command) -> Flow {
        match command {
            Command::Ehlo(name) => self.ehlo(name),
            Command::Helo(name) => {
                self.stall(Stage::Ehlo);
                self.transaction = None;
                self.chunks_failed = false;
                let text = format!("250 {} greets {name}", self.hostname());
                self.helo = Some((name, false));
                self.reply(&text);
            }
            Command::Mail { path, parameters } => self.mail(path, parameters),
            Command::Rcpt { path, parameters } => self.rcpt(path, parameters),
            Command::Data => return self.data(),
            Command::Bdat { size, last } => return self.bdat(size, last),
            Command::Rset => {
                // RFC 3030 §2: RSET also drops the chunks received so far.
                self.transaction = None;
                self.chunks_failed = false;
                self.reply("250 2.0.0 Ok");
            }
            Command::Noop => self.reply("250 2.0.0 Ok"),
            Command::Quit => {
                self.stall(Stage::Quit);
                let bye = self.voiced(
                    "221 2.0.0 Bye",
                    &format!("221 2.0.0 closing connection {GMAIL_ID}"),
                );
                self.reply(&bye);
                return Flow::Close(SessionEnd::Quit);
            }
            Command::Vrfy => {
                self.reply("252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery");
            }
            Command::Help => self.reply_lines(
                214,
                &[
                    "2.0.0 test-server: an ESMTP server for tests and teaching".to_owned(),
                    "2.0.0 Commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA BDAT RSET NOOP VRFY HELP QUIT"
                        .to_owned(),
                    "2.0.0 End of HELP info".to_owned(),
                ],
            ),
            Command::NotImplemented(verb) => {
                self.reply(&format!("502 5.5.1 {verb} not implemented"));
            }
            Command::StartTls => return self.starttls(),
            Command::Auth {
                mechanism,
                initial_response,
            } => return self.auth(mechanism, initial_response),
        }
        Flow::Continue
    }

    /// Whether there is anybody to authenticate: then AUTH is offered (once allowed) and
    /// required before MAIL.
    fn auth_enabled(&self) -> bool {
        !self.runtime.mechanisms.is_empty()
    }

    /// The mechanisms of the EHLO `AUTH` line, such as `PLAIN LOGIN`; `None` when AUTH is
    /// not offered on this connection (nobody to authenticate, or no TLS yet).
    fn auth_mechanisms(&self) -> Option<String> {
        let config = &self.shared.config;
        if !self.auth_enabled() || !(self.connection.is_tls() || config.auth_without_tls) {
            return None;
        }
        let names: Vec<&str> = self.runtime.mechanisms.iter().map(|m| m.name()).collect();
        Some(names.join(" "))
    }

    /// Whether the session began with EHLO, so that extensions were offered.
    fn esmtp(&self) -> bool {
        matches!(self.helo, Some((_, true)))
    }

    /// CHUNKING (RFC 3030 §2) is offered in both voices unless the `no-chunking` fault.
    fn offers_chunking(&self) -> bool {
        !self.runtime.faults.no_chunking
    }

    /// BINARYMIME (RFC 3030 §3) needs CHUNKING; a 7-bit server (`no-8bitmime`) does not
    /// take binary either, and Gmail does not offer it.
    fn offers_binarymime(&self) -> bool {
        let config = &self.shared.config;
        self.offers_chunking()
            && !self.runtime.faults.no_8bitmime
            && config.voice == Voice::TestServer
    }

    /// DSN (RFC 3461) and REQUIRETLS (RFC 8689): test-server's voice only, as Gmail does
    /// not offer them.
    fn offers_dsn(&self) -> bool {
        self.shared.config.voice == Voice::TestServer
    }

    fn ehlo(&mut self, name: String) {
        self.stall(Stage::Ehlo);
        self.transaction = None;
        self.chunks_failed = false;
        let config = &self.shared.config;
        let size = match config.size_limit {
            0 => "SIZE".to_owned(),
            limit => format!("SIZE {limit}"),
        };
        let starttls = (!self.connection.is_tls() && !self.runtime.faults.no_starttls)
            .then(|| "STARTTLS".to_owned());
        let auth = self.auth_mechanisms().map(|m| format!("AUTH {m}"));
        let pipelining = config.pipelining.then(|| "PIPELINING".to_owned());
        let eight_bit = (!self.runtime.faults.no_8bitmime).then(|| "8BITMIME".to_owned());
        let chunking = self.offers_chunking().then(|| "CHUNKING".to_owned());
        let binarymime = self.offers_binarymime().then(|| "BINARYMIME".to_owned());
        // RFC 8689 §2: REQUIRETLS may only be used on a TLS session, so it is offered only
        // once TLS is up (as Exim does).
        let requiretls = self.connection.is_tls().then(|| "REQUIRETLS".to_owned());
        let lines: Vec<String> = match config.voice {
            Voice::TestServer => [
                Some(format!("{} greets {name}", config.hostname)),
                pipelining,
                Some(size),
                eight_bit.clone(),
                binarymime,
                chunking.clone(),
                Some("SMTPUTF8".to_owned()),
                Some("ENHANCEDSTATUSCODES".to_owned()),
                Some("DSN".to_owned()),
                requiretls,
                starttls,
                auth,
            ]
            .into_iter()
            .flatten()
            .collect(),
            // Gmail's order, CHUNKING included (Gmail offers neither BINARYMIME, DSN nor
            // REQUIRETLS); its AUTH line is this server's (XOAUTH2 and OAUTHBEARER come
            // with tokens).
            Voice::Gmail => [
                Some(format!(
                    "smtp.gmail.com at your service, [{}]",
                    self.peer.ip()
                )),
                Some("SIZE 35882577".to_owned()),
                eight_bit,
                starttls,
                auth,
                Some("ENHANCEDSTATUSCODES".to_owned()),
                pipelining,
                chunking,
                Some("SMTPUTF8".to_owned()),
            ]
            .into_iter()
            .flatten()
            .collect(),
        };
        self.helo = Some((name, true));
        self.reply_lines(250, &lines);
    }

    fn mail(&mut self, path: String, parameters: Vec<Parameter>) {
        self.stall(Stage::Mail);
        // A new MAIL ends the refusal of a failed transaction's chunks (RFC 3030 §2).
        self.chunks_failed = false;
        let config = &self.shared.config;
        let Some((_, esmtp)) = &self.helo else {
            return self.reply("503 5.5.1 Send EHLO or HELO first");
        };
        let esmtp = *esmtp;
        if self.transaction.is_some() {
            return self.reply("503 5.5.1 Nested MAIL command");
        }
        if self.auth_enabled() && self.auth_user.is_none() {
            let text = if self.auth_mechanisms().is_none() {
                self.voiced(
                    "530 5.7.0 Must issue a STARTTLS command first",
                    &format!("530 5.7.0 Must issue a STARTTLS command first. {GMAIL_ID}"),
                )
            } else {
                self.voiced(
                    "530 5.7.0 Authentication required",
                    &format!(
                        "530-5.7.0 Authentication Required. For more information, go to\r\n\
                         530 5.7.0  https://support.google.com/mail/?p=WantAuthError {GMAIL_ID}"
                    ),
                )
            };
            return self.reply(&text);
        }
        if !esmtp && !parameters.is_empty() {
            return self.reply("555 5.5.4 MAIL parameters need EHLO");
        }
        if let Some(twice) = repeated(&parameters) {
            return self.reply(&format!("501 5.5.4 MAIL parameter {twice} is given twice"));
        }
        let (binary, dsn) = (self.offers_binarymime(), self.offers_dsn());
        let tls = self.connection.is_tls();
        let mut smtputf8 = false;
        let mut binarymime = false;
        for parameter in &parameters {
            let value = parameter.value.as_deref();
            match (parameter.keyword.as_str(), value) {
                ("BODY", Some(v)) if v.eq_ignore_ascii_case("7BIT") => {}
                ("BODY", Some(v))
                    if v.eq_ignore_ascii_case("8BITMIME") && self.runtime.faults.no_8bitmime =>
                {
                    return self.reply("555 5.5.4 BODY=8BITMIME is not offered here");
                }
                ("BODY", Some(v)) if v.eq_ignore_ascii_case("8BITMIME") => {}
                ("BODY", Some(v)) if v.eq_ignore_ascii_case("BINARYMIME") && !binary => {
                    return self.reply("555 5.5.4 BODY=BINARYMIME is not offered here");
                }
                ("BODY", Some(v)) if v.eq_ignore_ascii_case("BINARYMIME") => binarymime = true,
                ("BODY", _) => {
                    return self.reply("501 5.5.4 BODY must be 7BIT, 8BITMIME or BINARYMIME");
                }
                ("SMTPUTF8", None) => smtputf8 = true,
                ("SMTPUTF8", Some(_)) => {
                    return self.reply("501 5.5.4 SMTPUTF8 takes no value");
                }
                ("SIZE", Some(v))
                    if !v.is_empty() && v.len() <= 20 && v.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    let declared: u64 = v.parse().unwrap_or(u64::MAX);
                    if config.size_limit > 0 && declared > config.size_limit {
                        return self
                            .reply("552 5.3.4 Message size exceeds fixed maximum message size");
                    }
                }
                ("SIZE", _) => return self.reply("501 5.5.4 SIZE needs a number of octets"),
                ("RET", Some(v))
                    if dsn
                        && (v.eq_ignore_ascii_case("FULL") || v.eq_ignore_ascii_case("HDRS")) => {}
                ("RET", _) if dsn => return self.reply("501 5.5.4 RET must be FULL or HDRS"),
                ("ENVID", Some(v)) if dsn && v.len() <= MAX_ENVID && command::is_xtext(v) => {}
                ("ENVID", _) if dsn => {
                    return self.reply(
                        "501 5.5.4 ENVID must be xtext of at most 100 characters (RFC 3461 4.4)",
                    );
                }
                ("REQUIRETLS", Some(_)) if dsn => {
                    return self.reply("501 5.5.4 REQUIRETLS takes no value");
                }
                ("REQUIRETLS", None) if dsn && !tls => {
                    return self.reply(
                        "530 5.7.10 REQUIRETLS needs a TLS session: send STARTTLS first \
                         (RFC 8689 2)",
                    );
                }
                ("REQUIRETLS", None) if dsn => {}
                (keyword, _) => {
                    let text = format!("555 5.5.4 MAIL parameter {keyword} not recognized");
                    return self.reply(&text);
                }
            }
        }
        if !path.is_ascii() && !smtputf8 {
            return self.reply("553 5.6.7 Non-ASCII address requires SMTPUTF8");
        }
        if self.runtime.faults.tempfail_mail {
            return self.reply("451 4.3.0 Temporary failure, try again later");
        }
        self.transaction = Some(Transaction {
            from: path,
            parameters: parameters.into_iter().map(|p| p.text).collect(),
            smtputf8,
            binarymime,
            recipients: Vec::new(),
            rcpt_parameters: Vec::new(),
            chunks: None,
        });
        self.recorder.transaction_started();
        let ok = self.voiced("250 2.1.0 Ok", &format!("250 2.1.0 OK {GMAIL_ID}"));
        self.reply(&ok);
    }

    fn rcpt(&mut self, path: String, parameters: Vec<Parameter>) {
        self.stall(Stage::Rcpt);
        let config = &self.shared.config;
        let Some(transaction) = &self.transaction else {
            return self.reply("503 5.5.1 Need MAIL before RCPT");
        };
        if let Some(twice) = repeated(&parameters) {
            return self.reply(&format!("501 5.5.4 RCPT parameter {twice} is given twice"));
        }
        // DSN's RCPT parameters (RFC 3461 §4.1, §4.2), when DSN was offered.
        let dsn = self.offers_dsn() && self.esmtp();
        for parameter in &parameters {
            let why = match (parameter.keyword.as_str(), parameter.value.as_deref()) {
                ("NOTIFY", Some(v)) if dsn => command::notify_error(v),
                ("NOTIFY", None) if dsn => {
                    Some("NOTIFY must be NEVER, or a list of SUCCESS, FAILURE and DELAY")
                }
                ("ORCPT", Some(v)) if dsn => command::orcpt_error(v),
                ("ORCPT", None) if dsn => {
                    Some("ORCPT must be an address type, \";\" and the address in xtext")
                }
                (keyword, _) => {
                    let text = format!("555 5.5.4 RCPT parameter {keyword} not recognized");
                    return self.reply(&text);
                }
            };
            if let Some(why) = why {
                return self.reply(&format!("501 5.5.4 {why}"));
            }
        }
        if !path.is_ascii() && !transaction.smtputf8 {
            return self.reply("553 5.6.7 Non-ASCII address requires SMTPUTF8");
        }
        if transaction.recipients.len() >= config.max_recipients {
            return self.reply("452 4.5.3 Too many recipients");
        }
        let listed = |list: &[String]| list.iter().any(|a| a.eq_ignore_ascii_case(&path));
        if listed(&self.runtime.faults.reject_recipients) {
            return self.reply("550 5.1.1 Mailbox unavailable");
        }
        if listed(&self.runtime.faults.tempfail_recipients) {
            return self.reply("450 4.2.0 Mailbox temporarily unavailable");
        }
        if let Some(transaction) = &mut self.transaction {
            transaction.recipients.push(path);
            transaction
                .rcpt_parameters
                .push(parameters.into_iter().map(|p| p.text).collect());
        }
        let ok = self.voiced("250 2.1.5 Ok", &format!("250 2.1.5 OK {GMAIL_ID}"));
        self.reply(&ok);
    }

    fn starttls(&mut self) -> Flow {
        if self.connection.is_tls() {
            self.reply("503 5.5.1 TLS already active");
            return Flow::Continue;
        }
        if self.runtime.faults.no_starttls {
            self.reply("454 4.7.0 TLS not available");
            return Flow::Continue;
        }
        self.reply("220 2.0.0 Ready to start TLS");
        if let Some(injected) = &self.runtime.faults.inject_after_starttls {
            // Same write as the 220: the flush happens in start_tls.
            self.recorder.server(injected);
            self.connection.send(injected);
            self.recorder
                .note("injected plaintext after the STARTTLS reply (fault inject-after-starttls)");
        }
        // RFC 3207 §4.2 and the STARTTLS command injection attacks: whatever the client
        // sent after STARTTLS in plaintext must not be executed after the handshake.
        let discarded = self.connection.take_buffered();
        if !discarded.is_empty() {
            let timing = self
                .shared
                .config
                .record_timings
                .then_some(Timing::BeforeReply);
            self.recorder.client_timed(&discarded, timing);
            self.recorder.note(&format!(
                "discarded {} bytes the client sent before the TLS handshake",
                discarded.len()
            ));
        }
        match self.connection.start_tls(self.shared.tls.clone()) {
            Ok(detail) => {
                self.recorder.tls_established(detail);
                // RFC 3207 §4.2: forget everything learned before TLS.
                self.helo = None;
                self.auth_user = None;
                self.transaction = None;
                self.chunks_failed = false;
                Flow::Continue
            }
            Err(e) => Flow::Close(self.tls_failed(e)),
        }
    }

    /// Reads one SASL response line after a `334` challenge and decodes it. `Err` carries
    /// the flow after the reply already queued.
    fn sasl_response(&mut self, challenge: &str) -> Result<Vec<u8>, Flow> {
        let line = self.sasl_line(challenge)?;
        self.decode(&line)
    }

    /// Sends a `334` challenge and reads the response line, without its line ending and
    /// not yet decoded.
    fn sasl_line(&mut self, challenge: &str) -> Result<Vec<u8>, Flow> {
        self.reply(challenge);
        let line = match self.connection.read_line(AUTH_LINE_LIMIT) {
            Ok(Line::Complete(line)) => line,
            Ok(Line::TooLong { kept, .. }) => {
                self.recorder.client(&kept);
                self.recorder.note("SASL response cut short here");
                self.reply("500 5.5.6 Authentication exchange line is too long");
                return Err(Flow::Continue);
            }
            Err(e) => return Err(Flow::Close(self.read_failed(e, Phase::Auth))),
        };
        let timing = self.timing();
        self.recorder.client_timed(&line, timing);
        let (body, _) = strip_line_ending(&line);
        Ok(body.to_vec())
    }

    fn decode(&mut self, text: &[u8]) -> Result<Vec<u8>, Flow> {
        if text == b"*" {
            self.reply("501 5.7.0 Authentication cancelled");
            return Err(Flow::Continue);
        }
        if text == b"=" {
            return Ok(Vec::new());
        }
        BASE64.decode(text).map_err(|_| {
            self.reply("501 5.5.2 Cannot decode base64 response");
            Flow::Continue
        })
    }

    fn auth(&mut self, mechanism: String, initial_response: Option<String>) -> Flow {
        let shared = self.shared;
        if !matches!(self.helo, Some((_, true))) {
            self.reply("503 5.5.1 Send EHLO first");
            return Flow::Continue;
        }
        if self.transaction.is_some() {
            self.reply("503 5.5.1 AUTH not allowed during a mail transaction");
            return Flow::Continue;
        }
        if !self.auth_enabled() {
            self.reply("502 5.5.1 Authentication not enabled");
            return Flow::Continue;
        }
        if self.auth_user.is_some() {
            self.reply("503 5.5.1 Already authenticated");
            return Flow::Continue;
        }
        if self.auth_mechanisms().is_none() {
            let text = self.voiced(
                "538 5.7.11 Encryption required for requested authentication mechanism",
                &format!("530 5.7.0 Must issue a STARTTLS command first. {GMAIL_ID}"),
            );
            self.reply(&text);
            return Flow::Continue;
        }
        let Some(mechanism) =
            Mechanism::from_name(&mechanism).filter(|m| self.runtime.mechanisms.contains(m))
        else {
            self.reply("504 5.5.4 Unrecognized authentication type");
            return Flow::Continue;
        };
        let credentials = match mechanism {
            Mechanism::Plain => self.auth_plain(initial_response),
            Mechanism::Login => self.auth_login(initial_response),
            Mechanism::Xoauth2 => return self.auth_xoauth2(initial_response),
            Mechanism::OauthBearer => return self.auth_oauthbearer(initial_response),
            Mechanism::ScramSha256 => return self.auth_scram(initial_response),
        };
        let (user, password) = match credentials {
            Ok(credentials) => credentials,
            Err(flow) => return flow,
        };
        let valid =
            shared.config.users.iter().any(|(u, p)| {
                u.as_bytes() == user.as_slice() && p.as_bytes() == password.as_slice()
            });
        if valid && !self.runtime.faults.reject_auth {
            self.authenticated(String::from_utf8_lossy(&user).into_owned())
        } else {
            self.credentials_invalid()
        }
    }

    /// `235`: the session is authenticated as `user`.
    fn authenticated(&mut self, user: String) -> Flow {
        self.auth_user = Some(user);
        let text = self.voiced("235 2.7.0 Authentication successful", "235 2.7.0 Accepted");
        self.reply(&text);
        Flow::Continue
    }

    /// `535 5.7.8`, in the server's voice.
    fn credentials_invalid(&mut self) -> Flow {
        let text = self.voiced(
            "535 5.7.8 Authentication credentials invalid",
            &format!(
                "535-5.7.8 Username and Password not accepted. For more information, go to\r\n\
                 535 5.7.8  https://support.google.com/mail/?p=BadCredentials {GMAIL_ID}"
            ),
        );
        self.reply(&text);
        Flow::Continue
    }

    /// `501 5.5.2 Malformed MECHANISM response: why`.
    fn malformed(&mut self, mechanism: Mechanism, why: &str) -> Flow {
        self.reply(&format!(
            "501 5.5.2 Malformed {} response: {why}",
            mechanism.name()
        ));
        Flow::Continue
    }

    /// The first message of a mechanism: the initial response, or the answer to an empty
    /// `334` challenge.
    fn first_message(&mut self, initial: Option<String>) -> Result<Vec<u8>, Flow> {
        match initial {
            Some(text) => self.decode(text.as_bytes()),
            None => self.sasl_response("334 "),
        }
    }

    /// Whether `user` may authenticate with bearer `token` (never with `reject-auth`).
    fn token_valid(&self, user: Option<&str>, token: &str) -> bool {
        let config = &self.shared.config;
        let Some(user) = user else {
            return false;
        };
        !self.runtime.faults.reject_auth
            && config
                .oauth2_tokens
                .iter()
                .any(|(u, t)| u == user && t == token)
    }

    /// XOAUTH2: `user=U^Aauth=Bearer T^A^A`; a token that is not valid gets Google's error
    /// status in a `334`, which the client acknowledges with an empty line.
    fn auth_xoauth2(&mut self, initial: Option<String>) -> Flow {
        let message = match self.first_message(initial) {
            Ok(message) => message,
            Err(flow) => return flow,
        };
        let bearer = match sasl::xoauth2(&message) {
            Ok(bearer) => bearer,
            Err(why) => return self.malformed(Mechanism::Xoauth2, why),
        };
        if self.token_valid(bearer.user.as_deref(), &bearer.token) {
            return self.authenticated(bearer.user.unwrap_or_default());
        }
        self.recorder
            .note("XOAUTH2: the token is not valid for this user");
        let challenge = format!("334 {}", sasl::xoauth2_error());
        self.oauth_error(&challenge, b"", "an empty line")
    }

    /// OAUTHBEARER (RFC 7628 §3.1): a GS2 header and `key=value` pairs; a token that is not
    /// valid (or no user named) gets the RFC 7628 §3.2.2 error status in a `334`, which the
    /// client acknowledges with a single `\x01` (§3.2.3).
    fn auth_oauthbearer(&mut self, initial: Option<String>) -> Flow {
        let message = match self.first_message(initial) {
            Ok(message) => message,
            Err(flow) => return flow,
        };
        let bearer = match sasl::oauthbearer(&message) {
            Ok(bearer) => bearer,
            Err(why) => return self.malformed(Mechanism::OauthBearer, why),
        };
        if self.token_valid(bearer.user.as_deref(), &bearer.token) {
            return self.authenticated(bearer.user.unwrap_or_default());
        }
        self.recorder.note(match bearer.user {
            Some(_) => "OAUTHBEARER: the token is not valid for this user",
            None => "OAUTHBEARER: no user named (a=) in the GS2 header, so no token is valid",
        });
        let challenge = format!("334 {}", sasl::oauthbearer_error(self.hostname()));
        self.oauth_error(&challenge, b"\x01", "a single \\x01 (AQ==)")
    }

    /// The error half of XOAUTH2 and OAUTHBEARER: the status challenge, the client's
    /// acknowledgement (`expected`, described as `what`; anything else is read too), then
    /// `535`. A `*` cancels as at any other step.
    fn oauth_error(&mut self, challenge: &str, expected: &[u8], what: &str) -> Flow {
        let line = match self.sasl_line(challenge) {
            Ok(line) => line,
            Err(flow) => return flow,
        };
        if line == b"*" {
            self.reply("501 5.7.0 Authentication cancelled");
            return Flow::Continue;
        }
        let decoded = match line.as_slice() {
            b"=" => Some(Vec::new()),
            _ => BASE64.decode(&line).ok(),
        };
        if decoded.as_deref() != Some(expected) {
            // The line itself may hold a secret; the note only says what was expected.
            self.recorder.note(&format!(
                "the client did not answer the error status with {what}"
            ));
        }
        self.credentials_invalid()
    }

    /// SCRAM-SHA-256 (RFC 5802, RFC 7677): client-first, server-first (the client's nonce
    /// and the server's, this run's salt, the configured iterations), client-final with the
    /// proof, then the server signature in a `334` and the client's empty line before
    /// `235`.
    fn auth_scram(&mut self, initial: Option<String>) -> Flow {
        let shared = self.shared;
        let config = &shared.config;
        let mechanism = Mechanism::ScramSha256;
        let message = match self.first_message(initial) {
            Ok(message) => message,
            Err(flow) => return flow,
        };
        let first = match sasl::ClientFirst::parse(&message) {
            Ok(first) => first,
            Err(why) => return self.malformed(mechanism, why),
        };
        let mut random = [0u8; 18];
        if shared.random.fill(&mut random).is_err() {
            self.recorder
                .note("SCRAM-SHA-256: the system's random number generator failed");
            self.reply("454 4.7.0 Temporary authentication failure");
            return Flow::Continue;
        }
        let server_nonce = BASE64.encode(random);
        let iterations = NonZeroU32::new(config.scram_iterations).unwrap_or(NonZeroU32::MIN);
        let nonce = if self.runtime.faults.scram_bad_server_first {
            self.recorder.note(
                "sending a server-first message whose nonce does not start with the \
                 client's (fault scram-bad-server-first)",
            );
            server_nonce
        } else {
            format!("{}{server_nonce}", first.nonce)
        };
        let server_first = sasl::server_first(&nonce, &shared.scram_salt, iterations);
        let message = match self.sasl_response(&format!("334 {}", BASE64.encode(&server_first))) {
            Ok(message) => message,
            Err(flow) => return flow,
        };
        let last = match sasl::ClientFinal::parse(&message) {
            Ok(last) => last,
            Err(why) => return self.malformed(mechanism, why),
        };
        if last.channel_binding != first.gs2_header.as_bytes() {
            return self.malformed(
                mechanism,
                "c= must be the base64 of the GS2 header of the client-first message",
            );
        }
        if last.nonce != nonce {
            return self.malformed(
                mechanism,
                "r= must be the nonce of the server-first message",
            );
        }
        let auth_message = sasl::auth_message(&first.bare, &server_first, &last.without_proof);
        let password = config
            .users
            .iter()
            .find(|(user, _)| *user == first.user)
            .map(|(_, password)| password);
        let Some(password) = password else {
            self.recorder.note("SCRAM-SHA-256: no such user");
            return self.credentials_invalid();
        };
        if first
            .authzid
            .as_ref()
            .is_some_and(|authzid| *authzid != first.user)
        {
            self.recorder
                .note("SCRAM-SHA-256: the authorization identity (a=) is not the user (n=)");
            return self.credentials_invalid();
        }
        let salted = sasl::SaltedPassword::new(password.as_bytes(), &shared.scram_salt, iterations);
        if !salted.verify(&auth_message, &last.proof) {
            self.recorder
                .note("SCRAM-SHA-256: the client proof does not match the password");
            return self.credentials_invalid();
        }
        if self.runtime.faults.reject_auth {
            return self.credentials_invalid();
        }
        let mut signature = salted.server_signature(&auth_message);
        if self.runtime.faults.scram_bad_server_signature {
            // Every bit flipped: a signature that cannot be right by accident.
            signature.iter_mut().for_each(|byte| *byte = !*byte);
            self.recorder
                .note("sending a wrong server signature (fault scram-bad-server-signature)");
        }
        let challenge = format!("334 {}", BASE64.encode(sasl::server_final(&signature)));
        let answer = match self.sasl_response(&challenge) {
            Ok(answer) => answer,
            Err(flow) => return flow,
        };
        if !answer.is_empty() {
            return self.malformed(
                mechanism,
                "after the server signature (v=) the client sends an empty line",
            );
        }
        self.authenticated(first.user)
    }

    /// RFC 4616: `authzid NUL authcid NUL passwd`, as the initial response or after an
    /// empty `334` challenge.
    fn auth_plain(&mut self, initial: Option<String>) -> Result<(Vec<u8>, Vec<u8>), Flow> {
        let message = self.first_message(initial)?;
        let mut parts = message.split(|&b| b == 0);
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(authzid), Some(authcid), Some(password), None)
                if authzid.is_empty() || authzid == authcid =>
            {
                Ok((authcid.to_vec(), password.to_vec()))
            }
            (Some(_), Some(_), Some(_), None) => {
                self.reply("535 5.7.8 Authentication credentials invalid");
                Err(Flow::Continue)
            }
            _ => {
                self.reply("501 5.5.2 Malformed PLAIN response");
                Err(Flow::Continue)
            }
        }
    }

    /// The LOGIN mechanism: `334 VXNlcm5hbWU6` ("Username:"), `334 UGFzc3dvcmQ6`
    /// ("Password:"); the user name may come as an initial response.
    fn auth_login(&mut self, initial: Option<String>) -> Result<(Vec<u8>, Vec<u8>), Flow> {
        let user = match initial {
            Some(text) => self.decode(text.as_bytes())?,
            None => self.sasl_response("334 VXNlcm5hbWU6")?,
        };
        let password = self.sasl_response("334 UGFzc3dvcmQ6")?;
        Ok((user, password))
    }

    fn data(&mut self) -> Flow {
        self.stall(Stage::Data);
        let Some(transaction) = &self.transaction else {
            self.reply("503 5.5.1 Need MAIL before DATA");
            return Flow::Continue;
        };
        // RFC 3030 §2: DATA and BDAT do not mix in one transaction; §3: a BINARYMIME
        // message cannot be sent as lines.
        if transaction.chunks.is_some() {
            self.reply("503 5.5.1 DATA cannot follow BDAT in one transaction (RFC 3030 2)");
            return Flow::Continue;
        }
        if transaction.binarymime {
            self.reply("503 5.5.1 BODY=BINARYMIME needs BDAT, not DATA (RFC 3030 3)");
            return Flow::Continue;
        }
        if transaction.recipients.is_empty() {
            self.reply("554 5.5.1 No valid recipients");
            return Flow::Continue;
        }
        let go = self.voiced(
            "354 End data with <CR><LF>.<CR><LF>",
            &format!("354 Go ahead {GMAIL_ID}"),
        );
        self.reply(&go);
        let flow = self.receive_message();
        self.transaction = None;
        flow
    }

    /// Reads the message up to `CRLF.CRLF`, then answers it.
    fn receive_message(&mut self) -> Flow {
        let config = &self.shared.config;
        let strict = config.line_endings == LineEndings::Strict;
        let limit = config.size_limit;
        let mut data = Vec::new();
        let mut size: u64 = 0;
        let mut over_size = false;
        let mut too_long = false;
        let mut bare = false;
        // The DATA command line ended with CRLF, so a first line "." ends an empty message.
        let mut previous_ended_with_crlf = true;
        let mut first = true;
        loop {
            let (raw, truncated, crlf) = match self.connection.read_line(TEXT_LINE_LIMIT) {
                Ok(Line::Complete(line)) => {
                    let crlf = line.ends_with(b"\r\n");
                    (line, false, crlf)
                }
                Ok(Line::TooLong { kept, crlf, .. }) => (kept, true, crlf),
                Err(e) => return Flow::Close(self.read_failed(e, Phase::Data)),
            };
            // RFC 5321 §4.1.1.4: only <CRLF>.<CRLF> ends the data. "\n.\r\n" or
            // "\r\n.\n" do not (SMTP smuggling, CVE-2023-51764).
            // When the first line came tells whether the client waited for the 354.
            let timing = if std::mem::take(&mut first) {
                self.timing()
            } else {
                None
            };
            if !truncated && previous_ended_with_crlf && raw == b".\r\n" {
                self.recorder.client_timed(&raw, timing);
                break;
            }
            if !over_size {
                self.recorder.client_timed(&raw, timing);
                if truncated {
                    self.recorder
                        .note("data line over 1000 octets cut short here");
                }
            }
            if self.runtime.faults.drop_mid_data {
                self.recorder
                    .note("dropping the connection mid-DATA (fault drop-mid-data); nothing stored");
                return Flow::Close(SessionEnd::DroppedByFault {
                    fault: "drop-mid-data".to_owned(),
                });
            }
            too_long |= truncated;
            previous_ended_with_crlf = crlf;
            // RFC 5321 §4.5.2: remove the first "." of a line that starts with one.
            let line = raw.strip_prefix(b".").unwrap_or(&raw);
            let (body, crlf) = strip_line_ending(line);
            let ends_with_lf = line.ends_with(b"\n");
            let has_bare = body.contains(&b'\r') || (ends_with_lf && !crlf);
            let normalized;
            let line: &[u8] = if has_bare && !strict {
                normalized = normalize(line);
                &normalized
            } else {
                line
            };
            bare |= has_bare && strict;
            size = size.saturating_add(line.len() as u64);
            if limit > 0 && size > limit && !over_size {
                over_size = true;
                self.recorder
                    .note("message over the size limit: the rest is read but not kept");
            }
            if over_size || too_long || bare {
                // Rejected anyway: stop buffering, keep reading to stay in sync.
                data = Vec::new();
            } else {
                data.extend_from_slice(line);
            }
        }
        self.end_of_data(data, over_size, too_long, bare)
    }

    fn end_of_data(&mut self, data: Vec<u8>, over_size: bool, too_long: bool, bare: bool) -> Flow {
        self.stall(Stage::EndOfData);
        let config = &self.shared.config;
        let pipelining = config.pipelining && matches!(self.helo, Some((_, true)));
        if !pipelining && !self.connection.buffered().is_empty() {
            // The Postfix workaround for SMTP smuggling: a client that was not offered
            // PIPELINING must wait for this reply before sending anything else.
            let early = self.connection.take_buffered();
            self.recorder.client(&early);
            self.recorder.note(&format!(
                "refused {} bytes sent after the end of data without PIPELINING",
                early.len()
            ));
            self.reply("554 5.5.0 Improper use of SMTP command pipelining, message not accepted");
            return Flow::Close(SessionEnd::PipeliningViolation);
        }
        if over_size {
            self.reply("552 5.3.4 Message size exceeds fixed maximum message size");
        } else if too_long {
            self.reply("500 5.5.2 Line too long in message data (limit 1000 octets)");
        } else if bare {
            self.reply(
                "550 5.6.11 bare LF or CR in message data is not allowed (SMTP smuggling defence)",
            );
        } else if self.runtime.faults.reject_data {
            self.reply("554 5.6.0 Message content rejected");
        } else {
            self.store(data);
        }
        Flow::Continue
    }

    /// `BDAT size [LAST]` (RFC 3030 §2). The client sends the `size` octets right behind
    /// the command line without waiting, so they are read whatever the reply, and the next
    /// command is found right after them; only a server that does not offer CHUNKING at all
    /// (`no-chunking`) leaves them to be read as commands, as an old server would.
    fn bdat(&mut self, size: u64, last: bool) -> Flow {
        if self.runtime.faults.no_chunking {
            self.reply("502 5.5.1 BDAT not implemented");
            return Flow::Continue;
        }
        let refusal = match &self.helo {
            None => Some("503 5.5.1 Send EHLO or HELO first"),
            Some((_, false)) => Some("503 5.5.1 BDAT needs EHLO: CHUNKING is an ESMTP extension"),
            Some(_) if self.chunks_failed => Some(
                "503 5.5.1 An earlier BDAT chunk of this transaction failed; send RSET or MAIL",
            ),
            Some(_) => match &self.transaction {
                None => Some("503 5.5.1 Need MAIL before BDAT"),
                Some(transaction) if transaction.recipients.is_empty() => {
                    Some("554 5.5.1 No valid recipients")
                }
                Some(_) => None,
            },
        };
        let Some(refusal) = refusal else {
            return self.receive_chunk(size, last);
        };
        if let Err(flow) = self.read_chunk(size, size, None) {
            return flow;
        }
        self.recorder.chunk(size);
        self.recorder.note("the chunk is discarded");
        self.stall(Stage::Bdat);
        self.reply(refusal);
        if self.transaction.is_some() {
            // No valid recipients: the transaction fails as at any other refused chunk.
            self.chunk_failed(last);
        } else if last {
            self.chunks_failed = false;
        }
        Flow::Continue
    }

    /// A BDAT chunk of the transaction: its octets are added to the message (or dropped,
    /// when the chunk is refused), then answered; the `LAST` one stores the message.
    fn receive_chunk(&mut self, size: u64, last: bool) -> Flow {
        let config = &self.shared.config;
        let Some(transaction) = &mut self.transaction else {
            return Flow::Continue;
        };
        let chunks = transaction.chunks.get_or_insert_with(Chunks::default);
        let number = chunks.sizes.len() as u64 + 1;
        let total = (chunks.data.len() as u64).saturating_add(size);
        let over_size = config.size_limit > 0 && total > config.size_limit;
        let rejected = self.runtime.faults.reject_chunks.contains(&number);
        let mut data = std::mem::take(&mut chunks.data);
        let keep = !over_size && !rejected;
        if keep {
            // Within the size limit (when there is one), so the size is no client's
            // invention; without a limit the buffer grows as the octets come.
            if let Ok(more) = usize::try_from(size)
                && config.size_limit > 0
            {
                data.reserve(more);
            }
        }
        let until = match self.runtime.faults.drop_mid_chunk && size > 0 {
            true => size.div_ceil(2),
            false => size,
        };
        if let Err(flow) = self.read_chunk(size, until, keep.then_some(&mut data)) {
            return flow;
        }
        if until < size {
            self.recorder.chunk(until);
            self.recorder.note(&format!(
                "dropping the connection mid-chunk, after {until} of {size} octets (fault \
                 drop-mid-chunk); nothing stored"
            ));
            return Flow::Close(SessionEnd::DroppedByFault {
                fault: "drop-mid-chunk".to_owned(),
            });
        }
        self.recorder.chunk(size);
        let config = &self.shared.config;
        self.stall(Stage::Bdat);
        if last {
            self.stall(Stage::EndOfData);
        }
        if over_size {
            self.recorder.note(&format!(
                "the chunk is discarded: {total} octets in all are over the size limit of {}",
                config.size_limit
            ));
            self.reply("552 5.3.4 Message size exceeds fixed maximum message size");
            self.chunk_failed(last);
            return Flow::Continue;
        }
        if rejected {
            self.recorder.note(&format!(
                "the chunk is discarded: rejecting chunk {number} (fault reject-chunk)"
            ));
            self.reply(&format!(
                "554 5.6.0 Message content rejected at chunk {number}"
            ));
            self.chunk_failed(last);
            return Flow::Continue;
        }
        let Some(chunks) = self
            .transaction
            .as_mut()
            .and_then(|transaction| transaction.chunks.as_mut())
        else {
            return Flow::Continue;
        };
        chunks.sizes.push(size);
        if !last {
            chunks.data = data;
            self.reply(&format!("250 2.0.0 {size} octets received"));
            return Flow::Continue;
        }
        if self.runtime.faults.reject_data {
            self.transaction = None;
            self.reply("554 5.6.0 Message content rejected");
            return Flow::Continue;
        }
        // The concatenation exactly as received: chunks are neither dot-stuffed nor lines,
        // so nothing is unstuffed, normalized or scanned for bare line endings.
        self.store(data);
        Flow::Continue
    }

    /// Reads the first `until` of a chunk's `size` octets (all of them, except for the
    /// `drop-mid-chunk` fault) into `keep`, or drops them. `Err` carries how the session
    /// ends when the client went away.
    fn read_chunk(
        &mut self,
        size: u64,
        until: u64,
        mut keep: Option<&mut Vec<u8>>,
    ) -> Result<(), Flow> {
        let mut read = 0;
        while read < until {
            match self
                .connection
                .read_octets(until - read, keep.as_deref_mut())
            {
                Ok(n) => read += n as u64,
                Err(e) => {
                    self.recorder.chunk(read);
                    self.recorder
                        .note(&format!("only {read} of the chunk's {size} octets came"));
                    return Err(Flow::Close(self.read_failed(e, Phase::Chunk)));
                }
            }
        }
        Ok(())
    }

    /// A BDAT chunk was refused: the transaction fails, and the chunks a pipelining client
    /// may have sent after it are read and refused too, until RSET, MAIL or the `LAST` one
    /// (RFC 3030 §2).
    fn chunk_failed(&mut self, last: bool) {
        self.transaction = None;
        self.chunks_failed = !last;
    }

    fn store(&mut self, data: Vec<u8>) {
        let Some(transaction) = self.transaction.take() else {
            return;
        };
        let chunk_sizes = transaction.chunks.map(|chunks| chunks.sizes);
        let envelope = StoredEnvelope {
            from: transaction.from,
            recipients: transaction.recipients,
            mail_parameters: transaction.parameters,
            rcpt_parameters: transaction.rcpt_parameters,
            bdat: chunk_sizes.is_some(),
            chunk_sizes: chunk_sizes.unwrap_or_default(),
            binarymime: transaction.binarymime,
            auth_user: self.auth_user.clone(),
            tls: self.connection.is_tls(),
            peer: self.peer.to_string(),
            helo: self
                .helo
                .as_ref()
                .map(|(name, _)| name.clone())
                .unwrap_or_default(),
        };
        let transcript = self.recorder.message_transcript();
        match self.shared.store.store(data, envelope, transcript) {
            Ok(id) => {
                let text = self.voiced(
                    &format!("250 2.0.0 Ok: queued as {id}"),
                    &format!("250 2.0.0 OK  {id} {GMAIL_ID}"),
                );
                self.reply(&text);
                self.shared.notify(Event::Message(id.clone()));
                self.recorder.message_stored(id);
            }
            Err(e) => {
                self.recorder.note(&format!("storing failed: {e}"));
                self.reply("451 4.3.0 Could not store the message, try again later");
            }
        }
    }
}

/// The session id Gmail's replies end with; fixed, so that transcripts can be compared.
const GMAIL_ID: &str = "a1b2c3d4e5f6 - gsmtp";

/// The keyword of a parameter given a second time in one command, if any.
fn repeated(parameters: &[Parameter]) -> Option<&str> {
    parameters.iter().enumerate().find_map(|(i, parameter)| {
        parameters[..i]
            .iter()
            .any(|earlier| earlier.keyword == parameter.keyword)
            .then_some(parameter.keyword.as_str())
    })
}

/// `MAIL FROM: <...>` or `RCPT TO: <...>`: the space RFC 5321 §4.1.2 has no room for, which
/// lenient servers accept and strict ones refuse.
fn space_after_colon(line: &[u8]) -> bool {
    let upper = line.to_ascii_uppercase();
    upper.starts_with(b"MAIL FROM: ") || upper.starts_with(b"RCPT TO: ")
}

/// Splits off the line ending: returns the line without it and whether it was CRLF
/// (`false` for a bare LF or no ending at all).
fn strip_line_ending(line: &[u8]) -> (&[u8], bool) {
    if let Some(body) = line.strip_suffix(b"\r\n") {
        (body, true)
    } else if let Some(body) = line.strip_suffix(b"\n") {
        (body, false)
    } else {
        (line, false)
    }
}

/// Permissive mode: every bare CR and bare LF becomes CRLF.
fn normalize(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len() + 8);
    let mut i = 0;
    while i < line.len() {
        match (line[i], line.get(i + 1)) {
            (b'\r', Some(b'\n')) => {
                out.extend_from_slice(b"\r\n");
                i += 2;
                continue;
            }
            (b'\r' | b'\n', _) => out.extend_from_slice(b"\r\n"),
            (byte, _) => out.push(byte),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_turns_bare_endings_into_crlf() {
        for (input, expected) in [
            (&b"a\r\n"[..], &b"a\r\n"[..]),
            (b"a\n", b"a\r\n"),
            (b"a\rb\r\n", b"a\r\nb\r\n"),
            (b"\r\r\n", b"\r\n\r\n"),
            (b"x", b"x"),
        ] {
            assert_eq!(normalize(input), expected);
        }
    }

    #[test]
    fn line_endings_are_split_off() {
        assert_eq!(strip_line_ending(b"a\r\n"), (&b"a"[..], true));
        assert_eq!(strip_line_ending(b"a\n"), (&b"a"[..], false));
        assert_eq!(strip_line_ending(b"a"), (&b"a"[..], false));
    }
}
