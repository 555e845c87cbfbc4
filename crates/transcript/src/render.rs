//! Recording events into a transcript and rendering it as text or JSON Lines.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::explain::{self, Line, Note};
use crate::{Certificate, Event};

/// How to render a transcript.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RenderOptions {
    /// Show AUTH payloads instead of `<redacted>` (`--show-secrets`).
    pub show_secrets: bool,
    /// Show details only one client knows, such as the TLS version and cipher suite.
    pub details: bool,
    /// Follow each line with what it means (`--explain`): `# ` lines in text, an `explain`
    /// list in JSON.
    pub explain: bool,
    /// Show the message data as one line, `<message: N octets, M lines>` (`--hide-data`).
    pub hide_data: bool,
    /// Start each line with the seconds since the connection opened (`--timestamps`); in
    /// JSON a `t` member.
    pub timestamps: bool,
}

/// How much message data one message may add to a transcript. Beyond this the lines are
/// counted, not kept, so sending a 100 MB attachment costs the transcript nothing.
pub const DATA_RECORD_LIMIT: usize = 256 * 1024;

/// The ordered events of one SMTP connection, each with the moment it was recorded.
///
/// Two transcripts are equal when their events are: the moments are not compared.
#[derive(Debug, Clone)]
pub struct Transcript {
    events: Vec<Event>,
    /// When each event was recorded, one per event.
    times: Vec<Instant>,
    /// When the transcript was started: before connecting, so the first event's time is
    /// how long connecting took.
    started: Instant,
    pending_client: Vec<u8>,
    pending_server: Vec<u8>,
    /// Message data is being recorded (after a `354`, until the `.` line).
    in_data: bool,
    /// Bytes of message data recorded for the current message.
    data_recorded: usize,
    /// Lines and bytes of message data not recorded for the current message.
    data_skipped: (u64, u64),
}

/// What the client is currently sending, as far as redaction is concerned.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Ordinary commands.
    Commands,
    /// The next client line answers a `334` challenge and is a secret.
    SaslResponse,
    /// Message content after a `354`, up to the line that is exactly `.`.
    Data,
}

const REDACTED: &str = "<redacted>";

impl Default for Transcript {
    fn default() -> Self {
        Transcript {
            events: Vec::new(),
            times: Vec::new(),
            started: Instant::now(),
            pending_client: Vec::new(),
            pending_server: Vec::new(),
            in_data: false,
            data_recorded: 0,
            data_skipped: (0, 0),
        }
    }
}

impl PartialEq for Transcript {
    fn eq(&self, other: &Self) -> bool {
        self.events == other.events
            && self.pending_client == other.pending_client
            && self.pending_server == other.pending_server
    }
}

impl Eq for Transcript {}

/// What [`Transcript::timing`] measures, each from the start of the transcript.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timing {
    /// The TCP connection was up.
    pub connected: Option<Duration>,
    /// The (first) TLS handshake was done.
    pub tls: Option<Duration>,
    /// The first line of message data went out.
    pub data: Option<Duration>,
    /// The last event.
    pub total: Duration,
}

/// The note that stands for message data beyond [`DATA_RECORD_LIMIT`].
fn skipped_note(lines: u64, bytes: u64) -> String {
    format!("{lines} more lines ({bytes} bytes) of message data not recorded")
}

/// The note that stands for one BDAT chunk's octets (RFC 3030 §2): they are not lines, and
/// may be binary, so they are counted, not shown.
fn chunk_note(octets: u64) -> String {
    format!("{octets} octets of message data in this chunk, as they are (BDAT: no dot-stuffing)")
}

/// The count in a [`chunk_note`].
fn parse_chunk(note: &str) -> Option<u64> {
    let count = note.strip_suffix(
        " octets of message data in this chunk, as they are (BDAT: no dot-stuffing)",
    )?;
    count.parse().ok()
}

