//! The server's own SMTP command parser: one command line (without its line ending) in,
//! a [`Command`] or the reason it is refused out, and the syntax of the ESMTP parameter
//! values it checks (DSN's xtext, `NOTIFY=`, `ORCPT=`). Pure over bytes, no I/O.
//!
//! Written independently of the clients' protocol code so that each checks the other.

/// A parsed SMTP command (RFC 5321 §4.1, RFC 3207, RFC 4954, RFC 3030).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    Ehlo(String),
    Helo(String),
    Mail {
        path: String,
        parameters: Vec<Parameter>,
    },
    Rcpt {
        path: String,
        parameters: Vec<Parameter>,
    },
    Data,
    /// `BDAT size [LAST]` (RFC 3030 §2): `size` octets follow the command line.
    Bdat {
        size: u64,
        last: bool,
    },
    Rset,
    Noop,
    Quit,
    Vrfy,
    Help,
    StartTls,
    Auth {
        mechanism: String,
        initial_response: Option<String>,
    },
    /// A command RFC 5321 knows that this server does not implement (EXPN, TURN, ...).
    NotImplemented(String),
}

/// One ESMTP parameter of MAIL or RCPT: `KEYWORD[=VALUE]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parameter {
    /// The keyword, upper-cased.
    pub(crate) keyword: String,
    pub(crate) value: Option<String>,
    /// The parameter as the client wrote it.
    pub(crate) text: String,
}

/// Why a command line was refused; each maps to one reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `500 5.5.2`: not a command.
    Unrecognized,
    /// `501 5.5.4`: the line is not valid UTF-8 or holds control characters.
    BadBytes,
    /// `501 5.5.4`: a syntax error in the arguments.
    Syntax(&'static str),
    /// `501 5.1.7` (MAIL) or `501 5.1.3` (RCPT): the path is not an address.
    BadPath { rcpt: bool, why: &'static str },
    /// `501 5.5.4`: a BDAT line whose chunk size cannot be read, so the octets that follow
    /// cannot be told from commands.
    BadChunk(&'static str),
}

/// RFC 5321 §4.5.3.1: local-part 64 octets, domain 255, path 256 (with brackets).
const MAX_LOCAL_PART: usize = 64;
const MAX_DOMAIN: usize = 255;
const MAX_PATH: usize = 256;

/// Parses one command line, given without its CRLF.
pub(crate) fn parse(line: &[u8]) -> Result<Command, Refusal> {
    let line = std::str::from_utf8(line).map_err(|_| Refusal::BadBytes)?;
    if line.chars().any(|c| c.is_control() && c != '\t') {
        return Err(Refusal::BadBytes);
    }
    let (verb, rest) = match line.split_once(' ') {
        Some((verb, rest)) => (verb, Some(rest)),
        None => (line, None),
    };
    let argument = rest.map(str::trim).filter(|r| !r.is_empty());
    let no_argument = |command: Command, why: &'static str| match argument {
        None => Ok(command),
        Some(_) => Err(Refusal::Syntax(why)),
    };
    match verb.to_ascii_uppercase().as_str() {
        "EHLO" => Ok(Command::Ehlo(domain(argument, "EHLO")?)),
        "HELO" => Ok(Command::Helo(domain(argument, "HELO")?)),
        "MAIL" => {
            let (path, parameters) = path_and_parameters(rest.unwrap_or(""), "FROM:", false)?;
            Ok(Command::Mail { path, parameters })
        }
        "RCPT" => {
            let (path, parameters) = path_and_parameters(rest.unwrap_or(""), "TO:", true)?;
            Ok(Command::Rcpt { path, parameters })
        }
        "DATA" => no_argument(Command::Data, "DATA takes no parameters"),
        "BDAT" => bdat(argument),
        "RSET" => no_argument(Command::Rset, "RSET takes no parameters"),
        "QUIT" => no_argument(Command::Quit, "QUIT takes no parameters"),
        "STARTTLS" => no_argument(Command::StartTls, "STARTTLS takes no parameters"),
        "NOOP" => Ok(Command::Noop),
        "HELP" => Ok(Command::Help),
        "VRFY" => match argument {
            Some(_) => Ok(Command::Vrfy),
            None => Err(Refusal::Syntax("VRFY needs a user or mailbox")),
        },
        "AUTH" => {
            let mut words = argument.unwrap_or("").split(' ').filter(|w| !w.is_empty());
            match (words.next(), words.next(), words.next()) {
                (Some(mechanism), initial, None) => Ok(Command::Auth {
                    mechanism: mechanism.to_ascii_uppercase(),
                    initial_response: initial.map(str::to_owned),
                }),
                (None, ..) => Err(Refusal::Syntax("AUTH needs a mechanism")),
                _ => Err(Refusal::Syntax(
                    "AUTH takes a mechanism and an optional initial response",
                )),
            }
        }
        known @ ("EXPN" | "TURN" | "ETRN" | "SEND" | "SOML" | "SAML" | "ATRN") => {
            Ok(Command::NotImplemented(known.to_owned()))
        }
        _ => Err(Refusal::Unrecognized),
    }
}

/// The most digits a chunk size may have (leading zeros aside): 20 hold every `u64`.
const MAX_CHUNK_DIGITS: usize = 20;

/// `BDAT SP chunk-size [SP "LAST"]`, where chunk-size is `1*DIGIT` (RFC 3030 §2): no sign,
/// no spaces inside, no hexadecimal, and a number of octets a `u64` can hold.
fn bdat(argument: Option<&str>) -> Result<Command, Refusal> {
    let mut words = argument.unwrap_or("").split(' ').filter(|w| !w.is_empty());
    let (size, marker) = match (words.next(), words.next(), words.next()) {
        (None, ..) => return Err(Refusal::BadChunk("BDAT needs a chunk size in octets")),
        (Some(size), marker, None) => (size, marker),
        _ => {
            return Err(Refusal::BadChunk(
                "BDAT takes a chunk size and an optional LAST",
            ));
        }
    };
    if !size.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Refusal::BadChunk(
            "the BDAT chunk size must be a number of octets, digits only",
        ));
    }
    let significant = size.trim_start_matches('0');
    let size = match significant.len() {
        0 => 0,
        1..=MAX_CHUNK_DIGITS => significant.parse::<u64>().map_err(|_| {
            Refusal::BadChunk("the BDAT chunk size is too large to be a number of octets")
        })?,
        _ => {
            return Err(Refusal::BadChunk(
                "the BDAT chunk size is too large to be a number of octets",
            ));
        }
    };
    match marker {
        None => Ok(Command::Bdat { size, last: false }),
        Some(word) if word.eq_ignore_ascii_case("LAST") => Ok(Command::Bdat { size, last: true }),
        Some(_) => Err(Refusal::BadChunk(
            "BDAT takes a chunk size and an optional LAST",
        )),
    }
}

