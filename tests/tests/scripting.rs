//! Scripting the clients, as a shell script or another program drives the binaries: a
//! prebuilt message on standard input, the sendmail command line, `--quit-after`, the
//! outcome object and `--result-file`, `--allow-partial`, `--hide-data` and `--timestamps`.
//! Each run talks to a fresh test server, which proves what arrived.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use test_server::{Config, Server};
use workspace_tests::{TempDir, binary};

const CLIENTS: [&str; 2] = ["raw-client", "lib-client"];

/// A test server (STARTTLS offered, no login needed) and its CA in a file.
struct Target {
    server: Server,
    ca_file: PathBuf,
    dir: TempDir,
}

fn start(change: impl FnOnce(&mut Config)) -> Target {
    let dir = TempDir::new("scripting");
    let mut config = Config {
        store: Some(dir.path().join("store")),
        ..Config::default()
    };
    change(&mut config);
    let server = Server::start(config).expect("the test server starts");
    let ca_file = dir.file("ca.pem", server.ca_pem().as_bytes());
    Target {
        server,
        ca_file,
        dir,
    }
}

/// What one run printed and how it ended.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Target {
    /// `client` with the server, its CA and a fixed EHLO name, then `args`, with `stdin`
    /// on its standard input and no SMTP_* variables but `env`.
    fn run(&self, client: &str, args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Run {
        let mut command = Command::new(binary(client));
        command
            .args(["--server", &self.server.addr().to_string()])
            .args(["--ca-file", &self.ca_file.to_string_lossy()])
            .args(["--helo-name", "client.example", "--timeout", "10s"])
            .args(args);
        self.spawn(command, stdin, env)
    }

    fn spawn(&self, mut command: Command, stdin: &[u8], env: &[(&str, &str)]) -> Run {
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("SMTP_") {
                command.env_remove(name);
            }
        }
        // No account file of the user's is ever read.
        command.env("XDG_CONFIG_HOME", self.dir.path().join("config"));
        command.envs(env.iter().copied());
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the client starts");
        let mut input = child.stdin.take().expect("its standard input");
        input.write_all(stdin).expect("the input is written");
        drop(input);
        let output = child.wait_with_output().expect("the client ends");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn stored(&self) -> Vec<test_server::StoredMessage> {
        self.server.messages()
    }

    /// The commands the server received on its latest session, one per line.
    fn last_session_commands(&self, sessions: usize) -> String {
        let sessions = self
            .server
            .wait_for_sessions(sessions, Duration::from_secs(10));
        let session = sessions.last().expect("a session");
        String::from_utf8_lossy(&session.after_tls.client_bytes()).into_owned()
    }
}

/// The last line of a JSON transcript: the outcome object.
fn outcome(run: &Run) -> serde_json::Value {
    let line = run.stdout.lines().last().unwrap_or_default();
    let value: serde_json::Value = serde_json::from_str(line).expect("the last line is JSON");
    assert_eq!(value["kind"], "outcome", "{line}");
    assert!(
        line.starts_with("{\"kind\":\"outcome\","),
        "kind first: {line}"
    );
    value
}

const MESSAGE: &[u8] = b"From: Alice <alice@example.com>\nTo: bob@example.org\nBcc: hidden@example.net\nSubject: piped\n\n.dot\nhi\n";

#[test]
fn a_prebuilt_message_on_standard_input_is_sent_as_it_is() {
    for client in CLIENTS {
        let target = start(|_| {});
        let run = target.run(client, &["--data", "-", "-t"], MESSAGE, &[]);
        assert_eq!(run.code, 0, "{client}: {}", run.stderr);
        let stored = target.stored();
        assert_eq!(
            String::from_utf8_lossy(&stored[0].data),
            "From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: piped\r\n\r\n.dot\r\nhi\r\n",
            "{client}"
        );
        assert_eq!(
            stored[0].envelope.recipients,
            ["bob@example.org", "hidden@example.net"]
        );
        assert!(
            run.stdout.contains("C: ..dot\n"),
            "{client}: {}",
            run.stdout
        );
    }
}

