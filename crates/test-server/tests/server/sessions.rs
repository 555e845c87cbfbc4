//! Every finished connection keeps its transcript and the reason it ended, on disk as
//! `sessions/{id}.transcript` and `sessions/{id}.json`; faults of a kind compose; and a
//! server removes the store directory it created when asked to.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use test_server::{Config, Error, Faults, Phase, Server, Session, SessionEnd, StoredSession};

use crate::support::{Client, auth_config, b64, default_server, files_with, start};

const WAIT: Duration = Duration::from_secs(10);

fn record(store: &Path, id: &str) -> StoredSession {
    let path = store.join("sessions").join(format!("{id}.json"));
    let json = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&json).expect("a session record")
}

fn saved(session: &Session) -> String {
    let path = session.transcript_file.as_ref().expect("transcript saved");
    fs::read_to_string(path).expect("session transcript")
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("directory")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A store directory of the test's own, removed at the end of the test.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "test-server-sessions-{name}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_session_that_stored_nothing_keeps_its_transcript_and_reason() {
    let server = default_server();
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250");
    c.expect("MAIL FROM:<a@example.com>", "250");
    c.shutdown();
    let session = &server.wait_for_sessions(1, WAIT)[0];
    assert_eq!(session.id, "000001");
    assert_eq!(
        session.reason,
        SessionEnd::ClientClosed {
            during: Phase::Command
        }
    );
    assert!(session.message_ids.is_empty());
    assert_eq!(
        session.transcript_file,
        Ok(server
            .store_dir()
            .join("sessions")
            .join("000001.transcript"))
    );
    // The saved transcript is the session's, with the reason as its last note.
    let text = saved(session);
    let whole = session.transcript.render_text(Default::default());
    assert_eq!(
        text,
        format!("{whole}-- session ended: the client closed the connection without QUIT\n")
    );
    assert!(text.contains("C: MAIL FROM:<a@example.com>\nS: 250 2.1.0 Ok\n"));
    let stored = record(server.store_dir(), "000001");
    assert_eq!(
        stored,
        StoredSession {
            id: "000001".into(),
            peer: session.peer.clone(),
            started_unix_ms: stored.started_unix_ms,
            duration_ms: stored.duration_ms,
            tls: false,
            message_ids: vec![],
            reason: "client-closed".into(),
            reason_text: "the client closed the connection without QUIT".into(),
        }
    );
    assert!(stored.started_unix_ms > 0);
    // Nothing of a message is stored.
    assert!(files_with(server.store_dir(), "eml").is_empty());
    assert!(files_with(server.store_dir(), "json").is_empty());
}

/// One record per session however many messages it sent; the message files are as before.
#[test]
fn a_long_session_writes_one_record_that_lists_its_messages() {
    let server = default_server();
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250");
    for _ in 0..40 {
        let reply = c.send_message("a@example.com", &["b@example.com"], b"x\r\n.\r\n");
        assert!(reply.starts_with("250 2.0.0 Ok: queued as "), "{reply}");
    }
    c.expect("QUIT", "221");
    let session = &server.wait_for_sessions(1, WAIT)[0];
    assert_eq!(session.reason, SessionEnd::Quit);
    assert_eq!(session.message_ids.len(), 40);
    assert_eq!(
        names(&server.store_dir().join("sessions")),
        ["000001.json", "000001.transcript"]
    );
    let stored = record(server.store_dir(), "000001");
    assert_eq!(stored.message_ids, session.message_ids);
    assert_eq!(stored.reason, "quit");
    assert_eq!(stored.reason_text, "the client sent QUIT");
    let text = saved(session);
    assert!(
        text.ends_with("C: QUIT\nS: 221 2.0.0 Bye\n-- connection closed\n-- session ended: the client sent QUIT\n"),
        "{text}"
    );
    // A message's own transcript is unchanged: no session ending in it.
    let first = fs::read_to_string(server.store_dir().join("000001.transcript")).expect("read");
    assert_eq!(first, server.messages()[0].transcript);
    assert!(!first.contains("session ended"), "{first}");
    assert_eq!(files_with(server.store_dir(), "eml").len(), 40);
}

