//! `test-server lab`: start the server as a profile, run the student's client (or wait for
//! one), grade what it did, print the scorecard.

use std::io::Write as _;
use std::net::SocketAddr;
use std::os::fd::AsFd as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Lab, Profile};
use crate::{Config, parse_duration};

/// The options of `test-server lab`.
#[derive(Debug, Clone, clap::Args)]
pub struct LabOptions {
    /// The kind of server to play.
    #[arg(long, value_enum, default_value = "submission")]
    pub profile: Profile,
    /// Address of the SMTP listener (STARTTLS where the profile has TLS); port 0 picks a
    /// free port.
    #[arg(long, default_value = "127.0.0.1:2525")]
    pub listen: SocketAddr,
    /// Address of the implicit TLS listener (profiles with TLS).
    #[arg(long, default_value = "127.0.0.1:4650")]
    pub tls_listen: SocketAddr,
    /// Print the scorecard as one JSON object (lab.schema.json) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Without a command: how many sessions to wait for before grading.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub sessions: u32,
    /// How long to wait for the command to finish (it is then stopped), or without a
    /// command for the sessions, e.g. 30s or 5m.
    #[arg(long, default_value = "5m", value_parser = duration)]
    pub timeout: Duration,
    /// How long the server waits for the client's next line before giving up with 421.
    #[arg(long, default_value = "30s", value_parser = duration)]
    pub idle_timeout: Duration,
    /// Directory for the stored messages and session transcripts (default: a fresh one
    /// under the system temporary directory, kept after the run).
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// The client to run, and its arguments (after `--`). It finds the server in
    /// SMTP_HOST, SMTP_PORT, SMTP_TLS_PORT, SMTP_CA_FILE, SMTP_USER, SMTP_PASSWORD,
    /// SMTP_FROM and SMTP_TO.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

/// Exit codes of a lab run: every applicable check passed, one failed, nothing to grade.
const PASSED: u8 = 0;
const FAILED: u8 = 1;
const NOTHING: u8 = 2;

/// Runs the lab and returns the process exit code: 0 when every applicable check passed,
/// 1 when one failed, 2 when no client connected or the command could not start (69 when
/// the server itself cannot start).
pub fn run(options: &LabOptions) -> u8 {
    let profile = options.profile;
    let base = Config {
        listen: options.listen,
        tls_listen: Some(options.tls_listen),
        store: options.store.clone(),
        idle_timeout: options.idle_timeout,
        ..Config::default()
    };
    let lab = match Lab::start(profile, base) {
        Ok(lab) => lab,
        Err(e) => {
            eprintln!("test-server lab: {e}");
            return 69;
        }
    };
    if !options.listen.ip().is_loopback() {
        eprintln!(
            "test-server lab: warning: listening on {}, beyond this machine, with the lab's \
             published password; use a loopback address unless the client runs elsewhere",
            options.listen
        );
    }
    let env = lab.environment();
    // Our own messages go to standard error when standard output carries the JSON.
    let mut say = |text: &str| {
        if options.json {
            eprintln!("{text}");
        } else {
            print_out(&format!("{text}\n"));
        }
    };
    say(&format!(
        "lab: test-server plays a {} server ({})",
        profile.name(),
        profile.summary()
    ));
    let ran = if options.command.is_empty() {
        say(&instructions(&env));
        say(&format!(
            "waiting for {} session(s), for up to {}s",
            options.sessions,
            options.timeout.as_secs()
        ));
        lab.server()
            .wait_for_sessions(options.sessions as usize, options.timeout);
        Ok(())
    } else {
        run_command(options, &env, &mut say)
    };
    if let Err(why) = ran {
        eprintln!("test-server lab: {why}");
        return NOTHING;
    }
    // Connections the client left open end when it exits: wait for their records.
    let scorecard = lab.grade(Duration::from_secs(10));
    if options.json {
        print_out(&format!("{}\n", scorecard.to_json()));
    } else if !scorecard.sessions.is_empty() {
        print_out(&scorecard.to_text());
    }
    if scorecard.sessions.is_empty() {
        eprintln!(
            "test-server lab: no client connected to {}; point it at SMTP_HOST and SMTP_PORT",
            lab.server().addr()
        );
        return NOTHING;
    }
    if scorecard.passed { PASSED } else { FAILED }
}

/// Writes to standard output, ignoring a reader that went away (`| head`).
fn print_out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

fn instructions(env: &[(&'static str, String)]) -> String {
    let mut out = String::from("point your client at the server with these settings:");
    for (name, value) in env {
        out.push_str(&format!("\n  {name}={value}"));
    }
    out
}

/// Runs the client with the lab's environment until it exits or the timeout passes.
fn run_command(
    options: &LabOptions,
    env: &[(&'static str, String)],
    say: &mut impl FnMut(&str),
) -> Result<(), String> {
    let (program, arguments) = options
        .command
        .split_first()
        .ok_or_else(|| "no command given".to_owned())?;
    let shown = options.command.join(" ");
    let mut command = Command::new(program);
    command
        .args(arguments)
        .envs(env.iter().map(|(k, v)| (k, v)));
    if options.json {
        // Standard output is the scorecard's: the client's goes to standard error.
        let stderr = std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| format!("cannot pass standard error to the client: {e}"))?;
        command.stdout(Stdio::from(stderr));
    }
    say(&format!("----- output of {shown} -----"));
    let mut child = command.spawn().map_err(|e| {
        format!("cannot start {program}: {e}; check the command and that it is installed")
    })?;
    let deadline = Instant::now() + options.timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status.to_string(),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break format!("stopped after {}s (--timeout)", options.timeout.as_secs());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => break format!("unknown ({e})"),
        }
    };
    say(&format!("----- end of output of {shown}: {status} -----"));
    Ok(())
}
