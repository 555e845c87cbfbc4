//! The proof: for every scenario, raw-client and lib-client put the same bytes on the wire.
//!
//! Each scenario runs both clients against their own fresh test server and asserts that
//! 1. the bytes the server received (after TLS, DATA included) are identical,
//! 2. the two clients' own transcripts are identical, and so are their exit codes and
//!    error sentences,
//! 3. the server-side transcript matches its reviewed insta snapshot.
//!
//! Where lettre does something else on an error path, the test names the difference and
//! asserts exactly what it is, instead of hiding it.

use cli::Exit;
use workspace_tests::{Client, ClientRun, Scenario, TempDir, run};

/// Runs both clients and asserts they agree completely; returns both runs.
fn prove(name: &str, scenario: &Scenario) -> (ClientRun, ClientRun) {
    let raw = run(Client::RAW, scenario);
    let lib = run(Client::Lib, scenario);
    assert_eq!(
        String::from_utf8_lossy(&raw.server_received()),
        String::from_utf8_lossy(&lib.server_received()),
        "{name}: the server received different bytes"
    );
    assert_eq!(raw.server_received(), lib.server_received(), "{name}");
    assert_eq!(raw.text, lib.text, "{name}: the client transcripts differ");
    assert_eq!(raw.result, lib.result, "{name}: the outcomes differ");
    insta::assert_snapshot!(name, raw.server_text());
    (raw, lib)
}

fn stored_data(run: &ClientRun) -> Vec<u8> {
    assert_eq!(run.stored.len(), 1, "exactly one message stored");
    run.stored[0].data.clone()
}

#[test]
fn plain() {
    let (raw, lib) = prove("plain", &Scenario::new("none", &[]));
    assert_eq!(raw.exit(), Exit::Sent);
    assert_eq!(stored_data(&raw), stored_data(&lib));
    assert!(raw.text.contains("C: MAIL FROM:<alice@example.com>\n"));
}

#[test]
fn starttls_auth_plain() {
    let (raw, _) = prove(
        "starttls_auth_plain",
        &Scenario::new("starttls", &[]).with_login(),
    );
    assert_eq!(raw.exit(), Exit::Sent);
    assert!(raw.text.contains("C: AUTH PLAIN <redacted>\n"));
    assert!(raw.stored[0].envelope.tls);
    assert_eq!(raw.stored[0].envelope.auth_user.as_deref(), Some("alice"));
}

#[test]
fn starttls_auth_login_only() {
    let scenario = Scenario::new("starttls", &[])
        .with_login()
        .server(|c| c.faults.auth_login_only = true);
    let (raw, _) = prove("starttls_auth_login_only", &scenario);
    assert_eq!(raw.exit(), Exit::Sent);
    assert!(raw.text.contains("C: AUTH LOGIN\n"));
    assert!(!raw.text.contains("AUTH PLAIN"));
}

#[test]
fn implicit_tls_auth() {
    let (raw, _) = prove(
        "implicit_tls_auth",
        &Scenario::new("implicit", &[]).with_login(),
    );
    assert_eq!(raw.exit(), Exit::Sent);
    assert!(
        raw.text
            .starts_with("-- connected to 127.0.0.1:PORT\n-- TLS established\nS: 220 ")
    );
}

#[test]
fn to_cc_bcc() {
    let scenario = Scenario::new(
        "starttls",
        &[
            "--to",
            "Bob <bob@example.org>",
            "--cc",
            "carol@example.net",
            "--bcc",
            "dave@example.com",
        ],
    )
    .with_login();
    let (raw, _) = prove("to_cc_bcc", &scenario);
    let envelope = &raw.stored[0].envelope;
    assert_eq!(
        envelope.recipients,
        ["bob@example.org", "carol@example.net", "dave@example.com"]
    );
    let data = String::from_utf8_lossy(&raw.stored[0].data).into_owned();
    assert!(data.contains("\r\nCc: carol@example.net\r\n"));
    assert!(
        !data.contains("dave@example.com"),
        "Bcc never reaches the headers"
    );
}