#[test]
fn session_ids_follow_the_connections_and_continue_in_a_reused_directory() {
    let scratch = Scratch::new("reuse");
    let config = || Config {
        store: Some(scratch.0.clone()),
        ..Config::default()
    };
    {
        let server = Server::start(config()).expect("start");
        for _ in 0..2 {
            Client::connect(server.addr()).expect("QUIT", "221");
        }
        let sessions = server.wait_for_sessions(2, WAIT);
        let mut ids: Vec<&str> = sessions.iter().map(|s| s.id.as_str()).collect();
        ids.sort_unstable();
        assert_eq!(ids, ["000001", "000002"]);
    }
    // A crash left a temporary file and a transcript without its record: both go, and the
    // ids continue after every id seen.
    let sessions_dir = scratch.0.join("sessions");
    fs::write(sessions_dir.join(".000005.json.tmp"), b"{").expect("write");
    fs::write(sessions_dir.join("000007.transcript"), b"-- half").expect("write");
    let server = Server::start(config()).expect("restart");
    assert_eq!(
        names(&sessions_dir),
        [
            "000001.json",
            "000001.transcript",
            "000002.json",
            "000002.transcript"
        ]
    );
    Client::connect(server.addr()).expect("QUIT", "221");
    assert_eq!(server.wait_for_sessions(1, WAIT)[0].id, "000008");
    assert_eq!(record(&scratch.0, "000008").reason, "quit");
}

#[test]
fn an_idle_timeout_is_the_reason() {
    let server = start(Config {
        idle_timeout: Duration::from_millis(100),
        ..Config::default()
    });
    let mut c = Client::connect(server.addr());
    // A command line that never ends: the transcript still shows what came.
    c.send(b"EHLO half");
    assert_eq!(
        c.reply(),
        "421 4.4.2 localhost Idle timeout, closing connection"
    );
    let session = &server.wait_for_sessions(1, WAIT)[0];
    let text = saved(session);
    assert!(
        text.contains("C: EHLO half\nS: 421 4.4.2 localhost Idle timeout, closing connection\n"),
        "{text}"
    );
    assert_eq!(
        session.reason,
        SessionEnd::IdleTimeout {
            after: Duration::from_millis(100)
        }
    );
    assert!(saved(session).ends_with(
        "-- session ended: the idle timeout passed: nothing came from the client for 100 ms \
         (421 4.4.2)\n"
    ));
}

#[test]
fn a_connection_refused_by_the_cap_is_recorded() {
    let server = start(Config {
        max_connections: 1,
        ..Config::default()
    });
    let mut first = Client::connect(server.addr());
    let mut second = Client::connect_raw(server.addr());
    assert_eq!(
        second.reply(),
        "421 4.3.2 Too many connections, try again later"
    );
    let refused = server.wait_for_sessions(1, WAIT)[0].clone();
    assert_eq!(refused.reason, SessionEnd::ConnectionCap { limit: 1 });
    assert_eq!(
        record(server.store_dir(), &refused.id).reason,
        "connection-cap"
    );
    assert!(
        saved(&refused).ends_with(
            "S: 421 4.3.2 Too many connections, try again later\n-- connection closed\n\
             -- session ended: refused: the connection cap of 1 was reached\n"
        ),
        "{}",
        saved(&refused)
    );
    first.expect("QUIT", "221");
    let sessions = server.wait_for_sessions(2, WAIT);
    assert_eq!(sessions[1].reason, SessionEnd::Quit);
}

#[test]
fn a_failed_tls_handshake_is_the_reason() {
    let server = start(Config {
        tls_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..Config::default()
    });
    // Plaintext SMTP on the implicit TLS port is no TLS ClientHello.
    let mut raw = TcpStream::connect(server.tls_addr().expect("TLS listener")).expect("connect");
    raw.write_all(b"EHLO me\r\n\r\n\r\n\r\n").expect("write");
    let mut rest = Vec::new();
    raw.set_read_timeout(Some(WAIT)).expect("timeout");
    let _ = raw.read_to_end(&mut rest);
    let session = &server.wait_for_sessions(1, WAIT)[0];
    let SessionEnd::TlsFailed { why } = &session.reason else {
        panic!("not a TLS failure: {:?}", session.reason);
    };
    assert!(!why.is_empty());
    assert!(!session.tls);
    let stored = record(server.store_dir(), &session.id);
    assert_eq!(stored.reason, "tls-failed");
    assert_eq!(
        stored.reason_text,
        format!("the TLS handshake failed: {why}")
    );
}