#[test]
fn add_missing_headers_adds_date_from_and_message_id() {
    for client in CLIENTS {
        let target = start(|_| {});
        let run = target.run(
            client,
            &[
                "--data",
                "-",
                "--add-missing-headers",
                "--from",
                "Me <me@example.com>",
                "--to",
                "b@example.org",
            ],
            b"Subject: bare\n\nhi\n",
            &[],
        );
        assert_eq!(run.code, 0, "{client}: {}", run.stderr);
        let data = String::from_utf8_lossy(&target.stored()[0].data).into_owned();
        let lines: Vec<&str> = data.lines().collect();
        assert!(lines[0].starts_with("Date: "), "{data}");
        assert_eq!(lines[1], "From: Me <me@example.com>");
        assert!(lines[2].starts_with("Message-ID: <") && lines[2].ends_with("@example.com>"));
        assert_eq!(&lines[3..], ["Subject: bare", "", "hi"]);
    }
}

/// What cannot go as it is fails before any connection, with the line named (exit 65).
#[test]
fn unsendable_messages_fail_before_connecting() {
    let long = format!("To: b@example.org\n\n{}\n", "x".repeat(1200));
    let cases: [(&[u8], &str); 3] = [
        (
            long.as_bytes(),
            "line 3 of the message cannot be sent as it is: it is 1200 octets long",
        ),
        (b"To: b@example.org\n\nnul\0here\n", "it has a NUL byte"),
        (b"Subject: x\n\nno recipient\n", "no envelope recipient"),
    ];
    for client in CLIENTS {
        let target = start(|_| {});
        for (input, sentence) in cases {
            let run = target.run(
                client,
                &["--data", "-", "-t", "--from", "a@example.com"],
                input,
                &[],
            );
            assert_eq!(run.code, 65, "{client}: {}", run.stderr);
            assert!(run.stderr.contains(sentence), "{client}: {}", run.stderr);
        }
        assert!(
            target.server.sessions().is_empty(),
            "{client} never connected"
        );
    }
}

/// 8-bit content to a server without 8BITMIME: refused after EHLO, before MAIL (exit 69).
#[test]
fn eight_bit_content_needs_8bitmime() {
    for client in CLIENTS {
        let target = start(|config| config.faults.no_8bitmime = true);
        let run = target.run(
            client,
            &["--data", "-", "-t"],
            "From: a@example.com\nTo: b@example.org\n\nGrüße\n".as_bytes(),
            &[],
        );
        assert_eq!(run.code, 69, "{client}: {}", run.stderr);
        assert!(run.stderr.contains("8BITMIME"), "{client}: {}", run.stderr);
        assert!(
            !target.last_session_commands(1).contains("MAIL FROM"),
            "{client}"
        );
    }
}

