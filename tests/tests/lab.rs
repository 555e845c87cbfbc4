//! `test-server lab` graded on clients no one here wrote (Python's smtplib, curl), on this
//! workbench's own raw-client, and on a socket client with one deliberate bug at a time:
//! each bug fails exactly the check named for it, and nothing else fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use test_server::lab::{Check, Lab, Profile, Scorecard, Status};
use test_server::{Config, Server};
use workspace_tests::TempDir;

fn lab_clients() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/course/lab")
}

fn lab(profile: Profile) -> Lab {
    Lab::start(
        profile,
        Config {
            remove_store_on_drop: true,
            idle_timeout: Duration::from_secs(20),
            ..Config::default()
        },
    )
    .expect("lab starts")
}

/// Runs `program args` with the lab's environment and grades what it did.
fn graded(profile: Profile, program: &str, args: &[&str]) -> Scorecard {
    let lab = lab(profile);
    let output = Command::new(program)
        .args(args)
        .envs(lab.environment())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let scorecard = lab.grade(Duration::from_secs(10));
    assert!(
        !scorecard.sessions.is_empty(),
        "{program} {args:?} never connected: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    scorecard
}

fn failed(scorecard: &Scorecard) -> Vec<&'static str> {
    ids(scorecard, Status::Fail)
}

fn ids(scorecard: &Scorecard, status: Status) -> Vec<&'static str> {
    scorecard
        .checks
        .iter()
        .filter(|c| c.status == status)
        .map(|c| c.id)
        .collect()
}

fn check<'a>(scorecard: &'a Scorecard, id: &str) -> &'a Check {
    scorecard
        .checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id}"))
}

fn smtplib() -> PathBuf {
    lab_clients().join("smtplib_client.py")
}

#[test]
fn smtplib_passes_every_check_on_submission() {
    let scorecard = graded(
        Profile::Submission,
        "python3",
        &[smtplib().to_str().unwrap_or("")],
    );
    assert_eq!(
        ids(&scorecard, Status::Pass).len(),
        15,
        "{}",
        scorecard.to_text()
    );
    assert!(scorecard.passed);
    let text = scorecard.to_text();
    assert!(text.contains("✓ dot-stuffing"), "{text}");
    assert!(
        text.contains("15 passed, 0 failed, 0 not applicable: PASSED"),
        "{text}"
    );
}

#[test]
fn smtplib_passes_under_the_gmail_and_strict_profiles_too() {
    for profile in [Profile::Gmail, Profile::Strict] {
        let scorecard = graded(profile, "python3", &[smtplib().to_str().unwrap_or("")]);
        assert_eq!(
            failed(&scorecard),
            Vec::<&str>::new(),
            "{}",
            scorecard.to_text()
        );
        assert!(scorecard.passed);
    }
}

#[test]
fn curl_passes_with_crlf_and_fails_exactly_the_data_checks_without_it() {
    let dir = TempDir::new("lab-curl");
    // A message file with LF line ends, as an editor writes it.
    let message = dir.file(
        "message.txt",
        b"Date: Tue, 01 Dec 2026 12:00:00 +0000\nFrom: student@lab.test\nTo: teacher@lab.test\n\
          Subject: curl\n\nHello from curl.\n.signature: a line that starts with a dot\n",
    );
    let script = format!(
        "curl -sS $CRLF --ssl-reqd --cacert \"$SMTP_CA_FILE\" --user \"$SMTP_USER:$SMTP_PASSWORD\" \
         --mail-from \"$SMTP_FROM\" --mail-rcpt \"$SMTP_TO\" --upload-file '{}' \
         \"smtp://$SMTP_HOST:$SMTP_PORT\"",
        message.display()
    );
    let with_crlf = graded(
        Profile::Submission,
        "sh",
        &["-c", &format!("CRLF=--crlf; {script}")],
    );
    assert_eq!(
        ids(&with_crlf, Status::Pass).len(),
        15,
        "{}",
        with_crlf.to_text()
    );
    // Without --crlf curl sends the file's LF line ends as they are, and so does not see
    // (nor double) the dot at the start of a line.
    let without = graded(
        Profile::Submission,
        "sh",
        &["-c", &format!("CRLF=; {script}")],
    );
    assert_eq!(
        failed(&without),
        ["dot-stuffing", "no-bare-lf-in-data"],
        "{}",
        without.to_text()
    );
}

