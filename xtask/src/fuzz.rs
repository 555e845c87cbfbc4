//! `cargo xtask fuzz`: builds the libFuzzer targets in `fuzz/` with cargo-fuzz on stable
//! Rust and runs each for a fixed time, then prints one summary table.
//!
//! cargo-fuzz wants nightly only for the sanitizers (`-Zsanitizer=...`). Safe Rust needs
//! none, so the targets are built with `--sanitizer none`: what remains (`-Cpasses=
//! sancov-module`, `-Cllvm-args=-sanitizer-coverage-*`, `--cfg fuzzing`) is accepted by
//! stable rustc. The targets are built once with `cargo fuzz build` and their binaries run
//! directly (`cargo fuzz run` would check the build again, and after a crash rebuild to
//! print the input). Each target fuzzes a working corpus under `fuzz/target/corpus/` (new
//! inputs land there, so the work tree stays clean) seeded from the committed
//! `fuzz/corpus/<target>/`; crashes land in `fuzz/artifacts/<target>/`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context as _, Result};

use crate::helpers;

/// Every target in `fuzz/Cargo.toml`, in the order they run.
const TARGETS: [&str; 6] = [
    "reply_parser",
    "server_command_parser",
    "server_data_reader",
    "server_bdat_reader",
    "message_builder",
    "dot_stuffer",
];

const DEFAULT_SECONDS: u64 = 20;

/// Build options shared by `cargo fuzz build` and `cargo fuzz run`, so the run reuses
/// the build. 16 codegen units build much faster than cargo-fuzz's default of one.
const BUILD_OPTIONS: [&str; 5] = [
    "--sanitizer",
    "none",
    "--debug-assertions",
    "--codegen-units",
    "16",
];

/// What one run gave.
struct Outcome {
    target: &'static str,
    seconds: f64,
    executions: Option<u64>,
    coverage: Option<String>,
    features: Option<String>,
    corpus: Option<String>,
    /// Why the run failed: `crash` (with the input libFuzzer saved) or `failed`.
    failure: Option<(&'static str, String)>,
}

/// `cargo xtask fuzz [--seconds N] [TARGET...]`
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// How long each target runs, in seconds.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_SECONDS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) seconds: u64,
    /// The targets to run (all by default).
    #[arg(value_name = "TARGET", value_parser = clap::builder::PossibleValuesParser::new(TARGETS))]
    pub(crate) targets: Vec<String>,
}

/// Runs the targets named in `args` (all by default); returns 0 when none crashed.
pub(crate) fn run(args: &Args) -> Result<i32> {
    let seconds = args.seconds;
    let targets: Vec<&'static str> = if args.targets.is_empty() {
        TARGETS.to_vec()
    } else {
        TARGETS
            .iter()
            .copied()
            .filter(|target| args.targets.iter().any(|t| t == target))
            .collect()
    };
    let root = helpers::workspace_root();
    ensure_cargo_fuzz()?;

    let started = Instant::now();
    println!("fuzz: building {} target(s) with cargo-fuzz", targets.len());
    let host = host_triple()?;
    let mut build = helpers::cargo();
    build
        .args(["fuzz", "build"])
        .args(BUILD_OPTIONS)
        .args(["--target", &host]);
    if let [one] = targets.as_slice() {
        build.arg(one);
    }
    helpers::status(&mut build, "cargo fuzz build (the fuzz targets in fuzz/)")?;
    println!("fuzz: built in {:.0} s", started.elapsed().as_secs_f64());

    let binaries = root.join("fuzz/target").join(&host).join("release");
    let logs = root.join("fuzz/target/logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let mut outcomes = Vec::new();
    for target in targets {
        println!("fuzz: running {target} for {seconds} s");
        let outcome = run_target(&binaries, root, &logs, target, seconds)?;
        if let Some((_, why)) = &outcome.failure {
            eprintln!("fuzz: {target} FAILED: {why}");
        }
        outcomes.push(outcome);
    }

    print_table(&outcomes);
    println!(
        "fuzz: total {:.0} s (build included)",
        started.elapsed().as_secs_f64()
    );
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|outcome| outcome.failure.is_some())
        .map(|outcome| outcome.target)
        .collect();
    if failed.is_empty() {
        Ok(0)
    } else {
        eprintln!(
            "fuzz: FAILED: {} found a crash or could not run; logs in fuzz/target/logs/, \
             inputs in fuzz/artifacts/<target>/; replay one with \
             `cargo fuzz run --sanitizer none <target> <input>`, shrink it with \
             `cargo fuzz tmin --sanitizer none <target> <input>`",
            failed.join(", ")
        );
        Ok(1)
    }
}

/// Installs cargo-fuzz from crates.io when `cargo fuzz` is missing.
fn ensure_cargo_fuzz() -> Result<()> {
    let present = helpers::cargo()
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if present {
        return Ok(());
    }
    println!("fuzz: cargo-fuzz is missing; installing it with cargo install");
    helpers::status(
        helpers::cargo().args(["install", "cargo-fuzz", "--locked"]),
        "cargo install cargo-fuzz",
    )
}

