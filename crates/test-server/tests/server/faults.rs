//! Each injected fault, as a client sees it.

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use test_server::{Config, Faults, SessionEnd, Stage};

use crate::support::{Client, auth_config, b64, files_with, start};

fn with_faults(faults: Faults) -> Config {
    Config {
        faults,
        ..Config::default()
    }
}

#[test]
fn reject_and_tempfail_recipients() {
    let server = start(with_faults(Faults {
        reject_recipients: vec!["no@example.com".into()],
        tempfail_recipients: vec!["later@example.com".into()],
        ..Faults::default()
    }));
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250");
    c.expect("MAIL FROM:<a@example.com>", "250");
    assert_eq!(
        c.cmd("RCPT TO:<No@Example.com>"),
        "550 5.1.1 Mailbox unavailable"
    );
    assert_eq!(
        c.cmd("RCPT TO:<later@example.com>"),
        "450 4.2.0 Mailbox temporarily unavailable"
    );
    assert_eq!(c.cmd("RCPT TO:<yes@example.com>"), "250 2.1.5 Ok");
    assert!(c.data(b"x\r\n.\r\n").starts_with("250 "));
    assert_eq!(
        server.messages()[0].envelope.recipients,
        ["yes@example.com"]
    );
}

#[test]
fn tempfail_mail() {
    let server = start(with_faults(Faults {
        tempfail_mail: true,
        ..Faults::default()
    }));
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250");
    assert_eq!(
        c.cmd("MAIL FROM:<a@example.com>"),
        "451 4.3.0 Temporary failure, try again later"
    );
    assert_eq!(
        c.cmd("RCPT TO:<b@example.com>"),
        "503 5.5.1 Need MAIL before RCPT"
    );
}

#[test]
fn reject_data() {
    let server = start(with_faults(Faults {
        reject_data: true,
        ..Faults::default()
    }));
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250");
    let reply = c.send_message("a@example.com", &["b@example.com"], b"x\r\n.\r\n");
    assert_eq!(reply, "554 5.6.0 Message content rejected");
    assert!(server.messages().is_empty());
    assert_eq!(c.cmd("NOOP"), "250 2.0.0 Ok");
}

#[test]
fn drop_mid_data() {
    let server = start(with_faults(Faults {
        drop_mid_data: true,
        ..Faults::default()
    }));
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250");
    c.expect("MAIL FROM:<a@example.com>", "250");
    c.expect("RCPT TO:<b@example.com>", "250");
    c.expect("DATA", "354");
    c.send(b"Subject: x\r\n");
    assert!(
        c.try_reply().is_none(),
        "no reply, the connection is dropped"
    );
    let sessions = server.wait_for_sessions(1, Duration::from_secs(10));
    let text = sessions[0].transcript.render_text(Default::default());
    assert!(
        text.contains("-- dropping the connection mid-DATA"),
        "{text}"
    );
    assert!(server.messages().is_empty());
    assert!(files_with(server.store_dir(), "eml").is_empty());
    assert_eq!(
        sessions[0].reason,
        SessionEnd::DroppedByFault {
            fault: "drop-mid-data".into()
        }
    );
}

#[test]
fn stall_before_a_reply() {
    let server = start(with_faults(Faults {
        stall: vec![(Stage::Mail, Duration::from_millis(800))],
        ..Faults::default()
    }));
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250");
    let started = Instant::now();
    c.expect("MAIL FROM:<a@example.com>", "250 2.1.0");
    assert!(started.elapsed() >= Duration::from_millis(800));
    // Only the chosen stage stalls.
    let started = Instant::now();
    c.expect("RCPT TO:<b@example.com>", "250 2.1.5");
    assert!(started.elapsed() < Duration::from_millis(800));
    // Before the greeting, too.
    let server = start(with_faults(Faults {
        stall: vec![(Stage::Greeting, Duration::from_millis(300))],
        ..Faults::default()
    }));
    let started = Instant::now();
    let _c = Client::connect(server.addr());
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[test]
fn a_stalled_server_still_stops_promptly_on_drop() {
    let server = start(with_faults(Faults {
        stall: vec![(Stage::Greeting, Duration::from_secs(600))],
        ..Faults::default()
    }));
    let mut raw = TcpStream::connect(server.addr()).expect("connect");
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    drop(server);
    assert!(started.elapsed() < Duration::from_secs(5));
    raw.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut rest = Vec::new();
    let _ = raw.read_to_end(&mut rest);
}

#[test]
fn no_starttls() {
    let server = start(with_faults(Faults {
        no_starttls: true,
        ..Faults::default()
    }));
    let mut c = Client::connect(server.addr());
    let ehlo = c.cmd("EHLO me");
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    assert_eq!(c.cmd("STARTTLS"), "454 4.7.0 TLS not available");
}

#[test]
fn auth_login_only_and_reject_auth() {
    let mut config = auth_config();
    config.auth_without_tls = true;
    config.faults.auth_login_only = true;
    let server = start(config);
    let mut c = Client::connect(server.addr());
    let ehlo = c.cmd("EHLO me");
    assert!(ehlo.ends_with("\n250 AUTH LOGIN"), "{ehlo}");
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {}", b64(b"\0alice\0s3cret"))),
        "504 5.5.4 Unrecognized authentication type"
    );
    c.expect(&format!("AUTH LOGIN {}", b64(b"alice")), "334 ");
    c.expect(&b64(b"s3cret"), "235 ");

    let mut config = auth_config();
    config.auth_without_tls = true;
    config.faults.reject_auth = true;
    let server = start(config);
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250");
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {}", b64(b"\0alice\0s3cret"))),
        "535 5.7.8 Authentication credentials invalid"
    );
}

#[test]
fn inject_after_starttls_arrives_in_the_same_write() {
    let injected = b"250-evil\r\n250 AUTH PLAIN\r\n".to_vec();
    let server = start(with_faults(Faults {
        inject_after_starttls: Some(injected.clone()),
        ..Faults::default()
    }));
    let mut raw = TcpStream::connect(server.addr()).expect("connect");
    raw.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = [0u8; 4096];
    let n = raw.read(&mut buf).expect("greeting");
    assert!(buf[..n].starts_with(b"220 "));
    std::io::Write::write_all(&mut raw, b"EHLO me\r\n").expect("write");
    let mut got = Vec::new();
    while !got.ends_with(b"250 STARTTLS\r\n") {
        let n = raw.read(&mut buf).expect("ehlo reply");
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    std::io::Write::write_all(&mut raw, b"STARTTLS\r\n").expect("write");
    // One read returns the 220 and the injected bytes together: one write on the server.
    let n = raw.read(&mut buf).expect("starttls reply");
    let expected = [&b"220 2.0.0 Ready to start TLS\r\n"[..], &injected].concat();
    assert_eq!(&buf[..n], &expected[..]);
}
