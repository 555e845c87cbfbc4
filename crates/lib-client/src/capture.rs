//! Capturing lettre's `tracing` events into the transcript as they happen
//! (`../shared/reference/lettre-wire.md` §8), and keeping the watchdog's view of the dialogue:
//! which reply lettre waits for and since when.
//!
//! The subscriber is installed only for the duration of one send, on lettre's thread, and
//! only records: nothing lettre logs (its DEBUG events carry the AUTH credentials in base64)
//! is ever printed from here. lettre logs a reply as a growing buffer, one event per line
//! (`<< 250-a`, `<< 250-a<CRLF>250 b`, …), so only each event's new suffix is recorded: the
//! capture holds one reply's buffer, never every copy of it.
//!
//! Events are recorded only when they happened: lettre logs `connection encrypted` before
//! any handshake byte is exchanged (rustls runs the handshake on the next write), so
//! `-- TLS established` is written only once a write or a reply went through TLS.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};
use std::time::Instant;

use cli::{Failure, Sent, ServerReply, Timeouts, Violation, Warning};
use lettre::transport::smtp::response::Response;
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use transcript::Transcript;

const CONNECTION_TARGET: &str = "lettre::transport::smtp::client::connection";

/// How much longer than the command timeout lettre may take between two commands.
const LETTRE_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// The most lines of one reply the capture records. Beyond them lettre's per-line event is
/// switched off for the rest of the reply: lettre formats its whole reply buffer for every
/// line, so a flood of lines would cost time in proportion to the square of its size.
const MAX_REPLY_LINES: usize = 100;

/// What wakes the watchdog before a deadline.
pub(crate) enum Wake {
    /// lettre's thread ended with this.
    Finished(crate::Outcome),
    /// The server did something lib-client does not wait out (see [`Record::refused`]).
    Refused,
    /// lettre wrote something: the deadline moved.
    Moved,
}

/// A command lettre wrote, as the dialogue's errors name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Written {
    /// The whole line without CRLF and without any AUTH payload, e.g.
    /// `RCPT TO:<b@example.org>`, `AUTH PLAIN`, `<SASL response>`, `.` or empty for nothing
    /// (the greeting).
    pub(crate) line: String,
    /// What a timeout names, e.g. `RCPT TO`, `AUTH LOGIN`, `the greeting`.
    pub(crate) waits_for: String,
}

/// What lettre waits for, and since when.
#[derive(Debug, Clone)]
pub(crate) struct Waiting {
    pub(crate) since: Instant,
    pub(crate) command: Written,
}

/// The dialogue so far, shared by lettre's thread and the watchdog.
#[derive(Debug)]
pub(crate) struct Record {
    transcript: Transcript,
    peer: String,
    implicit_tls: bool,
    connected: bool,
    /// lettre logged `connection encrypted`; the handshake happens on the next write.
    tls_claimed: bool,
    /// TLS is up: something went through it.
    tls_up: bool,
    /// The reply being read so far (at most lettre's 100 000 bytes), and how long lettre's
    /// escaped copy of it was at the last event.
    reply: String,
    escaped_len: usize,
    /// Lines of the current reply recorded, and whether the rest is being skipped.
    reply_lines: usize,
    skipping: bool,
    /// lettre's `<< …` event, once seen.
    reply_callsite: Option<tracing::callsite::Identifier>,
    /// What the server did that lib-client does not wait out (an endless reply), and how to
    /// tell the watchdog.
    pub(crate) refused: Option<Failure>,
    wake: Option<mpsc::Sender<Wake>>,
    /// The last command written (the greeting's "command" is the connection itself).
    last: Written,
    /// The command whose reply lettre gave up on before saying QUIT.
    unanswered: Option<Written>,
    /// AUTH is in progress with this mechanism (`AUTH PLAIN`), and the last reply was 334.
    auth: Option<String>,
    challenged: bool,
    pub(crate) waiting: Option<Waiting>,
    pub(crate) last_event: Instant,
    pub(crate) received_any: bool,
    /// Every (command, reply) pair so far.
    pub(crate) exchanges: Vec<(String, ServerReply)>,
    /// The reply that accepted the message data.
    pub(crate) accepted: Option<ServerReply>,
    /// The watchdog gave up: later events are not the dialogue the user was told about.
    closed: bool,
}

