//! lettre's errors mapped onto the same exit codes and sentences as raw-client's.
//!
//! lettre's error carries only a kind and a code, so the failed command and the server's
//! words are read back from the rebuilt transcript, and raw-client's error type phrases
//! the sentence: the two clients then say exactly the same thing for the same failure.

use std::error::Error as _;
use std::io;

use cli::{Failure, Job};
use raw_client::Error;
use raw_client::reply::{self, Reply};
use transcript::{Event, Transcript};

/// The failure for a lettre error, given the transcript of the attempt.
pub(crate) fn failure(
    error: &lettre::transport::smtp::Error,
    transcript: &Transcript,
    job: &Job,
) -> Failure {
    mapped(error, transcript, job).into()
}

fn mapped(error: &lettre::transport::smtp::Error, transcript: &Transcript, job: &Job) -> Error {
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
            return Error::StartTlsUnavailable;
        }
        if text.contains("No compatible authentication mechanism") {
            let offered = offered_auth(transcript);
            return Error::NoAuthMechanism { offered };
        }
        if text.contains("SMTPUTF8") {
            return Error::MissingExtension {
                extension: "SMTPUTF8",
                why: "an address is internationalized",
            };
        }
        if text.contains("8BITMIME") {
            return Error::MissingExtension {
                extension: "8BITMIME",
                why: "the message has 8-bit content",
            };
        }
    }
    if error.is_response() {
        return Error::Protocol {
            after: last_command(transcript).unwrap_or_else(|| "the greeting".into()),
            reason: text,
        };
    }
    if let Some(tls) = source_of::<rustls::Error>(error) {
        return match tls {
            rustls::Error::InvalidCertificate(reason) => Error::Certificate {
                name: job.tls_name.clone(),
                reason: reason.to_string(),
            },
            other => Error::Handshake {
                reason: other.to_string(),
            },
        };
    }
    if let Some(io) = source_of::<io::Error>(error) {
        let during = match last_command(transcript) {
            Some(command) => format!("waiting for the reply to {command}"),
            None => "connecting".to_owned(),
        };
        return match io.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Timeout { during },
            io::ErrorKind::ConnectionRefused => Error::Connect {
                peer: job.peer(),
                source: io::Error::new(io.kind(), io.to_string()),
            },
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe => Error::Closed { during },
            _ => Error::Io {
                during,
                source: io::Error::new(io.kind(), io.to_string()),
            },
        };
    }
    Error::Io {
        during: "talking to the server".into(),
        source: io::Error::other(text),
    }
}

/// raw-client's error for a command the server answered with 4xx/5xx.
fn rejected(command: String, reply: Reply) -> Error {
    let auth = command.starts_with("AUTH") || command == "<SASL response>";
    match reply.code {
        421 => Error::ServiceClosing { command, reply },
        500..=599 if auth => Error::AuthFailed { reply },
        _ if command == "STARTTLS" => Error::StartTlsRefused { reply },
        _ if command == "." => Error::Rejected {
            command: "the message data".into(),
            reply,
        },
        _ if command.is_empty() => Error::Rejected {
            command: "the connection (greeting)".into(),
            reply,
        },
        _ => Error::Rejected { command, reply },
    }
}

/// Every (command, reply) pair of the transcript, read back with raw-client's reply parser.
/// The command is the last line the client sent before the reply (`.` after the data); a
/// line answering a `334` challenge is named `<SASL response>` so it is never repeated.
fn exchanges(transcript: &Transcript) -> Vec<(String, Reply)> {
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
                if let Ok(Some((reply, _))) = reply::parse(&pending) {
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
