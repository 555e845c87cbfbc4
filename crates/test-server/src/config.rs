//! What a run of the server is told: addresses, storage, users, limits, timeouts, faults.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::Error;
use crate::sasl::Mechanism;

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
    /// Accepted `(user, token)` pairs for XOAUTH2 and OAUTHBEARER; any other token gets the
    /// mechanism's error status. When non-empty, AUTH is offered and required before MAIL,
    /// and (without [`Config::auth_mechanisms`]) XOAUTH2 and OAUTHBEARER are offered after
    /// PLAIN and LOGIN (those two only when there are [`Config::users`]).
    pub oauth2_tokens: Vec<(String, String)>,
    /// Exactly the SASL mechanisms EHLO offers and AUTH accepts, in this order: any of
    /// `PLAIN`, `LOGIN`, `XOAUTH2`, `OAUTHBEARER`, `SCRAM-SHA-256` (case-insensitive).
    /// `None` (the default) offers `PLAIN LOGIN` for users and `XOAUTH2 OAUTHBEARER` for
    /// tokens. SCRAM-SHA-256 is offered only when listed here.
    pub auth_mechanisms: Option<Vec<String>>,
    /// The SCRAM-SHA-256 iteration count sent in the server-first message (`i=`); at least
    /// 1, default 4096 (the minimum RFC 7677 §4 recommends). A large count tests a client's
    /// limits; the server pays for it too, once per exchange.
    pub scram_iterations: u32,
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
    /// the store is faster under load but a crash may lose acknowledged messages. The
    /// session records (`sessions/{id}.transcript` and `.json`) are synced too when this is
    /// on, after the client's connection is closed; they are never synced when it is off.
    pub sync: bool,
    /// Remove the store directory when the [`Server`](crate::Server) is dropped, after every
    /// session thread has ended — but only a directory the server created itself
    /// (`store: None`); a directory the user named is never removed. Off by default, so
    /// that the stored messages and session transcripts stay for inspection; the embedded
    /// default of a client turns it on unless asked to keep them.
    pub remove_store_on_drop: bool,
    /// Misbehaviour to inject, for tests and teaching.
    pub faults: Faults,
    /// A certificate chain and private key, both PEM; `None` generates a CA and a
    /// `localhost` certificate signed by it at start-up.
    pub certificate: Option<(String, String)>,
    /// How replies are written; the default writes them at once (the lab slows them down
    /// to see whether a client waits for them and reads them whole).
    pub pacing: Pacing,
    /// Whose wording the replies have.
    pub voice: Voice,
    /// Accept a command line that ends in a bare LF, as most servers do (the lab grades it
    /// instead); message data still follows [`Config::line_endings`].
    pub bare_lf_commands: bool,
    /// Enforce RFC 5321 syntax where lenient servers let it pass: a space after `FROM:` or
    /// `TO:` is refused with `501`.
    pub strict_syntax: bool,
    /// Record, for each client line, when it arrived relative to the server's replies
    /// ([`Session::timings`](crate::Session::timings)), for the lab.
    pub record_timings: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            tls_listen: None,
            store: None,
            hostname: "localhost".to_owned(),
            users: Vec::new(),
            oauth2_tokens: Vec::new(),
            auth_mechanisms: None,
            scram_iterations: 4096,
            auth_without_tls: false,
            size_limit: 35 * 1024 * 1024,
            max_recipients: 100,
            max_connections: 1024,
            idle_timeout: Duration::from_secs(5 * 60),
            session_timeout: Duration::from_secs(30 * 60),
            line_endings: LineEndings::Strict,
            pipelining: true,
            sync: true,
            remove_store_on_drop: false,
            faults: Faults::default(),
            certificate: None,
            pacing: Pacing::default(),
            voice: Voice::default(),
            bare_lf_commands: false,
            strict_syntax: false,
            record_timings: false,
        }
    }
}

