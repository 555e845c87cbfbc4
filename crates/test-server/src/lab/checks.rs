//! The checks: one walk over a session's transcript collects the client's lines with what
//! they were (command, SASL response, message data) and when they came; each check then
//! judges from those steps alone.

use std::collections::{HashMap, VecDeque};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use transcript::{Event, RenderOptions};

use super::{Check, Profile, Status};
use crate::{Session, SessionEnd, Timing};

/// What one client line was.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// A command; the verb upper-cased.
    Command(String),
    /// An answer to a `334` challenge, in the exchange of this mechanism.
    Sasl(String),
    /// A line of message data (the first one of a message is `first`).
    Data { first: bool },
    /// The `.` line that ends the data.
    DataEnd,
    /// Bytes the server threw away unread: sent after STARTTLS before the handshake.
    Discarded,
}

/// One client line, in order.
#[derive(Debug, Clone)]
struct Step {
    /// Its index in the transcript's events (and rendered lines).
    index: usize,
    bytes: Vec<u8>,
    kind: Kind,
    timing: Option<Timing>,
    /// Whether TLS was up when it came.
    tls: bool,
    /// Whether the latest EHLO reply offered PIPELINING.
    pipelining: bool,
    /// The first line of the reply that answered it, if one came.
    reply: Option<String>,
}

/// A session as the checks see it.
struct Walk {
    steps: Vec<Step>,
    /// Rendered (redacted) transcript lines, one per event.
    lines: Vec<String>,
    /// The `--explain` notes of each rendered line.
    notes: Vec<Vec<String>>,
    /// Whether the session used implicit TLS (TLS before the greeting).
    implicit_tls: bool,
    /// Indexes of the client steps right after a multi-line reply.
    after_multiline: Vec<usize>,
    /// The session ended while the client was sending message data.
    ended_in_data: bool,
    reason: SessionEnd,
    closed_before_reply: bool,
    id: String,
}

