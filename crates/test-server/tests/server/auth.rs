//! AUTH PLAIN and LOGIN (RFC 4954): initial responses, 334 challenges, failures, order.

use std::time::Duration;

use test_server::Config;

use crate::support::{Client, auth_config, b64, start};

/// Connects, upgrades with STARTTLS and sends EHLO.
fn tls_client(server: &test_server::Server) -> Client {
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250-");
    let mut c = c.starttls(server.ca_pem());
    c.expect("EHLO me", "250-");
    c
}

#[test]
fn auth_is_offered_only_after_tls() {
    let server = start(auth_config());
    let mut c = Client::connect(server.addr());
    let ehlo = c.cmd("EHLO me");
    assert!(!ehlo.contains("AUTH"), "{ehlo}");
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {}", b64(b"\0alice\0s3cret"))),
        "538 5.7.11 Encryption required for requested authentication mechanism"
    );
    assert_eq!(
        c.cmd("MAIL FROM:<a@example.com>"),
        "530 5.7.0 Must issue a STARTTLS command first"
    );
    let mut c = c.starttls(server.ca_pem());
    let ehlo = c.cmd("EHLO me");
    assert!(ehlo.ends_with("\n250 AUTH PLAIN LOGIN"), "{ehlo}");
    assert_eq!(
        c.cmd("MAIL FROM:<a@example.com>"),
        "530 5.7.0 Authentication required"
    );
}

#[test]
fn auth_plain_with_initial_response() {
    let server = start(auth_config());
    let mut c = tls_client(&server);
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {}", b64(b"\0alice\0s3cret"))),
        "235 2.7.0 Authentication successful"
    );
    assert_eq!(
        c.cmd("AUTH PLAIN AGFsaWNlAHMzY3JldA=="),
        "503 5.5.1 Already authenticated"
    );
    let reply = c.send_message("alice@example.com", &["b@example.com"], b"hi\r\n.\r\n");
    assert!(reply.starts_with("250 "), "{reply}");
    assert_eq!(
        server.messages()[0].envelope.auth_user.as_deref(),
        Some("alice")
    );
}

#[test]
fn auth_plain_with_empty_challenge_and_authzid() {
    let server = start(auth_config());
    let mut c = tls_client(&server);
    assert_eq!(c.cmd("AUTH PLAIN"), "334 ");
    assert_eq!(
        c.cmd(&b64(b"alice\0alice\0s3cret")),
        "235 2.7.0 Authentication successful"
    );
}

#[test]
fn auth_login_with_challenges_and_with_initial_response() {
    let server = start(auth_config());
    let mut c = tls_client(&server);
    assert_eq!(c.cmd("AUTH LOGIN"), "334 VXNlcm5hbWU6");
    assert_eq!(c.cmd(&b64(b"alice")), "334 UGFzc3dvcmQ6");
    assert_eq!(
        c.cmd(&b64(b"s3cret")),
        "235 2.7.0 Authentication successful"
    );
    let mut c = tls_client(&server);
    assert_eq!(
        c.cmd(&format!("auth login {}", b64(b"alice"))),
        "334 UGFzc3dvcmQ6"
    );
    assert_eq!(
        c.cmd(&b64(b"s3cret")),
        "235 2.7.0 Authentication successful"
    );
}

