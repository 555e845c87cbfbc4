//! `raw-client --interactive`, the SMTP shell, as its users drive it: typed into a
//! pseudo-terminal (rustyline, the password prompt without echo), and as a script on a pipe.
//! Each run talks to a fresh test server, which proves what arrived byte for byte.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rexpect::process::WaitStatus;
use rexpect::session::{Options, PtySession};
use test_server::{Config, Server};
use workspace_tests::TempDir;

const USER: &str = "alice";
const PASSWORD: &str = "s3cret-Pa55";
/// The raw-client binary.
fn binary() -> PathBuf {
    workspace_tests::binary("raw-client")
}

/// A test server with one user, its CA written to a file.
struct Lab {
    server: Server,
    ca_file: PathBuf,
    _dir: TempDir,
}

fn lab(change: impl FnOnce(&mut Config)) -> Lab {
    let dir = TempDir::new("interactive");
    let mut config = Config {
        users: vec![(USER.to_owned(), PASSWORD.to_owned())],
        store: Some(dir.path().join("store")),
        sync: false,
        ..Config::default()
    };
    change(&mut config);
    let server = Server::start(config).expect("the test server starts");
    let ca_file = dir.file("ca.pem", server.ca_pem().as_bytes());
    Lab {
        server,
        ca_file,
        _dir: dir,
    }
}

impl Lab {
    /// `raw-client --interactive --server … --ca-file …` plus `extra`, with none of the
    /// reader's SMTP_* settings.
    fn command(&self, extra: &[&str]) -> Command {
        let mut command = Command::new(binary());
        command
            .arg("--interactive")
            .args(["--server", &self.server.addr().to_string()])
            .arg("--ca-file")
            .arg(&self.ca_file)
            .args(["--timeout", "10s"])
            .args(extra);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("SMTP_") {
                command.env_remove(name);
            }
        }
        command
    }

    /// Runs the shell with `script` on its standard input (a pipe, not a terminal).
    fn script(&self, extra: &[&str], script: &str, env: &[(&str, &str)]) -> Run {
        let mut command = self.command(extra);
        command.envs(env.iter().copied());
        run_script(command, script)
    }
}

/// What a scripted run printed.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run_script(mut command: Command, script: &str) -> Run {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("raw-client starts");
    let mut stdin = child.stdin.take().expect("its standard input");
    stdin
        .write_all(script.as_bytes())
        .expect("the script is written");
    drop(stdin);
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("raw-client ends");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Every form in which the password could leak.
fn secret_forms(user: &str, password: &str) -> Vec<String> {
    vec![
        password.to_owned(),
        BASE64.encode(password),
        BASE64.encode(format!("\0{user}\0{password}")),
    ]
}

/// A pseudo-terminal session that keeps everything it read, to check it afterwards.
struct Terminal {
    session: PtySession,
    seen: String,
}

impl Terminal {
    fn expect(&mut self, text: &str) {
        match self.session.exp_string(text) {
            Ok(before) => {
                self.seen.push_str(before.as_str());
                self.seen.push_str(text);
            }
            Err(error) => panic!(
                "waited for {text:?}: {error}\nthe terminal showed:\n{}",
                self.seen
            ),
        }
    }

    /// Types a line at the prompt that `prompt` names, once it is shown.
    fn type_line(&mut self, prompt: &str, line: &str) {
        self.expect(prompt);
        self.session.send_line(line).expect("typed");
    }
}