/// The counts in a [`skipped_note`].
fn parse_skipped(note: &str) -> Option<(u64, u64)> {
    let rest = note.strip_suffix(" bytes) of message data not recorded")?;
    let (lines, bytes) = rest.split_once(" more lines (")?;
    Some((lines.parse().ok()?, bytes.parse().ok()?))
}

impl Transcript {
    /// An empty transcript.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that the connection to `peer` is up.
    pub fn connected(&mut self, peer: impl Into<String>) {
        self.push(Event::Connected { peer: peer.into() });
    }

    /// Records bytes the client wrote, in any chunking.
    pub fn client(&mut self, bytes: &[u8]) {
        self.flush_server();
        let mut rest = bytes;
        while let Some(at) = rest.iter().position(|&b| b == b'\n') {
            let piece = &rest[..=at];
            rest = &rest[at + 1..];
            // Past the limit, whole data lines are only counted: no allocation per line.
            if self.data_skipped.0 > 0 && self.pending_client.is_empty() && piece != b".\r\n" {
                self.data_skipped.0 += 1;
                self.data_skipped.1 += piece.len() as u64;
                continue;
            }
            self.pending_client.extend_from_slice(piece);
            let line = std::mem::take(&mut self.pending_client);
            self.client_line(line);
        }
        self.pending_client.extend_from_slice(rest);
    }

    /// Records bytes the server wrote, in any chunking.
    pub fn server(&mut self, bytes: &[u8]) {
        self.flush_client();
        let mut rest = bytes;
        while let Some(at) = rest.iter().position(|&b| b == b'\n') {
            self.pending_server.extend_from_slice(&rest[..=at]);
            rest = &rest[at + 1..];
            let line = std::mem::take(&mut self.pending_server);
            // The last line of a 354 reply starts the message data (RFC 5321 §4.1.1.4).
            if line.starts_with(b"354") && line.get(3) != Some(&b'-') {
                self.in_data = true;
                self.data_recorded = 0;
            }
            self.record(Event::Server(line));
        }
        self.pending_server.extend_from_slice(rest);
    }

    /// Keeps one complete client line, or only counts it if the message data is too long.
    fn client_line(&mut self, line: Vec<u8>) {
        if self.in_data {
            if line == b".\r\n" {
                self.in_data = false;
                let (lines, bytes) = std::mem::take(&mut self.data_skipped);
                if lines > 0 {
                    self.record(Event::Note(skipped_note(lines, bytes)));
                }
            } else if self.data_recorded + line.len() > DATA_RECORD_LIMIT {
                self.data_skipped.0 += 1;
                self.data_skipped.1 += line.len() as u64;
                return;
            } else {
                self.data_recorded += line.len();
            }
        }
        self.record(Event::Client(line));
    }

    /// Records that TLS is established, with optional version and cipher details.
    pub fn tls_established(&mut self, detail: Option<String>) {
        self.push(Event::TlsEstablished {
            detail,
            certificate: None,
        });
    }

    /// Adds the server's certificate to the latest TLS event (a client learns it only once
    /// the handshake is done, and lettre only once its call returns).
    pub fn tls_certificate(&mut self, certificate: Certificate) {
        let latest = self.events.iter_mut().rev().find_map(|event| match event {
            Event::TlsEstablished { certificate, .. } => Some(certificate),
            _ => None,
        });
        if let Some(slot) = latest {
            *slot = Some(Box::new(certificate));
        }
    }

    /// Records the octets of one BDAT chunk the client sent (RFC 3030 §2), as a count.
    pub fn chunk_data(&mut self, octets: u64) {
        self.push(Event::Note(chunk_note(octets)));
    }

    /// Records a remark shown as `-- text`.
    pub fn note(&mut self, text: impl Into<String>) {
        self.push(Event::Note(text.into()));
    }

    /// Records that the connection was closed.
    pub fn closed(&mut self) {
        self.push(Event::Closed);
    }