/// The socket client's bugs and the one check each must fail (`BUGS` in the script).
const BUGS: [(&str, &str); 16] = [
    ("no-greeting-wait", "waits-for-greeting"),
    ("lf-commands", "crlf"),
    ("helo", "ehlo-first"),
    ("no-wait", "waits-for-replies"),
    ("one-recv", "reads-multiline"),
    ("plaintext-auth", "starttls-before-auth"),
    ("no-ehlo-after-starttls", "ehlo-after-starttls"),
    ("bad-plain", "auth-encoding"),
    ("mail-from-space", "path-syntax"),
    ("no-354-wait", "waits-for-354"),
    ("no-dot-stuffing", "dot-stuffing"),
    ("bare-lf", "no-bare-lf-in-data"),
    ("no-date", "message-headers"),
    ("no-final-dot", "end-of-data"),
    ("no-quit", "quit"),
    ("quit-no-wait", "quit"),
];

#[test]
fn each_deliberate_bug_fails_exactly_its_check() {
    let script = lab_clients().join("socket_client.py");
    let script = script.to_str().unwrap_or("");
    // Without a bug the same client passes everything.
    let correct = graded(Profile::Submission, "python3", &[script]);
    assert_eq!(
        ids(&correct, Status::Pass).len(),
        15,
        "{}",
        correct.to_text()
    );
    // Every check id is some bug's target, so each check is shown to fail.
    let mut targets: Vec<&str> = BUGS.iter().map(|(_, check)| *check).collect();
    targets.sort_unstable();
    targets.dedup();
    assert_eq!(targets.len(), 15);
    let results: Vec<(&str, &str, Scorecard)> = std::thread::scope(|scope| {
        let runs: Vec<_> = BUGS
            .iter()
            .map(|&(bug, expected)| {
                scope.spawn(move || {
                    let card = graded(Profile::Submission, "python3", &[script, "--bug", bug]);
                    (bug, expected, card)
                })
            })
            .collect();
        runs.into_iter()
            .map(|run| run.join().expect("a lab run"))
            .collect()
    });
    for (bug, expected, card) in &results {
        assert_eq!(
            failed(card),
            [*expected],
            "--bug {bug}:\n{}",
            card.to_text()
        );
        assert!(!card.passed);
        let failure = check(card, expected);
        assert!(failure.fix.is_some(), "{failure:?}");
        assert!(failure.rfc.starts_with("RFC "), "{failure:?}");
    }
    // The evidence is the offending line as the transcript shows it.
    let graded_bug = |bug: &str, id: &str| {
        let (_, _, card) = results
            .iter()
            .find(|(b, _, _)| *b == bug)
            .expect("that bug ran");
        check(card, id).clone()
    };
    let evidence = |bug: &str, id: &str| graded_bug(bug, id).evidence;
    assert_eq!(
        evidence("mail-from-space", "path-syntax"),
        "C: MAIL FROM: <student@lab.test>"
    );
    assert_eq!(
        evidence("no-dot-stuffing", "dot-stuffing"),
        "C: .signature: a line that starts with a dot"
    );
    assert_eq!(
        evidence("lf-commands", "crlf"),
        "C: EHLO client.lab.test\\n"
    );
    assert_eq!(
        evidence("bad-plain", "auth-encoding"),
        "C: AUTH PLAIN <redacted>"
    );
    assert_eq!(evidence("no-wait", "waits-for-replies"), "C: <redacted>");
    // The two ways to fail quit say which it was; a message never ended leaves QUIT unjudged.
    assert_eq!(
        graded_bug("quit-no-wait", "quit").detail,
        "the client closed the connection before the server's 221 reply"
    );
    assert_eq!(
        graded_bug("no-quit", "quit").detail,
        "the client closed the connection without QUIT"
    );
    assert!(
        graded_bug("no-final-dot", "end-of-data")
            .detail
            .contains("inside the message data")
    );
    assert_eq!(
        graded_bug("no-final-dot", "quit").status,
        Status::NotApplicable
    );
}