#[test]
fn sendmail_mode_delivers_what_is_piped_to_it() {
    let target = start(|_| {});
    let server = target.server.addr().to_string();
    let ca = target.ca_file.to_string_lossy().into_owned();
    let env = [
        ("SMTP_SERVER", server.as_str()),
        ("SMTP_CA_FILE", ca.as_str()),
        ("SMTP_FROM", "cron@example.com"),
        ("SMTP_HELO_NAME", "client.example"),
    ];
    let mut command = Command::new(binary("raw-client"));
    command.args(["--sendmail", "-t", "-i"]);
    let run = target.spawn(
        command,
        b"To: b@example.org\nSubject: x\n\nhi\n.\nstill the message\n",
        &env,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.is_empty(), "quiet like sendmail: {}", run.stdout);
    let stored = target.stored();
    let data = String::from_utf8_lossy(&stored[0].data).into_owned();
    assert!(data.starts_with("Date: "), "{data}");
    assert!(
        data.contains("\r\nFrom: cron@example.com\r\nMessage-ID: <"),
        "{data}"
    );
    assert!(
        data.ends_with("Subject: x\r\n\r\nhi\r\n.\r\nstill the message\r\n"),
        "{data}"
    );
    assert_eq!(stored[0].envelope.from, "cron@example.com");
    assert_eq!(stored[0].envelope.recipients, ["b@example.org"]);

    // Called as `sendmail` (a link, as /usr/sbin/sendmail would be), without -i: the lone
    // dot ends the input; -f and -F make the sender, recipients come as arguments.
    let link = target.dir.path().join("sendmail");
    std::os::unix::fs::symlink(binary("raw-client"), &link).expect("a link");
    let mut command = Command::new(&link);
    command.args(["-f", "root@example.com", "-FCron Daemon", "c@example.org"]);
    let run = target.spawn(command, b"Subject: y\n\nfirst\n.\nnever read\n", &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let stored = target.stored();
    let data = String::from_utf8_lossy(&stored[1].data).into_owned();
    assert!(
        data.contains("\r\nFrom: Cron Daemon <root@example.com>\r\n"),
        "{data}"
    );
    assert!(data.ends_with("Subject: y\r\n\r\nfirst\r\n"), "{data}");
    assert_eq!(stored[1].envelope.recipients, ["c@example.org"]);

    // As git send-email calls it: -i and recipients, no -f, no SMTP_FROM: the sender is the
    // message's From.
    let no_from: Vec<(&str, &str)> = env
        .iter()
        .copied()
        .filter(|(name, _)| *name != "SMTP_FROM")
        .collect();
    let mut command = Command::new(&link);
    command.args(["-i", "list@example.org"]);
    let run = target.spawn(
        command,
        b"From: Dev <dev@example.com>\nSubject: [PATCH] z\n\ndiff\n",
        &no_from,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let stored = target.stored();
    assert_eq!(stored[2].envelope.from, "dev@example.com");
    assert_eq!(stored[2].envelope.recipients, ["list@example.org"]);

    // No server named: exit 78, never the embedded server.
    let mut command = Command::new(&link);
    command.args(["-t"]);
    let run = target.spawn(command, MESSAGE, &[]);
    assert_eq!(run.code, 78, "{}", run.stderr);
    assert!(
        run.stderr.contains("sendmail mode needs a server"),
        "{}",
        run.stderr
    );
    let mut command = Command::new(&link);
    command.args(["-bs"]);
    let run = target.spawn(command, b"", &env);
    assert_eq!(run.code, 64, "{}", run.stderr);
}

/// Every stage: exit 0, nothing stored, and the server saw the dialogue end right there.
#[test]
fn quit_after_each_stage() {
    let stages = [
        ("connect", ""),
        ("greeting", "QUIT"),
        ("ehlo", "EHLO client.example\r\nQUIT"),
        ("tls", "EHLO client.example\r\nQUIT"),
        ("mail", "MAIL FROM:<a@example.com>\r\nQUIT"),
        ("rcpt", "RCPT TO:<b@example.org>\r\nQUIT"),
        ("data", "RCPT TO:<b@example.org>\r\nDATA"),
    ];
    for client in CLIENTS {
        let target = start(|_| {});
        let mut sessions = 0;
        for (stage, tail) in stages {
            let run = target.run(
                client,
                &[
                    "--quit-after",
                    stage,
                    "--from",
                    "a@example.com",
                    "--to",
                    "b@example.org",
                    "--transcript-format",
                    "json",
                ],
                b"",
                &[],
            );
            sessions += 1;
            if client == "lib-client" && matches!(stage, "connect" | "greeting") {
                // The named difference: lettre's connect is greeting and EHLO in one call.
                assert_eq!(run.code, 64, "{stage}: {}", run.stderr);
                assert!(
                    run.stderr
                        .contains("lettre 0.11 has no API for --quit-after"),
                    "{}",
                    run.stderr
                );
                sessions -= 1;
                continue;
            }
            assert_eq!(run.code, 0, "{client} {stage}: {}", run.stderr);
            assert_eq!(outcome(&run)["status"], "stopped", "{client} {stage}");
            let commands = target.last_session_commands(sessions);
            assert!(
                commands.trim_end().ends_with(tail),
                "{client} {stage}: {commands:?}"
            );
            if stage == "tls" {
                let session = &target.server.sessions()[sessions - 1];
                assert!(session.tls, "{client}: TLS was up");
            }
        }
        assert!(target.stored().is_empty(), "{client}: nothing delivered");
    }
}

/// `--quit-after rcpt` answers "would this recipient be accepted?" with the exit status.
#[test]
fn quit_after_rcpt_tells_a_refused_recipient() {
    for client in CLIENTS {
        let target =
            start(|config| config.faults.reject_recipients = vec!["gone@example.org".into()]);
        let run = target.run(
            client,
            &[
                "--quit-after",
                "rcpt",
                "--from",
                "a@example.com",
                "--to",
                "gone@example.org",
            ],
            b"",
            &[],
        );
        assert_eq!(run.code, 69, "{client}: {}", run.stderr);
        assert!(run.stderr.contains("gone@example.org"), "{}", run.stderr);
    }
}

#[test]
fn the_outcome_object_and_the_result_file() {
    for client in CLIENTS {
        let target = start(|_| {});
        let file = target.dir.path().join(format!("{client}.json"));
        let run = target.run(
            client,
            &[
                "--from",
                "a@example.com",
                "--to",
                "b@example.org",
                "--subject",
                "s",
                "--body",
                "b",
                "--transcript-format",
                "json",
                "--result-file",
                &file.to_string_lossy(),
            ],
            b"",
            &[],
        );
        assert_eq!(run.code, 0, "{client}: {}", run.stderr);
        let value = outcome(&run);
        let stored = target.stored();
        assert_eq!(value["status"], "sent");
        assert_eq!(value["exit"], 0);
        assert_eq!(value["queue_id"], stored[0].id.as_str());
        assert_eq!(value["reply"]["code"], 250);
        assert_eq!(value["reply"]["enhanced"], "2.0.0");
        assert_eq!(
            value["recipients"]["accepted"],
            serde_json::json!(["b@example.org"])
        );
        assert_eq!(value["recipients"]["refused"], serde_json::json!([]));
        assert!(value["bytes"]["sent"].as_u64().unwrap_or(0) > stored[0].data.len() as u64);
        let seconds = &value["seconds"];
        let (connect, tls, data, total) = (
            seconds["connect"].as_f64().unwrap_or(-1.0),
            seconds["tls"].as_f64().unwrap_or(-1.0),
            seconds["data"].as_f64().unwrap_or(-1.0),
            seconds["total"].as_f64().unwrap_or(-1.0),
        );
        assert!(
            0.0 <= connect && connect <= tls && tls <= data && data <= total,
            "{seconds}"
        );
        let written = std::fs::read_to_string(&file).expect("the result file");
        assert_eq!(
            written.trim_end(),
            run.stdout.lines().last().unwrap_or_default()
        );

        // A failure, with the text transcript: the file still says what happened.
        let refusing =
            start(|config| config.faults.reject_recipients = vec!["b@example.org".into()]);
        let run = refusing.run(
            client,
            &[
                "--from",
                "a@example.com",
                "--to",
                "b@example.org",
                "--result-file",
                &file.to_string_lossy(),
            ],
            b"",
            &[],
        );
        assert_eq!(run.code, 69, "{client}");
        let value: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).expect("file")).expect("JSON");
        assert_eq!(value["status"], "failed");
        assert_eq!(value["exit"], 69);
        assert_eq!(value["reply"]["code"], 550);
        assert_eq!(
            value["recipients"]["refused"][0]["address"],
            "b@example.org"
        );
        assert!(
            value["sentence"]
                .as_str()
                .unwrap_or_default()
                .contains("RCPT TO:<b@example.org>")
        );
        assert!(
            !run.stdout.contains("\"kind\""),
            "a text transcript stays text"
        );

        // A result file that cannot be written fails before anything is sent (exit 73).
        let run = refusing.run(
            client,
            &[
                "--from",
                "a@example.com",
                "--to",
                "c@example.org",
                "--result-file",
                "/nonexistent-dir/r.json",
            ],
            b"",
            &[],
        );
        assert_eq!(run.code, 73, "{client}: {}", run.stderr);
        assert_eq!(
            refusing.server.sessions().len(),
            1,
            "{client}: no second connection"
        );
    }
}