impl Config {
    /// Refuses a configuration that cannot work as meant, with one sentence saying why:
    /// the faults ([`Faults::check`]), an unknown, repeated or empty list of
    /// [`Config::auth_mechanisms`] (or one given with nobody to authenticate, or with the
    /// `auth-login-only` fault it would contradict), a SCRAM fault without SCRAM-SHA-256
    /// offered, and a `scram_iterations` of 0. [`Server::start`](crate::Server::start)
    /// calls it.
    pub fn check(&self) -> Result<(), Error> {
        self.faults.check()?;
        if self.scram_iterations == 0 {
            return Err(Error::Config(
                "the SCRAM iteration count must be at least 1 (RFC 7677 recommends 4096 or more)"
                    .to_owned(),
            ));
        }
        let mechanisms = match &self.auth_mechanisms {
            Some(names) => {
                let mut mechanisms = Vec::new();
                for name in names {
                    let mechanism = Mechanism::from_name(name).ok_or_else(|| {
                        Error::Config(format!(
                            "unknown AUTH mechanism {name:?}; use one of {}",
                            Mechanism::valid_names()
                        ))
                    })?;
                    if mechanisms.contains(&mechanism) {
                        return Err(Error::Config(format!(
                            "AUTH mechanism {} is listed twice; list each once",
                            mechanism.name()
                        )));
                    }
                    mechanisms.push(mechanism);
                }
                if mechanisms.is_empty() {
                    return Err(Error::Config(format!(
                        "the list of AUTH mechanisms is empty; list at least one of {}",
                        Mechanism::valid_names()
                    )));
                }
                if self.users.is_empty() && self.oauth2_tokens.is_empty() {
                    return Err(Error::Config(
                        "AUTH mechanisms are listed but there is no user and no OAuth 2.0 token, \
                         so AUTH is not offered; add a user (--user/--password) or a token \
                         (--oauth2-token)"
                            .to_owned(),
                    ));
                }
                if self.faults.auth_login_only {
                    return Err(Error::Config(
                        "the fault auth-login-only and a list of AUTH mechanisms exclude each \
                         other (the fault offers LOGIN only); keep one of them"
                            .to_owned(),
                    ));
                }
                mechanisms
            }
            None => Vec::new(),
        };
        for (fault, on) in [
            (
                "scram-bad-server-signature",
                self.faults.scram_bad_server_signature,
            ),
            ("scram-bad-server-first", self.faults.scram_bad_server_first),
        ] {
            if on && !mechanisms.contains(&Mechanism::ScramSha256) {
                return Err(Error::Config(format!(
                    "the fault {fault} needs SCRAM-SHA-256 among the AUTH mechanisms \
                     (--auth-mechanisms SCRAM-SHA-256,...), or it would change nothing"
                )));
            }
        }
        Ok(())
    }

    /// The mechanisms EHLO offers (once TLS is up, or with `auth_without_tls`), in order;
    /// empty when there is nobody to authenticate. Assumes [`Config::check`] passed.
    pub(crate) fn offered_mechanisms(&self) -> Vec<Mechanism> {
        if self.users.is_empty() && self.oauth2_tokens.is_empty() {
            return Vec::new();
        }
        if let Some(names) = &self.auth_mechanisms {
            return names
                .iter()
                .filter_map(|n| Mechanism::from_name(n))
                .collect();
        }
        if self.faults.auth_login_only {
            return vec![Mechanism::Login];
        }
        let mut offered = Vec::new();
        if !self.users.is_empty() {
            offered.extend([Mechanism::Plain, Mechanism::Login]);
        }
        if !self.oauth2_tokens.is_empty() {
            offered.extend([Mechanism::Xoauth2, Mechanism::OauthBearer]);
        }
        offered
    }
}

/// How the server writes its replies. The default writes everything queued in one write
/// as soon as it needs the client's next line (which is what makes PIPELINING work).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pacing {
    /// Before writing queued replies, wait this long for more from the client: whatever
    /// arrives meanwhile was sent before the client could have seen the reply.
    pub hold: Duration,
    /// Write each reply line on its own, this long after the one before (zero: all in one
    /// write). A client that takes one read for a whole reply sends its next command
    /// while the rest is still coming.
    pub pause: Duration,
    /// Also split every line in two writes, after its reply code.
    pub split_lines: bool,
}

impl Pacing {
    /// The writes `output` is sent in.
    pub(crate) fn pieces(self, output: &[u8]) -> Vec<&[u8]> {
        if self.pause.is_zero() {
            return vec![output];
        }
        let mut pieces = Vec::new();
        for line in output.split_inclusive(|&b| b == b'\n') {
            match line.len() {
                4.. if self.split_lines => {
                    let (code, rest) = line.split_at(3);
                    pieces.extend([code, rest]);
                }
                _ => pieces.push(line),
            }
        }
        pieces
    }
}

