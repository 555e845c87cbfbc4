//! BDAT (RFC 3030) from raw-client, against test-server: the same stored message as with
//! DATA, in one chunk or many, pipelined or not; BINARYMIME carrying bytes DATA could not;
//! a refused chunk named; and the DSN, REQUIRETLS and SIZE parameters of both clients.

use cli::Exit;
use raw_client::session::Chunking;
use workspace_tests::{Client, ClientRun, Scenario, TempDir, run};

fn chunked(size: u64, pipelining: bool) -> Client {
    Client::Raw(raw_client::Settings {
        pipelining,
        chunking: Some(Chunking {
            required: true,
            size,
        }),
        ..raw_client::Settings::DEFAULT
    })
}

fn stored(run: &ClientRun) -> Vec<u8> {
    assert_eq!(run.stored.len(), 1, "{:?}\n{}", run.result, run.text);
    run.stored[0].data.clone()
}

/// Bytes no DATA line could carry as they are: every octet value, CR and LF alone, a line
/// that is only ".", NUL.
fn binary_file() -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    bytes.extend_from_slice(b"\r\n.\r\nbare\rCR and bare\nLF\0");
    bytes
}

#[test]
fn bdat_stores_what_data_stores() {
    let dir = TempDir::new("chunking");
    // A 20 MiB attachment: 27 MiB of base64, 27 chunks of 1 MiB.
    let big = dir.file("big.bin", &vec![0x5a; 20 * 1024 * 1024]);
    let body = ".a line that starts with a dot\n..and two\n.\n";
    let scenario = Scenario::new(
        "starttls",
        &["--body", body, "--attach", &big.to_string_lossy()],
    )
    .with_login();
    let data = run(Client::RAW, &scenario);
    assert_eq!(data.exit(), Exit::Sent, "{:?}", data.result);
    for client in [chunked(1024 * 1024, false), chunked(1024 * 1024, true)] {
        let bdat = run(client, &scenario);
        assert_eq!(bdat.exit(), Exit::Sent, "{:?}", bdat.result);
        assert!(
            stored(&bdat) == stored(&data),
            "the same message either way"
        );
        let envelope = &bdat.stored[0].envelope;
        assert!(envelope.bdat);
        assert_eq!(envelope.chunk_sizes.len(), 28, "{:?}", envelope.chunk_sizes);
        assert!(
            envelope.chunk_sizes[..27]
                .iter()
                .all(|&size| size == 1024 * 1024)
        );
        // Nothing is dot-stuffed: the dots arrive as they are.
        assert!(!bdat.server_text().contains("C: ..a line"));
        assert!(bdat.text.contains("C: BDAT 1048576\n"));
        assert!(bdat.text.contains(" LAST\n"));
    }
    // Only raw-client's BDAT dialogue differs from DATA's: where the message goes.
    let pipelined = run(chunked(1024 * 1024, true), &scenario);
    assert!(pipelined.text.contains(
        "-- pipelining (RFC 2920): AUTH PLAIN, MAIL, 1 RCPT and the message in BDAT chunks (RFC 3030), then QUIT, in one write\n"
    ));
}

#[test]
fn binarymime_carries_the_bytes_as_they_are() {
    let dir = TempDir::new("binarymime");
    let bytes = binary_file();
    let file = dir.file("blob.bin", &bytes);
    let attach = ["--attach", &file.to_string_lossy(), "--binarymime"];
    let scenario = Scenario::new("starttls", &attach).with_login();
    let binary = run(chunked(16 * 1024, true), &scenario);
    assert_eq!(binary.exit(), Exit::Sent, "{:?}", binary.result);
    let data = stored(&binary);
    assert!(
        data.windows(bytes.len())
            .any(|window| window == bytes.as_slice()),
        "the attachment is stored byte for byte"
    );
    assert!(binary.stored[0].envelope.binarymime);
    assert!(
        binary
            .text
            .contains("MAIL FROM:<alice@example.com> BODY=BINARYMIME\n")
    );
    let parsed = mail_parser::MessageParser::default()
        .parse(&data)
        .expect("parses");
    let part = parsed.attachment(0).expect("the attachment");
    assert_eq!(part.contents(), bytes.as_slice());
    // Smaller on the wire than the same message with base64 (by about a quarter).
    let base64 = run(
        chunked(16 * 1024, true),
        &Scenario::new("starttls", &attach[..2]).with_login(),
    );
    let (binary_octets, base64_octets) = (
        binary.transcript.client_octets(),
        base64.transcript.client_octets(),
    );
    assert!(
        binary_octets * 4 < base64_octets * 3 + 4096,
        "{binary_octets} vs {base64_octets}"
    );

    // Without BDAT, or without BINARYMIME offered, nothing is sent (exit 69); lib-client
    // has no BDAT at all (exit 64).
    let without = Scenario::new("starttls", &attach)
        .with_login()
        .server(|config| config.faults.no_chunking = true);
    for client in [Client::RAW, chunked(16 * 1024, false)] {
        let refused = run(client, &without);
        assert_eq!(refused.exit(), Exit::Unavailable, "{:?}", refused.result);
        assert!(refused.stored.is_empty());
    }
    assert_eq!(run(Client::Lib, &scenario).exit(), Exit::Usage);
}