#[test]
fn allow_partial_sends_to_the_accepted_recipients() {
    let args = [
        "--from",
        "a@example.com",
        "--to",
        "ok@example.org",
        "--to",
        "gone@example.org",
        "--transcript-format",
        "json",
    ];
    for client in CLIENTS {
        let target =
            start(|config| config.faults.reject_recipients = vec!["gone@example.org".into()]);
        // Lettre's default: the transaction is abandoned and the refused address named.
        let run = target.run(client, &args, b"", &[]);
        assert_eq!(run.code, 69, "{client}");
        assert!(
            run.stderr.contains("RCPT TO:<gone@example.org>"),
            "{}",
            run.stderr
        );
        assert!(target.stored().is_empty());

        let mut partial = args.to_vec();
        partial.push("--allow-partial");
        let run = target.run(client, &partial, b"", &[]);
        assert_eq!(run.code, 0, "{client}: {}", run.stderr);
        assert!(
            run.stderr.contains("warning: the message went to 1 recipient(s) but the server refused 1: <gone@example.org> (\"550"),
            "{client}: {}",
            run.stderr
        );
        assert_eq!(target.stored()[0].envelope.recipients, ["ok@example.org"]);
        let value = outcome(&run);
        assert_eq!(
            value["recipients"]["accepted"],
            serde_json::json!(["ok@example.org"])
        );
        assert_eq!(value["recipients"]["refused"][0]["reply"]["code"], 550);
        assert_eq!(value["warnings"].as_array().map(Vec::len), Some(1));

        // raw-client pipelined: the refusal comes back among the group's replies.
        if client == "raw-client" {
            let mut pipelined = partial.clone();
            pipelined.push("--pipelining");
            let run = target.run(client, &pipelined, b"", &[]);
            assert_eq!(run.code, 0, "pipelined: {}", run.stderr);
            assert!(
                run.stdout.contains("pipelining (RFC 2920)"),
                "{}",
                run.stdout
            );
            assert!(run.stderr.contains("<gone@example.org>"), "{}", run.stderr);
            assert_eq!(target.stored()[1].envelope.recipients, ["ok@example.org"]);
        }

        // Every recipient refused: still a failure.
        let run = target.run(
            client,
            &[
                "--from",
                "a@example.com",
                "--to",
                "gone@example.org",
                "--allow-partial",
            ],
            b"",
            &[],
        );
        assert_eq!(run.code, 69, "{client}");
    }
}

