//! Body content: line-ending normalization, the choice of Content-Transfer-Encoding
//! (RFC 2045 §6), and base64 streamed from a file in constant memory.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::error::Error;
use crate::header::MAX_LINE;

/// Bytes of input per base64 line: 57 bytes encode to exactly 76 characters.
const BASE64_LINE_INPUT: usize = 57;
/// Characters per base64 line (RFC 2045 §6.8 allows at most 76).
const BASE64_LINE_CHARS: usize = 76;
/// Bytes read from an attachment at a time (a whole number of base64 lines).
const READ_CHUNK: usize = BASE64_LINE_INPUT * 1024;

/// How a body is written on the wire (RFC 2045 §6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TransferEncoding {
    /// US-ASCII lines of at most 998 octets.
    SevenBit,
    /// UTF-8 lines of at most 998 octets; needs 8BITMIME (RFC 6152).
    EightBit,
    /// Anything with a longer line (or a NUL): ASCII output, lines of at most 76.
    QuotedPrintable,
    /// Attachments: ASCII output, lines of 76.
    Base64,
}

impl TransferEncoding {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TransferEncoding::SevenBit => "7bit",
            TransferEncoding::EightBit => "8bit",
            TransferEncoding::QuotedPrintable => "quoted-printable",
            TransferEncoding::Base64 => "base64",
        }
    }
}

/// Rewrites bare CR, bare LF and CRLF as CRLF and ends non-empty text with CRLF.
///
/// SMTP ends DATA at CRLF.CRLF only; servers that also accept a bare LF or CR there
/// can be fooled into seeing a second message ("SMTP smuggling", RFC 5321 §2.3.8
/// forbids bare CR and LF). With CRLF-only lines, the clients' dot-stuffing is enough.
pub(crate) fn normalize_line_endings(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 32 + 2);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push_str("\r\n");
            }
            '\n' => out.push_str("\r\n"),
            _ => out.push(c),
        }
    }
    if !out.is_empty() && !out.ends_with("\r\n") {
        out.push_str("\r\n");
    }
    out
}

/// Picks 7bit, 8bit or quoted-printable for text with CRLF-only line endings.
///
/// Quoted-printable is only needed when a line passes 998 octets (RFC 5322 §2.1.1),
/// or for a NUL, which 7bit and 8bit data may not contain (RFC 2045 §2.7, §2.8).
pub(crate) fn choose_text_encoding(normalized: &str) -> TransferEncoding {
    let long_line = normalized.split("\r\n").any(|line| line.len() > MAX_LINE);
    if long_line || normalized.contains('\0') {
        TransferEncoding::QuotedPrintable
    } else if normalized.is_ascii() {
        TransferEncoding::SevenBit
    } else {
        TransferEncoding::EightBit
    }
}

/// The text as it goes on the wire in `encoding`.
pub(crate) fn encode_text(normalized: &str, encoding: TransferEncoding) -> Vec<u8> {
    match encoding {
        TransferEncoding::QuotedPrintable => quoted_printable::encode(normalized.as_bytes()),
        _ => normalized.as_bytes().to_vec(),
    }
}

/// Opens an attachment for reading, telling a missing file from an unreadable one.
pub(crate) fn open_attachment(path: &Path) -> Result<File, Error> {
    let file = File::open(path).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            Error::AttachmentMissing {
                path: path.to_owned(),
                source,
            }
        } else {
            Error::AttachmentUnreadable {
                path: path.to_owned(),
                source,
            }
        }
    })?;
    let unreadable = |source| Error::AttachmentUnreadable {
        path: path.to_owned(),
        source,
    };
    let metadata = file.metadata().map_err(unreadable)?;
    if !metadata.is_file() {
        return Err(unreadable(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it is not a regular file",
        )));
    }
    Ok(file)
}

/// Streams the file at `path` into `out` as base64 in 76-character CRLF lines and
/// returns the number of bytes written. Memory use is one read chunk and its encoding.
pub(crate) fn write_base64_file<W: Write>(path: &Path, out: &mut W) -> Result<u64, Error> {
    let mut encoded = Vec::with_capacity(READ_CHUNK / BASE64_LINE_INPUT * 78);
    let mut written = 0u64;
    each_chunk(path, |input| {
        encoded.clear();
        encode_base64_lines(input, &mut encoded);
        out.write_all(&encoded)?;
        written += encoded.len() as u64;
        Ok(())
    })?;
    Ok(written)
}

/// Streams the file at `path` into `out` as it is (a BINARYMIME part, RFC 3030 §3) and
/// returns the number of bytes written. Memory use is one read chunk.
pub(crate) fn copy_file<W: Write>(path: &Path, out: &mut W) -> Result<u64, Error> {
    let mut written = 0u64;
    each_chunk(path, |input| {
        out.write_all(input)?;
        written += input.len() as u64;
        Ok(())
    })?;
    Ok(written)
}

