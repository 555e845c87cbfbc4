//! lettre's errors as the shared failure vocabulary ([`cli::Failure`]), so both clients say
//! the same sentence and exit with the same code for the same failure.
//!
//! lettre's error carries only a kind and a code, so the failed command and the server's
//! words come from the capture's record of the dialogue (read with lettre's own reply
//! parser).

use std::error::Error as _;
use std::io;

use cli::{Failure, ServerReply, Violation};

use crate::capture::Record;

/// The failure for a lettre error, given the record of the attempt.
pub(crate) fn failure(
    error: &lettre::transport::smtp::Error,
    record: &Record,
    job: &Names,
) -> Failure {
    let text = error.to_string();
    if let Some(code) = error.status() {
        let code = u16::from(code);
        if let Some((command, reply)) = record
            .exchanges
            .iter()
            .rev()
            .find(|(_, reply)| reply.code == code)
        {
            // RFC 3207: without a working EHLO there is no STARTTLS, and TLS is required.
            let ehlo = command.to_ascii_uppercase().starts_with("EHLO");
            if ehlo && job.starttls && !record.tls_up() && code != 421 {
                return Failure::EhloRejectedTlsRequired {
                    reply: reply.clone(),
                };
            }
            return rejected(command.clone(), reply.clone());
        }
    }
    if text.contains("incomplete response") {
        // lettre met the end of the stream where a reply should be.
        return Failure::Closed {
            during: format!("waiting for the reply to {}", record.waits_for()),
        };
    }
    // lettre 0.11 meets XOAUTH2's error status (a 334, RFC 7628 §3.2.2) with an error of
    // its own instead of answering it: the token was refused all the same.
    if text.contains("does not expect a challenge")
        && let Some((command, reply)) = record.exchanges.last()
        && command.to_ascii_uppercase().starts_with("AUTH XOAUTH2")
        && reply.code == 334
    {
        return Failure::TokenRejected {
            status: String::new(),
            reply: reply.clone(),
        };
    }
    if error.is_client() {
        if text.contains("STARTTLS is not supported") {
            return Failure::StartTlsUnavailable;
        }
        if text.contains("No compatible authentication mechanism") {
            return Failure::NoAuthMechanism {
                offered: record.offered_auth(),
            };
        }
        if text.contains("SMTPUTF8") {
            return Failure::needs_smtputf8();
        }
        if text.contains("8BITMIME") {
            return Failure::needs_8bitmime();
        }
    }
    if error.is_response() {
        // lettre's parser quotes what it could not read, line ending and all.
        let words: String = text.trim_end().escape_debug().collect();
        return Failure::Protocol {
            after: record.waits_for().to_owned(),
            violation: Violation::Unparsed(words),
        };
    }
    if let Some(tls) = tls_error(error) {
        return Failure::from_tls(tls, &job.tls_name);
    }
    if let Some(io) = source_of::<io::Error>(error) {
        let during = format!("waiting for the reply to {}", record.waits_for());
        return match io.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                record.late().err().unwrap_or(Failure::Timeout { during })
            }
            io::ErrorKind::ConnectionRefused => Failure::Connect {
                peer: job.peer.clone(),
                reason: io.to_string(),
            },
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe => Failure::Closed { during },
            _ => Failure::Io {
                during,
                reason: io.to_string(),
            },
        };
    }
    Failure::Io {
        during: "talking to the server".into(),
        reason: text,
    }
}

/// What the failures name: the server and the TLS name, and whether STARTTLS is required.
pub(crate) struct Names {
    pub(crate) tls_name: String,
    pub(crate) peer: String,
    pub(crate) starttls: bool,
}

/// The failure for a command the server answered with 4xx/5xx.
pub(crate) fn rejected(command: String, reply: ServerReply) -> Failure {
    let auth = command.starts_with("AUTH") || command == "<SASL response>";
    match reply.code {
        421 => Failure::ServiceClosing {
            command: named(command),
            reply,
        },
        500..=599 if auth => Failure::AuthFailed { reply },
        _ if command == "STARTTLS" => Failure::StartTlsRefused { reply },
        _ => Failure::Rejected {
            command: named(command),
            reply,
        },
    }
}

/// The command as raw-client names it in sentences.
fn named(command: String) -> String {
    match command.as_str() {
        "." => "the message data".into(),
        "" => "the connection (greeting)".into(),
        _ => command,
    }
}

/// The rustls error behind a lettre error, also where it hides inside an `io::Error` (rustls
/// reports a refused certificate from the write that runs the handshake).
fn tls_error(error: &lettre::transport::smtp::Error) -> Option<&rustls::Error> {
    let mut source = error.source();
    while let Some(inner) = source {
        if let Some(found) = inner.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        if let Some(found) = inner
            .downcast_ref::<io::Error>()
            .and_then(io::Error::get_ref)
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(found);
        }
        source = inner.source();
    }
    None
}

/// The first error of type `T` in the source chain.
fn source_of<T: std::error::Error + 'static>(error: &lettre::transport::smtp::Error) -> Option<&T> {
    let mut source = error.source();
    while let Some(inner) = source {
        if let Some(found) = inner.downcast_ref::<T>() {
            return Some(found);
        }
        source = inner.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejected_auth_names_no_secret() {
        let reply = ServerReply {
            code: 454,
            lines: vec!["4.7.0 Temporary authentication failure".into()],
        };
        let sentence = rejected("AUTH PLAIN".into(), reply).to_string();
        assert_eq!(
            sentence,
            "the server rejected AUTH PLAIN with \"454 4.7.0 Temporary authentication failure\""
        );
    }

    #[test]
    fn the_data_and_the_greeting_are_named_as_raw_client_names_them() {
        let reply = |code| ServerReply {
            code,
            lines: vec!["no".into()],
        };
        assert_eq!(
            rejected(".".into(), reply(554)).to_string(),
            "the server rejected the message data with \"554 no\""
        );
        assert_eq!(
            rejected(String::new(), reply(554)).to_string(),
            "the server rejected the connection (greeting) with \"554 no\""
        );
        assert!(matches!(
            rejected("<SASL response>".into(), reply(535)),
            Failure::AuthFailed { .. }
        ));
    }
}