#[test]
fn wrong_credentials_cancel_and_bad_base64() {
    let server = start(auth_config());
    let mut c = tls_client(&server);
    let bad = "535 5.7.8 Authentication credentials invalid";
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {}", b64(b"\0alice\0wrong"))),
        bad
    );
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {}", b64(b"\0mallory\0s3cret"))),
        bad
    );
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {}", b64(b"bob\0alice\0s3cret"))),
        bad
    );
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {}", b64(b"alice-s3cret"))),
        "501 5.5.2 Malformed PLAIN response"
    );
    assert_eq!(
        c.cmd("AUTH PLAIN !!!notbase64"),
        "501 5.5.2 Cannot decode base64 response"
    );
    assert_eq!(c.cmd("AUTH LOGIN"), "334 VXNlcm5hbWU6");
    assert_eq!(c.cmd("*"), "501 5.7.0 Authentication cancelled");
    assert_eq!(c.cmd("AUTH PLAIN"), "334 ");
    assert_eq!(c.cmd("*"), "501 5.7.0 Authentication cancelled");
    assert_eq!(
        c.cmd("AUTH CRAM-MD5"),
        "504 5.5.4 Unrecognized authentication type"
    );
    assert_eq!(
        c.cmd("AUTH PLAIN a b"),
        "501 5.5.4 Syntax error: AUTH takes a mechanism and an optional initial response"
    );
    // Still able to authenticate after all that.
    c.expect(&format!("AUTH PLAIN {}", b64(b"\0alice\0s3cret")), "235 ");
}

#[test]
fn auth_sequencing() {
    let server = start(Config {
        auth_without_tls: true,
        ..auth_config()
    });
    let mut c = Client::connect(server.addr());
    assert_eq!(
        c.cmd("AUTH PLAIN AGFsaWNlAHMzY3JldA=="),
        "503 5.5.1 Send EHLO first"
    );
    c.expect("HELO me", "250 ");
    assert_eq!(
        c.cmd("AUTH PLAIN AGFsaWNlAHMzY3JldA=="),
        "503 5.5.1 Send EHLO first"
    );
    // auth_without_tls: offered in plaintext.
    let ehlo = c.cmd("EHLO me");
    assert!(ehlo.contains("250 AUTH PLAIN LOGIN"), "{ehlo}");
    c.expect("AUTH PLAIN AGFsaWNlAHMzY3JldA==", "235 ");
    assert_eq!(c.cmd("AUTH LOGIN"), "503 5.5.1 Already authenticated");
    let server = start(Config {
        auth_without_tls: true,
        users: vec![],
        ..Config::default()
    });
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250");
    assert_eq!(c.cmd("AUTH LOGIN"), "502 5.5.1 Authentication not enabled");
}

#[test]
fn auth_during_a_transaction_is_refused() {
    let server = start(Config {
        auth_without_tls: true,
        ..auth_config()
    });
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250");
    c.expect(&format!("AUTH PLAIN {}", b64(b"\0alice\0s3cret")), "235 ");
    c.expect("MAIL FROM:<alice@example.com>", "250");
    assert_eq!(
        c.cmd("AUTH LOGIN"),
        "503 5.5.1 AUTH not allowed during a mail transaction"
    );
    c.expect("RSET", "250");
    assert_eq!(c.cmd("AUTH LOGIN"), "503 5.5.1 Already authenticated");
}

#[test]
fn secrets_never_reach_the_stored_transcript() {
    let server = start(auth_config());
    let mut c = tls_client(&server);
    c.expect("AUTH LOGIN", "334 ");
    c.expect(&b64(b"alice"), "334 ");
    c.expect(&b64(b"s3cret"), "235 ");
    let reply = c.send_message(
        "alice@example.com",
        &["b@example.com"],
        b"Subject: s\r\n\r\nbody\r\n.\r\n",
    );
    assert!(reply.starts_with("250 "));
    c.expect("QUIT", "221");
    let message = &server.messages()[0];
    let stored =
        std::fs::read_to_string(message.path.with_extension("transcript")).expect("transcript");
    assert_eq!(stored, message.transcript);
    for secret in [
        "s3cret".to_owned(),
        b64(b"s3cret"),
        b64(b"\0alice\0s3cret"),
        b64(b"alice"),
    ] {
        assert!(!stored.contains(&secret), "{secret} in:\n{stored}");
    }
    assert!(stored.contains("C: <redacted>\n"), "{stored}");
    let session = &server.wait_for_sessions(1, Duration::from_secs(10))[0];
    let text = session.transcript.render_text(Default::default());
    assert!(!text.contains(&b64(b"s3cret")));
}