#[test]
fn html_and_two_attachments() {
    let dir = TempDir::new("proof-attach");
    let binary: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let bin = dir.file("data.bin", &binary);
    let txt = dir.file("notes.txt", b"first line\nsecond line\n");
    let html = dir.file("body.html", b"<p>Hello <b>Bob</b></p>\n");
    let (bin, txt, html) = (
        bin.display().to_string(),
        txt.display().to_string(),
        html.display().to_string(),
    );
    let scenario = Scenario::new(
        "starttls",
        &["--html-file", &html, "--attach", &txt, "--attach", &bin],
    )
    .with_login();
    let (raw, lib) = prove("html_and_two_attachments", &scenario);
    let data = String::from_utf8_lossy(&stored_data(&raw)).into_owned();
    assert!(data.contains("multipart/mixed"));
    assert!(data.contains("multipart/alternative"));
    assert!(data.contains("filename=\"data.bin\""));
    assert_eq!(stored_data(&raw), stored_data(&lib));
}

#[test]
fn non_ascii_8bit() {
    let scenario = Scenario::new(
        "starttls",
        &[
            "--from",
            "Jürgen Groß <juergen@example.com>",
            "--to",
            "Zoë <zoe@example.org>",
            "--subject",
            "Grüße aus Köln ☕",
            "--body",
            "Café crème, naïve façade.\n",
        ],
    )
    .with_login();
    let (raw, _) = prove("non_ascii_8bit", &scenario);
    assert!(
        raw.text
            .contains("C: MAIL FROM:<juergen@example.com> BODY=8BITMIME\n")
    );
    assert!(
        raw.stored[0]
            .envelope
            .mail_parameters
            .contains(&"BODY=8BITMIME".to_owned())
    );
}

#[test]
fn internationalized_address() {
    let scenario = Scenario::new(
        "starttls",
        &[
            "--from",
            "José <josé@example.com>",
            "--to",
            "用户@例子.广告",
            "--body",
            "Hi.\n",
        ],
    )
    .with_login();
    let (raw, _) = prove("internationalized_address", &scenario);
    assert!(
        raw.text
            .contains("C: MAIL FROM:<josé@example.com> SMTPUTF8 BODY=8BITMIME\n")
    );
    assert!(raw.text.contains("C: RCPT TO:<用户@例子.广告>\n"));
    assert_eq!(raw.exit(), Exit::Sent);
}

#[test]
fn lines_starting_with_a_dot() {
    let body = ".start\n..two dots\n.\nend\n";
    let (raw, lib) = prove("dot_lines", &Scenario::new("none", &["--body", body]));
    assert!(
        raw.text
            .contains("C: ..start\nC: ...two dots\nC: ..\nC: end\nC: .\n")
    );
    let data = String::from_utf8_lossy(&stored_data(&lib)).into_owned();
    assert!(
        data.ends_with("\r\n\r\n.start\r\n..two dots\r\n.\r\nend\r\n"),
        "{data:?}"
    );
}

#[test]
fn bare_line_feeds_in_the_input() {
    let body = "one\ntwo\rthree\n.\nfour";
    let (raw, _) = prove("bare_lf", &Scenario::new("none", &["--body", body]));
    let data = stored_data(&raw);
    let text = String::from_utf8_lossy(&data);
    assert!(
        text.ends_with("\r\n\r\none\r\ntwo\r\nthree\r\n.\r\nfour\r\n"),
        "{text:?}"
    );
    assert_eq!(
        raw.exit(),
        Exit::Sent,
        "the strict server accepted it: no bare LF on the wire"
    );
}

#[test]
fn rejected_recipient() {
    let scenario = Scenario::new(
        "starttls",
        &["--to", "bob@example.org", "--to", "nobody@example.org"],
    )
    .with_login()
    .server(|c| c.faults.reject_recipients = vec!["nobody@example.org".into()]);
    let (raw, _) = prove("rejected_recipient", &scenario);
    assert_eq!(raw.exit(), Exit::Unavailable);
    assert!(raw.stored.is_empty());
    let message = raw.result.expect_err("rejected").to_string();
    assert!(
        message.starts_with("the server rejected RCPT TO:<nobody@example.org> with \"550"),
        "{message}"
    );
}