fn walk(session: &Session) -> Walk {
    let events = session.transcript.events();
    let text = session.transcript.render_text(RenderOptions::default());
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let notes = transcript::explain::explain(&transcript::explain::parse_text(&text))
        .into_iter()
        .map(|explained| explained.notes.iter().map(|n| n.line()).collect())
        .collect();
    let timings: HashMap<usize, Timing> = session.timings.iter().copied().collect();
    let mut steps: Vec<Step> = Vec::new();
    let mut tls = false;
    let mut implicit_tls = false;
    let mut greeted = false;
    let mut pipelining = false;
    // State from the server's replies, as the client should have read them.
    let mut sasl: Option<String> = None;
    let mut in_data = false;
    let mut data_started = false;
    let mut collecting_ehlo = false;
    let mut multiline = false;
    let mut after_multiline = Vec::new();
    // The steps still owed a reply, oldest first, and the first line of the reply
    // being read.
    let mut awaiting: VecDeque<usize> = VecDeque::new();
    let mut reply_start: Option<String> = None;
    // Where the client steps after the latest server line begin.
    let mut since_server = 0;
    let mut last_auth_mechanism = String::new();
    for (index, event) in events.iter().enumerate() {
        match event {
            Event::TlsEstablished { .. } => {
                tls = true;
                implicit_tls |= !greeted;
                pipelining = false;
            }
            Event::Note(note) if note.starts_with("discarded ") => {
                // The note the server's STARTTLS writes: the lines since its 220 were
                // thrown away unread, and no reply is owed to them.
                for step in &mut steps[since_server..] {
                    step.kind = Kind::Discarded;
                }
                awaiting.retain(|&i| i < since_server);
            }
            Event::Server(line) => {
                greeted = true;
                since_server = steps.len();
                let text = String::from_utf8_lossy(line);
                let text = text.trim_end();
                let code = text.get(..3).unwrap_or("");
                let more = text.as_bytes().get(3) == Some(&b'-');
                multiline |= more;
                reply_start.get_or_insert_with(|| text.to_owned());
                if collecting_ehlo {
                    let keyword = text.get(4..).unwrap_or("").to_ascii_uppercase();
                    pipelining |= keyword == "PIPELINING";
                }
                if !more {
                    let first_line = reply_start.take();
                    if let Some(step) = awaiting.pop_front() {
                        steps[step].reply = first_line;
                    }
                    collecting_ehlo = false;
                    if multiline {
                        after_multiline.push(steps.len());
                    }
                    multiline = false;
                    sasl = (code == "334").then(|| last_auth_mechanism.clone());
                    if code == "354" {
                        in_data = true;
                        data_started = false;
                    }
                }
            }
            Event::Client(bytes) => {
                let kind = if in_data {
                    if bytes.as_slice() == b".\r\n" {
                        in_data = false;
                        Kind::DataEnd
                    } else {
                        let first = !std::mem::replace(&mut data_started, true);
                        Kind::Data { first }
                    }
                } else if let Some(mechanism) = sasl.take() {
                    Kind::Sasl(mechanism)
                } else {
                    let text = String::from_utf8_lossy(bytes);
                    let verb = text
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_ascii_uppercase();
                    if verb == "EHLO" {
                        collecting_ehlo = true;
                        pipelining = false;
                    }
                    if verb == "AUTH" {
                        last_auth_mechanism = text
                            .split_whitespace()
                            .nth(1)
                            .unwrap_or("")
                            .to_ascii_uppercase();
                    }
                    Kind::Command(verb)
                };
                if !matches!(kind, Kind::Data { .. }) {
                    awaiting.push_back(steps.len());
                }
                steps.push(Step {
                    index,
                    bytes: bytes.clone(),
                    kind,
                    timing: timings.get(&index).copied(),
                    tls,
                    pipelining,
                    reply: None,
                });
            }
            _ => {}
        }
    }
    Walk {
        steps,
        lines,
        notes,
        implicit_tls,
        after_multiline,
        ended_in_data: in_data,
        reason: session.reason.clone(),
        closed_before_reply: session.closed_before_reply,
        id: session.id.clone(),
    }
}

/// The checks in their fixed order: id, title, RFC section.
pub(super) const CHECKS: [(&str, &str, &str); 15] = [
    (
        "waits-for-greeting",
        "waits for the 220 greeting",
        "RFC 5321 §3.1",
    ),
    ("crlf", "ends every line with CRLF", "RFC 5321 §2.3.8"),
    ("ehlo-first", "starts with EHLO", "RFC 5321 §4.1.1.1"),
    (
        "waits-for-replies",
        "waits for each reply (pipelines only what PIPELINING allows)",
        "RFC 2920 §3.1",
    ),
    (
        "reads-multiline",
        "reads multi-line replies to their last line",
        "RFC 5321 §4.2.1",
    ),
    (
        "starttls-before-auth",
        "sends no AUTH or MAIL before STARTTLS",
        "RFC 3207 §4, RFC 8314 §3",
    ),
    (
        "ehlo-after-starttls",
        "sends EHLO again after STARTTLS",
        "RFC 3207 §4.2",
    ),
    (
        "auth-encoding",
        "encodes AUTH in base64 (PLAIN as NUL user NUL password)",
        "RFC 4954 §4, RFC 4616 §2",
    ),
    (
        "path-syntax",
        "writes MAIL FROM:<...> and RCPT TO:<...>",
        "RFC 5321 §4.1.2",
    ),
    (
        "waits-for-354",
        "waits for 354 before the message",
        "RFC 5321 §4.1.1.4",
    ),
    (
        "dot-stuffing",
        "doubles a dot that starts a line",
        "RFC 5321 §4.5.2",
    ),
    (
        "end-of-data",
        "ends the message with CRLF . CRLF",
        "RFC 5321 §4.1.1.4",
    ),
    (
        "no-bare-lf-in-data",
        "sends no bare LF or CR in the message",
        "RFC 5321 §2.3.8, §4.1.1.4",
    ),
    (
        "message-headers",
        "puts Date and From in the message",
        "RFC 5322 §3.6",
    ),
    ("quit", "sends QUIT and waits for 221", "RFC 5321 §4.1.1.10"),
];

