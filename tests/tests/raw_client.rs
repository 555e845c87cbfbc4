//! raw-client against the test server over real sockets: each injected fault ends with the
//! right exit code, one clear sentence quoting the server, and the right thing stored.

use std::time::Duration;

use cli::Exit;
use test_server::{Config, Stage};
use workspace_tests::{Client, ClientRun, Scenario, TempDir, job, run, run_job};

const PIPELINING: Client = Client::Raw(raw_client::Settings {
    pipelining: true,
    repeat: 1,
    ..raw_client::Settings::DEFAULT
});

fn failure(run: &ClientRun) -> (Exit, String) {
    match &run.result {
        Ok(_) => panic!("expected a failure, got success:\n{}", run.text),
        Err(failure) => (failure.exit(), failure.to_string()),
    }
}

fn login() -> Scenario {
    Scenario::new("starttls", &[]).with_login()
}

#[test]
fn sends_and_the_server_stores_exactly_the_rendered_bytes() {
    let scenario = login();
    let run = run(Client::RAW, &scenario);
    assert_eq!(run.exit(), Exit::Sent, "{}", run.text);
    let server = scenario.start_server();
    let job = job(&scenario, &server).expect("job");
    assert_eq!(run.stored.len(), 1);
    assert_eq!(run.stored[0].data, job.message.to_bytes().expect("render"));
    assert_eq!(run.stored[0].envelope.from, "alice@example.com");
    assert!(
        run.text
            .ends_with("C: QUIT\nS: 221 2.0.0 Bye\n-- connection closed\n")
    );
}

#[test]
fn recipient_rejected() {
    let scenario = Scenario::new(
        "starttls",
        &["--to", "a@example.org", "--to", "gone@example.org"],
    )
    .with_login()
    .server(|c| c.faults.reject_recipients = vec!["gone@example.org".into()]);
    let run = run(Client::RAW, &scenario);
    let (exit, message) = failure(&run);
    assert_eq!(exit, Exit::Unavailable);
    assert_eq!(
        message,
        "the server rejected RCPT TO:<gone@example.org> with \"550 5.1.1 Mailbox unavailable\""
    );
    assert!(run.stored.is_empty());
    assert!(
        run.text.contains("C: QUIT\n"),
        "a polite QUIT after the rejection"
    );
}

#[test]
fn recipient_temporarily_failed() {
    let scenario =
        login().server(|c| c.faults.tempfail_recipients = vec!["bob@example.org".into()]);
    let run = run(Client::RAW, &scenario);
    let (exit, message) = failure(&run);
    assert_eq!(exit, Exit::TempFail);
    assert!(
        message.contains("RCPT TO:<bob@example.org> with \"450"),
        "{message}"
    );
    assert!(run.stored.is_empty());
}

#[test]
fn mail_temporarily_failed() {
    let run = run(
        Client::RAW,
        &login().server(|c| c.faults.tempfail_mail = true),
    );
    let (exit, message) = failure(&run);
    assert_eq!(exit, Exit::TempFail);
    assert!(
        message.starts_with("the server rejected MAIL FROM:<alice@example.com> with \"451"),
        "{message}"
    );
}

#[test]
fn data_rejected_at_the_end() {
    let run = run(
        Client::RAW,
        &login().server(|c| c.faults.reject_data = true),
    );
    let (exit, message) = failure(&run);
    assert_eq!(exit, Exit::Unavailable);
    assert!(
        message.starts_with("the server rejected the message data with \"554"),
        "{message}"
    );
    assert!(run.stored.is_empty());
}

#[test]
fn auth_rejected() {
    let run = run(
        Client::RAW,
        &login().server(|c| c.faults.reject_auth = true),
    );
    let (exit, message) = failure(&run);
    assert_eq!(exit, Exit::NoPerm);
    assert!(
        message.starts_with("authentication failed: the server answered \"535 5.7.8"),
        "{message}"
    );
    assert!(!run.text.contains("MAIL FROM"));
}

#[test]
fn auth_login_when_plain_is_not_offered() {
    let run = run(
        Client::RAW,
        &login().server(|c| c.faults.auth_login_only = true),
    );
    assert_eq!(run.exit(), Exit::Sent, "{}", run.text);
    assert!(run.text.contains("C: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\nC: <redacted>\nS: 334 UGFzc3dvcmQ6\nC: <redacted>\nS: 235"));
    assert_eq!(run.stored[0].envelope.auth_user.as_deref(), Some("alice"));
}