#[test]
fn temporary_failure_on_mail() {
    let scenario = Scenario::new("starttls", &[])
        .with_login()
        .server(|c| c.faults.tempfail_mail = true);
    let (raw, _) = prove("tempfail_mail", &scenario);
    assert_eq!(raw.exit(), Exit::TempFail);
    assert!(raw.stored.is_empty());
}

/// Named difference: after AUTH is refused with 535, raw-client says QUIT (RFC 5321
/// §4.1.1.10) while lettre drops the connection without a word (lettre-wire.md §1).
#[test]
fn auth_rejected_535() {
    let scenario = Scenario::new("starttls", &[])
        .with_login()
        .server(|c| c.faults.reject_auth = true);
    let raw = run(Client::RAW, &scenario);
    let lib = run(Client::Lib, &scenario);
    assert_eq!(raw.exit(), Exit::NoPerm);
    assert_eq!(raw.result, lib.result, "same exit code and sentence");
    assert_only_difference_is_quit(&raw, &lib);
    insta::assert_snapshot!("auth_rejected_535", raw.server_text());
}

/// Named difference: with TLS required and no STARTTLS offered, both stop before AUTH and
/// MAIL with exit 78; raw-client says QUIT, lettre just closes.
#[test]
fn no_starttls_when_required() {
    let scenario = Scenario::new("starttls", &[])
        .with_login()
        .server(|c| c.faults.no_starttls = true);
    let raw = run(Client::RAW, &scenario);
    let lib = run(Client::Lib, &scenario);
    assert_eq!(raw.exit(), Exit::Config);
    assert_eq!(raw.result, lib.result);
    for run in [&raw, &lib] {
        assert!(!run.text.contains("AUTH"), "{}", run.text);
        assert!(!run.text.contains("MAIL FROM"), "{}", run.text);
    }
    assert_only_difference_is_quit(&raw, &lib);
    insta::assert_snapshot!("no_starttls_when_required", raw.server_text());
}

/// raw-client's transcript is lettre's plus a final QUIT exchange.
fn assert_only_difference_is_quit(raw: &ClientRun, lib: &ClientRun) {
    let quit = "C: QUIT\nS: 221 2.0.0 Bye\n-- connection closed\n";
    let raw_without_quit = raw
        .text
        .strip_suffix(quit)
        .unwrap_or_else(|| panic!("raw-client ends with QUIT:\n{}", raw.text));
    assert_eq!(
        format!("{raw_without_quit}-- connection closed\n"),
        lib.text
    );
}

/// `--pipelining` is raw-client's own: this snapshot shows what it changes on the wire.
#[test]
fn pipelining_dialogue() {
    let scenario = Scenario::new(
        "starttls",
        &["--to", "bob@example.org", "--cc", "carol@example.net"],
    )
    .with_login();
    let pipelined = run(
        Client::Raw(raw_client::Settings {
            pipelining: true,
            repeat: 1,
            ..raw_client::Settings::DEFAULT
        }),
        &scenario,
    );
    assert_eq!(pipelined.exit(), Exit::Sent);
    assert!(
        pipelined.text.contains(
            "C: AUTH PLAIN <redacted>\nC: MAIL FROM:<alice@example.com>\nC: RCPT TO:<bob@example.org>\n\
             C: RCPT TO:<carol@example.net>\nC: DATA\nS: 235 2.7.0 Authentication successful\n"
        ),
        "{}",
        pipelined.text
    );
    insta::assert_snapshot!("pipelining_client", pipelined.text);
    insta::assert_snapshot!("pipelining_server", pipelined.server_text());
    let plain = run(Client::RAW, &scenario);
    assert_eq!(
        stored_data(&plain),
        stored_data(&pipelined),
        "same message either way"
    );
}

