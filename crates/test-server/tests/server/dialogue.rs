//! RFC 5321 commands, replies, sequencing and syntax, over a real socket.

use std::time::Duration;

use test_server::Config;

use crate::support::{Client, default_server, start};

#[test]
fn greeting_ehlo_and_helo() {
    let server = default_server();
    let mut c = Client::connect_raw(server.addr());
    assert_eq!(c.reply(), "220 localhost ESMTP test-server ready");
    let ehlo = c.cmd("EHLO client.example");
    assert_eq!(
        ehlo,
        "250-localhost greets client.example\n250-PIPELINING\n250-SIZE 36700160\n\
         250-8BITMIME\n250-BINARYMIME\n250-CHUNKING\n250-SMTPUTF8\n\
         250-ENHANCEDSTATUSCODES\n250-DSN\n250 STARTTLS"
    );
    // HELO works too and lists no extensions.
    assert_eq!(c.cmd("HELO other"), "250 localhost greets other");
    assert_eq!(c.cmd("QUIT"), "221 2.0.0 Bye");
    assert!(c.closed());
}

#[test]
fn hostname_and_size_are_configurable() {
    let server = start(Config {
        hostname: "mx.test".into(),
        size_limit: 0,
        ..Config::default()
    });
    let mut c = Client::connect_raw(server.addr());
    assert_eq!(c.reply(), "220 mx.test ESMTP test-server ready");
    let ehlo = c.cmd("ehlo [127.0.0.1]");
    assert!(
        ehlo.starts_with("250-mx.test greets [127.0.0.1]\n"),
        "{ehlo}"
    );
    assert!(ehlo.contains("\n250-SIZE\n"), "{ehlo}");
}

