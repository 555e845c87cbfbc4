//! `--explain` leaves no line unexplained: every line of every insta snapshot here, and of
//! every transcript the test server writes for a range of dialogues (plain, TLS, AUTH,
//! pipelining, attachments, refusals, faults), gets a note or belongs to an explained block.

use std::path::Path;
use std::time::Duration;

use test_server::Stage;
use transcript::explain::{explain, parse_text};
use workspace_tests::{Client, Scenario, TempDir, job, run_job};

/// The lines of `text` that are neither explained nor part of an explained block.
fn unexplained(text: &str) -> Vec<String> {
    let lines = parse_text(text);
    let shown: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("C:") || line.starts_with("S: ") || line.starts_with("-- "))
        .collect();
    assert_eq!(lines.len(), shown.len(), "every line is read");
    shown
        .into_iter()
        .zip(explain(&lines))
        .filter(|(_, explained)| explained.notes.is_empty() && !explained.in_block)
        .map(|(line, _)| line.to_owned())
        .collect()
}

#[test]
fn every_snapshot_line_is_explained() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    let mut read = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        // An insta snapshot: a header between two `---` lines, then the content.
        let content = text.splitn(3, "---\n").nth(2).unwrap_or_default();
        let missing = unexplained(content);
        assert!(missing.is_empty(), "{}: {missing:?}", path.display());
        read += 1;
    }
    assert!(read >= 16, "the snapshots were found ({read})");
}

#[test]
fn every_line_the_test_server_records_is_explained() {
    let dir = TempDir::new("explain");
    let attachment = dir.file(
        "report.pdf",
        &[0x25, 0x50, 0x44, 0x46, 0x0a, 0xff, 0x00, 0x01],
    );
    let attachment = attachment.to_string_lossy().into_owned();
    let html = dir.file("page.html", b"<p>Hello <b>Bob</b></p>\n");
    let html = html.to_string_lossy().into_owned();
    let scenarios: Vec<(Client, Scenario)> = vec![
        (Client::RAW, Scenario::new("none", &[])),
        (Client::Lib, Scenario::new("starttls", &[]).with_login()),
        (Client::RAW, Scenario::new("implicit", &[]).with_login()),
        (
            Client::RAW,
            Scenario::new("starttls", &[])
                .with_login()
                .server(|c| c.faults.auth_login_only = true),
        ),
        (
            Client::Raw(raw_client::Settings {
                pipelining: true,
                repeat: 2,
                ..raw_client::Settings::DEFAULT
            }),
            Scenario::new("starttls", &[]).with_login(),
        ),
        (
            Client::RAW,
            Scenario::new(
                "starttls",
                &[
                    "--attach",
                    &attachment,
                    "--html-file",
                    &html,
                    "--subject",
                    "Grüße",
                    "--body",
                    ".a dot\nnon-ASCII: é\n",
                ],
            )
            .with_login(),
        ),
        (
            Client::Lib,
            Scenario::new("starttls", &[])
                .with_login()
                .server(|c| c.faults.reject_recipients.push("bob@example.org".into())),
        ),
        (
            Client::RAW,
            Scenario::new("starttls", &[])
                .with_login()
                .server(|c| c.faults.reject_data = true),
        ),
        (
            Client::RAW,
            Scenario::new("starttls", &[])
                .with_login()
                .server(|c| c.faults.reject_auth = true),
        ),
        (
            Client::RAW,
            Scenario::new("starttls", &[]).server(|c| c.faults.no_starttls = true),
        ),
        (
            Client::RAW,
            Scenario::new("none", &[]).server(|c| c.faults.tempfail_mail = true),
        ),
        (
            Client::RAW,
            Scenario::new("starttls", &[]).server(|c| {
                c.faults.inject_after_starttls = Some(b"250 injected\r\n".to_vec());
            }),
        ),
        (
            Client::RAW,
            Scenario::new("none", &[]).server(|c| c.faults.drop_mid_data = true),
        ),
        (
            Client::RAW,
            Scenario::new("none", &["--timeout", "300ms"]).server(|c| {
                c.faults
                    .stall
                    .push((Stage::Mail, Duration::from_millis(600)))
            }),
        ),
    ];
    let mut checked = 0;
    for (client, scenario) in &scenarios {
        // The server stays up while its files are read.
        let server = scenario.start_server();
        let job = job(scenario, &server).unwrap_or_else(|f| panic!("{f}"));
        let run = run_job(*client, &job, Some(&server));
        let mut texts = vec![("the client's transcript", run.text.clone())];
        if let Some(session) = &run.session {
            texts.push((
                "the session",
                session.transcript.render_text(Default::default()),
            ));
            if let Ok(path) = &session.transcript_file {
                let stored = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{e}"));
                texts.push(("the session record", stored));
            }
        }
        for message in &run.stored {
            texts.push(("a message's .transcript", message.transcript.clone()));
        }
        for (what, text) in texts {
            let missing = unexplained(&text);
            assert!(
                missing.is_empty(),
                "{:?}, {what}: {missing:?}\n{text}",
                scenario.args
            );
            checked += 1;
        }
    }
    assert!(
        checked > 3 * scenarios.len(),
        "{checked} transcripts checked"
    );
}
