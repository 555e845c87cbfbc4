//! The harness behind the workspace tests: run raw-client or lib-client against a fresh
//! test server with the same options, and collect what each side saw.
//!
//! Each client gets its own server with the same configuration, so message ids and replies
//! are the same for both; the only thing that differs between two runs is the server's
//! port, which [`ClientRun::text`] replaces with `PORT`.

pub mod certs;
pub mod scripted;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use cli::{Credentials, Endpoint, Exit, Failure, Job, Plan, Sent, TlsMode};
use test_server::{Config, Server, Session};
use transcript::{RenderOptions, Transcript};

/// Which client to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// The hand-written client, with its own settings.
    Raw(raw_client::Settings),
    /// The lettre client.
    Lib,
}

impl Client {
    /// raw-client with default settings (lettre's dialogue).
    pub const RAW: Client = Client::Raw(raw_client::Settings {
        pipelining: false,
        repeat: 1,
        ..raw_client::Settings::DEFAULT
    });
}

/// One scenario: the client options and the server's configuration.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Client options, as on the command line, without `--server`.
    pub args: Vec<String>,
    /// The server configuration (faults included).
    pub config: Config,
    /// Log in as this user with this password.
    pub credentials: Option<(String, String)>,
}

impl Scenario {
    /// A scenario with a fixed Date, Message-ID and EHLO name, the given TLS mode and extra
    /// options, and a server with the demo user.
    pub fn new(tls: &str, extra: &[&str]) -> Scenario {
        let defaults = [
            ("--helo-name", "client.example"),
            ("--date", "Mon, 23 Nov 2026 12:00:00 +0000"),
            ("--message-id", "proof@smtp-workbench.example"),
            ("--timeout", "10s"),
            ("--from", "Alice <alice@example.com>"),
            ("--subject", "Proof"),
            ("--body", "Hello Bob.\n"),
        ];
        let mut args = vec!["--tls".to_owned(), tls.to_owned()];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        for (flag, value) in defaults {
            if !extra.contains(&flag) {
                args.extend([flag.to_owned(), value.to_owned()]);
            }
        }
        if !extra
            .iter()
            .any(|a| matches!(*a, "--to" | "--cc" | "--bcc"))
        {
            args.extend(["--to".into(), "Bob <bob@example.org>".into()]);
        }
        // Without TLS the server asks for no login; with TLS it has one user.
        let users = match tls {
            "none" => Vec::new(),
            _ => vec![("alice".to_owned(), "s3cret-Pa55".to_owned())],
        };
        let config = Config {
            users,
            tls_listen: (tls == "implicit").then(|| ([127, 0, 0, 1], 0).into()),
            ..Config::default()
        };
        Scenario {
            args,
            config,
            credentials: None,
        }
    }

    /// A scenario that sends the prebuilt message at `path` with `--data`, so without the
    /// message options of [`Scenario::new`]; with `-t` in `extra`, without `--from` and
    /// `--to` too (the message's header fields give the envelope).
    pub fn prebuilt(tls: &str, path: &Path, extra: &[&str]) -> Scenario {
        let mut scenario = Scenario::new(tls, &["--data", &path.to_string_lossy()]);
        let read_envelope = extra.contains(&"-t");
        let mut dropped: Vec<&str> = vec!["--date", "--message-id", "--subject", "--body"];
        if read_envelope {
            dropped.push("--from");
        }
        if read_envelope
            || extra
                .iter()
                .any(|a| matches!(*a, "--to" | "--cc" | "--bcc"))
        {
            dropped.push("--to");
        }
        let mut args = Vec::new();
        let mut given = scenario.args.into_iter();
        while let Some(arg) = given.next() {
            if dropped.contains(&arg.as_str()) {
                given.next();
            } else {
                args.push(arg);
            }
        }
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        scenario.args = args;
        scenario
    }

    /// Logs in as the server's user.
    pub fn with_login(mut self) -> Scenario {
        self.credentials = Some(("alice".into(), "s3cret-Pa55".into()));
        self
    }

    /// Changes the server configuration.
    pub fn server(mut self, change: impl FnOnce(&mut Config)) -> Scenario {
        change(&mut self.config);
        self
    }
}

/// A test server whose store directory is removed when it is dropped.
#[derive(Debug)]
pub struct TestServer {
    server: Server,
    _store: TempDir,
}

