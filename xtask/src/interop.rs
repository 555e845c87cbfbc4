//! `cargo xtask interop`: our clients against real servers (Postfix, aiosmtpd, a Node.js
//! `smtp-server`), real clients (swaks, curl, Python's smtplib, msmtp, Nodemailer) against
//! our test-server, and git send-email through raw-client's sendmail mode, all on 127.0.0.1.
//!
//! It installs what is missing (apt-get, pip into `target/interop/venv`, npm into
//! `target/interop/node`), starts each peer on a free loopback port, runs the checks,
//! stops every process it started by its PID (also when a check fails), and prints a
//! markdown table. A peer that cannot be installed or started is a failed check with the
//! reason, never a skip. Exit status 0 only when every check passed.
//!
//! Scratch files of the last run (stores, logs, the Postfix log) stay in
//! `target/interop/run/` for inspection.

mod aiosmtpd;
mod clients;
mod git;
pub(crate) mod install;
mod lab;
mod mail;
mod node;
mod postfix;
pub(crate) mod procs;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::helpers::{self, Profile};

use mail::Fixtures;

/// Direction of a check: one of our clients sending to a real server.
const OURS_TO_PEER: &str = "our client → peer";
/// Direction of a check: a real client sending to our test-server.
const PEER_TO_OURS: &str = "peer → test-server";
/// Direction of a check: a real program handing mail to raw-client as its sendmail.
const PEER_THROUGH_OURS: &str = "peer → raw-client → test-server";

/// The peer groups, in the order they run; `--only` picks some.
const GROUPS: &[&str] = &[
    "postfix",
    "aiosmtpd",
    "smtp-server",
    "swaks",
    "curl",
    "smtplib",
    "msmtp",
    "nodemailer",
    "lab",
    "git",
];

/// `cargo xtask interop [--only GROUP,...]`
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Run only these peer groups (comma-separated).
    #[arg(long, value_name = "GROUP,...", value_delimiter = ',',
          value_parser = clap::builder::PossibleValuesParser::new(GROUPS))]
    pub(crate) only: Vec<String>,
}

/// Runs the interop checks; returns 0 when all passed, 1 otherwise.
pub(crate) fn run(args: &Args) -> Result<i32> {
    let selected = |group: &str| args.only.is_empty() || args.only.iter().any(|g| g == group);
    let started = Instant::now();

    let root = helpers::workspace_root().to_path_buf();
    let cache = root.join("target").join("interop");
    let work = cache.join("run");
    if work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("clearing {}", work.display()))?;
    }
    std::fs::create_dir_all(&work)?;

    println!("interop: checking the peers are installed");
    let tools = install::install(&root, &cache);
    let binaries = helpers::build_clients(Profile::Debug)?;
    let fixtures = Fixtures::write(&work.join("fixtures"))?;
    let certs = Certs::generate(&work.join("certs"), &tools);
    let ctx = Ctx {
        root: root.clone(),
        work,
        binaries,
        fixtures,
        certs,
        tools,
    };

    let mut report = Report::default();
    let timed = |name: &str, report: &mut Report, run: &dyn Fn(&mut Report)| {
        let started = Instant::now();
        println!("interop: {name}");
        run(report);
        println!(
            "interop: {name} took {:.1} s",
            started.elapsed().as_secs_f64()
        );
    };
    println!(
        "interop: setup (install check, build, certificates) took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if selected("postfix") {
        timed("Postfix", &mut report, &|report| postfix::run(&ctx, report));
    }
    if selected("aiosmtpd") {
        timed("aiosmtpd", &mut report, &|report| {
            aiosmtpd::run(&ctx, report)
        });
    }
    if selected("smtp-server") {
        timed("smtp-server", &mut report, &|report| {
            node::run(&ctx, report)
        });
    }
    let client_groups: Vec<&str> = GROUPS[3..]
        .iter()
        .copied()
        .filter(|g| !matches!(*g, "lab" | "git") && selected(g))
        .collect();
    if !client_groups.is_empty() {
        timed("real clients against test-server", &mut report, &|report| {
            clients::run(&ctx, report, &client_groups)
        });
    }

    if selected("lab") {
        timed(
            "real clients graded by test-server lab",
            &mut report,
            &|report| lab::run(&ctx, report),
        );
    }

    if selected("git") {
        timed(
            "git send-email through raw-client --sendmail",
            &mut report,
            &|report| git::run(&ctx, report),
        );
    }

    let versions = install::versions(&ctx.tools);
    let elapsed = started.elapsed();
    println!();
    print!("{}", report.markdown(&versions, elapsed));
    let failed = report.rows.iter().filter(|row| row.result.is_err()).count();
    let passed = report.rows.len() - failed;
    println!();
    println!("interop: {passed} passed, {failed} failed");
    Ok(if failed == 0 && passed > 0 { 0 } else { 1 })
}

