//! The lab: grade an SMTP client someone wrote, from what the server saw of it.
//!
//! A [`Profile`] sets the server up the way one kind of real server behaves and slows its
//! replies down ([`Pacing`]) so that the timing of every client line says whether the
//! client waited for the reply before it and read it whole. [`grade`] walks each
//! session's transcript — raw bytes, line endings and all, with those timings — and
//! judges each [`Check`]; a check that the session gives no evidence for is
//! [`Status::NotApplicable`], never a pass. [`Scorecard`] renders the result for a student
//! (text) or a program (JSON, described by `lab.schema.json` in this crate).

mod checks;
mod run;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::{Config, Error, Pacing, Server, Session, Voice};

pub use run::{LabOptions, run};

/// The user the lab's profiles with AUTH accept.
pub const USER: &str = "student";
/// That user's password.
pub const PASSWORD: &str = "lab-password";
/// The sender the lab suggests (`SMTP_FROM`).
pub const FROM: &str = "student@lab.test";
/// The recipient the lab suggests (`SMTP_TO`).
pub const TO: &str = "teacher@lab.test";

/// How long the lab holds each reply back to see whether the client waits for it.
const HOLD: Duration = Duration::from_millis(60);
/// How long apart the lab writes the lines (and, in `strict`, the pieces) of a reply.
const PAUSE: Duration = Duration::from_millis(40);

/// Which kind of server the lab plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// The classic lab: no TLS, no AUTH, HELO accepted.
    Plain,
    /// A submission server on port 587: STARTTLS, then AUTH PLAIN or LOGIN required
    /// (`530 5.7.0` before), like Gmail and Outlook.
    Submission,
    /// Implicit TLS (port 465, RFC 8314): connect to `SMTP_TLS_PORT` and speak TLS first.
    Implicit,
    /// `submission` with Gmail's greeting, EHLO keywords and reply texts.
    Gmail,
    /// `submission` with every reply line written in two pieces, and strict RFC 5321
    /// syntax (no space after `FROM:`, no bare LF ending a command).
    Strict,
}

impl Profile {
    /// The name as given to `--profile`.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Plain => "plain",
            Profile::Submission => "submission",
            Profile::Implicit => "implicit",
            Profile::Gmail => "gmail",
            Profile::Strict => "strict",
        }
    }

    /// What the server does, in a few words.
    pub fn summary(self) -> &'static str {
        match self {
            Profile::Plain => "no TLS, no AUTH, HELO accepted",
            Profile::Submission => "port 587 style: STARTTLS, then AUTH PLAIN or LOGIN before MAIL",
            Profile::Implicit => {
                "port 465 style: TLS from the first byte on SMTP_TLS_PORT, then AUTH"
            }
            Profile::Gmail => "Gmail's replies: STARTTLS, then AUTH PLAIN or LOGIN before MAIL",
            Profile::Strict => {
                "submission, with replies written in pieces and RFC 5321 syntax enforced"
            }
        }
    }

    /// Whether the profile authenticates (and so needs TLS first).
    pub fn has_auth(self) -> bool {
        self != Profile::Plain
    }

    /// The server configuration of the profile, on top of `base` (addresses, store).
    pub fn config(self, base: Config) -> Config {
        let mut config = Config {
            record_timings: true,
            pacing: Pacing {
                hold: HOLD,
                pause: PAUSE,
                split_lines: self == Profile::Strict,
            },
            // Most servers take a command ending in a bare LF; the lab grades it (`crlf`).
            bare_lf_commands: self != Profile::Strict,
            strict_syntax: self == Profile::Strict,
            ..base
        };
        if self.has_auth() {
            config.users = vec![(USER.to_owned(), PASSWORD.to_owned())];
        } else {
            config.faults.no_starttls = true;
        }
        if self == Profile::Gmail {
            config.voice = Voice::Gmail;
            config.hostname = "smtp.gmail.com".to_owned();
            config.size_limit = 35_882_577;
        }
        config
    }
}

/// A running lab: the server playing a profile, and what a client needs to reach it.
#[derive(Debug)]
pub struct Lab {
    profile: Profile,
    server: Server,
    ca_file: PathBuf,
}

