//! CHUNKING and BINARYMIME (RFC 3030): BDAT chunks in any split, pipelined behind each
//! other and the next command, every error that still reads the chunk, and the chunk
//! faults.

use std::thread;
use std::time::{Duration, Instant};

use test_server::{Config, Faults, SessionEnd, Stage, Voice};

use crate::support::{Client, default_server, files_with, start};

/// How the transcript counts a chunk's octets, after the number.
const CHUNK: &str = "octets of message data in this chunk, as they are (BDAT: no dot-stuffing)";

fn with_faults(faults: Faults) -> Config {
    Config {
        faults,
        ..Config::default()
    }
}

/// EHLO, MAIL and RCPT, each answered 250.
fn transaction(c: &mut Client, mail: &str) {
    c.expect("EHLO me", "250-");
    c.expect(&format!("MAIL FROM:<a@example.com>{mail}"), "250 2.1.0");
    c.expect("RCPT TO:<b@example.com>", "250 2.1.5");
}

/// `BDAT n[ LAST]` followed by its octets, in one write.
fn chunk(octets: &[u8], last: bool) -> Vec<u8> {
    let marker = if last { " LAST" } else { "" };
    let mut wire = format!("BDAT {}{marker}\r\n", octets.len()).into_bytes();
    wire.extend_from_slice(octets);
    wire
}

#[test]
fn one_last_chunk_is_a_message() {
    let server = default_server();
    let mut c = Client::connect(server.addr());
    transaction(&mut c, "");
    let message = b"Subject: one chunk\r\n\r\nhello\r\n";
    c.send(&chunk(message, true));
    assert_eq!(c.reply(), "250 2.0.0 Ok: queued as 000001");
    let stored = &server.messages()[0];
    assert_eq!(stored.data, message);
    assert!(stored.envelope.bdat);
    assert_eq!(stored.envelope.chunk_sizes, [message.len() as u64]);
    assert!(!stored.envelope.binarymime);
    assert_eq!(c.cmd("QUIT"), "221 2.0.0 Bye");
}

/// Chunk octets are neither dot-stuffed nor lines: a leading dot, a "." line, bare CR,
/// bare LF and NUL are stored as they came, even with strict line endings.
#[test]
fn chunks_are_stored_byte_for_byte() {
    let server = default_server();
    let mut c = Client::connect(server.addr());
    transaction(&mut c, "");
    let pieces: [&[u8]; 4] = [
        b"Subject: odd octets\r\n\r\n..two dots\r\n.\r\n",
        b"bare\rCR and bare\nLF\n",
        b"NUL \0 here\r\n.\r\nMAIL FROM:<smuggled@example.com>\r\n",
        b"",
    ];
    let mut wire = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        wire.extend(chunk(piece, i + 1 == pieces.len()));
    }
    c.send(&wire);
    for piece in &pieces[..3] {
        assert_eq!(
            c.reply(),
            format!("250 2.0.0 {} octets received", piece.len())
        );
    }
    assert_eq!(c.reply(), "250 2.0.0 Ok: queued as 000001");
    let stored = &server.messages()[0];
    assert_eq!(stored.data, pieces.concat());
    assert_eq!(
        std::fs::read(&stored.path).expect("the .eml"),
        pieces.concat()
    );
    let sizes: Vec<u64> = pieces.iter().map(|p| p.len() as u64).collect();
    assert_eq!(stored.envelope.chunk_sizes, sizes);
    // The transcript counts the chunks; their octets never become lines of it.
    let n = pieces[0].len();
    let expected = format!("C: BDAT {n}\n-- {n} {CHUNK}\nS: 250 2.0.0 {n} octets received\n");
    assert!(
        stored.transcript.contains(&expected),
        "{}",
        stored.transcript
    );
    assert!(
        stored.transcript.contains(&format!("-- 0 {CHUNK}\n")),
        "{}",
        stored.transcript
    );
    assert!(
        !stored.transcript.contains("smuggled"),
        "{}",
        stored.transcript
    );
    assert!(!stored.transcript.contains('\0'));
    let saved = std::fs::read_to_string(server.store_dir().join("000001.transcript"))
        .expect("a readable .transcript");
    assert_eq!(saved, stored.transcript);
}