#[test]
fn no_starttls_offered_stops_before_auth_and_mail() {
    let run = run(
        Client::RAW,
        &login().server(|c| c.faults.no_starttls = true),
    );
    let (exit, message) = failure(&run);
    assert_eq!(exit, Exit::Config);
    assert!(
        message.starts_with("TLS is required but the server does not offer STARTTLS"),
        "{message}"
    );
    let server_saw = String::from_utf8_lossy(&run.server_received()).into_owned();
    assert_eq!(server_saw, "EHLO client.example\r\nQUIT\r\n");
}

#[test]
fn bytes_injected_after_starttls_are_refused() {
    let scenario = login().server(|c| {
        c.faults.inject_after_starttls = Some(b"250-evil\r\n250 AUTH LOGIN\r\n".to_vec());
    });
    let run = run(Client::RAW, &scenario);
    let (exit, message) = failure(&run);
    assert_eq!(exit, Exit::Protocol);
    assert!(
        message.contains("after its STARTTLS reply, before the TLS handshake"),
        "{message}"
    );
    let session = run.session.as_ref().expect("session");
    let received = String::from_utf8_lossy(&session.transcript.client_bytes()).into_owned();
    assert!(
        received.ends_with("STARTTLS\r\n"),
        "nothing written after STARTTLS: {received:?}"
    );
}

#[test]
fn connection_dropped_mid_data() {
    let run = run(
        Client::RAW,
        &login().server(|c| c.faults.drop_mid_data = true),
    );
    let (exit, message) = failure(&run);
    assert_eq!(exit, Exit::TempFail);
    assert!(
        message.starts_with("the server closed the connection"),
        "{message}"
    );
    assert!(run.stored.is_empty());
}

#[test]
fn stalled_server_times_out() {
    for stage in [Stage::Greeting, Stage::Mail, Stage::EndOfData] {
        let scenario = Scenario::new(
            "starttls",
            &["--timeout", "500ms", "--data-timeout", "500ms"],
        )
        .with_login()
        .server(|c| c.faults.stall = vec![(stage, Duration::from_secs(3))]);
        let run = run(Client::RAW, &scenario);
        let (exit, message) = failure(&run);
        assert_eq!(exit, Exit::TempFail, "{stage:?}");
        // A silent greeting hints at the 465/587 mix-up; a silent end of data names
        // --data-timeout and says the message may have arrived.
        let expected = match stage {
            Stage::Greeting => "the server sent no greeting within the timeout",
            Stage::EndOfData => "the server did not answer the end of the message data in time",
            _ => "the server did not answer in time while waiting for the reply to MAIL FROM",
        };
        assert!(message.starts_with(expected), "{stage:?}: {message}");
        assert!(
            run.elapsed < Duration::from_secs(2),
            "{stage:?} took {:?}",
            run.elapsed
        );
    }
}

#[test]
fn certificate_not_trusted_without_the_ca() {
    let scenario = login();
    let server = scenario.start_server();
    let mut job = job(&scenario, &server).expect("job");
    job.verify.ca_pem = None;
    let run = run_job(Client::RAW, &job, Some(&server));
    let (exit, message) = failure(&run);
    assert_eq!(exit, Exit::Config);
    assert!(
        message.starts_with("the server certificate is not valid for 127.0.0.1"),
        "{message}"
    );
    assert!(message.contains("--ca-file"));
}

#[test]
fn certificate_for_another_name_is_refused() {
    let scenario = login();
    let server = scenario.start_server();
    let mut job = job(&scenario, &server).expect("job");
    job.tls_name = "mail.example.com".into();
    let run = run_job(Client::RAW, &job, Some(&server));
    let (exit, message) = failure(&run);
    assert_eq!(exit, Exit::Config);
    assert!(
        message.contains("not valid for mail.example.com"),
        "{message}"
    );
}

#[test]
fn insecure_accepts_any_certificate_and_says_so() {
    let scenario = login();
    let server = scenario.start_server();
    let mut job = job(&scenario, &server).expect("job");
    job.verify = cli::Verify {
        ca_pem: None,
        insecure: true,
        pin_sha256: None,
    };
    let run = run_job(Client::RAW, &job, Some(&server));
    assert_eq!(run.exit(), Exit::Sent);
    assert!(
        run.text
            .starts_with("-- certificate verification disabled (--insecure)\n")
    );
}

#[test]
fn ipv6_loopback() {
    let config = Config {
        listen: "[::1]:0".parse().expect("address"),
        users: vec![("alice".into(), "s3cret-Pa55".into())],
        ..Config::default()
    };
    let scenario = Scenario::new("starttls", &[])
        .with_login()
        .server(|c| *c = config);
    let run = run(Client::RAW, &scenario);
    assert_eq!(run.exit(), Exit::Sent, "{}", run.text);
    assert!(
        run.text.starts_with("-- connected to [::1]:PORT\n"),
        "{}",
        run.text
    );
}