/// Reads the attachment at `path` in chunks of [`READ_CHUNK`] and hands each to `write`.
fn each_chunk(
    path: &Path,
    mut write: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<(), Error> {
    let mut file = open_attachment(path)?;
    let mut input = vec![0u8; READ_CHUNK];
    loop {
        let filled =
            read_full(&mut file, &mut input).map_err(|source| Error::AttachmentUnreadable {
                path: path.to_owned(),
                source,
            })?;
        if filled == 0 {
            return Ok(());
        }
        write(&input[..filled])?;
        if filled < input.len() {
            return Ok(());
        }
    }
}

/// Appends `input` as base64 lines: every full 57-byte group makes one 76-character line.
///
/// The whole input is encoded in one call and then cut into lines, which keeps the
/// per-line work to two copies even in unoptimized builds.
pub(crate) fn encode_base64_lines(input: &[u8], out: &mut Vec<u8>) {
    let encoded_len = input.len().div_ceil(3) * 4;
    let start = out.len();
    out.reserve(encoded_len + 2 * input.len().div_ceil(BASE64_LINE_INPUT));
    out.resize(start + encoded_len, 0);
    // The slice is sized exactly for the encoding, so this cannot fail.
    let written = STANDARD.encode_slice(input, &mut out[start..]);
    debug_assert_eq!(written.ok(), Some(encoded_len));
    // Spread the lines out back to front, inserting CRLF after each, in place.
    let lines = encoded_len.div_ceil(BASE64_LINE_CHARS);
    out.resize(start + encoded_len + 2 * lines, 0);
    for line in (0..lines).rev() {
        let from = start + line * BASE64_LINE_CHARS;
        let len = BASE64_LINE_CHARS.min(encoded_len - line * BASE64_LINE_CHARS);
        let to = start + line * (BASE64_LINE_CHARS + 2);
        out.copy_within(from..from + len, to);
        out[to + len..to + len + 2].copy_from_slice(b"\r\n");
    }
}

/// The number of bytes [`write_base64_file`] writes for a file of `len` bytes.
pub(crate) fn base64_encoded_len(len: u64) -> u64 {
    let lines = len.div_ceil(BASE64_LINE_INPUT as u64);
    len.div_ceil(3) * 4 + lines * 2
}

/// Reads until `buffer` is full or the file ends, so that every chunk but the last
/// is a whole number of base64 lines.
fn read_full(file: &mut File, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_endings_are_normalized() {
        let cases: &[(&str, &str)] = &[
            ("", ""),
            ("a", "a\r\n"),
            ("a\rb\nc\r\nd", "a\r\nb\r\nc\r\nd\r\n"),
            ("a\r\n", "a\r\n"),
            ("\n", "\r\n"),
            ("\r", "\r\n"),
            ("\n\r", "\r\n\r\n"),
            ("\r\r\n\n", "\r\n\r\n\r\n"),
            (".\n.", ".\r\n.\r\n"),
            ("x\r\n.\r\ny", "x\r\n.\r\ny\r\n"),
            ("é\rü", "é\r\nü\r\n"),
        ];
        for &(input, expected) in cases {
            assert_eq!(normalize_line_endings(input), expected, "{input:?}");
        }
    }

    #[test]
    fn transfer_encoding_choice() {
        let line_998 = "a".repeat(998);
        let line_999 = "a".repeat(999);
        let utf8_998 = format!("{}é", "a".repeat(996));
        let utf8_999 = format!("{}é", "a".repeat(997));
        let cases: Vec<(String, TransferEncoding)> = vec![
            (String::new(), TransferEncoding::SevenBit),
            ("hello\r\n".into(), TransferEncoding::SevenBit),
            (format!("{line_998}\r\n"), TransferEncoding::SevenBit),
            (
                format!("x\r\n{line_999}\r\n"),
                TransferEncoding::QuotedPrintable,
            ),
            ("grüß\r\n".into(), TransferEncoding::EightBit),
            (format!("{utf8_998}\r\n"), TransferEncoding::EightBit),
            (format!("{utf8_999}\r\n"), TransferEncoding::QuotedPrintable),
            ("nul\0\r\n".into(), TransferEncoding::QuotedPrintable),
        ];
        for (text, expected) in cases {
            assert_eq!(
                choose_text_encoding(&text),
                expected,
                "{:?}",
                &text[..text.len().min(20)]
            );
        }
    }

    #[test]
    fn quoted_printable_output_is_ascii_with_short_lines() {
        let text = normalize_line_endings(&format!(
            "{}\n{}ü=\n.end\n",
            "x".repeat(2000),
            "é".repeat(600)
        ));
        let encoded = encode_text(&text, TransferEncoding::QuotedPrintable);
        assert!(encoded.is_ascii());
        let encoded = String::from_utf8(encoded).expect("ASCII");
        assert!(encoded.ends_with("\r\n"));
        for line in encoded.trim_end_matches("\r\n").split("\r\n") {
            assert!(line.len() <= 76, "{line}");
            assert!(!line.contains('\r') && !line.contains('\n'));
        }
        let decoded = quoted_printable::decode(&encoded, quoted_printable::ParseMode::Strict)
            .expect("valid quoted-printable");
        assert_eq!(decoded, text.as_bytes());
    }

    #[test]
    fn base64_lines() {
        let cases: &[(usize, &[usize])] = &[
            (0, &[]),
            (1, &[4]),
            (56, &[76]),
            (57, &[76]),
            (58, &[76, 4]),
            (114, &[76, 76]),
            (115, &[76, 76, 4]),
        ];
        for &(len, line_lengths) in cases {
            let input: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut out = Vec::new();
            encode_base64_lines(&input, &mut out);
            assert_eq!(out.len() as u64, base64_encoded_len(len as u64), "{len}");
            let text = String::from_utf8(out).expect("ASCII");
            let lines: Vec<usize> = text.split_terminator("\r\n").map(str::len).collect();
            assert_eq!(lines, line_lengths, "{len}");
            let decoded = STANDARD.decode(text.replace("\r\n", "")).expect("base64");
            assert_eq!(decoded, input);
        }
    }
}