/// The triple `cargo fuzz build` builds for by default: the host's.
fn host_triple() -> Result<String> {
    let output = Command::new("rustc")
        .arg("-vV")
        .output()
        .context("running rustc -vV")?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .context("rustc -vV did not name the host")
}

/// Runs one target for `seconds` with its output in `logs/<target>.log`, and reads the
/// figures libFuzzer printed.
fn run_target(
    binaries: &Path,
    root: &Path,
    logs: &Path,
    target: &'static str,
    seconds: u64,
) -> Result<Outcome> {
    let seeds = root.join("fuzz/corpus").join(target);
    let corpus = root.join("fuzz/target/corpus").join(target);
    let artifacts = root.join("fuzz/artifacts").join(target);
    for dir in [&seeds, &corpus, &artifacts] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let log_path = logs.join(format!("{target}.log"));
    let log =
        File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let started = Instant::now();
    let binary = binaries.join(target);
    let status = Command::new(&binary)
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg(format!("-max_total_time={seconds}"))
        // A single input running this long is a hang: a finding too.
        .arg("-timeout=30")
        .arg("-print_final_stats=1")
        .arg(&corpus)
        .arg(&seeds)
        .current_dir(root)
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .with_context(|| format!("running {}", binary.display()))?;
    let elapsed = started.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();

    let status_line = text
        .lines()
        .rev()
        .find(|line| line.contains(" cov: ") && line.contains(" ft: "));
    let field = |name: &str| {
        status_line.and_then(|line| {
            let mut words = line.split_whitespace();
            words.find(|word| *word == name)?;
            words.next().map(str::to_owned)
        })
    };
    // The final statistics come only after a clean end; after a crash, the last status
    // line's `#N` still counts the executions.
    let executions = text
        .lines()
        .find_map(|line| line.strip_prefix("stat::number_of_executed_units:"))
        .and_then(|n| n.trim().parse().ok())
        .or_else(|| {
            let first = status_line?.split_whitespace().next()?;
            first.strip_prefix('#')?.parse().ok()
        });
    let failure = if status.success() {
        None
    } else {
        let artifact = text
            .lines()
            .find_map(|line| line.split("Test unit written to ").nth(1))
            .map(|path| PathBuf::from(path.trim()));
        if let Some(artifact) = &artifact {
            print_input(&binary, artifact, logs, target);
        }
        let artifact = artifact.map(|path| helpers::relative(&path));
        let panic = text
            .lines()
            .skip_while(|line| !line.contains("panicked at"))
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        eprintln!("---- last lines of {} ----", helpers::relative(&log_path));
        let lines: Vec<&str> = text.lines().collect();
        for line in &lines[lines.len().saturating_sub(40)..] {
            eprintln!("{line}");
        }
        eprintln!("----");
        Some(match artifact {
            Some(artifact) => ("crash", format!("{panic} (input: {artifact})")),
            None if panic.is_empty() => (
                "failed",
                format!("{status}, see {}", helpers::relative(&log_path)),
            ),
            None => ("failed", format!("{status}: {panic}")),
        })
    };
    Ok(Outcome {
        target,
        seconds: elapsed,
        executions,
        coverage: field("cov:"),
        features: field("ft:"),
        corpus: field("corp:"),
        failure,
    })
}

/// Prints the crashing input in its `Debug` form (for the targets whose input is a
/// struct), which libfuzzer-sys writes when run on that one input with
/// `RUST_LIBFUZZER_DEBUG_PATH` set.
fn print_input(binary: &Path, artifact: &Path, logs: &Path, target: &str) {
    let debug = logs.join(format!("{target}.input.txt"));
    let ran = Command::new(binary)
        .arg(artifact)
        .env("RUST_LIBFUZZER_DEBUG_PATH", &debug)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if let (Ok(_), Ok(text)) = (ran, std::fs::read_to_string(&debug)) {
        eprintln!("---- the input, as the target saw it ----\n{text}\n----");
    }
}

fn print_table(outcomes: &[Outcome]) {
    let unknown = || "?".to_owned();
    println!();
    println!(
        "{:<22} {:>8} {:>12} {:>9} {:>6} {:>7} {:>12}  result",
        "target", "seconds", "executions", "exec/s", "cov", "ft", "corpus"
    );
    for outcome in outcomes {
        let rate = outcome
            .executions
            .map(|n| format!("{:.0}", n as f64 / outcome.seconds.max(1.0)));
        println!(
            "{:<22} {:>8.0} {:>12} {:>9} {:>6} {:>7} {:>12}  {}",
            outcome.target,
            outcome.seconds,
            outcome.executions.map_or_else(unknown, |n| n.to_string()),
            rate.unwrap_or_else(unknown),
            outcome.coverage.clone().unwrap_or_else(unknown),
            outcome.features.clone().unwrap_or_else(unknown),
            outcome.corpus.clone().unwrap_or_else(unknown),
            outcome.failure.as_ref().map_or("ok", |(kind, _)| kind),
        );
    }
    println!();
}
