//! `cargo xtask bench`: round trips, throughput and memory of our clients against the peers,
//! all on loopback, written to `docs/performance.md`.
//!
//! - Round trips ([`roundtrips`]): every client sends one message with STARTTLS or implicit
//!   TLS and AUTH through a delay proxy ([`proxy`], 25 ms each way) to test-server; the round
//!   trips are counted from the proxy's trace.
//! - Throughput ([`throughput`]): ~1 KB messages to Postfix's `smtp-sink`, no TLS, on one and
//!   on four connections, against `smtp-source`, smtplib and lettre.
//! - test-server's store ([`store`]): raw-client `--repeat` to test-server synced, with
//!   `--no-sync`, and with `--no-sync --http` and one live subscriber of the inbox
//!   ([`subscriber`]).
//! - Memory ([`memory`]): peak RSS and wall time (GNU time) for 20 MiB and 100 MiB
//!   attachments, against curl, msmtp, swaks and smtplib.
//! - Criterion micro-benchmarks ([`criterion`]) of message rendering and reply parsing, from
//!   the separate `bench/` crate.
//!
//! `--quick` (CI) measures only the round trips of raw-client (default, `--pipelining` and
//! `--pipelining --chunking`) and lib-client, installs nothing, writes no docs, and exits 1
//! when raw-client `--pipelining` needs more than the protocol floor with DATA (8 / 6) or
//! `--pipelining --chunking` more than the floor with BDAT (7 / 5). Every peer is stopped by its PID when
//! it goes out of scope; every loop is bounded in count and every process in time.

mod bdat_sink;
mod criterion;
mod memory;
mod proxy;
mod report;
mod roundtrips;
mod store;
mod subscriber;
mod throughput;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::helpers::{self, Profile};
use crate::interop::{install, procs};

/// The emulated one-way delay of the link.
pub(crate) const DELAY: Duration = Duration::from_millis(25);
/// The protocol floors with DATA (README of issue 8, docs/performance.md): STARTTLS,
/// implicit TLS.
pub(crate) const FLOOR_STARTTLS: usize = 8;
pub(crate) const FLOOR_IMPLICIT: usize = 6;
/// The floors with BDAT (RFC 3030): no `354` to wait for, so one round trip fewer.
pub(crate) const FLOOR_CHUNKING_STARTTLS: usize = 7;
pub(crate) const FLOOR_CHUNKING_IMPLICIT: usize = 5;
/// Envelope of every benchmark message.
pub(crate) const FROM: &str = "sender@example.org";
pub(crate) const TO: &str = "rcpt@example.net";
/// The test-server account.
pub(crate) const USER: &str = "bench";
pub(crate) const PASSWORD: &str = "bench-password-8";
/// The environment variable our clients read the password from.
pub(crate) const PASSWORD_ENV: &str = "BENCH_SMTP_PASSWORD";

/// The measurement groups `--only` picks from.
const GROUPS: [&str; 5] = ["rt", "throughput", "store", "memory", "criterion"];

/// `cargo xtask bench [--quick] [--runs N] [--only GROUP,...]`
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Round trips of raw-client (default, --pipelining, --pipelining --chunking) and
    /// lib-client only, with debug builds and no installs; exit 1 if raw-client --pipelining
    /// exceeds the floor (8 STARTTLS / 6 implicit TLS) or --pipelining --chunking its floor
    /// (7 / 5). Writes no docs.
    #[arg(long)]
    pub(crate) quick: bool,
    /// Runs per measurement for medians (at least 5 for the docs).
    #[arg(long, value_name = "N", default_value_t = 5,
          value_parser = clap::value_parser!(u8).range(1..=50))]
    pub(crate) runs: u8,
    /// Only some groups (comma-separated); docs are written only when all ran.
    #[arg(long, value_name = "GROUP,...", value_delimiter = ',',
          value_parser = clap::builder::PossibleValuesParser::new(GROUPS))]
    pub(crate) only: Vec<String>,
    /// Another raw-client executable (an older commit's release build) to measure in the
    /// throughput rounds, each of its rows right after the same row of this build, with the
    /// ratio of the two printed round by round. Writes no docs.
    #[arg(long, value_name = "PATH")]
    pub(crate) raw_client_baseline: Option<PathBuf>,
}

/// What every measurement needs.
pub(crate) struct Ctx {
    /// The workspace root.
    pub(crate) root: PathBuf,
    /// `target/bench`: fixtures, traces, logs.
    pub(crate) work: PathBuf,
    /// `target/release` (or `target/debug` with --quick).
    pub(crate) bin: PathBuf,
    /// A python3 with smtplib (the interop venv's, else python3 on PATH).
    pub(crate) python: PathBuf,
    /// Runs per measurement.
    pub(crate) runs: usize,
    /// Another raw-client build to measure beside ours (`--raw-client-baseline`).
    pub(crate) raw_baseline: Option<PathBuf>,
}

