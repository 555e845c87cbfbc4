//! Throughput: ~1 KB messages to Postfix's `smtp-sink` on loopback, no TLS, no AUTH.
//!
//! Every client sends the same message: raw-client renders it from its options, and the
//! peers get that rendering, captured once through test-server (`smtp-source -F` gets it
//! with LF line ends, since it appends CRLF to every line itself). The clients take turns
//! within each round, so a change in the machine's load hits all of them alike; each rate
//! is messages / wall time of the whole client process, and the tables show medians.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::{Ctx, FROM, TO};
use crate::helpers;
use crate::interop::procs::{self, Service};

/// Messages per run on one connection.
pub(crate) const ONE: usize = 5000;
/// Messages per run over four connections (a quarter on each).
pub(crate) const FOUR: usize = 20000;
/// Messages per run for lib-client, one process and one connection each.
pub(crate) const LETTRE: usize = 50;
/// Messages per run for lettre with its pool (one connection, reused).
pub(crate) const LETTRE_POOL: usize = 50;
/// Messages per run for smtplib.
pub(crate) const SMTPLIB: usize = 2000;

/// Which comparison a case belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Group {
    /// One connection (lettre: one connection per message, sequentially).
    One,
    /// Four parallel connections.
    Four,
}

/// One client's rates.
#[derive(Debug, Clone)]
pub(crate) struct Case {
    pub(crate) name: String,
    pub(crate) group: Group,
    pub(crate) ours: bool,
    pub(crate) messages: usize,
    /// Messages per second, one per run.
    pub(crate) rates: Vec<f64>,
    /// smtp-sink's CPU use during this client's runs, as a share of one core (highest run).
    pub(crate) sink_cpu: f64,
    /// The client's own CPU use (user + system, all its processes), as a share of one core,
    /// one per run.
    pub(crate) client_cpu: Vec<f64>,
    pub(crate) error: Option<String>,
}

/// The results, with the message size.
#[derive(Debug, Clone)]
pub(crate) struct Throughput {
    pub(crate) message_bytes: usize,
    pub(crate) cases: Vec<Case>,
}

type Runner = Box<dyn FnMut() -> Result<()>>;

