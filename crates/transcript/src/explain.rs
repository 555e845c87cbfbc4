//! `--explain`: what every transcript line means, and which RFC says so.
//!
//! [`explain`] walks a transcript's lines in order, keeping track of the dialogue as the
//! reader would (which command each reply answers, whether the message data has begun, which
//! MIME part a body line belongs to) and gives each line its notes. It works on lines as
//! they are rendered — with secrets already shown as `<redacted>` — so an explanation can
//! never reveal more than the transcript does, and it reads a stored transcript file as well
//! as a live one ([`parse_text`]). The tables behind it are in the submodules: reply and
//! enhanced status codes, EHLO keywords and SASL mechanisms, header fields and MIME, and the
//! advice for the refusals people meet.

mod advice;
mod codes;
mod extensions;
mod message;

pub use extensions::{ehlo_offer, size_in_words};

use std::collections::VecDeque;
use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::{Certificate, Checked};

/// One annotation: what a line means, and where that is defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The defining document and section, e.g. `RFC 5321 §4.1.1.2`; `None` for a remark
    /// about this tool rather than the protocol.
    pub rfc: Option<String>,
    /// One short sentence.
    pub text: String,
}

impl Note {
    /// A note about the protocol, citing where it is defined.
    pub fn new(text: impl Into<String>, rfc: &str) -> Note {
        Note {
            rfc: Some(rfc.to_owned()),
            text: text.into(),
        }
    }

    /// A remark about this tool or this run rather than the protocol.
    pub fn tool(text: impl Into<String>) -> Note {
        Note {
            rfc: None,
            text: text.into(),
        }
    }

    /// The note as an annotation line's text, without the `# `: `text (RFC …)`.
    pub fn line(&self) -> String {
        match &self.rfc {
            Some(rfc) => format!("{} ({rfc})", self.text),
            None => self.text.clone(),
        }
    }
}

/// The notes of one line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Explained {
    /// What the line means.
    pub notes: Vec<Note>,
    /// The line belongs to a block (a stretch of body lines) whose first line's note covers
    /// it, so it has no note of its own.
    pub in_block: bool,
}

/// One transcript line, as rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    /// `C: text`.
    Client(&'a str),
    /// `S: text`.
    Server(&'a str),
    /// `-- connected to peer`.
    Connected(&'a str),
    /// `-- TLS established`, with version and cipher, and the server's certificate, when known.
    Tls(Option<&'a str>, Option<&'a Certificate>),
    /// `-- text`, a remark of the recorder.
    Note(&'a str),
    /// `-- connection closed`.
    Closed,
}

/// Reads the lines of a text transcript (`C: `, `S: `, `-- `); other lines are skipped.
pub fn parse_text(text: &str) -> Vec<Line<'_>> {
    text.lines().filter_map(parse_line).collect()
}

/// One line of a text transcript, if it is a `C: `, `S: ` or `-- ` line.
fn parse_line(line: &str) -> Option<Line<'_>> {
    if let Some(rest) = line.strip_prefix("C: ") {
        Some(Line::Client(rest))
    } else if line == "C:" {
        Some(Line::Client(""))
    } else if let Some(rest) = line.strip_prefix("S: ") {
        Some(Line::Server(rest))
    } else {
        line.strip_prefix("-- ").map(event)
    }
}

/// The notes of each line of a text transcript, by line number (none for any other line).
pub fn notes_per_line(text: &str) -> Vec<Vec<Note>> {
    let mut notes = explain(&parse_text(text)).into_iter();
    text.lines()
        .map(|line| match parse_line(line) {
            Some(_) => notes
                .next()
                .map(|explained| explained.notes)
                .unwrap_or_default(),
            None => Vec::new(),
        })
        .collect()
}

/// The event a `-- ` line's text stands for.
fn event(text: &str) -> Line<'_> {
    if let Some(peer) = text.strip_prefix("connected to ") {
        Line::Connected(peer)
    } else if text == "TLS established" {
        Line::Tls(None, None)
    } else if let Some(detail) = text
        .strip_prefix("TLS established (")
        .and_then(|rest| rest.strip_suffix(')'))
    {
        Line::Tls(Some(detail), None)
    } else if text == "connection closed" {
        Line::Closed
    } else {
        Line::Note(text)
    }
}

