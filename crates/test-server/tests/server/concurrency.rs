//! 200 clients at once, each sending one distinct message: all stored, none mixed up.

use std::collections::HashSet;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use test_server::Config;

use crate::support::{Client, files_with, non_final_files, start};

const CLIENTS: usize = 200;

fn body(i: usize) -> Vec<u8> {
    let mut body = format!("From: <sender{i}@example.com>\r\nSubject: message {i}\r\n\r\n");
    // Sizes differ per client so that a mix-up cannot go unnoticed.
    for line in 0..(i % 17 + 1) {
        body.push_str(&format!(
            "client {i} line {line} {}\r\n",
            "x".repeat(i % 50)
        ));
    }
    body.into_bytes()
}

#[test]
fn two_hundred_clients_at_once() {
    let server = start(Config {
        max_connections: 256,
        ..Config::default()
    });
    let addr = server.addr();
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                let mut c = Client::connect(addr);
                c.expect(&format!("EHLO client{i}.example"), "250");
                let mut wire = body(i);
                wire.extend_from_slice(b".\r\n");
                let reply = c.send_message(
                    &format!("sender{i}@example.com"),
                    &[&format!("rcpt{i}@example.com")],
                    &wire,
                );
                c.expect("QUIT", "221");
                reply
            })
        })
        .collect();
    let mut ids = HashSet::new();
    for client in clients {
        let reply = client.join().expect("client thread");
        let id = reply
            .strip_prefix("250 2.0.0 Ok: queued as ")
            .unwrap_or_else(|| panic!("unexpected reply {reply:?}"));
        assert!(ids.insert(id.to_owned()), "id {id} given twice");
    }
    let messages = server.messages();
    assert_eq!(messages.len(), CLIENTS);
    let mut seen = HashSet::new();
    for message in &messages {
        let i: usize = message
            .envelope
            .from
            .strip_prefix("sender")
            .and_then(|rest| rest.strip_suffix("@example.com"))
            .and_then(|n| n.parse().ok())
            .expect("sender index");
        assert!(seen.insert(i), "client {i} stored twice");
        assert_eq!(message.data, body(i), "client {i}");
        assert_eq!(std::fs::read(&message.path).expect("eml"), body(i));
        assert_eq!(
            message.envelope.recipients,
            [format!("rcpt{i}@example.com")]
        );
        assert_eq!(message.envelope.helo, format!("client{i}.example"));
        assert!(ids.contains(&message.id));
    }
    assert_eq!(files_with(server.store_dir(), "eml").len(), CLIENTS);
    assert_eq!(files_with(server.store_dir(), "json").len(), CLIENTS);
    assert_eq!(files_with(server.store_dir(), "transcript").len(), CLIENTS);
    assert!(non_final_files(server.store_dir()).is_empty());
    let sessions = server.wait_for_sessions(CLIENTS, Duration::from_secs(30));
    assert_eq!(sessions.len(), CLIENTS);
    // Ids are sequential: 000001 ..= 000200.
    let mut sorted: Vec<_> = ids.into_iter().collect();
    sorted.sort();
    assert_eq!(sorted.first().map(String::as_str), Some("000001"));
    assert_eq!(sorted.last().map(String::as_str), Some("000200"));
}