/// A verdict before it is dressed as a [`Check`]: the status, the step it rests on (if
/// any), what it says, and the fix for a failure.
struct Verdict {
    status: Status,
    step: Option<usize>,
    evidence: String,
    fix: Option<String>,
}

fn pass(step: Option<usize>, evidence: impl Into<String>) -> Verdict {
    Verdict {
        status: Status::Pass,
        step,
        evidence: evidence.into(),
        fix: None,
    }
}

fn fail(step: Option<usize>, evidence: impl Into<String>, fix: impl Into<String>) -> Verdict {
    Verdict {
        status: Status::Fail,
        step,
        evidence: evidence.into(),
        fix: Some(fix.into()),
    }
}

fn not_applicable(evidence: impl Into<String>) -> Verdict {
    Verdict {
        status: Status::NotApplicable,
        step: None,
        evidence: evidence.into(),
        fix: None,
    }
}

/// Every check for a lab run in which no client connected.
pub(super) fn nothing_to_grade() -> Vec<Check> {
    CHECKS
        .iter()
        .map(|(id, title, rfc)| Check {
            id,
            title,
            status: Status::NotApplicable,
            rfc,
            evidence: "the client never connected".to_owned(),
            detail: "the client never connected".to_owned(),
            fix: None,
            explain: Vec::new(),
            session: None,
        })
        .collect()
}

/// Judges every check on one session.
pub(super) fn judge(profile: Profile, session: &Session) -> Vec<Check> {
    let walk = walk(session);
    let verdicts = [
        waits_for_greeting(&walk),
        crlf(&walk),
        ehlo_first(&walk, profile),
        waits_for_replies(&walk),
        reads_multiline(&walk),
        starttls_before_auth(&walk, profile),
        ehlo_after_starttls(&walk),
        auth_encoding(&walk),
        path_syntax(&walk),
        waits_for_354(&walk),
        dot_stuffing(&walk),
        end_of_data(&walk),
        no_bare_lf_in_data(&walk),
        message_headers(&walk),
        quit(&walk),
    ];
    CHECKS
        .iter()
        .zip(verdicts)
        .map(|((id, title, rfc), verdict)| {
            let evidence = verdict
                .step
                .and_then(|step| walk.line(step))
                .unwrap_or_else(|| verdict.evidence.clone());
            let explain = match (verdict.status, verdict.step) {
                (Status::Fail, Some(step)) => walk.notes_of(step),
                _ => Vec::new(),
            };
            Check {
                id,
                title,
                status: verdict.status,
                rfc,
                evidence,
                detail: verdict.evidence,
                fix: verdict.fix,
                explain,
                session: Some(walk.id.clone()),
            }
        })
        .collect()
}

impl Walk {
    /// The rendered (redacted) transcript line of step `step`.
    fn line(&self, step: usize) -> Option<String> {
        let index = self.steps.get(step)?.index;
        self.lines.get(index).cloned()
    }

    fn notes_of(&self, step: usize) -> Vec<String> {
        self.steps
            .get(step)
            .and_then(|s| self.notes.get(s.index))
            .cloned()
            .unwrap_or_default()
    }