/// The octets may arrive in any split; the next command may follow right behind them in
/// the same write (RFC 2920 with RFC 3030 §2).
#[test]
fn chunks_split_across_writes_and_pipelined_commands() {
    let server = default_server();
    let mut c = Client::connect(server.addr());
    transaction(&mut c, "");
    // The command line itself in two writes, then its octets in three.
    c.send(b"BDAT 1");
    thread::sleep(Duration::from_millis(50));
    c.send(b"0\r\nfirst");
    thread::sleep(Duration::from_millis(50));
    c.send(b"-");
    thread::sleep(Duration::from_millis(50));
    // The rest of the chunk, the next BDAT with its octets, and NOOP, in one write.
    c.send(b"10\r\nBDAT 4 LAST\r\nend.NOOP\r\n");
    assert_eq!(c.reply(), "250 2.0.0 10 octets received");
    assert_eq!(c.reply(), "250 2.0.0 Ok: queued as 000001");
    assert_eq!(c.reply(), "250 2.0.0 Ok");
    assert_eq!(server.messages()[0].data, b"first-10\r\nend.");
    // A whole transaction in one write, pipelined (RFC 2920 §3.1).
    let mut wire = b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n".to_vec();
    wire.extend(chunk(b"one ", false));
    wire.extend(chunk(b"two", true));
    wire.extend(b"QUIT\r\n");
    c.send(&wire);
    for expected in [
        "250 2.1.0 Ok",
        "250 2.1.5 Ok",
        "250 2.0.0 4 octets received",
        "250 2.0.0 Ok: queued as 000002",
        "221 2.0.0 Bye",
    ] {
        assert_eq!(c.reply(), expected);
    }
    assert!(c.closed());
    assert_eq!(server.messages()[1].data, b"one two");
}

/// Refused BDATs still have their octets read, so the octets never run as commands and
/// the command after them is answered (RFC 3030 §2).
#[test]
fn bdat_out_of_sequence_keeps_the_stream_in_sync() {
    let server = default_server();
    let mut c = Client::connect(server.addr());
    c.send(&chunk(b"QUIT\r\n", false));
    assert_eq!(c.reply(), "503 5.5.1 Send EHLO or HELO first");
    c.expect("HELO me", "250 ");
    c.send(&chunk(b"QUIT\r\n", true));
    assert_eq!(
        c.reply(),
        "503 5.5.1 BDAT needs EHLO: CHUNKING is an ESMTP extension"
    );
    c.expect("EHLO me", "250-");
    c.send(&chunk(b"QUIT\r\n", true));
    assert_eq!(c.reply(), "503 5.5.1 Need MAIL before BDAT");
    assert_eq!(c.cmd("NOOP"), "250 2.0.0 Ok");
    // MAIL without an accepted recipient: 554, as DATA would get, and the transaction
    // fails with its chunk.
    c.expect("MAIL FROM:<a@example.com>", "250 ");
    c.send(&chunk(b"QUIT\r\n", false));
    assert_eq!(c.reply(), "554 5.5.1 No valid recipients");
    c.send(&chunk(b"QUIT\r\n", true));
    assert_eq!(
        c.reply(),
        "503 5.5.1 An earlier BDAT chunk of this transaction failed; send RSET or MAIL"
    );
    assert_eq!(c.cmd("NOOP"), "250 2.0.0 Ok");
    assert!(server.messages().is_empty());
    let sessions = {
        c.cmd("QUIT");
        server.wait_for_sessions(1, Duration::from_secs(10))
    };
    assert_eq!(sessions[0].reason, SessionEnd::Quit);
}

/// After a refused chunk the transaction has failed: the chunks already pipelined behind it
/// are read and refused until the LAST one, RSET or MAIL.
#[test]
fn chunks_after_a_failed_one_are_refused_until_rset_or_mail() {
    let server = start(Config {
        size_limit: 100,
        ..Config::default()
    });
    let mut c = Client::connect(server.addr());
    transaction(&mut c, "");
    let mut wire = chunk(&[b'x'; 101], false);
    wire.extend(chunk(b"more", false));
    wire.extend(chunk(b"end", true));
    wire.extend(chunk(b"after", true));
    c.send(&wire);
    assert_eq!(
        c.reply(),
        "552 5.3.4 Message size exceeds fixed maximum message size"
    );
    let failed = "503 5.5.1 An earlier BDAT chunk of this transaction failed; send RSET or MAIL";
    assert_eq!(c.reply(), failed);
    assert_eq!(c.reply(), failed);
    // The LAST chunk ended the failed transaction's chunks.
    assert_eq!(c.reply(), "503 5.5.1 Need MAIL before BDAT");
    // RSET ends them too.
    c.expect("MAIL FROM:<a@example.com>", "250 ");
    c.expect("RCPT TO:<b@example.com>", "250 ");
    c.send(&chunk(&[b'y'; 101], false));
    assert_eq!(
        c.reply(),
        "552 5.3.4 Message size exceeds fixed maximum message size"
    );
    assert_eq!(c.cmd("RSET"), "250 2.0.0 Ok");
    c.send(&chunk(b"x", true));
    assert_eq!(c.reply(), "503 5.5.1 Need MAIL before BDAT");
    // And a new transaction works.
    c.expect("MAIL FROM:<a@example.com>", "250 ");
    c.expect("RCPT TO:<b@example.com>", "250 ");
    c.send(&chunk(b"fine\r\n", true));
    assert_eq!(c.reply(), "250 2.0.0 Ok: queued as 000001");
    assert_eq!(server.messages().len(), 1);
    assert_eq!(server.messages()[0].data, b"fine\r\n");
}

