//! lettre's errors as the shared failure vocabulary ([`cli::Failure`]), so both clients say
//! the same sentence and exit with the same code for the same failure.
//!
//! lettre's error carries only a kind and a code, so the failed command and the server's
//! words are read back from the rebuilt transcript, with lettre's own reply parser.

use std::error::Error as _;
use std::io;

use cli::{Failure, Job, ServerReply, Violation};
use lettre::transport::smtp::response::Response;
use transcript::{Event, Transcript};

/// The failure for a lettre error, given the transcript of the attempt.
pub(crate) fn failure(
    error: &lettre::transport::smtp::Error,
    transcript: &Transcript,
    job: &Job,
) -> Failure {
    let text = error.to_string();
    if let Some(code) = error.status() {
        let code = u16::from(code);
        if let Some((command, reply)) = exchanges(transcript)
            .into_iter()
            .rev()
            .find(|(_, reply)| reply.code == code)
        {
            return rejected(command, reply);
        }
    }
    if error.is_client() {
        if text.contains("STARTTLS is not supported") {
            return Failure::StartTlsUnavailable;
        }
        if text.contains("No compatible authentication mechanism") {
            let offered = offered_auth(transcript);
            return Failure::NoAuthMechanism { offered };
        }
        if text.contains("SMTPUTF8") {
            return Failure::MissingExtension {
                extension: "SMTPUTF8",
                why: "an address is internationalized",
            };
        }
        if text.contains("8BITMIME") {
            return Failure::MissingExtension {
                extension: "8BITMIME",
                why: "the message has 8-bit content",
            };
        }
    }
    if error.is_response() {
        return Failure::Protocol {
            after: last_command(transcript).unwrap_or_else(|| "the greeting".into()),
            violation: Violation::Unparsed(text),
        };
    }
    if let Some(tls) = source_of::<rustls::Error>(error) {
        return Failure::from_tls(tls, &job.tls_name);
    }
    if let Some(io) = source_of::<io::Error>(error) {
        let during = match last_command(transcript) {
            Some(command) => format!("waiting for the reply to {command}"),
            None => "connecting".to_owned(),
        };
        return match io.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Failure::Timeout { during },
            io::ErrorKind::ConnectionRefused => Failure::Connect {
                peer: job.endpoint.shown.clone(),
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

/// The failure for a command the server answered with 4xx/5xx.
fn rejected(command: String, reply: ServerReply) -> Failure {
    let auth = command.starts_with("AUTH") || command == "<SASL response>";
    match reply.code {
        421 => Failure::ServiceClosing { command, reply },
        500..=599 if auth => Failure::AuthFailed { reply },
        _ if command == "STARTTLS" => Failure::StartTlsRefused { reply },
        _ if command == "." => Failure::Rejected {
            command: "the message data".into(),
            reply,
        },
        _ if command.is_empty() => Failure::Rejected {
            command: "the connection (greeting)".into(),
            reply,
        },
        _ => Failure::Rejected { command, reply },
    }
}

/// A complete reply in `text`, read with lettre's own parser.
fn parse_reply(text: &[u8]) -> Option<ServerReply> {
    let text = std::str::from_utf8(text).ok()?;
    let response = text.parse::<Response>().ok()?;
    Some(ServerReply {
        code: u16::from(response.code()),
        lines: response.message().map(str::to_owned).collect(),
    })
}

/// Every (command, reply) pair of the transcript, read back with lettre's reply parser.
/// The command is the last line the client sent before the reply (`.` after the data); a
/// line answering a `334` challenge is named `<SASL response>` so it is never repeated.
fn exchanges(transcript: &Transcript) -> Vec<(String, ServerReply)> {
    let mut pairs = Vec::new();
    let mut command = String::new();
    let mut pending = Vec::new();
    let mut after_challenge = false;
    for event in transcript.events() {
        match event {
            Event::Client(line) => {
                pending.clear();
                command = if after_challenge {
                    "<SASL response>".to_owned()
                } else {
                    without_secrets(String::from_utf8_lossy(&line).trim_end())
                };
                after_challenge = false;
            }
            Event::Server(line) => {
                pending.extend_from_slice(&line);
                if let Some(reply) = parse_reply(&pending) {
                    after_challenge = reply.code == 334;
                    pairs.push((command.clone(), reply));
                    pending.clear();
                }
            }
            _ => {}
        }
    }
    pairs
}

/// `AUTH PLAIN <initial-response>` carries the credentials (RFC 4954 §4): an error sentence
/// names the command as `AUTH PLAIN` only, as raw-client does.
fn without_secrets(command: &str) -> String {
    let mut words = command.splitn(3, ' ');
    match (words.next(), words.next()) {
        (Some(verb), Some(mechanism)) if verb.eq_ignore_ascii_case("AUTH") => {
            format!("{verb} {mechanism}")
        }
        _ => command.to_owned(),
    }
}

fn last_command(transcript: &Transcript) -> Option<String> {
    exchanges(transcript)
        .into_iter()
        .last()
        .map(|(command, _)| command)
        .filter(|command| !command.is_empty())
}

/// The mechanisms of the last EHLO reply, as raw-client words them.
fn offered_auth(transcript: &Transcript) -> String {
    let offered: Vec<String> = exchanges(transcript)
        .into_iter()
        .rev()
        .find(|(command, _)| command.starts_with("EHLO"))
        .map(|(_, reply)| {
            reply
                .lines
                .iter()
                .skip(1)
                .filter_map(|line| {
                    let mut words = line.split_ascii_whitespace();
                    match words.next() {
                        Some(keyword) if keyword.eq_ignore_ascii_case("AUTH") => {
                            Some(words.map(str::to_ascii_uppercase).collect::<Vec<_>>())
                        }
                        _ => None,
                    }
                })
                .flatten()
                .collect()
        })
        .unwrap_or_default();
    if offered.is_empty() {
        "nothing".to_owned()
    } else {
        offered.join(" ")
    }
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
    fn auth_commands_lose_their_initial_response() {
        assert_eq!(
            without_secrets("AUTH PLAIN AGFsaWNlAGh1bnRlcjI="),
            "AUTH PLAIN"
        );
        assert_eq!(without_secrets("auth xoauth2 dG9rZW4="), "auth xoauth2");
        assert_eq!(without_secrets("AUTH LOGIN"), "AUTH LOGIN");
        assert_eq!(without_secrets("MAIL FROM:<a@b>"), "MAIL FROM:<a@b>");
    }

    #[test]
    fn a_rejected_auth_names_no_secret() {
        let mut transcript = Transcript::new();
        transcript.server(b"220 hi\r\n");
        transcript.client(b"AUTH PLAIN AGFsaWNlAGh1bnRlcjI=\r\n");
        transcript.server(b"454 4.7.0 Temporary authentication failure\r\n");
        let (command, reply) = exchanges(&transcript).pop().expect("one exchange");
        let error = rejected(command, reply);
        let sentence = error.to_string();
        assert!(!sentence.contains("AGFsaWNlAGh1bnRlcjI="), "{sentence}");
        assert_eq!(
            sentence,
            "the server rejected AUTH PLAIN with \"454 4.7.0 Temporary authentication failure\""
        );
    }
}