    /// Steps that are commands (or SASL answers), with their positions.
    fn commands(&self) -> impl Iterator<Item = (usize, &Step)> {
        self.steps
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s.kind, Kind::Command(_) | Kind::Sasl(_)))
    }

    fn verb_steps<'a>(&'a self, verbs: &'a [&str]) -> impl Iterator<Item = (usize, &'a Step)> {
        self.steps
            .iter()
            .enumerate()
            .filter(move |(_, s)| match &s.kind {
                Kind::Command(verb) => verbs.contains(&verb.as_str()),
                _ => false,
            })
    }

    /// Where the client's reads fell out of step with the replies: the first line it
    /// sent while a reply was still arriving. Timing checks stop there, since every
    /// later line follows from that one mistake.
    fn desynced_at(&self) -> Option<usize> {
        self.steps
            .iter()
            .position(|s| s.timing == Some(Timing::DuringReply))
    }

    fn data_lines(&self) -> impl Iterator<Item = (usize, &Step)> {
        self.steps
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s.kind, Kind::Data { .. }))
    }

    fn has_data(&self) -> bool {
        self.data_lines().next().is_some() || self.steps.iter().any(|s| s.kind == Kind::DataEnd)
    }
}

const NO_DATA: &str = "the client sent no message data (no DATA answered by 354)";

fn waits_for_greeting(walk: &Walk) -> Verdict {
    let Some(first) = walk.steps.first() else {
        return not_applicable("the client sent nothing");
    };
    match first.timing {
        Some(Timing::BeforeReply) => fail(
            Some(0),
            "sent before the server's 220 greeting",
            "read the 220 greeting before sending anything: the server speaks first",
        ),
        _ => pass(Some(0), "sent after the greeting"),
    }
}

fn crlf(walk: &Walk) -> Verdict {
    let mut any = false;
    // Past a misread reply, what the client sends may not be commands at all (a TLS
    // handshake into a plaintext session): those lines are not judged.
    let stop = walk.desynced_at().unwrap_or(usize::MAX);
    for (i, step) in walk.commands().filter(|(i, _)| *i <= stop) {
        any = true;
        if !step.bytes.ends_with(b"\r\n") {
            let what = if step.bytes.ends_with(b"\n") {
                "ends in a bare LF"
            } else {
                "never ended (no CRLF before the connection closed)"
            };
            return fail(
                Some(i),
                format!("this line {what}"),
                "end every command line with \"\\r\\n\" (CR LF), not \"\\n\" alone",
            );
        }
    }
    match any {
        true => pass(None, "every command line ended with CRLF"),
        false => not_applicable("the client sent no command"),
    }
}

fn ehlo_first(walk: &Walk, profile: Profile) -> Verdict {
    let Some((i, step)) = walk.commands().next() else {
        return not_applicable("the client sent no command");
    };
    match &step.kind {
        Kind::Command(verb) if verb == "EHLO" => pass(Some(i), "the first command is EHLO"),
        Kind::Command(verb) if verb == "HELO" && !profile.has_auth() => pass(
            Some(i),
            "HELO, which this profile accepts as the first command",
        ),
        Kind::Command(verb) if verb == "HELO" => fail(
            Some(i),
            "HELO opens the session, so the server lists no extensions (no STARTTLS, no AUTH)",
            "send EHLO with your host name: only EHLO makes the server list its extensions",
        ),
        _ => fail(
            Some(i),
            "the first command is not EHLO",
            "after the greeting, send EHLO with your host name before anything else",
        ),
    }
}

/// RFC 2920 §3.1: which commands may be followed in the same flight by another (with
/// PIPELINING): MAIL, RCPT and RSET, and the end of the message data; and BDAT, whose
/// chunks may be pipelined (RFC 3030 §2, the example of §4.2). This lab also lets an AUTH
/// that carries its whole initial response lead a group (RFC 4954 §4 saves the round trip
/// for it, and servers accept it pipelined).
fn may_be_followed(step: &Step) -> bool {
    match &step.kind {
        Kind::Command(verb) => match verb.as_str() {
            "MAIL" | "RCPT" | "RSET" | "BDAT" => true,
            "AUTH" => {
                let text = String::from_utf8_lossy(&step.bytes);
                let words: Vec<&str> = text.split_whitespace().collect();
                words.len() == 3 && words[1].eq_ignore_ascii_case("PLAIN")
            }
            _ => false,
        },
        Kind::DataEnd => true,
        _ => false,
    }
}