#[test]
fn line_breaks_in_input_are_refused_before_connecting() {
    let cases: &[&[&str]] = &[
        &["--helo-name", "a\r\nMAIL FROM:<x@y>"],
        &["--to", "bob@example.org\r\nRCPT TO:<eve@example.org>"],
        &["--from", "alice@example.com\nX: y"],
        &["--subject", "hi\r\nBcc: eve@example.org"],
        &["--header", "X-Test: a\r\nBcc: eve@example.org"],
    ];
    for extra in cases {
        let scenario = Scenario::new("starttls", extra).with_login();
        let server = scenario.start_server();
        let failure = job(&scenario, &server).expect_err("refused");
        assert_eq!(failure.exit(), Exit::DataErr, "{extra:?}: {failure}",);
        assert!(server.sessions().is_empty(), "nothing was sent");
    }
}

#[test]
fn missing_attachment_is_refused_before_connecting() {
    let dir = TempDir::new("missing");
    let missing = dir.path().join("nope.pdf").display().to_string();
    let scenario = Scenario::new("starttls", &["--attach", &missing]).with_login();
    let server = scenario.start_server();
    let failure = job(&scenario, &server).expect_err("refused");
    assert_eq!(failure.exit(), Exit::NoInput);
    assert!(failure.to_string().contains("nope.pdf"), "{failure}",);
}

#[test]
fn pipelined_group_with_a_rejected_recipient_delivers_nothing() {
    let scenario = Scenario::new(
        "starttls",
        &["--to", "a@example.org", "--to", "gone@example.org"],
    )
    .with_login()
    .server(|c| c.faults.reject_recipients = vec!["gone@example.org".into()]);
    let run = run(PIPELINING, &scenario);
    let (exit, message) = failure(&run);
    assert_eq!(exit, Exit::Unavailable);
    assert!(message.contains("RCPT TO:<gone@example.org>"), "{message}");
    assert!(
        run.stored.is_empty(),
        "the connection was dropped inside DATA"
    );
}

#[test]
fn pipelined_group_with_no_accepted_recipient_sends_a_lone_dot() {
    let scenario = Scenario::new("starttls", &["--to", "gone@example.org"])
        .with_login()
        .server(|c| c.faults.reject_recipients = vec!["gone@example.org".into()]);
    let run = run(PIPELINING, &scenario);
    let (exit, _) = failure(&run);
    assert_eq!(exit, Exit::Unavailable);
    assert!(run.stored.is_empty());
    let received = String::from_utf8_lossy(&run.server_received()).into_owned();
    assert!(
        !received.contains("Subject:"),
        "no message content was sent: {received:?}"
    );
}

#[test]
fn pipelined_replies_are_read_in_order() {
    let scenario = Scenario::new(
        "starttls",
        &[
            "--to",
            "a@example.org",
            "--cc",
            "b@example.org",
            "--bcc",
            "c@example.org",
        ],
    )
    .with_login();
    let run = run(PIPELINING, &scenario);
    assert_eq!(run.exit(), Exit::Sent, "{}", run.text);
    assert_eq!(
        run.stored[0].envelope.recipients,
        ["a@example.org", "b@example.org", "c@example.org"]
    );
    // RFC 4954 §4 lets AUTH PLAIN with its initial response lead the group.
    assert!(
        run.text.contains(
            "C: AUTH PLAIN <redacted>\nC: MAIL FROM:<alice@example.com>\nC: RCPT TO:<a@example.org>\n\
             C: RCPT TO:<b@example.org>\nC: RCPT TO:<c@example.org>\nC: DATA\n\
             S: 235 2.7.0 Authentication successful\nS: 250 2.1.0 Ok\nS: 250 2.1.5 Ok\n\
             S: 250 2.1.5 Ok\nS: 250 2.1.5 Ok\nS: 354 "
        ),
        "{}",
        run.text
    );
    // The message, its end and QUIT go out in one flight.
    assert!(
        run.text
            .contains("C: .\nC: QUIT\nS: 250 2.0.0 Ok: queued as 000001\nS: 221"),
        "{}",
        run.text
    );
}