/// Whose wording the server's replies have.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Voice {
    /// test-server's own: short, fixed texts.
    #[default]
    TestServer,
    /// Gmail's greeting, EHLO reply and reply texts (as of 2026; see docs/test-server.md),
    /// so that a client tried in the lab meets the replies it will meet for real.
    Gmail,
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
    /// The chunk numbers (1 for a transaction's first BDAT) answered `554 5.6.0` instead of
    /// `250`; the transaction then fails, and its later chunks are discarded.
    pub reject_chunks: Vec<u64>,
    /// Close the connection in the middle of a BDAT chunk (once some of its octets have
    /// arrived), without a reply.
    pub drop_mid_chunk: bool,
    /// Do not advertise CHUNKING or BINARYMIME, and answer BDAT as a server without it
    /// would: `502 5.5.1`, without reading the chunk.
    pub no_chunking: bool,
    /// Sleep before the reply at a stage (to exercise client timeouts). Every entry
    /// applies; several entries for one stage add up (see [`Faults::stall_before`]).
    pub stall: Vec<(Stage, Duration)>,
    /// Do not advertise STARTTLS (and answer it with `454 4.7.0`).
    pub no_starttls: bool,
    /// Do not advertise 8BITMIME (and refuse `BODY=8BITMIME` with `555 5.5.4`), as an old
    /// or 7-bit-only server.
    pub no_8bitmime: bool,
    /// Offer only AUTH LOGIN.
    pub auth_login_only: bool,
    /// Answer every AUTH with `535 5.7.8`, whatever the credentials (XOAUTH2 and
    /// OAUTHBEARER after their error status).
    pub reject_auth: bool,
    /// SCRAM-SHA-256: send a wrong server signature (`v=`) after a valid client proof, the
    /// server a client must not trust.
    pub scram_bad_server_signature: bool,
    /// SCRAM-SHA-256: send a server-first message whose nonce does not start with the
    /// client's, which a client must refuse.
    pub scram_bad_server_first: bool,
    /// Bytes written in the same write right after the STARTTLS `220` line, in plaintext
    /// (the response injection of CVE-2021-22947 style attacks). Several
    /// `inject-after-starttls` faults are written one after the other, in the order given.
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
    /// Before the reply to the end-of-data `.`, and to `BDAT ... LAST`.
    EndOfData,
    /// Before the reply to each BDAT chunk, the `LAST` one included.
    Bdat,
    /// Before the `221` reply to QUIT.
    Quit,
}

impl Stage {
    const ALL: [(Stage, &'static str); 8] = [
        (Stage::Greeting, "greeting"),
        (Stage::Ehlo, "ehlo"),
        (Stage::Mail, "mail"),
        (Stage::Rcpt, "rcpt"),
        (Stage::Data, "data"),
        (Stage::EndOfData, "end-of-data"),
        (Stage::Bdat, "bdat"),
        (Stage::Quit, "quit"),
    ];

    /// Other spellings accepted by [`Stage::from_str`], with the stage they stand for.
    /// Only the first alias of each stage is listed in error messages.
    const ALIASES: [(&'static str, Stage); 5] = [
        ("helo", Stage::Ehlo),
        ("dot", Stage::EndOfData),
        ("eod", Stage::EndOfData),
        ("end_of_data", Stage::EndOfData),
        ("endofdata", Stage::EndOfData),
    ];

    fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(stage, _)| *stage == self)
            .map_or("?", |(_, name)| name)
    }