#[test]
fn each_command_gets_its_reply() {
    let server = default_server();
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250-");
    assert_eq!(c.cmd("NOOP"), "250 2.0.0 Ok");
    assert_eq!(c.cmd("noop with args"), "250 2.0.0 Ok");
    assert_eq!(c.cmd("RSET"), "250 2.0.0 Ok");
    assert_eq!(
        c.cmd("VRFY bob"),
        "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery"
    );
    let help = c.cmd("HELP");
    assert!(help.starts_with("214-2.0.0 "), "{help}");
    assert!(help.lines().last().is_some_and(|l| l.starts_with("214 ")));
    assert_eq!(c.cmd("EXPN list"), "502 5.5.1 EXPN not implemented");
    assert_eq!(c.cmd("MAIL FROM:<a@example.com>"), "250 2.1.0 Ok");
    assert_eq!(c.cmd("RCPT TO:<b@example.com>"), "250 2.1.5 Ok");
    assert_eq!(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>");
    c.send(b"Subject: hi\r\n\r\nhello\r\n.\r\n");
    assert_eq!(c.reply(), "250 2.0.0 Ok: queued as 000001");
    // RSET ends a transaction: RCPT needs MAIL again.
    c.expect("MAIL FROM:<>", "250 2.1.0");
    c.expect("RSET", "250 2.0.0");
    assert_eq!(
        c.cmd("RCPT TO:<b@example.com>"),
        "503 5.5.1 Need MAIL before RCPT"
    );
    assert_eq!(c.cmd("QUIT"), "221 2.0.0 Bye");
    assert!(c.closed());
}

#[test]
fn sequencing_errors_get_503() {
    let server = default_server();
    let mut c = Client::connect(server.addr());
    assert_eq!(
        c.cmd("MAIL FROM:<a@b.example>"),
        "503 5.5.1 Send EHLO or HELO first"
    );
    assert_eq!(
        c.cmd("RCPT TO:<a@b.example>"),
        "503 5.5.1 Need MAIL before RCPT"
    );
    assert_eq!(c.cmd("DATA"), "503 5.5.1 Need MAIL before DATA");
    c.expect("EHLO me", "250");
    c.expect("MAIL FROM:<a@b.example>", "250");
    assert_eq!(
        c.cmd("MAIL FROM:<a@b.example>"),
        "503 5.5.1 Nested MAIL command"
    );
    assert_eq!(c.cmd("DATA"), "554 5.5.1 No valid recipients");
    // EHLO resets the transaction.
    c.expect("EHLO me", "250");
    assert_eq!(
        c.cmd("RCPT TO:<a@b.example>"),
        "503 5.5.1 Need MAIL before RCPT"
    );
}

#[test]
fn unknown_commands_get_500_and_syntax_errors_501() {
    let server = default_server();
    let mut c = Client::connect(server.addr());
    assert_eq!(c.cmd("FOO bar"), "500 5.5.2 Command not recognized");
    assert_eq!(c.cmd(""), "500 5.5.2 Command not recognized");
    assert_eq!(
        c.cmd("EHLO"),
        "501 5.5.4 Syntax error: EHLO needs a domain or address literal"
    );
    c.expect("EHLO me", "250");
    assert_eq!(
        c.cmd("MAIL FROM:a@b.example"),
        "501 5.5.4 Syntax error: expected MAIL FROM:<address>"
    );
    assert_eq!(
        c.cmd("MAIL FROM:<nodomain>"),
        "501 5.1.7 Bad sender address: address needs a domain"
    );
    assert_eq!(
        c.cmd("DATA now"),
        "501 5.5.4 Syntax error: DATA takes no parameters"
    );
    assert_eq!(
        c.cmd("QUIT now"),
        "501 5.5.4 Syntax error: QUIT takes no parameters"
    );
    assert_eq!(
        c.cmd("VRFY"),
        "501 5.5.4 Syntax error: VRFY needs a user or mailbox"
    );
    c.expect("MAIL FROM:<a@b.example>", "250");
    assert_eq!(
        c.cmd("RCPT TO:<>"),
        "501 5.1.3 Bad recipient address: the null path is not a recipient"
    );
    // Space after the colon, lower-case verbs and postmaster are accepted.
    assert_eq!(c.cmd("rcpt to: <c@d.example>"), "250 2.1.5 Ok");
    assert_eq!(c.cmd("RCPT TO:<postmaster>"), "250 2.1.5 Ok");
}

#[test]
fn garbage_and_invalid_utf8_are_answered() {
    let server = default_server();
    let mut c = Client::connect(server.addr());
    c.send(b"\xff\xfe\xfd\r\n");
    assert_eq!(
        c.reply(),
        "501 5.5.4 Invalid characters or UTF-8 in command"
    );
    c.send(b"NOOP \x00\x01\r\n");
    assert_eq!(
        c.reply(),
        "501 5.5.4 Invalid characters or UTF-8 in command"
    );
    c.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n");
    assert!(c.reply().starts_with("50"));
    // Still in sync afterwards.
    c.expect("EHLO me", "250-");
    assert_eq!(c.cmd("NOOP"), "250 2.0.0 Ok");
    // A bare LF ends no command in strict mode.
    c.send(b"NOOP\n");
    assert_eq!(c.reply(), "500 5.5.2 Command lines must end with CRLF");
    // Pure binary noise with no line end, then the client leaves: no crash, session recorded.
    c.send(&[0u8; 3000]);
    c.shutdown();
    let sessions = server.wait_for_sessions(1, Duration::from_secs(10));
    assert_eq!(sessions.len(), 1);
}

#[test]
fn permissive_mode_accepts_bare_lf_commands() {
    let server = start(Config {
        line_endings: test_server::LineEndings::Permissive,
        ..Config::default()
    });
    let mut c = Client::connect(server.addr());
    c.send(b"NOOP\n");
    assert_eq!(c.reply(), "250 2.0.0 Ok");
}

#[test]
fn long_command_lines_get_500_and_the_session_stays_in_sync() {
    let server = default_server();
    let mut c = Client::connect(server.addr());
    // 512 octets including CRLF is the limit (RFC 5321 §4.5.3.1.4).
    let ok = format!("NOOP {}", "x".repeat(512 - 7));
    assert_eq!(ok.len() + 2, 512);
    assert_eq!(c.cmd(&ok), "250 2.0.0 Ok");
    let long = format!("NOOP {}", "x".repeat(512 - 6));
    assert_eq!(c.cmd(&long), "500 5.5.2 Line too long");
    // Far beyond any buffer: read to the LF and discarded.
    let huge = format!("NOOP {}", "y".repeat(100_000));
    assert_eq!(c.cmd(&huge), "500 5.5.2 Line too long");
    assert_eq!(c.cmd("NOOP"), "250 2.0.0 Ok");
}

#[test]
fn pipelined_group_gets_replies_in_order_in_one_flight() {
    let server = start(Config {
        faults: test_server::Faults {
            reject_recipients: vec!["bad@example.com".into()],
            ..Default::default()
        },
        ..Config::default()
    });
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250-");
    c.send(
        b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n\
          RCPT TO:<bad@example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n",
    );
    assert_eq!(c.reply(), "250 2.1.0 Ok");
    assert_eq!(c.reply(), "250 2.1.5 Ok");
    assert_eq!(c.reply(), "550 5.1.1 Mailbox unavailable");
    assert_eq!(c.reply(), "250 2.1.5 Ok");
    assert_eq!(c.reply(), "354 End data with <CR><LF>.<CR><LF>");
    c.send(b"Subject: p\r\n\r\nbody\r\n.\r\nQUIT\r\n");
    assert_eq!(c.reply(), "250 2.0.0 Ok: queued as 000001");
    assert_eq!(c.reply(), "221 2.0.0 Bye");
    let messages = server.messages();
    assert_eq!(
        messages[0].envelope.recipients,
        ["b@example.com", "c@example.com"]
    );
    // The server transcript shows each command followed by its reply.
    let session = &server.wait_for_sessions(1, Duration::from_secs(10))[0];
    let text = session.transcript.render_text(Default::default());
    assert!(
        text.contains("C: RCPT TO:<bad@example.com>\nS: 550 5.1.1 Mailbox unavailable\n"),
        "{text}"
    );
}

#[test]
fn mail_parameters_8bitmime_smtputf8_and_size() {
    let server = start(Config {
        size_limit: 1000,
        ..Config::default()
    });
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250-");
    assert!(c.cmd("EHLO me").contains("250-SIZE 1000\n"));
    assert_eq!(
        c.cmd("MAIL FROM:<a@example.com> SIZE=1001"),
        "552 5.3.4 Message size exceeds fixed maximum message size"
    );
    assert_eq!(
        c.cmd("MAIL FROM:<a@example.com> SIZE=lots"),
        "501 5.5.4 SIZE needs a number of octets"
    );
    assert_eq!(
        c.cmd("MAIL FROM:<a@example.com> BODY=BINARY"),
        "501 5.5.4 BODY must be 7BIT, 8BITMIME or BINARYMIME"
    );
    assert_eq!(
        c.cmd("MAIL FROM:<a@example.com> MT-PRIORITY=3"),
        "555 5.5.4 MAIL parameter MT-PRIORITY not recognized"
    );
    assert_eq!(
        c.cmd("MAIL FROM:<jos\u{e9}@example.com>"),
        "553 5.6.7 Non-ASCII address requires SMTPUTF8"
    );
    assert_eq!(
        c.cmd("MAIL FROM:<jos\u{e9}@example.com> BODY=8BITMIME SMTPUTF8 SIZE=1000"),
        "250 2.1.0 Ok"
    );
    assert_eq!(
        c.cmd("RCPT TO:<b@example.com> X-TRACK=1"),
        "555 5.5.4 RCPT parameter X-TRACK not recognized"
    );
    c.expect("RCPT TO:<\u{fc}ber@example.com>", "250 2.1.5");
    let body = "Subject: caf\u{e9}\r\n\r\n8-bit body: \u{e9}\u{e8}\r\n";
    let reply = c.data(format!("{body}.\r\n").as_bytes());
    assert_eq!(reply, "250 2.0.0 Ok: queued as 000001");
    let message = &server.messages()[0];
    assert_eq!(message.data, body.as_bytes());
    assert_eq!(
        message.envelope.mail_parameters,
        ["BODY=8BITMIME", "SMTPUTF8", "SIZE=1000"]
    );
    assert_eq!(message.envelope.from, "jos\u{e9}@example.com");
    // After HELO, ESMTP parameters are refused.
    c.expect("HELO me", "250 ");
    assert_eq!(
        c.cmd("MAIL FROM:<a@example.com> BODY=8BITMIME"),
        "555 5.5.4 MAIL parameters need EHLO"
    );
}

#[test]
fn size_is_enforced_during_data() {
    let server = start(Config {
        size_limit: 100,
        ..Config::default()
    });
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250-");
    c.expect("MAIL FROM:<a@example.com>", "250");
    c.expect("RCPT TO:<b@example.com>", "250");
    let mut wire = Vec::new();
    for i in 0..50 {
        wire.extend_from_slice(format!("line {i} of a message too big\r\n").as_bytes());
    }
    wire.extend_from_slice(b".\r\n");
    assert_eq!(
        c.data(&wire),
        "552 5.3.4 Message size exceeds fixed maximum message size"
    );
    // Still in sync; a message of exactly 100 octets is accepted.
    c.expect("MAIL FROM:<a@example.com>", "250");
    c.expect("RCPT TO:<b@example.com>", "250");
    let exact = format!("{}\r\n", "x".repeat(98));
    assert_eq!(exact.len(), 100);
    let reply = c.data(format!("{exact}.\r\n").as_bytes());
    assert_eq!(reply, "250 2.0.0 Ok: queued as 000001");
    assert_eq!(server.messages().len(), 1);
}

#[test]
fn too_many_recipients_get_452() {
    let server = start(Config {
        max_recipients: 3,
        ..Config::default()
    });
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250-");
    c.expect("MAIL FROM:<a@example.com>", "250");
    for i in 0..3 {
        c.expect(&format!("RCPT TO:<r{i}@example.com>"), "250 2.1.5");
    }
    assert_eq!(
        c.cmd("RCPT TO:<r3@example.com>"),
        "452 4.5.3 Too many recipients"
    );
    let reply = c.data(b"Subject: x\r\n\r\ny\r\n.\r\n");
    assert!(reply.starts_with("250 "), "{reply}");
    assert_eq!(server.messages()[0].envelope.recipients.len(), 3);
}

#[test]
fn long_data_lines_are_refused_with_500() {
    let server = default_server();
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250-");
    c.expect("MAIL FROM:<a@example.com>", "250");
    c.expect("RCPT TO:<b@example.com>", "250");
    let ok = format!("{}\r\n", "a".repeat(998));
    let long = format!("{}\r\n", "b".repeat(999));
    let reply = c.data(format!("{ok}{long}.\r\n").as_bytes());
    assert_eq!(
        reply,
        "500 5.5.2 Line too long in message data (limit 1000 octets)"
    );
    // A line far over the limit, arriving in many reads, is dropped as it comes and the
    // end of data is still found.
    c.expect("MAIL FROM:<a@example.com>", "250");
    c.expect("RCPT TO:<b@example.com>", "250");
    c.expect("DATA", "354");
    c.send(b"x");
    c.send("z".repeat(300_000).as_bytes());
    c.send(b"\r\n.\r\n");
    assert_eq!(
        c.reply(),
        "500 5.5.2 Line too long in message data (limit 1000 octets)"
    );
    c.expect("MAIL FROM:<a@example.com>", "250");
    c.expect("RCPT TO:<b@example.com>", "250");
    let reply = c.data(format!("{ok}.\r\n").as_bytes());
    assert!(reply.starts_with("250 "), "{reply}");
    assert_eq!(server.messages()[0].data, ok.as_bytes());
}

#[test]
fn without_pipelining_bytes_after_the_end_of_data_are_refused() {
    let server = start(Config {
        pipelining: false,
        ..Config::default()
    });
    let mut c = Client::connect(server.addr());
    let ehlo = c.cmd("EHLO me");
    assert!(!ehlo.contains("PIPELINING"), "{ehlo}");
    c.expect("MAIL FROM:<a@example.com>", "250");
    c.expect("RCPT TO:<b@example.com>", "250");
    c.expect("DATA", "354");
    c.send(b"Subject: x\r\n\r\nhi\r\n.\r\nMAIL FROM:<evil@example.com>\r\n");
    assert_eq!(
        c.reply(),
        "554 5.5.0 Improper use of SMTP command pipelining, message not accepted"
    );
    assert!(c.closed());
    assert!(server.messages().is_empty());
    // Without the extra bytes the same message is accepted.
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250");
    let reply = c.send_message(
        "a@example.com",
        &["b@example.com"],
        b"Subject: x\r\n\r\nhi\r\n.\r\n",
    );
    assert!(reply.starts_with("250 "), "{reply}");
}
