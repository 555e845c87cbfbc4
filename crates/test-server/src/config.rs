//! What a run of the server is told: addresses, storage, users, limits, timeouts, faults.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::Error;

/// The configuration of one server run. [`Config::default`] is the embedded default:
/// loopback, a fresh store directory, no users, strict line endings, no faults.
#[derive(Debug, Clone)]
pub struct Config {
    /// The plaintext (STARTTLS) listener; port 0 picks a free port.
    pub listen: SocketAddr,
    /// An optional implicit TLS listener (RFC 8314, the port 465 style).
    pub tls_listen: Option<SocketAddr>,
    /// Where messages are stored; `None` creates a fresh unique directory under the
    /// system temporary directory.
    pub store: Option<PathBuf>,
    /// The name the server gives itself in the greeting and the EHLO reply.
    pub hostname: String,
    /// Accepted `(user, password)` pairs. When non-empty, AUTH is offered and required
    /// before MAIL.
    pub users: Vec<(String, String)>,
    /// Offer and accept AUTH on a connection without TLS.
    pub auth_without_tls: bool,
    /// The SIZE limit in octets (RFC 1870); 0 means no limit.
    pub size_limit: u64,
    /// The most recipients accepted in one transaction; more get `452 4.5.3`.
    pub max_recipients: usize,
    /// The most connections served at once; more get `421 4.3.2` and are closed. The default,
    /// 1024, lets hundreds of idle connections (a slowloris) sit until their idle timeout
    /// while real clients still get through.
    pub max_connections: usize,
    /// How long one read may wait before the server gives up with `421 4.4.2`.
    pub idle_timeout: Duration,
    /// How long one connection may last in total.
    pub session_timeout: Duration,
    /// What to do with a bare LF or bare CR in message data.
    pub line_endings: LineEndings,
    /// Advertise PIPELINING (RFC 2920). Without it, bytes that follow the end-of-data
    /// `.` in the same flight are refused (the Postfix SMTP smuggling workaround).
    pub pipelining: bool,
    /// Sync every stored file and the directory before answering `250` (the default). Off,
    /// the store is faster under load but a crash may lose acknowledged messages.
    pub sync: bool,
    /// Misbehaviour to inject, for tests and teaching.
    pub faults: Faults,
    /// A certificate chain and private key, both PEM; `None` generates a CA and a
    /// `localhost` certificate signed by it at start-up.
    pub certificate: Option<(String, String)>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            tls_listen: None,
            store: None,
            hostname: "localhost".to_owned(),
            users: Vec::new(),
            auth_without_tls: false,
            size_limit: 35 * 1024 * 1024,
            max_recipients: 100,
            max_connections: 1024,
            idle_timeout: Duration::from_secs(5 * 60),
            session_timeout: Duration::from_secs(30 * 60),
            line_endings: LineEndings::Strict,
            pipelining: true,
            sync: true,
            faults: Faults::default(),
            certificate: None,
        }
    }
}

/// How a bare LF or bare CR inside DATA is treated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LineEndings {
    /// Refuse the message with `550 5.6.11` (the SMTP smuggling defence).
    #[default]
    Strict,
    /// Accept the message and store every bare LF and bare CR as CRLF.
    Permissive,
}

/// Faults to inject; the default injects none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// Recipients answered `550 5.1.1` (compared case-insensitively).
    pub reject_recipients: Vec<String>,
    /// Recipients answered `450 4.2.0` (compared case-insensitively).
    pub tempfail_recipients: Vec<String>,
    /// Answer every MAIL with `451 4.3.0`.
    pub tempfail_mail: bool,
    /// Answer the end of data with `554 5.6.0` and store nothing.
    pub reject_data: bool,
    /// Close the connection after the first line of message data, without a reply.
    pub drop_mid_data: bool,
    /// Sleep this long before the reply at this stage (to exercise client timeouts).
    pub stall: Option<(Stage, Duration)>,
    /// Do not advertise STARTTLS (and answer it with `454 4.7.0`).
    pub no_starttls: bool,
    /// Offer only AUTH LOGIN.
    pub auth_login_only: bool,
    /// Answer every AUTH with `535 5.7.8`, whatever the credentials.
    pub reject_auth: bool,
    /// Bytes written in the same write right after the STARTTLS `220` line, in plaintext
    /// (the response injection of CVE-2021-22947 style attacks).
    pub inject_after_starttls: Option<Vec<u8>>,
}

/// A point in the dialogue, for [`Faults::stall`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Before the `220` greeting.
    Greeting,
    /// Before the EHLO or HELO reply.
    Ehlo,
    /// Before the MAIL reply.
    Mail,
    /// Before each RCPT reply.
    Rcpt,
    /// Before the `354` reply to DATA.
    Data,
    /// Before the reply to the end-of-data `.`.
    EndOfData,
    /// Before the `221` reply to QUIT.
    Quit,
}