/// The SIZE limit counts every chunk of the transaction (RFC 1870 §6).
#[test]
fn size_limit_over_several_chunks() {
    let server = start(Config {
        size_limit: 100,
        ..Config::default()
    });
    let mut c = Client::connect(server.addr());
    transaction(&mut c, "");
    c.send(&chunk(&[b'a'; 60], false));
    assert_eq!(c.reply(), "250 2.0.0 60 octets received");
    c.send(&chunk(&[b'b'; 40], false));
    assert_eq!(c.reply(), "250 2.0.0 40 octets received");
    c.send(&chunk(b"c", true));
    assert_eq!(
        c.reply(),
        "552 5.3.4 Message size exceeds fixed maximum message size"
    );
    assert_eq!(c.cmd("NOOP"), "250 2.0.0 Ok");
    // Exactly the limit is fine.
    c.expect("MAIL FROM:<a@example.com>", "250 ");
    c.expect("RCPT TO:<b@example.com>", "250 ");
    c.send(&chunk(&[b'a'; 100], true));
    assert_eq!(c.reply(), "250 2.0.0 Ok: queued as 000001");
    // A chunk size no limit could hold is refused the same way; its octets are read.
    c.expect("MAIL FROM:<a@example.com>", "250 ");
    c.expect("RCPT TO:<b@example.com>", "250 ");
    c.send(b"BDAT 5000 LAST\r\n");
    c.send(&[b'z'; 5000]);
    assert_eq!(
        c.reply(),
        "552 5.3.4 Message size exceeds fixed maximum message size"
    );
    assert_eq!(c.cmd("NOOP"), "250 2.0.0 Ok");
}

/// A chunk size that is not digits cannot be read past: 501, and the transaction fails.
#[test]
fn malformed_chunk_sizes() {
    let server = default_server();
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250-");
    for (line, reply) in [
        (
            "BDAT",
            "501 5.5.4 Syntax error: BDAT needs a chunk size in octets",
        ),
        (
            "BDAT -5",
            "501 5.5.4 Syntax error: the BDAT chunk size must be a number of octets, digits only",
        ),
        (
            "BDAT +5 LAST",
            "501 5.5.4 Syntax error: the BDAT chunk size must be a number of octets, digits only",
        ),
        (
            "BDAT 99999999999999999999999",
            "501 5.5.4 Syntax error: the BDAT chunk size is too large to be a number of octets",
        ),
        (
            "BDAT 5 NOW",
            "501 5.5.4 Syntax error: BDAT takes a chunk size and an optional LAST",
        ),
    ] {
        assert_eq!(c.cmd(line), reply, "{line}");
    }
    c.expect("MAIL FROM:<a@example.com>", "250 ");
    c.expect("RCPT TO:<b@example.com>", "250 ");
    c.send(&chunk(b"part", false));
    assert_eq!(c.reply(), "250 2.0.0 4 octets received");
    assert_eq!(
        c.cmd("BDAT x"),
        "501 5.5.4 Syntax error: the BDAT chunk size must be a number of octets, digits only"
    );
    c.send(&chunk(b"rest", true));
    assert_eq!(
        c.reply(),
        "503 5.5.1 An earlier BDAT chunk of this transaction failed; send RSET or MAIL"
    );
    assert!(server.messages().is_empty());
}

