//! `--serverinfo`: what a server offers — its greeting, each EHLO capability in words, the
//! TLS version, cipher suite and certificate chain, and how the certificate was checked —
//! described once for both clients, as text or as one JSON document.
//!
//! Each client gathers the facts its own way (raw-client from its own replies and its rustls
//! connection, lib-client from lettre's dialogue and `certificate_chain`) and hands them over
//! as a [`ServerInfo`]; the words and the JSON shape are this module's alone, so the two
//! descriptions differ only where the clients know different things.

use std::fmt::Write as _;

use serde_json::{Value, json};
use transcript::Checked;
use transcript::explain::{Note, ehlo_offer};
use x509_parser::prelude::{ASN1Time, FromDer as _, X509Certificate};

use crate::{Job, ServerReply, TlsMode, TranscriptFormat};

/// What `--serverinfo` found out about a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    /// The server as the user named it (`Endpoint::shown`).
    pub server: String,
    /// How the connection was protected.
    pub tls_mode: TlsMode,
    /// The server's greeting (RFC 5321 §4.2).
    pub greeting: ServerReply,
    /// With STARTTLS, the reply to the EHLO before TLS (which RFC 3207 §4.2 says to forget).
    pub ehlo_before_tls: Option<ServerReply>,
    /// The reply to the EHLO that counts: after TLS, or the only one.
    pub ehlo: ServerReply,
    /// The TLS session, when there was one.
    pub tls: Option<TlsInfo>,
}

/// The TLS session of a `--serverinfo` connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// The protocol version, e.g. `TLS 1.3`; `None` when the client cannot tell.
    pub version: Option<String>,
    /// The cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`; `None` when the client cannot tell.
    pub cipher: Option<String>,
    /// Why the version and cipher suite are `None`, e.g. `not known to lettre (…)`.
    pub unknown: Option<String>,
    /// The certificate chain as the server sent it, end-entity first (DER).
    pub chain: Vec<Vec<u8>>,
    /// How the certificate was checked (`Job::certificate_checked`).
    pub checked: Checked,
}

impl ServerInfo {
    /// The facts gathered for `job`: its server and TLS mode, and what the server said.
    pub fn new(
        job: &Job,
        greeting: ServerReply,
        ehlo_before_tls: Option<ServerReply>,
        ehlo: ServerReply,
        tls: Option<TlsInfo>,
    ) -> ServerInfo {
        ServerInfo {
            server: job.endpoint.shown.clone(),
            tls_mode: job.tls,
            greeting,
            ehlo_before_tls,
            ehlo,
            tls,
        }
    }

    /// The description in the output format: text, or one pretty-printed JSON document.
    pub fn render(&self, format: TranscriptFormat) -> String {
        match format {
            TranscriptFormat::Text => self.render_text(),
            TranscriptFormat::Json => {
                let mut text = serde_json::to_string_pretty(&self.to_json())
                    .unwrap_or_else(|_| "{}".to_owned());
                text.push('\n');
                text
            }
        }
    }

