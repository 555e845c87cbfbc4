//! The server's own SMTP command parser: one command line (without its line ending) in,
//! a [`Command`] or the reason it is refused out. Pure over bytes, no I/O.
//!
//! Written independently of the clients' protocol code so that each checks the other.

/// A parsed SMTP command (RFC 5321 §4.1, RFC 3207, RFC 4954).
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
        known @ ("EXPN" | "TURN" | "ETRN" | "BDAT" | "SEND" | "SOML" | "SAML" | "ATRN") => {
            Ok(Command::NotImplemented(known.to_owned()))
        }
        _ => Err(Refusal::Unrecognized),
    }
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
}