/// A text transcript with its notes: each `C: `, `S: ` and `-- ` line followed by `# ` lines;
/// any other line is kept as it is (for a stored `.transcript` file).
pub fn annotate_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for (line, notes) in text.lines().zip(notes_per_line(text)) {
        out.push_str(line);
        out.push('\n');
        for note in notes {
            out.push_str("# ");
            out.push_str(&note.line());
            out.push('\n');
        }
    }
    out
}

/// Advice for a refusal: what most likely went wrong, and what to do.
pub fn advice_for_reply(code: u16, enhanced: Option<&str>, text: &str) -> Option<&'static str> {
    advice::for_reply(code, enhanced, text)
}

/// The notes of every line, in order.
pub fn explain(lines: &[Line<'_>]) -> Vec<Explained> {
    let mut walk = Walk::default();
    (0..lines.len()).map(|at| walk.line(lines, at)).collect()
}

/// A command the client sent whose reply has not come (in full) yet.
#[derive(Debug, Clone, Default)]
struct Sent {
    /// The verb, upper-cased: `EHLO`, `MAIL`, `.` for the end of data, `SASL` for an answer
    /// to a challenge.
    verb: String,
    /// AUTH's mechanism.
    mechanism: Option<String>,
    /// AUTH came with its initial response.
    initial_response: bool,
}

impl Sent {
    fn name(&self) -> String {
        match self.verb.as_str() {
            "." => "the end of the message data".into(),
            "SASL" => match &self.mechanism {
                Some(mechanism) => format!("the client's {mechanism} answer"),
                None => "the client's answer".into(),
            },
            "MAIL" => "MAIL FROM".into(),
            "RCPT" => "RCPT TO".into(),
            "AUTH" => match &self.mechanism {
                Some(mechanism) => format!("AUTH {mechanism}"),
                None => "AUTH".into(),
            },
            verb => verb.to_owned(),
        }
    }
}

/// Where the client's lines are.
#[derive(Debug, Default)]
enum Phase {
    #[default]
    Commands,
    /// The next client line answers a `334`.
    Sasl,
    /// Inside the message data.
    Data(Box<Body>),
}

/// The message being sent, as far as it has come.
#[derive(Debug, Default)]
struct Body {
    /// In a header section (the message's, or a MIME part's).
    in_header: bool,
    /// The header field being read (for folded lines).
    field: Option<String>,
    /// This part's Content-Type and Content-Transfer-Encoding.
    content_type: String,
    transfer_encoding: String,
    /// The boundaries of the open multiparts, innermost last.
    boundaries: Vec<String>,
    /// A body block's note has been given.
    in_block: bool,
    /// The message's own header has ended (what follows are MIME parts' headers).
    message_header_done: bool,
    /// The message header has a Date: and a From: field, the two it must have.
    has_date: bool,
    has_from: bool,
}

#[derive(Debug, Default)]
struct Walk {
    phase: Phase,
    awaiting: VecDeque<Sent>,
    /// The reply being read: what it answers, and its code.
    reply: Option<(Option<Sent>, u16)>,
    greeted: bool,
    tls: bool,
    /// STARTTLS was accepted and the handshake is next.
    starttls_accepted: bool,
    /// The next EHLO is the one RFC 3207 §4.2 asks for after TLS.
    ehlo_after_tls: bool,
    auth_mechanism: Option<String>,
}

impl Walk {
    fn line(&mut self, lines: &[Line<'_>], at: usize) -> Explained {
        match lines[at] {
            Line::Client(text) => match std::mem::take(&mut self.phase) {
                Phase::Data(body) => self.data(*body, text, lines, at),
                Phase::Sasl => notes(vec![self.sasl_answer(text)]),
                Phase::Commands => notes(self.command(text)),
            },
            Line::Server(text) => notes(self.server(text, &reply_text(lines, at))),
            Line::Connected(peer) => notes(vec![Note::new(
                format!(
                    "the TCP connection to {peer} is open; the client waits for the server to speak first"
                ),
                "RFC 5321 §3.1",
            )]),
            Line::Tls(detail, certificate) => notes(self.tls(detail, certificate)),
            Line::Note(text) => notes(vec![recorder_note(text)]),
            Line::Closed => notes(vec![Note::new(
                "the TCP connection is closed",
                "RFC 5321 §3.8",
            )]),
        }
    }

    // The client's commands.

    fn command(&mut self, text: &str) -> Vec<Note> {
        let mut out = Vec::new();
        let mut words = text.split(' ');
        let first = words.next().unwrap_or_default();
        let verb = first
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let mut sent = Sent {
            verb: verb.clone(),
            ..Sent::default()
        };
        match extensions::command(&verb) {
            Some((what, rfc)) => out.push(Note::new(what, rfc)),
            None => out.push(Note::new(
                format!("{first}: a command this explainer does not know"),
                "RFC 5321 §4.1",
            )),
        }
        match verb.as_str() {
            "EHLO" | "HELO" if self.ehlo_after_tls => {
                self.ehlo_after_tls = false;
                out.push(Note::new(
                    "asked again now that TLS is up: what the server said before TLS may have been tampered with, so it is forgotten",
                    "RFC 3207 §4.2",
                ));
            }
            "AUTH" => {
                let mechanism = words.next().unwrap_or_default().to_ascii_uppercase();
                let initial = words.next().is_some();
                if mechanism.is_empty() {
                    out.push(Note::new(
                        "AUTH needs the name of a mechanism, one the server offered in its EHLO reply",
                        "RFC 4954 §4",
                    ));
                } else if let Some((what, rfc)) = extensions::sasl(&mechanism) {
                    out.push(Note::new(format!("{mechanism}: {what}"), rfc));
                }
                if initial {
                    out.push(Note::new(
                        "with its initial response, which carries the credentials and is shown as <redacted> unless --show-secrets",
                        "RFC 4954 §4",
                    ));
                }
                let mechanism = (!mechanism.is_empty()).then_some(mechanism);
                self.auth_mechanism.clone_from(&mechanism);
                sent.mechanism = mechanism;
                sent.initial_response = initial;
            }
            "MAIL" | "RCPT" => {
                let rest = text.split_once(':').map_or("", |(_, rest)| rest);
                if rest.starts_with(' ') {
                    out.push(Note::new(
                        "the space after the colon is not in the syntax: many servers accept it, strict ones refuse it",
                        "RFC 5321 §4.1.2",
                    ));
                }
                if !rest.trim_start().starts_with('<') {
                    out.push(Note::new(
                        "the address must be written inside <>; servers refuse it bare",
                        "RFC 5321 §4.1.2",
                    ));
                }
                if rest.starts_with("<>") && verb == "MAIL" {
                    out.push(Note::new(
                        "<> is the null sender: no bounce can come back (used for bounces themselves)",
                        "RFC 5321 §4.5.5",
                    ));
                }
                let parameters = rest.rsplit_once('>').map_or("", |(_, after)| after);
                for parameter in parameters.split_ascii_whitespace() {
                    let (what, rfc) = extensions::parameter(parameter);
                    out.push(Note::new(what, rfc));
                }
            }
            _ => {}
        }
        if let Some(waiting) = self.awaiting.back() {
            out.push(self.pipelined(&verb, waiting));
        }
        self.awaiting.push_back(sent);
        out
    }

    /// Why a command could go before the reply to the one before it.
    fn pipelined(&self, verb: &str, before: &Sent) -> Note {
        if before.verb == "AUTH" && before.initial_response {
            return Note::new(
                "sent before AUTH was answered: AUTH with an initial response for a one-step mechanism may lead a pipelined group",
                "RFC 4954 §4; RFC 2920 §3.1",
            );
        }
        let text = match verb {
            "DATA" => format!(
                "sent before the reply to {}: with PIPELINING, DATA may end a group but nothing may follow it until its 354",
                before.name()
            ),
            "QUIT" => format!(
                "sent before the reply to {}: QUIT may end a pipelined group",
                before.name()
            ),
            _ => format!(
                "sent before the reply to {}: with PIPELINING the client need not wait, and the replies come back in order",
                before.name()
            ),
        };
        Note::new(text, "RFC 2920 §3.1")
    }

    fn sasl_answer(&mut self, text: &str) -> Note {
        self.awaiting.push_back(Sent {
            verb: "SASL".into(),
            mechanism: self.auth_mechanism.clone(),
            ..Sent::default()
        });
        let mechanism = self.auth_mechanism.as_deref().unwrap_or("the mechanism's");
        let what = match text {
            "*" => "the client cancels the login; the server answers 501".to_owned(),
            "" => format!(
                "an empty answer to the {mechanism} challenge: nothing to send, or the acknowledgement of an error the server sent in its challenge"
            ),
            "<redacted>" => format!(
                "the client's base64 answer to the {mechanism} challenge: it carries the credentials, so it is shown as <redacted> unless --show-secrets"
            ),
            _ => format!(
                "the client's base64 answer to the {mechanism} challenge: it carries the credentials (shown because of --show-secrets)"
            ),
        };
        Note::new(what, "RFC 4954 §4")
    }

    // The message data.

    fn data(&mut self, mut body: Body, text: &str, lines: &[Line<'_>], at: usize) -> Explained {
        if text == "." {
            self.awaiting.push_back(Sent {
                verb: ".".into(),
                ..Sent::default()
            });
            return notes(vec![Note::new(
                "a line of a single dot ends the message data; the server now says whether it takes the message",
                "RFC 5321 §4.1.1.4",
            )]);
        }
        let mut out = Vec::new();
        let content = match text.strip_prefix('.') {
            Some(rest) if rest.starts_with('.') => {
                out.push(Note::new(
                    "this line began with a dot, so the client added a second one; the server removes it",
                    "RFC 5321 §4.5.2",
                ));
                rest
            }
            Some(rest) => {
                out.push(Note::new(
                    format!(
                        "a leading dot that was not doubled: the server removes it, so the message holds {rest:?}; a client must double a line's leading dot"
                    ),
                    "RFC 5321 §4.5.2",
                ));
                rest
            }
            None => text,
        };
        let mut in_block = false;
        if body.in_header {
            out.extend(header_line(&mut body, content));
        } else if let Some(note) = boundary_line(&mut body, content) {
            out.push(note);
        } else if body.in_block {
            in_block = out.is_empty();
        } else {
            body.in_block = true;
            let count = block_length(&body, lines, at);
            let (what, rfc) = message::encoding(&body.transfer_encoding);
            let mime = if body.content_type.is_empty() {
                "text/plain".to_owned()
            } else {
                body.content_type
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase()
            };
            let lines = if count == 1 {
                "this line".to_owned()
            } else {
                format!("this line and the {} after it", count - 1)
            };
            out.push(Note::new(format!("{lines}: the body, {mime}, {what}"), rfc));
        }
        self.phase = Phase::Data(Box::new(body));
        Explained {
            notes: out,
            in_block,
        }
    }

    // The server's replies.

    /// `whole`: the text of the reply this line starts, all its lines (for the advice).
    fn server(&mut self, text: &str, whole: &str) -> Vec<Note> {
        let bytes = text.as_bytes();
        let valid = bytes.len() >= 3
            && matches!(bytes[0], b'2'..=b'5')
            && matches!(bytes[1], b'0'..=b'5')
            && bytes[2].is_ascii_digit();
        let last = bytes.get(3) != Some(&b'-');
        if !valid {
            self.reply = None;
            return vec![Note::new(
                "not an SMTP reply: a reply starts with three digits (2-5, 0-5, 0-9)",
                "RFC 5321 §4.2",
            )];
        }
        let code = text[..3].parse::<u16>().unwrap_or(0);
        let rest = text.get(4..).unwrap_or("");
        let out = match self.reply.take() {
            Some((answers, first_code)) => {
                let notes = self.continuation(answers.as_ref(), first_code, code, rest);
                self.reply = Some((answers, first_code));
                notes
            }
            None => {
                let answers = self.awaiting.front().cloned();
                let notes = self.first_line(answers.as_ref(), code, rest, whole, last);
                self.reply = Some((answers, code));
                notes
            }
        };
        if last {
            self.end_of_reply(code);
        }
        out
    }

    /// The notes of a reply's first line: the code, the enhanced code, what it answers.
    fn first_line(
        &mut self,
        answers: Option<&Sent>,
        code: u16,
        rest: &str,
        whole: &str,
        last: bool,
    ) -> Vec<Note> {
        let mut out = Vec::new();
        let digits = code.to_string().into_bytes();
        let how = format!(
            "{}, {}",
            codes::first_digit(digits[0]),
            codes::second_digit(digits[1])
        );
        match codes::reply(code) {
            Some((meaning, rfc)) => {
                let rfc = match rfc.strip_prefix("RFC 5321 ") {
                    Some(section) => format!("RFC 5321 §4.2.1, {section}"),
                    None => format!("{rfc}; RFC 5321 §4.2.1"),
                };
                out.push(Note::new(format!("{code}: {meaning}; {how}"), &rfc));
            }
            None => out.push(Note::new(
                format!("{code}: not one of the codes RFC 5321 lists; {how}"),
                "RFC 5321 §4.2.1",
            )),
        }
        let enhanced = enhanced_code(code, rest);
        if let Some(enhanced) = enhanced
            && let Some((meaning, rfc)) = codes::enhanced(enhanced)
        {
            let rfc = match rfc {
                "RFC 3463" => "RFC 3463 §3".to_owned(),
                "RFC 3463 §2" => rfc.to_owned(),
                other => format!("{other}; RFC 3463 §2"),
            };
            out.push(Note::new(meaning, &rfc));
        }
        if let Some(context) = self.context(answers, code, rest) {
            out.push(context);
        }
        if !last && answers.is_none_or(|sent| sent.verb != "EHLO") {
            out.push(Note::new(
                "the - after the code: more lines of this reply follow",
                "RFC 5321 §4.2.1",
            ));
        }
        if code >= 400
            && let Some(advice) = advice::for_reply(code, enhanced, whole)
        {
            out.push(Note::tool(format!("what to do: {advice}")));
        }
        out
    }

    /// What a reply means for the command it answers.
    fn context(&mut self, answers: Option<&Sent>, code: u16, rest: &str) -> Option<Note> {
        let positive = (200..400).contains(&code);
        let Some(sent) = answers else {
            if !self.greeted {
                return Some(Note::new(
                    if code == 220 {
                        "the greeting: the server speaks first, with its name"
                    } else {
                        "the greeting is a refusal: the server will not talk"
                    },
                    "RFC 5321 §3.1, §4.3.1",
                ));
            }
            return Some(Note::new(
                "a reply to no command: the server said more than it was asked",
                "RFC 5321 §4.2",
            ));
        };
        let (text, rfc) = match (sent.verb.as_str(), positive) {
            ("EHLO", true) => (
                "the first line names the server; each further line is an extension it offers"
                    .to_owned(),
                "RFC 5321 §4.1.1.1",
            ),
            ("STARTTLS", true) if code == 220 => {
                self.starttls_accepted = true;
                (
                    "go ahead with TLS: the handshake comes next, and nothing more may be read or written in plaintext".to_owned(),
                    "RFC 3207 §4",
                )
            }
            ("AUTH" | "SASL", true) if code == 334 => challenge(rest, sent.mechanism.as_deref()),
            ("AUTH" | "SASL", true) => ("logged in".to_owned(), "RFC 4954 §6"),
            ("MAIL", true) => ("the sender is accepted".to_owned(), "RFC 5321 §4.1.1.2"),
            ("RCPT", true) => ("this recipient is accepted".to_owned(), "RFC 5321 §4.1.1.3"),
            ("DATA", true) if code == 354 => (
                "send the message now, dot-stuffed, ending with a line holding only \".\""
                    .to_owned(),
                "RFC 5321 §4.1.1.4, §4.5.2",
            ),
            (".", true) => (
                "the message is accepted: from now on it is the server's to deliver".to_owned(),
                "RFC 5321 §4.1.1.4, §6.1",
            ),
            (".", false) => (
                "the message is refused: the server does not take it".to_owned(),
                "RFC 5321 §4.1.1.4",
            ),
            ("QUIT", _) => (
                "the server closes the connection".to_owned(),
                "RFC 5321 §4.1.1.10",
            ),
            (_, false) => ("refused".to_owned(), "RFC 5321 §4.2"),
            (_, true) => ("done".to_owned(), "RFC 5321 §4.2"),
        };
        Some(Note::new(format!("answers {}: {text}", sent.name()), rfc))
    }

    /// A further line of a multi-line reply.
    fn continuation(&self, answers: Option<&Sent>, first: u16, code: u16, rest: &str) -> Vec<Note> {
        if code != first {
            return vec![Note::new(
                format!(
                    "a different code ({code}) inside a reply that began with {first}: not allowed"
                ),
                "RFC 5321 §4.2.1",
            )];
        }
        if answers.is_some_and(|sent| sent.verb == "EHLO") {
            let mut words = rest.splitn(2, ' ');
            let keyword = words.next().unwrap_or_default();
            let argument = words.next().unwrap_or_default();
            let (text, rfc) = extensions::keyword(keyword, argument);
            return vec![Note::new(text, rfc)];
        }
        vec![Note::new(
            "more of the same reply (the - after the code means more lines follow; a space marks the last)",
            "RFC 5321 §4.2.1",
        )]
    }

    fn end_of_reply(&mut self, code: u16) {
        self.reply = None;
        if !self.greeted && self.awaiting.is_empty() {
            self.greeted = true;
            return;
        }
        let answered = self.awaiting.pop_front();
        self.phase = match (code, answered.map(|sent| sent.verb)) {
            (334, _) => Phase::Sasl,
            (354, _) => Phase::Data(Box::new(Body {
                in_header: true,
                ..Body::default()
            })),
            _ => Phase::Commands,
        };
    }

    // Events.

    fn tls(&mut self, detail: Option<&str>, certificate: Option<&Certificate>) -> Vec<Note> {
        let after_starttls = std::mem::take(&mut self.starttls_accepted);
        self.tls = true;
        self.ehlo_after_tls = after_starttls;
        let mut out = vec![if after_starttls {
            Note::new(
                "the TLS handshake after STARTTLS is done: from here on everything is encrypted",
                "RFC 3207 §4.1",
            )
        } else {
            Note::new(
                "the TLS handshake is done before any SMTP (implicit TLS, port 465): everything is encrypted",
                "RFC 8314 §3",
            )
        }];
        if let Some(detail) = detail {
            out.push(tls_detail(detail));
        }
        if let Some(certificate) = certificate {
            out.extend(certificate_notes(certificate));
        }
        out
    }
}

/// What the server's certificate says, and how the client came to trust it.
fn certificate_notes(certificate: &Certificate) -> Vec<Note> {
    const SHOWN: usize = 4;
    let mut names = certificate
        .names
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if certificate.names.len() > SHOWN {
        let _ = write!(names, " and {} more", certificate.names.len() - SHOWN);
    }
    if names.is_empty() {
        names = "no alternative names".to_owned();
    }
    let about = Note::new(
        format!(
            "the server's certificate: {} (for {names}), issued by {}, valid until {}",
            certificate.subject, certificate.issuer, certificate.not_after
        ),
        "RFC 5280 §4.1",
    );
    let checked = match &certificate.checked {
        Checked::Verified { name, roots } => Note::new(
            format!(
                "verified: it is in date, names {name}, and its chain leads to a root in {roots}"
            ),
            "RFC 5280 §6; RFC 6125 §6",
        ),
        Checked::Pinned => Note::tool(
            "accepted because its SHA-256 fingerprint is the --pin-sha256 one; its issuer, names and dates were not checked",
        ),
        Checked::Insecure => Note::tool(
            "NOT verified (--insecure): any certificate is accepted, so this may be an impostor; the handshake only proves the peer holds the certificate's key",
        ),
    };
    vec![about, checked]
}

/// The text of the reply starting at `at`, its lines joined: Gmail, for one, names itself
/// only on a reply's last line.
fn reply_text(lines: &[Line<'_>], at: usize) -> String {
    let mut text = Vec::new();
    for line in &lines[at..] {
        let Line::Server(line) = line else { break };
        text.push(line.get(4..).unwrap_or(""));
        if line.as_bytes().get(3) != Some(&b'-') {
            break;
        }
    }
    text.join(" ")
}

/// A header section line: a field, a folded continuation, or the empty line that ends it.
fn header_line(body: &mut Body, content: &str) -> Vec<Note> {
    if content.is_empty() {
        body.in_header = false;
        body.in_block = false;
        let mut out = vec![match message::boundary(&body.content_type) {
            Some(boundary) => {
                body.boundaries.push(boundary);
                Note::new(
                    "the empty line ends the header; what follows is a multipart body, parts separated by boundary lines",
                    "RFC 5322 §2.1; RFC 2046 §5.1.1",
                )
            }
            None => Note::new(
                "the empty line ends the header; the body follows",
                "RFC 5322 §2.1",
            ),
        }];
        if !std::mem::replace(&mut body.message_header_done, true) {
            let missing: Vec<&str> = [(body.has_date, "Date:"), (body.has_from, "From:")]
                .into_iter()
                .filter_map(|(has, field)| (!has).then_some(field))
                .collect();
            if !missing.is_empty() {
                out.push(Note::new(
                    format!(
                        "the message header ends without {}, which every message must have",
                        missing.join(" and ")
                    ),
                    "RFC 5322 §3.6",
                ));
            }
        }
        return out;
    }
    if content.starts_with([' ', '\t']) {
        if body.field.as_deref() == Some("content-type") {
            body.content_type.push_str(content);
        }
        return vec![Note::new(
            "folded: a line that starts with white space continues the field above",
            "RFC 5322 §2.2.3",
        )];
    }
    let Some((name, value)) = content.split_once(':') else {
        return vec![Note::new(
            "not a header field (a field is Name: value)",
            "RFC 5322 §2.2",
        )];
    };
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "content-type" => body.content_type = value.trim().to_owned(),
        "content-transfer-encoding" => body.transfer_encoding = value.trim().to_owned(),
        "date" if !body.message_header_done => body.has_date = true,
        "from" if !body.message_header_done => body.has_from = true,
        _ => {}
    }
    body.field = Some(lower);
    let (what, rfc) = message::header(name);
    let mut out = vec![Note::new(what, rfc)];
    if message::has_encoded_word(value) {
        out.push(Note::new(
            "=?charset?encoding?text?= is an encoded word: non-ASCII text written in ASCII",
            "RFC 2047 §2",
        ));
    }
    out
}

/// A MIME boundary line, if `content` is one of the open multiparts' boundaries.
fn boundary_line(body: &mut Body, content: &str) -> Option<Note> {
    let open = body.boundaries.iter().rposition(|boundary| {
        content
            .strip_prefix("--")
            .and_then(|rest| rest.strip_prefix(boundary.as_str()))
            .is_some_and(|end| end.is_empty() || end == "--")
    })?;
    let closing = content.ends_with("--") && content.len() > body.boundaries[open].len() + 2;
    body.boundaries.truncate(open + 1);
    body.in_block = false;
    if closing {
        body.boundaries.pop();
        return Some(Note::new(
            "the closing boundary: the last part of this multipart has ended",
            "RFC 2046 §5.1.1",
        ));
    }
    body.in_header = true;
    body.content_type.clear();
    body.transfer_encoding.clear();
    Some(Note::new(
        "a boundary line: a new MIME part begins, with its own header",
        "RFC 2046 §5.1.1",
    ))
}

/// How many lines, from `at`, the body block runs: up to a boundary, the end of the data,
/// or the end of the transcript.
fn block_length(body: &Body, lines: &[Line<'_>], at: usize) -> usize {
    lines[at..]
        .iter()
        .take_while(|line| match line {
            Line::Client(text) => {
                let content = text.strip_prefix('.').unwrap_or(text);
                *text != "."
                    && !body.boundaries.iter().any(|boundary| {
                        content
                            .strip_prefix("--")
                            .is_some_and(|rest| rest.starts_with(boundary.as_str()))
                    })
            }
            _ => false,
        })
        .count()
        .max(1)
}

/// RFC 3463 §2: the enhanced code at the start of a reply's text, if its class matches.
fn enhanced_code(code: u16, rest: &str) -> Option<&str> {
    let word = rest.split(' ').next()?;
    let class = word.split('.').next()?;
    let matches =
        class.len() == 1 && u16::from(class.as_bytes()[0].wrapping_sub(b'0')) == code / 100;
    (matches && word.split('.').count() == 3 && codes::enhanced(word).is_some()).then_some(word)
}

/// A `334` challenge, decoded when it is base64 text, and read as the mechanism's step
/// when the mechanism is known.
fn challenge(text: &str, mechanism: Option<&str>) -> (String, &'static str) {
    let encoded = text.trim();
    if encoded.is_empty() {
        return (
            "the server asks for the client's answer (an empty challenge)".into(),
            "RFC 4954 §4",
        );
    }
    let decoded = BASE64
        .decode(encoded)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|decoded| decoded.chars().all(|c| !c.is_control() || c == '\n'));
    let Some(decoded) = decoded else {
        return (
            "the challenge is binary (base64 of bytes, not text)".into(),
            "RFC 4954 §4",
        );
    };
    match mechanism {
        Some("XOAUTH2" | "OAUTHBEARER") if decoded.starts_with('{') => (
            format!(
                "the token is refused: the challenge is base64 for the error status `{decoded}`; the client answers it (an empty line for XOAUTH2, a lone ^A for OAUTHBEARER) and the server then fails the login"
            ),
            "RFC 7628 §3.2.2",
        ),
        Some(scram) if scram.starts_with("SCRAM") && decoded.starts_with("r=") => (
            format!(
                "the server-first message `{decoded}`: the client's nonce with the server's appended (r=), the salt (s=) and the PBKDF2 iteration count (i=); the client answers with its proof"
            ),
            "RFC 5802 §5.1",
        ),
        Some(scram) if scram.starts_with("SCRAM") && decoded.starts_with("v=") => (
            format!(
                "the server-final message `{decoded}`: the server's signature, which only a server that knows the password can compute; the client checks it before going on"
            ),
            "RFC 5802 §5.1",
        ),
        _ => (
            format!("the challenge is base64 for `{decoded}`"),
            "RFC 4954 §4",
        ),
    }
}

/// The TLS version and cipher suite of `-- TLS established (…)`.
fn tls_detail(detail: &str) -> Note {
    let (version, rfc) = if detail.contains("TLSv1_3") || detail.contains("TLS13") {
        ("TLS 1.3", "RFC 8446")
    } else if detail.contains("TLSv1_2") {
        ("TLS 1.2", "RFC 5246")
    } else {
        ("TLS", "RFC 8446")
    };
    Note::new(format!("{version}; negotiated: {detail}"), rfc)
}

/// A `-- ` remark by whoever recorded the transcript.
fn recorder_note(text: &str) -> Note {
    let starts = |prefix: &str| text.starts_with(prefix);
    if starts("pipelining (RFC 2920)") {
        Note::new(
            "raw-client wrote the commands below in one go: with PIPELINING, MAIL and RCPT may stand anywhere in a group and DATA only last; AUTH with an initial response may lead",
            "RFC 2920 §3.1; RFC 4954 §4",
        )
    } else if starts("the next ") && text.ends_with("are not recorded") {
        Note::tool(
            "a load run records only each connection's first message, so the transcript stays small",
        )
    } else if starts("certificate verification disabled") {
        Note::tool(
            "with --insecure any certificate is accepted: the connection is encrypted, but whoever answers could be anyone on the path",
        )
    } else if text.contains("of message data not recorded") {
        Note::tool(
            "the transcript keeps the first 256 KiB of each message's data; the rest was sent, and only counted here",
        )
    } else if text.ends_with("as they are (BDAT: no dot-stuffing)") {
        Note::new(
            "the chunk's octets follow its BDAT line exactly as counted: no dot-stuffing and no final \".\" line, since the count says where the data ends",
            "RFC 3030 §2",
        )
    } else if starts("<message: ") {
        Note::tool(
            "--hide-data shows the message data as one line: the octets and lines as sent, dot-stuffed, before the final \".\"",
        )
    } else if starts("stopping after") {
        Note::tool(
            "--quit-after ends the dialogue at this stage, so what a server would answer can be tested without sending a message",
        )
    } else if starts("client connected") {
        Note::new(
            "a client opened a TCP connection; the server speaks first",
            "RFC 5321 §3.1",
        )
    } else if starts("session ended") {
        Note::tool("the test server's own account of why this session ended")
    } else if starts("stalling") {
        Note::tool(
            "a fault the test server was asked to inject (--fault stall), to try the client's timeouts",
        )
    } else if starts("injected plaintext after the STARTTLS reply") {
        Note::new(
            "a fault the test server injects on request: plaintext after the 220 is the response injection attack",
            "RFC 3207 §4.2",
        )
    } else if starts("discarded") && text.contains("before the TLS handshake") {
        Note::new(
            "bytes sent together with STARTTLS are not commands: the server throws them away",
            "RFC 3207 §4.2",
        )
    } else if starts("refused") && text.contains("without PIPELINING") {
        Note::new(
            "the client sent more after the end of data without waiting, though the server offered no PIPELINING",
            "RFC 2920 §3.1",
        )
    } else if starts("the ") && text.contains("earlier message(s) of this session are not repeated")
    {
        Note::tool("this stored transcript leaves out the session's earlier messages")
    } else if starts("TLS handshake failed") {
        Note::new("the TLS handshake did not complete", "RFC 8446 §6")
    } else if starts("command line of") {
        Note::new(
            "a command line is at most 512 octets",
            "RFC 5321 §4.5.3.1.4",
        )
    } else if starts("data line over") {
        Note::new("a text line is at most 1000 octets", "RFC 5321 §4.5.3.1.6")
    } else if starts("SASL response cut short") {
        Note::new("an AUTH line too long for the server", "RFC 4954 §4")
    } else if starts("message over the size limit") {
        Note::new(
            "the message is larger than the server's SIZE",
            "RFC 1870 §6",
        )
    } else if starts("dot-stuffed: ") {
        Note::new(
            "raw-client --interactive doubled the leading dot of the line you typed, as every client must, so that it cannot end the message; the server removes it",
            "RFC 5321 §4.5.2",
        )
    } else if starts("AUTH as ") {
        Note::tool(
            "raw-client --interactive filled in the login from the options (or the embedded server's demo account) instead of asking",
        )
    } else if starts("dropping the connection mid-DATA") {
        Note::tool("a fault the test server was asked to inject (--fault drop-mid-data)")
    } else {
        Note::tool("a remark by whoever recorded this transcript, not a line of the dialogue")
    }
}

fn notes(notes: Vec<Note>) -> Explained {
    Explained {
        notes,
        in_block: false,
    }
}

#[cfg(test)]
mod tests;