impl Lab {
    /// Starts the server as `profile` on top of `base` (addresses, store, idle timeout;
    /// an implicit TLS listener is added for profiles with TLS when `base` has none) and
    /// writes its CA to `ca.pem` in the store.
    pub fn start(profile: Profile, mut base: Config) -> Result<Lab, Error> {
        if profile.has_auth() && base.tls_listen.is_none() {
            base.tls_listen = Some(std::net::SocketAddr::new(base.listen.ip(), 0));
        }
        if !profile.has_auth() {
            base.tls_listen = None;
        }
        let server = Server::start(profile.config(base))?;
        let ca_file = server.store_dir().join("ca.pem");
        std::fs::write(&ca_file, server.ca_pem()).map_err(|source| Error::Store {
            path: ca_file.clone(),
            source,
        })?;
        Ok(Lab {
            profile,
            server,
            ca_file,
        })
    }

    /// The server.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// The file holding the CA certificate a client must trust.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The variables a client under test finds the server in, in a fixed order:
    /// `SMTP_HOST`, `SMTP_PORT`, `SMTP_TLS_PORT`, `SMTP_CA_FILE`, `SMTP_USER`,
    /// `SMTP_PASSWORD` (the last four only where the profile has TLS and AUTH),
    /// `SMTP_FROM`, `SMTP_TO`, and `SMTP_SERVER` and `SMTP_TLS` as this workbench's own
    /// clients read them.
    pub fn environment(&self) -> Vec<(&'static str, String)> {
        let addr = self.server.addr();
        let mut env = vec![
            ("SMTP_HOST", addr.ip().to_string()),
            ("SMTP_PORT", addr.port().to_string()),
        ];
        if let Some(tls) = self.server.tls_addr() {
            env.push(("SMTP_TLS_PORT", tls.port().to_string()));
        }
        if self.profile.has_auth() {
            env.push(("SMTP_CA_FILE", self.ca_file.display().to_string()));
            env.push(("SMTP_USER", USER.to_owned()));
            env.push(("SMTP_PASSWORD", PASSWORD.to_owned()));
        }
        env.push(("SMTP_FROM", FROM.to_owned()));
        env.push(("SMTP_TO", TO.to_owned()));
        let (server, tls) = match (self.profile, self.server.tls_addr()) {
            (Profile::Plain, _) => (addr, "none"),
            (Profile::Implicit, Some(tls)) => (tls, "implicit"),
            _ => (addr, "starttls"),
        };
        env.push(("SMTP_SERVER", server.to_string()));
        env.push(("SMTP_TLS", tls.to_owned()));
        env
    }

    /// Waits (up to `settle`) for every connection accepted so far to end, then grades
    /// all the sessions.
    pub fn grade(&self, settle: Duration) -> Scorecard {
        self.server
            .wait_for_sessions(self.server.connections(), settle);
        grade(self.profile, &self.server.sessions())
    }
}

/// What a check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// The client did what the RFC asks.
    Pass,
    /// It did not.
    Fail,
    /// Nothing the client did shows either way.
    NotApplicable,
}

/// One graded check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// The stable id, such as `dot-stuffing`.
    pub id: &'static str,
    /// What it checks, in a few words.
    pub title: &'static str,
    /// The outcome.
    pub status: Status,
    /// The RFC section that asks for it.
    pub rfc: &'static str,
    /// What the verdict rests on: the transcript line (redacted, as in the session's
    /// `.transcript`), or `detail` when no one line shows it.
    pub evidence: String,
    /// What was right or wrong with it, in a sentence.
    pub detail: String,
    /// For a failure: what the RFC requires and how to fix the client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// What `--explain` says about the offending line.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub explain: Vec<String>,
    /// The session the evidence comes from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

/// A graded session, as the JSON lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GradedSession {
    /// The session id; its transcript is `sessions/{id}.transcript` in the store.
    pub id: String,
    /// The client's address.
    pub peer: String,
    /// Whether TLS was used.
    pub tls: bool,
    /// Why the session ended (`SessionEnd::kind`).
    pub reason: String,
    /// The ids of the messages it stored.
    pub messages: Vec<String>,
    /// Where its transcript is, if it was saved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcript: Option<String>,
}

