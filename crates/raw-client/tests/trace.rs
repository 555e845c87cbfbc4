//! The dialogue as `C:`/`S:` traces, without sockets: each case is a whole conversation, the
//! server's lines are fed to a [`Session`] and its actions are written back as lines, and the
//! result must be the trace exactly.
//!
//! A line written `S+` came in the same read as the server line before it (so it is already
//! received when that reply is handled); it shows as `S:` in the result. Besides `C:` and
//! `S:` lines a trace has events the harness plays or records:
//! `-- TLS handshake` (the session asked for it; it succeeds), `C: <message data>` (the message
//! and its `.`), `-- note: …`, `-- accepted`, `-- timeout` and `-- closed` (the harness makes
//! the read that is waiting fail that way), `-- write fails` (the next flight cannot be
//! written: the connection broke), and the verdict `-- sent` or `-- failed (exit N): sentence`.

use cli::{Credentials, Failure, TlsMode};
use message::{Address, Envelope};
use raw_client::reply;
use raw_client::session::{Action, Dialogue, Session};

/// A dialogue with alice sending to `recipients`, plaintext, no AUTH, one message.
fn dialogue(recipients: &[&str]) -> Dialogue {
    let address = |text: &str| Address::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    Dialogue {
        helo_name: "client.example".into(),
        tls: TlsMode::None,
        credentials: None,
        allow_plaintext_auth: false,
        envelope: Envelope {
            from: address("alice@example.com"),
            recipients: recipients.iter().map(|r| address(r)).collect(),
            smtputf8: false,
            eight_bit: false,
            binary: false,
        },
        message_size: 1000,
        pipelining: false,
        messages: 1,
        server: ("mail.example".into(), 587),
        quit_after: None,
        allow_partial: false,
        delivery: cli::Delivery::default(),
        chunking: None,
    }
}

fn login(mut dialogue: Dialogue) -> Dialogue {
    dialogue.credentials = Some(Credentials {
        user: "alice".into(),
        password: "hunter2".into(),
        mechanism: None,
    });
    dialogue
}

fn starttls(mut dialogue: Dialogue) -> Dialogue {
    dialogue.tls = TlsMode::StartTls;
    dialogue
}

fn pipelined(mut dialogue: Dialogue) -> Dialogue {
    dialogue.pipelining = true;
    dialogue
}

/// One thing the server side of a trace does.
enum Play<'a> {
    /// A line, and whether it came in the same read as the one before (`S+`).
    Line(&'a str, bool),
    Timeout,
    Closed,
    WriteFails,
}

/// The server side of `trace`, in order.
fn server_side(trace: &str) -> Vec<Play<'_>> {
    let mut plays = Vec::new();
    for line in trace.lines() {
        match line {
            "-- timeout" => plays.push(Play::Timeout),
            "-- closed" => plays.push(Play::Closed),
            "-- write fails" => plays.push(Play::WriteFails),
            _ if line.starts_with("S: ") => plays.push(Play::Line(&line[3..], false)),
            _ if line.starts_with("S+ ") => plays.push(Play::Line(&line[3..], true)),
            _ => {}
        }
    }
    plays
}

