//! Commands as bytes (RFC 5321 §4.1), and what the server said it can do (its EHLO reply).
//!
//! `Command` is the one owner of the command wire form: every byte the client sends outside
//! the message data comes from `Command::encode`, which refuses CR, LF and NUL in arguments,
//! so nothing a user typed can start a second command (CR/LF injection).

use cli::Failure;

use crate::reply::Reply;

/// One SMTP command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    /// RFC 5321 §4.1.1.1.
    Ehlo(&'a str),
    /// RFC 5321 §4.1.1.1, the fallback for servers that reject EHLO.
    Helo(&'a str),
    /// RFC 3207 §4.
    StartTls,
    /// RFC 4954 §4: `AUTH mechanism [initial-response]`.
    Auth {
        /// The SASL mechanism, e.g. `PLAIN`.
        mechanism: &'a str,
        /// The base64 initial response, if any.
        initial_response: Option<&'a str>,
    },
    /// RFC 4954 §4: a base64 line answering a `334` challenge.
    AuthResponse(&'a str),
    /// RFC 5321 §4.1.1.2: `MAIL FROM:<reverse-path> [SP params]`.
    Mail {
        /// The reverse-path address.
        from: &'a str,
        /// ESMTP parameters such as `BODY=8BITMIME`.
        parameters: &'a [&'a str],
    },
    /// RFC 5321 §4.1.1.3: `RCPT TO:<forward-path>`.
    Rcpt(&'a str),
    /// RCPT TO with ESMTP parameters such as `NOTIFY=NEVER` (RFC 3461).
    RcptWith {
        /// The forward-path address.
        to: &'a str,
        /// The parameters.
        parameters: &'a [String],
    },
    /// RFC 3030 §2: `BDAT <size> [LAST]`; exactly `size` octets of the message follow.
    Bdat {
        /// The octets in this chunk.
        size: u64,
        /// The last chunk of the message.
        last: bool,
    },
    /// RFC 5321 §4.1.1.4.
    Data,
    /// RFC 5321 §4.1.1.5.
    Rset,
    /// RFC 5321 §4.1.1.10.
    Quit,
    /// A line typed in the interactive shell, sent as it is: the person typing decides what
    /// it says, but it is still one line, never a way to send two.
    Typed(&'a str),
}

impl Command<'_> {
    /// The command line, CRLF included.
    ///
    /// An argument with CR, LF, NUL, or a character that would add words or close a path
    /// early is refused with [`Failure::Injection`].
    pub fn encode(&self) -> Result<Vec<u8>, Failure> {
        let line = match self {
            Command::Ehlo(name) => format!("EHLO {}", word(name)?),
            Command::Helo(name) => format!("HELO {}", word(name)?),
            Command::StartTls => "STARTTLS".to_owned(),
            Command::Auth {
                mechanism,
                initial_response: None,
            } => format!("AUTH {}", word(mechanism)?),
            Command::Auth {
                mechanism,
                initial_response: Some(response),
            } => format!("AUTH {} {}", word(mechanism)?, word(response)?),
            Command::AuthResponse(response) => word(response)?.to_owned(),
            Command::Mail { from, parameters } => {
                let mut line = format!("MAIL FROM:<{}>", path(from)?);
                for parameter in *parameters {
                    line.push(' ');
                    line.push_str(word(parameter)?);
                }
                line
            }
            Command::Rcpt(to) => format!("RCPT TO:<{}>", path(to)?),
            Command::RcptWith { to, parameters } => {
                let mut line = format!("RCPT TO:<{}>", path(to)?);
                for parameter in *parameters {
                    line.push(' ');
                    line.push_str(word(parameter)?);
                }
                line
            }
            Command::Bdat { size, last: false } => format!("BDAT {size}"),
            Command::Bdat { size, last: true } => format!("BDAT {size} LAST"),
            Command::Data => "DATA".to_owned(),
            Command::Rset => "RSET".to_owned(),
            Command::Quit => "QUIT".to_owned(),
            Command::Typed(line) => {
                if line.contains(['\r', '\n', '\0']) {
                    return Err(injection(line));
                }
                (*line).to_owned()
            }
        };
        let mut bytes = line.into_bytes();
        bytes.extend_from_slice(b"\r\n");
        Ok(bytes)
    }
}

/// A single word: no line break, NUL or space, so it cannot add words or commands.
fn word(argument: &str) -> Result<&str, Failure> {
    if argument.contains(['\r', '\n', '\0', ' ', '\t']) {
        Err(injection(argument))
    } else {
        Ok(argument)
    }
}

/// The inside of `<...>`: no line break or NUL, and no angle bracket that would close the
/// path early and let the rest pass as ESMTP parameters (`a@b> NOTIFY=NEVER`).
fn path(argument: &str) -> Result<&str, Failure> {
    if argument.contains(['\r', '\n', '\0', '<', '>']) {
        Err(injection(argument))
    } else {
        Ok(argument)
    }
}

fn injection(argument: &str) -> Failure {
    Failure::Injection {
        argument: argument.to_owned(),
    }
}

/// The service extensions from an EHLO reply (RFC 5321 §4.1.1.1, §2.2.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    /// RFC 3207.
    pub starttls: bool,
    /// RFC 2920.
    pub pipelining: bool,
    /// RFC 6152.
    pub eight_bit_mime: bool,
    /// RFC 6531.
    pub smtputf8: bool,
    /// RFC 2034.
    pub enhanced_status_codes: bool,
    /// RFC 1870: the maximum message size, `Some(0)` for no fixed limit.
    pub size: Option<u64>,
    /// RFC 4954: the SASL mechanisms offered, upper-cased.
    pub auth: Vec<String>,
    /// RFC 3030 §2.
    pub chunking: bool,
    /// RFC 3030 §3.
    pub binarymime: bool,
    /// RFC 3461.
    pub dsn: bool,
    /// RFC 8689.
    pub requiretls: bool,
}

impl Extensions {
    /// Whether the server offered `keyword` (upper case), for `cli::Delivery`.
    pub fn offers(&self, keyword: &str) -> bool {
        match keyword {
            "SIZE" => self.size.is_some(),
            "DSN" => self.dsn,
            "REQUIRETLS" => self.requiretls,
            "CHUNKING" => self.chunking,
            "BINARYMIME" => self.binarymime,
            "PIPELINING" => self.pipelining,
            _ => false,
        }
    }

    /// Reads the extension lines of an EHLO reply. The first line is the server's greeting
    /// (its domain), so it is skipped; keywords are case-insensitive (RFC 5321 §2.4).
    pub fn from_ehlo(reply: &Reply) -> Extensions {
        let mut extensions = Extensions::default();
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "STARTTLS" => extensions.starttls = true,
                "PIPELINING" => extensions.pipelining = true,
                "8BITMIME" => extensions.eight_bit_mime = true,
                "SMTPUTF8" => extensions.smtputf8 = true,
                "ENHANCEDSTATUSCODES" => extensions.enhanced_status_codes = true,
                "CHUNKING" => extensions.chunking = true,
                "BINARYMIME" => extensions.binarymime = true,
                "DSN" => extensions.dsn = true,
                "REQUIRETLS" => extensions.requiretls = true,
                "SIZE" => {
                    extensions.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0))
                }
                "AUTH" => extensions
                    .auth
                    .extend(words.map(|mechanism| mechanism.to_ascii_uppercase())),
                _ => {}
            }
        }
        extensions
    }

    /// Whether the server offers this SASL mechanism.
    pub fn offers_auth(&self, mechanism: &str) -> bool {
        self.auth.iter().any(|offered| offered == mechanism)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding() {
        let cases: &[(Command<'_>, &str)] = &[
            (Command::Ehlo("client.example"), "EHLO client.example\r\n"),
            (Command::Helo("[127.0.0.1]"), "HELO [127.0.0.1]\r\n"),
            (Command::StartTls, "STARTTLS\r\n"),
            (
                Command::Auth {
                    mechanism: "PLAIN",
                    initial_response: Some("AGEAYg=="),
                },
                "AUTH PLAIN AGEAYg==\r\n",
            ),
            (
                Command::Auth {
                    mechanism: "LOGIN",
                    initial_response: None,
                },
                "AUTH LOGIN\r\n",
            ),
            (
                Command::Mail {
                    from: "a@example.com",
                    parameters: &["SMTPUTF8", "BODY=8BITMIME"],
                },
                "MAIL FROM:<a@example.com> SMTPUTF8 BODY=8BITMIME\r\n",
            ),
            (
                Command::Mail {
                    from: "",
                    parameters: &[],
                },
                "MAIL FROM:<>\r\n",
            ),
            (
                Command::Rcpt("b@example.org"),
                "RCPT TO:<b@example.org>\r\n",
            ),
            (Command::Data, "DATA\r\n"),
            (Command::Quit, "QUIT\r\n"),
            (
                Command::Typed("MAIL FROM: <odd spacing>"),
                "MAIL FROM: <odd spacing>\r\n",
            ),
        ];
        for (command, want) in cases {
            assert_eq!(
                command.encode().as_deref(),
                Ok(want.as_bytes()),
                "{command:?}"
            );
        }
    }

    #[test]
    fn line_breaks_in_arguments_are_refused() {
        let hostile = [
            Command::Ehlo("a\r\nMAIL FROM:<x>"),
            Command::Rcpt("b@x>\r\nRCPT TO:<c@y"),
            Command::Mail {
                from: "a@b",
                parameters: &["BODY=8BITMIME\nRSET"],
            },
            Command::AuthResponse("abc\r"),
            Command::Helo("a\0b"),
            Command::Rcpt("a@b> NOTIFY=NEVER"),
            Command::Typed("NOOP\rRSET"),
            Command::Typed("NOOP\nRSET"),
            Command::Typed("NOOP\0"),
            Command::Mail {
                from: "a@b> SIZE=1",
                parameters: &[],
            },
            Command::Ehlo("client.example MAIL"),
            Command::Auth {
                mechanism: "PLAIN LOGIN",
                initial_response: None,
            },
        ];
        for command in hostile {
            assert!(command.encode().is_err(), "{command:?}");
        }
    }

    #[test]
    fn extensions() {
        let reply = Reply {
            code: 250,
            enhanced: None,
            lines: [
                "mx.example greets you",
                "pipelining",
                "SIZE 10240000",
                "8BITMIME",
                "SMTPUTF8",
                "Auth plain LOGIN",
                " ",
                "STARTTLS",
                "ENHANCEDSTATUSCODES",
            ]
            .map(String::from)
            .to_vec(),
        };
        let e = Extensions::from_ehlo(&reply);
        assert!(e.pipelining && e.eight_bit_mime && e.smtputf8 && e.starttls);
        assert!(e.enhanced_status_codes);
        assert_eq!(e.size, Some(10_240_000));
        assert_eq!(e.auth, ["PLAIN", "LOGIN"]);
        assert!(e.offers_auth("LOGIN"));
        let greeting_only = Reply {
            lines: vec!["STARTTLS is not an extension on the first line".into()],
            ..reply
        };
        assert_eq!(Extensions::from_ehlo(&greeting_only), Extensions::default());
    }
}