#[test]
fn a_tls_session_records_tls_and_redacts_secrets() {
    let server = start(auth_config());
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250");
    let mut c = c.starttls(server.ca_pem());
    c.expect("EHLO me", "250");
    c.expect(&format!("AUTH PLAIN {}", b64(b"\0alice\0s3cret")), "235");
    c.expect("QUIT", "221");
    let session = &server.wait_for_sessions(1, WAIT)[0];
    assert!(session.tls);
    assert!(record(server.store_dir(), &session.id).tls);
    let text = saved(session);
    assert!(text.contains("C: AUTH PLAIN <redacted>\n"), "{text}");
    assert!(!text.contains("s3cret") && !text.contains(&b64(b"\0alice\0s3cret")));
    // The LOGIN exchange's responses are secrets too.
    let mut config = auth_config();
    config.auth_without_tls = true;
    let server = start(config);
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250");
    c.expect("AUTH LOGIN", "334 VXNlcm5hbWU6");
    c.expect(&b64(b"alice"), "334 UGFzc3dvcmQ6");
    c.expect(&b64(b"s3cret"), "235");
    c.shutdown();
    let text = saved(&server.wait_for_sessions(1, WAIT)[0]);
    assert!(!text.contains(&b64(b"s3cret")), "{text}");
    assert_eq!(text.matches("C: <redacted>\n").count(), 2, "{text}");
    // Even a password line that never ended (the client went away mid-line) is redacted.
    let mut config = auth_config();
    config.auth_without_tls = true;
    let server = start(config);
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250");
    c.expect("AUTH LOGIN", "334 VXNlcm5hbWU6");
    c.expect(&b64(b"alice"), "334 UGFzc3dvcmQ6");
    c.send(b64(b"s3cret").as_bytes());
    c.shutdown();
    let session = &server.wait_for_sessions(1, WAIT)[0];
    assert_eq!(
        session.reason,
        SessionEnd::ClientClosed {
            during: Phase::Auth
        }
    );
    let text = saved(session);
    assert!(!text.contains(&b64(b"s3cret")), "{text}");
    assert!(
        text.ends_with(
            "C: <redacted>\n-- the client closed the connection during AUTH\n\
             -- connection closed\n-- session ended: the client closed the connection in the \
             middle of AUTH, without QUIT\n"
        ),
        "{text}"
    );
}

#[test]
fn a_pipelining_violation_is_the_reason() {
    let server = start(Config {
        pipelining: false,
        ..Config::default()
    });
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250");
    c.expect("MAIL FROM:<a@example.com>", "250");
    c.expect("RCPT TO:<b@example.com>", "250");
    c.expect("DATA", "354");
    c.send(b"x\r\n.\r\nQUIT\r\n");
    assert!(c.reply().starts_with("554 5.5.0 "));
    let session = &server.wait_for_sessions(1, WAIT)[0];
    assert_eq!(session.reason, SessionEnd::PipeliningViolation);
    assert_eq!(
        record(server.store_dir(), &session.id).reason,
        "pipelining-violation"
    );
}

#[test]
fn a_session_cut_short_by_the_server_stopping_says_so() {
    let scratch = Scratch::new("stopped");
    let server = Server::start(Config {
        store: Some(scratch.0.clone()),
        ..Config::default()
    })
    .expect("start");
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250");
    // Dropping the server closes the connection and waits for the session to be saved.
    drop(server);
    assert!(c.try_reply().is_none());
    let stored = record(&scratch.0, "000001");
    assert_eq!(stored.reason, "server-stopped");
    assert_eq!(stored.reason_text, "the server stopped");
    let text = fs::read_to_string(scratch.0.join("sessions").join("000001.transcript"))
        .expect("transcript");
    assert!(
        text.ends_with("-- the server is stopping\n-- connection closed\n-- session ended: the server stopped\n"),
        "{text}"
    );
}

#[test]
fn a_record_that_cannot_be_written_is_reported_not_fatal() {
    let server = default_server();
    let sessions_dir = server.store_dir().join("sessions");
    fs::remove_dir_all(&sessions_dir).expect("remove");
    fs::write(&sessions_dir, b"not a directory").expect("write");
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250");
    let reply = c.send_message("a@example.com", &["b@example.com"], b"x\r\n.\r\n");
    assert!(reply.starts_with("250 "), "the message is stored: {reply}");
    c.expect("QUIT", "221");
    let session = &server.wait_for_sessions(1, WAIT)[0];
    let why = session.transcript_file.as_ref().expect_err("not saved");
    assert!(
        why.starts_with(&format!(
            "cannot save the session transcript in {}: ",
            sessions_dir.display()
        )),
        "{why}"
    );
    assert_eq!(session.message_ids, ["000001"]);
    assert_eq!(session.reason, SessionEnd::Quit);
}

#[test]
fn waiting_after_the_sessions_seen_returns_only_new_ones() {
    let server = default_server();
    Client::connect(server.addr()).expect("QUIT", "221");
    let first = server.wait_for_sessions_after(0, WAIT);
    assert_eq!(first.len(), 1);
    let mut c = Client::connect(server.addr());
    c.expect("EHLO second", "250");
    c.expect("QUIT", "221");
    let second = server.wait_for_sessions_after(1, WAIT);
    assert_eq!(second.len(), 1);
    assert_ne!(second[0].id, first[0].id);
    assert!(
        second[0]
            .transcript
            .render_text(Default::default())
            .contains("C: EHLO second\n")
    );
}