/// The graded checks of a lab run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Scorecard {
    /// The profile's name.
    pub profile: &'static str,
    /// Every applicable check passed (and there was at least one session).
    pub passed: bool,
    /// The checks, in their fixed order.
    pub checks: Vec<Check>,
    /// The sessions graded.
    pub sessions: Vec<GradedSession>,
}

/// Grades every session against the profile. Each check fails if it failed in any
/// session, passes if it passed in one and failed in none, and is not applicable
/// otherwise.
pub fn grade(profile: Profile, sessions: &[Session]) -> Scorecard {
    let per_session: Vec<Vec<Check>> = sessions
        .iter()
        .map(|session| checks::judge(profile, session))
        .collect();
    let mut checks = Vec::new();
    if per_session.is_empty() {
        checks = checks::nothing_to_grade();
    }
    for (i, first) in per_session.first().into_iter().flatten().enumerate() {
        let verdicts = per_session.iter().filter_map(|checks| checks.get(i));
        let pick = |status| verdicts.clone().find(|check| check.status == status);
        let check = pick(Status::Fail)
            .or_else(|| pick(Status::Pass))
            .unwrap_or(first)
            .clone();
        checks.push(check);
    }
    if sessions.len() < 2 {
        for check in &mut checks {
            check.session = None;
        }
    }
    let passed = !sessions.is_empty() && checks.iter().all(|c| c.status != Status::Fail);
    let sessions = sessions
        .iter()
        .map(|session| GradedSession {
            id: session.id.clone(),
            peer: session.peer.clone(),
            tls: session.tls,
            reason: session.reason.kind().to_owned(),
            messages: session.message_ids.clone(),
            transcript: session
                .transcript_file
                .as_ref()
                .ok()
                .map(|path| path.display().to_string()),
        })
        .collect();
    Scorecard {
        profile: profile.name(),
        passed,
        checks,
        sessions,
    }
}

impl Scorecard {
    /// The JSON document (`lab.schema.json`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The scorecard a student reads: one line per check, and under each failure the
    /// offending line, what the RFC asks and how to fix it.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let sessions = match self.sessions.len() {
            1 => "1 session".to_owned(),
            n => format!("{n} sessions"),
        };
        let _ = writeln!(out, "lab scorecard: profile {}, {sessions}", self.profile);
        let width = self.checks.iter().map(|c| c.id.len()).max().unwrap_or(0);
        for check in &self.checks {
            let mark = match check.status {
                Status::Pass => "✓",
                Status::Fail => "✗",
                Status::NotApplicable => "-",
            };
            let _ = writeln!(
                out,
                "{mark} {:width$}  {} ({})",
                check.id, check.title, check.rfc
            );
            let session = check
                .session
                .as_ref()
                .map(|id| format!(" (session {id})"))
                .unwrap_or_default();
            match check.status {
                Status::Pass => {}
                Status::NotApplicable => {
                    let _ = writeln!(out, "      not applicable: {}", check.detail);
                }
                Status::Fail => {
                    if check.evidence != check.detail {
                        let _ = writeln!(out, "      {}{session}", check.evidence);
                    }
                    let _ = writeln!(out, "      {}", check.detail);
                    for note in &check.explain {
                        let _ = writeln!(out, "      # {note}");
                    }
                    if let Some(fix) = &check.fix {
                        let _ = writeln!(out, "      fix: {fix}");
                    }
                }
            }
        }
        let count = |status| self.checks.iter().filter(|c| c.status == status).count();
        let _ = writeln!(
            out,
            "{} passed, {} failed, {} not applicable: {}",
            count(Status::Pass),
            count(Status::Fail),
            count(Status::NotApplicable),
            if self.passed { "PASSED" } else { "FAILED" }
        );
        for session in &self.sessions {
            if let Some(path) = &session.transcript {
                let _ = writeln!(out, "transcript of session {}: {path}", session.id);
            }
        }
        out
    }
}