#[test]
fn a_whole_session_typed_into_a_terminal_is_stored_byte_exact() {
    let lab = lab(|_| {});
    let mut command = lab.command(&["--helo-name", "client.example"]);
    command.env("TERM", "xterm").env("NO_COLOR", "1");
    let session = rexpect::session::spawn_with_options(
        command,
        Options::new()
            .timeout_ms(Some(30_000))
            .strip_ansi_escape_codes(true),
    )
    .expect("raw-client starts in a pseudo-terminal");
    let mut terminal = Terminal {
        session,
        seen: String::new(),
    };
    let message = [
        "Date: Mon, 23 Nov 2026 12:00:00 +0000",
        "From: Alice <alice@example.com>",
        "To: Bob <bob@example.org>",
        "Subject: typed in a terminal",
        "",
        "Hello Bob.",
        ".this line starts with a dot",
        "Bye.",
    ];
    terminal.expect("S: 220 localhost ESMTP test-server ready");
    terminal.type_line("smtp> ", "EHLO client.example");
    terminal.expect("S: 250 STARTTLS");
    terminal.type_line("smtp> ", "STARTTLS");
    terminal.expect("S: 220 2.0.0 Ready to start TLS");
    terminal.expect("-- TLS established (TLSv1_3, ");
    terminal.type_line("smtp> ", "EHLO client.example");
    terminal.expect("S: 250 AUTH PLAIN LOGIN");
    terminal.type_line("smtp> ", "?");
    terminal.expect("AUTH PLAIN or AUTH LOGIN");
    terminal.type_line("smtp> ", "AUTH PLAIN");
    terminal.type_line("user: ", USER);
    terminal.type_line("password for alice: ", PASSWORD);
    terminal.expect("C: AUTH PLAIN <redacted>");
    terminal.expect("S: 235 2.7.0 Authentication successful");
    terminal.type_line("smtp> ", "MAIL FROM:<alice@example.com>");
    terminal.expect("S: 250 2.1.0 Ok");
    terminal.type_line("smtp> ", "RCPT TO:<bob@example.org>");
    terminal.expect("S: 250 2.1.5 Ok");
    terminal.type_line("smtp> ", "DATA");
    terminal.expect("S: 354 End data with <CR><LF>.<CR><LF>");
    for line in message {
        terminal.type_line("data> ", line);
        if line.starts_with('.') {
            terminal.expect("C: ..this line starts with a dot");
            terminal.expect("-- dot-stuffed: the line begins with \".\"");
        }
    }
    terminal.type_line("data> ", ".");
    terminal.expect("S: 250 2.0.0 Ok: queued as 000001");
    terminal.type_line("smtp> ", "QUIT");
    terminal.expect("S: 221 2.0.0 Bye");
    terminal.expect("-- connection closed");
    match terminal.session.process().wait() {
        Ok(WaitStatus::Exited(_, code)) => assert_eq!(code, 0, "{}", terminal.seen),
        other => panic!("raw-client did not exit: {other:?}\n{}", terminal.seen),
    }

    let seen = &terminal.seen;
    for secret in secret_forms(USER, PASSWORD) {
        assert!(!seen.contains(&secret), "{secret:?} appeared:\n{seen}");
    }
    // What the user typed is on the screen already, so its C: line is not repeated; what
    // the shell wrote for the user is shown.
    assert!(!seen.contains("C: EHLO client.example"), "{seen}");
    assert!(!seen.contains("C: Hello Bob."), "{seen}");
    let messages = lab.server.messages();
    assert_eq!(messages.len(), 1, "{seen}");
    let mut typed = message.join("\r\n");
    typed.push_str("\r\n");
    assert_eq!(String::from_utf8_lossy(&messages[0].data), typed);
    assert_eq!(messages[0].envelope.from, "alice@example.com");
    let sessions = lab.server.wait_for_sessions(1, Duration::from_secs(5));
    let server_saw = sessions[0].transcript.render_text(Default::default());
    assert!(
        server_saw.contains("C: ..this line starts with a dot\n"),
        "{server_saw}"
    );
}

