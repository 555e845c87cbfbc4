//! `test-server explain FILE`: a stored session transcript, each line followed by its notes.

use std::process::Command;
use std::time::Duration;

use crate::support::{Client, default_server};

#[test]
fn a_stored_session_transcript_is_explained_line_by_line() {
    let server = default_server();
    let mut client = Client::connect(server.addr());
    client.expect("EHLO client.example", "250-");
    client.expect("MAIL FROM:<a@example.com>", "250 ");
    client.expect("RCPT TO:<b@example.com>", "250 ");
    client.expect("QUIT", "221 ");
    drop(client);
    let sessions = server.wait_for_sessions(1, Duration::from_secs(10));
    let path = sessions[0]
        .transcript_file
        .clone()
        .expect("the session record");
    let output = Command::new(env!("CARGO_BIN_EXE_test-server"))
        .arg("explain")
        .arg(&path)
        .output()
        .expect("test-server runs");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    let stored = std::fs::read_to_string(&path).expect("the file");
    let stripped: String = text
        .lines()
        .filter(|line| !line.starts_with("# "))
        .map(|line| format!("{line}\n"))
        .collect();
    assert_eq!(stripped, stored, "only # lines are added");
    for needle in [
        "C: MAIL FROM:<a@example.com>\n# MAIL FROM starts a transaction",
        "# answers RCPT TO: this recipient is accepted",
        "-- session ended: ",
    ] {
        assert!(text.contains(needle), "{needle:?} in\n{text}");
    }
    let missing = Command::new(env!("CARGO_BIN_EXE_test-server"))
        .args(["explain", "no/such.transcript"])
        .output()
        .expect("test-server runs");
    assert_eq!(missing.status.code(), Some(66));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read the transcript"));
}