    /// Every stage as a user may write it, for error messages:
    /// `greeting, ehlo (or helo), mail, ...`.
    fn valid_names() -> String {
        let names: Vec<String> = Self::ALL
            .iter()
            .map(
                |(stage, name)| match Self::ALIASES.iter().find(|(_, aliased)| aliased == stage) {
                    Some((alias, _)) => format!("{name} (or {alias})"),
                    None => (*name).to_owned(),
                },
            )
            .collect();
        names.join(", ")
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
    /// (or `dot`, `eod`), `bdat` and `quit`, case-insensitively.
    fn from_str(s: &str) -> Result<Self, Error> {
        let lower = s.trim().to_ascii_lowercase();
        let alias = Self::ALIASES
            .iter()
            .find(|(alias, _)| *alias == lower)
            .map(|(_, stage)| *stage);
        alias
            .or_else(|| {
                Self::ALL
                    .iter()
                    .find(|(_, name)| *name == lower)
                    .map(|(stage, _)| *stage)
            })
            .ok_or_else(|| {
                Error::Config(format!(
                    "unknown stage {s:?}; use one of {}",
                    Self::valid_names()
                ))
            })
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

/// Every fault of [`Faults::add`]: its name, how it is written, and what it does.
const FAULTS: [(&str, &str, &str); 16] = [
    (
        "reject-rcpt",
        "reject-rcpt=ADDR",
        "RCPT TO this address gets 550 5.1.1",
    ),
    (
        "tempfail-rcpt",
        "tempfail-rcpt=ADDR",
        "RCPT TO this address gets 450 4.2.0",
    ),
    (
        "tempfail-mail",
        "tempfail-mail",
        "every MAIL FROM gets 451 4.3.0",
    ),
    (
        "reject-data",
        "reject-data",
        "the end of data gets 554 5.6.0; nothing is stored",
    ),
    (
        "drop-mid-data",
        "drop-mid-data",
        "the connection is closed after the first data line",
    ),
    (
        "reject-chunk",
        "reject-chunk=K",
        "the K-th BDAT chunk of each transaction gets 554",
    ),
    (
        "drop-mid-chunk",
        "drop-mid-chunk",
        "the connection is closed inside a BDAT chunk",
    ),
    (
        "stall",
        "stall=STAGE:DURATION",
        "wait before the reply at a stage (greeting, ehlo, mail, rcpt, data, end-of-data, \
         bdat, quit)",
    ),
    (
        "no-starttls",
        "no-starttls",
        "STARTTLS is not offered and gets 454 4.7.0",
    ),
    (
        "no-8bitmime",
        "no-8bitmime",
        "8BITMIME is not offered; BODY=8BITMIME gets 555",
    ),
    (
        "no-chunking",
        "no-chunking",
        "CHUNKING is not offered; BDAT gets 502 5.5.1",
    ),
    (
        "auth-login-only",
        "auth-login-only",
        "only AUTH LOGIN is offered",
    ),
    ("reject-auth", "reject-auth", "every AUTH gets 535 5.7.8"),
    (
        "inject-after-starttls",
        "inject-after-starttls=TEXT",
        "plaintext written right after the STARTTLS 220 (a response injection)",
    ),
    (
        "scram-bad-server-signature",
        "scram-bad-server-signature",
        "SCRAM-SHA-256 ends with a wrong server signature",
    ),
    (
        "scram-bad-server-first",
        "scram-bad-server-first",
        "SCRAM-SHA-256's server-first nonce does not extend the client's",
    ),
];

/// One fault [`Faults::add`] knows, for a list to choose from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultKind {
    /// Its name, such as `stall`.
    pub name: &'static str,
    /// How it is written, such as `stall=STAGE:DURATION`.
    pub syntax: &'static str,
    /// What it does, in a few words.
    pub description: &'static str,
}

/// How fault `name` is written, such as `stall=STAGE:DURATION`.
fn syntax(name: &str) -> &'static str {
    FAULTS
        .iter()
        .find(|(known, _, _)| *known == name)
        .map_or("", |(_, syntax, _)| syntax)
}

impl Faults {
    /// Adds one fault given as on the command line (`--fault`):
    /// `reject-rcpt=ADDR`, `tempfail-rcpt=ADDR`, `tempfail-mail`, `reject-data`,
    /// `drop-mid-data`, `reject-chunk=K`, `drop-mid-chunk`, `stall=STAGE:DURATION`,
    /// `no-starttls`, `no-8bitmime`, `no-chunking`, `auth-login-only`, `reject-auth`,
    /// `inject-after-starttls=TEXT` (`\r` and `\n` in TEXT are escapes),
    /// `scram-bad-server-signature`, `scram-bad-server-first`.
    ///
    /// Faults compose: every `reject-rcpt`, `tempfail-rcpt`, `reject-chunk` and `stall`
    /// given applies (stalls at one stage add up), several `inject-after-starttls` texts are written one
    /// after the other, and repeating a fault without a value changes nothing. Faults that
    /// contradict each other are refused (see [`Faults::check`]); on an error `self` is left
    /// as it was.
    pub fn add(&mut self, spec: &str) -> Result<(), Error> {
        let before = self.clone();
        let added = self.add_one(spec).and_then(|()| self.check());
        if added.is_err() {
            *self = before;
        }
        added
    }