/// Whether `value` is xtext (RFC 3461 §4): printable US-ASCII from `!` to `~` except `+`
/// and `=`, which appear only as `+` and two upper-case hexadecimal digits.
pub(crate) fn is_xtext(value: &str) -> bool {
    let bytes = value.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                let hex = |at: usize| {
                    bytes
                        .get(at)
                        .is_some_and(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b))
                };
                if !(hex(i + 1) && hex(i + 2)) {
                    return false;
                }
                i += 3;
            }
            b'=' => return false,
            b'!'..=b'~' => i += 1,
            _ => return false,
        }
    }
    true
}

/// Why a DSN `NOTIFY=` value (RFC 3461 §4.1) is malformed, if it is: `NEVER` alone, or a
/// comma-separated list of `SUCCESS`, `FAILURE` and `DELAY`, each at most once, in any
/// case.
pub(crate) fn notify_error(value: &str) -> Option<&'static str> {
    let words: Vec<String> = value.split(',').map(str::to_ascii_uppercase).collect();
    if words.iter().any(|w| w == "NEVER") {
        return (words.len() > 1).then_some("NEVER must stand alone in NOTIFY");
    }
    for (i, word) in words.iter().enumerate() {
        if !matches!(word.as_str(), "SUCCESS" | "FAILURE" | "DELAY") {
            return Some("NOTIFY must be NEVER, or a list of SUCCESS, FAILURE and DELAY");
        }
        if words[..i].contains(word) {
            return Some("NOTIFY lists a value twice");
        }
    }
    None
}

/// The longest `ORCPT=` value (RFC 3461 §4.2) and the longest `ENVID=` value (§4.4).
const MAX_ORCPT: usize = 500;
pub(crate) const MAX_ENVID: usize = 100;

