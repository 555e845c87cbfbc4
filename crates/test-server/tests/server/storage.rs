//! What is stored: exact bytes after dot-unstuffing, the envelope JSON, the redacted
//! transcript, ids, and nothing at all for refused or interrupted messages.

use std::fs;
use std::time::Duration;

use test_server::{Config, LineEndings, Phase, SessionEnd, StoredEnvelope};

use crate::support::{Client, default_server, files_with, non_final_files, start};

#[test]
fn stored_bytes_envelope_and_transcript_are_exact() {
    let server = default_server();
    let mut c = Client::connect(server.addr());
    c.expect("EHLO client.example", "250-");
    c.expect("MAIL FROM:<a@example.com> BODY=8BITMIME", "250");
    c.expect("RCPT TO:<b@example.com>", "250");
    c.expect("RCPT TO:<c@example.com>", "250");
    // Dot-stuffed on the wire; a line that is only "." inside the content; trailing
    // spaces and an empty last line are kept.
    let wire = b"Subject: dots\r\n\r\n..leading dot\r\n..\r\n...\r\nend \r\n\r\n.\r\n";
    let content = b"Subject: dots\r\n\r\n.leading dot\r\n.\r\n..\r\nend \r\n\r\n";
    assert_eq!(c.data(wire), "250 2.0.0 Ok: queued as 000001");
    // An empty message is legal too.
    c.expect("MAIL FROM:<>", "250");
    c.expect("RCPT TO:<b@example.com>", "250");
    assert_eq!(c.data(b".\r\n"), "250 2.0.0 Ok: queued as 000002");
    c.expect("QUIT", "221");

    let messages = server.messages();
    assert_eq!(messages.len(), 2);
    let first = &messages[0];
    assert_eq!(first.id, "000001");
    assert_eq!(first.data, content);
    assert_eq!(first.path, server.store_dir().join("000001.eml"));
    assert_eq!(fs::read(&first.path).expect("eml"), content);
    let json = fs::read_to_string(server.store_dir().join("000001.json")).expect("json");
    let envelope: StoredEnvelope = serde_json::from_str(&json).expect("envelope JSON");
    assert_eq!(envelope, first.envelope);
    assert_eq!(envelope.from, "a@example.com");
    assert_eq!(envelope.recipients, ["b@example.com", "c@example.com"]);
    assert_eq!(envelope.mail_parameters, ["BODY=8BITMIME"]);
    assert_eq!(envelope.auth_user, None);
    assert!(!envelope.tls);
    assert_eq!(envelope.helo, "client.example");
    assert!(envelope.peer.starts_with("127.0.0.1:"), "{}", envelope.peer);
    let transcript =
        fs::read_to_string(server.store_dir().join("000001.transcript")).expect("transcript");
    assert_eq!(transcript, first.transcript);
    assert!(transcript.starts_with(
        "-- client connected\nS: 220 localhost ESMTP test-server ready\nC: EHLO client.example\n"
    ));
    assert!(
        transcript.ends_with("C: ..\nC: ...\nC: end \nC: \nC: .\n"),
        "{transcript}"
    );
    assert_eq!(messages[1].data, b"");
    assert_eq!(messages[1].envelope.from, "");
    assert_eq!(
        files_with(server.store_dir(), "eml"),
        ["000001.eml", "000002.eml"]
    );
    assert!(non_final_files(server.store_dir()).is_empty());
    let sessions = server.wait_for_sessions(1, Duration::from_secs(10));
    assert_eq!(sessions[0].message_ids, ["000001", "000002"]);
}

/// Each `.transcript` starts with the session's set-up, then leaves out the messages stored
/// before it in the same session: a long session does not write ever longer files.
#[test]
fn later_transcripts_leave_out_the_earlier_messages_of_the_session() {
    let server = default_server();
    let mut c = Client::connect(server.addr());
    c.expect("EHLO client.example", "250-");
    for n in 1..=3 {
        c.expect("MAIL FROM:<a@example.com>", "250");
        c.expect("RCPT TO:<b@example.com>", "250");
        let body = format!("Subject: message {n}\r\n\r\nbody {n}\r\n.\r\n");
        assert_eq!(
            c.data(body.as_bytes()),
            format!("250 2.0.0 Ok: queued as 00000{n}")
        );
        if n == 2 {
            c.expect("NOOP", "250");
        }
    }
    c.expect("QUIT", "221");
    let transcript = |id: &str| {
        fs::read_to_string(server.store_dir().join(format!("{id}.transcript"))).expect("transcript")
    };
    let setup = "-- client connected\nS: 220 localhost ESMTP test-server ready\n\
                 C: EHLO client.example\n";
    let first = transcript("000001");
    assert!(first.starts_with(setup), "{first}");
    assert!(first.contains("C: body 1\n"));
    let third = transcript("000003");
    assert!(third.starts_with(setup), "{third}");
    assert!(
        !third.contains("body 1") && !third.contains("body 2"),
        "{third}"
    );
    assert!(
        third.contains(
            "-- the 2 earlier message(s) of this session are not repeated here\n\
             C: NOOP\nS: 250 2.0.0 Ok\nC: MAIL FROM:<a@example.com>\n"
        ),
        "{third}"
    );
    assert!(third.ends_with("C: body 3\nC: .\n"), "{third}");
    assert_eq!(server.messages()[2].transcript, third);
    // The session's own transcript still has everything.
    let sessions = server.wait_for_sessions(1, Duration::from_secs(10));
    let whole = sessions[0].transcript.render_text(Default::default());
    assert!(whole.contains("C: body 1\n") && whole.contains("C: body 2\n"));
}