/// Plays the server side of `trace` against `dialogue` and returns the whole conversation.
fn play(dialogue: Dialogue, trace: &str) -> String {
    let plays = server_side(trace);
    let mut next = 0;
    let mut session = Session::new(dialogue);
    let mut out = String::new();
    let mut done = false;
    while let Some(action) = session.next_action() {
        match action {
            Action::Write(flight) => {
                if let Some(Play::WriteFails) = plays.get(next) {
                    next += 1;
                    out.push_str("-- write fails\n");
                    session.on_failure(Failure::Closed {
                        during: "sending the message data".into(),
                    });
                    continue;
                }
                if flight.handshake {
                    out.push_str("-- TLS handshake\n");
                }
                if flight.message {
                    out.push_str("C: <message data>\n");
                }
                for line in String::from_utf8_lossy(&flight.lead).split_terminator("\r\n") {
                    out.push_str(&format!("C: {line}\n"));
                }
                if let Some(size) = flight.chunks {
                    out.push_str(&format!("C: <message in BDAT chunks of {size}>\n"));
                }
                for line in String::from_utf8_lossy(&flight.commands).split_terminator("\r\n") {
                    out.push_str(&format!("C: {line}\n"));
                }
            }
            Action::Read(wait) => {
                let mut bytes = Vec::new();
                loop {
                    let Some(play) = plays.get(next) else {
                        panic!("the session waits for a reply the trace lacks:\n{out}");
                    };
                    next += 1;
                    match play {
                        Play::Timeout => {
                            out.push_str("-- timeout\n");
                            session.on_failure(wait.timed_out(false));
                            break;
                        }
                        Play::Closed => {
                            out.push_str("-- closed\n");
                            session.on_failure(wait.closed());
                            break;
                        }
                        Play::WriteFails => {
                            panic!("a write failure where the session reads:\n{out}")
                        }
                        Play::Line(line, _) => {
                            out.push_str(&format!("S: {line}\n"));
                            bytes.extend_from_slice(line.as_bytes());
                            bytes.extend_from_slice(b"\r\n");
                            let Ok(Some((reply, _))) = reply::parse(&bytes) else {
                                continue;
                            };
                            // What came in the same read after this reply.
                            let unread = plays[next..]
                                .iter()
                                .map_while(|play| match play {
                                    Play::Line(line, true) => Some(line.len() + 2),
                                    _ => None,
                                })
                                .sum();
                            session.on_reply(reply, unread);
                            break;
                        }
                    }
                }
            }
            Action::Note(note) => out.push_str(&format!("-- note: {note}\n")),
            Action::Accepted(_) => out.push_str("-- accepted\n"),
            Action::Transaction | Action::StopRecording => {}
            Action::Done(result) => {
                done = true;
                match result {
                    Ok(sent) if sent.warnings.is_empty() => out.push_str("-- sent\n"),
                    Ok(sent) => {
                        for warning in sent.warnings {
                            out.push_str(&format!("-- sent, warning: {warning}\n"));
                        }
                    }
                    Err(failure) => out.push_str(&verdict(&failure)),
                }
            }
        }
    }
    assert!(done, "the session stopped without a verdict:\n{out}");
    // Lines that arrived with the last reply but were never read as one (an injection).
    let verdict_line = out
        .split_inclusive('\n')
        .next_back()
        .unwrap_or_default()
        .to_owned();
    let mut unread = String::new();
    while let Some(Play::Line(line, true)) = plays.get(next) {
        unread.push_str(&format!("S: {line}\n"));
        next += 1;
    }
    if !unread.is_empty() {
        out.truncate(out.len() - verdict_line.len());
        out.push_str(&unread);
        out.push_str(&verdict_line);
    }
    assert_eq!(next, plays.len(), "server lines left over:\n{out}");
    out
}

fn verdict(failure: &Failure) -> String {
    format!("-- failed (exit {}): {failure}\n", failure.exit().code())
}

fn check(name: &str, dialogue: Dialogue, trace: &str) {
    let expected = trace.replace("\nS+ ", "\nS: ");
    let actual = play(dialogue, trace);
    assert_eq!(actual, expected, "{name}");
}

#[test]
fn plaintext() {
    check(
        "one message, one command at a time, as lettre does",
        dialogue(&["bob@example.org"]),
        "\
S: 220 mx.example ESMTP
C: EHLO client.example
S: 250-mx.example
S: 250 PIPELINING
C: MAIL FROM:<alice@example.com>
S: 250 2.1.0 Ok
C: RCPT TO:<bob@example.org>
S: 250 2.1.5 Ok
C: DATA
S: 354 go ahead
C: <message data>
S: 250 2.0.0 Ok: queued as 1
-- accepted
C: QUIT
S: 221 2.0.0 Bye
-- sent
",
    );
}