impl Ctx {
    /// A directory under `target/bench`, created if missing.
    pub(crate) fn dir(&self, name: &str) -> Result<PathBuf> {
        let dir = self.work.join(name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(dir)
    }

    /// One of our binaries.
    pub(crate) fn ours(&self, name: &str) -> Command {
        self.command(&self.bin.join(name))
    }

    /// An executable of ours at `path`, with the environment every run of ours gets.
    pub(crate) fn command(&self, path: &Path) -> Command {
        let mut command = Command::new(path);
        command.env(PASSWORD_ENV, PASSWORD);
        for var in [
            "SMTP_SERVER",
            "SMTP_TLS",
            "SMTP_USER",
            "SMTP_PASSWORD",
            "SMTP_FROM",
        ] {
            command.env_remove(var);
        }
        command
    }

    /// The smtplib helper script, written into `target/bench/`.
    pub(crate) fn peers_script(&self) -> Result<PathBuf> {
        let path = self.work.join("peers.py");
        std::fs::write(&path, include_str!("bench/peers.py"))?;
        Ok(path)
    }
}

/// Runs the benchmark; returns the exit code.
pub(crate) fn run(args: &Args) -> Result<i32> {
    let quick = args.quick;
    let runs = usize::from(args.runs);
    let only = (!args.only.is_empty()).then_some(&args.only);
    let started = Instant::now();
    let root = helpers::workspace_root().to_path_buf();
    let work = root.join("target").join("bench");
    std::fs::create_dir_all(&work)?;
    if quick {
        return quick_run(root, work);
    }
    if let Some(baseline) = &args.raw_client_baseline
        && !baseline.is_file()
    {
        bail!("--raw-client-baseline {}: no such file", baseline.display());
    }
    let selected = |group: &str| only.as_ref().is_none_or(|o| o.iter().any(|g| g == group));

    println!("bench: checking the peers are installed (as cargo xtask interop does)");
    let cache = root.join("target").join("interop");
    let tools = install::install(&root, &cache);
    for tool in ["postfix", "swaks", "msmtp", "curl"] {
        if let Err(why) = tools.apt(tool) {
            println!("bench: {tool} is unavailable: {why}");
        }
    }
    ensure_gnu_time()?;
    println!("bench: building our binaries (release)");
    let bin = helpers::build_clients(Profile::Release)?;
    let python = match &tools.python {
        Ok(python) => python.clone(),
        Err(_) => PathBuf::from("python3"),
    };
    let ctx = Ctx {
        bin,
        root: root.clone(),
        work,
        python,
        runs,
        raw_baseline: args.raw_client_baseline.clone(),
    };

    let mut results = report::Results {
        runs,
        ..report::Results::default()
    };
    if selected("rt") {
        println!("bench: round trips through the delay proxy (D = 25 ms each way)");
        results.round_trips = Some(roundtrips::run(&ctx, roundtrips::ALL, 3)?);
        results.example_trace =
            std::fs::read_to_string(ctx.work.join("traces/raw-client-pipelining-starttls.txt"))
                .ok();
    }
    if selected("throughput") {
        println!("bench: throughput to smtp-sink");
        results.throughput = Some(throughput::run(&ctx)?);
    }
    if selected("store") {
        println!(
            "bench: test-server's store under load: synced, --no-sync, and --no-sync with the \
             web inbox open"
        );
        results.store = Some(store::run(&ctx)?);
    }
    if selected("memory") {
        println!("bench: memory and time for large attachments");
        results.memory = Some(memory::run(&ctx)?);
    }
    if selected("criterion") {
        println!("bench: criterion micro-benchmarks (bench/)");
        results.criterion = Some(criterion::run(&ctx)?);
    }
    results.versions = report::versions(&ctx, &tools);
    results.elapsed = started.elapsed();

    let markdown = report::markdown(&results);
    println!();
    println!("{markdown}");
    let verdicts = report::verdicts(&results);
    if only.is_none() && ctx.raw_baseline.is_none() {
        let doc = report::document(&results, &markdown)?;
        std::fs::write(root.join("docs/performance.md"), doc)?;
        if let Some(rows) = &results.round_trips {
            std::fs::write(root.join("docs/round-trips.svg"), report::svg(rows))?;
        }
        println!("bench: wrote docs/performance.md and docs/round-trips.svg");
    }
    let missed = verdicts.iter().filter(|v| !v.met).count();
    println!(
        "bench: {} of {} targets met in {:.0} s",
        verdicts.len() - missed,
        verdicts.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(0)
}

/// `--quick`: round trips of our clients only, debug builds, no installs.
fn quick_run(root: PathBuf, work: PathBuf) -> Result<i32> {
    let started = Instant::now();
    let bin = helpers::build_clients(Profile::Debug)?;
    let ctx = Ctx {
        bin,
        root,
        work,
        python: PathBuf::from("python3"),
        runs: 1,
        raw_baseline: None,
    };
    let rows = roundtrips::run(&ctx, roundtrips::OURS, 2)?;
    println!();
    println!("{}", report::round_trip_table(&rows));
    let failures = floor_failures(&rows, &ctx.work.join("traces"));
    let elapsed = started.elapsed().as_secs_f64();
    if failures.is_empty() {
        println!(
            "bench --quick: raw-client --pipelining reaches the floor with DATA \
             ({FLOOR_STARTTLS} / {FLOOR_IMPLICIT}) and --pipelining --chunking the floor with \
             BDAT ({FLOOR_CHUNKING_STARTTLS} / {FLOOR_CHUNKING_IMPLICIT}); {elapsed:.0} s"
        );
        Ok(0)
    } else {
        for failure in &failures {
            println!("bench --quick: {failure}");
        }
        println!("bench --quick: FAILED in {elapsed:.0} s");
        Ok(1)
    }
}

/// What `--quick` fails for: one of our clients failed, or one held to a floor needed more
/// round trips than its floor (8 / 6 with DATA, 7 / 5 with BDAT) in some run.
fn floor_failures(rows: &[roundtrips::Row], traces: &Path) -> Vec<String> {
    let mut failures = Vec::new();
    for row in rows {
        let (floor_starttls, floor_implicit) = row.client.floor();
        for (mode, measured, floor) in [
            ("STARTTLS", &row.starttls, floor_starttls),
            ("implicit TLS", &row.implicit, floor_implicit),
        ] {
            match measured {
                Err(why) => failures.push(format!("{} ({mode}) failed: {why}", row.client.name)),
                Ok(m) if row.client.must_reach_floor && m.max > floor => failures.push(format!(
                    "{} needs {} round trips with {mode}; the floor is {floor} (the proxy's \
                     traces are in {})",
                    row.client.name,
                    m.max,
                    traces.display()
                )),
                Ok(_) => {}
            }
        }
    }
    failures
}

/// GNU time (`/usr/bin/time`, Debian package `time`) for peak RSS; installed if missing.
fn ensure_gnu_time() -> Result<()> {
    if Path::new("/usr/bin/time").exists() {
        return Ok(());
    }
    println!("bench: installing GNU time with apt-get");
    let outcome = procs::run(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends", "time"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
        None,
        Duration::from_secs(600),
    )?;
    if !outcome.success() || !Path::new("/usr/bin/time").exists() {
        bail!("apt-get install time failed: {}", outcome.why());
    }
    Ok(())
}

/// The median of some values (the mean of the middle two for an even count).
pub(crate) fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(slug: &str, starttls: usize, implicit: usize) -> roundtrips::Row {
        let measured = |n: usize| {
            Ok(roundtrips::Measured {
                min: n,
                max: n,
                median: n,
                wall: 0.0,
            })
        };
        roundtrips::Row {
            client: roundtrips::OURS
                .iter()
                .find(|c| c.slug == slug)
                .expect("one of ours"),
            starttls: measured(starttls),
            implicit: measured(implicit),
        }
    }

    #[test]
    fn quick_holds_each_client_to_its_own_floor() {
        let traces = Path::new("target/bench/traces");
        let at_floor = [
            row("raw-client-pipelining-chunking", 7, 5),
            row("raw-client-pipelining", 8, 6),
            row("raw-client", 12, 10),
            row("lib-client", 12, 10),
        ];
        assert!(floor_failures(&at_floor, traces).is_empty());
        // BDAT that needs DATA's round trips fails, in either mode.
        let failures = floor_failures(&[row("raw-client-pipelining-chunking", 8, 5)], traces);
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(failures[0].starts_with(
            "raw-client --pipelining --chunking needs 8 round trips with STARTTLS; the floor is 7"
        ));
        let failures = floor_failures(&[row("raw-client-pipelining-chunking", 7, 6)], traces);
        assert!(failures[0].contains("6 round trips with implicit TLS; the floor is 5"));
        let failures = floor_failures(&[row("raw-client-pipelining", 9, 6)], traces);
        assert!(failures[0].contains("needs 9 round trips with STARTTLS; the floor is 8"));
        // Clients not held to a floor may need more; a failed run always fails.
        assert!(floor_failures(&[row("raw-client", 13, 11)], traces).is_empty());
        let mut failed = row("lib-client", 12, 10);
        failed.implicit = Err("exit 75".into());
        assert_eq!(
            floor_failures(&[failed], traces),
            ["lib-client (lettre 0.11) (implicit TLS) failed: exit 75"]
        );
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