/// DATA and BDAT do not mix in one transaction (RFC 3030 §2); a BINARYMIME message needs
/// BDAT (§3).
#[test]
fn data_after_bdat_and_binarymime_with_data() {
    let server = default_server();
    let mut c = Client::connect(server.addr());
    transaction(&mut c, "");
    c.send(&chunk(b"Subject: x\r\n", false));
    assert_eq!(c.reply(), "250 2.0.0 12 octets received");
    assert_eq!(
        c.cmd("DATA"),
        "503 5.5.1 DATA cannot follow BDAT in one transaction (RFC 3030 2)"
    );
    // The transaction goes on with BDAT.
    c.send(&chunk(b"\r\nbody\r\n", true));
    assert_eq!(c.reply(), "250 2.0.0 Ok: queued as 000001");
    assert_eq!(server.messages()[0].data, b"Subject: x\r\n\r\nbody\r\n");

    c.expect("MAIL FROM:<a@example.com> BODY=BINARYMIME", "250 2.1.0");
    c.expect("RCPT TO:<b@example.com>", "250 ");
    assert_eq!(
        c.cmd("DATA"),
        "503 5.5.1 BODY=BINARYMIME needs BDAT, not DATA (RFC 3030 3)"
    );
    let binary: Vec<u8> = (0..=255).collect();
    c.send(&chunk(&binary, true));
    assert_eq!(c.reply(), "250 2.0.0 Ok: queued as 000002");
    let stored = &server.messages()[1];
    assert_eq!(stored.data, binary);
    assert!(stored.envelope.binarymime && stored.envelope.bdat);
    assert_eq!(stored.envelope.mail_parameters, ["BODY=BINARYMIME"]);
    // A message sent with DATA says so.
    c.expect("MAIL FROM:<a@example.com>", "250 ");
    c.expect("RCPT TO:<b@example.com>", "250 ");
    assert!(c.data(b"x\r\n.\r\n").starts_with("250 "));
    let by_data = &server.messages()[2].envelope;
    assert!(!by_data.bdat && by_data.chunk_sizes.is_empty() && !by_data.binarymime);
}

#[test]
fn reject_chunk_fault() {
    let server = start(with_faults(Faults {
        reject_chunks: vec![2],
        ..Faults::default()
    }));
    let mut c = Client::connect(server.addr());
    transaction(&mut c, "");
    let mut wire = chunk(b"one", false);
    wire.extend(chunk(b"two", false));
    wire.extend(chunk(b"three", true));
    c.send(&wire);
    assert_eq!(c.reply(), "250 2.0.0 3 octets received");
    assert_eq!(c.reply(), "554 5.6.0 Message content rejected at chunk 2");
    assert_eq!(
        c.reply(),
        "503 5.5.1 An earlier BDAT chunk of this transaction failed; send RSET or MAIL"
    );
    assert!(server.messages().is_empty());
    // Chunks count per transaction: the next one's second chunk is refused too, its first
    // (and a lone LAST) is not.
    c.expect("MAIL FROM:<a@example.com>", "250 ");
    c.expect("RCPT TO:<b@example.com>", "250 ");
    c.send(&chunk(b"alone", true));
    assert_eq!(c.reply(), "250 2.0.0 Ok: queued as 000001");
    c.cmd("QUIT");
    let sessions = server.wait_for_sessions(1, Duration::from_secs(10));
    let text = sessions[0].transcript.render_text(Default::default());
    assert!(
        text.contains("-- the chunk is discarded: rejecting chunk 2 (fault reject-chunk)"),
        "{text}"
    );
}

#[test]
fn drop_mid_chunk_fault() {
    let server = start(with_faults(Faults {
        drop_mid_chunk: true,
        ..Faults::default()
    }));
    let mut c = Client::connect(server.addr());
    transaction(&mut c, "");
    c.send(&chunk(&[b'x'; 1000], true));
    assert!(
        c.try_reply().is_none(),
        "no reply: the connection is dropped"
    );
    let sessions = server.wait_for_sessions(1, Duration::from_secs(10));
    assert_eq!(
        sessions[0].reason,
        SessionEnd::DroppedByFault {
            fault: "drop-mid-chunk".into()
        }
    );
    let text = sessions[0].transcript.render_text(Default::default());
    assert!(
        text.contains(
            "-- dropping the connection mid-chunk, after 500 of 1000 octets (fault \
             drop-mid-chunk); nothing stored"
        ),
        "{text}"
    );
    assert!(server.messages().is_empty());
    assert!(files_with(server.store_dir(), "eml").is_empty());
}