#[test]
fn chunking_required_or_a_note() {
    let scenario = Scenario::new("none", &[]).server(|config| config.faults.no_chunking = true);
    let required = run(chunked(65536, false), &scenario);
    assert_eq!(required.exit(), Exit::Unavailable);
    let failure = required.result.expect_err("refused");
    assert!(failure.to_string().contains("CHUNKING"), "{failure}");
    let preferred = Client::Raw(raw_client::Settings {
        chunking: Some(Chunking {
            required: false,
            size: 65536,
        }),
        ..raw_client::Settings::DEFAULT
    });
    let fallback = run(preferred, &scenario);
    assert_eq!(fallback.exit(), Exit::Sent);
    assert!(fallback.text.contains(
        "-- the server does not offer CHUNKING (RFC 3030): the message goes with DATA\nC: MAIL FROM"
    ));
}

#[test]
fn a_refused_chunk_is_named_and_nothing_is_stored() {
    let dir = TempDir::new("chunks");
    let file = dir.file("a.bin", &[7u8; 200_000]);
    let scenario = Scenario::new("none", &["--attach", &file.to_string_lossy()])
        .server(|config| config.faults.reject_chunks = vec![2]);
    for pipelining in [false, true] {
        let refused = run(chunked(65536, pipelining), &scenario);
        let failure = refused.result.as_ref().expect_err("refused");
        assert_eq!(failure.exit(), Exit::Unavailable, "{failure}");
        assert!(failure.to_string().contains("chunk 2 of 5"), "{failure}");
        assert!(refused.stored.is_empty());
        // The server knows where each chunk ends, so QUIT is still a command.
        assert!(refused.text.contains("C: QUIT\n"), "{}", refused.text);
        assert!(
            refused
                .text
                .ends_with("S: 221 2.0.0 Bye\n-- connection closed\n"),
            "{}",
            refused.text
        );
        if !pipelining {
            // Without pipelining the client stops at the refused chunk.
            assert_eq!(
                refused.text.matches("C: BDAT").count(),
                2,
                "{}",
                refused.text
            );
        }
    }
}

#[test]
fn dsn_requiretls_and_size_from_both_clients() {
    let args = [
        "--to",
        "bob+tag@example.org",
        "--dsn-notify",
        "success,failure",
        "--dsn-ret",
        "hdrs",
        "--dsn-envid",
        "id+1",
        "--require-tls",
        "--declare-size",
    ];
    let scenario = Scenario::new("starttls", &args).with_login();
    let raw = run(Client::RAW, &scenario);
    let lib = run(Client::Lib, &scenario);
    assert_eq!(raw.exit(), Exit::Sent, "{:?}", raw.result);
    assert_eq!(raw.server_received(), lib.server_received());
    assert_eq!(raw.text, lib.text);
    let size = raw.stored[0].data.len();
    assert!(
        raw.text.contains(&format!(
            "C: MAIL FROM:<alice@example.com> SIZE={size} RET=HDRS ENVID=id+2B1 REQUIRETLS\n"
        )),
        "{}",
        raw.text
    );
    assert!(raw
        .text
        .contains("C: RCPT TO:<bob+tag@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob+2Btag@example.org\n"));
    let envelope = &raw.stored[0].envelope;
    assert_eq!(
        envelope.rcpt_parameters,
        [vec![
            "NOTIFY=SUCCESS,FAILURE".to_owned(),
            "ORCPT=rfc822;bob+2Btag@example.org".to_owned()
        ]]
    );
    assert!(envelope.mail_parameters.contains(&"REQUIRETLS".to_owned()));

    // REQUIRETLS without TLS is refused before connecting (exit 78), by both.
    let plaintext = Scenario::new("none", &["--require-tls"]);
    for client in [Client::RAW, Client::Lib] {
        let server = plaintext.start_server();
        let job = workspace_tests::job(&plaintext, &server);
        let failure = job.expect_err("refused before connecting");
        assert_eq!(failure.exit(), Exit::Config, "{client:?}: {failure}");
    }
}
