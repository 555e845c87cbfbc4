//! test-server under load: what storing every message durably costs, and what the web inbox
//! costs. raw-client `--repeat` sends the throughput message (~1 KB, no TLS, no AUTH) over 1,
//! 4 and 16 connections to two test-servers on this machine's disk (under
//! `target/bench/store`): one with the default durable store (each file and the directory
//! synced before `250`) and one with `--no-sync`. The difference between the two is the cost
//! of the syncs. A third test-server, `--no-sync` with `--http` and one live subscriber of its
//! inbox ([`subscriber`]), gets the same 400 messages on one connection: the difference from
//! the plain `--no-sync` one is what an open inbox costs, and after each run the subscriber
//! must have seen exactly one message event per message sent. The cases take turns within
//! each round.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::Ctx;
use super::subscriber::{self, Subscriber};
use super::throughput::{raw_message_args, timed};
use crate::interop::procs::{self, Service};

/// Connection counts measured.
pub(crate) const CONNECTIONS: [usize; 3] = [1, 4, 16];
/// Messages per run (split evenly over the connections).
pub(crate) const MESSAGES: usize = 400;
/// The rate the store must keep with the inbox open (the web inbox's issue; Mailpit states
/// 70–100 messages per second with its storage).
pub(crate) const WATCHED_TARGET: f64 = 300.0;
/// How long the subscriber may take, after raw-client exited, to see the run's last message.
const CATCH_UP: Duration = Duration::from_secs(10);

/// How the measured test-server stores, and who watches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Store {
    /// The default: every file and the directory synced before `250`.
    Synced,
    /// `--no-sync`.
    NoSync,
    /// `--no-sync --http 127.0.0.1:PORT`, with one live subscriber of the inbox.
    Watched,
}

impl Store {
    /// The store column of the table.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Store::Synced => "synced (default)",
            Store::NoSync => "`--no-sync`",
            Store::Watched => "`--no-sync --http`, one live subscriber",
        }
    }

    fn printed(self) -> &'static str {
        match self {
            Store::Synced => "synced",
            Store::NoSync => "--no-sync",
            Store::Watched => "--no-sync --http + subscriber",
        }
    }
}

/// One store mode at one connection count.
#[derive(Debug, Clone)]
pub(crate) struct Case {
    pub(crate) connections: usize,
    pub(crate) store: Store,
    /// Messages per second, one per run.
    pub(crate) rates: Vec<f64>,
    /// `Watched` only: how long after raw-client exited the subscriber saw the run's last
    /// message event (zero when it already had), in milliseconds, one per run.
    pub(crate) behind_ms: Vec<f64>,
    /// `Watched` only: the message events the subscriber saw, and how many times it loaded
    /// the inbox, over all runs.
    pub(crate) events: usize,
    pub(crate) inbox_loads: usize,
    pub(crate) error: Option<String>,
}

impl Case {
    fn new(connections: usize, store: Store) -> Case {
        Case {
            connections,
            store,
            rates: Vec::new(),
            behind_ms: Vec::new(),
            events: 0,
            inbox_loads: 0,
            error: None,
        }
    }

    /// Median wall time per message on one connection, in milliseconds: each connection
    /// waits for its own messages one after the other.
    pub(crate) fn ms_per_message(&self) -> f64 {
        self.connections as f64 * 1000.0 / super::median(&self.rates)
    }
}

/// A test-server storing into `dir`, stopped by PID when dropped.
struct Server {
    port: u16,
    /// The inbox's port, with `--http`.
    http: Option<u16>,
    _service: Service,
}

impl Server {
    fn start(ctx: &Ctx, dir: &Path, store: Store) -> Result<Server> {
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
        if store != Store::Synced {
            command.arg("--no-sync");
        }
        let http = match store {
            Store::Watched => Some(procs::free_port()?),
            Store::Synced | Store::NoSync => None,
        };
        if let Some(http) = http {
            command.args(["--http", &format!("127.0.0.1:{http}")]);
        }
        let log = dir.with_extension("log");
        let mut service = Service::spawn("test-server", command, &log)?;
        let ports: Vec<u16> = std::iter::once(port).chain(http).collect();
        service.wait_listening(&ports, Duration::from_secs(30))?;
        Ok(Server {
            port,
            http,
            _service: service,
        })
    }
}

