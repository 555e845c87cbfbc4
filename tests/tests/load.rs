//! raw-client as a load generator (`--repeat`, `--connections`): after each connection's
//! first message, one event loop sends the rest. Every message must arrive byte for byte in
//! each TLS mode, with and without pipelining; and a failure after the first message must end
//! the run with the dialogue's error sentence and exit code, with QUIT only where the
//! dialogue would send one, and without delivering a message that should not be.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cli::{Exit, Failure, Job};
use raw_client::{Report, Settings};
use workspace_tests::scripted::{Scripted, Step};
use workspace_tests::{Scenario, TempDir, job, job_at};

/// Runs a load and counts the progress callbacks.
fn load(job: &Job, pipelining: bool, repeat: u32, connections: u32) -> Load {
    let ticks = AtomicUsize::new(0);
    let tick = || {
        ticks.fetch_add(1, Ordering::Relaxed);
    };
    let started = Instant::now();
    let settings = Settings {
        pipelining,
        repeat,
        ..Settings::DEFAULT
    };
    let (transcript, result) = raw_client::send_many(job, &settings, connections, &tick);
    Load {
        transcript: transcript.render_text(Default::default()),
        result,
        ticks: ticks.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
    }
}

struct Load {
    transcript: String,
    result: Result<Report, Failure>,
    ticks: usize,
    elapsed: Duration,
}

impl Load {
    fn failure(&self) -> &Failure {
        match &self.result {
            Ok(report) => panic!("expected a failure, got {}", report.summary()),
            Err(failure) => failure,
        }
    }
}

#[test]
fn every_message_arrives_in_every_tls_mode_with_and_without_pipelining() {
    for tls in ["none", "starttls", "implicit"] {
        for pipelining in [false, true] {
            let mut scenario = Scenario::new(tls, &[]);
            if tls != "none" {
                scenario = scenario.with_login();
            }
            let server = scenario.start_server();
            let job = job(&scenario, &server).expect("job");
            let run = load(&job, pipelining, 4, 3);
            let case = format!("--tls {tls}, pipelining {pipelining}");
            let report = run
                .result
                .as_ref()
                .unwrap_or_else(|f| panic!("{case}: {f}"));
            assert_eq!(report.messages, 12, "{case}");
            assert_eq!(report.latencies.len(), 12, "{case}");
            assert_eq!(run.ticks, 12, "{case}: one progress tick per message");
            let sessions = server.wait_for_sessions(3, Duration::from_secs(10));
            assert_eq!(sessions.len(), 3, "{case}");
            let stored = server.messages();
            assert_eq!(stored.len(), 12, "{case}");
            let bytes = job.message.to_bytes().expect("render");
            assert!(stored.iter().all(|m| m.data == bytes), "{case}: same bytes");
            for session in &sessions {
                let text = session.transcript.render_text(Default::default());
                assert_eq!(text.matches("C: MAIL FROM:").count(), 4, "{case}:\n{text}");
                assert_eq!(session.message_ids.len(), 4, "{case}");
                assert!(
                    text.contains("C: QUIT\n"),
                    "{case}: QUIT at the end:\n{text}"
                );
                if tls != "none" {
                    assert_eq!(text.matches("C: AUTH PLAIN").count(), 1, "{case}");
                }
            }
            // The client records each connection's first message only.
            assert!(
                run.transcript
                    .contains("-- the next 3 messages on this connection are not recorded\n"),
                "{case}:\n{}",
                run.transcript
            );
            // With pipelining the second MAIL rides with the first message's `.` (recorded).
            let mails = if pipelining { 2 } else { 1 };
            assert_eq!(
                run.transcript.matches("C: MAIL FROM:").count(),
                mails,
                "{case}:\n{}",
                run.transcript
            );
            assert!(run.transcript.ends_with("-- connection closed\n"), "{case}");
        }
    }
}

