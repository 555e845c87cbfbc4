//! What a typed line is, before anything is sent: the shell's own words (`?`, `help`), the
//! logins it does for the user (`AUTH PLAIN` or `AUTH LOGIN` alone), or a line to send as it
//! is — and the checks that keep it one line of a length the RFC allows (RFC 5321
//! §4.5.3.1). Pure functions, unit-tested below.

use std::fmt;

use crate::auth::Mechanism;
use crate::data;

/// The longest command line, CRLF included (RFC 5321 §4.5.3.1.4).
pub(crate) const MAX_COMMAND_LINE: usize = 512;
/// The longest line of message data, CRLF included, after dot-stuffing (RFC 5321
/// §4.5.3.1.6).
pub(crate) const MAX_TEXT_LINE: usize = 1000;

/// The command a line starts with, as far as the shell cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    Ehlo,
    Helo,
    StartTls,
    Auth,
    /// A line answering a `334` challenge (RFC 4954 §4).
    SaslAnswer,
    Mail,
    Rcpt,
    Data,
    /// The `.` line after the message.
    EndOfData,
    Rset,
    Quit,
    /// Any other command (NOOP, VRFY, HELP, a typo, ...).
    Other,
}

impl Verb {
    /// The verb of a command line: its first word, or what comes before a `:` (`MAIL
    /// FROM:<a>`), in any case (RFC 5321 §2.4).
    pub(crate) fn of(line: &str) -> Verb {
        let word = line
            .trim_start()
            .split([' ', ':'])
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        match word.as_str() {
            "EHLO" => Verb::Ehlo,
            "HELO" => Verb::Helo,
            "STARTTLS" => Verb::StartTls,
            "AUTH" => Verb::Auth,
            "MAIL" => Verb::Mail,
            "RCPT" => Verb::Rcpt,
            "DATA" => Verb::Data,
            "RSET" => Verb::Rset,
            "QUIT" => Verb::Quit,
            _ => Verb::Other,
        }
    }

    /// What the reply answers, as errors name it (`waiting for the reply to MAIL FROM`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Verb::Ehlo => "EHLO",
            Verb::Helo => "HELO",
            Verb::StartTls => "STARTTLS",
            Verb::Auth => "AUTH",
            Verb::SaslAnswer => "the SASL answer",
            Verb::Mail => "MAIL FROM",
            Verb::Rcpt => "RCPT TO",
            Verb::Data => "DATA",
            Verb::EndOfData => "the end of the message data",
            Verb::Rset => "RSET",
            Verb::Quit => "QUIT",
            Verb::Other => "the command",
        }
    }
}

/// What to do with a line typed where a command (or a SASL answer) is expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Typed<'a> {
    /// An empty command line: nothing is sent.
    Nothing,
    /// `?` or `help` (in lower case: `HELP` is the server's command, RFC 5321 §4.1.1.8).
    Help,
    /// `AUTH PLAIN` or `AUTH LOGIN` alone: the shell asks for the user name and password.
    Login(Mechanism),
    /// A line to send as typed.
    Send(&'a str, Verb),
}

/// Why the shell did not send a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A CR or LF inside the line: only CRLF ends an SMTP line.
    LineBreak,
    /// NUL, which no command may contain.
    Nul,
    /// A command line that is not UTF-8.
    NotText,
    /// A command line over 512 octets.
    CommandTooLong(usize),
    /// A line of message data over 1000 octets.
    TextTooLong(usize),
    /// AUTH before TLS without `--allow-plaintext-auth`.
    PlaintextAuth,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::LineBreak => write!(
                f,
                "not sent: the line holds a bare CR or LF, and an SMTP line ends only with CRLF (RFC 5321 §2.3.8); servers that read it differently are how SMTP smuggling works"
            ),
            Refusal::Nul => write!(
                f,
                "not sent: the line holds a NUL byte, which no command may contain"
            ),
            Refusal::NotText => write!(f, "not sent: the command line is not UTF-8 text"),
            Refusal::CommandTooLong(octets) => write!(
                f,
                "not sent: the line is {octets} octets with its CRLF, and a command line may have at most {MAX_COMMAND_LINE} (RFC 5321 §4.5.3.1.4)"
            ),
            Refusal::TextTooLong(octets) => write!(
                f,
                "not sent: the line is {octets} octets with its CRLF, and a line of message data may have at most {MAX_TEXT_LINE} (RFC 5321 §4.5.3.1.6); split it"
            ),
            Refusal::PlaintextAuth => write!(
                f,
                "not sent: AUTH before TLS would show the password to anyone on the path; type STARTTLS first (RFC 3207 §4), or start the shell with --allow-plaintext-auth"
            ),
        }
    }
}