#[test]
fn starttls_with_auth_plain() {
    check(
        "RFC 3207: EHLO again after the handshake, in the same write as the Finished",
        login(starttls(dialogue(&["bob@example.org"]))),
        "\
S: 220 mx.example ESMTP
C: EHLO client.example
S: 250-mx.example
S: 250-AUTH PLAIN
S: 250 STARTTLS
C: STARTTLS
S: 220 2.0.0 Ready
-- TLS handshake
C: EHLO client.example
S: 250-mx.example
S: 250 AUTH PLAIN LOGIN
C: AUTH PLAIN AGFsaWNlAGh1bnRlcjI=
S: 235 2.7.0 Authentication successful
C: MAIL FROM:<alice@example.com>
S: 250 2.1.0 Ok
C: RCPT TO:<bob@example.org>
S: 250 2.1.5 Ok
C: DATA
S: 354 go ahead
C: <message data>
S: 250 2.0.0 Ok
-- accepted
C: QUIT
S: 221 2.0.0 Bye
-- sent
",
    );
}

#[test]
fn auth_login_when_plain_is_not_offered() {
    check(
        "LOGIN: a 334 for the user name, one for the password",
        login(starttls(dialogue(&["bob@example.org"]))),
        "\
S: 220 mx.example ESMTP
C: EHLO client.example
S: 250-mx.example
S: 250 STARTTLS
C: STARTTLS
S: 220 go
-- TLS handshake
C: EHLO client.example
S: 250-mx.example
S: 250 AUTH LOGIN
C: AUTH LOGIN
S: 334 VXNlcm5hbWU6
C: YWxpY2U=
S: 334 UGFzc3dvcmQ6
C: aHVudGVyMg==
S: 235 2.7.0 Authentication successful
C: MAIL FROM:<alice@example.com>
S: 250 Ok
C: RCPT TO:<bob@example.org>
S: 250 Ok
C: DATA
S: 354 go ahead
C: <message data>
S: 250 Ok
-- accepted
C: QUIT
S: 221 Bye
-- sent
",
    );
}

#[test]
fn pipelined_with_auth_plain_leading_the_group() {
    check(
        "RFC 2920 §3.1 and RFC 4954 §4: AUTH PLAIN, MAIL, RCPT…, DATA; then data + QUIT",
        pipelined(login(starttls(dialogue(&[
            "bob@example.org",
            "carol@example.org",
        ])))),
        "\
S: 220 mx.example ESMTP
C: EHLO client.example
S: 250-mx.example
S: 250-PIPELINING
S: 250 STARTTLS
C: STARTTLS
S: 220 go
-- TLS handshake
C: EHLO client.example
S: 250-mx.example
S: 250-PIPELINING
S: 250 AUTH PLAIN LOGIN
-- note: pipelining (RFC 2920): AUTH PLAIN, MAIL, 2 RCPT and DATA in one write
C: AUTH PLAIN AGFsaWNlAGh1bnRlcjI=
C: MAIL FROM:<alice@example.com>
C: RCPT TO:<bob@example.org>
C: RCPT TO:<carol@example.org>
C: DATA
S: 235 2.7.0 Authentication successful
S: 250 2.1.0 Ok
S: 250 2.1.5 Ok
S: 250 2.1.5 Ok
S: 354 go ahead
C: <message data>
C: QUIT
S: 250 2.0.0 Ok
-- accepted
S: 221 Bye
-- sent
",
    );
}

#[test]
fn pipelined_repeat_sends_the_next_group_with_the_data() {
    let mut twice = pipelined(dialogue(&["bob@example.org"]));
    twice.messages = 2;
    check(
        "the second transaction's group rides with the first message's `.`",
        twice,
        "\
S: 220 mx.example ESMTP
C: EHLO client.example
S: 250-mx.example
S: 250 PIPELINING
-- note: pipelining (RFC 2920): MAIL, 1 RCPT and DATA in one write
C: MAIL FROM:<alice@example.com>
C: RCPT TO:<bob@example.org>
C: DATA
S: 250 Ok
S: 250 Ok
S: 354 go ahead
C: <message data>
C: MAIL FROM:<alice@example.com>
C: RCPT TO:<bob@example.org>
C: DATA
S: 250 Ok: queued as 1
-- accepted
-- note: the next 1 messages on this connection are not recorded
S: 250 Ok
S: 250 Ok
S: 354 go ahead
C: <message data>
C: QUIT
S: 250 Ok: queued as 2
-- accepted
S: 221 Bye
-- sent
",
    );
}