    /// The text description, for people.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let plaintext = match self.tls_mode {
            TlsMode::None => " (no TLS: --tls none, nothing is encrypted)",
            TlsMode::StartTls | TlsMode::Implicit => "",
        };
        let _ = writeln!(out, "Server:   {}{plaintext}", self.server);
        reply_text(&mut out, "Greeting: ", &self.greeting);
        // Its first line: the capabilities follow, one by one.
        let ehlo_name = ServerReply {
            code: self.ehlo.code,
            lines: self.ehlo.lines.iter().take(1).cloned().collect(),
        };
        reply_text(&mut out, "EHLO:     ", &ehlo_name);
        if let Some(tls) = &self.tls {
            out.push('\n');
            tls_text(&mut out, tls, self.tls_mode);
        }
        out.push('\n');
        let which = match (self.tls_mode, &self.ehlo_before_tls) {
            (_, Some(_)) => "Capabilities after TLS (the ones that count, RFC 3207 §4.2):",
            (TlsMode::Implicit, None) => "Capabilities (over TLS):",
            _ => "Capabilities:",
        };
        let _ = writeln!(out, "{which}");
        capabilities_text(&mut out, &capabilities(&self.ehlo));
        if let Some(before) = &self.ehlo_before_tls {
            let change = Change::between(&capabilities(before), &capabilities(&self.ehlo));
            let list = |names: &[String]| {
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    visible(&names.join(", "))
                }
            };
            let _ = writeln!(
                out,
                "Offered only before TLS: {}",
                list(&change.only_before)
            );
            let _ = writeln!(out, "Offered only after TLS: {}", list(&change.only_after));
            if !change.changed.is_empty() {
                let changed = visible(&change.changed.join(", "));
                let _ = writeln!(out, "Different after TLS: {changed}");
            }
        }
        out
    }

    /// The JSON document (see docs/scripting.md for its shape).
    pub fn to_json(&self) -> Value {
        let before_tls = self.ehlo_before_tls.as_ref().map(|before| {
            let offered = capabilities(before);
            let change = Change::between(&offered, &capabilities(&self.ehlo));
            json!({
                "ehlo": reply_json(before),
                "capabilities": offered.iter().map(Capability::to_json).collect::<Vec<_>>(),
                "only_before_tls": change.only_before,
                "only_after_tls": change.only_after,
                "changed": change.changed,
            })
        });
        json!({
            "kind": "serverinfo",
            "server": self.server,
            "tls_mode": tls_mode_name(self.tls_mode),
            "greeting": reply_json(&self.greeting),
            "ehlo": reply_json(&self.ehlo),
            "capabilities": capabilities(&self.ehlo).iter().map(Capability::to_json).collect::<Vec<_>>(),
            "before_tls": before_tls,
            "tls": self.tls.as_ref().map(TlsInfo::to_json),
        })
    }
}

impl TlsInfo {
    fn to_json(&self) -> Value {
        let chain: Vec<Value> = self
            .chain
            .iter()
            .map(|der| Summary::of(der).to_json())
            .collect();
        json!({
            "version": self.version,
            "cipher": self.cipher,
            "unknown": self.unknown,
            "certificate_check": checked_json(&self.checked),
            "chain": chain,
        })
    }
}

/// One EHLO capability line: `KEYWORD params…` (RFC 5321 §4.1.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Capability {
    keyword: String,
    parameters: Vec<String>,
    /// What it offers; `None` for a keyword this tool does not know.
    meaning: Option<Note>,
}

/// What an unknown keyword is called, in text and JSON alike.
const NOT_KNOWN: &str = "not known to this tool";

impl Capability {
    /// The line as the server sent it, spaces normalized.
    fn line(&self) -> String {
        let mut line = self.keyword.clone();
        for parameter in &self.parameters {
            line.push(' ');
            line.push_str(parameter);
        }
        line
    }

    fn meaning_text(&self) -> String {
        match &self.meaning {
            Some(note) => note.line(),
            None => NOT_KNOWN.to_owned(),
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "keyword": self.keyword,
            "parameters": self.parameters,
            "meaning": self.meaning.as_ref().map_or(NOT_KNOWN, |note| note.text.as_str()),
            "rfc": self.meaning.as_ref().and_then(|note| note.rfc.clone()),
            "known": self.meaning.is_some(),
        })
    }
}

/// The capabilities of an EHLO reply: every line after the first (the server's name).
fn capabilities(ehlo: &ServerReply) -> Vec<Capability> {
    ehlo.lines
        .iter()
        .skip(1)
        .filter_map(|line| {
            let mut words = line.split_ascii_whitespace();
            let keyword = words.next()?.to_owned();
            let parameters: Vec<String> = words.map(str::to_owned).collect();
            let meaning = ehlo_offer(&keyword, &parameters.join(" "));
            Some(Capability {
                keyword,
                parameters,
                meaning,
            })
        })
        .collect()
}

/// How the capabilities changed when TLS came up.
#[derive(Debug, Default, PartialEq, Eq)]
struct Change {
    /// Keywords offered before TLS only (STARTTLS itself, usually).
    only_before: Vec<String>,
    /// Keywords offered after TLS only (AUTH, often).
    only_after: Vec<String>,
    /// Keywords offered both times with other parameters, as `AUTH PLAIN → AUTH PLAIN LOGIN`.
    changed: Vec<String>,
}

impl Change {
    fn between(before: &[Capability], after: &[Capability]) -> Change {
        let find = |list: &[Capability], keyword: &str| {
            list.iter()
                .find(|c| c.keyword.eq_ignore_ascii_case(keyword))
                .cloned()
        };
        let mut change = Change::default();
        for capability in before {
            match find(after, &capability.keyword) {
                None => change.only_before.push(capability.keyword.clone()),
                Some(later) if later.parameters != capability.parameters => change
                    .changed
                    .push(format!("{} → {}", capability.line(), later.line())),
                Some(_) => {}
            }
        }
        for capability in after {
            if find(before, &capability.keyword).is_none() {
                change.only_after.push(capability.keyword.clone());
            }
        }
        change
    }
}

