//! Round trips: one STARTTLS (or implicit TLS) + AUTH + one-recipient message from each
//! client, through the delay proxy, to test-server. Counted from the proxy's trace.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use super::proxy::{self, DelayProxy};
use super::{
    Ctx, DELAY, FLOOR_CHUNKING_IMPLICIT, FLOOR_CHUNKING_STARTTLS, FLOOR_IMPLICIT, FLOOR_STARTTLS,
    FROM, PASSWORD, PASSWORD_ENV, TO, USER,
};
use crate::interop::procs;

/// How a client is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// raw-client; `chunking` sends the message with BDAT (`--chunking=required`).
    Raw {
        pipelining: bool,
        chunking: bool,
    },
    Lib,
    Swaks,
    Msmtp,
    Curl {
        sasl_ir: bool,
    },
    Smtplib,
}

/// One row of the table.
#[derive(Debug)]
pub(crate) struct Client {
    /// As shown in the table.
    pub(crate) name: &'static str,
    /// File-name friendly.
    pub(crate) slug: &'static str,
    pub(crate) kind: Kind,
    /// One of ours (raw-client, lib-client) rather than a peer.
    pub(crate) ours: bool,
    /// `--quick` fails when this client needs more than the floor.
    pub(crate) must_reach_floor: bool,
}

impl Client {
    /// The protocol floor this client is held to, (STARTTLS, implicit TLS): one round trip
    /// fewer with BDAT, which has no `354` to wait for (docs/performance.md).
    pub(crate) fn floor(&self) -> (usize, usize) {
        match self.kind {
            Kind::Raw { chunking: true, .. } => (FLOOR_CHUNKING_STARTTLS, FLOOR_CHUNKING_IMPLICIT),
            _ => (FLOOR_STARTTLS, FLOOR_IMPLICIT),
        }
    }
}

const RAW: Client = Client {
    name: "raw-client",
    slug: "raw-client",
    kind: Kind::Raw {
        pipelining: false,
        chunking: false,
    },
    ours: true,
    must_reach_floor: false,
};
const RAW_PIPELINING: Client = Client {
    name: "raw-client --pipelining",
    slug: "raw-client-pipelining",
    kind: Kind::Raw {
        pipelining: true,
        chunking: false,
    },
    ours: true,
    must_reach_floor: true,
};
const RAW_PIPELINING_CHUNKING: Client = Client {
    name: "raw-client --pipelining --chunking",
    slug: "raw-client-pipelining-chunking",
    kind: Kind::Raw {
        pipelining: true,
        chunking: true,
    },
    ours: true,
    must_reach_floor: true,
};
const LIB: Client = Client {
    name: "lib-client (lettre 0.11)",
    slug: "lib-client",
    kind: Kind::Lib,
    ours: true,
    must_reach_floor: false,
};

/// Our clients only (`--quick`).
pub(crate) const OURS: &[Client] = &[RAW_PIPELINING_CHUNKING, RAW_PIPELINING, RAW, LIB];

/// Every client.
pub(crate) const ALL: &[Client] = &[
    RAW_PIPELINING_CHUNKING,
    RAW_PIPELINING,
    RAW,
    LIB,
    Client {
        name: "msmtp",
        slug: "msmtp",
        kind: Kind::Msmtp,
        ours: false,
        must_reach_floor: false,
    },
    Client {
        name: "swaks --auth PLAIN --pipeline",
        slug: "swaks",
        kind: Kind::Swaks,
        ours: false,
        must_reach_floor: false,
    },
    Client {
        name: "curl --sasl-ir",
        slug: "curl-sasl-ir",
        kind: Kind::Curl { sasl_ir: true },
        ours: false,
        must_reach_floor: false,
    },
    Client {
        name: "curl",
        slug: "curl",
        kind: Kind::Curl { sasl_ir: false },
        ours: false,
        must_reach_floor: false,
    },
    Client {
        name: "Python smtplib",
        slug: "smtplib",
        kind: Kind::Smtplib,
        ours: false,
        must_reach_floor: false,
    },
];

/// Round trips of one client in one TLS mode over the runs.
#[derive(Debug, Clone)]
pub(crate) struct Measured {
    pub(crate) min: usize,
    pub(crate) max: usize,
    /// The median round trips.
    pub(crate) median: usize,
    /// Median wall time of the client process through the proxy, seconds.
    pub(crate) wall: f64,
}