#[test]
fn hide_data_and_timestamps() {
    for client in CLIENTS {
        let target = start(|_| {});
        let run = target.run(
            client,
            &["--data", "-", "-t", "--hide-data", "--timestamps"],
            MESSAGE,
            &[],
        );
        assert_eq!(run.code, 0, "{client}: {}", run.stderr);
        // The message as sent: 5 lines after the Bcc field went, the dot stuffed.
        let octets = "From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: piped\r\n\r\n..dot\r\nhi\r\n".len();
        let mut seen = Vec::new();
        let mut last = 0.0;
        for line in run.stdout.lines() {
            let (stamp, rest) = line.split_once("] ").expect("a timestamp");
            let stamp: f64 = stamp
                .trim_start_matches('[')
                .trim()
                .parse()
                .expect("seconds");
            assert!(stamp >= last, "{client}: time goes forward: {}", run.stdout);
            last = stamp;
            seen.push(rest.to_owned());
        }
        let at = seen
            .iter()
            .position(|l| l.starts_with("S: 354"))
            .expect("354");
        assert_eq!(
            seen[at + 1],
            format!("C: <message: {octets} octets, 6 lines>"),
            "{client}"
        );
        assert_eq!(seen[at + 2], "C: .");
        assert!(!run.stdout.contains("Subject: piped"), "{client}");
    }
}