#[test]
fn failures() {
    let cases: &[(&str, Dialogue, &str)] = &[
        (
            "a refused recipient ends the transaction; QUIT is still polite",
            dialogue(&["bob@example.org"]),
            "\
S: 220 mx.example ESMTP
C: EHLO client.example
S: 250 mx.example
C: MAIL FROM:<alice@example.com>
S: 250 Ok
C: RCPT TO:<bob@example.org>
S: 550 5.1.1 no such user
C: QUIT
S: 221 Bye
-- failed (exit 69): the server rejected RCPT TO:<bob@example.org> with \"550 5.1.1 no such user\"
",
        ),
        (
            "a timeout drops the connection without QUIT",
            dialogue(&["bob@example.org"]),
            "\
S: 220 mx.example ESMTP
C: EHLO client.example
S: 250 mx.example
C: MAIL FROM:<alice@example.com>
-- timeout
-- failed (exit 75): the server did not answer in time while waiting for the reply to MAIL FROM: try again later, or raise --timeout
",
        ),
        (
            "no STARTTLS offered: nothing after EHLO but QUIT",
            starttls(dialogue(&["bob@example.org"])),
            "\
S: 220 mx.example ESMTP
C: EHLO client.example
S: 250 mx.example
C: QUIT
S: 221 Bye
-- failed (exit 78): TLS is required but the server does not offer STARTTLS, so nothing was sent after EHLO: use a server that supports TLS (or --tls none on a network you trust)
",
        ),
        (
            "RFC 3207 §4.2: bytes after STARTTLS's 220 are an injection; no QUIT",
            starttls(dialogue(&["bob@example.org"])),
            "\
S: 220 mx.example ESMTP
C: EHLO client.example
S: 250-mx.example
S: 250 STARTTLS
C: STARTTLS
S: 220 go
S+ 250 injected
-- failed (exit 76): the server sent 14 bytes after its STARTTLS reply, before the TLS handshake: this is a response injection attack or a broken server, so the connection was dropped
",
        ),
        (
            "AUTH refused with 535",
            login(starttls(dialogue(&["bob@example.org"]))),
            "\
S: 220 mx.example ESMTP
C: EHLO client.example
S: 250-mx.example
S: 250 STARTTLS
C: STARTTLS
S: 220 go
-- TLS handshake
C: EHLO client.example
S: 250-mx.example
S: 250 AUTH PLAIN
C: AUTH PLAIN AGFsaWNlAGh1bnRlcjI=
S: 535 5.7.8 Authentication credentials invalid
C: QUIT
S: 221 Bye
-- failed (exit 77): authentication failed: the server answered \"535 5.7.8 Authentication credentials invalid\"; check the user name and password
",
        ),
        (
            "RFC 1870 §6: a message over the SIZE limit is refused before MAIL",
            dialogue(&["bob@example.org"]),
            "\
S: 220 mx.example ESMTP
C: EHLO client.example
S: 250-mx.example
S: 250 SIZE 500
C: QUIT
S: 221 Bye
-- failed (exit 69): the message is 1000 octets but the server accepts at most 500 (its EHLO reply says SIZE 500): nothing was sent; make the message smaller or use another server
",
        ),
        (
            "a refused message",
            dialogue(&["bob@example.org"]),
            "\
S: 220 mx.example ESMTP
C: EHLO client.example
S: 250 mx.example
C: MAIL FROM:<alice@example.com>
S: 250 Ok
C: RCPT TO:<bob@example.org>
S: 250 Ok
C: DATA
S: 354 go ahead
C: <message data>
S: 554 5.6.0 refused
C: QUIT
S: 221 Bye
-- failed (exit 69): the server rejected the message data with \"554 5.6.0 refused\"
",
        ),
        (
            "once the data was accepted, a lost reply to QUIT is only a warning",
            dialogue(&["bob@example.org"]),
            "\
S: 220 mx.example ESMTP
C: EHLO client.example
S: 250 mx.example
C: MAIL FROM:<alice@example.com>
S: 250 Ok
C: RCPT TO:<bob@example.org>
S: 250 Ok
C: DATA
S: 354 go ahead
C: <message data>
S: 250 2.0.0 Ok: queued as 7
-- accepted
C: QUIT
-- closed
-- sent, warning: the server accepted the message (\"250 2.0.0 Ok: queued as 7\") but did not answer QUIT: the message was sent, so do not send it again
",
        ),
        (
            "RFC 2920 §3.1: a refused recipient in a group answered 354 anyway, with another \
             recipient accepted: drop the connection, no data, no QUIT",
            pipelined(dialogue(&["bob@example.org", "carol@example.org"])),
            "\
S: 220 mx.example ESMTP
C: EHLO client.example
S: 250-mx.example
S: 250 PIPELINING
-- note: pipelining (RFC 2920): MAIL, 2 RCPT and DATA in one write
C: MAIL FROM:<alice@example.com>
C: RCPT TO:<bob@example.org>
C: RCPT TO:<carol@example.org>
C: DATA
S: 250 Ok
S: 550 5.1.1 no such user
S: 250 Ok
S: 354 go ahead
-- failed (exit 69): the server rejected RCPT TO:<bob@example.org> with \"550 5.1.1 no such user\"
",
        ),
        (
            "…and with no recipient left, a lone `.` ends the data, then QUIT",
            pipelined(dialogue(&["bob@example.org"])),
            "\
S: 220 mx.example ESMTP
C: EHLO client.example
S: 250-mx.example
S: 250 PIPELINING
-- note: pipelining (RFC 2920): MAIL, 1 RCPT and DATA in one write
C: MAIL FROM:<alice@example.com>
C: RCPT TO:<bob@example.org>
C: DATA
S: 250 Ok
S: 550 5.1.1 no such user
S: 354 go ahead
C: .
S: 250 Ok: nothing
C: QUIT
S: 221 Bye
-- failed (exit 69): the server rejected RCPT TO:<bob@example.org> with \"550 5.1.1 no such user\"
",
        ),
        (
            "with pipelining a refused last message is reported after the reply to the QUIT \
             that went with it",
            pipelined(dialogue(&["bob@example.org"])),
            "\
S: 220 mx.example ESMTP
C: EHLO client.example
S: 250-mx.example
S: 250 PIPELINING
-- note: pipelining (RFC 2920): MAIL, 1 RCPT and DATA in one write
C: MAIL FROM:<alice@example.com>
C: RCPT TO:<bob@example.org>
C: DATA
S: 250 Ok
S: 250 Ok
S: 354 go ahead
C: <message data>
C: QUIT
S: 554 5.6.0 refused
S: 221 Bye
-- failed (exit 69): the server rejected the message data with \"554 5.6.0 refused\"
",
        ),
        (
            "the connection breaks while the message is sent: no QUIT, no more waiting",
            dialogue(&["bob@example.org"]),
            "\
S: 220 mx.example ESMTP
C: EHLO client.example
S: 250 mx.example
C: MAIL FROM:<alice@example.com>
S: 250 Ok
C: RCPT TO:<bob@example.org>
S: 250 Ok
C: DATA
S: 354 go ahead
-- write fails
-- failed (exit 75): the server closed the connection while sending the message data: try again later
",
        ),
        (
            "a 421 closes the service: no QUIT",
            dialogue(&["bob@example.org"]),
            "\
S: 220 mx.example ESMTP
C: EHLO client.example
S: 421 4.3.2 shutting down
-- failed (exit 75): the server is shutting down the connection: it answered EHLO with \"421 4.3.2 shutting down\"; try again later
",
        ),
        (
            "a third LOGIN challenge is a protocol violation",
            login(starttls(dialogue(&["bob@example.org"]))),
            "\
S: 220 mx.example ESMTP
C: EHLO client.example
S: 250-mx.example
S: 250 STARTTLS
C: STARTTLS
S: 220 go
-- TLS handshake
C: EHLO client.example
S: 250-mx.example
S: 250 AUTH LOGIN
C: AUTH LOGIN
S: 334 VXNlcm5hbWU6
C: YWxpY2U=
S: 334 UGFzc3dvcmQ6
C: aHVudGVyMg==
S: 334 TW9yZTo=
-- failed (exit 76): the server broke the SMTP protocol after AUTH LOGIN: it asked for more than a user name and a password
",
        ),
    ];
    for (name, dialogue, trace) in cases {
        check(name, dialogue.clone(), trace);
    }
}

fn quit_after(mut dialogue: Dialogue, stage: cli::Stage) -> Dialogue {
    dialogue.quit_after = Some(stage);
    dialogue
}

fn partial(mut dialogue: Dialogue) -> Dialogue {
    dialogue.allow_partial = true;
    dialogue
}

#[test]
fn quit_after_mail_and_data() {
    check(
        "--quit-after mail: QUIT after MAIL's 250, even with pipelining asked for",
        quit_after(pipelined(dialogue(&["bob@example.org"])), cli::Stage::Mail),
        "\
S: 220 mx.example ESMTP
C: EHLO client.example
S: 250-mx.example
S: 250 PIPELINING
C: MAIL FROM:<alice@example.com>
S: 250 2.1.0 Ok
-- note: stopping after mail (--quit-after): QUIT, and nothing is sent
C: QUIT
S: 221 bye
-- sent
",
    );
    check(
        "--quit-after data: after 354 no QUIT (it would be message text): the connection ends",
        quit_after(dialogue(&["bob@example.org"]), cli::Stage::Data),
        "\
S: 220 mx.example ESMTP
C: EHLO client.example
S: 250 mx.example
C: MAIL FROM:<alice@example.com>
S: 250 2.1.0 Ok
C: RCPT TO:<bob@example.org>
S: 250 2.1.5 Ok
C: DATA
S: 354 go ahead
-- note: stopping after DATA's 354 (--quit-after data): QUIT would now be message data, so the connection is closed and the server drops the unfinished message
-- sent
",
    );
    check(
        "--quit-after auth without credentials: stops before MAIL all the same",
        quit_after(dialogue(&["bob@example.org"]), cli::Stage::Auth),
        "\
S: 220 mx.example ESMTP
C: EHLO client.example
S: 250 mx.example
-- note: stopping after auth (--quit-after): QUIT, and nothing is sent
C: QUIT
S: 221 bye
-- sent
",
    );
}

#[test]
fn allow_partial() {
    check(
        "one of two refused: the message goes to the other, with a warning",
        partial(dialogue(&["bob@example.org", "gone@example.org"])),
        "\
S: 220 mx.example ESMTP
C: EHLO client.example
S: 250 mx.example
C: MAIL FROM:<alice@example.com>
S: 250 2.1.0 Ok
C: RCPT TO:<bob@example.org>
S: 250 2.1.5 Ok
C: RCPT TO:<gone@example.org>
S: 550 5.1.1 no such user
C: DATA
S: 354 go ahead
C: <message data>
S: 250 2.0.0 Ok: queued as 1
-- accepted
C: QUIT
S: 221 bye
-- sent, warning: the message went to 1 recipient(s) but the server refused 1: <gone@example.org> (\"550 5.1.1 no such user\"); send it to them again once the cause is fixed
",
    );
    check(
        "pipelined, every recipient refused: the group's DATA got 354, so a lone dot ends it",
        partial(pipelined(dialogue(&["gone@example.org"]))),
        "\
S: 220 mx.example ESMTP
C: EHLO client.example
S: 250-mx.example
S: 250 PIPELINING
-- note: pipelining (RFC 2920): MAIL, 1 RCPT and DATA in one write
C: MAIL FROM:<alice@example.com>
C: RCPT TO:<gone@example.org>
C: DATA
S: 250 2.1.0 Ok
S: 550 5.1.1 no such user
S: 354 go ahead
C: .
S: 250 2.0.0 empty
C: QUIT
S: 221 bye
-- failed (exit 69): the server rejected RCPT TO:<gone@example.org> with \"550 5.1.1 no such user\"
",
    );
    check(
        "a 421 is never partial: the service is closing",
        partial(dialogue(&["bob@example.org", "gone@example.org"])),
        "\
S: 220 mx.example ESMTP
C: EHLO client.example
S: 250 mx.example
C: MAIL FROM:<alice@example.com>
S: 250 2.1.0 Ok
C: RCPT TO:<bob@example.org>
S: 250 2.1.5 Ok
C: RCPT TO:<gone@example.org>
S: 421 4.3.2 going down
-- failed (exit 75): the server is shutting down the connection: it answered RCPT TO:<gone@example.org> with \"421 4.3.2 going down\"; try again later
",
    );
}

fn chunked(mut dialogue: Dialogue) -> Dialogue {
    dialogue.chunking = Some(raw_client::session::Chunking {
        required: false,
        size: 65536,
    });
    dialogue
}

#[test]
fn chunking() {
    check(
        "pipelined BDAT: AUTH, MAIL, RCPT, the message and QUIT in one write (RFC 3030 §4.2)",
        chunked(pipelined({
            let mut plaintext = login(dialogue(&["bob@example.org"]));
            plaintext.allow_plaintext_auth = true;
            plaintext
        })),
        "\
S: 220 mx.example ESMTP
C: EHLO client.example
S: 250-mx.example
S: 250-PIPELINING
S: 250-CHUNKING
S: 250 AUTH PLAIN
-- note: pipelining (RFC 2920): AUTH PLAIN, MAIL, 1 RCPT and the message in BDAT chunks (RFC 3030), then QUIT, in one write
C: AUTH PLAIN AGFsaWNlAGh1bnRlcjI=
C: MAIL FROM:<alice@example.com>
C: RCPT TO:<bob@example.org>
C: <message in BDAT chunks of 65536>
C: QUIT
S: 235 2.7.0 ok
S: 250 2.1.0 Ok
S: 250 2.1.5 Ok
S: 250 2.0.0 Ok: queued as 1
-- accepted
S: 221 bye
-- sent
",
    );
    check(
        "not offered: a note, then DATA",
        chunked(dialogue(&["bob@example.org"])),
        "\
S: 220 mx.example ESMTP
C: EHLO client.example
S: 250 mx.example
-- note: the server does not offer CHUNKING (RFC 3030): the message goes with DATA
C: MAIL FROM:<alice@example.com>
S: 250 2.1.0 Ok
C: RCPT TO:<bob@example.org>
S: 250 2.1.5 Ok
C: DATA
S: 354 go ahead
C: <message data>
S: 250 2.0.0 Ok: queued as 1
-- accepted
C: QUIT
S: 221 bye
-- sent
",
    );
    check(
        "pipelined BDAT and a refused recipient: the message already went to the other",
        chunked(pipelined(dialogue(&["bob@example.org", "gone@example.org"]))),
        "\
S: 220 mx.example ESMTP
C: EHLO client.example
S: 250-mx.example
S: 250-PIPELINING
S: 250 CHUNKING
-- note: pipelining (RFC 2920): MAIL, 2 RCPT and the message in BDAT chunks (RFC 3030), then QUIT, in one write
C: MAIL FROM:<alice@example.com>
C: RCPT TO:<bob@example.org>
C: RCPT TO:<gone@example.org>
C: <message in BDAT chunks of 65536>
C: QUIT
S: 250 2.1.0 Ok
S: 250 2.1.5 Ok
S: 550 5.1.1 no such user
S: 250 2.0.0 Ok: queued as 1
-- accepted
S: 221 bye
-- sent, warning: the message went to 1 recipient(s) but the server refused 1: <gone@example.org> (\"550 5.1.1 no such user\"); send it to them again once the cause is fixed
",
    );
    check(
        "pipelined BDAT, MAIL refused: the chunk is refused too, and MAIL's refusal is reported",
        chunked(pipelined(dialogue(&["bob@example.org"]))),
        "\
S: 220 mx.example ESMTP
C: EHLO client.example
S: 250-mx.example
S: 250-PIPELINING
S: 250 CHUNKING
-- note: pipelining (RFC 2920): MAIL, 1 RCPT and the message in BDAT chunks (RFC 3030), then QUIT, in one write
C: MAIL FROM:<alice@example.com>
C: RCPT TO:<bob@example.org>
C: <message in BDAT chunks of 65536>
C: QUIT
S: 550 5.7.1 not you
S: 503 5.5.1 no MAIL
S: 503 5.5.1 no MAIL
S: 221 bye
-- failed (exit 69): the server rejected MAIL FROM:<alice@example.com> with \"550 5.7.1 not you\"
",
    );
}