#[test]
fn a_client_that_never_sends_a_dot_line_gets_not_applicable_not_a_pass() {
    let dir = TempDir::new("lab-no-dot");
    let client = dir.file(
        "client.py",
        b"import os, smtplib\n\
         with smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT'])) as s:\n    \
         s.sendmail(os.environ['SMTP_FROM'], [os.environ['SMTP_TO']], \
         'Date: Tue, 01 Dec 2026 12:00:00 +0000\\r\\nFrom: a@lab.test\\r\\n\\r\\nhi\\r\\n')\n",
    );
    let scorecard = graded(Profile::Plain, "python3", &[client.to_str().unwrap_or("")]);
    assert_eq!(
        failed(&scorecard),
        Vec::<&str>::new(),
        "{}",
        scorecard.to_text()
    );
    assert!(scorecard.passed);
    let dots = check(&scorecard, "dot-stuffing");
    assert_eq!(dots.status, Status::NotApplicable);
    assert!(
        dots.detail.contains("no line starting with a dot"),
        "{dots:?}"
    );
    assert_eq!(
        ids(&scorecard, Status::NotApplicable),
        [
            "starttls-before-auth",
            "ehlo-after-starttls",
            "auth-encoding",
            "dot-stuffing"
        ]
    );
}

#[test]
fn the_implicit_profile_grades_a_tls_first_client() {
    let dir = TempDir::new("lab-implicit");
    let client = dir.file(
        "client.py",
        b"import os, smtplib, ssl\n\
         ctx = ssl.create_default_context(cafile=os.environ['SMTP_CA_FILE'])\n\
         with smtplib.SMTP_SSL(os.environ['SMTP_HOST'], int(os.environ['SMTP_TLS_PORT']), context=ctx) as s:\n    \
         s.login(os.environ['SMTP_USER'], os.environ['SMTP_PASSWORD'])\n    \
         s.sendmail(os.environ['SMTP_FROM'], [os.environ['SMTP_TO']], \
         'Date: Tue, 01 Dec 2026 12:00:00 +0000\\r\\nFrom: a@lab.test\\r\\n\\r\\n..dot\\r\\n')\n",
    );
    let scorecard = graded(
        Profile::Implicit,
        "python3",
        &[client.to_str().unwrap_or("")],
    );
    assert!(scorecard.passed, "{}", scorecard.to_text());
    assert!(scorecard.sessions[0].tls);
    assert_eq!(
        ids(&scorecard, Status::NotApplicable),
        ["starttls-before-auth", "ehlo-after-starttls"],
        "{}",
        scorecard.to_text()
    );
}

#[test]
fn the_gmail_profile_speaks_like_gmail() {
    let lab = lab(Profile::Gmail);
    let mut tcp = std::net::TcpStream::connect(lab.server().addr()).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut seen = String::new();
    read_until(&mut tcp, &mut seen, "220 ");
    std::io::Write::write_all(
        &mut tcp,
        b"EHLO client.lab.test\r\nMAIL FROM:<a@lab.test>\r\nQUIT\r\n",
    )
    .expect("write");
    read_until(&mut tcp, &mut seen, "221 ");
    assert!(
        seen.starts_with("220 smtp.gmail.com ESMTP a1b2c3d4e5f6 - gsmtp\r\n"),
        "{seen}"
    );
    assert!(
        seen.contains("250-smtp.gmail.com at your service, [127.0.0.1]\r\n"),
        "{seen}"
    );
    assert!(
        seen.contains("250-SIZE 35882577\r\n250-8BITMIME\r\n250-STARTTLS\r\n"),
        "{seen}"
    );
    assert!(
        seen.contains("530 5.7.0 Must issue a STARTTLS command first. a1b2c3d4e5f6 - gsmtp\r\n"),
        "{seen}"
    );
    assert!(
        seen.ends_with("221 2.0.0 closing connection a1b2c3d4e5f6 - gsmtp\r\n"),
        "{seen}"
    );
}

