//! Real clients no one here wrote, sending to the server: Python's smtplib and curl.
//! Both are present on every machine this project targets; a missing one fails the
//! test (it is never skipped).

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use test_server::Config;

use crate::support::{auth_config, start};

/// A scratch directory for the CA and message files, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("test-server-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        fs::write(&path, bytes).expect("scratch file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn run(command: &mut Command, what: &str) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what} must be installed to run this test: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A message with CRLF line endings, a line starting with a dot (dot-stuffing) and
/// 8-bit content.
fn message(from: &str) -> Vec<u8> {
    format!(
        "From: <{from}>\r\nTo: <r1@example.com>\r\nSubject: real client\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         Hello from a real client.\r\n.a line starting with a dot\r\n..two dots\r\n\
         caf\u{e9}\r\n"
    )
    .into_bytes()
}

const SMTPLIB_SCRIPT: &str = r#"
import smtplib, ssl, sys
port, cafile, first, second = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
context = ssl.create_default_context(cafile=cafile)
with smtplib.SMTP("127.0.0.1", port, local_hostname="python.example", timeout=30) as smtp:
    smtp.ehlo()
    smtp.starttls(context=context)
    smtp.ehlo()
    smtp.login("alice", "s3cret")
    with open(first, "rb") as f:
        refused = smtp.sendmail("py@example.com", ["r1@example.com", "r2@example.com"], f.read())
    assert refused == {}, refused
    with open(second, "rb") as f:
        refused = smtp.sendmail("jos\u00e9@example.com", ["\u00fcber@example.com"], f.read(),
                                mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    assert refused == {}, refused
print("sent")
"#;

#[test]
fn python_smtplib_starttls_login_sendmail() {
    let server = start(auth_config());
    let scratch = Scratch::new("smtplib");
    let ca = scratch.write("ca.pem", server.ca_pem().as_bytes());
    let first = message("py@example.com");
    let second = message("jos\u{e9}@example.com");
    let first_path = scratch.write("first.eml", &first);
    let second_path = scratch.write("second.eml", &second);
    let output = run(
        Command::new("python3")
            .arg("-c")
            .arg(SMTPLIB_SCRIPT)
            .arg(server.addr().port().to_string())
            .arg(&ca)
            .arg(&first_path)
            .arg(&second_path),
        "python3",
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "sent");
    let messages = server.messages();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].data, first, "stored byte-exact");
    assert_eq!(fs::read(&messages[0].path).expect("eml"), first);
    let envelope = &messages[0].envelope;
    assert_eq!(envelope.from, "py@example.com");
    assert_eq!(envelope.recipients, ["r1@example.com", "r2@example.com"]);
    assert_eq!(envelope.auth_user.as_deref(), Some("alice"));
    assert!(envelope.tls);
    assert_eq!(envelope.helo, "python.example");
    // smtplib sends a lower-case size= parameter with the exact length.
    assert_eq!(envelope.mail_parameters, [format!("size={}", first.len())]);
    assert_eq!(messages[1].data, second);
    assert_eq!(messages[1].envelope.from, "jos\u{e9}@example.com");
    assert_eq!(messages[1].envelope.recipients, ["\u{fc}ber@example.com"]);
    let transcript = &messages[0].transcript;
    assert!(!transcript.contains("s3cret"));
    assert!(
        transcript.contains("C: AUTH PLAIN <redacted>\n"),
        "{transcript}"
    );
}

fn curl(url: &str, resolve_port: u16, ca: &Path, file: &Path, rcpt: &[&str]) -> Command {
    let mut command = Command::new("curl");
    command
        .args(["--silent", "--show-error", "--max-time", "30"])
        .arg("--url")
        .arg(url)
        .arg("--resolve")
        .arg(format!("localhost:{resolve_port}:127.0.0.1"))
        .arg("--cacert")
        .arg(ca)
        .args(["--user", "alice:s3cret", "--mail-from", "curl@example.com"])
        .arg("--upload-file")
        .arg(file);
    for r in rcpt {
        command.args(["--mail-rcpt", r]);
    }
    command
}