/// Runs the throughput comparison.
pub(crate) fn run(ctx: &Ctx) -> Result<Throughput> {
    let dir = ctx.dir("throughput")?;
    let eml = capture(ctx, &dir)?;
    let bytes = std::fs::read(&eml)?;
    let lf = dir.join("message-lf.eml");
    std::fs::write(&lf, String::from_utf8_lossy(&bytes).replace("\r\n", "\n"))?;
    let sink = Sink::start(&dir)?;
    let port = sink.port;
    let server = format!("127.0.0.1:{port}");
    let script = ctx.peers_script()?;

    let raw = |repeat: usize, connections: usize, pipelining: bool| -> Runner {
        let mut command = ctx.ours("raw-client");
        command
            .args(["--server", &server, "--tls", "none"])
            .args(raw_message_args())
            .args(["--repeat", &repeat.to_string()])
            .arg("--quiet");
        if connections > 1 {
            command.args(["--connections", &connections.to_string()]);
        }
        if pipelining {
            command.arg("--pipelining");
        }
        runner(command, None)
    };
    let source = |sessions: usize, messages: usize| -> Runner {
        let mut command = Command::new("smtp-source");
        command
            .args([
                "-s",
                &sessions.to_string(),
                "-m",
                &messages.to_string(),
                "-d",
            ])
            .args(["-M", "smtp-source.bench.localhost", "-f", FROM, "-t", TO])
            .arg("-F")
            .arg(&lf)
            .arg(&server);
        runner(command, None)
    };
    let lettre: Runner = {
        let mut command = ctx.ours("lib-client");
        command
            .args(["--server", &server, "--tls", "none"])
            .args(raw_message_args())
            .arg("--quiet");
        Box::new(move || {
            for _ in 0..LETTRE {
                check(procs::run(&mut command, None, Duration::from_secs(30))?)?;
            }
            Ok(())
        })
    };
    let lettre_pool = {
        let mut command = Command::new(build_lettre_pool(ctx)?);
        command
            .args(["127.0.0.1", &port.to_string(), &LETTRE_POOL.to_string()])
            .args([FROM, TO])
            .arg(&eml);
        runner(command, None)
    };
    let smtplib = {
        let mut command = Command::new(&ctx.python);
        command
            .arg(&script)
            .args(["throughput", "127.0.0.1", &port.to_string()])
            .args([&SMTPLIB.to_string(), FROM, TO])
            .arg(&eml);
        runner(command, None)
    };

    let mut cases: Vec<(Case, Runner)> = vec![
        case(
            "smtp-source -s 1 -d",
            Group::One,
            false,
            ONE,
            source(1, ONE),
        ),
        case(
            "raw-client --repeat 5000",
            Group::One,
            true,
            ONE,
            raw(ONE, 1, false),
        ),
        case(
            "raw-client --repeat 5000 --pipelining",
            Group::One,
            true,
            ONE,
            raw(ONE, 1, true),
        ),
        case(
            "Python smtplib, 1 connection",
            Group::One,
            false,
            SMTPLIB,
            smtplib,
        ),
        case(
            "lib-client (lettre), 1 connection per message",
            Group::One,
            true,
            LETTRE,
            lettre,
        ),
        case(
            "lettre 0.11 with its pool, 1 connection (bench/lettre-pool)",
            Group::One,
            false,
            LETTRE_POOL,
            lettre_pool,
        ),
        case(
            "smtp-source -s 4 -d",
            Group::Four,
            false,
            FOUR,
            source(4, FOUR),
        ),
        case(
            "raw-client --repeat 5000 --connections 4",
            Group::Four,
            true,
            FOUR,
            raw(FOUR / 4, 4, false),
        ),
        case(
            "raw-client --repeat 5000 --connections 4 --pipelining",
            Group::Four,
            true,
            FOUR,
            raw(FOUR / 4, 4, true),
        ),
    ];
    for round in 0..ctx.runs {
        for (case, runner) in &mut cases {
            if case.error.is_some() {
                continue;
            }
            let cpu_before = sink.cpu_seconds();
            let client_before = children_cpu_seconds(sink.ticks);
            let started = Instant::now();
            match runner() {
                Ok(()) => {
                    let wall = started.elapsed().as_secs_f64();
                    case.rates.push(case.messages as f64 / wall);
                    if let (Some(before), Some(after)) = (cpu_before, sink.cpu_seconds()) {
                        case.sink_cpu = case.sink_cpu.max((after - before) / wall);
                    }
                    if let (Some(before), Some(after)) =
                        (client_before, children_cpu_seconds(sink.ticks))
                    {
                        case.client_cpu.push((after - before) / wall);
                    }
                }
                Err(error) => case.error = Some(format!("{error:#}")),
            }
        }
        println!("  round {} of {} done", round + 1, ctx.runs);
    }
    for (case, _) in &cases {
        match &case.error {
            Some(why) => println!("  {:<55} failed: {why}", case.name),
            None => println!(
                "  {:<55} {:>9.0} msg/s (median)",
                case.name,
                super::median(&case.rates)
            ),
        }
    }
    Ok(Throughput {
        message_bytes: bytes.len(),
        cases: cases.into_iter().map(|(case, _)| case).collect(),
    })
}

/// Builds bench/'s `lettre-pool` (lettre with its connection pool, which lib-client leaves
/// off) into the bench's own target directory, as the criterion run does.
fn build_lettre_pool(ctx: &Ctx) -> Result<PathBuf> {
    let target = ctx.work.join("cargo");
    helpers::status(
        helpers::cargo()
            .args(["build", "--release", "--manifest-path", "bench/Cargo.toml"])
            .args(["--bin", "lettre-pool"])
            .env("CARGO_TARGET_DIR", &target),
        "cargo build --manifest-path bench/Cargo.toml --bin lettre-pool",
    )?;
    Ok(target.join("release").join("lettre-pool"))
}

fn case(name: &str, group: Group, ours: bool, messages: usize, runner: Runner) -> (Case, Runner) {
    (
        Case {
            name: name.to_owned(),
            group,
            ours,
            messages,
            rates: Vec::new(),
            sink_cpu: 0.0,
            client_cpu: Vec::new(),
            error: None,
        },
        runner,
    )
}

