//! What lib-client does around lettre, tested against servers that once made it wrong:
//! a reply of 300,000 lines (the capture kept every copy of lettre's growing reply buffer and
//! grew to 1.5 GiB), a reply trickled a byte at a time (lettre's timeout is per read, so it
//! waited far past `--timeout`), and a data timeout longer than the command timeout (lettre
//! has one socket timeout, so it gave up on the end of the data at `--timeout` and then told
//! the user a stored message had failed).

use std::time::{Duration, Instant};

use cli::{Exit, Failure, Violation};
use test_server::Stage;
use workspace_tests::scripted::{Scripted, Step};
use workspace_tests::{Client, Scenario, job_at, run, run_job};

fn send(text: &str) -> Step {
    Step::Send(text.as_bytes().to_vec())
}

#[test]
fn a_flood_of_reply_lines_is_cut_off_at_the_limit_both_clients_share() {
    let mut script = vec![send("220 mx.example ESMTP\r\n"), Step::Read];
    script.push(Step::Repeat(b"250-x\r\n".to_vec(), 300_000));
    script.push(send("250 end\r\n"));
    for client in [Client::RAW, Client::Lib] {
        let server = Scripted::start(script.clone());
        let scenario = Scenario::new("none", &["--timeout", "5s"]);
        let job = job_at(&scenario, server.addr(), None).expect("job");
        let started = Instant::now();
        let run = run_job(client, &job, None);
        let elapsed = started.elapsed();
        assert_eq!(
            run.result,
            Err(Failure::Protocol {
                after: "EHLO".into(),
                violation: Violation::TooManyLines { max: 100 },
            }),
            "{client:?}"
        );
        // lib-client records the first 100 lines of a reply; raw-client records what it had
        // read when it gave up, at most what one 8 KiB read brings beyond the 100 lines.
        let bound = if client == Client::Lib { 120 } else { 1300 };
        let lines = run.text.lines().count();
        assert!(lines < bound, "{client:?}: {lines} transcript lines");
        assert!(elapsed < Duration::from_secs(3), "{client:?}: {elapsed:?}");
    }
}

#[test]
fn a_trickled_reply_is_held_to_one_deadline() {
    let greeting = b"220 mx.example ESMTP at a snail's pace\r\n".to_vec();
    for client in [Client::RAW, Client::Lib] {
        let server = Scripted::start(vec![Step::Trickle(
            greeting.clone(),
            Duration::from_millis(100),
        )]);
        let scenario = Scenario::new("none", &["--timeout", "1s"]);
        let job = job_at(&scenario, server.addr(), None).expect("job");
        let started = Instant::now();
        let run = run_job(client, &job, None);
        let elapsed = started.elapsed();
        assert_eq!(run.exit(), Exit::TempFail, "{client:?}: {}", run.text);
        // Each byte came within the timeout; the whole reply did not.
        assert!(
            elapsed < Duration::from_millis(2500),
            "{client:?} waited {elapsed:?} for a 1 s timeout"
        );
    }
}

#[test]
fn a_data_timeout_longer_than_the_command_timeout_is_honoured() {
    // The server takes 2 s to answer the end of the data: within --data-timeout 5s, beyond
    // --timeout 1s.
    let scenario = Scenario::new("starttls", &["--timeout", "1s", "--data-timeout", "5s"])
        .with_login()
        .server(|c| {
            c.faults
                .stall
                .push((Stage::EndOfData, Duration::from_secs(2)))
        });
    for client in [Client::RAW, Client::Lib] {
        let run = run(client, &scenario);
        assert_eq!(
            run.exit(),
            Exit::Sent,
            "{client:?}: {:?}\n{}",
            run.result,
            run.text
        );
        assert_eq!(run.stored.len(), 1, "{client:?}");
        assert!(
            run.result
                .as_ref()
                .is_ok_and(|sent| sent.warnings.is_empty()),
            "{client:?}"
        );
    }
}
