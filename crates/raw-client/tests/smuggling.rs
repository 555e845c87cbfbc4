//! SMTP smuggling (CVE-2023-51764): whatever the message bytes, the data on the wire is
//! CRLF-only, dot-stuffed, and ends exactly once, at the real end.

use std::io::Write as _;

use proptest::prelude::*;
use raw_client::data::DotStuffer;

/// What the bytes mean once every bare CR, bare LF or CRLF is one line ending, with a final
/// line ending added if missing.
fn normalized(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'\r' if input.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 2;
                continue;
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

/// What a strict receiver reads: lines up to the first line that is exactly ".", un-stuffed.
fn receive(wire: &[u8]) -> (Vec<u8>, usize) {
    let mut message = Vec::new();
    let mut offset = 0;
    for line in wire.split_inclusive(|&b| b == b'\n') {
        offset += line.len();
        if line == b".\r\n" {
            return (message, offset);
        }
        message.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    panic!("no end of data in {wire:?}");
}

fn stuff(chunks: &[Vec<u8>]) -> Vec<u8> {
    let mut stuffer = DotStuffer::new(Vec::new());
    for chunk in chunks {
        stuffer.write_all(chunk).expect("a Vec never fails");
    }
    stuffer.finish().expect("a Vec never fails")
}

/// Bytes rich in the characters that matter: CR, LF, '.', and a few letters.
fn hostile_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            Just(b'\r'),
            Just(b'\n'),
            Just(b'.'),
            Just(b'a'),
            Just(b' '),
            any::<u8>()
        ],
        0..300,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_wire_carries_exactly_the_normalized_message(
        input in hostile_bytes(),
        cuts in proptest::collection::vec(0usize..300, 0..5),
    ) {
        // The same bytes in arbitrary chunks.
        let mut points: Vec<usize> = cuts.into_iter().filter(|&c| c <= input.len()).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut start = 0;
        for point in points {
            chunks.push(input[start..point].to_vec());
            start = point;
        }
        chunks.push(input[start..].to_vec());
        let wire = stuff(&chunks);

        // No bare CR or LF anywhere.
        for (i, &byte) in wire.iter().enumerate() {
            if byte == b'\n' {
                prop_assert!(i > 0 && wire[i - 1] == b'\r', "bare LF at {i}");
            }
            if byte == b'\r' {
                prop_assert_eq!(wire.get(i + 1), Some(&b'\n'), "bare CR at {}", i);
            }
        }
        // The first end of data is the real one, at the very end, and it is there once.
        let (message, end) = receive(&wire);
        prop_assert_eq!(end, wire.len());
        prop_assert_eq!(message, normalized(&input));
    }
}