fn waits_for_replies(walk: &Walk) -> Verdict {
    let stop = walk.desynced_at().unwrap_or(walk.steps.len());
    let mut judged = false;
    for i in 1..stop {
        let (step, previous) = (&walk.steps[i], &walk.steps[i - 1]);
        if matches!(step.kind, Kind::Data { .. } | Kind::DataEnd) {
            continue;
        }
        judged = true;
        if step.timing != Some(Timing::BeforeReply) {
            continue;
        }
        let previous_text = walk.line(i - 1).unwrap_or_default();
        if step.kind == Kind::Discarded {
            return fail(
                Some(i),
                "sent after STARTTLS before the 220 reply, so the server threw it away",
                "after STARTTLS wait for 220, do the TLS handshake, then send EHLO (STARTTLS \
                 must be the last command of a flight, RFC 3207 §4.2)",
            );
        }
        if let Kind::Sasl(_) = step.kind {
            return fail(
                Some(i),
                format!("sent before the server's 334 challenge to {previous_text}"),
                "read each 334 challenge before sending the answer to it (RFC 4954 §4)",
            );
        }
        if !step.pipelining {
            return fail(
                Some(i),
                format!(
                    "sent before the reply to {previous_text}, and the server did not offer PIPELINING"
                ),
                "read the whole reply to each command before sending the next one",
            );
        }
        if !may_be_followed(previous) {
            return fail(
                Some(i),
                format!("sent in the same flight as {previous_text}, which must end a flight"),
                "with PIPELINING only MAIL, RCPT and RSET (and the end of the message) may be \
                 followed by more commands before their replies; wait for the reply to EHLO, \
                 STARTTLS, AUTH, DATA, NOOP and QUIT",
            );
        }
    }
    match (judged, walk.desynced_at()) {
        (true, None) => pass(
            None,
            "every command waited for its reply, or was pipelined as RFC 2920 allows",
        ),
        (true, Some(at)) => pass(
            None,
            format!(
                "every command up to {} waited for its reply; later ones are judged by reads-multiline",
                walk.line(at).unwrap_or_default()
            ),
        ),
        (false, Some(at)) => not_applicable(format!(
            "the client's reads were out of step from {} on (see reads-multiline)",
            walk.line(at).unwrap_or_default()
        )),
        (false, None) => not_applicable("the client sent only one command"),
    }
}

fn reads_multiline(walk: &Walk) -> Verdict {
    if let Some(at) = walk.desynced_at() {
        let interrupted = match at.checked_sub(1) {
            None => "the greeting".to_owned(),
            Some(before) => match walk.steps[before].reply.as_deref() {
                Some(first) => format!("the reply that starts \"{first}\""),
                None => "the reply before it".to_owned(),
            },
        };
        return fail(
            Some(at),
            format!("sent while {interrupted} was still arriving"),
            "keep reading until the reply line with a space after the code (\"250 \"), not \
             \"250-\": one read from the socket may hold part of a reply, or several",
        );
    }
    match walk.after_multiline.iter().find(|&&i| i < walk.steps.len()) {
        Some(&i) => pass(Some(i), "sent after the whole multi-line reply"),
        None => not_applicable("no multi-line reply was followed by a command"),
    }
}

fn starttls_before_auth(walk: &Walk, profile: Profile) -> Verdict {
    if !profile.has_auth() {
        return not_applicable("this profile has no TLS and no AUTH");
    }
    if walk.implicit_tls {
        return not_applicable("the connection was TLS from its first byte (implicit TLS)");
    }
    match walk.verb_steps(&["AUTH", "MAIL"]).next() {
        None => not_applicable("the client sent neither AUTH nor MAIL"),
        Some((i, step)) if !step.tls => fail(
            Some(i),
            "sent in plaintext: anyone on the path could read it",
            "send STARTTLS after the first EHLO, do the TLS handshake, and only then AUTH and MAIL",
        ),
        Some((i, _)) => pass(Some(i), "sent after TLS was established"),
    }
}