impl std::ops::Deref for TestServer {
    type Target = Server;

    fn deref(&self) -> &Server {
        &self.server
    }
}

impl Scenario {
    /// Starts a server with this scenario's configuration and a temporary store.
    pub fn start_server(&self) -> TestServer {
        let store = TempDir::new("store");
        let mut config = self.config.clone();
        config
            .store
            .get_or_insert_with(|| store.path().to_path_buf());
        match Server::start(config) {
            Ok(server) => TestServer {
                server,
                _store: store,
            },
            Err(error) => panic!("the test server did not start: {error}"),
        }
    }
}

/// What one client run produced, on both sides of the wire.
#[derive(Debug)]
pub struct ClientRun {
    /// The client's own transcript.
    pub transcript: Transcript,
    /// The client's transcript as text, with the server's port replaced by `PORT`.
    pub text: String,
    /// How the client ended: sent (with any warnings), or its failure.
    pub result: Result<Sent, Failure>,
    /// The server's record of the connection (absent if the client never connected).
    pub session: Option<Session>,
    /// The messages the server stored.
    pub stored: Vec<test_server::StoredMessage>,
    /// How long the client took, from start to its result.
    pub elapsed: Duration,
}

impl ClientRun {
    /// The exit status.
    pub fn exit(&self) -> Exit {
        match &self.result {
            Ok(_) => Exit::Sent,
            Err(failure) => failure.exit(),
        }
    }

    /// The bytes the server received after TLS (or all of them without TLS).
    pub fn server_received(&self) -> Vec<u8> {
        self.session
            .as_ref()
            .map(|session| session.after_tls.client_bytes())
            .unwrap_or_default()
    }

    /// The server's text transcript of the whole connection.
    pub fn server_text(&self) -> String {
        self.session
            .as_ref()
            .map(|session| session.transcript.render_text(RenderOptions::default()))
            .unwrap_or_default()
    }
}

/// Parses client options the way the binaries do.
#[derive(Debug, Parser)]
struct Arguments {
    #[command(flatten)]
    options: cli::Options,
}

/// Builds the job for `scenario` against `server` (127.0.0.1, its CA trusted).
pub fn job(scenario: &Scenario, server: &Server) -> Result<Job, Failure> {
    let implicit = scenario
        .args
        .windows(2)
        .any(|w| w[0] == "--tls" && w[1] == "implicit");
    let addr = if implicit {
        server.tls_addr().unwrap_or_else(|| server.addr())
    } else {
        server.addr()
    };
    job_at(scenario, addr, Some(server.ca_pem()))
}

/// Builds the job for `scenario` against any server address, trusting `ca_pem`.
pub fn job_at(scenario: &Scenario, addr: SocketAddr, ca_pem: Option<&str>) -> Result<Job, Failure> {
    let mut argv = vec!["client".to_owned(), "--server".to_owned(), addr.to_string()];
    argv.extend(scenario.args.iter().cloned());
    let arguments =
        Arguments::try_parse_from(&argv).map_err(|e| Failure::Arguments(e.to_string()))?;
    let plan = Plan::from_options(&arguments.options, &mut |_| {})?;
    let mut job = plan.into_job(Endpoint::remote(&addr.ip().to_string(), addr.port()));
    job.verify.ca_pem = ca_pem.map(|pem| pem.as_bytes().to_vec());
    if let Some((user, password)) = &scenario.credentials {
        if job.tls == TlsMode::None {
            job.allow_plaintext_auth = true;
        }
        job.credentials = Some(Credentials {
            user: user.clone(),
            password: password.clone(),
            mechanism: None,
        });
    }
    Ok(job)
}

/// Runs one client against a fresh server for `scenario`.
pub fn run(client: Client, scenario: &Scenario) -> ClientRun {
    let server = scenario.start_server();
    let job = match job(scenario, &server) {
        Ok(job) => job,
        Err(failure) => panic!("the scenario's options are invalid: {failure}"),
    };
    run_job(client, &job, Some(&server))
}

