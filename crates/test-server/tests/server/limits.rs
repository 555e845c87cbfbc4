//! Timeouts, the connection cap, and starting and stopping many servers.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use test_server::Config;

use crate::support::{Client, default_server, start};

#[test]
fn idle_timeout_closes_with_421() {
    let server = start(Config {
        idle_timeout: Duration::from_millis(300),
        ..Config::default()
    });
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250");
    let started = Instant::now();
    assert_eq!(
        c.reply(),
        "421 4.4.2 localhost Idle timeout, closing connection"
    );
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert!(c.try_reply().is_none());
    // Also in the middle of DATA.
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250");
    c.expect("MAIL FROM:<a@example.com>", "250");
    c.expect("RCPT TO:<b@example.com>", "250");
    c.expect("DATA", "354");
    c.send(b"Subject: slow\r\n");
    assert_eq!(
        c.reply(),
        "421 4.4.2 localhost Idle timeout, closing connection"
    );
    assert!(server.messages().is_empty());
}

#[test]
fn session_timeout_closes_a_busy_connection() {
    let server = start(Config {
        idle_timeout: Duration::from_secs(5),
        session_timeout: Duration::from_millis(600),
        ..Config::default()
    });
    let mut c = Client::connect(server.addr());
    let started = Instant::now();
    let reply = loop {
        let reply = c.cmd("NOOP");
        if !reply.starts_with("250") {
            break reply;
        }
        std::thread::sleep(Duration::from_millis(50));
        assert!(started.elapsed() < Duration::from_secs(5));
    };
    assert_eq!(
        reply,
        "421 4.4.2 localhost Session time limit exceeded, closing connection"
    );
}

#[test]
fn connections_beyond_the_cap_get_421() {
    let server = start(Config {
        max_connections: 2,
        ..Config::default()
    });
    let mut first = Client::connect(server.addr());
    let _second = Client::connect(server.addr());
    let mut third = Client::connect_raw(server.addr());
    assert_eq!(
        third.reply(),
        "421 4.3.2 Too many connections, try again later"
    );
    assert!(third.try_reply().is_none());
    first.expect("QUIT", "221");
    // The refused connection and the finished one are both sessions.
    let sessions = server.wait_for_sessions(2, Duration::from_secs(10));
    assert_eq!(sessions.len(), 2);
    // A slot is free again.
    let mut fourth = Client::connect(server.addr());
    fourth.expect("NOOP", "250");
}

#[test]
fn fifty_servers_in_a_row_start_and_stop_cleanly() {
    let mut last = None;
    for _ in 0..50 {
        let server = default_server();
        let mut c = Client::connect(server.addr());
        c.expect("QUIT", "221");
        last = Some(server.addr());
        drop(server);
    }
    // The listener is gone after drop.
    let addr = last.expect("an address");
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err());
}

#[test]
fn drop_closes_open_connections() {
    let server = default_server();
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250");
    let started = Instant::now();
    drop(server);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(c.try_reply().is_none());
}