/// One client's results.
#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) client: &'static Client,
    pub(crate) starttls: Result<Measured, String>,
    pub(crate) implicit: Result<Measured, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    StartTls,
    Implicit,
}

struct Setup {
    ca: PathBuf,
    eml: PathBuf,
    swaks_eml: PathBuf,
    msmtprc: PathBuf,
    script: PathBuf,
}

/// Measures `clients` in both modes, `runs` times each.
pub(crate) fn run(ctx: &Ctx, clients: &'static [Client], runs: usize) -> Result<Vec<Row>> {
    let store = ctx.work.join("rt-store");
    if store.exists() {
        std::fs::remove_dir_all(&store)?;
    }
    std::fs::create_dir_all(&store)?;
    let server = procs::start_test_server(
        &ctx.bin.join("test-server"),
        &store,
        "test-server.bench.localhost",
        (USER, PASSWORD),
        &ctx.work.join("rt-test-server.log"),
    )?;
    let (port, tls_port, ca) = (server.port, server.tls_port, server.ca.clone());
    let plain = DelayProxy::start(([127, 0, 0, 1], port).into(), DELAY)?;
    let tls = DelayProxy::start(([127, 0, 0, 1], tls_port).into(), DELAY)?;
    let setup = prepare(ctx, &ca, plain.addr().port(), tls.addr().port())?;
    let traces = ctx.dir("traces")?;

    let mut rows = Vec::new();
    for client in clients {
        let measure = |mode: Mode| -> Result<Measured, String> {
            let proxy = if mode == Mode::StartTls { &plain } else { &tls };
            let mut counts = Vec::new();
            let mut walls = Vec::new();
            for _ in 0..runs {
                let before = proxy.connections();
                let mut command = command_for(ctx, client.kind, mode, proxy.addr().port(), &setup);
                let input = match client.kind {
                    Kind::Msmtp => Some(std::fs::read(&setup.eml).map_err(|e| e.to_string())?),
                    _ => None,
                };
                let started = Instant::now();
                let outcome = procs::run(&mut command, input.as_deref(), Duration::from_secs(60))
                    .map_err(|e| format!("{e:#}"))?;
                let wall = started.elapsed();
                if !outcome.success() {
                    return Err(outcome.why());
                }
                let after = proxy.connections();
                if after == before {
                    return Err("no connection went through the proxy".into());
                }
                let chunks = proxy
                    .trace(before, Duration::from_secs(15))
                    .map_err(|e| format!("{e:#}"))?;
                let name = format!(
                    "{}-{}.txt",
                    client.slug,
                    if mode == Mode::StartTls {
                        "starttls"
                    } else {
                        "implicit"
                    }
                );
                let _ = std::fs::write(traces.join(name), proxy::render(&chunks));
                counts.push(proxy::round_trips(&chunks));
                walls.push(wall.as_secs_f64());
            }
            counts.sort_unstable();
            Ok(Measured {
                min: counts[0],
                max: counts[counts.len() - 1],
                median: counts[counts.len() / 2],
                wall: super::median(&walls),
            })
        };
        let starttls = measure(Mode::StartTls);
        let implicit = measure(Mode::Implicit);
        let show = |m: &Result<Measured, String>| match m {
            Ok(m) => format!("{}", m.median),
            Err(why) => format!("failed ({why})"),
        };
        println!(
            "  {:<32} STARTTLS {:>3}   implicit TLS {:>3}",
            client.name,
            show(&starttls),
            show(&implicit)
        );
        rows.push(Row {
            client,
            starttls,
            implicit,
        });
    }
    drop((plain, tls, server));
    Ok(rows)
}