/// `--no-sync` changes how durable the store is, not what it stores.
#[test]
fn without_sync_the_same_files_are_stored() {
    let server = start(Config {
        sync: false,
        ..Config::default()
    });
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250");
    for expected in ["000001", "000002"] {
        let reply = c.send_message("a@example.com", &["b@example.com"], b"x\r\n.\r\n");
        assert_eq!(reply, format!("250 2.0.0 Ok: queued as {expected}"));
    }
    assert_eq!(
        files_with(server.store_dir(), "eml"),
        ["000001.eml", "000002.eml"]
    );
    assert_eq!(files_with(server.store_dir(), "json").len(), 2);
    assert_eq!(files_with(server.store_dir(), "transcript").len(), 2);
    assert!(non_final_files(server.store_dir()).is_empty());
    assert_eq!(
        fs::read(server.store_dir().join("000002.eml")).expect("eml"),
        b"x\r\n"
    );
}

#[test]
fn ids_continue_in_a_reused_store_directory() {
    let dir = std::env::temp_dir().join(format!("test-server-reuse-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    for expected in ["000001", "000002"] {
        let server = start(Config {
            store: Some(dir.clone()),
            ..Config::default()
        });
        let mut c = Client::connect(server.addr());
        c.expect("EHLO me", "250");
        let reply = c.send_message("a@example.com", &["b@example.com"], b"x\r\n.\r\n");
        assert_eq!(reply, format!("250 2.0.0 Ok: queued as {expected}"));
        assert_eq!(server.store_dir(), dir);
        // The harness removes the directory on drop; keep it for the second run.
        std::mem::forget(server);
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn the_smuggling_sequences_do_not_end_data_and_bare_lf_is_refused() {
    let server = default_server();
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250-");
    c.expect("MAIL FROM:<a@example.com>", "250");
    c.expect("RCPT TO:<b@example.com>", "250");
    c.expect("DATA", "354");
    // "\n.\r\n" and "\r\n.\n" are not the end of data (CVE-2023-51764 and friends); had
    // they been, the MAIL FROM would have run as a command and got its own reply.
    c.send(b"Subject: smuggle\r\n\r\na\n.\r\nMAIL FROM:<evil@example.com>\r\nb\r\n.\nRCPT TO:<x@example.com>\r\n");
    c.send(b"last\r\n.\r\n");
    assert_eq!(
        c.reply(),
        "550 5.6.11 bare LF or CR in message data is not allowed (SMTP smuggling defence)"
    );
    // A bare CR alone is refused as well.
    c.expect("MAIL FROM:<a@example.com>", "250");
    c.expect("RCPT TO:<b@example.com>", "250");
    assert!(c.data(b"a\rb\r\n.\r\n").starts_with("550 5.6.11 "));
    assert_eq!(c.cmd("NOOP"), "250 2.0.0 Ok");
    assert!(server.messages().is_empty());
    assert!(files_with(server.store_dir(), "eml").is_empty());
}

#[test]
fn permissive_mode_normalizes_bare_line_endings() {
    let server = start(Config {
        line_endings: LineEndings::Permissive,
        ..Config::default()
    });
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250-");
    c.expect("MAIL FROM:<a@example.com>", "250");
    c.expect("RCPT TO:<b@example.com>", "250");
    c.expect("DATA", "354");
    // Even here only CRLF.CRLF ends the data.
    c.send(b"Subject: lf\n\nline one\nline\rtwo\r\n..dot\n.\nstill data\r\n.\r\n");
    assert_eq!(c.reply(), "250 2.0.0 Ok: queued as 000001");
    let message = &server.messages()[0];
    assert_eq!(
        message.data,
        b"Subject: lf\r\n\r\nline one\r\nline\r\ntwo\r\n.dot\r\n\r\nstill data\r\n"
    );
}

#[test]
fn a_client_vanishing_mid_data_leaves_nothing() {
    let server = default_server();
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250-");
    c.expect("MAIL FROM:<a@example.com>", "250");
    c.expect("RCPT TO:<b@example.com>", "250");
    c.expect("DATA", "354");
    c.send(b"Subject: cut\r\n\r\nhalf a mess");
    c.shutdown();
    let sessions = server.wait_for_sessions(1, Duration::from_secs(10));
    assert_eq!(sessions.len(), 1);
    assert!(sessions[0].message_ids.is_empty());
    let text = sessions[0].transcript.render_text(Default::default());
    assert!(
        text.contains("-- the client closed the connection during DATA; nothing stored\n"),
        "{text}"
    );
    assert!(server.messages().is_empty());
    for ext in ["eml", "json", "transcript"] {
        assert!(files_with(server.store_dir(), ext).is_empty(), "no .{ext}");
    }
    assert!(non_final_files(server.store_dir()).is_empty());
    // Only the session's own record: its transcript says why it ended.
    assert_eq!(
        sessions[0].reason,
        SessionEnd::ClientClosed {
            during: Phase::Data
        }
    );
    let saved = fs::read_to_string(sessions[0].transcript_file.as_ref().expect("saved"))
        .expect("session transcript");
    assert!(
        saved.ends_with(
            "-- the client closed the connection during DATA; nothing stored\n\
             -- connection closed\n\
             -- session ended: the client closed the connection in the middle of DATA, \
             before the final \".\" line\n"
        ),
        "{saved}"
    );
}