fn ehlo_after_starttls(walk: &Walk) -> Verdict {
    let Some((starttls, _)) = walk.verb_steps(&["STARTTLS"]).next() else {
        return not_applicable("the client did not use STARTTLS");
    };
    let after = walk
        .commands()
        .find(|(i, step)| *i > starttls && step.tls && step.kind != Kind::Discarded);
    match after {
        None => not_applicable("the client sent no command after the TLS handshake"),
        Some((i, step)) if step.kind == Kind::Command("EHLO".to_owned()) => {
            pass(Some(i), "the first command after the handshake is EHLO")
        }
        Some((i, _)) => fail(
            Some(i),
            "the first command after the TLS handshake is not EHLO",
            "after the handshake send EHLO again: the server forgets what it said before TLS, \
             and the new EHLO reply (with AUTH) is the one to trust",
        ),
    }
}

/// What is wrong with one base64 AUTH payload, for mechanism `mechanism`.
fn payload_problem(mechanism: &str, text: &str) -> Option<String> {
    if text == "*" {
        return None;
    }
    let decoded = match text {
        "=" => Vec::new(),
        _ => match BASE64.decode(text) {
            Ok(decoded) => decoded,
            Err(_) => return Some("this is not valid base64".to_owned()),
        },
    };
    if mechanism == "PLAIN" {
        let nuls = decoded.iter().filter(|&&b| b == 0).count();
        let parts: Vec<&[u8]> = decoded.split(|&b| b == 0).collect();
        if nuls != 2 {
            return Some(format!(
                "the decoded PLAIN message has {nuls} NUL byte(s); it needs 2: NUL user NUL password"
            ));
        }
        if parts.get(1).is_none_or(|p| p.is_empty()) || parts.get(2).is_none_or(|p| p.is_empty()) {
            return Some("the decoded PLAIN message has an empty user or password".to_owned());
        }
    } else if mechanism == "LOGIN" && decoded.is_empty() {
        return Some("an empty LOGIN answer".to_owned());
    }
    None
}

fn auth_encoding(walk: &Walk) -> Verdict {
    let mut any = false;
    for (i, step) in walk.steps.iter().enumerate() {
        let text = String::from_utf8_lossy(&step.bytes);
        let text = text.trim_end_matches(['\r', '\n']);
        let problem = match &step.kind {
            Kind::Command(verb) if verb == "AUTH" => {
                any = true;
                let words: Vec<&str> = text.split_whitespace().collect();
                match words.as_slice() {
                    [_, mechanism, initial] => {
                        payload_problem(&mechanism.to_ascii_uppercase(), initial)
                    }
                    _ => None,
                }
            }
            Kind::Sasl(mechanism) => payload_problem(mechanism, text),
            _ => None,
        };
        if let Some(problem) = problem {
            return fail(
                Some(i),
                problem,
                "base64-encode the SASL message; for PLAIN it is \"\\0user\\0password\" \
                 (an empty authorization identity, then the user and password, each after a NUL)",
            );
        }
    }
    match any {
        true => pass(None, "every AUTH message was well-formed base64"),
        false => not_applicable("the client did not authenticate"),
    }
}

