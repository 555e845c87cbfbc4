//! The checks both client binaries must pass: a module of each crate's tests/binary.rs,
//! which defines `BINARY` (cargo only gives a package's own binaries to its tests).

use std::process::Command;

use super::BINARY;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

fn run(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(BINARY)
        .args(args)
        .env("RUST_LOG", "trace")
        .env_remove("SMTP_SERVER")
        .env_remove("SMTP_PASSWORD")
        .output()
        .expect("the binary runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The password of the embedded server's demo user, and every form it could leak in.
fn secret_forms() -> Vec<String> {
    let password = cli::DEMO_PASSWORD;
    vec![
        password.to_owned(),
        STANDARD.encode(password),
        STANDARD.encode(format!("\0{}\0{password}", cli::DEMO_USER)),
    ]
}

#[test]
fn embedded_default_sends_and_redacts() {
    let (code, stdout, stderr) = run(&["--keep"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    for expected in [
        "C: STARTTLS\n",
        "-- TLS established\n",
        "C: AUTH PLAIN <redacted>\n",
        "S: 235 ",
        "C: .\n",
        "S: 250 2.0.0 Ok: queued as 000001\n",
        "C: QUIT\n",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    for secret in secret_forms() {
        assert!(!stdout.contains(&secret), "{secret} leaked on stdout");
        assert!(!stderr.contains(&secret), "{secret} leaked on stderr");
    }
    // The demo message says nothing that is true of one client only.
    assert!(!stdout.contains("by hand"), "{stdout}");
    let stored = stderr
        .lines()
        .find_map(|line| {
            line.split_once("stored the message as ")
                .map(|(_, path)| path.to_owned())
        })
        .expect("the stored path is printed");
    let eml = std::fs::read(&stored).expect("the stored message exists");
    assert!(eml.starts_with(b"Date: "));
    if let Some(dir) = std::path::Path::new(&stored).parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// `--tls none` against the embedded server: the plaintext dialogue, without AUTH (the server
/// asks for none), sent — not a silent skip of AUTH and a 530.
#[test]
fn embedded_plaintext_needs_no_login() {
    let (code, stdout, stderr) = run(&["--tls", "none"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(!stdout.contains("C: STARTTLS"), "{stdout}");
    assert!(!stdout.contains("C: AUTH"), "{stdout}");
    assert!(
        stdout.contains("S: 250 2.0.0 Ok: queued as 000001\n"),
        "{stdout}"
    );
    let (code, stdout, _) = run(&["--tls", "none", "--allow-plaintext-auth"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("C: AUTH PLAIN <redacted>\n"), "{stdout}");
}

/// Without `--keep` the embedded server's store is gone when the client exits.
#[test]
fn embedded_runs_clean_up_after_themselves() {
    let child = Command::new(BINARY)
        .env_remove("SMTP_SERVER")
        .env_remove("SMTP_PASSWORD")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let pid = child.id();
    let output = child.wait_with_output().expect("the binary ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "stored the message as 000001; its store is removed at exit (add --keep to keep it)"
        ),
        "{stderr}"
    );
    let prefix = format!("test-server-{pid}-");
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .expect("the temporary directory")
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn json_transcript_redacts_too_and_show_secrets_reveals() {
    let (code, stdout, _) = run(&["--transcript-format", "json", "--quiet"]);
    assert_eq!(code, 0);
    assert!(stdout.is_empty(), "--quiet prints no transcript");
    let (code, stdout, _) = run(&["--transcript-format", "json"]);
    assert_eq!(code, 0);
    assert!(stdout.lines().all(|line| line.starts_with("{\"kind\":")));
    for secret in secret_forms() {
        assert!(!stdout.contains(&secret), "{secret} leaked in JSON");
    }
    let (code, stdout, _) = run(&["--show-secrets"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains(&secret_forms()[2]),
        "--show-secrets shows the PLAIN payload"
    );
}

#[test]
fn bad_input_fails_before_connecting_with_sysexits() {
    let cases: &[(&[&str], i32, &str)] = &[
        (&["--subject", "hi\r\nBcc: eve@example.org"], 65, "Subject"),
        (&["--to", "bob@exa mple.org"], 65, "bob@exa mple.org"),
        (&["--attach", "no/such/file.pdf"], 66, "no/such/file.pdf"),
        (
            &[
                "--server",
                "localhost:70000",
                "--from",
                "a@b.example",
                "--to",
                "c@d.example",
            ],
            64,
            "port",
        ),
        (&["--timeout", "soon"], 64, "--timeout"),
    ];
    for (args, want, mention) in cases {
        let (code, stdout, stderr) = run(args);
        assert_eq!(code, *want, "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}: nothing was sent");
        assert!(stderr.contains(mention), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one sentence: {stderr}");
    }
}

/// Every usage error exits 64 (sysexits EX_USAGE), clap's own message kept; a duration out
/// of range says the range; `--help` and `--version` are not errors.
#[test]
fn usage_errors_exit_64() {
    let cases: &[(&[&str], &str)] = &[
        (&["--frobnicate"], "unexpected argument '--frobnicate'"),
        (&["--tls", "maybe"], "invalid value 'maybe' for '--tls"),
        (&["--timeout", "-5"], "'-5'"),
        (&["--repeat", "0"], "--repeat"),
        (
            &["--timeout", "18446744073709551615"],
            "--timeout \"18446744073709551615\" is out of range: give a duration from 1ms to 24h",
        ),
        (
            &["--data-timeout", "999999999999999999m"],
            "--data-timeout \"999999999999999999m\" is out of range: give a duration from 1ms to 24h",
        ),
        (
            &["--timeout", "0"],
            "is out of range: give a duration from 1ms to 24h",
        ),
    ];
    for (args, mention) in cases {
        let (code, stdout, stderr) = run(args);
        assert_eq!(code, 64, "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}: nothing was sent");
        assert!(stderr.contains(mention), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    for info in ["--help", "--version"] {
        let (code, stdout, _) = run(&[info]);
        assert_eq!(code, 0, "{info}");
        assert!(!stdout.is_empty(), "{info}");
    }
}

/// `--explain`'s contract: every line of the default dialogue is explained, and removing the
/// `# ` lines (in JSON, the `explain` lists) gives the plain transcript byte for byte.
#[test]
fn explain_adds_notes_and_changes_nothing_else() {
    let fixed = ["--date", "0", "--message-id", "explain@example.com"];
    let with = |extra: &[&str]| {
        let mut args = fixed.to_vec();
        args.extend_from_slice(extra);
        let (code, stdout, stderr) = run(&args);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        stdout
    };
    let plain = with(&[]);
    let explained = with(&["--explain"]);
    let stripped: String = explained
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| format!("{line}\n"))
        .collect();
    assert_eq!(stripped, plain);
    assert!(explained.lines().count() > 2 * plain.lines().count());
    // Every line is explained, or belongs to a body block whose first line is.
    let lines = transcript::explain::parse_text(&plain);
    let notes = transcript::explain::explain(&lines);
    assert_eq!(lines.len(), plain.lines().count());
    for (line, notes) in plain.lines().zip(&notes) {
        assert!(!notes.notes.is_empty() || notes.in_block, "{line:?}");
    }
    let json = with(&["--transcript-format", "json"]);
    let explained_json = with(&["--transcript-format", "json", "--explain"]);
    assert_eq!(json.lines().count(), explained_json.lines().count());
    for (plain_line, explained_line) in json.lines().zip(explained_json.lines()) {
        let mut object: serde_json::Value =
            serde_json::from_str(explained_line).expect("one JSON object per line");
        let list = object
            .as_object_mut()
            .and_then(|map| map.remove("explain"))
            .expect("an explain list");
        assert!(list.is_array(), "{explained_line}");
        let mut plain_object: serde_json::Value = serde_json::from_str(plain_line).expect("JSON");
        if object["kind"] == "outcome" {
            // The outcome line ends the transcript; its times are this run's own.
            for value in [&mut object, &mut plain_object] {
                value.as_object_mut().and_then(|map| map.remove("seconds"));
            }
            assert_eq!(object, plain_object);
            assert!(explained_line.ends_with("]}"), "the list is last");
            continue;
        }
        assert_eq!(object, plain_object);
        let cut = explained_line
            .find(",\"explain\":")
            .map(|at| format!("{}}}", &explained_line[..at]));
        assert_eq!(cut.as_deref(), Some(plain_line), "the list is last");
    }
}

/// The TLS line's notes say whom the certificate names and how this run trusted it. The TLS
/// version and cipher suite only raw-client can say: lettre does not expose them.
#[test]
fn explain_names_the_certificate_and_how_it_was_trusted() {
    let tls_notes = |extra: &[&str]| {
        let mut args = vec!["--explain"];
        args.extend_from_slice(extra);
        let (code, stdout, stderr) = run(&args);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        stdout
            .lines()
            .skip_while(|line| *line != "-- TLS established")
            .skip(1)
            .take_while(|line| line.starts_with("# "))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let notes = tls_notes(&[]);
    let certificate = "# the server's certificate: CN=localhost (for localhost, 127.0.0.1, ::1), \
                       issued by CN=test-server CA, valid until ";
    assert!(
        notes.iter().any(|note| note.starts_with(certificate)),
        "{notes:#?}"
    );
    let verified = "# verified: it is in date, names localhost, and its chain leads to a root in \
                    webpki-roots (Mozilla's list) or the embedded server's own CA (RFC 5280 §6; RFC 6125 §6)";
    assert!(notes.iter().any(|note| note == verified), "{notes:#?}");
    let negotiated = notes
        .iter()
        .any(|note| note.contains("; negotiated: TLSv1_3, "));
    assert_eq!(negotiated, BINARY.contains("raw-client"), "{notes:#?}");
    let insecure = tls_notes(&["--insecure"]);
    assert!(
        insecure.iter().any(
            |note| note.starts_with("# NOT verified (--insecure): any certificate is accepted")
        ),
        "{insecure:#?}"
    );
}

#[test]
fn help_documents_every_option() {
    let (code, stdout, _) = run(&["--help"]);
    assert_eq!(code, 0);
    for option in [
        "--server",
        "--tls",
        "--ca-file",
        "--insecure",
        "--pin-sha256",
        "--helo-name",
        "--user",
        "--password-env",
        "--password-file",
        "--from",
        "--to",
        "--cc",
        "--bcc",
        "--subject",
        "--body",
        "--body-file",
        "--html-file",
        "--attach",
        "--header",
        "--date",
        "--message-id",
        "--timeout",
        "--transcript-format",
        "--show-secrets",
        "--explain",
        "--quiet",
    ] {
        assert!(stdout.contains(option), "--help lacks {option}");
    }
}
