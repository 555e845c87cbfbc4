//! `test-server lab` as a command: its exit codes, its output kept apart from the client's,
//! and the mode without a command, where a client run by hand connects.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn lab(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_test-server"));
    command
        .args([
            "lab",
            "--listen",
            "127.0.0.1:0",
            "--tls-listen",
            "127.0.0.1:0",
        ])
        .args(args);
    command
}

fn run(args: &[&str]) -> Output {
    lab(args).output().expect("test-server runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_command_that_cannot_start_or_never_connects_exits_2() {
    let missing = run(&["--", "no-such-client-program"]);
    assert_eq!(missing.status.code(), Some(2));
    let stderr = text(&missing.stderr);
    assert!(
        stderr.contains("cannot start no-such-client-program:"),
        "{stderr}"
    );
    let silent = run(&["--", "true"]);
    assert_eq!(silent.status.code(), Some(2));
    assert!(
        text(&silent.stderr).contains("no client connected to 127.0.0.1:"),
        "{}",
        text(&silent.stderr)
    );
}

#[test]
fn the_client_gets_the_server_in_its_environment_and_its_output_is_fenced_off() {
    let output = run(&[
        "--profile",
        "plain",
        "--",
        "sh",
        "-c",
        "echo host=$SMTP_HOST from=$SMTP_FROM to=$SMTP_TO tls=$SMTP_TLS user=${SMTP_USER:-none}",
    ]);
    assert_eq!(output.status.code(), Some(2), "the client never connected");
    let stdout = text(&output.stdout);
    assert!(stdout.contains("----- output of sh -c echo "), "{stdout}");
    assert!(
        stdout.contains(
            "\nhost=127.0.0.1 from=student@lab.test to=teacher@lab.test tls=none user=none\n"
        ),
        "{stdout}"
    );
    assert!(stdout.contains(": exit status: 0 -----\n"), "{stdout}");
}

#[test]
fn with_json_standard_output_holds_only_the_scorecard() {
    // A client that prints on its standard output and sends a message without QUIT.
    let client = "printf 'client chatter\\n'; \
                  exec 3<>/dev/tcp/$SMTP_HOST/$SMTP_PORT; read -r greeting <&3; \
                  printf 'HELO me\\r\\n' >&3; read -r reply <&3; exec 3<&-";
    let output = run(&["--profile", "plain", "--json", "--", "bash", "-c", client]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let json: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("standard output is the JSON alone");
    assert_eq!(json["passed"], false);
    let quit = json["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["id"] == "quit"))
        .expect("the quit check");
    assert_eq!(quit["status"], "fail");
    assert!(text(&output.stderr).contains("client chatter"));
}

#[test]
fn without_a_command_it_says_where_to_connect_and_grades_the_session_that_comes() {
    let mut child = lab(&["--profile", "plain", "--timeout", "60s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("test-server lab starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut port = None;
    let mut shown = String::new();
    while port.is_none() {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap_or(0) == 0 {
            panic!("the lab ended before saying where to connect: {shown}");
        }
        shown.push_str(&line);
        port = line.trim().strip_prefix("SMTP_PORT=").map(str::to_owned);
    }
    let port = port.unwrap_or_default();
    assert!(shown.contains("point your client at the server"), "{shown}");
    // A correct client, by hand.
    let mut tcp = TcpStream::connect(format!("127.0.0.1:{port}")).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(20))).ok();
    let mut reader = BufReader::new(tcp.try_clone().expect("clone"));
    let reply = |reader: &mut BufReader<TcpStream>| loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("a reply line");
        if line.as_bytes().get(3) != Some(&b'-') {
            return line;
        }
    };
    assert!(reply(&mut reader).starts_with("220 "));
    for (command, code) in [
        ("EHLO by-hand.example\r\n", "250"),
        ("MAIL FROM:<a@lab.test>\r\n", "250"),
        ("RCPT TO:<b@lab.test>\r\n", "250"),
        ("DATA\r\n", "354"),
        (
            "Date: Tue, 01 Dec 2026 12:00:00 +0000\r\nFrom: a@lab.test\r\n\r\n..dot\r\n.\r\n",
            "250",
        ),
        ("QUIT\r\n", "221"),
    ] {
        tcp.write_all(command.as_bytes()).expect("write");
        let line = reply(&mut reader);
        assert!(line.starts_with(code), "{command:?} got {line:?}");
    }
    drop(tcp);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).expect("the scorecard");
    let status = child.wait().expect("the lab ends");
    assert_eq!(status.code(), Some(0), "{rest}");
    assert!(
        rest.contains("lab scorecard: profile plain, 1 session"),
        "{rest}"
    );
    assert!(rest.contains("✓ dot-stuffing"), "{rest}");
    assert!(rest.contains(" passed, 0 failed, "), "{rest}");
}