/// Runs one client for an already built job; `server` is the test server it talks to, if
/// it is one (then its session and stored messages are collected too).
pub fn run_job(client: Client, job: &Job, server: Option<&Server>) -> ClientRun {
    let started = std::time::Instant::now();
    let (transcript, result) = match client {
        Client::Raw(settings) => raw_client::send(job, &settings),
        Client::Lib => lib_client::send(job),
    };
    let elapsed = started.elapsed();
    let connected = transcript
        .events()
        .iter()
        .any(|event| matches!(event, transcript::Event::Connected { .. }));
    let session = match server {
        Some(server) if connected => server
            .wait_for_sessions(1, Duration::from_secs(10))
            .into_iter()
            .next(),
        _ => None,
    };
    let mut text = transcript.render_text(RenderOptions::default());
    let addresses = server.map(|server| [Some(server.addr()), server.tls_addr()]);
    for addr in addresses.into_iter().flatten().flatten() {
        let shown = addr.to_string();
        let without_port = shown.trim_end_matches(|c: char| c.is_ascii_digit());
        text = text.replace(&shown, &format!("{without_port}PORT"));
    }
    ClientRun {
        transcript,
        text,
        result,
        session,
        stored: server.map(Server::messages).unwrap_or_default(),
        elapsed,
    }
}

/// Checks that the generated block `name` of the doc at `path` (relative to the workspace
/// root, between `<!-- name:start -->` and `<!-- name:end -->`) is `content`, or, with the
/// environment variable `update` set, rewrites it. Generated docs cannot go stale unnoticed.
pub fn generated_block(path: &str, name: &str, content: &str, update: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    let doc = std::fs::read_to_string(&path).unwrap_or_default();
    let (start, end) = (
        format!("<!-- {name}:start -->\n"),
        format!("<!-- {name}:end -->"),
    );
    let (Some(a), Some(b)) = (doc.find(&start), doc.find(&end)) else {
        panic!("{} has no {start:?} … {end:?} block", path.display());
    };
    if std::env::var_os(update).is_some() {
        let updated = format!("{}{content}{}", &doc[..a + start.len()], &doc[b..]);
        if let Err(error) = std::fs::write(&path, updated) {
            panic!("cannot write {}: {error}", path.display());
        }
        return;
    }
    assert_eq!(
        &doc[a + start.len()..b],
        content,
        "{} is stale: run {update}=1 cargo test -p workspace-tests",
        path.display()
    );
}

/// A directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a fresh directory.
    pub fn new(label: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("smtp-workbench-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        if let Err(error) = std::fs::create_dir_all(&path) {
            panic!("cannot create {}: {error}", path.display());
        }
        TempDir(path)
    }

    /// Writes a file in it and returns its path.
    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        if let Err(error) = std::fs::write(&path, bytes) {
            panic!("cannot write {}: {error}", path.display());
        }
        path
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What cargo sets for a test besides `CARGO_PKG_*`: a nested cargo (a build, or a course
/// chapter's `cargo run`) must not see them, or ring's build script reruns.
pub const CARGO_TEST_VARIABLES: [&str; 7] = [
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "CARGO_RUSTC_CURRENT_DIR",
];

/// The binary of a client package (`raw-client`, `lib-client`), built once per test
/// process in the same target directory and profile: a package's tests only get their own
/// package's binaries from cargo.
pub fn binary(package: &str) -> PathBuf {
    use std::collections::BTreeMap;
    use std::sync::{Mutex, OnceLock};
    static BUILT: OnceLock<Mutex<BTreeMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(|| Mutex::new(BTreeMap::new()));
    let mut built = built
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(path) = built.get(package) {
        return path.clone();
    }
    let test = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test>-<hash>
    let profile_dir = test
        .parent()
        .and_then(Path::parent)
        .expect("the test binary is in target/<profile>/deps")
        .to_path_buf();
    let profile = match profile_dir.file_name().and_then(|name| name.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    let mut cargo = std::process::Command::new(env!("CARGO"));
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if text.starts_with("CARGO_PKG_") || CARGO_TEST_VARIABLES.contains(&text.as_ref()) {
            cargo.env_remove(&name);
        }
    }
    let status = cargo
        .args(["build", "-q", "-p", package, "--bin", package])
        .args(["--profile", profile])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build -p {package} failed");
    let binary = profile_dir.join(package);
    assert!(binary.exists(), "{} was built", binary.display());
    built.insert(package.to_owned(), binary.clone());
    binary
}