/// Reads a line typed where a command is expected, or, with `sasl`, an answer to a `334`
/// challenge (where an empty line is an answer too, and AUTH is not a command).
pub(crate) fn command(line: &[u8], sasl: bool) -> Result<Typed<'_>, Refusal> {
    if line.contains(&b'\r') || line.contains(&b'\n') {
        return Err(Refusal::LineBreak);
    }
    if line.contains(&0) {
        return Err(Refusal::Nul);
    }
    let text = std::str::from_utf8(line).map_err(|_| Refusal::NotText)?;
    let octets = line.len() + 2;
    if octets > MAX_COMMAND_LINE {
        return Err(Refusal::CommandTooLong(octets));
    }
    if matches!(text.trim(), "?" | "help") {
        return Ok(Typed::Help);
    }
    if sasl {
        return Ok(Typed::Send(text, Verb::SaslAnswer));
    }
    if text.trim().is_empty() {
        return Ok(Typed::Nothing);
    }
    let verb = Verb::of(text);
    if verb == Verb::Auth {
        let words: Vec<&str> = text.split_ascii_whitespace().collect();
        match words.as_slice() {
            [_, mechanism] if mechanism.eq_ignore_ascii_case("PLAIN") => {
                return Ok(Typed::Login(Mechanism::Plain));
            }
            [_, mechanism] if mechanism.eq_ignore_ascii_case("LOGIN") => {
                return Ok(Typed::Login(Mechanism::Login));
            }
            _ => {}
        }
    }
    Ok(Typed::Send(text, verb))
}

/// Whether a command line carries a secret, and so stays out of the history: AUTH with an
/// initial response, and every SASL answer.
pub(crate) fn is_secret(typed: &Typed<'_>) -> bool {
    match typed {
        Typed::Send(_, Verb::SaslAnswer) => true,
        Typed::Send(text, Verb::Auth) => text.split_ascii_whitespace().count() > 2,
        _ => false,
    }
}

/// A line typed after `354`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DataLine {
    /// The line holding only `.`: the end of the message.
    End,
    /// A line of the message as it goes on the wire, and whether a dot was added.
    Line { wire: Vec<u8>, stuffed: bool },
}

