//! The test server's command parser on arbitrary bytes, and the client's encoder checked
//! against it (the two are written independently so that each checks the other).
//!
//! Invariants: no panic; a line holding a control character other than TAB is refused;
//! and for commands the client encodes, the server reads back the same command with the
//! same argument or refuses it, never something else: an address that `message` accepts
//! comes back as that exact path with no ESMTP parameters (so no address can inject one),
//! an EHLO name as that name, an AUTH mechanism as that mechanism.

#![no_main]

use libfuzzer_sys::fuzz_target;
use message::Address;
use raw_client::command::Command;
use test_server::fuzzing::parse_command;

// The first byte picks the command for the round trip; the rest is the line.
fuzz_target!(|data: &[u8]| {
    if let Some((&selector, line)) = data.split_first() {
        check_line(line);
        check_round_trip(selector, &String::from_utf8_lossy(line));
    }
});

fn check_line(line: &[u8]) {
    let parsed = parse_command(line);
    let control = match std::str::from_utf8(line) {
        Ok(text) => text.chars().any(|c| c.is_control() && c != '\t'),
        Err(_) => true,
    };
    if control {
        assert_eq!(parsed, Err("BadBytes".to_owned()), "{line:?}");
    }
}

/// Encodes one client command around `text`, parses it with the server's parser and
/// compares.
fn check_round_trip(selector: u8, text: &str) {
    let address = Address::parse(text).ok();
    let (command, expected) = match selector % 5 {
        0 => {
            let Some(address) = &address else { return };
            (
                Command::Rcpt(address.as_str()),
                format!("Rcpt {{ path: {:?}, parameters: [] }}", address.as_str()),
            )
        }
        1 => {
            let Some(address) = &address else { return };
            (
                Command::Mail {
                    from: address.as_str(),
                    parameters: &[],
                },
                format!("Mail {{ path: {:?}, parameters: [] }}", address.as_str()),
            )
        }
        2 => (Command::Ehlo(text), format!("Ehlo({:?})", text.trim())),
        3 => (Command::Helo(text), format!("Helo({:?})", text.trim())),
        // A mechanism with a space would be two words on the wire; the client only ever
        // sends the fixed names it knows.
        _ if text.contains(' ') => return,
        _ => (
            Command::Auth {
                mechanism: text,
                initial_response: None,
            },
            format!(
                "Auth {{ mechanism: {:?}, initial_response: None }}",
                text.trim().to_ascii_uppercase()
            ),
        ),
    };
    let Ok(wire) = command.encode() else {
        return;
    };
    let line = wire.strip_suffix(b"\r\n").expect("a CRLF line ending");
    if let Ok(parsed) = parse_command(line) {
        assert_eq!(parsed, expected, "{:?}", String::from_utf8_lossy(line));
    }
    // A plain domain and a plain mechanism name must be accepted, not just not misread.
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if plain && selector % 5 >= 2 {
        assert_eq!(parse_command(line), Ok(expected), "{text:?}");
    }
}
