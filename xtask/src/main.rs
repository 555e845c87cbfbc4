//! Project automation: `cargo xtask compare | interop | fuzz | bench`.
//!
//! `compare` runs raw-client and lib-client with the same options and diffs their
//! transcripts — the diff students study. `interop` proves both clients against real
//! servers and real clients against the test server.

mod bench;
mod compare;
mod fuzz;
mod interop;

use anyhow::{Result, bail};

fn main() {
    match run() {
        Ok(code) => std::process::exit(code),
        Err(error) => {
            eprintln!("xtask: {error:#}");
            std::process::exit(2);
        }
    }
}

fn run() -> Result<i32> {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    match task.as_str() {
        "compare" => compare::run(&rest),
        "interop" => interop::run(&rest),
        "fuzz" => fuzz::run(&rest),
        "bench" => bench::run(&rest),
        "" | "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(0)
        }
        other => bail!("unknown task {other:?}\n\n{USAGE}"),
    }
}

const USAGE: &str = "\
usage: cargo xtask <task> [options]

tasks:
  compare [CLIENT OPTIONS] [-- RAW-CLIENT-ONLY OPTIONS]
      run raw-client and lib-client with the same options (the embedded test server by
      default), save both transcripts under target/compare/, print the unified diff and a
      verdict; exit 0 when identical, 1 when they differ.
      Example: cargo xtask compare -- --pipelining
  interop [--only GROUP,...]
      prove our clients against real servers (Postfix, aiosmtpd, a Node.js smtp-server) and
      real clients (swaks, curl, Python smtplib, msmtp, Nodemailer) against test-server, all
      on 127.0.0.1; installs what is missing (apt-get, pip venv and npm under
      target/interop/), prints a pass/fail table; exit 0 when every check passed.
      Groups: postfix, aiosmtpd, smtp-server, swaks, curl, smtplib, msmtp, nodemailer
  fuzz [--seconds N] [TARGET...]
      build the libFuzzer targets in fuzz/ on stable Rust (cargo-fuzz, installed if missing)
      and run each for N seconds (default 20), printing a table of executions and coverage;
      exit 1 when a target crashed (the input is kept in fuzz/artifacts/TARGET/).
      Targets: reply_parser, server_command_parser, server_data_reader, message_builder,
      dot_stuffer
  bench [--quick] [--runs N] [--only rt,throughput,memory,criterion]
      round trips through a 25 ms delay proxy, throughput to smtp-sink and memory for 20 MiB
      and 100 MiB attachments, our clients against swaks, msmtp, curl, smtplib and
      smtp-source, plus criterion micro-benchmarks; writes docs/performance.md.
      --quick: our clients' round trips only; exit 1 if raw-client --pipelining exceeds 8/6";