/// Everything the peers share.
pub(crate) struct Ctx {
    /// The workspace root.
    pub(crate) root: PathBuf,
    /// `target/interop/run`: this run's scratch directory.
    pub(crate) work: PathBuf,
    /// `target/debug`, with raw-client, lib-client and test-server.
    pub(crate) binaries: PathBuf,
    /// Body, attachment and password files.
    pub(crate) fixtures: Fixtures,
    /// The certificate the real servers present.
    pub(crate) certs: Result<Certs, String>,
    /// What could be installed.
    pub(crate) tools: install::Tools,
}

impl Ctx {
    /// A fresh directory under this run's scratch directory.
    pub(crate) fn dir(&self, name: &str) -> Result<PathBuf> {
        let dir = self.work.join(name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(dir)
    }
}

/// A CA and a server certificate for localhost and 127.0.0.1 signed by it, made with the
/// openssl command line; Postfix, aiosmtpd and smtp-server present it, our clients trust
/// the CA with `--ca-file`.
pub(crate) struct Certs {
    pub(crate) ca: PathBuf,
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

impl Certs {
    fn generate(dir: &Path, tools: &install::Tools) -> Result<Certs, String> {
        tools.apt("openssl")?;
        Certs::openssl(dir)
            .map_err(|error| format!("generating the test certificate with openssl: {error:#}"))
    }

    fn openssl(dir: &Path) -> Result<Certs> {
        std::fs::create_dir_all(dir)?;
        let path = |name: &str| dir.join(name).display().to_string();
        let openssl = |args: &[&str]| procs::output(Command::new("openssl").args(args)).map(drop);
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=smtp-workbench interop CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            &path("ca.key"),
            "-out",
            &path("ca.pem"),
        ])?;
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            &path("server.key"),
            "-out",
            &path("server.csr"),
        ])?;
        std::fs::write(
            dir.join("server.ext"),
            "basicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth\n\
             subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )?;
        openssl(&[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            &path("server.csr"),
            "-CA",
            &path("ca.pem"),
            "-CAkey",
            &path("ca.key"),
            "-CAcreateserial",
            "-extfile",
            &path("server.ext"),
            "-out",
            &path("server.pem"),
        ])?;
        Ok(Certs {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        })
    }
}

/// One row of the table.
pub(crate) struct Row {
    peer: String,
    direction: &'static str,
    scenario: String,
    /// Ok(note) or Err(reason).
    result: Result<String, String>,
}

/// The checks so far.
#[derive(Default)]
pub(crate) struct Report {
    rows: Vec<Row>,
}

impl Report {
    /// Records (and prints) one check.
    pub(crate) fn add(
        &mut self,
        peer: &str,
        direction: &'static str,
        scenario: impl Into<String>,
        result: Result<String, String>,
    ) {
        let scenario = scenario.into();
        match &result {
            Ok(note) if note.is_empty() => println!("PASS  {peer}: {scenario}"),
            Ok(note) => println!("PASS  {peer}: {scenario} ({note})"),
            Err(reason) => println!("FAIL  {peer}: {scenario}: {reason}"),
        }
        self.rows.push(Row {
            peer: peer.to_owned(),
            direction,
            scenario,
            result,
        });
    }

    /// A peer that could not be installed or started: one failed row saying why.
    pub(crate) fn setup_failed(
        &mut self,
        peer: &str,
        direction: &'static str,
        reason: impl std::fmt::Display,
    ) {
        self.add(
            peer,
            direction,
            "install and start",
            Err(reason.to_string()),
        );
    }

    fn markdown(&self, versions: &[(String, String)], elapsed: Duration) -> String {
        let cell = |text: &str| text.replace('|', "\\|").replace('\n', " ");
        let mut out = String::new();
        out.push_str("| Peer | Direction | Scenario | Result |\n|---|---|---|---|\n");
        for row in &self.rows {
            let result = match &row.result {
                Ok(note) if note.is_empty() => "PASS".to_owned(),
                Ok(note) => format!("PASS ({})", cell(note)),
                Err(reason) => format!("**FAIL**: {}", cell(reason)),
            };
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                cell(&row.peer),
                row.direction,
                cell(&row.scenario),
                result
            ));
        }
        out.push_str("\nVersions tested:\n\n");
        for (name, version) in versions {
            out.push_str(&format!("- {name}: {version}\n"));
        }
        out.push_str(&format!("\nRun time: {:.0} s\n", elapsed.as_secs_f64()));
        out
    }
}