/// A message above the shared-message limit is streamed for each send instead of being held
/// in memory, and still arrives every time.
#[test]
fn a_large_message_is_streamed_for_each_send() {
    let dir = TempDir::new("load-large");
    // Base64 makes 4 of 3, so 6.5 MiB of attachment renders above the 8 MiB limit.
    let attachment: Vec<u8> = (0..6_500_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let path = dir.file("large.bin", &attachment);
    let path = path.to_string_lossy();
    let scenario = Scenario::new("none", &["--attach", &path]);
    let server = scenario.start_server();
    let job = job(&scenario, &server).expect("job");
    assert!(job.message.expected_len() > raw_client::load::SHARED_MESSAGE_LIMIT);
    let run = load(&job, false, 2, 2);
    let report = run.result.as_ref().unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(report.messages, 4);
    let stored = server.messages();
    assert_eq!(stored.len(), 4);
    let bytes = job.message.to_bytes().expect("render");
    assert!(stored.iter().all(|m| m.data == bytes));
}

fn send(text: &str) -> Step {
    Step::Send(text.as_bytes().to_vec())
}

/// Greeting and EHLO, offering PIPELINING or not.
fn opening(pipelining: bool) -> Vec<Step> {
    let ehlo = if pipelining {
        "250-mx.example\r\n250 PIPELINING\r\n"
    } else {
        "250 mx.example\r\n"
    };
    vec![send("220 mx.example ESMTP\r\n"), Step::Read, send(ehlo)]
}

/// One accepted transaction, one command at a time.
fn transaction() -> Vec<Step> {
    vec![
        Step::Read,
        send("250 2.1.0 Ok\r\n"),
        Step::Read,
        send("250 2.1.5 Ok\r\n"),
        Step::Read,
        send("354 End data with <CR><LF>.<CR><LF>\r\n"),
        Step::ReadData,
        send("250 2.0.0 Ok: queued\r\n"),
    ]
}

/// One accepted pipelined transaction: the group, then the data.
fn pipelined_transaction() -> Vec<Step> {
    vec![
        Step::Read,
        Step::Read,
        Step::Read,
        send("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 Go ahead\r\n"),
        Step::ReadData,
        send("250 2.0.0 Ok: queued\r\n"),
    ]
}

/// What a one-connection load run against a scripted server ended with.
struct Ended {
    exit: Exit,
    message: String,
    /// Messages the server accepted.
    accepted: usize,
    /// Everything the client sent.
    received: String,
    elapsed: Duration,
}

/// Runs `repeat` messages to bob on one connection against `script`; the run must fail.
fn fails_against(script: Vec<Step>, pipelining: bool, repeat: u32) -> Ended {
    fails_for(&["bob@example.org"], script, pipelining, repeat)
}

/// Like [`fails_against`], for these recipients.
fn fails_for(recipients: &[&str], script: Vec<Step>, pipelining: bool, repeat: u32) -> Ended {
    let server = Scripted::start(script);
    let mut args = vec!["--timeout", "1s"];
    for recipient in recipients {
        args.extend(["--to", recipient]);
    }
    let scenario = Scenario::new("none", &args);
    let job = job_at(&scenario, server.addr(), None).expect("job");
    let run = load(&job, pipelining, repeat, 1);
    let failure = run.failure();
    Ended {
        exit: failure.exit(),
        message: failure.to_string(),
        accepted: run.ticks,
        received: String::from_utf8_lossy(&server.received()).into_owned(),
        elapsed: run.elapsed,
    }
}

const REFUSED_RCPT: &str =
    "the server rejected RCPT TO:<bob@example.org> with \"550 5.1.1 Mailbox unavailable\"";

#[test]
fn a_refusal_after_the_first_message_ends_the_run_with_quit() {
    let mut script = opening(false);
    script.extend(transaction());
    script.extend(transaction());
    script.extend([
        Step::Read,
        send("250 2.1.0 Ok\r\n"),
        Step::Read,
        send("550 5.1.1 Mailbox unavailable\r\n"),
        Step::Read,
        send("221 2.0.0 Bye\r\n"),
    ]);
    let run = fails_against(script, false, 5);
    assert_eq!(
        (run.exit, run.message.as_str()),
        (Exit::Unavailable, REFUSED_RCPT)
    );
    assert_eq!(run.accepted, 2);
    assert_eq!(run.received.matches("MAIL FROM:").count(), 3);
    assert_eq!(run.received.matches("\r\n.\r\n").count(), 2);
    let end = "RCPT TO:<bob@example.org>\r\nQUIT\r\n";
    assert!(run.received.ends_with(end), "{}", run.received);
}

#[test]
fn a_stall_after_the_first_message_times_out_without_quit() {
    let mut script = opening(false);
    script.extend(transaction());
    script.extend([Step::Read, Step::Stall(Duration::from_secs(4))]);
    let run = fails_against(script, false, 3);
    assert_eq!(run.exit, Exit::TempFail);
    assert_eq!(
        run.message,
        "the server did not answer in time while waiting for the reply to MAIL FROM: try again \
         later, or raise --timeout"
    );
    let waited = run.elapsed;
    assert!(
        waited < Duration::from_secs(3),
        "the 1 s timeout held: {waited:?}"
    );
    let end = "MAIL FROM:<alice@example.com>\r\n";
    assert!(run.received.ends_with(end), "{}", run.received);
}

#[test]
fn a_server_that_closes_after_the_first_message_is_reported() {
    let mut script = opening(false);
    script.extend(transaction());
    script.extend([Step::Read, Step::Close]);
    let run = fails_against(script, false, 3);
    assert_eq!(run.exit, Exit::TempFail);
    assert_eq!(
        run.message,
        "the server closed the connection while waiting for the reply to MAIL FROM: try again \
         later"
    );
    assert_eq!(run.accepted, 1);
}

/// RFC 2920 §3.1: the second group went out with the first message's end of data. One of
/// its two recipients is refused but DATA is answered 354: the client must not send the
/// message (the other recipient would get it without the refused one), and no QUIT either
/// (it would become message data), so it drops the connection.
#[test]
fn a_pipelined_refusal_with_354_drops_the_connection_before_any_data() {
    let mut script = opening(true);
    script.extend([
        Step::Read,
        Step::Read,
        Step::Read,
        Step::Read,
        send("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 Go ahead\r\n"),
        Step::ReadData,
        send("250 2.0.0 Ok: queued\r\n"),
        Step::Read,
        Step::Read,
        Step::Read,
        Step::Read,
        send("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 Mailbox unavailable\r\n354 Go ahead\r\n"),
        Step::ReadData,
    ]);
    let run = fails_for(&["alice@example.org", "bob@example.org"], script, true, 3);
    assert_eq!(
        (run.exit, run.message.as_str()),
        (Exit::Unavailable, REFUSED_RCPT)
    );
    assert_eq!(run.accepted, 1);
    assert_eq!(run.received.matches("\r\n.\r\n").count(), 1);
    let end = "\r\n.\r\nMAIL FROM:<alice@example.com>\r\nRCPT TO:<alice@example.org>\r\n\
               RCPT TO:<bob@example.org>\r\nDATA\r\n";
    assert!(run.received.ends_with(end), "{}", run.received);
}

/// The same rule as the dialogue's (`pipelined_group_with_no_accepted_recipient_sends_a_lone_dot`
/// in raw_client.rs): when no recipient of the group was accepted and DATA got 354 anyway,
/// nothing can be delivered, so a lone `.` ends the data and QUIT follows.
#[test]
fn a_pipelined_group_with_no_accepted_recipient_ends_with_a_lone_dot() {
    let mut script = opening(true);
    script.extend(pipelined_transaction());
    script.extend([
        Step::Read,
        Step::Read,
        Step::Read,
        send("250 2.1.0 Ok\r\n550 5.1.1 Mailbox unavailable\r\n354 Go ahead\r\n"),
        Step::ReadData,
        send("250 2.0.0 Ok: empty\r\n"),
        Step::Read,
        send("221 2.0.0 Bye\r\n"),
    ]);
    let run = fails_against(script, true, 3);
    assert_eq!(
        (run.exit, run.message.as_str()),
        (Exit::Unavailable, REFUSED_RCPT)
    );
    assert_eq!(run.accepted, 1);
    let end = "RCPT TO:<bob@example.org>\r\nDATA\r\n.\r\nQUIT\r\n";
    assert!(run.received.ends_with(end), "{}", run.received);
}

/// With pipelining, the last message's `.` goes out with QUIT; a refusal of that message is
/// still reported, after the server's answer to the QUIT.
#[test]
fn a_pipelined_refusal_of_the_last_message_is_reported() {
    let mut script = opening(true);
    script.extend(pipelined_transaction());
    script.extend([
        Step::Read,
        Step::Read,
        Step::Read,
        send("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 Go ahead\r\n"),
        Step::ReadData,
        send("554 5.6.0 Message refused\r\n"),
        Step::Read,
        send("221 2.0.0 Bye\r\n"),
    ]);
    let run = fails_against(script, true, 2);
    assert_eq!(run.exit, Exit::Unavailable);
    assert_eq!(
        run.message,
        "the server rejected the message data with \"554 5.6.0 Message refused\""
    );
    assert_eq!(run.accepted, 1);
    assert_eq!(run.received.matches("\r\n.\r\n").count(), 2);
    assert!(
        run.received.ends_with("\r\n.\r\nQUIT\r\n"),
        "{}",
        run.received
    );
}

/// The report counts what the server stored.
#[test]
fn the_report_counts_the_stored_messages() {
    let scenario = Scenario::new("none", &[]);
    let server = scenario.start_server();
    let job = job(&scenario, &server).expect("job");
    let run = load(&job, false, 20, 2);
    let report = run.result.as_ref().unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(report.messages, 40);
    assert_eq!(server.messages().len(), 40);
    assert!(report.percentile(50.0) <= report.percentile(99.0));
    assert!(
        report
            .summary()
            .starts_with("sent 40 messages over 2 connection(s) in ")
    );
}