/// Why a DSN `ORCPT=` value is malformed, if it is: `addr-type ";" xtext` (RFC 3461
/// §4.2), the address type an atom such as `rfc822`, the address non-empty xtext, at most
/// 500 characters in all.
pub(crate) fn orcpt_error(value: &str) -> Option<&'static str> {
    if value.len() > MAX_ORCPT {
        return Some("ORCPT is longer than 500 characters");
    }
    let Some((addr_type, address)) = value.split_once(';') else {
        return Some("ORCPT must be an address type, \";\" and the address in xtext");
    };
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    if addr_type.is_empty() || !addr_type.chars().all(atext) {
        return Some("the ORCPT address type must be an atom such as rfc822");
    }
    if address.is_empty() || !is_xtext(address) {
        return Some(
            "the ORCPT address must be xtext (RFC 3461 4), \"+\" and two hex digits for \"+\", \"=\" and bytes outside ! to ~",
        );
    }
    None
}

/// The single argument of EHLO or HELO: a domain or an address literal.
fn domain(argument: Option<&str>, verb: &'static str) -> Result<String, Refusal> {
    let Some(argument) = argument else {
        return Err(Refusal::Syntax(if verb == "EHLO" {
            "EHLO needs a domain or address literal"
        } else {
            "HELO needs a domain or address literal"
        }));
    };
    if argument.contains([' ', '\t']) {
        return Err(Refusal::Syntax("one domain or address literal expected"));
    }
    Ok(argument.to_owned())
}

/// Parses `FROM:<path> params` or `TO:<path> params` (a space after the colon is
/// tolerated, as many clients send one).
fn path_and_parameters(
    rest: &str,
    keyword: &'static str,
    rcpt: bool,
) -> Result<(String, Vec<Parameter>), Refusal> {
    let syntax = if rcpt {
        "expected RCPT TO:<address>"
    } else {
        "expected MAIL FROM:<address>"
    };
    let head = rest.get(..keyword.len()).ok_or(Refusal::Syntax(syntax))?;
    if !head.eq_ignore_ascii_case(keyword) {
        return Err(Refusal::Syntax(syntax));
    }
    let after = rest[keyword.len()..].trim_start_matches(' ');
    if !after.starts_with('<') {
        return Err(Refusal::Syntax(syntax));
    }
    let close = closing_bracket(after).ok_or(Refusal::BadPath {
        rcpt,
        why: "unterminated path",
    })?;
    let inside = &after[1..close];
    let path = mailbox(inside, rcpt)?;
    let tail = &after[close + 1..];
    if !tail.is_empty() && !tail.starts_with(' ') {
        return Err(Refusal::Syntax(syntax));
    }
    let mut parameters = Vec::new();
    for text in tail.split(' ').filter(|w| !w.is_empty()) {
        let (keyword, value) = match text.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (text, None),
        };
        let keyword_ok = keyword
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
            && keyword
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-');
        let value_ok = value.is_none_or(|v| !v.is_empty() && !v.contains('='));
        if !keyword_ok || !value_ok {
            return Err(Refusal::Syntax("malformed parameter"));
        }
        parameters.push(Parameter {
            keyword: keyword.to_ascii_uppercase(),
            value: value.map(str::to_owned),
            text: text.to_owned(),
        });
    }
    Ok((path, parameters))
}