fn path_syntax(walk: &Walk) -> Verdict {
    let mut any = false;
    for (i, step) in walk.verb_steps(&["MAIL", "RCPT"]) {
        any = true;
        let text = String::from_utf8_lossy(&step.bytes).to_ascii_uppercase();
        let keyword = if text.starts_with("MAIL") {
            "MAIL FROM:"
        } else {
            "RCPT TO:"
        };
        let rest = text.strip_prefix(keyword).unwrap_or("");
        let problem = if !text.starts_with(keyword) {
            Some(format!("expected {keyword} with no space before the colon"))
        } else if rest.starts_with(' ') {
            Some(format!("a space after {keyword}"))
        } else if !rest.starts_with('<') || !rest.contains('>') {
            Some("the address is not inside < >".to_owned())
        } else {
            None
        };
        if let Some(problem) = problem {
            return fail(
                Some(i),
                problem,
                format!(
                    "write {keyword}<address> exactly: no space, angle brackets around the address"
                ),
            );
        }
    }
    match any {
        true => pass(
            None,
            "every MAIL FROM and RCPT TO was written as RFC 5321 asks",
        ),
        false => not_applicable("the client sent neither MAIL nor RCPT"),
    }
}

fn waits_for_354(walk: &Walk) -> Verdict {
    let Some((i, step)) = walk
        .data_lines()
        .find(|(_, s)| s.kind == Kind::Data { first: true })
        .or_else(|| {
            walk.steps
                .iter()
                .enumerate()
                .find(|(_, s)| s.kind == Kind::DataEnd)
        })
    else {
        return not_applicable(NO_DATA);
    };
    if walk.desynced_at().is_some_and(|at| at < i) {
        return not_applicable(
            "the client's reads were out of step before DATA (see reads-multiline)",
        );
    }
    match step.timing {
        Some(Timing::BeforeReply) => fail(
            Some(i),
            "the message started before the server's 354",
            "after DATA wait for the 354 reply: the server may refuse the DATA (no valid \
             recipients), and then the message would be read as commands",
        ),
        _ => pass(Some(i), "the message started after the 354"),
    }
}

fn dot_stuffing(walk: &Walk) -> Verdict {
    let mut stuffed = None;
    for (i, step) in walk.data_lines() {
        if step.bytes.starts_with(b"..") {
            stuffed.get_or_insert(i);
        } else if step.bytes.starts_with(b".") {
            return fail(
                Some(i),
                "a message line starting with a single dot: the server removes it, so the \
                 message lost a character",
                "before sending, add a dot to every line of the message that starts with one \
                 (\".x\" goes out as \"..x\"); the server takes it off again",
            );
        }
    }
    match (stuffed, walk.has_data()) {
        (Some(i), _) => pass(Some(i), "a line starting with a dot was sent doubled"),
        (None, true) => not_applicable(
            "the message had no line starting with a dot; put one in (such as \".signature\") to test this",
        ),
        (None, false) => not_applicable(NO_DATA),
    }
}

/// A failure that may only follow from the client's reads being out of step (see
/// `reads-multiline`) is not judged on its own.
fn unless_desynced(walk: &Walk, verdict: Verdict) -> Verdict {
    match (verdict.status, walk.desynced_at()) {
        (Status::Fail, Some(at)) => not_applicable(format!(
            "{}, but the client's reads were out of step from {} on (see reads-multiline)",
            verdict.evidence,
            walk.line(at).unwrap_or_default()
        )),
        _ => verdict,
    }
}

fn end_of_data(walk: &Walk) -> Verdict {
    unless_desynced(walk, end_of_data_as_sent(walk))
}

fn end_of_data_as_sent(walk: &Walk) -> Verdict {
    if walk.ended_in_data {
        let last = walk.steps.len().checked_sub(1);
        let why = match &walk.reason {
            SessionEnd::IdleTimeout { .. } | SessionEnd::SessionTimeout { .. } => {
                "the server was still waiting for the end of the message when it timed out"
            }
            _ => "the connection ended inside the message data",
        };
        return fail(
            last,
            format!("the last line the client sent; {why}"),
            "end the message with a line holding only a dot: \"\\r\\n.\\r\\n\" after the \
             last line (\"\\n.\\n\" does not end it)",
        );
    }
    match walk.steps.iter().position(|s| s.kind == Kind::DataEnd) {
        Some(i) => pass(Some(i), "the message ended with CRLF . CRLF"),
        None => not_applicable(NO_DATA),
    }
}