#[test]
fn faults_of_a_kind_all_apply() {
    let mut faults = Faults::default();
    for spec in [
        "stall=mail:20ms",
        "stall=rcpt:10ms",
        "stall=mail:30ms",
        "reject-rcpt=one@example.com",
        "reject-rcpt=two@example.com",
        "tempfail-rcpt=three@example.com",
        "tempfail-rcpt=four@example.com",
    ] {
        faults.add(spec).expect(spec);
    }
    let server = start(Config {
        faults,
        ..Config::default()
    });
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250");
    c.expect("MAIL FROM:<a@example.com>", "250");
    for (rcpt, reply) in [
        ("one", "550 5.1.1 Mailbox unavailable"),
        ("two", "550 5.1.1 Mailbox unavailable"),
        ("three", "450 4.2.0 Mailbox temporarily unavailable"),
        ("four", "450 4.2.0 Mailbox temporarily unavailable"),
        ("five", "250 2.1.5 Ok"),
    ] {
        assert_eq!(c.cmd(&format!("RCPT TO:<{rcpt}@example.com>")), reply);
    }
    c.expect("QUIT", "221");
    let text = saved(&server.wait_for_sessions(1, WAIT)[0]);
    assert!(
        text.contains(
            "C: MAIL FROM:<a@example.com>\n-- stalling 50 ms before the mail reply (20 ms + 30 ms)\n"
        ),
        "{text}"
    );
    assert_eq!(
        text.matches("-- stalling 10 ms before the rcpt reply\n")
            .count(),
        5,
        "{text}"
    );
}

#[test]
fn several_injections_leave_in_the_same_write() {
    let mut faults = Faults::default();
    faults
        .add("inject-after-starttls=250-one\\r\\n")
        .expect("first");
    faults
        .add("inject-after-starttls=250 two\\r\\n")
        .expect("second");
    let server = start(Config {
        faults,
        ..Config::default()
    });
    let mut raw = TcpStream::connect(server.addr()).expect("connect");
    raw.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut buf = [0u8; 4096];
    let n = raw.read(&mut buf).expect("greeting");
    assert!(buf[..n].starts_with(b"220 "));
    raw.write_all(b"EHLO me\r\n").expect("write");
    let mut got = Vec::new();
    while !got.ends_with(b"250 STARTTLS\r\n") {
        let n = raw.read(&mut buf).expect("ehlo reply");
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    raw.write_all(b"STARTTLS\r\n").expect("write");
    let n = raw.read(&mut buf).expect("starttls reply");
    assert_eq!(
        &buf[..n],
        b"220 2.0.0 Ready to start TLS\r\n250-one\r\n250 two\r\n"
    );
}

#[test]
fn contradicting_faults_stop_the_server_from_starting() {
    let started = Server::start(Config {
        faults: Faults {
            reject_recipients: vec!["x@example.com".into()],
            tempfail_recipients: vec!["X@example.com".into()],
            ..Faults::default()
        },
        ..Config::default()
    });
    match started {
        Err(Error::Config(why)) => assert_eq!(
            why,
            "recipient \"x@example.com\" is given to both reject-rcpt and tempfail-rcpt; \
             keep one of them"
        ),
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[test]
fn a_created_store_is_removed_on_drop_when_asked() {
    // Asked: the directory the server created goes, even with a connection still open
    // (its session ends and is saved first).
    let server = Server::start(Config {
        remove_store_on_drop: true,
        ..Config::default()
    })
    .expect("start");
    let dir = server.store_dir().to_owned();
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250");
    assert!(
        c.send_message("a@example.com", &["b@example.com"], b"x\r\n.\r\n")
            .starts_with("250 ")
    );
    let mut open = Client::connect(server.addr());
    open.expect("EHLO me", "250");
    assert!(dir.join("000001.eml").exists());
    drop(server);
    assert!(!dir.exists(), "{} is still there", dir.display());
    assert!(open.try_reply().is_none());

    // Not asked (the default): it stays.
    let server = Server::start(Config::default()).expect("start");
    let dir = server.store_dir().to_owned();
    Client::connect(server.addr()).expect("QUIT", "221");
    server.wait_for_sessions(1, WAIT);
    drop(server);
    assert!(dir.join("sessions").join("000001.json").exists());
    fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn a_store_the_user_named_is_never_removed() {
    let scratch = Scratch::new("named");
    let server = Server::start(Config {
        store: Some(scratch.0.clone()),
        remove_store_on_drop: true,
        ..Config::default()
    })
    .expect("start");
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250");
    assert!(
        c.send_message("a@example.com", &["b@example.com"], b"x\r\n.\r\n")
            .starts_with("250 ")
    );
    c.expect("QUIT", "221");
    drop(server);
    assert_eq!(
        files_with(&scratch.0, "eml"),
        ["000001.eml"],
        "the named directory and its messages stay"
    );
    assert!(scratch.0.join("sessions").join("000001.json").exists());
}