/// XOAUTH2, the one OAuth 2.0 mechanism lettre has: the same dialogue from both clients,
/// the token read with --oauth2-token-env. (A test cannot set a variable for itself alone,
/// so the token is the value of HOME, which every environment has.)
#[test]
fn starttls_auth_xoauth2() {
    let token = std::env::var("HOME").expect("HOME is set");
    let scenario = Scenario::new(
        "starttls",
        &["--user", "alice", "--oauth2-token-env", "HOME"],
    )
    .server(|config| config.oauth2_tokens = vec![("alice".into(), token.clone())]);
    let (raw, lib) = prove("starttls_auth_xoauth2", &scenario);
    assert_eq!(raw.exit(), Exit::Sent);
    assert!(raw.text.contains("C: AUTH XOAUTH2 <redacted>\n"));
    assert_eq!(stored_data(&raw), stored_data(&lib));
    assert!(!raw.server_text().contains(&token));
}

/// The named difference: OAUTHBEARER and SCRAM-SHA-256 are raw-client's alone; lib-client
/// refuses them before connecting (exit 64) because lettre 0.11 has no API for them.
#[test]
fn oauthbearer_and_scram_are_raw_client_only() {
    let token = std::env::var("HOME").expect("HOME is set");
    for mechanism in ["OAUTHBEARER", "SCRAM-SHA-256"] {
        let secret = if mechanism == "OAUTHBEARER" {
            "--oauth2-token-env"
        } else {
            "--password-env"
        };
        let scenario = Scenario::new(
            "starttls",
            &["--user", "alice", "--auth", mechanism, secret, "HOME"],
        )
        .server(|config| {
            config.users = vec![("alice".into(), token.clone())];
            config.oauth2_tokens = vec![("alice".into(), token.clone())];
            config.auth_mechanisms = Some(vec![mechanism.into(), "PLAIN".into()]);
        });
        let raw = run(Client::RAW, &scenario);
        let lib = run(Client::Lib, &scenario);
        assert_eq!(raw.exit(), Exit::Sent, "{mechanism}: {:?}", raw.result);
        assert_eq!(lib.exit(), Exit::Usage, "{mechanism}");
        assert!(
            lib.session.is_none(),
            "{mechanism}: lib-client never connected"
        );
    }
}

/// A prebuilt message from a file, as `git format-patch` or a mail program would write it:
/// LF line ends, a folded Bcc, a line that starts with a dot.
const PREBUILT: &str = "From: Alice <alice@example.com>\n\
To: Bob <bob@example.org>, carol@example.org\n\
Cc: \"Dave, Jr.\" <dave@example.org>\n\
Bcc: eve@example.net,\n \
frank@example.net\n\
Subject: Prebuilt\n\
Date: Mon, 23 Nov 2026 12:00:00 +0000\n\
Message-ID: <prebuilt@smtp-workbench.example>\n\
\n\
.a line that starts with a dot\n\
Bcc: in the body is only text\n";

/// `--data FILE -t`: both clients send the file as it is, minus its Bcc field, CRLF line
/// ends, dot-stuffed on the wire; the envelope holds every To, Cc and Bcc address.
#[test]
fn prebuilt_data_read_envelope() {
    let dir = TempDir::new("prebuilt");
    let path = dir.file("message.eml", PREBUILT.as_bytes());
    let scenario = Scenario::prebuilt("starttls", &path, &["-t"]).with_login();
    let (raw, lib) = prove("prebuilt_data_read_envelope", &scenario);
    assert_eq!(raw.exit(), Exit::Sent, "{:?}", raw.result);
    let expected: String = PREBUILT
        .replace("Bcc: eve@example.net,\n frank@example.net\n", "")
        .replace('\n', "\r\n");
    assert_eq!(String::from_utf8_lossy(&stored_data(&raw)), expected);
    assert_eq!(stored_data(&raw), stored_data(&lib));
    let wire = String::from_utf8_lossy(&raw.server_received()).into_owned();
    assert!(
        wire.contains("\r\n..a line that starts with a dot\r\n"),
        "{wire}"
    );
    assert!(!wire.contains("Bcc: eve"), "{wire}");
    let envelope = &raw.stored[0].envelope;
    assert_eq!(envelope.from, "alice@example.com");
    assert_eq!(
        envelope.recipients,
        [
            "bob@example.org",
            "carol@example.org",
            "dave@example.org",
            "eve@example.net",
            "frank@example.net"
        ]
    );
}