    /// Appends every event of `other` (used to join the transcripts of several connections).
    pub fn extend(&mut self, mut other: Transcript) {
        self.flush();
        other.flush();
        self.events.append(&mut other.events);
        self.times.append(&mut other.times);
    }

    /// The number of events recorded so far, not counting a line not yet ended: a position
    /// for [`Transcript::slice`].
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether nothing has been recorded yet.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.pending_client.is_empty() && self.pending_server.is_empty()
    }

    /// The events in `range` (positions as [`Transcript::len`] counts them) as a transcript
    /// of their own, copying only those events. Cut where a command begins, so that secrets
    /// are still recognized and redacted.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Transcript {
        let end = range.end.min(self.events.len());
        let start = range.start.min(end);
        Transcript {
            events: self.events[start..end].to_vec(),
            times: self.times[start..end].to_vec(),
            started: self.started,
            ..Transcript::default()
        }
    }

    /// The events so far, including any partial line not yet ended.
    pub fn events(&self) -> Vec<Event> {
        let mut copy = self.clone();
        copy.flush();
        copy.events
    }

    /// Every byte the client sent, concatenated exactly as it went on the wire.
    pub fn client_bytes(&self) -> Vec<u8> {
        self.direction_bytes(|event| match event {
            Event::Client(line) => Some(line),
            _ => None,
        })
    }

    /// Every byte the server sent, concatenated exactly as it went on the wire.
    pub fn server_bytes(&self) -> Vec<u8> {
        self.direction_bytes(|event| match event {
            Event::Server(line) => Some(line),
            _ => None,
        })
    }

    /// The text rendering: one line per protocol line, `C: `, `S: ` or `-- ` first.
    pub fn render_text(&self, options: RenderOptions) -> String {
        self.render_text_with(options, &[])
    }

    /// [`Transcript::render_text`], with `closing` notes after the last line when explaining
    /// (what went wrong, when the dialogue ended in a failure).
    pub fn render_text_with(&self, options: RenderOptions, closing: &[Note]) -> String {
        let rendered = self.rendered(options);
        let explained = explained(&rendered, options, closing);
        let connected = connected_at(&rendered);
        let mut out = String::new();
        for (Rendered { event, text, at }, notes) in rendered.iter().zip(explained) {
            let prefix = match event {
                Event::Client(_) => "C: ",
                Event::Server(_) => "S: ",
                _ => "-- ",
            };
            if options.timestamps {
                let _ = write!(out, "[{:8.3}] ", seconds(*at, connected));
            }
            out.push_str(prefix);
            out.push_str(text);
            out.push('\n');
            for note in notes {
                out.push_str("# ");
                out.push_str(&note.line());
                out.push('\n');
            }
        }
        out
    }

    /// The JSON Lines rendering: one object per event, with `kind` and `text`.
    pub fn render_json(&self, options: RenderOptions) -> String {
        self.render_json_with(options, &[])
    }

    /// [`Transcript::render_json`], with `closing` notes on the last event when explaining.
    /// The `explain` list comes last in each object, so removing it gives the plain line.
    pub fn render_json_with(&self, options: RenderOptions, closing: &[Note]) -> String {
        let rendered = self.rendered(options);
        let explained = explained(&rendered, options, closing);
        let connected = connected_at(&rendered);
        let mut out = String::new();
        for (Rendered { event, text, at }, notes) in rendered.iter().zip(explained) {
            let kind = match event {
                Event::Connected { .. } => "connected",
                Event::Client(_) => "client",
                Event::Server(_) => "server",
                Event::TlsEstablished { .. } => "tls",
                Event::Note(_) => "note",
                Event::Closed => "closed",
            };
            let mut object = serde_json::json!({ "kind": kind, "text": text });
            if options.timestamps {
                // Milliseconds, as a number of seconds.
                let t = (seconds(*at, connected) * 1000.0).round() / 1000.0;
                object["t"] = serde_json::json!(t);
            }
            let object = object.to_string();
            if options.explain {
                let list: Vec<serde_json::Value> = notes
                    .iter()
                    .map(|note| serde_json::json!({ "rfc": note.rfc, "text": note.text }))
                    .collect();
                let list = serde_json::Value::Array(list);
                let open = object.strip_suffix('}').unwrap_or(&object);
                let _ = writeln!(out, "{open},\"explain\":{list}}}");
            } else {
                let _ = writeln!(out, "{object}");
            }
        }
        out
    }

    /// Each event with its text, as the options show it, and its moment.
    fn rendered(&self, options: RenderOptions) -> Vec<Rendered> {
        let mut phase = Phase::Commands;
        let mut out = Vec::new();
        // --hide-data: the message so far, as (first moment, lines, octets).
        let mut hidden: Option<(Instant, u64, u64)> = None;
        let summary = |(at, lines, octets): (Instant, u64, u64)| Rendered {
            event: Event::Client(Vec::new()),
            text: format!("<message: {octets} octets, {lines} lines>"),
            at,
        };
        for (event, at) in self.timed_events() {
            if options.hide_data && phase == Phase::Data {
                let counted = match &event {
                    Event::Client(line) if line != b".\r\n" => Some((1, line.len() as u64)),
                    Event::Note(note) => parse_skipped(note),
                    _ => None,
                };
                if let Some((lines, octets)) = counted {
                    let so_far = hidden.get_or_insert((at, 0, 0));
                    so_far.1 += lines;
                    so_far.2 += octets;
                    continue;
                }
                if let Some(so_far) = hidden.take() {
                    out.push(summary(so_far));
                }
            }
            let text = match &event {
                Event::Connected { peer } => format!("connected to {peer}"),
                Event::Client(line) => {
                    let (text, next) = client_line(line, phase, options.show_secrets);
                    phase = next;
                    text
                }
                Event::Server(line) => {
                    phase = after_server_line(line, phase);
                    escape(line)
                }
                Event::TlsEstablished { detail, .. } => match detail {
                    Some(detail) if options.details => format!("TLS established ({detail})"),
                    _ => "TLS established".to_owned(),
                },
                Event::Note(text) => text.clone(),
                Event::Closed => "connection closed".to_owned(),
            };
            out.push(Rendered { event, text, at });
        }
        if let Some(so_far) = hidden {
            out.push(summary(so_far));
        }
        out
    }

    /// The events so far with their moments, including any partial line not yet ended.
    fn timed_events(&self) -> Vec<(Event, Instant)> {
        let mut copy = self.clone();
        copy.flush();
        copy.events.into_iter().zip(copy.times).collect()
    }

    /// How many octets the client sent, counting message data that was not recorded.
    pub fn client_octets(&self) -> u64 {
        // The recorded events, without copying them, and the line not yet ended.
        let pending = self.pending_client.len() as u64;
        pending
            + self
                .events
                .iter()
                .map(|event| match event {
                    Event::Client(line) => line.len() as u64,
                    Event::Note(note) => parse_skipped(note)
                        .map(|(_, bytes)| bytes)
                        .or_else(|| parse_chunk(note))
                        .unwrap_or(0),
                    _ => 0,
                })
                .sum::<u64>()
    }

    /// When the connection, TLS and the message data began, and the whole duration.
    pub fn timing(&self) -> Timing {
        let since = |at: Instant| at.saturating_duration_since(self.started);
        let mut timing = Timing::default();
        let mut phase = Phase::Commands;
        // The recorded events without copying them; a line not yet ended changes nothing.
        for (event, &at) in self.events.iter().zip(&self.times) {
            timing.total = since(at);
            match event {
                Event::Connected { .. } => {
                    timing.connected.get_or_insert(since(at));
                }
                Event::TlsEstablished { .. } => {
                    timing.tls.get_or_insert(since(at));
                }
                Event::Server(line) => phase = after_server_line(line, phase),
                Event::Note(note) if parse_chunk(note).is_some() => {
                    timing.data.get_or_insert(since(at));
                }
                Event::Client(line) => {
                    if phase == Phase::Data {
                        timing.data.get_or_insert(since(at));
                    }
                    phase = client_line(line, phase, true).1;
                }
                _ => {}
            }
        }
        timing
    }

    fn direction_bytes(&self, pick: impl Fn(&Event) -> Option<&Vec<u8>>) -> Vec<u8> {
        self.events()
            .iter()
            .filter_map(|event| pick(event).cloned())
            .flatten()
            .collect()
    }

    fn push(&mut self, event: Event) {
        self.flush();
        self.record(event);
    }

    /// The one place an event is added, with its moment.
    fn record(&mut self, event: Event) {
        self.events.push(event);
        self.times.push(Instant::now());
    }

    fn flush(&mut self) {
        self.flush_client();
        self.flush_server();
    }

    fn flush_client(&mut self) {
        if !self.pending_client.is_empty() {
            let line = std::mem::take(&mut self.pending_client);
            self.record(Event::Client(line));
        }
    }

    fn flush_server(&mut self) {
        if !self.pending_server.is_empty() {
            let line = std::mem::take(&mut self.pending_server);
            self.record(Event::Server(line));
        }
    }
}