/// The message file the peers send, swaks' variant of it, msmtp's configuration and the
/// smtplib script.
fn prepare(ctx: &Ctx, ca: &Path, port: u16, tls_port: u16) -> Result<Setup> {
    let dir = ctx.dir("rt-fixtures")?;
    let text = format!(
        "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\nFrom: {FROM}\r\nTo: {TO}\r\n\
         Subject: Round trips\r\nMessage-ID: <rt@bench.localhost>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n\
         {BODY}\r\n"
    );
    let eml = dir.join("message.eml");
    std::fs::write(&eml, &text)?;
    // swaks appends "\r\n." to its --data, so it gets the message without the last CRLF.
    let swaks_eml = dir.join("message-for-swaks.eml");
    std::fs::write(&swaks_eml, text.trim_end_matches("\r\n"))?;
    let msmtprc = dir.join("msmtprc");
    let account = |name: &str, port: u16, starttls: &str| {
        format!(
            "account {name}\nhost 127.0.0.1\nport {port}\ntls_starttls {starttls}\nauth plain\n\
             user {USER}\npassword {PASSWORD}\nfrom {FROM}\n\n"
        )
    };
    std::fs::write(
        &msmtprc,
        format!(
            "defaults\ntls on\ntls_trust_file {}\ndomain msmtp.bench.localhost\ntimeout 30\n\n{}{}",
            ca.display(),
            account("starttls", port, "on"),
            account("implicit", tls_port, "off"),
        ),
    )?;
    // msmtp refuses a configuration file with a password others can read.
    std::fs::set_permissions(&msmtprc, std::fs::Permissions::from_mode(0o600))?;
    Ok(Setup {
        ca: ca.to_path_buf(),
        eml,
        swaks_eml,
        msmtprc,
        script: ctx.peers_script().context("writing peers.py")?,
    })
}

const BODY: &str = "One message, one recipient, through a 25 ms delay proxy.";

fn command_for(ctx: &Ctx, kind: Kind, mode: Mode, port: u16, setup: &Setup) -> Command {
    let starttls = mode == Mode::StartTls;
    match kind {
        Kind::Raw { .. } | Kind::Lib => {
            let mut command = ctx.ours(if kind == Kind::Lib {
                "lib-client"
            } else {
                "raw-client"
            });
            command
                .args(["--server", &format!("127.0.0.1:{port}")])
                .args(["--tls", if starttls { "starttls" } else { "implicit" }])
                .arg("--ca-file")
                .arg(&setup.ca)
                .args(["--user", USER, "--password-env", PASSWORD_ENV])
                .args(["--from", FROM, "--to", TO, "--subject", "Round trips"])
                .args(["--body", BODY, "--date", "1700000000"])
                .args(["--message-id", "rt@bench.localhost", "--timeout", "30s"])
                .arg("--quiet");
            if let Kind::Raw {
                pipelining,
                chunking,
            } = kind
            {
                if pipelining {
                    command.arg("--pipelining");
                }
                // Required, so that a server without CHUNKING fails the row instead of
                // having DATA counted under its name.
                if chunking {
                    command.arg("--chunking=required");
                }
            }
            command
        }
        Kind::Swaks => {
            let mut command = Command::new("swaks");
            command
                .args(["--server", "127.0.0.1", "--port", &port.to_string()])
                .arg(if starttls {
                    "--tls"
                } else {
                    "--tls-on-connect"
                })
                .args(["--tls-verify", "--tls-ca-path"])
                .arg(&setup.ca)
                .args(["--auth", "PLAIN", "--auth-user", USER, "--auth-password"])
                .arg(PASSWORD)
                .args(["--pipeline", "--helo", "swaks.bench.localhost"])
                .args(["--from", FROM, "--to", TO, "--timeout", "30"])
                .arg("--data")
                .arg(format!("@{}", setup.swaks_eml.display()));
            command
        }
        Kind::Msmtp => {
            let mut command = Command::new("msmtp");
            command.arg("-C").arg(&setup.msmtprc).args([
                "-a",
                if starttls { "starttls" } else { "implicit" },
                TO,
            ]);
            command
        }
        Kind::Curl { sasl_ir } => {
            let url = if starttls {
                format!("smtp://127.0.0.1:{port}/curl.bench.localhost")
            } else {
                format!("smtps://127.0.0.1:{port}/curl.bench.localhost")
            };
            let mut command = Command::new("curl");
            command
                .args([
                    "--silent",
                    "--show-error",
                    "--max-time",
                    "30",
                    "--url",
                    &url,
                ])
                .arg("--cacert")
                .arg(&setup.ca)
                .args(["--user", &format!("{USER}:{PASSWORD}")])
                .args(["--mail-from", FROM, "--mail-rcpt", TO])
                .arg("--upload-file")
                .arg(&setup.eml);
            if starttls {
                command.arg("--ssl-reqd");
            }
            if sasl_ir {
                command.arg("--sasl-ir");
            }
            command
        }
        Kind::Smtplib => {
            let mut command = Command::new(&ctx.python);
            command
                .arg(&setup.script)
                .args(["rt", "127.0.0.1", &port.to_string()])
                .arg(if starttls { "starttls" } else { "implicit" })
                .arg(&setup.ca)
                .args([USER, PASSWORD, FROM, TO])
                .arg(&setup.eml);
            command
        }
    }
}
