//! Project automation: `cargo xtask compare | interop | fuzz | bench | dist | web-test | tidy`.
//!
//! `compare` runs raw-client and lib-client with the same options and diffs their
//! transcripts — the diff students study. `interop` proves both clients against real
//! servers and real clients against the test server. `web-test` drives test-server's web
//! inbox in a real browser. `tidy` checks the tree's conventions (also run by `cargo test`).
//! What the tasks share (the workspace root, running cargo, building our binaries,
//! templates) is in [`helpers`].

mod bench;
mod compare;
mod dist;
mod fuzz;
mod helpers;
mod interop;
mod tidy;
mod web_test;

use clap::{Parser, Subcommand};

/// Project automation for the SMTP workbench.
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    arg_required_else_help = true
)]
struct Xtask {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Run raw-client and lib-client with the same options and diff their transcripts.
    ///
    /// Both run against the embedded test server by default. The transcripts are saved under
    /// target/compare/; the unified diff and a verdict are printed. Exit 0 when identical,
    /// 1 when they differ. Example: cargo xtask compare -- --pipelining
    #[command(
        override_usage = "cargo xtask compare [CLIENT OPTIONS]... [-- RAW-CLIENT-ONLY OPTIONS...]"
    )]
    Compare(compare::Args),
    /// Prove our clients against real servers and real clients against test-server.
    ///
    /// Postfix, aiosmtpd and a Node.js smtp-server; swaks, curl, Python smtplib, msmtp and
    /// Nodemailer; git send-email through raw-client --sendmail; all on 127.0.0.1. Installs
    /// what is missing (apt-get, a pip venv and npm under target/interop/) and prints a
    /// pass/fail table; exit 0 when every check passed.
    Interop(interop::Args),
    /// Build the libFuzzer targets in fuzz/ on stable Rust and run each for a while.
    ///
    /// Installs cargo-fuzz if missing, prints a table of executions and coverage; exit 1
    /// when a target crashed (the input is kept in fuzz/artifacts/TARGET/).
    Fuzz(fuzz::Args),
    /// Measure round trips, throughput and memory against the peers; write docs/performance.md.
    ///
    /// Round trips through a 25 ms delay proxy, throughput to smtp-sink, memory for 20 MiB
    /// and 100 MiB attachments, our clients against swaks, msmtp, curl, smtplib and
    /// smtp-source, plus criterion micro-benchmarks.
    Bench(bench::Args),
    /// Write both clients' shell completions and man pages to target/dist/.
    ///
    /// Builds raw-client and lib-client (release unless --debug) and runs them with their
    /// hidden --generate-completions SHELL (bash, zsh, fish, elvish, powershell) and
    /// --generate-man; prints each file it wrote.
    Dist(dist::Args),
    /// Drive test-server's web inbox (--http) in headless Chromium over WebDriver.
    ///
    /// Installs Debian's chromium and chromium-driver if missing (apt-get) and Selenium into
    /// target/web-test/venv; sends with raw-client, lib-client and smtplib, then checks the
    /// live inbox, the message views, that a hostile message runs no script, a failed AUTH
    /// session, the pipelining diff and a fault set in the page. Prints a pass/fail table
    /// and saves screenshots under target/web-test/; exit 0 when every check passed.
    WebTest,
    /// Check the tree's conventions: crate edges, `//!` lines, no ignored tests, workspace
    /// dependencies, no absolute machine paths, markdown links.
    ///
    /// Prints each problem as `path:line: what is wrong`; exit 1 when there is one.
    Tidy,
}