/// When the connection opened: the moment of the `connected` event, else of the first.
fn connected_at(rendered: &[Rendered]) -> Option<Instant> {
    rendered
        .iter()
        .find(|line| matches!(line.event, Event::Connected { .. }))
        .or(rendered.first())
        .map(|line| line.at)
}

/// Seconds from `connected` to `at` (0 for what came before).
fn seconds(at: Instant, connected: Option<Instant>) -> f64 {
    connected.map_or(0.0, |start| {
        at.saturating_duration_since(start).as_secs_f64()
    })
}

/// One line as rendered.
struct Rendered {
    event: Event,
    text: String,
    at: Instant,
}

/// The notes of each rendered line (none unless `options.explain`), `closing` on the last.
fn explained(rendered: &[Rendered], options: RenderOptions, closing: &[Note]) -> Vec<Vec<Note>> {
    if !options.explain {
        return vec![Vec::new(); rendered.len()];
    }
    let lines: Vec<Line<'_>> = rendered
        .iter()
        .map(|Rendered { event, text, .. }| match event {
            Event::Connected { peer } => Line::Connected(peer),
            // --hide-data's one line for the message: a remark, not a line of it.
            Event::Client(line) if line.is_empty() => Line::Note(text),
            Event::Client(_) => Line::Client(text),
            Event::Server(_) => Line::Server(text),
            Event::TlsEstablished {
                detail,
                certificate,
            } => Line::Tls(detail.as_deref(), certificate.as_deref()),
            Event::Note(note) => Line::Note(note),
            Event::Closed => Line::Closed,
        })
        .collect();
    let mut notes: Vec<Vec<Note>> = explain::explain(&lines)
        .into_iter()
        .map(|explained| explained.notes)
        .collect();
    if let Some(last) = notes.last_mut() {
        last.extend_from_slice(closing);
    }
    notes
}