/// `--data FILE` without -t: the envelope is --from and --to; the file is not touched
/// beyond its line ends and Bcc field (nothing is added).
#[test]
fn prebuilt_data_with_given_envelope() {
    let dir = TempDir::new("prebuilt");
    let path = dir.file("message.eml", b"Subject: bare\n\nno Date, no From\n");
    let scenario = Scenario::prebuilt("none", &path, &["--to", "zed@example.org"]);
    let (raw, _) = prove("prebuilt_data_with_given_envelope", &scenario);
    assert_eq!(
        stored_data(&raw),
        b"Subject: bare\r\n\r\nno Date, no From\r\n"
    );
    assert_eq!(raw.stored[0].envelope.recipients, ["zed@example.org"]);
    assert_eq!(raw.stored[0].envelope.from, "alice@example.com");
}

/// `--quit-after rcpt`: both clients stop after RCPT with the same dialogue; nothing stored.
#[test]
fn quit_after_rcpt() {
    let scenario = Scenario::new("starttls", &["--quit-after", "rcpt"]).with_login();
    let (raw, lib) = prove("quit_after_rcpt", &scenario);
    assert_eq!(raw.exit(), Exit::Sent);
    assert!(raw.stored.is_empty() && lib.stored.is_empty());
    assert!(raw.text.ends_with(
        "S: 250 2.1.5 Ok\n-- stopping after rcpt (--quit-after): QUIT, and nothing is sent\nC: QUIT\nS: 221 2.0.0 Bye\n-- connection closed\n"
    ), "{}", raw.text);
    let sent = raw.result.as_ref().expect("stopped is success");
    assert_eq!(sent.stopped, Some(cli::Stage::Rcpt));
}

/// `--allow-partial`: one of two recipients refused; both clients send to the other and
/// name the refused one in a warning.
#[test]
fn allow_partial() {
    let scenario = Scenario::new(
        "none",
        &[
            "--to",
            "bob@example.org",
            "--to",
            "nobody@example.org",
            "--allow-partial",
        ],
    )
    .server(|config| config.faults.reject_recipients = vec!["nobody@example.org".into()]);
    let (raw, _) = prove("allow_partial", &scenario);
    assert_eq!(raw.exit(), Exit::Sent);
    assert_eq!(raw.stored[0].envelope.recipients, ["bob@example.org"]);
    let warning = raw.result.as_ref().expect("sent").warnings[0].to_string();
    assert!(warning.contains("<nobody@example.org> (\"550"), "{warning}");
}

/// DSN (RFC 3461), REQUIRETLS (RFC 8689) and a declared SIZE (RFC 1870): the same MAIL and
/// RCPT parameters from both clients, xtext and all.
#[test]
fn dsn_requiretls_size() {
    let scenario = Scenario::new(
        "starttls",
        &[
            "--to",
            "bob+tag@example.org",
            "--dsn-notify",
            "failure,delay",
            "--dsn-ret",
            "full",
            "--dsn-envid",
            "envid=1",
            "--require-tls",
            "--declare-size",
        ],
    )
    .with_login();
    let (raw, _) = prove("dsn_requiretls_size", &scenario);
    assert_eq!(raw.exit(), Exit::Sent, "{:?}", raw.result);
    assert!(
        raw.text.contains(" RET=FULL ENVID=envid+3D1 REQUIRETLS\n"),
        "{}",
        raw.text
    );
    assert!(raw.text.contains(
        "C: RCPT TO:<bob+tag@example.org> NOTIFY=FAILURE,DELAY ORCPT=rfc822;bob+2Btag@example.org\n"
    ));
}