impl Stage {
    const ALL: [(Stage, &'static str); 7] = [
        (Stage::Greeting, "greeting"),
        (Stage::Ehlo, "ehlo"),
        (Stage::Mail, "mail"),
        (Stage::Rcpt, "rcpt"),
        (Stage::Data, "data"),
        (Stage::EndOfData, "end-of-data"),
        (Stage::Quit, "quit"),
    ];

    fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(stage, _)| *stage == self)
            .map_or("?", |(_, name)| name)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Stage {
    type Err = Error;

    /// Parses `greeting`, `ehlo` (or `helo`), `mail`, `rcpt`, `data`, `end-of-data`
    /// (or `dot`, `eod`) and `quit`, case-insensitively.
    fn from_str(s: &str) -> Result<Self, Error> {
        let lower = s.trim().to_ascii_lowercase();
        let alias = match lower.as_str() {
            "helo" => "ehlo",
            "dot" | "eod" | "end_of_data" | "endofdata" => "end-of-data",
            other => other,
        };
        Self::ALL
            .iter()
            .find(|(_, name)| *name == alias)
            .map(|(stage, _)| *stage)
            .ok_or_else(|| Error::Config(format!("unknown stage {s:?}")))
    }
}

/// Parses a duration such as `5s`, `300ms`, `2m` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, Error> {
    let s = s.trim();
    let bad = || Error::Config(format!("bad duration {s:?} (use e.g. 300ms, 5s, 2m)"));
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    match unit {
        "ms" => Ok(Duration::from_millis(number)),
        "" | "s" => Ok(Duration::from_secs(number)),
        "m" => Ok(Duration::from_secs(number.saturating_mul(60))),
        _ => Err(bad()),
    }
}

impl Faults {
    /// Adds one fault given as on the command line (`--fault`):
    /// `reject-rcpt=ADDR`, `tempfail-rcpt=ADDR`, `tempfail-mail`, `reject-data`,
    /// `drop-mid-data`, `stall=STAGE:DURATION`, `no-starttls`, `auth-login-only`,
    /// `reject-auth`, `inject-after-starttls=TEXT` (`\r` and `\n` in TEXT are escapes).
    pub fn add(&mut self, spec: &str) -> Result<(), Error> {
        let (name, value) = match spec.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value)),
            None => (spec.trim(), None),
        };
        let need = |value: Option<&str>| {
            value
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| Error::Config(format!("fault {name} needs a value ({name}=...)")))
        };
        let flag = |value: Option<&str>| match value {
            None => Ok(true),
            Some(v) => Err(Error::Config(format!(
                "fault {name} takes no value, got {v:?}"
            ))),
        };
        match name.to_ascii_lowercase().replace('_', "-").as_str() {
            "reject-rcpt" | "reject-recipient" => self.reject_recipients.push(need(value)?),
            "tempfail-rcpt" | "tempfail-recipient" => self.tempfail_recipients.push(need(value)?),
            "tempfail-mail" => self.tempfail_mail = flag(value)?,
            "reject-data" => self.reject_data = flag(value)?,
            "drop-mid-data" => self.drop_mid_data = flag(value)?,
            "no-starttls" => self.no_starttls = flag(value)?,
            "auth-login-only" => self.auth_login_only = flag(value)?,
            "reject-auth" => self.reject_auth = flag(value)?,
            "stall" => {
                let value = need(value)?;
                let (stage, duration) = value.split_once(':').ok_or_else(|| {
                    Error::Config(format!("stall needs STAGE:DURATION, got {value:?}"))
                })?;
                self.stall = Some((stage.parse()?, parse_duration(duration)?));
            }
            "inject-after-starttls" => {
                let text = need(value)?.replace("\\r", "\r").replace("\\n", "\n");
                self.inject_after_starttls = Some(text.into_bytes());
            }
            _ => return Err(Error::Config(format!("unknown fault {name:?}"))),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_parse() {
        for (text, stage) in [
            ("greeting", Stage::Greeting),
            ("EHLO", Stage::Ehlo),
            ("helo", Stage::Ehlo),
            ("mail", Stage::Mail),
            ("rcpt", Stage::Rcpt),
            ("data", Stage::Data),
            ("end-of-data", Stage::EndOfData),
            ("dot", Stage::EndOfData),
            ("quit", Stage::Quit),
        ] {
            assert_eq!(text.parse::<Stage>().ok(), Some(stage), "{text}");
        }
        assert!("later".parse::<Stage>().is_err());
        assert_eq!(Stage::EndOfData.to_string(), "end-of-data");
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("5s").ok(), Some(Duration::from_secs(5)));
        assert_eq!(
            parse_duration("300ms").ok(),
            Some(Duration::from_millis(300))
        );
        assert_eq!(parse_duration("2m").ok(), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("7").ok(), Some(Duration::from_secs(7)));
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn faults_parse() {
        let mut faults = Faults::default();
        for spec in [
            "reject-rcpt=bad@example.com",
            "tempfail-rcpt=later@example.com",
            "tempfail-mail",
            "reject-data",
            "drop-mid-data",
            "stall=mail:5s",
            "no-starttls",
            "auth-login-only",
            "reject-auth",
            "inject-after-starttls=250 evil\\r\\n",
        ] {
            faults.add(spec).expect(spec);
        }
        assert_eq!(faults.reject_recipients, ["bad@example.com"]);
        assert_eq!(faults.tempfail_recipients, ["later@example.com"]);
        assert!(faults.tempfail_mail && faults.reject_data && faults.drop_mid_data);
        assert!(faults.no_starttls && faults.auth_login_only && faults.reject_auth);
        assert_eq!(faults.stall, Some((Stage::Mail, Duration::from_secs(5))));
        assert_eq!(
            faults.inject_after_starttls.as_deref(),
            Some(&b"250 evil\r\n"[..])
        );
        assert!(faults.add("reject-rcpt").is_err());
        assert!(faults.add("tempfail-mail=yes").is_err());
        assert!(faults.add("stall=mail").is_err());
        assert!(faults.add("explode").is_err());
    }
}