#[test]
fn curl_smtp_with_ssl_reqd_and_smtps() {
    let server = start(Config {
        tls_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..auth_config()
    });
    let scratch = Scratch::new("curl");
    let ca = scratch.write("ca.pem", server.ca_pem().as_bytes());
    let body = message("curl@example.com");
    let file = scratch.write("message.eml", &body);

    let port = server.addr().port();
    run(
        curl(
            &format!("smtp://localhost:{port}"),
            port,
            &ca,
            &file,
            &["a@example.com", "b@example.com"],
        )
        .arg("--ssl-reqd"),
        "curl",
    );
    let tls_port = server.tls_addr().expect("TLS listener").port();
    run(
        &mut curl(
            &format!("smtps://localhost:{tls_port}"),
            tls_port,
            &ca,
            &file,
            &["c@example.com"],
        ),
        "curl",
    );

    let messages = server.messages();
    assert_eq!(messages.len(), 2);
    for message in &messages {
        assert_eq!(message.data, body, "curl's bytes stored exactly");
        assert_eq!(fs::read(&message.path).expect("eml"), body);
        assert_eq!(message.envelope.from, "curl@example.com");
        assert_eq!(message.envelope.auth_user.as_deref(), Some("alice"));
        assert!(message.envelope.tls);
    }
    assert_eq!(
        messages[0].envelope.recipients,
        ["a@example.com", "b@example.com"]
    );
    assert_eq!(messages[1].envelope.recipients, ["c@example.com"]);
    let sessions = server.wait_for_sessions(2, Duration::from_secs(10));
    let starttls = sessions
        .iter()
        .find(|s| s.message_ids == [messages[0].id.clone()])
        .expect("the STARTTLS session");
    let text = starttls.transcript.render_text(Default::default());
    assert!(
        text.contains("C: STARTTLS\nS: 220 2.0.0 Ready to start TLS\n-- TLS established\n"),
        "{text}"
    );
    assert!(!text.contains("s3cret"));
}

#[test]
fn curl_without_tls_is_refused_auth() {
    // curl asked to authenticate on plaintext: the server offers no AUTH there, so curl
    // cannot log in and nothing is stored.
    let server = start(auth_config());
    let scratch = Scratch::new("curl-plain");
    let ca = scratch.write("ca.pem", server.ca_pem().as_bytes());
    let file = scratch.write("message.eml", &message("curl@example.com"));
    let port = server.addr().port();
    let output = curl(
        &format!("smtp://localhost:{port}"),
        port,
        &ca,
        &file,
        &["a@example.com"],
    )
    .output()
    .expect("curl must be installed to run this test");
    assert!(!output.status.success());
    assert!(server.messages().is_empty());
}

/// curl's own XOAUTH2 and OAUTHBEARER (`--oauth2-bearer`), each offered alone, over STARTTLS
/// and implicit TLS: a valid token delivers; for a wrong one curl meets the error status,
/// answers it and gives up.
#[test]
fn curl_oauth2_bearer_xoauth2_and_oauthbearer() {
    for mechanism in ["XOAUTH2", "OAUTHBEARER"] {
        let server = start(Config {
            tls_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            oauth2_tokens: vec![("alice".into(), "ya29.curl-token".into())],
            auth_mechanisms: Some(vec![mechanism.to_owned()]),
            ..Config::default()
        });
        let scratch = Scratch::new(&format!("curl-{mechanism}"));
        let ca = scratch.write("ca.pem", server.ca_pem().as_bytes());
        let body = message("curl@example.com");
        let file = scratch.write("message.eml", &body);
        let port = server.addr().port();
        let tls_port = server.tls_addr().expect("TLS listener").port();
        let bearer = |url: String, port: u16, token: &str| {
            let mut command = curl(&url, port, &ca, &file, &["a@example.com"]);
            command.args(["--user", "alice:", "--oauth2-bearer", token]);
            if url.starts_with("smtp:") {
                command.arg("--ssl-reqd");
            }
            command
        };
        let smtp = format!("smtp://localhost:{port}");
        run(&mut bearer(smtp.clone(), port, "ya29.curl-token"), "curl");
        let smtps = format!("smtps://localhost:{tls_port}");
        run(&mut bearer(smtps, tls_port, "ya29.curl-token"), "curl");
        let refused = bearer(smtp, port, "expired-token")
            .output()
            .expect("curl must be installed to run this test");
        assert!(
            !refused.status.success(),
            "{mechanism}: a wrong token fails"
        );

        let messages = server.messages();
        assert_eq!(messages.len(), 2, "{mechanism}");
        for message in &messages {
            assert_eq!(message.data, body);
            assert_eq!(message.envelope.auth_user.as_deref(), Some("alice"));
        }
        let sessions = server.wait_for_sessions(3, Duration::from_secs(10));
        let texts: Vec<String> = sessions
            .iter()
            .map(|s| s.transcript.render_text(Default::default()))
            .collect();
        let offered = format!("S: 250 AUTH {mechanism}\nC: AUTH {mechanism}");
        assert!(texts.iter().all(|t| t.contains(&offered)), "{texts:#?}");
        // The error path: the status, then (OAUTHBEARER) curl's \x01, redacted, and 535;
        // for XOAUTH2, curl 7.88 hangs up at the status instead of sending the empty line.
        let error = format!("-- {mechanism}: the token is not valid for this user\nS: 334 eyJ");
        let failed = texts
            .iter()
            .find(|t| t.contains(&error))
            .unwrap_or_else(|| panic!("{mechanism}: the error path in {texts:#?}"));
        let (_, after) = failed.split_once(&error).unwrap_or_default();
        let (_, after) = after.split_once('\n').unwrap_or_default();
        match mechanism {
            "OAUTHBEARER" => assert!(
                after.starts_with(
                    "C: <redacted>\nS: 535 5.7.8 Authentication credentials invalid\n"
                ),
                "{failed}"
            ),
            _ => assert!(
                after.starts_with("-- the client closed the connection during AUTH\n"),
                "{failed}"
            ),
        }
        assert!(
            !failed.contains("-- the client did not answer the error status"),
            "{failed}"
        );
        for text in &texts {
            assert!(!text.contains("ya29.curl-token") && !text.contains("expired-token"));
        }
    }
}