#[test]
fn the_strict_profile_writes_replies_in_pieces_and_refuses_a_space_after_the_colon() {
    let lab = lab(Profile::Strict);
    let mut tcp = std::net::TcpStream::connect(lab.server().addr()).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).ok();
    // The greeting comes in two writes: the first read ends after the code.
    let mut first = [0u8; 64];
    let n = std::io::Read::read(&mut tcp, &mut first).expect("read");
    assert_eq!(&first[..n], b"220");
    let mut seen = String::from("220");
    read_until(&mut tcp, &mut seen, "220 ");
    std::io::Write::write_all(&mut tcp, b"EHLO x\r\n").expect("write");
    read_until(&mut tcp, &mut seen, "250 ");
    std::io::Write::write_all(&mut tcp, b"MAIL FROM: <a@lab.test>\r\nQUIT\r\n").expect("write");
    read_until(&mut tcp, &mut seen, "221 ");
    assert!(
        seen.contains("501 5.5.4 Syntax error: no space is allowed after FROM: or TO:"),
        "{seen}"
    );
}

/// A JSON scorecard of a failing run validates against `lab.schema.json`.
#[test]
fn the_json_scorecard_follows_its_schema() {
    let schema_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/test-server/lab.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&schema_path).expect("schema file"))
            .expect("the schema is JSON");
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler
        .add_resource("lab.schema.json", schema)
        .expect("add the schema");
    let index = compiler
        .compile("lab.schema.json", &mut schemas)
        .expect("the schema compiles");
    let script = lab_clients().join("socket_client.py");
    let card = graded(
        Profile::Submission,
        "python3",
        &[script.to_str().unwrap_or(""), "--bug", "no-date"],
    );
    let json: serde_json::Value = serde_json::from_str(&card.to_json()).expect("JSON");
    if let Err(e) = schemas.validate(&json, index) {
        panic!("the scorecard does not follow the schema: {e}\n{json:#}");
    }
    assert_eq!(json["profile"], "submission");
    assert_eq!(json["passed"], false);
    let failure = json["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["status"] == "fail"))
        .expect("one failure");
    assert_eq!(failure["id"], "message-headers");
    assert_eq!(failure["rfc"], "RFC 5322 §3.6");
    // Nothing graded is schema-valid too: every check not applicable.
    let nothing = test_server::lab::grade(Profile::Plain, &[]);
    let json: serde_json::Value = serde_json::from_str(&nothing.to_json()).expect("JSON");
    assert!(schemas.validate(&json, index).is_ok(), "{json:#}");
    assert_eq!(json["passed"], false);
}

/// A session's record is untouched by the lab's slow replies: a normal server (no pacing)
/// writes a multi-line reply in one piece.
#[test]
fn a_server_without_the_lab_writes_each_flight_at_once() {
    let server = Server::start(Config {
        remove_store_on_drop: true,
        ..Config::default()
    })
    .expect("server");
    let mut tcp = std::net::TcpStream::connect(server.addr()).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut seen = String::new();
    read_until(&mut tcp, &mut seen, "220 ");
    std::io::Write::write_all(&mut tcp, b"EHLO x\r\n").expect("write");
    let mut buffer = [0u8; 4096];
    let n = std::io::Read::read(&mut tcp, &mut buffer).expect("read");
    assert!(
        String::from_utf8_lossy(&buffer[..n]).contains("250 "),
        "one read holds the whole reply"
    );
    assert!(server.sessions().iter().all(|s| s.timings.is_empty()));
}

fn read_until(tcp: &mut std::net::TcpStream, seen: &mut String, last_line_start: &str) {
    let mut buffer = [0u8; 4096];
    loop {
        let done = seen
            .rsplit_terminator("\r\n")
            .next()
            .is_some_and(|line| line.starts_with(last_line_start))
            && seen.ends_with("\r\n");
        if done {
            return;
        }
        match std::io::Read::read(tcp, &mut buffer) {
            Ok(0) | Err(_) => panic!("connection ended before {last_line_start:?}: {seen}"),
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buffer[..n])),
        }
    }
}