/// The options of the ~1 KB message raw-client and lib-client send.
pub(crate) fn raw_message_args() -> Vec<String> {
    let body: String = (0..12)
        .map(|i| format!("Line {i:02} of the throughput message, about seventy octets long.\n"))
        .collect();
    [
        "--from",
        FROM,
        "--to",
        TO,
        "--subject",
        "Throughput",
        "--body",
        &body,
        "--date",
        "1700000000",
        "--message-id",
        "throughput@bench.localhost",
        "--timeout",
        "30s",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn runner(mut command: Command, input: Option<Vec<u8>>) -> Runner {
    Box::new(move || {
        check(procs::run(
            &mut command,
            input.as_deref(),
            Duration::from_secs(120),
        )?)
    })
}

fn check(outcome: procs::Outcome) -> Result<()> {
    if outcome.success() {
        Ok(())
    } else {
        bail!("{}", outcome.why())
    }
}

/// raw-client's rendering of the message, as test-server stored it.
fn capture(ctx: &Ctx, dir: &Path) -> Result<PathBuf> {
    let file = dir.join("message.eml");
    let stored = capture_message(ctx, "throughput", &raw_message_args())?;
    std::fs::copy(&stored, &file)?;
    Ok(file)
}

/// Sends one message with raw-client to a fresh test-server (plaintext, no AUTH, no size
/// limit) and returns the path of the `.eml` it stored: the exact bytes raw-client sends.
pub(crate) fn capture_message(ctx: &Ctx, name: &str, args: &[String]) -> Result<PathBuf> {
    let store = ctx.work.join(format!("capture-{name}"));
    if store.exists() {
        std::fs::remove_dir_all(&store)?;
    }
    std::fs::create_dir_all(&store)?;
    let port = procs::free_port()?;
    let mut command = ctx.ours("test-server");
    command
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--store")
        .arg(&store)
        .args(["--size-limit", "0"]);
    let mut server = Service::spawn(
        "test-server",
        command,
        &ctx.work.join(format!("capture-{name}.log")),
    )?;
    server.wait_listening(&[port], Duration::from_secs(30))?;
    let mut client = ctx.ours("raw-client");
    client
        .args(["--server", &format!("127.0.0.1:{port}"), "--tls", "none"])
        .args(args)
        .arg("--quiet");
    check(procs::run(&mut client, None, Duration::from_secs(300))?)
        .context("raw-client sending the message to capture")?;
    drop(server);
    for entry in std::fs::read_dir(&store)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "eml") {
            return Ok(path);
        }
    }
    bail!("test-server stored no message in {}", store.display())
}

/// `smtp-sink` on a free loopback port, stopped by PID when dropped.
pub(crate) struct Sink {
    pub(crate) port: u16,
    service: Service,
    pub(crate) ticks: f64,
}

impl Sink {
    /// Starts smtp-sink with a backlog of 1024 (as root it must drop privileges: `-u nobody`).
    pub(crate) fn start(dir: &Path) -> Result<Sink> {
        let port = procs::free_port()?;
        let mut command = Command::new("smtp-sink");
        let root = procs::output(Command::new("id").arg("-u"))
            .map(|uid| uid.trim() == "0")
            .unwrap_or(false);
        if root {
            command.args(["-u", "nobody"]);
        }
        command
            .args(["-h", "smtp-sink.bench.localhost"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("1024");
        let mut service = Service::spawn("smtp-sink", command, &dir.join("smtp-sink.log"))?;
        service.wait_listening(&[port], Duration::from_secs(30))?;
        Ok(Sink {
            port,
            service,
            ticks: clock_ticks(),
        })
    }

    /// User + system CPU seconds smtp-sink has used so far.
    pub(crate) fn cpu_seconds(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.service.id())).ok()?;
        // Fields after the ")" that closes the command name: state is field 3, utime 14.
        let rest = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        Some((utime + stime) / self.ticks)
    }
}

/// User + system CPU seconds of this process's children that have been waited for (the
/// clients; smtp-sink is still running, so it does not count): `cutime` and `cstime` of
/// /proc/self/stat.
fn children_cpu_seconds(ticks: f64) -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let cutime: f64 = fields.get(13)?.parse().ok()?;
    let cstime: f64 = fields.get(14)?.parse().ok()?;
    Some((cutime + cstime) / ticks)
}

fn clock_ticks() -> f64 {
    procs::output(Command::new("getconf").arg("CLK_TCK"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}