/// The index of the `>` that closes the path opened at index 0, skipping quoted strings.
fn closing_bracket(s: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '>' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// Checks the inside of `<...>` and returns the mailbox (empty for the null path).
fn mailbox(inside: &str, rcpt: bool) -> Result<String, Refusal> {
    let bad = |why| Refusal::BadPath { rcpt, why };
    if inside.len() + 2 > MAX_PATH {
        return Err(bad("path too long"));
    }
    if inside.is_empty() {
        return if rcpt {
            Err(bad("the null path is not a recipient"))
        } else {
            Ok(String::new())
        };
    }
    // RFC 5321 §4.1.2: a source route ("@a,@b:") must be accepted and may be ignored.
    let mailbox = match inside.strip_prefix('@') {
        Some(route) => route
            .split_once(':')
            .map(|(_, m)| m)
            .ok_or(bad("bad source route"))?,
        None => inside,
    };
    if rcpt && mailbox.eq_ignore_ascii_case("postmaster") {
        return Ok(mailbox.to_owned());
    }
    let at = last_unquoted_at(mailbox).ok_or(bad("address needs a domain"))?;
    let (local, domain) = (&mailbox[..at], &mailbox[at + 1..]);
    if local.is_empty() || domain.is_empty() {
        return Err(bad("address needs a local part and a domain"));
    }
    if local.len() > MAX_LOCAL_PART {
        return Err(bad("local part too long"));
    }
    if domain.len() > MAX_DOMAIN {
        return Err(bad("domain too long"));
    }
    if !local.starts_with('"') && local.contains([' ', '<', '>', '(', ')', ',', ';', '\\', '"']) {
        return Err(bad("bad local part"));
    }
    if domain.contains([' ', '<', '>', '@', '(', ')', ',', ';', '\\', '"']) {
        return Err(bad("bad domain"));
    }
    Ok(mailbox.to_owned())
}

fn last_unquoted_at(s: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    let mut last = None;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '@' if !quoted => last = Some(i),
            _ => {}
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(path: &str, parameters: &[&str]) -> Command {
        Command::Mail {
            path: path.to_owned(),
            parameters: parameters.iter().map(|p| param(p)).collect(),
        }
    }

    fn param(text: &str) -> Parameter {
        let (keyword, value) = match text.split_once('=') {
            Some((k, v)) => (k, Some(v.to_owned())),
            None => (text, None),
        };
        Parameter {
            keyword: keyword.to_ascii_uppercase(),
            value,
            text: text.to_owned(),
        }
    }

    #[test]
    fn commands_parse() {
        let rcpt = |path: &str| Command::Rcpt {
            path: path.to_owned(),
            parameters: vec![],
        };
        let table: Vec<(&[u8], Command)> = vec![
            (
                b"EHLO client.example",
                Command::Ehlo("client.example".into()),
            ),
            (b"ehlo [127.0.0.1]", Command::Ehlo("[127.0.0.1]".into())),
            (b"HELO x", Command::Helo("x".into())),
            (b"MAIL FROM:<a@b.example>", mail("a@b.example", &[])),
            (b"mail from: <a@b.example>", mail("a@b.example", &[])),
            (b"MAIL FROM:<>", mail("", &[])),
            (
                b"MAIL FROM:<a@b> BODY=8BITMIME SMTPUTF8 size=12",
                mail("a@b", &["BODY=8BITMIME", "SMTPUTF8", "size=12"]),
            ),
            (b"MAIL FROM:<@r1,@r2:a@b>", mail("a@b", &[])),
            (b"MAIL FROM:<\"a b>c\"@b>", mail("\"a b>c\"@b", &[])),
            (b"RCPT TO:<c@d>", rcpt("c@d")),
            (b"RCPT TO:<Postmaster>", rcpt("Postmaster")),
            (b"RCPT TO:<\xc3\xa9@d>", rcpt("\u{e9}@d")),
            (b"DATA", Command::Data),
            (b"rset", Command::Rset),
            (b"NOOP anything", Command::Noop),
            (b"QUIT", Command::Quit),
            (b"VRFY bob", Command::Vrfy),
            (b"HELP", Command::Help),
            (b"STARTTLS", Command::StartTls),
            (
                b"AUTH PLAIN AGEAYg==",
                Command::Auth {
                    mechanism: "PLAIN".into(),
                    initial_response: Some("AGEAYg==".into()),
                },
            ),
            (
                b"auth login",
                Command::Auth {
                    mechanism: "LOGIN".into(),
                    initial_response: None,
                },
            ),
            (b"EXPN list", Command::NotImplemented("EXPN".into())),
            (
                b"BDAT 1048576",
                Command::Bdat {
                    size: 1_048_576,
                    last: false,
                },
            ),
            (
                b"bdat 0 last",
                Command::Bdat {
                    size: 0,
                    last: true,
                },
            ),
            (
                b"BDAT 007 LAST",
                Command::Bdat {
                    size: 7,
                    last: true,
                },
            ),
            (
                b"BDAT 18446744073709551615",
                Command::Bdat {
                    size: u64::MAX,
                    last: false,
                },
            ),
            (
                b"BDAT 000000000000000000000000000042",
                Command::Bdat {
                    size: 42,
                    last: false,
                },
            ),
        ];
        for (line, expected) in table {
            assert_eq!(
                parse(line),
                Ok(expected),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn refusals() {
        let table: Vec<(&[u8], Refusal)> = vec![
            (b"", Refusal::Unrecognized),
            (b"FOO", Refusal::Unrecognized),
            (b"MAILFROM:<a@b>", Refusal::Unrecognized),
            (b"\xff\xfe", Refusal::BadBytes),
            (b"NOOP \x00", Refusal::BadBytes),
            (
                b"EHLO",
                Refusal::Syntax("EHLO needs a domain or address literal"),
            ),
            (
                b"EHLO a b",
                Refusal::Syntax("one domain or address literal expected"),
            ),
            (
                b"MAIL TO:<a@b>",
                Refusal::Syntax("expected MAIL FROM:<address>"),
            ),
            (
                b"MAIL FROM:a@b",
                Refusal::Syntax("expected MAIL FROM:<address>"),
            ),
            (
                b"MAIL FROM:<a@b>X",
                Refusal::Syntax("expected MAIL FROM:<address>"),
            ),
            (
                b"MAIL FROM:<a@b",
                Refusal::BadPath {
                    rcpt: false,
                    why: "unterminated path",
                },
            ),
            (
                b"MAIL FROM:<ab>",
                Refusal::BadPath {
                    rcpt: false,
                    why: "address needs a domain",
                },
            ),
            (
                b"RCPT TO:<>",
                Refusal::BadPath {
                    rcpt: true,
                    why: "the null path is not a recipient",
                },
            ),
            (
                b"MAIL FROM:<a@b> =x",
                Refusal::Syntax("malformed parameter"),
            ),
            (
                b"MAIL FROM:<a@b> A=",
                Refusal::Syntax("malformed parameter"),
            ),
            (b"DATA now", Refusal::Syntax("DATA takes no parameters")),
            (
                b"STARTTLS x",
                Refusal::Syntax("STARTTLS takes no parameters"),
            ),
            (b"VRFY", Refusal::Syntax("VRFY needs a user or mailbox")),
            (b"AUTH", Refusal::Syntax("AUTH needs a mechanism")),
            (
                b"BDAT",
                Refusal::BadChunk("BDAT needs a chunk size in octets"),
            ),
            (
                b"BDAT +5",
                Refusal::BadChunk("the BDAT chunk size must be a number of octets, digits only"),
            ),
            (
                b"BDAT -1 LAST",
                Refusal::BadChunk("the BDAT chunk size must be a number of octets, digits only"),
            ),
            (
                b"BDAT 0x10",
                Refusal::BadChunk("the BDAT chunk size must be a number of octets, digits only"),
            ),
            (
                b"BDAT 1.5",
                Refusal::BadChunk("the BDAT chunk size must be a number of octets, digits only"),
            ),
            (
                b"BDAT 18446744073709551616",
                Refusal::BadChunk("the BDAT chunk size is too large to be a number of octets"),
            ),
            (
                b"BDAT 999999999999999999999999",
                Refusal::BadChunk("the BDAT chunk size is too large to be a number of octets"),
            ),
            (
                b"BDAT 5 FIRST",
                Refusal::BadChunk("BDAT takes a chunk size and an optional LAST"),
            ),
            (
                b"BDAT 5 LAST now",
                Refusal::BadChunk("BDAT takes a chunk size and an optional LAST"),
            ),
        ];
        for (line, expected) in table {
            assert_eq!(
                parse(line),
                Err(expected),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        let long_local = format!("MAIL FROM:<{}@b>", "x".repeat(65));
        assert!(matches!(
            parse(long_local.as_bytes()),
            Err(Refusal::BadPath { .. })
        ));
    }

    #[test]
    fn xtext_notify_and_orcpt() {
        for (value, valid) in [
            ("", true),
            ("abc", true),
            ("QQ314159", true),
            ("a+2Bb+3D", true),
            ("a+2b", false),
            ("a+2", false),
            ("a+", false),
            ("a=b", false),
            ("a b", false),
            ("caf\u{e9}", false),
            ("a\x7f", false),
        ] {
            assert_eq!(is_xtext(value), valid, "{value:?}");
        }
        for (value, error) in [
            ("NEVER", None),
            ("never", None),
            ("SUCCESS,FAILURE,DELAY", None),
            ("delay", None),
            ("FAILURE,SUCCESS", None),
            ("NEVER,SUCCESS", Some("NEVER must stand alone in NOTIFY")),
            ("SUCCESS,SUCCESS", Some("NOTIFY lists a value twice")),
            (
                "SUCCESS,",
                Some("NOTIFY must be NEVER, or a list of SUCCESS, FAILURE and DELAY"),
            ),
            (
                "ALWAYS",
                Some("NOTIFY must be NEVER, or a list of SUCCESS, FAILURE and DELAY"),
            ),
        ] {
            assert_eq!(notify_error(value), error, "{value:?}");
        }
        assert_eq!(orcpt_error("rfc822;bob@example.com"), None);
        assert_eq!(orcpt_error("rfc822;bob+2Bx@example.com"), None);
        assert_eq!(orcpt_error("utf-8;bob@example.com"), None);
        for value in [
            "bob@example.com",
            ";bob@example.com",
            "rfc 822;b@x",
            "rfc822;",
            "rfc822;a+b@x",
        ] {
            assert!(orcpt_error(value).is_some(), "{value:?}");
        }
        assert!(orcpt_error(&format!("rfc822;{}@x", "a".repeat(500))).is_some());
    }
}