/// The shared record, and the `tracing` layer that fills it.
#[derive(Clone)]
pub(crate) struct Capture(Arc<Mutex<Record>>);

impl Capture {
    /// A capture for a connection to `peer`, starting now (the greeting is awaited first).
    pub(crate) fn new(
        transcript: Transcript,
        peer: &str,
        implicit_tls: bool,
        wake: mpsc::Sender<Wake>,
    ) -> Capture {
        let now = Instant::now();
        Capture(Arc::new(Mutex::new(Record {
            transcript,
            peer: peer.to_owned(),
            implicit_tls,
            connected: false,
            tls_claimed: false,
            tls_up: false,
            reply: String::new(),
            escaped_len: 0,
            reply_lines: 0,
            skipping: false,
            reply_callsite: None,
            refused: None,
            unanswered: None,
            wake: Some(wake),
            last: Written {
                line: String::new(),
                waits_for: "the greeting".into(),
            },
            auth: None,
            challenged: false,
            waiting: Some(Waiting {
                since: now,
                command: Written {
                    line: String::new(),
                    waits_for: "the greeting".into(),
                },
            }),
            last_event: now,
            received_any: false,
            exchanges: Vec::new(),
            accepted: None,
            closed: false,
        })))
    }

    /// Runs `f` with this capture as the thread's only subscriber.
    pub(crate) fn during<T>(&self, f: impl FnOnce() -> T) -> T {
        let subscriber = tracing_subscriber::registry().with(self.clone());
        tracing::subscriber::with_default(subscriber, f)
    }

    /// The record, for reading.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Record> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends the capture: the transcript so far, closed; later events are ignored.
    pub(crate) fn finish(&self) -> Transcript {
        let mut record = self.lock();
        record.closed = true;
        if record.connected {
            record.transcript.closed();
        }
        std::mem::take(&mut record.transcript)
    }
}

impl Record {
    /// A remark for the transcript (`-- text`).
    pub(crate) fn note(&mut self, text: String) {
        self.transcript.note(text);
    }

    /// The server's certificate, once lettre's TLS call has returned (for `--explain`).
    pub(crate) fn tls_certificate(&mut self, certificate: transcript::Certificate) {
        self.transcript.tls_certificate(certificate);
    }

    fn connect(&mut self) {
        if !self.connected {
            self.connected = true;
            let peer = self.peer.clone();
            self.transcript.connected(peer);
        }
    }

    /// lettre wrote `text` (escaped: CRLF as `<CRLF>`).
    fn wrote(&mut self, text: &str) {
        self.connect();
        if self.tls_claimed {
            // The write went through TLS, so the handshake completed.
            self.tls_claimed = false;
            self.tls_up = true;
            self.transcript.tls_established(None);
        }
        let bytes = text.replace("<CRLF>", "\r\n");
        self.transcript.client(bytes.as_bytes());
        self.reply.clear();
        self.escaped_len = 0;
        self.reply_lines = 0;
        self.skipping = false;
        let written = self.name(&bytes);
        self.challenged = false;
        if written.waits_for == "QUIT"
            && let Some(waiting) = &self.waiting
            && waiting.command.waits_for != "QUIT"
        {
            // lettre says QUIT when it gives up on a reply (its `abort`): the failure is
            // about that command, not the QUIT.
            self.unanswered = Some(waiting.command.clone());
        }
        self.last = written.clone();
        self.waiting = Some(Waiting {
            since: Instant::now(),
            command: written,
        });
        // A new deadline may come sooner than the one the watchdog sleeps towards (the data
        // timeout can be shorter than the command timeout).
        if let Some(wake) = &self.wake {
            let _ = wake.send(Wake::Moved);
        }
    }