#[test]
fn pinned_certificate() {
    let scenario = login();
    let server = scenario.start_server();
    let mut job = job(&scenario, &server).expect("job");
    // A wrong pin is refused, and the sentence tells the real fingerprint.
    job.verify = cli::Verify {
        ca_pem: None,
        insecure: false,
        pin_sha256: Some([0; 32]),
    };
    let run = run_job(Client::RAW, &job, Some(&server));
    let (exit, message) = failure(&run);
    assert_eq!(exit, Exit::Config);
    let fingerprint = message
        .split("fingerprint is ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .map(|fingerprint| fingerprint.trim_end_matches(|c: char| !c.is_ascii_hexdigit()))
        .unwrap_or_else(|| panic!("no fingerprint in: {message}"))
        .to_owned();
    assert_eq!(fingerprint.len(), 32 * 3 - 1, "{fingerprint}");
    // The right pin is accepted without any CA.
    let hex: String = fingerprint.chars().filter(|&c| c != ':').collect();
    let mut pin = [0u8; 32];
    for (i, byte) in pin.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex");
    }
    job.verify.pin_sha256 = Some(pin);
    let run = run_job(Client::RAW, &job, Some(&server));
    assert_eq!(run.exit(), Exit::Sent, "{}", run.text);
    // lettre has no way to pin: lib-client says so instead of ignoring the option.
    let lib = run_job(Client::Lib, &job, Some(&server));
    assert_eq!(lib.exit(), Exit::Usage);
}

#[test]
fn repeat_sends_the_message_n_times_on_one_connection() {
    for pipelining in [false, true] {
        let scenario = login();
        let server = scenario.start_server();
        let job = job(&scenario, &server).expect("job");
        let settings = raw_client::Settings {
            pipelining,
            repeat: 5,
            ..raw_client::Settings::DEFAULT
        };
        let accepted = std::sync::atomic::AtomicU32::new(0);
        let count = || {
            accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        };
        let (transcript, result) = raw_client::send_observed(&job, &settings, &count);
        result.expect("sent");
        assert_eq!(accepted.into_inner(), 5);
        let sessions = server.wait_for_sessions(1, Duration::from_secs(10));
        assert_eq!(sessions.len(), 1, "one connection");
        let stored = server.messages();
        assert_eq!(stored.len(), 5, "pipelining {pipelining}");
        let bytes = job.message.to_bytes().expect("render");
        assert!(stored.iter().all(|m| m.data == bytes));
        let text = transcript.render_text(Default::default());
        assert!(
            text.contains("-- the next 4 messages on this connection are not recorded\n"),
            "{text}"
        );
        if pipelining {
            // RFC 2920: the next MAIL group rides with the previous message's end of data.
            let server_side = sessions[0].transcript.render_text(Default::default());
            assert_eq!(server_side.matches("C: AUTH PLAIN").count(), 1);
        }
    }
}

#[test]
fn connections_run_in_parallel() {
    let scenario = login();
    let server = scenario.start_server();
    let job = job(&scenario, &server).expect("job");
    let settings = raw_client::Settings {
        pipelining: true,
        repeat: 3,
        ..raw_client::Settings::DEFAULT
    };
    let (_, result) = raw_client::send_many(&job, &settings, 4, &|| {});
    let report = result.expect("sent");
    assert_eq!(report.messages, 12);
    assert_eq!(report.connections, 4);
    assert_eq!(
        server.wait_for_sessions(4, Duration::from_secs(10)).len(),
        4
    );
    assert_eq!(server.messages().len(), 12);
    assert!(report.percentile(50.0) <= report.percentile(99.0));
}

#[test]
fn pipelined_auth_failure_sends_no_message() {
    let run = run(PIPELINING, &login().server(|c| c.faults.reject_auth = true));
    let (exit, message) = failure(&run);
    assert_eq!(exit, Exit::NoPerm);
    assert!(message.contains("535"), "{message}");
    assert!(run.stored.is_empty());
    assert!(
        !run.text.contains("C: Subject:"),
        "no message content: {}",
        run.text
    );
}

/// The observer behind raw-client's progress bars hears every byte of the message (as
/// rendered) and each accepted message.
#[test]
fn the_observer_hears_every_byte_and_every_message() {
    use std::sync::atomic::{AtomicU64, Ordering};

    #[derive(Default)]
    struct Counter {
        bytes: AtomicU64,
        messages: AtomicU64,
    }
    impl raw_client::Observer for Counter {
        fn message_sent(&self) {
            self.messages.fetch_add(1, Ordering::Relaxed);
        }
        fn data_sent(&self, bytes: u64) {
            self.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    let dir = TempDir::new("observer");
    let attachment: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let path = dir.file("data.bin", &attachment);
    let scenario = Scenario::new("starttls", &["--attach", &path.to_string_lossy()]).with_login();
    let server = scenario.start_server();
    let job = job(&scenario, &server).expect("job");
    let counter = Counter::default();
    let (_, result) = raw_client::send_observed(&job, &raw_client::Settings::default(), &counter);
    result.expect("sent");
    assert_eq!(counter.messages.load(Ordering::Relaxed), 1);
    assert_eq!(
        counter.bytes.load(Ordering::Relaxed),
        job.message.expected_len()
    );
    assert_eq!(
        server.messages()[0].data.len() as u64,
        job.message.expected_len()
    );
}