fn capabilities_text(out: &mut String, offered: &[Capability]) {
    if offered.is_empty() {
        out.push_str("  (no extensions: the server offers plain RFC 5321 only)\n");
        return;
    }
    let width = offered
        .iter()
        .map(|c| c.line().chars().count())
        .max()
        .unwrap_or(0)
        .min(24);
    for capability in offered {
        let _ = writeln!(
            out,
            "  {:<width$}  {}",
            visible(&capability.line()),
            visible(&capability.meaning_text())
        );
    }
}

fn tls_text(out: &mut String, tls: &TlsInfo, mode: TlsMode) {
    let how = match mode {
        TlsMode::Implicit => "implicit TLS, RFC 8314 §3",
        TlsMode::StartTls | TlsMode::None => "STARTTLS, RFC 3207",
    };
    let _ = writeln!(out, "TLS ({how})");
    let unknown = tls.unknown.as_deref().unwrap_or("not known");
    let _ = writeln!(
        out,
        "  version:       {}",
        tls.version.as_deref().unwrap_or(unknown)
    );
    let _ = writeln!(
        out,
        "  cipher suite:  {}",
        tls.cipher.as_deref().unwrap_or(unknown)
    );
    let _ = writeln!(out, "  certificate:   {}", checked_text(&tls.checked));
    let count = match tls.chain.len() {
        1 => "1 certificate".to_owned(),
        n => format!("{n} certificates"),
    };
    let _ = writeln!(out, "  chain as the server sent it, {count}:");
    for (index, der) in tls.chain.iter().enumerate() {
        let summary = Summary::of(der);
        let mut first = true;
        let mut field = |name: &str, value: &str| {
            let number = if first {
                format!("[{}]", index + 1)
            } else {
                String::new()
            };
            first = false;
            let _ = writeln!(out, "  {number:<4}{name:<12} {value}");
        };
        match &summary.parsed {
            Some(parsed) => {
                field("subject:", &visible(&parsed.subject));
                field("issuer:", &visible(&parsed.issuer));
                field("not before:", &parsed.not_before);
                field("not after:", &parsed.not_after);
                let names = if parsed.names.is_empty() {
                    "none".to_owned()
                } else {
                    parsed.names.join(", ")
                };
                field("names:", &visible(&names));
            }
            None => field("subject:", "(not a certificate this tool can read)"),
        }
        field("SHA-256:", &summary.sha256);
    }
}

fn checked_text(checked: &Checked) -> String {
    match checked {
        Checked::Verified { name, roots } => {
            format!("verified: in date, names {name}, and its chain leads to a root in {roots}")
        }
        Checked::Pinned => "pinned: its SHA-256 fingerprint is the --pin-sha256 one; its issuer, names and dates were not checked".to_owned(),
        Checked::Insecure => {
            "NOT verified (--insecure): any certificate was accepted".to_owned()
        }
    }
}

fn checked_json(checked: &Checked) -> Value {
    let text = checked_text(checked);
    match checked {
        Checked::Verified { name, roots } => {
            json!({ "how": "verified", "name": name, "roots": roots, "text": text })
        }
        Checked::Pinned => json!({ "how": "pinned", "text": text }),
        Checked::Insecure => json!({ "how": "insecure", "text": text }),
    }
}

fn reply_text(out: &mut String, label: &str, reply: &ServerReply) {
    let indent = " ".repeat(label.len());
    for (index, line) in reply.lines.iter().enumerate() {
        let lead = if index == 0 { label } else { &indent };
        let _ = writeln!(out, "{lead}{} {}", reply.code, visible(line));
    }
    if reply.lines.is_empty() {
        let _ = writeln!(out, "{label}{}", reply.code);
    }
}

/// What the server chose (reply text, certificate names) for a terminal: control characters
/// escaped (`\r`, `\n`, `\x1b`), so they cannot break a line or drive the terminal.
fn visible(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

fn reply_json(reply: &ServerReply) -> Value {
    json!({ "code": reply.code, "lines": reply.lines })
}

fn tls_mode_name(mode: TlsMode) -> &'static str {
    match mode {
        TlsMode::None => "none",
        TlsMode::StartTls => "starttls",
        TlsMode::Implicit => "implicit",
    }
}