    /// What a written piece is called in errors. A command is one line ending in CRLF;
    /// lettre writes the message data in one piece and then `\r\n.\r\n` on its own.
    fn name(&mut self, bytes: &str) -> Written {
        let end_of_data = || Written {
            line: ".".into(),
            waits_for: "the end of the message data".into(),
        };
        let Some(line) = bytes
            .strip_suffix("\r\n")
            .filter(|line| !line.contains('\n'))
        else {
            return end_of_data();
        };
        if bytes == "\r\n.\r\n" {
            return end_of_data();
        }
        if self.challenged {
            let mechanism = self.auth.clone().unwrap_or_else(|| "AUTH".into());
            return Written {
                line: "<SASL response>".into(),
                waits_for: mechanism,
            };
        }
        let mut words = line.split(' ');
        let verb = words.next().unwrap_or_default().to_ascii_uppercase();
        let (line, waits_for) = match verb.as_str() {
            "AUTH" => {
                // Never the initial response: it carries the credentials (RFC 4954 §4).
                let mechanism = format!("AUTH {}", words.next().unwrap_or_default());
                self.auth = Some(mechanism.clone());
                (mechanism.clone(), mechanism)
            }
            // raw-client names EHLO and HELO without the client's name.
            "EHLO" | "HELO" => (verb.clone(), verb),
            _ if verb.starts_with("MAIL") => (line.to_owned(), "MAIL FROM".to_owned()),
            _ if verb.starts_with("RCPT") => (line.to_owned(), "RCPT TO".to_owned()),
            _ => (line.to_owned(), verb),
        };
        Written { line, waits_for }
    }

    /// lettre read another line; `buffer` is the whole reply so far (escaped). Only the new
    /// line is looked at, and the reply is parsed once its last line came, so a reply of many
    /// lines costs time in proportion to its size.
    fn read(&mut self, buffer: &str) {
        self.connect();
        if self.implicit_tls && !self.received_any {
            // The greeting came through TLS: the handshake completed.
            self.tls_up = true;
            self.transcript.tls_established(None);
        }
        self.received_any = true;
        let new = match buffer.get(self.escaped_len..) {
            Some(new) if buffer.len() >= self.escaped_len => new,
            _ => {
                self.reply.clear();
                buffer
            }
        };
        let new = new.replace("<CRLF>", "\r\n");
        self.escaped_len = buffer.len();
        self.transcript.server(new.as_bytes());
        self.reply.push_str(&new);
        self.reply_lines += 1;
        // RFC 5321 §4.2.1: the last line of a reply has a space (or nothing) after the code.
        let last_line = new
            .trim_end_matches("\r\n")
            .rsplit("\r\n")
            .next()
            .unwrap_or("");
        if last_line.as_bytes().get(3) == Some(&b'-') {
            if self.reply_lines >= MAX_REPLY_LINES && !self.skipping {
                // The same limit as raw-client's: an endless reply ends the dialogue.
                self.skipping = true;
                self.refused = Some(Failure::Protocol {
                    after: self.last.waits_for.clone(),
                    violation: Violation::TooManyLines {
                        max: MAX_REPLY_LINES,
                    },
                });
                if let Some(wake) = &self.wake {
                    let _ = wake.send(Wake::Refused);
                }
            }
            return;
        }
        let Ok(response) = self.reply.parse::<Response>() else {
            return;
        };
        self.reply.clear();
        self.escaped_len = 0;
        self.reply_lines = 0;
        let reply = ServerReply {
            code: u16::from(response.code()),
            lines: response.message().map(str::to_owned).collect(),
        };
        if self.last.line == "." && (200..300).contains(&reply.code) {
            self.accepted = Some(reply.clone());
        }
        self.challenged = reply.code == 334;
        if !self.challenged {
            self.auth = None;
        }
        self.exchanges.push((self.last.line.clone(), reply));
        self.waiting = None;
    }

    /// lettre says the stream is now TLS; nothing was exchanged yet.
    fn encrypted(&mut self) {
        self.tls_claimed = true;
    }