#[test]
fn stall_before_a_chunk_reply() {
    let server = start(with_faults(Faults {
        stall: vec![(Stage::Bdat, Duration::from_millis(400))],
        ..Faults::default()
    }));
    let mut c = Client::connect(server.addr());
    transaction(&mut c, "");
    let started = Instant::now();
    c.send(&chunk(b"one", false));
    assert_eq!(c.reply(), "250 2.0.0 3 octets received");
    assert!(started.elapsed() >= Duration::from_millis(400));
    c.send(&chunk(b"two", true));
    assert!(c.reply().starts_with("250 2.0.0 Ok: queued as "));
    assert!(started.elapsed() >= Duration::from_millis(800));
}

/// A client that goes away in the middle of a chunk stores nothing.
#[test]
fn client_closing_mid_chunk() {
    let server = default_server();
    let mut c = Client::connect(server.addr());
    transaction(&mut c, "");
    c.send(b"BDAT 100 LAST\r\nonly some");
    c.shutdown();
    let sessions = server.wait_for_sessions(1, Duration::from_secs(10));
    assert_eq!(
        sessions[0].reason,
        SessionEnd::ClientClosed {
            during: test_server::Phase::Chunk
        }
    );
    let text = sessions[0].transcript.render_text(Default::default());
    assert!(
        text.contains(&format!(
            "-- 9 {CHUNK}\n-- only 9 of the chunk's 100 octets came\n"
        )),
        "{text}"
    );
    assert!(server.messages().is_empty());
}

/// Without CHUNKING (the `no-chunking` fault) BDAT is what it is to an old server: 502,
/// and its octets are read as commands.
#[test]
fn no_chunking_fault() {
    let server = start(with_faults(Faults {
        no_chunking: true,
        ..Faults::default()
    }));
    let mut c = Client::connect(server.addr());
    let ehlo = c.cmd("EHLO me");
    assert!(
        !ehlo.contains("CHUNKING") && !ehlo.contains("BINARYMIME"),
        "{ehlo}"
    );
    assert_eq!(
        c.cmd("MAIL FROM:<a@example.com> BODY=BINARYMIME"),
        "555 5.5.4 BODY=BINARYMIME is not offered here"
    );
    c.send(&chunk(b"NOOP\r\n", true));
    assert_eq!(c.reply(), "502 5.5.1 BDAT not implemented");
    assert_eq!(c.reply(), "250 2.0.0 Ok", "the chunk ran as a command");
    assert_eq!(c.cmd("BDAT x"), "502 5.5.1 BDAT not implemented");
}

/// Gmail offers CHUNKING (after PIPELINING) but not BINARYMIME.
#[test]
fn gmail_voice_offers_chunking() {
    let server = start(Config {
        voice: Voice::Gmail,
        ..Config::default()
    });
    let mut c = Client::connect(server.addr());
    let ehlo = c.cmd("EHLO me");
    assert!(
        ehlo.contains("250-PIPELINING\n250-CHUNKING\n250 SMTPUTF8"),
        "{ehlo}"
    );
    assert!(!ehlo.contains("BINARYMIME"), "{ehlo}");
    c.expect("MAIL FROM:<a@example.com>", "250 ");
    c.expect("RCPT TO:<b@example.com>", "250 ");
    c.send(&chunk(b"Subject: g\r\n\r\nhi\r\n", true));
    assert_eq!(c.reply(), "250 2.0.0 OK  000001 a1b2c3d4e5f6 - gsmtp");
}

/// A 20 MiB message in 1 MiB chunks, all written before any reply is read.
#[test]
fn twenty_mib_in_one_mib_chunks() {
    const MIB: usize = 1024 * 1024;
    let server = start(Config {
        sync: false,
        ..Config::default()
    });
    let mut c = Client::connect(server.addr());
    transaction(&mut c, "");
    // Every octet value, and no two chunks alike.
    let message: Vec<u8> = (0..20 * MIB)
        .map(|i| (i % 251) as u8 ^ (i / MIB) as u8)
        .collect();
    for (i, piece) in message.chunks(MIB).enumerate() {
        c.send(&chunk(piece, i == 19));
    }
    for _ in 0..19 {
        assert_eq!(c.reply(), "250 2.0.0 1048576 octets received");
    }
    assert_eq!(c.reply(), "250 2.0.0 Ok: queued as 000001");
    let stored = &server.messages()[0];
    assert!(stored.data == message, "the stored message differs");
    assert_eq!(stored.envelope.chunk_sizes, vec![MIB as u64; 20]);
    assert!(std::fs::read(&stored.path).expect("the .eml") == message);
    // The transcript stays small: 20 BDAT lines, notes and replies.
    assert!(
        stored.transcript.len() < 8 * 1024,
        "{}",
        stored.transcript.len()
    );
}
