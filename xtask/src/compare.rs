//! `cargo xtask compare`: both clients, same options, one diff.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::helpers::{self, Profile};

/// `cargo xtask compare [CLIENT OPTIONS] [-- RAW-CLIENT-ONLY OPTIONS]`
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Options for both clients, as `cargo run -p raw-client -- --help` lists them; a fixed
    /// --date and --message-id are added unless given. --explain here explains the diff.
    // The first `--` ends these; what follows is raw-client's alone.
    #[arg(
        allow_hyphen_values = true,
        value_terminator = "--",
        value_name = "CLIENT OPTIONS"
    )]
    pub(crate) shared: Vec<String>,
    /// Options only raw-client has (--pipelining, --repeat, --connections), after `--`.
    #[arg(allow_hyphen_values = true, value_name = "RAW-CLIENT-ONLY OPTIONS")]
    pub(crate) raw_only: Vec<String>,
}

/// Runs both clients and prints the diff; returns 0 when identical, 1 otherwise.
///
/// `--explain` among the client options is compare's own: the clients run without it, and
/// each changed line of the diff (and each line between the changes of a hunk) is followed by
/// what it means, as that client's transcript reads.
pub(crate) fn run(args: &Args) -> Result<i32> {
    let root = helpers::workspace_root();
    let binaries = helpers::build_clients(Profile::Debug)?;
    let explain = args.shared.iter().any(|arg| arg == "--explain");
    let mut shared: Vec<String> = args
        .shared
        .iter()
        .filter(|arg| *arg != "--explain")
        .cloned()
        .collect();
    // A fixed Date and Message-ID, unless given, so the diff shows only the dialogue.
    if !shared.iter().any(|arg| arg.starts_with("--date")) {
        shared.extend(["--date".into(), "Mon, 23 Nov 2026 12:00:00 +0000".into()]);
    }
    if !shared.iter().any(|arg| arg.starts_with("--message-id")) {
        shared.extend([
            "--message-id".into(),
            "compare@smtp-workbench.example".into(),
        ]);
    }
    let out_dir = root.join("target").join("compare");
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let raw_args: Vec<String> = shared.iter().chain(&args.raw_only).cloned().collect();
    let raw = run_client(&binaries, "raw-client", &raw_args, &out_dir)?;
    let lib = run_client(&binaries, "lib-client", &shared, &out_dir)?;
    if let Some(sentence) = rejected_options(&raw, &lib) {
        bail!("{sentence}");
    }
    raw.echo_stderr();
    lib.echo_stderr();
    let color = transcript::color_wanted();
    let diff = if explain {
        transcript::diff_explained(&raw.text, &lib.text, "raw-client", "lib-client", color)
    } else {
        transcript::diff(&raw.text, &lib.text, "raw-client", "lib-client", color)
    };
    print!("{}", diff.unified);
    println!(
        "raw-client exited {}, lib-client exited {}; transcripts in {}",
        raw.status,
        lib.status,
        helpers::relative(&out_dir)
    );
    let said = (raw.final_sentence(), lib.final_sentence());
    match &said {
        (Some(raw), Some(lib)) if raw == lib => println!("both clients said: {raw}"),
        (raw, lib) => {
            println!("the clients said different things:");
            println!("  raw-client: {}", raw.as_deref().unwrap_or("nothing"));
            println!("  lib-client: {}", lib.as_deref().unwrap_or("nothing"));
        }
    }
    println!("verdict: {}", diff.verdict());
    Ok(
        if diff.is_identical() && raw.status == lib.status && said.0 == said.1 {
            0
        } else {
            1
        },
    )
}

/// What one client printed.
struct Run {
    name: &'static str,
    text: String,
    stderr: String,
    status: i32,
}

impl Run {
    fn echo_stderr(&self) {
        for line in self.stderr.lines() {
            eprintln!("{line}");
        }
    }

    /// The last thing the client told the user on standard error, without its name: its
    /// failure, or where the message went.
    fn final_sentence(&self) -> Option<String> {
        let prefix = format!("{}: ", self.name);
        self.stderr
            .lines()
            .rev()
            .find_map(|line| line.strip_prefix(&prefix))
            .map(str::to_owned)
    }