    /// When the watchdog gives up: the pending reply's deadline (the data timeout after the
    /// end of the data; for the greeting, counted from the start of the connect, which lettre
    /// does not report), or, between a reply and the next command (where only a TLS handshake
    /// can keep lettre), one timeout after the last event.
    pub(crate) fn deadline(&self, timeouts: Timeouts) -> Instant {
        match &self.waiting {
            Some(waiting) if waiting.command.line == "." => waiting.since + timeouts.data_end,
            Some(waiting) => waiting.since + timeouts.command,
            // lettre's own time between two commands (such as a panic being unwound, which
            // prints a backtrace first) is not the server's silence: it gets longer.
            None if self.between_commands() => self.last_event + timeouts.command + LETTRE_GRACE,
            None => self.last_event + timeouts.command,
        }
    }

    /// Whether nothing is expected of the server: after the greeting, no command waits for
    /// its reply and no TLS handshake is under way (lettre starts one on any positive answer
    /// to STARTTLS, before it says so).
    fn between_commands(&self) -> bool {
        let handshaking = self.tls_claimed
            || (!self.tls_up
                && self
                    .exchanges
                    .last()
                    .is_some_and(|(command, _)| command.eq_ignore_ascii_case("STARTTLS")));
        self.waiting.is_none() && self.received_any && !handshaking
    }

    /// Whether STARTTLS was answered and TLS then came up (a write or reply went through it).
    pub(crate) fn tls_up(&self) -> bool {
        self.tls_up
    }

    /// The verdict when the deadline passed: what raw-client says at the same point.
    pub(crate) fn late(&self) -> Result<Sent, Failure> {
        if self.between_commands() {
            return Err(Failure::Internal(
                "lettre stopped between two commands without a result".into(),
            ));
        }
        let Some(waiting) = &self.waiting else {
            return Err(Failure::Handshake {
                reason: "the server stopped answering".into(),
            });
        };
        let command = &waiting.command;
        if command.waits_for == "QUIT" {
            // lettre says QUIT after the message, and after a refusal.
            if let Some(accepted) = &self.accepted {
                return Ok(Sent {
                    reply: Some(accepted.clone()),
                    warnings: vec![Warning::QuitUnanswered {
                        accepted: accepted.clone(),
                    }],
                    stopped: None,
                    serverinfo: None,
                });
            }
            if let Some(failure) = self.last_refusal() {
                return Err(failure);
            }
        }
        // With implicit TLS lettre shows nothing of the handshake, so a silence before the
        // greeting may be the handshake's or the greeting's: the wait was for the greeting
        // either way.
        Err(match command.line.as_str() {
            "" if !self.received_any && !self.implicit_tls => Failure::NoGreeting,
            "." => Failure::DataTimeout,
            _ => Failure::Timeout {
                during: format!("waiting for the reply to {}", command.waits_for),
            },
        })
    }

    /// The failure the last negative reply stands for, if any.
    pub(crate) fn last_refusal(&self) -> Option<Failure> {
        self.exchanges
            .iter()
            .rev()
            .find(|(_, reply)| reply.code >= 400)
            .map(|(command, reply)| crate::errors::rejected(command.clone(), reply.clone()))
    }

    /// Whether QUIT was written and never answered.
    pub(crate) fn quit_unanswered(&self) -> bool {
        self.waiting
            .as_ref()
            .is_some_and(|waiting| waiting.command.waits_for == "QUIT")
    }

    /// The command a failed read was for, as errors name it: the last one written, or the
    /// one lettre gave up on before its QUIT.
    pub(crate) fn waits_for(&self) -> &str {
        match &self.unanswered {
            Some(command) => &command.waits_for,
            None => &self.last.waits_for,
        }
    }

    /// The SIZE limit of the last EHLO reply (RFC 1870 §4), 0 or absent for none.
    pub(crate) fn size_limit(&self) -> Option<u64> {
        let (_, reply) = self
            .exchanges
            .iter()
            .rev()
            .find(|(command, _)| command.to_ascii_uppercase().starts_with("EHLO"))?;
        reply.lines.iter().skip(1).find_map(|line| {
            let mut words = line.split_ascii_whitespace();
            let keyword = words.next()?;
            if !keyword.eq_ignore_ascii_case("SIZE") {
                return None;
            }
            words.next()?.parse().ok().filter(|&limit: &u64| limit > 0)
        })
    }