/// Renders one client line, redacting SASL payloads, and returns the phase after it.
fn client_line(line: &[u8], phase: Phase, show_secrets: bool) -> (String, Phase) {
    match phase {
        Phase::Data => {
            let next = if line == b".\r\n" {
                Phase::Commands
            } else {
                Phase::Data
            };
            (escape(line), next)
        }
        Phase::SaslResponse if !show_secrets => (REDACTED.to_owned(), Phase::Commands),
        Phase::SaslResponse => (escape(line), Phase::Commands),
        Phase::Commands => {
            let text = escape(line);
            if show_secrets {
                return (text, Phase::Commands);
            }
            // RFC 4954 §4: "AUTH" SP mechanism [SP initial-response].
            let mut words = text.splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some(verb), Some(mechanism), Some(_)) if verb.eq_ignore_ascii_case("AUTH") => {
                    (format!("{verb} {mechanism} {REDACTED}"), Phase::Commands)
                }
                _ => (text, Phase::Commands),
            }
        }
    }
}

/// The phase after a server line: `334` asks for a SASL response, `354` starts the data.
fn after_server_line(line: &[u8], phase: Phase) -> Phase {
    // Only the last line of a reply ("ddd " or "ddd" alone) decides.
    let last_line = line.get(3).is_none_or(|&b| b != b'-');
    if phase == Phase::Data || !last_line {
        return phase;
    }
    match line.get(..3) {
        Some(b"334") => Phase::SaslResponse,
        Some(b"354") => Phase::Data,
        _ => Phase::Commands,
    }
}

