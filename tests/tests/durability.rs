//! No lost mail: the test server is killed with SIGKILL at arbitrary moments while clients
//! send. After each restart, every message that got `250` is complete on disk, with its
//! envelope and transcript, and nothing half-written is visible (nor among the session
//! records).
//!
//! The server runs in a child process: this test binary re-runs itself with
//! `DURABILITY_CHILD_STORE` set, and then `child_server` starts a server and waits to be killed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use test_server::{Config, Server};
use workspace_tests::{Scenario, TempDir, job_at};

const STORE_VAR: &str = "DURABILITY_CHILD_STORE";
const PORT_FILE_VAR: &str = "DURABILITY_CHILD_PORT_FILE";

/// In the child process: serve until killed. In the normal test run: does nothing.
#[test]
fn child_server() {
    let (Some(store), Some(port_file)) =
        (std::env::var_os(STORE_VAR), std::env::var_os(PORT_FILE_VAR))
    else {
        return;
    };
    let config = Config {
        store: Some(PathBuf::from(store)),
        max_connections: 0,
        ..Config::default()
    };
    let server = Server::start(config).expect("the child server starts");
    std::fs::write(&port_file, server.addr().port().to_string()).expect("port file");
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// Starts the child server; the caller kills and waits for it.
#[allow(clippy::zombie_processes)]
fn start_child(store: &Path, port_file: &Path) -> (Child, u16) {
    let _ = std::fs::remove_file(port_file);
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "child_server", "--nocapture", "--test-threads=1"])
        .env(STORE_VAR, store)
        .env(PORT_FILE_VAR, port_file)
        .spawn()
        .expect("spawn the child server");
    let started = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(port_file)
            && let Ok(port) = text.trim().parse()
        {
            return (child, port);
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child server never started");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn acknowledged_messages_survive_sigkill() {
    let dir = TempDir::new("durability");
    let store = dir.path().join("store");
    let port_file = dir.path().join("port");
    // Acknowledged id -> the exact bytes sent.
    let acknowledged: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
    let counter = Arc::new(AtomicU32::new(0));
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..6 {
        let (mut child, port) = start_child(&store, &port_file);
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..3)
            .map(|_| {
                let (stop, acknowledged, counter) =
                    (stop.clone(), acknowledged.clone(), counter.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let n = counter.fetch_add(1, Ordering::Relaxed);
                        let body = format!(
                            "message {n}\n{}\n",
                            "x".repeat(70).repeat((n % 50) as usize + 1)
                        );
                        let id = format!("durability-{n}@example.com");
                        let scenario = Scenario::new(
                            "none",
                            &["--body", &body, "--message-id", &id, "--timeout", "2s"],
                        );
                        let addr = ([127, 0, 0, 1], port).into();
                        let Ok(job) = job_at(&scenario, addr, None) else {
                            continue;
                        };
                        let (_, result) = raw_client::send(&job, &raw_client::Settings::default());
                        if let Ok(cli::Sent {
                            reply: Some(reply), ..
                        }) = result
                        {
                            let text = reply.lines.join(" ");
                            let queued = text.rsplit(' ').next().unwrap_or_default().to_owned();
                            let bytes = job.message.to_bytes().expect("render");
                            if let Ok(mut map) = acknowledged.lock() {
                                map.insert(queued, bytes);
                            }
                        }
                    }
                })
            })
            .collect();
        // A pseudo-random moment between 50 and 450 ms.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(50 + seed % 400));
        child.kill().expect("SIGKILL the server");
        let _ = child.wait();
        stop.store(true, Ordering::Relaxed);
        for client in clients {
            let _ = client.join();
        }
        let acked = acknowledged.lock().map(|m| m.len()).unwrap_or(0);
        eprintln!("round {round}: {acked} messages acknowledged so far");
    }
    // Reopening the store recovers: temp files and orphans go, acknowledged messages stay.
    let (mut child, _) = start_child(&store, &port_file);
    child.kill().expect("kill");
    let _ = child.wait();
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(
        acknowledged.len() > 20,
        "the test sent too little to mean anything: {}",
        acknowledged.len()
    );
    for (id, bytes) in &acknowledged {
        let eml = std::fs::read(store.join(format!("{id}.eml")))
            .unwrap_or_else(|e| panic!("acknowledged message {id} is missing: {e}"));
        assert_eq!(&eml, bytes, "message {id} is not complete");
        let json = std::fs::read_to_string(store.join(format!("{id}.json"))).expect("envelope");
        assert!(json.contains("\"from\": \"alice@example.com\""), "{json}");
        assert!(store.join(format!("{id}.transcript")).exists());
    }
    for entry in std::fs::read_dir(&store).expect("store") {
        let entry = entry.expect("entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "sessions" && entry.path().is_dir() {
            continue;
        }
        assert!(
            !name.ends_with(".tmp"),
            "a temporary file is visible after recovery: {name}"
        );
        let stem = name.split('.').next().unwrap_or_default().to_owned();
        assert!(
            store.join(format!("{stem}.eml")).exists(),
            "{name} has no .eml"
        );
    }
    // The session records: none half-written, every transcript with its record, and every
    // record a session that ended before the kill.
    let sessions = store.join("sessions");
    let mut records = 0;
    for entry in std::fs::read_dir(&sessions).expect("sessions") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        assert!(!name.ends_with(".tmp"), "a temporary session file: {name}");
        let stem = name.split('.').next().unwrap_or_default().to_owned();
        assert!(
            sessions.join(format!("{stem}.json")).exists(),
            "{name} has no .json"
        );
        if name.ends_with(".json") {
            let json = std::fs::read_to_string(sessions.join(&name)).expect("record");
            assert!(json.contains("\"reason\": \""), "{json}");
            records += 1;
        }
    }
    assert!(records > 0, "no session was recorded");
}
