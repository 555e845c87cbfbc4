//! The client's reply parser (`raw_client::reply::parse`) on arbitrary bytes, and the
//! client's command encoder (`raw_client::command::Command::encode`) on arbitrary text.
//!
//! Reply invariants: no panic; a complete reply used at most the input, only whole
//! CRLF-terminated lines with one code and the right separators, within the limits;
//! parsing just the used bytes gives the same reply; every shorter prefix that ends at a
//! line boundary, or one byte short, still needs more bytes; and the reply written out
//! again in canonical form parses back to itself.
//!
//! Command invariants: `encode` refuses exactly the arguments holding CR, LF or NUL (and, for
//! words, spaces; for paths, angle brackets), and
//! otherwise yields one line, ending in CRLF, that carries the argument unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;
use raw_client::command::{Command, Extensions};
use raw_client::reply::{MAX_LINE, MAX_LINES, parse};

fuzz_target!(|data: &[u8]| {
    check_reply(data);
    check_commands(&String::from_utf8_lossy(data));
});

fn check_reply(data: &[u8]) {
    let Ok(Some((reply, used))) = parse(data) else {
        return;
    };
    assert!(
        used > 0 && used <= data.len(),
        "used {used} of {}",
        data.len()
    );
    let consumed = &data[..used];
    assert!(consumed.ends_with(b"\r\n"), "{consumed:?}");

    // Only whole CRLF lines, one per reply line, each with the reply's code.
    let lines: Vec<&[u8]> = consumed[..used - 2].split(|&b| b == b'\n').collect();
    assert_eq!(lines.len(), reply.lines.len());
    assert!(lines.len() <= MAX_LINES);
    let code = reply.code.to_string();
    assert!((200..600).contains(&reply.code), "{}", reply.code);
    for (i, line) in lines.iter().enumerate() {
        // Every line but the last still carries its CR here (the split was on LF).
        let body = if i + 1 < lines.len() {
            line.strip_suffix(b"\r").expect("a CRLF line ending")
        } else {
            line
        };
        assert!(!body.contains(&b'\r'), "bare CR in {body:?}");
        assert!(
            body.len() + 2 <= MAX_LINE,
            "line of {} octets",
            body.len() + 2
        );
        assert!(
            body.starts_with(code.as_bytes()),
            "{body:?} in a {code} reply"
        );
        let last = i + 1 == lines.len();
        match body.get(3) {
            None => assert!(last),
            Some(b' ') => assert!(last),
            Some(b'-') => assert!(!last),
            Some(other) => panic!("separator {other:?} in {body:?}"),
        }
    }

    // The used bytes alone are the same reply; less than them is not a reply yet.
    assert_eq!(parse(consumed), Ok(Some((reply.clone(), used))));
    assert_eq!(parse(&consumed[..used - 1]), Ok(None));
    let mut boundary = 0;
    for line in &lines[..lines.len() - 1] {
        boundary += line.len() + 1;
        assert_eq!(parse(&consumed[..boundary]), Ok(None), "cut at {boundary}");
    }

    if let Some(enhanced) = &reply.enhanced {
        assert!(reply.lines[0].starts_with(enhanced.as_str()));
        assert_eq!(enhanced.as_bytes()[0], code.as_bytes()[0]);
    }
    let _ = reply.to_string();
    let _ = Extensions::from_ehlo(&reply);

    // Encode -> parse: the reply written out canonically parses back to itself.
    let mut canonical = Vec::new();
    for (i, text) in reply.lines.iter().enumerate() {
        let separator = if i + 1 == reply.lines.len() { ' ' } else { '-' };
        canonical.extend_from_slice(format!("{code}{separator}{text}\r\n").as_bytes());
    }
    let fits = reply.lines.iter().all(|text| text.len() + 6 <= MAX_LINE);
    if fits {
        let again = parse(&canonical);
        assert_eq!(again, Ok(Some((reply.clone(), canonical.len()))));
    }
}

fn check_commands(text: &str) {
    // A word (EHLO name, mechanism, response, parameter) may hold no line break, NUL or
    // space; a path (inside <...>) no line break, NUL or angle bracket.
    let bad_word = |w: &str| w.contains(['\r', '\n', '\0', ' ', '\t']);
    let bad_path = |p: &str| p.contains(['\r', '\n', '\0', '<', '>']);
    let parameters = [text];
    let words: Vec<&str> = text.split(' ').collect();
    let commands = [
        (Command::Ehlo(text), "EHLO ", bad_word(text)),
        (Command::Helo(text), "HELO ", bad_word(text)),
        (Command::Rcpt(text), "RCPT TO:<", bad_path(text)),
        (
            Command::Mail {
                from: text,
                parameters: &[],
            },
            "MAIL FROM:<",
            bad_path(text),
        ),
        (
            Command::Mail {
                from: "a@example.org",
                parameters: &parameters,
            },
            "MAIL FROM:<a@example.org> ",
            bad_word(text),
        ),
        (
            Command::Mail {
                from: "a@example.org",
                parameters: &words,
            },
            "MAIL FROM:<a@example.org> ",
            words.iter().any(|w| bad_word(w)),
        ),
        (
            Command::Auth {
                mechanism: text,
                initial_response: None,
            },
            "AUTH ",
            bad_word(text),
        ),
        (
            Command::Auth {
                mechanism: "PLAIN",
                initial_response: Some(text),
            },
            "AUTH PLAIN ",
            bad_word(text),
        ),
        (Command::AuthResponse(text), "", bad_word(text)),
    ];
    for (command, prefix, hostile) in commands {
        match command.encode() {
            Err(_) => assert!(hostile, "{command:?} refused"),
            Ok(bytes) => {
                assert!(!hostile, "{command:?} encoded to {bytes:?}");
                let line = bytes.strip_suffix(b"\r\n").expect("a CRLF line ending");
                assert!(
                    !line.iter().any(|b| matches!(b, b'\r' | b'\n' | b'\0')),
                    "{line:?}"
                );
                assert!(line.starts_with(prefix.as_bytes()), "{line:?}");
                let line = std::str::from_utf8(line).expect("UTF-8 in, UTF-8 out");
                assert!(line.contains(text), "{line:?} lost {text:?}");
            }
        }
    }
    for (command, wire) in [
        (Command::StartTls, "STARTTLS\r\n"),
        (Command::Data, "DATA\r\n"),
        (Command::Rset, "RSET\r\n"),
        (Command::Quit, "QUIT\r\n"),
    ] {
        assert_eq!(command.encode().as_deref(), Ok(wire.as_bytes()));
    }
}