    /// The client's complaint when it refused its command line: sysexits 64 (EX_USAGE), or
    /// 2, which clap's `parse()` uses for an unknown or invalid option.
    fn usage_error(&self) -> Option<String> {
        if self.status != 64 && self.status != 2 {
            return None;
        }
        let first = self
            .stderr
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty())
            .unwrap_or("no message");
        let sentence = first
            .strip_prefix(self.name)
            .and_then(|rest| rest.strip_prefix(": "))
            .unwrap_or(first);
        Some(
            sentence
                .strip_prefix("error: ")
                .unwrap_or(sentence)
                .to_owned(),
        )
    }
}

/// One sentence when a client refused its options, instead of a diff against nothing.
fn rejected_options(raw: &Run, lib: &Run) -> Option<String> {
    match (raw.usage_error(), lib.usage_error()) {
        (None, None) => None,
        (Some(raw), Some(_)) => Some(format!(
            "both clients rejected the options: {raw}; `cargo run -p raw-client -- --help` lists them"
        )),
        (None, Some(lib)) => Some(format!(
            "lib-client rejected an option: {lib}; options only raw-client has go after --, \
             as in `cargo xtask compare -- --pipelining`"
        )),
        (Some(raw), None) => Some(format!(
            "raw-client rejected an option: {raw}; `cargo run -p raw-client -- --help` lists them"
        )),
    }
}

fn run_client(binaries: &Path, name: &'static str, args: &[String], out_dir: &Path) -> Result<Run> {
    let output = Command::new(binaries.join(name))
        .args(args)
        .output()
        .with_context(|| format!("cannot run {}", binaries.join(name).display()))?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let path = out_dir.join(format!("{name}.txt"));
    std::fs::write(&path, &text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Run {
        name,
        text,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        status: output.status.code().unwrap_or(-1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(name: &'static str, status: i32, stderr: &str) -> Run {
        Run {
            name,
            text: String::new(),
            stderr: stderr.to_owned(),
            status,
        }
    }

    const CLAP: &str = "error: unexpected argument '--pipelining' found\n\n  tip: to pass '--pipelining' as a value, use '-- --pipelining'\n\nUsage: lib-client [OPTIONS]\n";

    #[test]
    fn an_option_only_raw_client_has_is_named_instead_of_diffed() {
        let raw = client(
            "raw-client",
            0,
            "raw-client: the embedded test server stored ...",
        );
        for status in [2, 64] {
            let lib = client("lib-client", status, CLAP);
            assert_eq!(
                rejected_options(&raw, &lib).as_deref(),
                Some(
                    "lib-client rejected an option: unexpected argument '--pipelining' found; \
                     options only raw-client has go after --, as in `cargo xtask compare -- --pipelining`"
                )
            );
        }
    }

    #[test]
    fn a_usage_sentence_of_our_own_is_quoted_without_the_program_name() {
        let raw = client("raw-client", 64, "raw-client: --repeat needs a number\n");
        let lib = client("lib-client", 0, "");
        assert_eq!(
            rejected_options(&raw, &lib).as_deref(),
            Some(
                "raw-client rejected an option: --repeat needs a number; \
                 `cargo run -p raw-client -- --help` lists them"
            )
        );
        let lib = client("lib-client", 64, "lib-client: --repeat needs a number\n");
        assert!(
            rejected_options(&raw, &lib)
                .is_some_and(|s| s.starts_with("both clients rejected the options"))
        );
    }

    #[test]
    fn the_final_sentence_is_the_last_line_the_client_signed() {
        let run = client(
            "raw-client",
            69,
            "raw-client: warning: --insecure\nraw-client: the server rejected DATA with \"554 no\"\n",
        );
        assert_eq!(
            run.final_sentence().as_deref(),
            Some("the server rejected DATA with \"554 no\"")
        );
        assert_eq!(client("lib-client", 0, "").final_sentence(), None);
    }

    #[test]
    fn other_failures_are_diffed_as_before() {
        // 69 (5xx), 75 (4xx) and 78 (TLS) are outcomes the diff is about.
        for status in [0, 69, 75, 78] {
            let raw = client("raw-client", status, "raw-client: something\n");
            let lib = client("lib-client", status, "lib-client: something\n");
            assert_eq!(rejected_options(&raw, &lib), None);
        }
    }
}