/// Reads a line typed after `354`: dot-stuffed ([`data::stuffed_line`]), at most 1000 octets.
pub(crate) fn data_line(line: &[u8]) -> Result<DataLine, Refusal> {
    if line == b"." {
        return Ok(DataLine::End);
    }
    if line.contains(&b'\r') || line.contains(&b'\n') {
        return Err(Refusal::LineBreak);
    }
    let wire = data::stuffed_line(line);
    if wire.len() > MAX_TEXT_LINE {
        return Err(Refusal::TextTooLong(wire.len()));
    }
    let stuffed = wire.len() > line.len() + 2;
    Ok(DataLine::Line { wire, stuffed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        let cases: &[(&[u8], Result<Typed<'_>, Refusal>)] = &[
            (b"", Ok(Typed::Nothing)),
            (b"   ", Ok(Typed::Nothing)),
            (b"?", Ok(Typed::Help)),
            (b"help", Ok(Typed::Help)),
            (b"HELP", Ok(Typed::Send("HELP", Verb::Other))),
            (b"ehlo me", Ok(Typed::Send("ehlo me", Verb::Ehlo))),
            (
                b"MAIL FROM:<a@b>",
                Ok(Typed::Send("MAIL FROM:<a@b>", Verb::Mail)),
            ),
            (
                b"rcpt to:<a@b>",
                Ok(Typed::Send("rcpt to:<a@b>", Verb::Rcpt)),
            ),
            (b"STARTTLS", Ok(Typed::Send("STARTTLS", Verb::StartTls))),
            (b"AUTH PLAIN", Ok(Typed::Login(Mechanism::Plain))),
            (b"auth login", Ok(Typed::Login(Mechanism::Login))),
            (
                b"AUTH PLAIN AGEAYg==",
                Ok(Typed::Send("AUTH PLAIN AGEAYg==", Verb::Auth)),
            ),
            (b"AUTH XOAUTH2", Ok(Typed::Send("AUTH XOAUTH2", Verb::Auth))),
            (b"NOOP\rRSET", Err(Refusal::LineBreak)),
            (b"NOOP\nRSET", Err(Refusal::LineBreak)),
            (b"NOOP\0", Err(Refusal::Nul)),
            (b"MAIL FROM:<\xff>", Err(Refusal::NotText)),
        ];
        for (line, want) in cases {
            assert_eq!(&command(line, false), want, "{line:?}");
        }
    }

    #[test]
    fn a_command_line_has_at_most_512_octets_with_its_crlf() {
        let longest = vec![b'x'; MAX_COMMAND_LINE - 2];
        assert!(command(&longest, false).is_ok());
        let over = vec![b'x'; MAX_COMMAND_LINE - 1];
        assert_eq!(command(&over, false), Err(Refusal::CommandTooLong(513)));
    }

    #[test]
    fn after_a_challenge_every_line_is_an_answer() {
        assert_eq!(command(b"", true), Ok(Typed::Send("", Verb::SaslAnswer)));
        assert_eq!(command(b"*", true), Ok(Typed::Send("*", Verb::SaslAnswer)));
        assert_eq!(
            command(b"AUTH PLAIN", true),
            Ok(Typed::Send("AUTH PLAIN", Verb::SaslAnswer))
        );
        assert_eq!(command(b"?", true), Ok(Typed::Help));
    }

    #[test]
    fn secrets_stay_out_of_the_history() {
        assert!(is_secret(&Typed::Send("AUTH PLAIN AGEAYg==", Verb::Auth)));
        assert!(is_secret(&Typed::Send("dXNlcg==", Verb::SaslAnswer)));
        assert!(!is_secret(&Typed::Send("AUTH XOAUTH2", Verb::Auth)));
        assert!(!is_secret(&Typed::Login(Mechanism::Plain)));
        assert!(!is_secret(&Typed::Send("MAIL FROM:<a@b>", Verb::Mail)));
    }

    #[test]
    fn message_lines() {
        assert_eq!(data_line(b"."), Ok(DataLine::End));
        assert_eq!(
            data_line(b"Subject: hi"),
            Ok(DataLine::Line {
                wire: b"Subject: hi\r\n".to_vec(),
                stuffed: false
            })
        );
        assert_eq!(
            data_line(b".hidden"),
            Ok(DataLine::Line {
                wire: b"..hidden\r\n".to_vec(),
                stuffed: true
            })
        );
        assert_eq!(
            data_line(b".."),
            Ok(DataLine::Line {
                wire: b"...\r\n".to_vec(),
                stuffed: true
            })
        );
        assert_eq!(data_line(b"a\rb"), Err(Refusal::LineBreak));
        // 8-bit text is the server's to judge (RFC 6152), not the shell's.
        assert!(data_line("Grüße".as_bytes()).is_ok());
        let longest = vec![b'x'; MAX_TEXT_LINE - 2];
        assert!(data_line(&longest).is_ok());
        let mut dotted = longest.clone();
        dotted[0] = b'.';
        assert_eq!(data_line(&dotted), Err(Refusal::TextTooLong(1001)));
    }
}