/// Shows a line without its CRLF; any other control byte or invalid UTF-8 is escaped,
/// so a bare CR or LF is visible (`\r`, `\n`).
fn escape(line: &[u8]) -> String {
    let body = line.strip_suffix(b"\r\n").unwrap_or(line);
    let mut out = String::with_capacity(body.len());
    for chunk in body.utf8_chunks() {
        for ch in chunk.valid().chars() {
            match ch {
                '\r' => out.push_str("\\r"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push('\t'),
                c if c.is_control() => {
                    let _ = write!(out, "\\x{:02x}", u32::from(c));
                }
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: &Transcript) -> String {
        t.render_text(RenderOptions::default())
    }

    #[test]
    fn chunking_does_not_change_the_transcript() {
        let mut one = Transcript::new();
        one.client(b"DATA\r\n");
        one.server(b"354 go\r\n");
        one.client(b"Subject: x\r\n\r\nhi\r\n.\r\n");
        let mut two = Transcript::new();
        two.client(b"DA");
        two.client(b"TA\r\n");
        two.server(b"354 go\r\n");
        two.client(b"Subject: x\r\n\r\nhi");
        two.client(b"\r\n.\r\n");
        assert_eq!(text(&one), text(&two));
        assert_eq!(one.client_bytes(), two.client_bytes());
        assert_eq!(
            text(&one),
            "C: DATA\nS: 354 go\nC: Subject: x\nC: \nC: hi\nC: .\n"
        );
    }

    #[test]
    fn a_slice_copies_only_its_events_and_still_redacts() {
        let mut t = Transcript::new();
        t.client(b"EHLO c\r\n");
        t.server(b"250 s\r\n");
        let auth = t.len();
        t.client(b"AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n");
        t.server(b"235 ok\r\n");
        let mail = t.len();
        t.client(b"MAIL FROM:<a@b>\r\n");
        t.server(b"250 ok\r\n");
        t.client(b"QUI");
        assert_eq!(t.len(), 6, "the partial QUIT line is not an event yet");
        let mut part = t.slice(0..auth);
        part.note("cut");
        part.extend(t.slice(auth..mail));
        assert_eq!(
            text(&part),
            "C: EHLO c\nS: 250 s\n-- cut\nC: AUTH PLAIN <redacted>\nS: 235 ok\n"
        );
        assert_eq!(text(&t.slice(mail..99)), "C: MAIL FROM:<a@b>\nS: 250 ok\n");
        assert!(t.slice(7..9).is_empty());
        assert!(!t.is_empty() && Transcript::new().is_empty());
    }

    #[test]
    fn auth_payloads_are_redacted_by_default() {
        let mut t = Transcript::new();
        t.client(b"AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n");
        t.server(b"235 2.7.0 ok\r\n");
        t.client(b"AUTH LOGIN\r\n");
        t.server(b"334 VXNlcm5hbWU6\r\n");
        t.client(b"YWxpY2U=\r\n");
        t.server(b"334 UGFzc3dvcmQ6\r\n");
        t.client(b"czNjcmV0\r\n");
        t.server(b"235 ok\r\n");
        t.client(b"MAIL FROM:<a@b>\r\n");
        let shown = text(&t);
        for secret in ["AGFsaWNlAHMzY3JldA==", "YWxpY2U=", "czNjcmV0"] {
            assert!(!shown.contains(secret), "{secret} leaked in:\n{shown}");
        }
        assert!(shown.contains("C: AUTH PLAIN <redacted>\n"));
        assert!(shown.contains("C: AUTH LOGIN\n"));
        assert!(shown.contains("C: MAIL FROM:<a@b>\n"));
        let json = t.render_json(RenderOptions::default());
        assert!(!json.contains("czNjcmV0"));
        let open = t.render_text(RenderOptions {
            show_secrets: true,
            ..Default::default()
        });
        assert!(open.contains("C: czNjcmV0\n"));
    }

    #[test]
    fn every_mechanism_initial_response_is_redacted() {
        let token = "dXNlcj1hbGljZUBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LlRPS0VOAQE=";
        let mut t = Transcript::new();
        t.client(format!("AUTH XOAUTH2 {token}\r\n").as_bytes());
        t.server(b"334 eyJzdGF0dXMiOiI0MDEifQ==\r\n");
        t.client(b"\r\n");
        t.server(b"535 5.7.8 no\r\n");
        t.client(b"auth plain AGEAYg==\r\n");
        let shown = text(&t);
        assert!(!shown.contains(token));
        assert!(!shown.contains("AGEAYg=="));
        assert!(shown.contains("C: AUTH XOAUTH2 <redacted>\n"));
        assert!(shown.contains("C: auth plain <redacted>\n"));
    }

    #[test]
    fn message_content_is_never_taken_for_auth() {
        let mut t = Transcript::new();
        t.client(b"DATA\r\n");
        t.server(b"354 go\r\n");
        t.client(b"AUTH PLAIN this is prose\r\n.\r\n");
        t.server(b"334 not really\r\n");
        t.client(b"NOOP\r\n");
        let shown = text(&t);
        assert!(shown.contains("C: AUTH PLAIN this is prose\n"));
        assert!(
            shown.contains("C: <redacted>\n"),
            "after a 334 outside DATA"
        );
    }

    #[test]
    fn long_message_data_is_counted_not_kept() {
        let mut t = Transcript::new();
        t.client(b"DATA\r\n");
        t.server(b"354 go\r\n");
        let line = [b'x'; 998];
        let lines = 2 * DATA_RECORD_LIMIT / 1000;
        for _ in 0..lines {
            t.client(&line);
            t.client(b"\r\n");
        }
        t.client(b".\r\nQUIT\r\n");
        let kept = DATA_RECORD_LIMIT / 1000;
        let shown = text(&t);
        assert_eq!(
            shown.lines().filter(|l| l.starts_with("C: xxx")).count(),
            kept
        );
        let skipped = lines - kept;
        assert!(shown.contains(&format!(
            "-- {skipped} more lines ({} bytes) of message data not recorded\nC: .\nC: QUIT\n",
            skipped * 1000
        )));
    }

    #[test]
    fn hide_data_shows_one_line_counting_what_was_not_recorded() {
        let mut t = Transcript::new();
        t.client(b"DATA\r\n");
        t.server(b"354 go\r\n");
        let line = [b'x'; 998];
        let lines = 2 * DATA_RECORD_LIMIT / 1000;
        for _ in 0..lines {
            t.client(&line);
            t.client(b"\r\n");
        }
        t.client(b".\r\nQUIT\r\n");
        t.server(b"221 bye\r\n");
        let hidden = RenderOptions {
            hide_data: true,
            ..RenderOptions::default()
        };
        assert_eq!(
            t.render_text(hidden),
            format!(
                "C: DATA\nS: 354 go\nC: <message: {} octets, {lines} lines>\nC: .\nC: QUIT\nS: 221 bye\n",
                lines * 1000
            )
        );
        assert_eq!(t.client_octets(), (6 + lines * 1000 + 3 + 6) as u64);
        // A connection that breaks inside the data still shows what went.
        let mut broken = Transcript::new();
        broken.server(b"354 go\r\n");
        broken.client(b"a\r\nb\r\n");
        broken.closed();
        assert_eq!(
            broken.render_text(hidden),
            "S: 354 go\nC: <message: 6 octets, 2 lines>\n-- connection closed\n"
        );
    }

    #[test]
    fn timestamps_count_from_the_connection_and_timing_finds_each_step() {
        let mut t = Transcript::new();
        t.note("before connecting");
        std::thread::sleep(std::time::Duration::from_millis(20));
        t.connected("server:25");
        t.server(b"220 hi\r\n");
        t.tls_established(None);
        t.server(b"354 go\r\n");
        std::thread::sleep(std::time::Duration::from_millis(20));
        t.client(b"data\r\n.\r\n");
        let timed = RenderOptions {
            timestamps: true,
            ..RenderOptions::default()
        };
        let shown = t.render_text(timed);
        let stamps: Vec<f64> = shown
            .lines()
            .map(|line| {
                let stamp = line.split_once(']').map_or("", |(stamp, _)| stamp);
                stamp.trim_start_matches('[').trim().parse().unwrap_or(-1.0)
            })
            .collect();
        assert_eq!(stamps[0], 0.0, "{shown}");
        assert_eq!(stamps[1], 0.0, "{shown}");
        assert!(stamps[5] >= 0.02, "{shown}");
        assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "{shown}");
        assert!(shown.contains("] C: data\n"), "{shown}");
        let json = t.render_json(timed);
        assert!(json.lines().all(|line| line.contains(",\"t\":")), "{json}");
        let timing = t.timing();
        let connected = timing.connected.unwrap_or_default();
        assert!(connected >= std::time::Duration::from_millis(20));
        assert!(timing.tls.unwrap_or_default() >= connected);
        assert!(
            timing.data.unwrap_or_default() >= connected + std::time::Duration::from_millis(20)
        );
        assert!(timing.total >= timing.data.unwrap_or_default());
        // The moments never make two transcripts differ.
        let mut again = Transcript::new();
        again.note("before connecting");
        again.connected("server:25");
        again.server(b"220 hi\r\n");
        again.tls_established(None);
        again.server(b"354 go\r\n");
        again.client(b"data\r\n.\r\n");
        assert_eq!(t, again);
    }

    #[test]
    fn bare_line_endings_and_binary_are_visible() {
        let mut t = Transcript::new();
        t.client(b"a\rb\nc\xff\x01\r\n");
        assert_eq!(text(&t), "C: a\\rb\\n\nC: c\\xff\\x01\n");
    }

    #[test]
    fn events_and_json() {
        let mut t = Transcript::new();
        t.connected("localhost:25");
        t.server(b"220 hi\r\n");
        t.tls_established(Some("TLSv1.3".into()));
        t.note("certificate verification disabled (--insecure)");
        t.closed();
        assert_eq!(
            text(&t),
            "-- connected to localhost:25\nS: 220 hi\n-- TLS established\n\
             -- certificate verification disabled (--insecure)\n-- connection closed\n"
        );
        let detailed = t.render_text(RenderOptions {
            details: true,
            ..Default::default()
        });
        assert!(detailed.contains("-- TLS established (TLSv1.3)\n"));
        let json = t.render_json(RenderOptions::default());
        assert_eq!(json.lines().count(), 5);
        assert!(
            json.starts_with("{\"kind\":\"connected\",\"text\":\"connected to localhost:25\"}\n")
        );
    }
}
