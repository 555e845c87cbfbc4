//! Processes: free loopback ports, peers that are stopped by PID when dropped, and commands
//! run with a deadline so that a hung peer cannot stall CI.

use std::fs::File;
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

/// A port on 127.0.0.1 that was free a moment ago (the kernel picked it for a bind to port
/// 0; the listener is closed again so the peer can take it).
pub(crate) fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A long-running peer (a server) started by us. Dropping it kills it by its PID and reaps
/// it, also when a check failed or returned early with an error.
pub(crate) struct Service {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Service {
    /// Starts `command` with standard output and error appended to `log`.
    pub(crate) fn spawn(name: &str, mut command: Command, log: &Path) -> Result<Service> {
        let file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        command
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        let child = command
            .spawn()
            .with_context(|| format!("starting {name} ({command:?})"))?;
        Ok(Service {
            name: name.to_owned(),
            child,
            log: log.to_path_buf(),
        })
    }

    /// Waits until every port accepts a TCP connection; fails if the process exits first
    /// or the time runs out, quoting the end of its log.
    pub(crate) fn wait_listening(&mut self, ports: &[u16], timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited ({status}) before listening; its log ends:\n{}",
                    self.name,
                    log_tail(&self.log)
                );
            }
            if ports.iter().all(|port| accepts(*port)) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not listen on 127.0.0.1 port(s) {ports:?} within {timeout:?}; its log ends:\n{}",
                    self.name,
                    log_tail(&self.log)
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The peer's process id (`cargo xtask bench` reads its CPU time in /proc).
    pub(crate) fn id(&self) -> u32 {
        self.child.id()
    }

    /// The end of the peer's log, for failure messages.
    pub(crate) fn log_tail(&self) -> String {
        log_tail(&self.log)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // Child::kill sends SIGKILL to this child's PID, nothing else.
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub(crate) fn accepts(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// The last lines of a log file.
pub(crate) fn log_tail(path: &Path) -> String {
    let text = std::fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_else(|error| format!("(cannot read {}: {error})", path.display()));
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(15);
    lines[start..]
        .iter()
        .map(|line| format!("    {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What a command did.
pub(crate) struct Outcome {
    /// The exit status; `None` when it was killed at the deadline.
    pub(crate) status: Option<ExitStatus>,
    /// Standard output.
    pub(crate) stdout: String,
    /// Standard error.
    pub(crate) stderr: String,
}

impl Outcome {
    /// Exit code, -1 for a signal or a timeout.
    pub(crate) fn code(&self) -> i32 {
        self.status.and_then(|status| status.code()).unwrap_or(-1)
    }

    /// Whether it exited 0.
    pub(crate) fn success(&self) -> bool {
        self.status.is_some_and(|status| status.success())
    }

    /// A one-line reason for a failure: the exit code and the last line of standard error
    /// (or output).
    pub(crate) fn why(&self) -> String {
        let last = |text: &str| {
            text.lines()
                .rev()
                .find(|line| !line.trim().is_empty())
                .map(str::trim)
                .unwrap_or("")
                .to_owned()
        };
        let mut detail = last(&self.stderr);
        if detail.is_empty() {
            detail = last(&self.stdout);
        }
        let detail: String = detail.chars().take(200).collect();
        match self.status {
            None => format!("timed out; {detail}"),
            Some(_) => format!("exit {}: {detail}", self.code()),
        }
    }
}

/// Runs a command to completion with `input` on its standard input, killing it (by PID)
/// at the deadline.
pub(crate) fn run(
    command: &mut Command,
    input: Option<&[u8]>,
    timeout: Duration,
) -> Result<Outcome> {
    command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {command:?}"))?;
    let writer = match (input, child.stdin.take()) {
        (Some(input), Some(mut stdin)) => {
            let input = input.to_vec();
            Some(thread::spawn(move || {
                let _ = stdin.write_all(&input);
            }))
        }
        _ => None,
    };
    let stdout = reader(child.stdout.take());
    let stderr = reader(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    Ok(Outcome {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

fn reader<R: std::io::Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Runs a short command and returns its standard output, failing on a non-zero exit.
pub(crate) fn output(command: &mut Command) -> Result<String> {
    let outcome = run(command, None, Duration::from_secs(120))?;
    if !outcome.success() {
        bail!("{command:?} failed: {}", outcome.why());
    }
    Ok(outcome.stdout)
}

/// A `test-server` process on two free loopback ports (plaintext with STARTTLS, implicit TLS),
/// with one user, once it listens and has written its `ca.pem`.
pub(crate) struct TestServer {
    /// The plaintext port.
    pub(crate) port: u16,
    /// The implicit-TLS port.
    pub(crate) tls_port: u16,
    /// The CA certificate to trust.
    pub(crate) ca: PathBuf,
    /// The process, stopped on drop.
    pub(crate) service: Service,
}

/// Starts `binary` (our test-server) storing into `store`, logging to `log`.
pub(crate) fn start_test_server(
    binary: &Path,
    store: &Path,
    hostname: &str,
    (user, password): (&str, &str),
    log: &Path,
) -> Result<TestServer> {
    let (port, tls_port) = (free_port()?, free_port()?);
    let mut command = Command::new(binary);
    command
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--tls-listen", &format!("127.0.0.1:{tls_port}")])
        .arg("--store")
        .arg(store)
        .args(["--hostname", hostname])
        .args(["--user", user, "--password", password]);
    let mut service = Service::spawn("test-server", command, log)?;
    service.wait_listening(&[port, tls_port], Duration::from_secs(30))?;
    let ca = store.join("ca.pem");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ca.exists() {
        if Instant::now() > deadline {
            bail!(
                "test-server wrote no ca.pem; its log ends:\n{}",
                service.log_tail()
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
    Ok(TestServer {
        port,
        tls_port,
        ca,
        service,
    })
}