    /// Whether the last EHLO reply offers `keyword` (lettre's `ServerInfo` knows only the
    /// extensions lettre uses: not DSN, REQUIRETLS or CHUNKING).
    pub(crate) fn offers(&self, keyword: &str) -> bool {
        self.exchanges
            .iter()
            .rev()
            .find(|(command, _)| command.to_ascii_uppercase().starts_with("EHLO"))
            .is_some_and(|(_, reply)| {
                reply.lines.iter().skip(1).any(|line| {
                    line.split_ascii_whitespace()
                        .next()
                        .is_some_and(|word| word.eq_ignore_ascii_case(keyword))
                })
            })
    }

    /// The AUTH mechanisms of the last EHLO reply, as raw-client words them.
    pub(crate) fn offered_auth(&self) -> String {
        let offered: Vec<String> = self
            .exchanges
            .iter()
            .rev()
            .find(|(command, _)| command.to_ascii_uppercase().starts_with("EHLO"))
            .map(|(_, reply)| {
                reply
                    .lines
                    .iter()
                    .skip(1)
                    .filter_map(|line| {
                        let mut words = line.split_ascii_whitespace();
                        match words.next() {
                            Some(keyword) if keyword.eq_ignore_ascii_case("AUTH") => {
                                Some(words.map(str::to_ascii_uppercase).collect::<Vec<_>>())
                            }
                            _ => None,
                        }
                    })
                    .flatten()
                    .collect()
            })
            .unwrap_or_default();
        if offered.is_empty() {
            "nothing".to_owned()
        } else {
            offered.join(" ")
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn register_callsite(&self, metadata: &'static tracing::Metadata<'static>) -> Interest {
        if metadata.target() == CONNECTION_TARGET {
            // Asked event by event: see `enabled`.
            Interest::sometimes()
        } else {
            Interest::never()
        }
    }

    /// lettre's connection events, except its per-line reply event while the rest of a
    /// long reply is skipped (then lettre does not even format it).
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _: Context<'_, S>) -> bool {
        if metadata.target() != CONNECTION_TARGET {
            return false;
        }
        let record = self.lock();
        !(record.skipping && record.reply_callsite.as_ref() == Some(&metadata.callsite()))
    }

    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != CONNECTION_TARGET {
            return;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        let mut record = self.lock();
        if record.closed {
            return;
        }
        record.last_event = Instant::now();
        if let Some(wrote) = message.0.strip_prefix("Wrote: ") {
            record.wrote(wrote);
        } else if let Some(buffer) = message.0.strip_prefix("<< ") {
            record.reply_callsite = Some(event.metadata().callsite());
            record.read(buffer);
        } else if message.0 == "connection encrypted" {
            record.encrypted();
        }
    }
}

/// Collects an event's `message` field.
struct Message(String);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // lettre's events are format_args! messages, which arrive here.
        if field.name() == "message" {
            self.0.push_str(&format!("{value:?}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Duration;

    /// A fresh record with no watchdog to wake.
    fn record() -> Record {
        let (wake, _) = mpsc::channel();
        let Capture(shared) = Capture::new(Transcript::new(), "mx:25", false, wake);
        let Ok(mutex) = Arc::try_unwrap(shared) else {
            panic!("the capture is not shared yet");
        };
        let mut record = mutex.into_inner().unwrap_or_else(PoisonError::into_inner);
        record.wake = None;
        record
    }

    #[test]
    fn a_growing_reply_buffer_is_recorded_once() {
        let mut record = record();
        record.read("220 mx<CRLF>");
        record.wrote("EHLO client<CRLF>");
        record.read("250-mx<CRLF>");
        record.read("250-mx<CRLF>250-SIZE 500<CRLF>");
        record.read("250-mx<CRLF>250-SIZE 500<CRLF>250 AUTH plain LOGIN<CRLF>");
        let text = record.transcript.render_text(Default::default());
        assert_eq!(
            text,
            "-- connected to mx:25\nS: 220 mx\nC: EHLO client\nS: 250-mx\nS: 250-SIZE 500\n\
             S: 250 AUTH plain LOGIN\n"
        );
        assert_eq!(record.size_limit(), Some(500));
        assert_eq!(record.offered_auth(), "PLAIN LOGIN");
        assert!(record.waiting.is_none());
        assert!(record.last_event.elapsed() < Duration::from_secs(60));
    }

    /// After a whole reply lettre is on its own (parsing, or unwinding a panic whose
    /// backtrace is being printed): its time is not the server's silence, and running out of
    /// it is not blamed on the server.
    #[test]
    fn lettre_gets_longer_between_commands() {
        let timeouts = Timeouts {
            command: Duration::from_secs(1),
            data_end: Duration::from_secs(1),
        };
        let mut record = record();
        assert_eq!(
            record.deadline(timeouts),
            record.last_event + timeouts.command,
            "the greeting"
        );
        record.read("220 mx<CRLF>");
        record.wrote("EHLO client<CRLF>");
        assert!(
            record.deadline(timeouts) <= Instant::now() + timeouts.command,
            "the EHLO reply"
        );
        record.read("250 mx<CRLF>");
        assert_eq!(
            record.deadline(timeouts),
            record.last_event + timeouts.command + LETTRE_GRACE
        );
        let late = record.late().expect_err("a failure");
        assert!(matches!(late, Failure::Internal(_)), "{late:?}");
        assert_eq!(late.exit(), cli::Exit::Software);
        // After a positive answer to STARTTLS the silence is the server's handshake.
        record.wrote("STARTTLS<CRLF>");
        record.read("221 bye<CRLF>");
        assert!(
            record.deadline(timeouts) <= Instant::now() + timeouts.command,
            "the handshake"
        );
        let late = record.late().expect_err("a failure");
        assert!(matches!(late, Failure::Handshake { .. }), "{late:?}");
    }

    #[test]
    fn tls_is_recorded_only_once_something_went_through_it() {
        let mut record = record();
        record.read("220 mx<CRLF>");
        record.wrote("STARTTLS<CRLF>");
        record.read("220 go<CRLF>");
        record.encrypted();
        let text = record.transcript.render_text(Default::default());
        assert!(!text.contains("TLS established"), "{text}");
        record.wrote("EHLO client<CRLF>");
        let text = record.transcript.render_text(Default::default());
        assert!(
            text.ends_with("-- TLS established\nC: EHLO client\n"),
            "{text}"
        );
    }

    #[test]
    fn timeouts_name_the_command_that_waits() {
        let mut record = record();
        assert_eq!(record.late(), Err(Failure::NoGreeting));
        record.read("220 mx<CRLF>");
        record.wrote("MAIL FROM:<a@b><CRLF>");
        record.read("250 ok<CRLF>");
        record.wrote("RCPT TO:<c@d><CRLF>");
        assert_eq!(
            record.late(),
            Err(Failure::Timeout {
                during: "waiting for the reply to RCPT TO".into()
            })
        );
        record.read("250 ok<CRLF>");
        record.wrote("DATA<CRLF>");
        record.read("354 go<CRLF>");
        record.wrote("Subject: x<CRLF><CRLF>hi");
        record.wrote("<CRLF>.<CRLF>");
        assert_eq!(record.late(), Err(Failure::DataTimeout));
        record.read("250 queued<CRLF>");
        record.wrote("QUIT<CRLF>");
        let accepted = ServerReply {
            code: 250,
            lines: vec!["queued".into()],
        };
        assert_eq!(
            record.late(),
            Ok(Sent {
                reply: Some(accepted.clone()),
                warnings: vec![Warning::QuitUnanswered { accepted }],
                stopped: None,
                serverinfo: None,
            })
        );
    }

    #[test]
    fn sasl_responses_are_named_after_their_mechanism() {
        let mut record = record();
        record.read("220 mx<CRLF>");
        record.wrote("AUTH LOGIN<CRLF>");
        record.read("334 VXNlcm5hbWU6<CRLF>");
        record.wrote("YWxpY2U=<CRLF>");
        assert_eq!(record.waits_for(), "AUTH LOGIN");
        assert_eq!(record.last.line, "<SASL response>");
    }
}
