//! STARTTLS (RFC 3207) and implicit TLS (RFC 8314) with the generated certificate.

use std::net::SocketAddr;
use std::time::Duration;

use test_server::Config;

use crate::support::{Client, auth_config, default_server, start};

#[test]
fn starttls_upgrades_and_resets_the_session() {
    let server = default_server();
    let mut c = Client::connect(server.addr());
    c.expect("EHLO before", "250-");
    c.expect("MAIL FROM:<a@example.com>", "250");
    assert_eq!(
        c.cmd("STARTTLS now"),
        "501 5.5.4 Syntax error: STARTTLS takes no parameters"
    );
    let mut c = c.starttls(server.ca_pem());
    // Everything from before TLS is forgotten (RFC 3207 §4.2): no EHLO, no transaction.
    assert_eq!(
        c.cmd("MAIL FROM:<a@example.com>"),
        "503 5.5.1 Send EHLO or HELO first"
    );
    let ehlo = c.cmd("EHLO after");
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    assert_eq!(c.cmd("STARTTLS"), "503 5.5.1 TLS already active");
    let reply = c.send_message(
        "a@example.com",
        &["b@example.com"],
        b"Subject: t\r\n\r\nx\r\n.\r\n",
    );
    assert!(reply.starts_with("250 "), "{reply}");
    c.expect("QUIT", "221");
    let message = &server.messages()[0];
    assert!(message.envelope.tls);
    assert_eq!(message.envelope.helo, "after");
    let session = &server.wait_for_sessions(1, Duration::from_secs(10))[0];
    let whole = session.transcript.render_text(Default::default());
    assert!(whole.starts_with("-- client connected\nS: 220 localhost ESMTP test-server ready\n"));
    assert!(
        whole.contains(
            "S: 220 2.0.0 Ready to start TLS\n-- TLS established\nC: MAIL FROM:<a@example.com>\n"
        ),
        "{whole}"
    );
    assert!(whole.ends_with("-- connection closed\n"), "{whole}");
    let after = session.after_tls.render_text(Default::default());
    assert!(
        after.starts_with("C: MAIL FROM:<a@example.com>\nS: 503"),
        "{after}"
    );
    assert!(!after.contains("EHLO before"));
}

#[test]
fn bytes_pipelined_after_starttls_are_discarded() {
    let server = start(auth_config());
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250-");
    // The STARTTLS command injection: commands in the same segment as STARTTLS must not
    // run after the handshake.
    let injected = b"MAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.com>\r\n";
    c.send(&[&b"STARTTLS\r\n"[..], injected].concat());
    assert_eq!(c.reply(), "220 2.0.0 Ready to start TLS");
    assert!(c.buffered().is_empty());
    let mut c = c.handshake_now(server.ca_pem());
    c.expect("EHLO me", "250-");
    // Had the injected MAIL run, this would be a nested MAIL.
    c.expect("AUTH PLAIN AGFsaWNlAHMzY3JldA==", "235 ");
    assert_eq!(c.cmd("MAIL FROM:<good@example.com>"), "250 2.1.0 Ok");
    assert_eq!(c.cmd("DATA"), "554 5.5.1 No valid recipients");
    c.expect("QUIT", "221");
    let session = &server.wait_for_sessions(1, Duration::from_secs(10))[0];
    let text = session.transcript.render_text(Default::default());
    assert!(
        text.contains(&format!(
            "-- discarded {} bytes the client sent before the TLS handshake\n",
            injected.len()
        )),
        "{text}"
    );
}

#[test]
fn implicit_tls_listener() {
    let server = start(Config {
        tls_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..auth_config()
    });
    let tls_addr = server.tls_addr().expect("TLS listener");
    assert_ne!(tls_addr, server.addr());
    // The leaf certificate is valid for the IP address too.
    for name in ["localhost", "127.0.0.1"] {
        let mut c = Client::connect_tls(tls_addr, server.ca_pem(), name);
        let ehlo = c.cmd("EHLO me");
        assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
        assert!(ehlo.ends_with("250 AUTH PLAIN LOGIN"), "{ehlo}");
        assert_eq!(c.cmd("STARTTLS"), "503 5.5.1 TLS already active");
        c.expect("AUTH PLAIN AGFsaWNlAHMzY3JldA==", "235 2.7.0");
        let reply = c.send_message("a@example.com", &["b@example.com"], b"x\r\n.\r\n");
        assert!(reply.starts_with("250 "), "{reply}");
        c.expect("QUIT", "221");
    }
    let messages = server.messages();
    assert_eq!(messages.len(), 2);
    assert!(messages.iter().all(|m| m.envelope.tls));
    assert_eq!(messages[0].envelope.auth_user.as_deref(), Some("alice"));
    let sessions = server.wait_for_sessions(2, Duration::from_secs(10));
    let text = sessions[0].transcript.render_text(Default::default());
    assert!(
        text.starts_with("-- client connected\n-- TLS established\nS: 220 "),
        "{text}"
    );
}

#[test]
fn a_given_certificate_is_served_and_returned_as_ca_pem() {
    let key = rcgen::KeyPair::generate().expect("key");
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    let cert = params.self_signed(&key).expect("cert");
    // rustls refuses a self-signed end-entity certificate as its own root, so check the
    // chain PEM is what is returned and that the server starts and serves STARTTLS.
    let server = start(Config {
        certificate: Some((cert.pem(), key.serialize_pem())),
        ..Config::default()
    });
    assert_eq!(server.ca_pem(), cert.pem());
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250-");
    c.expect("STARTTLS", "220 2.0.0");
    assert!(matches!(
        test_server::Server::start(Config {
            certificate: Some(("not a pem".into(), "no key".into())),
            ..Config::default()
        }),
        Err(test_server::Error::Certificate(_))
    ));
}

#[test]
fn a_failed_handshake_is_recorded_and_ends_the_session() {
    let server = default_server();
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250-");
    c.expect("STARTTLS", "220 ");
    c.send(b"this is not a TLS ClientHello\r\n");
    assert!(c.closed());
    let session = &server.wait_for_sessions(1, Duration::from_secs(10))[0];
    let text = session.transcript.render_text(Default::default());
    assert!(text.contains("-- TLS handshake failed: "), "{text}");
    assert!(server.messages().is_empty());
}