fn no_bare_lf_in_data(walk: &Walk) -> Verdict {
    for (i, step) in walk.data_lines() {
        let body = step.bytes.strip_suffix(b"\r\n").unwrap_or(&step.bytes);
        if body.contains(&b'\n') || body.contains(&b'\r') || !step.bytes.ends_with(b"\r\n") {
            return fail(
                Some(i),
                "a line of the message ends in a bare LF (or holds a bare CR)",
                "convert every line ending of the message to CRLF before sending: servers \
                 refuse bare LF in data, as it is how SMTP smuggling works",
            );
        }
    }
    match walk.has_data() {
        true => pass(None, "every line of the message ended with CRLF"),
        false => not_applicable(NO_DATA),
    }
}

fn message_headers(walk: &Walk) -> Verdict {
    let mut date = false;
    let mut from = false;
    let mut first = None;
    for (i, step) in walk.data_lines() {
        if step.kind == (Kind::Data { first: true }) && first.is_some() {
            break;
        }
        first.get_or_insert(i);
        let line = step.bytes.strip_prefix(b".").unwrap_or(&step.bytes);
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        date |= lower.starts_with(b"date:");
        from |= lower.starts_with(b"from:");
    }
    let Some(first) = first else {
        return not_applicable(NO_DATA);
    };
    let missing: Vec<&str> = [("Date", date), ("From", from)]
        .iter()
        .filter(|(_, present)| !present)
        .map(|(name, _)| *name)
        .collect();
    match missing.as_slice() {
        [] => pass(Some(first), "the header section has Date: and From:"),
        names => fail(
            Some(first),
            format!(
                "the message header section has no {} field",
                names.join(" and no ")
            ),
            "start the message with header fields, Date: (RFC 5322 §3.3 format) and From: at \
             least, then an empty line, then the body",
        ),
    }
}

fn quit(walk: &Walk) -> Verdict {
    if walk.ended_in_data {
        return not_applicable(
            "the session ended inside the message data, before QUIT could come (see end-of-data)",
        );
    }
    unless_desynced(walk, quit_as_sent(walk))
}

fn quit_as_sent(walk: &Walk) -> Verdict {
    let Some((i, step)) = walk.verb_steps(&["QUIT"]).last() else {
        let last = walk.steps.len().checked_sub(1);
        let why = match &walk.reason {
            SessionEnd::IdleTimeout { .. } | SessionEnd::SessionTimeout { .. } => {
                "the client never sent QUIT; the server timed out waiting"
            }
            _ => "the client closed the connection without QUIT",
        };
        return fail(
            last,
            why,
            "end the session with QUIT and read the 221 before closing the socket",
        );
    };
    if walk.closed_before_reply || step.reply.is_none() {
        return fail(
            Some(i),
            "the client closed the connection before the server's 221 reply",
            "after QUIT, read the 221 reply, then close the socket",
        );
    }
    pass(Some(i), "QUIT, answered 221 before the connection closed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_messages_are_checked_for_their_nul_bytes() {
        let encode = |raw: &[u8]| BASE64.encode(raw);
        assert_eq!(payload_problem("PLAIN", &encode(b"\0user\0pass")), None);
        assert_eq!(payload_problem("PLAIN", &encode(b"user\0user\0pass")), None);
        assert!(
            payload_problem("PLAIN", &encode(b"user\0pass")).is_some_and(|p| p.contains("1 NUL"))
        );
        assert!(payload_problem("PLAIN", &encode(b"\0\0pass")).is_some());
        assert!(payload_problem("PLAIN", "not base64!").is_some());
        assert_eq!(payload_problem("LOGIN", &encode(b"user")), None);
        assert!(payload_problem("LOGIN", "=").is_some());
        assert_eq!(payload_problem("PLAIN", "*"), None);
    }
}