const SMTPLIB_XOAUTH2_SCRIPT: &str = r#"
import smtplib, ssl, sys, json, base64
port, cafile, token = int(sys.argv[1]), sys.argv[2], sys.argv[3]
context = ssl.create_default_context(cafile=cafile)
statuses = []
def xoauth2(challenge=None):
    # smtplib calls this for the initial response, then with each decoded 334 challenge.
    if challenge is None:
        return "user=alice\x01auth=Bearer " + token + "\x01\x01"
    statuses.append(json.loads(challenge))
    return ""
with smtplib.SMTP("127.0.0.1", port, local_hostname="python.example", timeout=30) as smtp:
    smtp.ehlo()
    smtp.starttls(context=context)
    smtp.ehlo()
    try:
        smtp.auth("XOAUTH2", xoauth2, initial_response_ok=True)
        smtp.sendmail("py@example.com", ["r1@example.com"], b"Subject: x\r\n\r\nx\r\n")
        print("sent")
    except smtplib.SMTPAuthenticationError as e:
        print("refused", e.smtp_code, json.dumps(statuses))
"#;

/// Python's smtplib with an XOAUTH2 callback: a valid token delivers; a wrong one gets the
/// JSON status, which smtplib hands to the callback, answers empty, then `535`.
#[test]
fn python_smtplib_xoauth2() {
    let server = start(Config {
        oauth2_tokens: vec![("alice".into(), "ya29.py-token".into())],
        ..Config::default()
    });
    let scratch = Scratch::new("smtplib-xoauth2");
    let ca = scratch.write("ca.pem", server.ca_pem().as_bytes());
    let python = |token: &str| {
        let output = run(
            Command::new("python3")
                .arg("-c")
                .arg(SMTPLIB_XOAUTH2_SCRIPT)
                .arg(server.addr().port().to_string())
                .arg(&ca)
                .arg(token),
            "python3",
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    assert_eq!(python("ya29.py-token"), "sent");
    assert_eq!(
        python("expired"),
        r#"refused 535 [{"status": "401", "schemes": "Bearer", "scope": "https://mail.google.com/"}]"#
    );
    assert_eq!(
        server.messages()[0].envelope.auth_user.as_deref(),
        Some("alice")
    );
    let sessions = server.wait_for_sessions(2, Duration::from_secs(10));
    let refused = sessions[1].transcript.render_text(Default::default());
    assert!(
        refused.contains("S: 334 eyJ") && refused.contains("C: <redacted>\nS: 535 5.7.8"),
        "{refused}"
    );
    assert!(
        !refused.contains("-- the client did not answer"),
        "{refused}"
    );
}
