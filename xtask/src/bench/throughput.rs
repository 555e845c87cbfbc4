//! Throughput: ~1 KB messages to Postfix's `smtp-sink` on loopback, no TLS, no AUTH.
//!
//! Every client sends the same message: raw-client renders it from its options, and the
//! peers get that rendering, captured once through test-server (`smtp-source -F` gets it
//! with LF line ends, since it appends CRLF to every line itself). The clients take turns
//! within each round, so a change in the machine's load hits all of them alike; each rate
//! is messages / wall time of the whole client process (from just before it is spawned to
//! the moment `wait` returns, as `/usr/bin/time smtp-source ...` measures it), and the
//! tables show medians.
//!
//! A client that waits for every reply on one connection is bound by how fast the machine
//! wakes a sleeping process: smtp-source and smtp-sink each sleep once per command, four
//! times per message. On this virtual machine that cost moves from run to run, so every
//! round also measures it ([`loopback_round_trip`]), counts smtp-sink's sleeps per message
//! and the CPU time the hypervisor stole, and the page shows all three next to the rates.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
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
    /// smtp-sink's context switches (it slept, or was preempted) per message, one per run.
    pub(crate) sink_sleeps: Vec<f64>,
    /// The share of the machine's CPU time the hypervisor stole during each run.
    pub(crate) steal: Vec<f64>,
    /// A build of raw-client other than the one under test (`--raw-client-baseline`).
    pub(crate) baseline: bool,
    pub(crate) error: Option<String>,
}

/// The results, with the message size.
#[derive(Debug, Clone)]
pub(crate) struct Throughput {
    pub(crate) message_bytes: usize,
    pub(crate) cases: Vec<Case>,
    /// The median blocking loopback round trip measured before each round, µs.
    pub(crate) probe_us: Vec<f64>,
}