fn main() {
    let xtask = Xtask::parse();
    let result = match xtask.task {
        Task::Compare(args) => compare::run(&args),
        Task::Interop(args) => interop::run(&args),
        Task::Fuzz(args) => fuzz::run(&args),
        Task::Bench(args) => bench::run(&args),
        Task::Dist(args) => dist::run(&args),
        Task::WebTest => web_test::run(),
        Task::Tidy => tidy::run(),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(error) => {
            eprintln!("xtask: {error:#}");
            std::process::exit(2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_consistent() {
        Xtask::command().debug_assert();
    }

    fn parse(args: &[&str]) -> Result<Task, clap::error::ErrorKind> {
        Xtask::try_parse_from(std::iter::once("xtask").chain(args.iter().copied()))
            .map(|xtask| xtask.task)
            .map_err(|error| error.kind())
    }

    #[test]
    fn every_task_keeps_its_options() {
        assert!(matches!(parse(&["tidy"]), Ok(Task::Tidy)));
        assert!(matches!(parse(&["web-test"]), Ok(Task::WebTest)));
        assert!(matches!(parse(&["dist"]), Ok(Task::Dist(args)) if !args.debug));
        assert!(matches!(parse(&["dist", "--debug"]), Ok(Task::Dist(args)) if args.debug));
        assert!(matches!(
            parse(&["interop", "--only", "curl,smtplib"]),
            Ok(Task::Interop(args)) if args.only == ["curl", "smtplib"]
        ));
        assert!(matches!(
            parse(&["interop", "--only", "git"]),
            Ok(Task::Interop(args)) if args.only == ["git"]
        ));
        assert!(matches!(
            parse(&["interop", "--only", "curl,nope"]),
            Err(clap::error::ErrorKind::InvalidValue)
        ));
        assert!(matches!(
            parse(&["fuzz", "--seconds", "5", "reply_parser", "dot_stuffer"]),
            Ok(Task::Fuzz(args)) if args.seconds == 5 && args.targets == ["reply_parser", "dot_stuffer"]
        ));
        assert!(matches!(
            parse(&["fuzz", "--seconds=7"]),
            Ok(Task::Fuzz(args)) if args.seconds == 7 && args.targets.is_empty()
        ));
        assert!(parse(&["fuzz", "--seconds", "0"]).is_err());
        assert!(parse(&["fuzz", "no_such_target"]).is_err());
        assert!(matches!(
            parse(&["bench", "--quick"]),
            Ok(Task::Bench(args)) if args.quick && args.runs == 5 && args.only.is_empty()
        ));
        assert!(matches!(
            parse(&["bench", "--runs", "7", "--only", "rt,memory"]),
            Ok(Task::Bench(args)) if args.runs == 7 && args.only == ["rt", "memory"]
        ));
        assert!(parse(&["bench", "--runs", "51"]).is_err());
        assert!(parse(&["bench", "--only", "speed"]).is_err());
        assert!(matches!(
            parse(&["interop", "--help"]),
            Err(clap::error::ErrorKind::DisplayHelp)
        ));
    }

    #[test]
    fn compare_passes_options_to_both_and_after_the_separator_to_raw_client_only() {
        let compare = |args: &[&str]| match parse(args) {
            Ok(Task::Compare(args)) => (args.shared, args.raw_only),
            other => panic!("not a compare: {other:?}"),
        };
        let none: Vec<String> = Vec::new();
        assert_eq!(compare(&["compare"]), (none.clone(), none.clone()));
        assert_eq!(
            compare(&["compare", "--", "--pipelining"]),
            (none.clone(), vec!["--pipelining".to_owned()])
        );
        assert_eq!(
            compare(&[
                "compare", "--server", "h:587", "--to", "a@b", "--", "--repeat", "2"
            ]),
            (
                vec![
                    "--server".into(),
                    "h:587".into(),
                    "--to".into(),
                    "a@b".into()
                ],
                vec!["--repeat".into(), "2".into()]
            )
        );
        assert_eq!(
            compare(&["compare", "--", "--pipelining", "--repeat", "3"]),
            (
                none.clone(),
                vec!["--pipelining".into(), "--repeat".into(), "3".into()]
            )
        );
        assert_eq!(
            compare(&["compare", "--tls", "implicit", "--quiet"]),
            (
                vec!["--tls".into(), "implicit".into(), "--quiet".into()],
                none.clone()
            )
        );
        // Without the separator an option goes to both clients (lib-client then rejects it).
        assert_eq!(
            compare(&["compare", "--pipelining"]),
            (vec!["--pipelining".to_owned()], none)
        );
        assert!(matches!(
            parse(&["compare", "--help"]),
            Err(clap::error::ErrorKind::DisplayHelp)
        ));
    }
}