/// One certificate of the chain, for people.
struct Summary {
    /// The SHA-256 fingerprint of the DER, as `--pin-sha256` takes it.
    sha256: String,
    /// `None` when the DER does not parse (the TLS library accepted it all the same).
    parsed: Option<Parsed>,
}

struct Parsed {
    subject: String,
    issuer: String,
    not_before: String,
    not_after: String,
    names: Vec<String>,
}

impl Summary {
    fn of(der: &[u8]) -> Summary {
        let parsed = X509Certificate::from_der(der)
            .ok()
            .map(|(_, certificate)| Parsed {
                subject: certificate.subject().to_string(),
                issuer: certificate.issuer().to_string(),
                not_before: timestamp(&certificate.validity().not_before),
                not_after: timestamp(&certificate.validity().not_after),
                names: crate::certificate::names(&certificate),
            });
        Summary {
            sha256: fingerprint(der),
            parsed,
        }
    }

    fn to_json(&self) -> Value {
        let parsed = self.parsed.as_ref();
        json!({
            "subject": parsed.map(|p| p.subject.as_str()),
            "issuer": parsed.map(|p| p.issuer.as_str()),
            "not_before": parsed.map(|p| p.not_before.as_str()),
            "not_after": parsed.map(|p| p.not_after.as_str()),
            "names": parsed.map(|p| p.names.clone()).unwrap_or_default(),
            "sha256": self.sha256,
        })
    }
}