    fn add_one(&mut self, spec: &str) -> Result<(), Error> {
        let (given, value) = match spec.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value)),
            None => (spec.trim(), None),
        };
        let normalized = given.to_ascii_lowercase().replace('_', "-");
        let name = match normalized.as_str() {
            "reject-recipient" => "reject-rcpt",
            "tempfail-recipient" => "tempfail-rcpt",
            other => other,
        };
        let need = |value: Option<&str>| {
            value
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| {
                    Error::Config(format!(
                        "fault {name} needs a value; write it as {}",
                        syntax(name)
                    ))
                })
        };
        let flag = |value: Option<&str>| match value {
            None => Ok(true),
            Some(v) => Err(Error::Config(format!(
                "fault {name} takes no value, got {v:?}; write it as {name}"
            ))),
        };
        match name {
            "reject-rcpt" => self.reject_recipients.push(need(value)?),
            "tempfail-rcpt" => self.tempfail_recipients.push(need(value)?),
            "tempfail-mail" => self.tempfail_mail = flag(value)?,
            "reject-data" => self.reject_data = flag(value)?,
            "drop-mid-data" => self.drop_mid_data = flag(value)?,
            "drop-mid-chunk" => self.drop_mid_chunk = flag(value)?,
            "no-starttls" => self.no_starttls = flag(value)?,
            "no-8bitmime" => self.no_8bitmime = flag(value)?,
            "no-chunking" => self.no_chunking = flag(value)?,
            "reject-chunk" => {
                let value = need(value)?;
                let chunk = Some(value.trim())
                    .filter(|v| {
                        !v.is_empty() && v.len() <= 19 && v.bytes().all(|b| b.is_ascii_digit())
                    })
                    .and_then(|v| v.parse::<u64>().ok())
                    .filter(|&k| k >= 1)
                    .ok_or_else(|| {
                        Error::Config(format!(
                            "fault reject-chunk needs a chunk number from 1 on, such as \
                             reject-chunk=2, got {value:?}"
                        ))
                    })?;
                if !self.reject_chunks.contains(&chunk) {
                    self.reject_chunks.push(chunk);
                }
            }
            "auth-login-only" => self.auth_login_only = flag(value)?,
            "reject-auth" => self.reject_auth = flag(value)?,
            "scram-bad-server-signature" => self.scram_bad_server_signature = flag(value)?,
            "scram-bad-server-first" => self.scram_bad_server_first = flag(value)?,
            "stall" => {
                let value = need(value)?;
                let (stage, duration) = value.split_once(':').ok_or_else(|| {
                    Error::Config(format!(
                        "fault stall needs STAGE:DURATION such as stall=mail:5s, got {value:?}"
                    ))
                })?;
                self.stall.push((stage.parse()?, parse_duration(duration)?));
            }
            "inject-after-starttls" => {
                let text = need(value)?.replace("\\r", "\r").replace("\\n", "\n");
                self.inject_after_starttls
                    .get_or_insert_with(Vec::new)
                    .extend_from_slice(text.as_bytes());
            }
            _ => {
                let valid: Vec<&str> = FAULTS.iter().map(|(_, syntax, _)| *syntax).collect();
                return Err(Error::Config(format!(
                    "unknown fault {given:?}; use one of {}",
                    valid.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Every fault there is, in the order `--fault`'s help lists them.
    pub fn kinds() -> impl Iterator<Item = FaultKind> {
        FAULTS.iter().map(|&(name, syntax, description)| FaultKind {
            name,
            syntax,
            description,
        })
    }

    /// The faults as `--fault` takes them, one string each: adding them to an empty set
    /// gives these faults again.
    pub fn specs(&self) -> Vec<String> {
        let mut specs = Vec::new();
        for (name, list) in [
            ("reject-rcpt", &self.reject_recipients),
            ("tempfail-rcpt", &self.tempfail_recipients),
        ] {
            specs.extend(list.iter().map(|address| format!("{name}={address}")));
        }
        let flags = [
            ("tempfail-mail", self.tempfail_mail),
            ("reject-data", self.reject_data),
            ("drop-mid-data", self.drop_mid_data),
            ("drop-mid-chunk", self.drop_mid_chunk),
            ("no-starttls", self.no_starttls),
            ("no-8bitmime", self.no_8bitmime),
            ("no-chunking", self.no_chunking),
            ("auth-login-only", self.auth_login_only),
            ("reject-auth", self.reject_auth),
            (
                "scram-bad-server-signature",
                self.scram_bad_server_signature,
            ),
            ("scram-bad-server-first", self.scram_bad_server_first),
        ];
        specs.extend(
            flags
                .iter()
                .filter(|(_, on)| *on)
                .map(|(name, _)| (*name).to_owned()),
        );
        specs.extend(
            self.reject_chunks
                .iter()
                .map(|k| format!("reject-chunk={k}")),
        );
        specs.extend(
            self.stall
                .iter()
                .map(|(stage, duration)| format!("stall={stage}:{}ms", duration.as_millis())),
        );
        if let Some(text) = &self.inject_after_starttls {
            let text = String::from_utf8_lossy(text)
                .replace('\r', "\\r")
                .replace('\n', "\\n");
            specs.push(format!("inject-after-starttls={text}"));
        }
        specs
    }

    /// How long to sleep before the reply at `stage`: the sum of every stall at that stage
    /// (zero for none).
    pub fn stall_before(&self, stage: Stage) -> Duration {
        self.stall
            .iter()
            .filter(|(at, _)| *at == stage)
            .map(|(_, duration)| *duration)
            .fold(Duration::ZERO, Duration::saturating_add)
    }

    /// Refuses faults that contradict each other, where one would silently cancel the
    /// other: a recipient both rejected and tempfailed, `inject-after-starttls` with
    /// `no-starttls` (which answers every STARTTLS `454`, so nothing would be injected),
    /// and a chunk fault (`reject-chunk`, `drop-mid-chunk`) with `no-chunking` (no chunk
    /// is ever read).
    /// [`Server::start`](crate::Server::start) calls it too.
    pub fn check(&self) -> Result<(), Error> {
        if let Some(both) = self.reject_recipients.iter().find(|rejected| {
            self.tempfail_recipients
                .iter()
                .any(|tempfailed| tempfailed.eq_ignore_ascii_case(rejected))
        }) {
            return Err(Error::Config(format!(
                "recipient {both:?} is given to both reject-rcpt and tempfail-rcpt; keep one of them"
            )));
        }
        if self.no_starttls && self.inject_after_starttls.is_some() {
            return Err(Error::Config(
                "faults no-starttls and inject-after-starttls exclude each other (without \
                 STARTTLS nothing is injected); keep one of them"
                    .to_owned(),
            ));
        }
        if self.no_chunking {
            let chunk_fault = match (self.reject_chunks.is_empty(), self.drop_mid_chunk) {
                (false, _) => Some("reject-chunk"),
                (true, true) => Some("drop-mid-chunk"),
                (true, false) => None,
            };
            if let Some(fault) = chunk_fault {
                return Err(Error::Config(format!(
                    "faults no-chunking and {fault} exclude each other (without CHUNKING no \
                     BDAT chunk is read); keep one of them"
                )));
            }
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
            ("BDAT", Stage::Bdat),
            ("quit", Stage::Quit),
        ] {
            assert_eq!(text.parse::<Stage>().ok(), Some(stage), "{text}");
        }
        assert!("later".parse::<Stage>().is_err());
        assert_eq!(Stage::EndOfData.to_string(), "end-of-data");
    }

    #[test]
    fn pacing_splits_replies_into_lines_and_lines_after_their_code() {
        let reply = b"250-a\r\n250 b\r\n";
        assert_eq!(Pacing::default().pieces(reply), [&reply[..]]);
        let lines = Pacing {
            pause: Duration::from_millis(1),
            ..Pacing::default()
        };
        assert_eq!(lines.pieces(reply), [&b"250-a\r\n"[..], b"250 b\r\n"]);
        let split = Pacing {
            split_lines: true,
            ..lines
        };
        assert_eq!(
            split.pieces(reply),
            [&b"250"[..], b"-a\r\n", b"250", b" b\r\n"]
        );
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
            "auth-login-only",
            "reject-auth",
            "inject-after-starttls=250 evil\\r\\n",
            "scram-bad-server-signature",
            "scram_bad_server_first",
            "reject-chunk=2",
            "reject-chunk=7",
            "reject-chunk=2",
            "drop-mid-chunk",
            "stall=bdat:250ms",
        ] {
            faults.add(spec).expect(spec);
        }
        assert!(faults.scram_bad_server_signature && faults.scram_bad_server_first);
        assert_eq!(faults.reject_chunks, [2, 7], "the same chunk twice is once");
        assert!(faults.drop_mid_chunk && !faults.no_chunking);
        assert_eq!(faults.reject_recipients, ["bad@example.com"]);
        assert_eq!(faults.tempfail_recipients, ["later@example.com"]);
        assert!(faults.tempfail_mail && faults.reject_data && faults.drop_mid_data);
        assert!(faults.auth_login_only && faults.reject_auth && !faults.no_starttls);
        assert_eq!(
            faults.stall,
            [
                (Stage::Mail, Duration::from_secs(5)),
                (Stage::Bdat, Duration::from_millis(250))
            ]
        );
        assert_eq!(
            faults.inject_after_starttls.as_deref(),
            Some(&b"250 evil\r\n"[..])
        );
        let mut other = Faults::default();
        other.add("no-starttls").expect("no-starttls");
        other.add("reject_recipient=x@example.com").expect("alias");
        assert!(other.no_starttls);
        assert_eq!(other.reject_recipients, ["x@example.com"]);
    }

    /// A second fault of a kind adds to the first; it never replaces it.
    #[test]
    fn faults_of_a_kind_compose() {
        let mut faults = Faults::default();
        for spec in [
            "stall=mail:1s",
            "stall=rcpt:2s",
            "stall=mail:300ms",
            "reject-rcpt=a@example.com",
            "reject-rcpt=b@example.com",
            "tempfail-rcpt=c@example.com",
            "tempfail-rcpt=d@example.com",
            "inject-after-starttls=250-one\\r\\n",
            "inject-after-starttls=250 two\\r\\n",
            "reject-data",
            "reject-data",
        ] {
            faults.add(spec).expect(spec);
        }
        assert_eq!(
            faults.stall,
            [
                (Stage::Mail, Duration::from_secs(1)),
                (Stage::Rcpt, Duration::from_secs(2)),
                (Stage::Mail, Duration::from_millis(300)),
            ]
        );
        // Stalls at one stage add up.
        assert_eq!(
            faults.stall_before(Stage::Mail),
            Duration::from_millis(1300)
        );
        assert_eq!(faults.stall_before(Stage::Rcpt), Duration::from_secs(2));
        assert_eq!(faults.stall_before(Stage::Quit), Duration::ZERO);
        assert_eq!(faults.reject_recipients, ["a@example.com", "b@example.com"]);
        assert_eq!(
            faults.tempfail_recipients,
            ["c@example.com", "d@example.com"]
        );
        assert_eq!(
            faults.inject_after_starttls.as_deref(),
            Some(&b"250-one\r\n250 two\r\n"[..])
        );
        assert!(faults.reject_data);
    }

    fn error(faults: &mut Faults, spec: &str) -> String {
        match faults.add(spec) {
            Ok(()) => format!("accepted {spec:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn errors_list_what_is_valid() {
        let mut faults = Faults::default();
        for (spec, expected) in [
            (
                "stall=foo:1s",
                "unknown stage \"foo\"; use one of greeting, ehlo (or helo), mail, rcpt, \
                 data, end-of-data (or dot), bdat, quit",
            ),
            (
                "explode",
                "unknown fault \"explode\"; use one of reject-rcpt=ADDR, tempfail-rcpt=ADDR, \
                 tempfail-mail, reject-data, drop-mid-data, reject-chunk=K, drop-mid-chunk, \
                 stall=STAGE:DURATION, no-starttls, no-8bitmime, no-chunking, \
                 auth-login-only, reject-auth, inject-after-starttls=TEXT, \
                 scram-bad-server-signature, scram-bad-server-first",
            ),
            (
                "Explode=now",
                "unknown fault \"Explode\"; use one of reject-rcpt=ADDR, tempfail-rcpt=ADDR, \
                 tempfail-mail, reject-data, drop-mid-data, reject-chunk=K, drop-mid-chunk, \
                 stall=STAGE:DURATION, no-starttls, no-8bitmime, no-chunking, \
                 auth-login-only, reject-auth, inject-after-starttls=TEXT, \
                 scram-bad-server-signature, scram-bad-server-first",
            ),
            (
                "reject-rcpt",
                "fault reject-rcpt needs a value; write it as reject-rcpt=ADDR",
            ),
            (
                "stall=",
                "fault stall needs a value; write it as stall=STAGE:DURATION",
            ),
            (
                "stall=mail",
                "fault stall needs STAGE:DURATION such as stall=mail:5s, got \"mail\"",
            ),
            (
                "stall=mail:5h",
                "bad duration \"5h\" (use e.g. 300ms, 5s, 2m)",
            ),
            (
                "tempfail-mail=yes",
                "fault tempfail-mail takes no value, got \"yes\"; write it as tempfail-mail",
            ),
            (
                "reject-chunk=0",
                "fault reject-chunk needs a chunk number from 1 on, such as reject-chunk=2, \
                 got \"0\"",
            ),
            (
                "reject-chunk=-1",
                "fault reject-chunk needs a chunk number from 1 on, such as reject-chunk=2, \
                 got \"-1\"",
            ),
            (
                "reject-chunk",
                "fault reject-chunk needs a value; write it as reject-chunk=K",
            ),
        ] {
            assert_eq!(error(&mut faults, spec), expected, "{spec}");
        }
        assert_eq!(faults, Faults::default(), "failed additions change nothing");
        assert_eq!(
            "later".parse::<Stage>().map_err(|e| e.to_string()),
            Err(
                "unknown stage \"later\"; use one of greeting, ehlo (or helo), mail, rcpt, \
                 data, end-of-data (or dot), bdat, quit"
                    .to_owned()
            )
        );
    }

    #[test]
    fn contradicting_faults_are_refused() {
        let mut faults = Faults::default();
        faults.add("reject-rcpt=Both@example.com").expect("first");
        assert_eq!(
            error(&mut faults, "tempfail-rcpt=both@EXAMPLE.com"),
            "recipient \"Both@example.com\" is given to both reject-rcpt and tempfail-rcpt; \
             keep one of them"
        );
        assert!(faults.tempfail_recipients.is_empty(), "left as it was");
        faults.add("no-starttls").expect("no-starttls");
        assert_eq!(
            error(&mut faults, "inject-after-starttls=x"),
            "faults no-starttls and inject-after-starttls exclude each other (without \
             STARTTLS nothing is injected); keep one of them"
        );
        assert_eq!(faults.inject_after_starttls, None);
        // Built by hand, the same contradiction is found by check.
        let by_hand = Faults {
            no_starttls: true,
            inject_after_starttls: Some(b"x".to_vec()),
            ..Faults::default()
        };
        assert!(by_hand.check().is_err());
        let mut chunks = Faults::default();
        chunks.add("no-chunking").expect("no-chunking");
        assert_eq!(
            error(&mut chunks, "reject-chunk=1"),
            "faults no-chunking and reject-chunk exclude each other (without CHUNKING no \
             BDAT chunk is read); keep one of them"
        );
        assert_eq!(
            error(&mut chunks, "drop-mid-chunk"),
            "faults no-chunking and drop-mid-chunk exclude each other (without CHUNKING no \
             BDAT chunk is read); keep one of them"
        );
        assert!(chunks.reject_chunks.is_empty() && !chunks.drop_mid_chunk);
    }

    fn check(config: Config) -> String {
        match config.check() {
            Ok(()) => "accepted".to_owned(),
            Err(e) => e.to_string(),
        }
    }

    fn names(list: &[&str]) -> Option<Vec<String>> {
        Some(list.iter().map(|name| (*name).to_owned()).collect())
    }

    #[test]
    fn offered_mechanisms_follow_users_tokens_and_the_list() {
        let users = vec![("alice".to_owned(), "s3cret".to_owned())];
        let tokens = vec![("alice".to_owned(), "t0ken".to_owned())];
        let offered = |config: Config| -> Vec<&'static str> {
            config
                .offered_mechanisms()
                .iter()
                .map(|m| m.name())
                .collect()
        };
        assert!(offered(Config::default()).is_empty());
        let with_users = Config {
            users: users.clone(),
            ..Config::default()
        };
        assert_eq!(offered(with_users.clone()), ["PLAIN", "LOGIN"]);
        let with_tokens = Config {
            oauth2_tokens: tokens.clone(),
            ..Config::default()
        };
        assert_eq!(offered(with_tokens.clone()), ["XOAUTH2", "OAUTHBEARER"]);
        let both = Config {
            oauth2_tokens: tokens,
            ..with_users.clone()
        };
        assert_eq!(
            offered(both.clone()),
            ["PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"]
        );
        let listed = Config {
            auth_mechanisms: names(&["scram-sha-256", "LOGIN"]),
            ..both
        };
        assert_eq!(check(listed.clone()), "accepted");
        assert_eq!(offered(listed), ["SCRAM-SHA-256", "LOGIN"]);
        let mut login_only = with_users;
        login_only.faults.auth_login_only = true;
        assert_eq!(offered(login_only), ["LOGIN"]);
    }

    #[test]
    fn configurations_that_cannot_work_are_refused() {
        let users = Config {
            users: vec![("alice".to_owned(), "s3cret".to_owned())],
            ..Config::default()
        };
        assert_eq!(check(users.clone()), "accepted");
        for (config, expected) in [
            (
                Config {
                    auth_mechanisms: names(&["PLAIN", "CRAM-MD5"]),
                    ..users.clone()
                },
                "unknown AUTH mechanism \"CRAM-MD5\"; use one of PLAIN, LOGIN, XOAUTH2, \
                 OAUTHBEARER, SCRAM-SHA-256",
            ),
            (
                Config {
                    auth_mechanisms: names(&["PLAIN", "plain"]),
                    ..users.clone()
                },
                "AUTH mechanism PLAIN is listed twice; list each once",
            ),
            (
                Config {
                    auth_mechanisms: names(&[]),
                    ..users.clone()
                },
                "the list of AUTH mechanisms is empty; list at least one of PLAIN, LOGIN, \
                 XOAUTH2, OAUTHBEARER, SCRAM-SHA-256",
            ),
            (
                Config {
                    auth_mechanisms: names(&["XOAUTH2"]),
                    ..Config::default()
                },
                "AUTH mechanisms are listed but there is no user and no OAuth 2.0 token, so \
                 AUTH is not offered; add a user (--user/--password) or a token \
                 (--oauth2-token)",
            ),
            (
                Config {
                    scram_iterations: 0,
                    ..users.clone()
                },
                "the SCRAM iteration count must be at least 1 (RFC 7677 recommends 4096 or more)",
            ),
            (
                Config {
                    auth_mechanisms: names(&["LOGIN"]),
                    faults: Faults {
                        auth_login_only: true,
                        ..Faults::default()
                    },
                    ..users.clone()
                },
                "the fault auth-login-only and a list of AUTH mechanisms exclude each other \
                 (the fault offers LOGIN only); keep one of them",
            ),
            (
                Config {
                    auth_mechanisms: names(&["PLAIN"]),
                    faults: Faults {
                        scram_bad_server_first: true,
                        ..Faults::default()
                    },
                    ..users.clone()
                },
                "the fault scram-bad-server-first needs SCRAM-SHA-256 among the AUTH mechanisms \
                 (--auth-mechanisms SCRAM-SHA-256,...), or it would change nothing",
            ),
            (
                Config {
                    faults: Faults {
                        scram_bad_server_signature: true,
                        ..Faults::default()
                    },
                    ..users.clone()
                },
                "the fault scram-bad-server-signature needs SCRAM-SHA-256 among the AUTH \
                 mechanisms (--auth-mechanisms SCRAM-SHA-256,...), or it would change nothing",
            ),
        ] {
            assert_eq!(check(config), expected);
        }
    }
}