/// Runs one client (one run of a case) and returns its wall time.
type Runner = Box<dyn FnMut() -> Result<Duration>>;

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

    let raw = |binary: Option<&Path>, repeat: usize, connections: usize, pipelining: bool| {
        let mut command = match binary {
            Some(binary) => ctx.command(binary),
            None => ctx.ours("raw-client"),
        };
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
        runner(command)
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
        runner(command)
    };
    let lettre: Runner = {
        let mut command = ctx.ours("lib-client");
        command
            .args(["--server", &server, "--tls", "none"])
            .args(raw_message_args())
            .arg("--quiet");
        // One process per message: the rate is over the sum of their wall times.
        Box::new(move || {
            let mut total = Duration::ZERO;
            for _ in 0..LETTRE {
                total += timed(&mut command, Duration::from_secs(30))?;
            }
            Ok(total)
        })
    };
    let lettre_pool = {
        let mut command = Command::new(build_lettre_pool(ctx)?);
        command
            .args(["127.0.0.1", &port.to_string(), &LETTRE_POOL.to_string()])
            .args([FROM, TO])
            .arg(&eml);
        runner(command)
    };
    let smtplib = {
        let mut command = Command::new(&ctx.python);
        command
            .arg(&script)
            .args(["throughput", "127.0.0.1", &port.to_string()])
            .args([&SMTPLIB.to_string(), FROM, TO])
            .arg(&eml);
        runner(command)
    };

    // Each group's peer first, then raw-client; with --raw-client-baseline, the other build's
    // row right after each raw-client row, so each round runs the two back to back.
    let mut cases: Vec<(Case, Runner)> = Vec::new();
    let raw_rows = |cases: &mut Vec<(Case, Runner)>, group, connections, pipelining| {
        let messages = if connections == 1 { ONE } else { FOUR };
        let mut name = String::from("raw-client --repeat 5000");
        if connections > 1 {
            name.push_str(&format!(" --connections {connections}"));
        }
        if pipelining {
            name.push_str(" --pipelining");
        }
        let repeat = messages / connections;
        let runner = raw(None, repeat, connections, pipelining);
        cases.push(case(&name, group, true, messages, runner));
        if let Some(baseline) = &ctx.raw_baseline {
            let runner = raw(Some(baseline), repeat, connections, pipelining);
            let (mut row, runner) = case(
                &format!("{name} (baseline build)"),
                group,
                true,
                messages,
                runner,
            );
            row.baseline = true;
            cases.push((row, runner));
        }
    };
    cases.push(case(
        "smtp-source -s 1 -d",
        Group::One,
        false,
        ONE,
        source(1, ONE),
    ));
    raw_rows(&mut cases, Group::One, 1, false);
    raw_rows(&mut cases, Group::One, 1, true);
    cases.push(case(
        "Python smtplib, 1 connection",
        Group::One,
        false,
        SMTPLIB,
        smtplib,
    ));
    cases.push(case(
        "lib-client (lettre), 1 connection per message",
        Group::One,
        true,
        LETTRE,
        lettre,
    ));
    cases.push(case(
        "lettre 0.11 with its pool, 1 connection (bench/lettre-pool)",
        Group::One,
        false,
        LETTRE_POOL,
        lettre_pool,
    ));
    cases.push(case(
        "smtp-source -s 4 -d",
        Group::Four,
        false,
        FOUR,
        source(4, FOUR),
    ));
    raw_rows(&mut cases, Group::Four, 4, false);
    raw_rows(&mut cases, Group::Four, 4, true);
    let mut probe_us = Vec::new();
    for round in 0..ctx.runs {
        // The machine's wake-up cost for this round, measured just before it.
        probe_us.push(loopback_round_trip(PROBE_ROUND_TRIPS)?.as_secs_f64() * 1e6);
        for (case, runner) in &mut cases {
            if case.error.is_some() {
                continue;
            }
            let cpu_before = sink.cpu_seconds();
            let sleeps_before = sink.context_switches();
            let client_before = children_cpu_seconds(sink.ticks);
            let stat_before = cpu_stat();
            match runner() {
                Ok(elapsed) => {
                    let wall = elapsed.as_secs_f64();
                    case.rates.push(case.messages as f64 / wall);
                    if let (Some(before), Some(after)) = (cpu_before, sink.cpu_seconds()) {
                        case.sink_cpu = case.sink_cpu.max((after - before) / wall);
                    }
                    if let (Some(before), Some(after)) = (sleeps_before, sink.context_switches()) {
                        case.sink_sleeps
                            .push(after.saturating_sub(before) as f64 / case.messages as f64);
                    }
                    if let (Some(before), Some(after)) =
                        (client_before, children_cpu_seconds(sink.ticks))
                    {
                        case.client_cpu.push((after - before) / wall);
                    }
                    if let (Some(before), Some(after)) = (stat_before, cpu_stat()) {
                        case.steal.push(after.steal_share_since(&before));
                    }
                }
                Err(error) => case.error = Some(format!("{error:#}")),
            }
        }
        println!(
            "  round {} of {} done (loopback round trip {:.1} µs)",
            round + 1,
            ctx.runs,
            probe_us[round]
        );
    }
    for (case, _) in &cases {
        match &case.error {
            Some(why) => println!("  {:<66} failed: {why}", case.name),
            None => println!(
                "  {:<66} {:>9.0} msg/s (median), smtp-sink sleeps {:.2} per message",
                case.name,
                super::median(&case.rates),
                super::median(&case.sink_sleeps)
            ),
        }
    }
    // A baseline build, if any, against the build under test, round by round.
    for (case, _) in cases
        .iter()
        .filter(|(c, _)| c.baseline && c.error.is_none())
    {
        let name = case.name.trim_end_matches(" (baseline build)");
        if let Some((ours, _)) = cases.iter().find(|(c, _)| c.name == name) {
            let ratios: Vec<f64> = ours
                .rates
                .iter()
                .zip(&case.rates)
                .map(|(o, b)| o / b)
                .collect();
            let min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
            let max = ratios.iter().copied().fold(0.0, f64::max);
            println!(
                "  {name}: this build / baseline build = {:.3} (median of {} rounds; {min:.3}–{max:.3})",
                super::median(&ratios),
                ratios.len()
            );
        }
    }
    Ok(Throughput {
        message_bytes: bytes.len(),
        cases: cases.into_iter().map(|(case, _)| case).collect(),
        probe_us,
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
            sink_sleeps: Vec::new(),
            steal: Vec::new(),
            baseline: false,
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

fn runner(mut command: Command) -> Runner {
    Box::new(move || timed(&mut command, Duration::from_secs(120)))
}

/// Runs `command` to its end and returns its wall time: from just before it is spawned to
/// the moment `wait` returns (a thread blocks in `wait`, so no polling interval is added).
/// Fails if it exits unsuccessfully; kills it by its PID at the deadline.
pub(crate) fn timed(command: &mut Command, timeout: Duration) -> Result<Duration> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {command:?}"))?;
    let pid = child.id();
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let (sender, ended) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let status = child.wait();
        let _ = sender.send(Instant::now());
        status
    });
    let ended = match ended.recv_timeout(timeout) {
        Ok(at) => at,
        Err(_) => {
            // The child is ours and has not been reaped (the waiter would have said so).
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            let _ = waiter.join();
            bail!("{command:?} did not finish within {timeout:?}");
        }
    };
    let status = waiter
        .join()
        .map_err(|_| anyhow::anyhow!("the thread waiting for {command:?} panicked"))?
        .with_context(|| format!("waiting for {command:?}"))?;
    let (stdout, stderr) = (
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default(),
    );
    if !status.success() {
        let detail = if stderr.trim().is_empty() {
            stdout
        } else {
            stderr
        };
        let detail: String = detail.trim().chars().take(200).collect();
        bail!("{status}: {detail}");
    }
    Ok(ended - started)
}