/// RFC 3339 in UTC: `2027-03-09T00:00:00Z`.
fn timestamp(time: &ASN1Time) -> String {
    let t = time.to_datetime();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The SHA-256 of the certificate's DER in colon-separated upper-case hex: the digest
/// raw-client compares with `--pin-sha256`, in the form that option takes.
pub(crate) fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let hex: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16, lines: &[&str]) -> ServerReply {
        ServerReply {
            code,
            lines: lines.iter().map(|line| (*line).to_owned()).collect(),
        }
    }

    fn certificate() -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(vec![
            "mail.example.com".to_owned(),
            "192.0.2.25".to_owned(),
        ])
        .expect("names");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "mail.example.com");
        params.not_before = rcgen::date_time_ymd(2026, 1, 2);
        params.not_after = rcgen::date_time_ymd(2027, 3, 9);
        let key = rcgen::KeyPair::generate().expect("a key");
        params
            .self_signed(&key)
            .expect("a certificate")
            .der()
            .to_vec()
    }

    fn info(tls_mode: TlsMode, tls: Option<TlsInfo>) -> ServerInfo {
        let before = (tls_mode == TlsMode::StartTls).then(|| {
            reply(
                250,
                &[
                    "mail.example.com",
                    "SIZE 36700160",
                    "STARTTLS",
                    "AUTH PLAIN",
                ],
            )
        });
        ServerInfo {
            server: "mail.example.com:587".into(),
            tls_mode,
            greeting: reply(220, &["mail.example.com ESMTP ready"]),
            ehlo_before_tls: before,
            ehlo: reply(
                250,
                &[
                    "mail.example.com greets client.example",
                    "PIPELINING",
                    "SIZE 36700160",
                    "AUTH PLAIN LOGIN",
                    "X-FROBNICATE 7",
                ],
            ),
            tls,
        }
    }

    fn tls(chain: Vec<Vec<u8>>) -> TlsInfo {
        TlsInfo {
            version: Some("TLS 1.3".into()),
            cipher: Some("TLS13_AES_256_GCM_SHA384".into()),
            unknown: None,
            chain,
            checked: Checked::Pinned,
        }
    }

    #[test]
    fn capabilities_are_explained_with_readable_sizes() {
        let text = info(TlsMode::None, None).render_text();
        for expected in [
            "Server:   mail.example.com:587 (no TLS: --tls none, nothing is encrypted)\n",
            "Greeting: 220 mail.example.com ESMTP ready\n",
            "EHLO:     250 mail.example.com greets client.example\n\nCapabilities:\n",
            "  SIZE 36700160     the server accepts messages up to 35 MiB (36700160 octets) (RFC 1870 §4)\n",
            "  PIPELINING        the client may send several commands without waiting for each reply (RFC 2920)\n",
            "  X-FROBNICATE 7    not known to this tool\n",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        assert!(text.contains("AUTH PLAIN LOGIN  the server offers SASL login with PLAIN ("));
        assert!(!text.contains("TLS ("), "{text}");
        assert!(!text.contains("before TLS"), "{text}");
    }

    #[test]
    fn starttls_says_what_was_offered_only_before_or_after_tls() {
        let der = certificate();
        let text = info(TlsMode::StartTls, Some(tls(vec![der.clone()]))).render_text();
        for expected in [
            "TLS (STARTTLS, RFC 3207)\n",
            "  version:       TLS 1.3\n",
            "  cipher suite:  TLS13_AES_256_GCM_SHA384\n",
            "  certificate:   pinned: ",
            "  chain as the server sent it, 1 certificate:\n",
            "  [1] subject:     CN=mail.example.com\n",
            "      not before:  2026-01-02T00:00:00Z\n",
            "      not after:   2027-03-09T00:00:00Z\n",
            "      names:       mail.example.com, 192.0.2.25\n",
            "Capabilities after TLS (the ones that count, RFC 3207 §4.2):\n",
            "Offered only before TLS: STARTTLS\n",
            "Offered only after TLS: PIPELINING, X-FROBNICATE\n",
            "Different after TLS: AUTH PLAIN → AUTH PLAIN LOGIN\n",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        assert!(text.contains(&format!("      SHA-256:     {}\n", fingerprint(&der))));
    }

    #[test]
    fn json_has_the_same_facts_as_members() {
        let der = certificate();
        let mut tls = tls(vec![der.clone(), b"not DER".to_vec()]);
        tls.version = None;
        tls.cipher = None;
        tls.unknown = Some("not known to lettre".into());
        let document: Value = serde_json::from_str(
            &info(TlsMode::StartTls, Some(tls)).render(TranscriptFormat::Json),
        )
        .expect("one JSON document");
        assert_eq!(document["kind"], "serverinfo");
        assert_eq!(document["tls_mode"], "starttls");
        assert_eq!(document["greeting"]["code"], 220);
        let size = &document["capabilities"][1];
        assert_eq!(size["keyword"], "SIZE");
        assert_eq!(size["parameters"], json!(["36700160"]));
        assert_eq!(
            size["meaning"],
            "the server accepts messages up to 35 MiB (36700160 octets)"
        );
        assert_eq!(size["rfc"], "RFC 1870 §4");
        let unknown = &document["capabilities"][3];
        assert_eq!(unknown["known"], false);
        assert_eq!(unknown["meaning"], NOT_KNOWN);
        assert_eq!(
            document["before_tls"]["only_before_tls"],
            json!(["STARTTLS"])
        );
        assert_eq!(document["tls"]["version"], Value::Null);
        assert_eq!(document["tls"]["unknown"], "not known to lettre");
        assert_eq!(document["tls"]["certificate_check"]["how"], "pinned");
        let chain = &document["tls"]["chain"];
        assert_eq!(chain[0]["subject"], "CN=mail.example.com");
        assert_eq!(chain[0]["sha256"], fingerprint(&der));
        assert_eq!(chain[1]["subject"], Value::Null);
        assert_eq!(chain[1]["sha256"], fingerprint(b"not DER"));
    }

    #[test]
    fn fingerprints_are_colon_hex_sha256() {
        // SHA-256 of the empty string.
        let empty = fingerprint(b"");
        assert_eq!(
            empty,
            "E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:52:B8:55"
        );
    }

    #[test]
    fn control_characters_from_the_server_are_escaped_in_text() {
        let mut info = info(TlsMode::None, None);
        info.greeting = reply(220, &["evil\u{1b}[2J ready\rx"]);
        info.ehlo = reply(250, &["evil", "X-\u{7}BELL"]);
        let text = info.render_text();
        assert!(
            text.contains("Greeting: 220 evil\\x1b[2J ready\\rx\n"),
            "{text}"
        );
        assert!(
            text.contains("  X-\\x07BELL  not known to this tool\n"),
            "{text}"
        );
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
    }

    #[test]
    fn a_server_without_extensions_says_so() {
        let mut info = info(TlsMode::None, None);
        info.ehlo = reply(250, &["old.example.com"]);
        assert!(info.render_text().contains("(no extensions"));
        assert_eq!(info.to_json()["capabilities"], json!([]));
    }
}
