//! The client's DATA writer (`raw_client::data::DotStuffer`) on arbitrary message bytes
//! written in arbitrary chunks.
//!
//! Invariants: what reaches the wire has no bare CR or LF; the first `CRLF.CRLF` is its
//! end (no message byte can end the data early: SMTP smuggling); the wire does not depend
//! on how the bytes were split into writes; and un-stuffing it gives back the message with
//! every line ending made CRLF.

#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use raw_client::data::DotStuffer;

fuzz_target!(|chunks: Vec<Vec<u8>>| {
    let wire = stuff(&chunks);
    let whole = chunks.concat();
    assert_eq!(wire, stuff(&[whole.clone()]), "chunking changed the wire");

    for (i, &byte) in wire.iter().enumerate() {
        match byte {
            b'\r' => assert_eq!(wire.get(i + 1), Some(&b'\n'), "bare CR at {i}"),
            b'\n' => assert!(i > 0 && wire[i - 1] == b'\r', "bare LF at {i}"),
            _ => {}
        }
    }

    // "\r\n" stands for the end of the DATA command line before the message.
    let mut stream = b"\r\n".to_vec();
    stream.extend_from_slice(&wire);
    let end = find(&stream, b"\r\n.\r\n").expect("a terminator");
    assert_eq!(end + 5, stream.len(), "the data ends early at {end}");

    let body = &wire[..wire.len() - 3];
    let mut unstuffed = Vec::new();
    for line in body.split_inclusive(|&b| b == b'\n') {
        unstuffed.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    assert_eq!(unstuffed, normalized(&whole));
});

fn stuff(chunks: &[Vec<u8>]) -> Vec<u8> {
    let mut stuffer = DotStuffer::new(Vec::new());
    for chunk in chunks {
        stuffer.write_all(chunk).expect("writing to a Vec");
    }
    stuffer.finish().expect("writing to a Vec")
}

/// The message with each CRLF, bare CR and bare LF as CRLF, and a last line ended.
fn normalized(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 2);
    let mut i = 0;
    while i < message.len() {
        match message[i] {
            b'\r' if message.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            byte => out.push(byte),
        }
        i += 1;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