#[test]
fn a_script_on_standard_input_prints_the_whole_transcript() {
    let lab = lab(|_| {});
    let run = lab.script(
        &["--helo-name", "client.example"],
        "EHLO client.example\n\
         STARTTLS\n\
         EHLO client.example\n\
         AUTH LOGIN\n\
         alice\n\
         s3cret-Pa55\n\
         MAIL FROM:<alice@example.com>\n\
         RCPT TO:<bob@example.org>\n\
         DATA\n\
         Subject: scripted\n\
         \n\
         ..already doubled by hand\n\
         .\n\
         QUIT\n",
        &[],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let port = lab.server.addr().port().to_string();
    let stdout = run.stdout.replace(&port, "PORT");
    let expected = "\
-- connected to 127.0.0.1:PORT
S: 220 localhost ESMTP test-server ready
C: EHLO client.example
S: 250-localhost greets client.example
S: 250-PIPELINING
S: 250-SIZE 36700160
S: 250-8BITMIME
S: 250-BINARYMIME
S: 250-CHUNKING
S: 250-SMTPUTF8
S: 250-ENHANCEDSTATUSCODES
S: 250-DSN
S: 250 STARTTLS
C: STARTTLS
S: 220 2.0.0 Ready to start TLS
-- TLS established (TLSv1_3, TLS13_AES_256_GCM_SHA384)
C: EHLO client.example
S: 250-localhost greets client.example
S: 250-PIPELINING
S: 250-SIZE 36700160
S: 250-8BITMIME
S: 250-BINARYMIME
S: 250-CHUNKING
S: 250-SMTPUTF8
S: 250-ENHANCEDSTATUSCODES
S: 250-DSN
S: 250-REQUIRETLS
S: 250 AUTH PLAIN LOGIN
C: AUTH LOGIN
S: 334 VXNlcm5hbWU6
C: <redacted>
S: 334 UGFzc3dvcmQ6
C: <redacted>
S: 235 2.7.0 Authentication successful
C: MAIL FROM:<alice@example.com>
S: 250 2.1.0 Ok
C: RCPT TO:<bob@example.org>
S: 250 2.1.5 Ok
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
C: Subject: scripted
C: 
C: ...already doubled by hand
-- dot-stuffed: the line begins with \".\", so the shell sent a second \".\" before it
C: .
S: 250 2.0.0 Ok: queued as 000001
C: QUIT
S: 221 2.0.0 Bye
-- connection closed
";
    assert_eq!(stdout, expected);
    assert_eq!(run.stderr, "");
    for secret in secret_forms(USER, PASSWORD) {
        assert!(!run.stdout.contains(&secret), "{secret:?} leaked");
    }
    let messages = lab.server.messages();
    assert_eq!(
        String::from_utf8_lossy(&messages[0].data),
        "Subject: scripted\r\n\r\n..already doubled by hand\r\n"
    );
}

#[test]
fn the_options_fill_in_the_login_and_the_help_follows_the_dialogue() {
    let lab = lab(|_| {});
    let run = lab.script(
        &["--user", USER, "--password-env", "SHELL_TEST_PASSWORD"],
        "?\nEHLO a.example\nSTARTTLS\n?\nEHLO a.example\nMAIL FROM:<alice@example.com>\n?\nAUTH PLAIN\n?\nQUIT\n",
        &[("SHELL_TEST_PASSWORD", PASSWORD)],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let stdout = &run.stdout;
    for expected in [
        "  EHLO <your name>  send EHLO first",
        "so far: greeted (220), EHLO not yet repeated after TLS, TLS on,",
        "after STARTTLS, send EHLO again: what the server said before TLS may have been tampered with, so it is forgotten (RFC 3207 §4.2)",
        "S: 530 5.7.0 Authentication required",
        "is refused until you authenticate: the server answered 530 (RFC 4954 §6)",
        "-- AUTH as alice with the password given in the options\nC: AUTH PLAIN <redacted>\nS: 235 2.7.0 Authentication successful\n",
        "so far: greeted (220), EHLO answered, TLS on, logged in, no transaction",
    ] {
        assert!(stdout.contains(expected), "no {expected:?} in:\n{stdout}");
    }
    for secret in secret_forms(USER, PASSWORD) {
        assert!(!stdout.contains(&secret), "{secret:?} leaked");
    }
}

#[test]
fn lines_the_shell_will_not_send_are_refused_and_a_script_exits_65() {
    let lab = lab(|_| {});
    let long = format!("NOOP {}", "x".repeat(510));
    let script =
        format!("EHLO a.example\nAUTH PLAIN\nNOOP\rMAIL FROM:<x@example.com>\n{long}\nQUIT\n");
    let run = lab.script(&[], &script, &[]);
    assert_eq!(run.code, 65, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        run.stderr,
        "raw-client: not sent: AUTH before TLS would show the password to anyone on the path; type STARTTLS first (RFC 3207 §4), or start the shell with --allow-plaintext-auth\n\
         raw-client: not sent: the line holds a bare CR or LF, and an SMTP line ends only with CRLF (RFC 5321 §2.3.8); servers that read it differently are how SMTP smuggling works\n\
         raw-client: not sent: the line is 517 octets with its CRLF, and a command line may have at most 512 (RFC 5321 §4.5.3.1.4)\n"
    );
    assert!(
        run.stdout
            .ends_with("C: QUIT\nS: 221 2.0.0 Bye\n-- connection closed\n")
    );
    let sessions = lab.server.wait_for_sessions(1, Duration::from_secs(5));
    let server_saw = sessions[0].transcript.client_bytes();
    assert_eq!(
        String::from_utf8_lossy(&server_saw),
        "EHLO a.example\r\nQUIT\r\n",
        "nothing refused reached the server"
    );
}

#[test]
fn the_end_of_input_inside_the_message_sends_nothing_more() {
    let lab = lab(|config| config.users.clear());
    let run = lab.script(
        &[],
        "EHLO a.example\nMAIL FROM:<a@example.com>\nRCPT TO:<b@example.org>\nDATA\nSubject: unfinished\n",
        &[],
    );
    assert_eq!(run.code, 65, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("the input ended inside the message, before the line holding only \".\""),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout
            .ends_with("C: Subject: unfinished\n-- connection closed\n")
    );
    lab.server.wait_for_sessions(1, Duration::from_secs(5));
    assert!(lab.server.messages().is_empty());
}

#[test]
fn starttls_checks_for_injection_and_the_certificate_as_a_send_does() {
    let injecting = lab(|config| {
        config.faults.inject_after_starttls = Some(b"250 injected\r\n".to_vec());
    });
    let run = injecting.script(&[], "EHLO a.example\nSTARTTLS\nEHLO a.example\n", &[]);
    assert_eq!(run.code, 76, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        run.stderr,
        "raw-client: the server sent 14 bytes after its STARTTLS reply, before the TLS handshake: this is a response injection attack or a broken server, so the connection was dropped\n"
    );
    assert!(!run.stdout.contains("TLS established"), "{}", run.stdout);

    let untrusted = lab(|_| {});
    let mut command = Command::new(binary());
    command
        .arg("--interactive")
        .args(["--server", &untrusted.server.addr().to_string()])
        .env_remove("SMTP_CA_FILE");
    let run = run_script(command, "EHLO a.example\nSTARTTLS\nEHLO a.example\n");
    assert_eq!(run.code, 78, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        run.stderr,
        "raw-client: the server certificate is not valid for 127.0.0.1 (UnknownIssuer): if the server uses its own CA, pass it with --ca-file\n"
    );
    assert!(
        run.stdout
            .ends_with("S: 220 2.0.0 Ready to start TLS\n-- connection closed\n")
    );
}

#[test]
fn the_embedded_server_is_the_default_and_says_what_it_stored() {
    let mut command = Command::new(binary());
    command.args(["--interactive", "--quiet", "--helo-name", "client.example"]);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SMTP_") {
            command.env_remove(name);
        }
    }
    let run = run_script(
        command,
        "EHLO client.example\nSTARTTLS\nEHLO client.example\nAUTH PLAIN\nMAIL FROM:<a@example.com>\nRCPT TO:<b@example.org>\nDATA\nSubject: hi\n.\nQUIT\n",
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .starts_with("-- connected to the embedded test server\n")
    );
    assert!(
        run.stdout.contains(
            "-- AUTH as demo with the embedded test server's demo password\nC: AUTH PLAIN <redacted>\nS: 235"
        ),
        "{}",
        run.stdout
    );
    assert_eq!(
        run.stderr,
        "raw-client: the embedded test server stored the message as 000001; its store is removed at exit (add --keep to keep it)\n"
    );
    for secret in secret_forms(cli::DEMO_USER, cli::DEMO_PASSWORD) {
        assert!(!run.stdout.contains(&secret), "{secret:?} leaked");
    }
}