pub(crate) fn run(ctx: &Ctx) -> Result<Vec<Case>> {
    let dir = ctx.dir("store")?;
    let synced = Server::start(ctx, &dir.join("sync"), Store::Synced)?;
    let unsynced = Server::start(ctx, &dir.join("no-sync"), Store::NoSync)?;
    let watched = Server::start(ctx, &dir.join("no-sync-http"), Store::Watched)?;
    // One subscriber for the whole bench, as a tab left open: it sees every run.
    let inbox = match watched.http.map(Subscriber::open) {
        Some(Ok(subscriber)) => Ok(subscriber),
        Some(Err(error)) => Err(format!("subscribing to the inbox failed: {error:#}")),
        None => Err("the inbox was not started".to_owned()),
    };
    let mut cases: Vec<Case> = CONNECTIONS
        .iter()
        .flat_map(|&connections| {
            let watched = (connections == 1).then(|| Case::new(connections, Store::Watched));
            [
                Case::new(connections, Store::Synced),
                Case::new(connections, Store::NoSync),
            ]
            .into_iter()
            .chain(watched)
        })
        .collect();
    if let (Err(why), Some(case)) = (&inbox, cases.iter_mut().find(|c| c.store == Store::Watched)) {
        case.error = Some(why.clone());
    }
    // The message events the subscriber has seen in all, when it kept up.
    let mut expected = 0;
    for round in 0..ctx.runs {
        for case in &mut cases {
            if case.error.is_some() {
                continue;
            }
            let port = match case.store {
                Store::Synced => synced.port,
                Store::NoSync => unsynced.port,
                Store::Watched => watched.port,
            };
            let mut command = ctx.ours("raw-client");
            command
                .args(["--server", &format!("127.0.0.1:{port}"), "--tls", "none"])
                .args(raw_message_args())
                .args(["--repeat", &(MESSAGES / case.connections).to_string()])
                .args(["--connections", &case.connections.to_string()])
                .arg("--quiet");
            let started = Instant::now();
            let elapsed = match timed(&mut command, Duration::from_secs(300)) {
                Ok(elapsed) => elapsed,
                Err(error) => {
                    case.error = Some(format!("{error:#}"));
                    continue;
                }
            };
            // The figure counts only when the subscriber kept up with every message.
            if let (Store::Watched, Ok(inbox)) = (case.store, &inbox) {
                match inbox.wait_for(expected, MESSAGES, CATCH_UP) {
                    Ok(last) => {
                        let behind = last.saturating_duration_since(started + elapsed);
                        case.behind_ms.push(behind.as_secs_f64() * 1000.0);
                        expected += MESSAGES;
                        case.events = inbox.messages();
                        case.inbox_loads = inbox.inbox_loads();
                    }
                    Err(error) => {
                        case.error = Some(format!("{error:#}"));
                        continue;
                    }
                }
            }
            case.rates.push(MESSAGES as f64 / elapsed.as_secs_f64());
        }
        println!("  round {} of {} done", round + 1, ctx.runs);
    }
    drop(inbox);
    let plain = cases
        .iter()
        .find(|c| c.connections == 1 && c.store == Store::NoSync && c.error.is_none())
        .cloned();
    for case in &cases {
        let mode = case.store.printed();
        match &case.error {
            Some(why) => println!(
                "  {} connection(s), {mode}: failed: {why}",
                case.connections
            ),
            None => println!(
                "  {:>2} connection(s), {mode:<29} {:>7.0} msg/s (median)",
                case.connections,
                super::median(&case.rates)
            ),
        }
        if let (Store::Watched, None) = (case.store, &case.error) {
            let versus = match &plain {
                Some(plain) => format!(
                    "{:.2}× plain --no-sync on one connection ({:.0} msg/s), paired by round",
                    paired(case, plain),
                    super::median(&plain.rates)
                ),
                None => "plain --no-sync on one connection failed".to_owned(),
            };
            println!(
                "     {versus}; the subscriber saw {} message events for {} messages, \
                 loaded the inbox {} times, and was at most {:.1} ms behind raw-client's exit",
                case.events,
                case.rates.len() * MESSAGES,
                case.inbox_loads,
                case.behind_ms.iter().copied().fold(0.0, f64::max)
            );
        }
    }
    if cases.iter().all(|c| c.error.is_some()) {
        bail!("no store measurement succeeded");
    }
    Ok(cases)
}

/// `case`'s rate over `other`'s, paired by round (both ran in the same round), median over
/// the rounds.
pub(crate) fn paired(case: &Case, other: &Case) -> f64 {
    let ratios: Vec<f64> = case
        .rates
        .iter()
        .zip(&other.rates)
        .map(|(a, b)| a / b)
        .collect();
    super::median(&ratios)
}

/// The subscriber's inbox reloads, in words, for the tables.
pub(crate) fn reloads() -> String {
    format!(
        "`GET /api/v1/server` and `GET {}` on the first message event and every {}th after it",
        subscriber::INBOX,
        subscriber::RELOAD_EVERY
    )
}