fn check(outcome: procs::Outcome) -> Result<()> {
    if outcome.success() {
        Ok(())
    } else {
        bail!("{}", outcome.why())
    }
}

/// Ping-pongs one byte this many times per probe.
const PROBE_ROUND_TRIPS: usize = 2000;

/// The median time for one byte to go to another thread over a loopback TCP connection and
/// back, both threads blocking in `read` (`TCP_NODELAY`): two wake-ups of a sleeping thread,
/// as a client that waits for each reply and smtp-sink cost each other per command.
pub(crate) fn loopback_round_trip(count: usize) -> Result<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding the probe")?;
    let addr = listener.local_addr()?;
    let echo = thread::spawn(move || -> std::io::Result<()> {
        let (mut stream, _) = listener.accept()?;
        stream.set_nodelay(true)?;
        let mut byte = [0u8; 1];
        loop {
            match stream.read(&mut byte)? {
                0 => return Ok(()),
                _ => stream.write_all(&byte)?,
            }
        }
    });
    let mut stream = TcpStream::connect(addr).context("connecting to the probe")?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut times = Vec::with_capacity(count);
    let mut byte = [0u8; 1];
    for _ in 0..count {
        let started = Instant::now();
        stream.write_all(b"x")?;
        stream.read_exact(&mut byte)?;
        times.push(started.elapsed().as_secs_f64());
    }
    drop(stream);
    echo.join()
        .map_err(|_| anyhow::anyhow!("the probe's echo thread panicked"))?
        .context("the probe's echo thread")?;
    Ok(Duration::from_secs_f64(super::median(&times)))
}

/// The machine's CPU time so far, from the first line of /proc/stat (clock ticks).
pub(crate) struct CpuStat {
    steal: u64,
    total: u64,
}

impl CpuStat {
    /// The share of all CPU time since `before` that the hypervisor stole.
    pub(crate) fn steal_share_since(&self, before: &CpuStat) -> f64 {
        let total = self.total.saturating_sub(before.total);
        if total == 0 {
            return 0.0;
        }
        self.steal.saturating_sub(before.steal) as f64 / total as f64
    }
}

/// The "cpu" line of /proc/stat: user nice system idle iowait irq softirq steal ...
pub(crate) fn cpu_stat() -> Option<CpuStat> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    parse_cpu_stat(stat.lines().next()?)
}

fn parse_cpu_stat(line: &str) -> Option<CpuStat> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    // The first eight: guest time (the last two) is already counted in user and nice.
    let values: Vec<u64> = fields
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    Some(CpuStat {
        steal: *values.get(7)?,
        total: values.iter().sum(),
    })
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

    /// How often smtp-sink has given up its CPU so far (voluntary and involuntary context
    /// switches, from /proc/PID/status): once each time it waited for the next command.
    pub(crate) fn context_switches(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.service.id())).ok()?;
        let mut total = 0;
        let mut found = 0;
        for line in status.lines() {
            if let Some(rest) = line
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                total += rest.trim().parse::<u64>().ok()?;
                found += 1;
            }
        }
        (found == 2).then_some(total)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steal_comes_from_the_eighth_field_of_the_cpu_line() -> Result<()> {
        let before = parse_cpu_stat("cpu  100 0 50 800 10 0 5 5 0 0").context("before")?;
        let after = parse_cpu_stat("cpu  150 0 70 900 10 0 5 25 7 0").context("after")?;
        // 20 ticks stolen out of 50 + 20 + 100 + 20 = 190.
        assert!((after.steal_share_since(&before) - 20.0 / 190.0).abs() < 1e-12);
        assert!(parse_cpu_stat("cpu0 1 2 3 4 5 6 7 8").is_none());
        assert!(parse_cpu_stat("cpu 1 2 3").is_none());
        Ok(())
    }

    #[test]
    fn timed_fails_with_the_exit_status_and_stderr() {
        let mut ok = Command::new("true");
        assert!(timed(&mut ok, Duration::from_secs(10)).is_ok());
        let mut bad = Command::new("sh");
        bad.args(["-c", "echo why >&2; exit 3"]);
        let error = timed(&mut bad, Duration::from_secs(10))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("3") && error.contains("why"), "{error}");
        let mut slow = Command::new("sleep");
        slow.arg("5");
        let started = Instant::now();
        assert!(timed(&mut slow, Duration::from_millis(100)).is_err());
        assert!(started.elapsed() < Duration::from_secs(4));
    }

    #[test]
    fn the_probe_measures_a_round_trip() -> Result<()> {
        let rt = loopback_round_trip(50)?;
        assert!(rt > Duration::ZERO && rt < Duration::from_secs(1));
        Ok(())
    }
}
