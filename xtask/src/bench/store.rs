//! test-server under load: what storing every message durably costs. raw-client `--repeat`
//! sends the throughput message (~1 KB, no TLS, no AUTH) over 1, 4 and 16 connections to two
//! test-servers on this machine's disk (under `target/bench/store`): one with the default
//! durable store (each file and the directory synced before `250`) and one with `--no-sync`.
//! The difference between the two is the cost of the syncs. The cases take turns within
//! each round.

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, bail};

use super::Ctx;
use super::throughput::{raw_message_args, timed};
use crate::interop::procs::{self, Service};

/// Connection counts measured.
pub(crate) const CONNECTIONS: [usize; 3] = [1, 4, 16];
/// Messages per run (split evenly over the connections).
pub(crate) const MESSAGES: usize = 400;

/// One store mode at one connection count.
#[derive(Debug, Clone)]
pub(crate) struct Case {
    pub(crate) connections: usize,
    pub(crate) sync: bool,
    /// Messages per second, one per run.
    pub(crate) rates: Vec<f64>,
    pub(crate) error: Option<String>,
}

impl Case {
    /// Median wall time per message on one connection, in milliseconds: each connection
    /// waits for its own messages one after the other.
    pub(crate) fn ms_per_message(&self) -> f64 {
        self.connections as f64 * 1000.0 / super::median(&self.rates)
    }
}

/// A test-server storing into `dir`, stopped by PID when dropped.
struct Server {
    port: u16,
    _service: Service,
}

impl Server {
    fn start(ctx: &Ctx, dir: &Path, sync: bool) -> Result<Server> {
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        std::fs::create_dir_all(dir)?;
        let port = procs::free_port()?;
        let mut command = ctx.ours("test-server");
        command
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--store")
            .arg(dir)
            .args(["--size-limit", "0"]);
        if !sync {
            command.arg("--no-sync");
        }
        let log = dir.with_extension("log");
        let mut service = Service::spawn("test-server", command, &log)?;
        service.wait_listening(&[port], Duration::from_secs(30))?;
        Ok(Server {
            port,
            _service: service,
        })
    }
}

pub(crate) fn run(ctx: &Ctx) -> Result<Vec<Case>> {
    let dir = ctx.dir("store")?;
    let synced = Server::start(ctx, &dir.join("sync"), true)?;
    let unsynced = Server::start(ctx, &dir.join("no-sync"), false)?;
    let mut cases: Vec<Case> = CONNECTIONS
        .iter()
        .flat_map(|&connections| {
            [true, false].map(|sync| Case {
                connections,
                sync,
                rates: Vec::new(),
                error: None,
            })
        })
        .collect();
    for round in 0..ctx.runs {
        for case in &mut cases {
            if case.error.is_some() {
                continue;
            }
            let port = if case.sync {
                synced.port
            } else {
                unsynced.port
            };
            let mut command = ctx.ours("raw-client");
            command
                .args(["--server", &format!("127.0.0.1:{port}"), "--tls", "none"])
                .args(raw_message_args())
                .args(["--repeat", &(MESSAGES / case.connections).to_string()])
                .args(["--connections", &case.connections.to_string()])
                .arg("--quiet");
            match timed(&mut command, Duration::from_secs(300)) {
                Ok(elapsed) => case.rates.push(MESSAGES as f64 / elapsed.as_secs_f64()),
                Err(error) => case.error = Some(format!("{error:#}")),
            }
        }
        println!("  round {} of {} done", round + 1, ctx.runs);
    }
    for case in &cases {
        let mode = if case.sync { "synced" } else { "--no-sync" };
        match &case.error {
            Some(why) => println!(
                "  {} connection(s), {mode}: failed: {why}",
                case.connections
            ),
            None => println!(
                "  {:>2} connection(s), {mode:<9} {:>7.0} msg/s (median)",
                case.connections,
                super::median(&case.rates)
            ),
        }
    }
    if cases.iter().all(|c| c.error.is_some()) {
        bail!("no store measurement succeeded");
    }
    Ok(cases)
}
