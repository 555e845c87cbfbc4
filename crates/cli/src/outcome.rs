//! The outcome of a run as one JSON object, for scripts: the last event of
//! `--transcript-format json` and the content of `--result-file`.
//!
//! Everything in it is worked out the same way for both clients: from the result and from
//! the transcript, where each command is paired with its reply in order (RFC 5321 §4.1: one
//! reply per command, also when pipelined, RFC 2920 §3.1). No secret is ever in it: of the
//! commands, only RCPT's addresses are kept.

use std::collections::VecDeque;

use serde_json::{Value, json};
use transcript::{Event, Transcript};

use crate::{Exit, Failure, Job, Sent, ServerReply};

/// The `{"kind": "outcome", …}` object on one line, `kind` first as in every transcript
/// event.
pub fn outcome(job: &Job, transcript: &Transcript, result: Result<&Sent, &Failure>) -> String {
    let fields = fields(job, transcript, result).to_string();
    match fields.strip_prefix('{') {
        Some(rest) if rest != "}" => format!("{{\"kind\":\"outcome\",{rest}"),
        _ => "{\"kind\":\"outcome\"}".to_owned(),
    }
}

/// The outcome line of a JSON transcript: with `--explain`, an `explain` list last, as on
/// every other event.
#[cfg(feature = "embedded")]
pub(crate) fn explained(outcome: &str, options: transcript::RenderOptions) -> String {
    if !options.explain {
        return outcome.to_owned();
    }
    let note = json!([{
        "rfc": null,
        "text": "how the run ended, for scripts: the exit status, the deciding reply, the recipients, octets and times (docs/scripting.md)",
    }]);
    let open = outcome.strip_suffix('}').unwrap_or(outcome);
    format!("{open},\"explain\":{note}}}")
}

/// The outcome's members but `kind`.
fn fields(job: &Job, transcript: &Transcript, result: Result<&Sent, &Failure>) -> Value {
    let pairs = pairs(transcript);
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for (command, reply) in &pairs {
        if let Some(address) = rcpt_address(command) {
            if (200..300).contains(&reply.code) {
                accepted.push(Value::from(address));
            } else {
                refused.push(json!({ "address": address, "reply": reply_json(reply) }));
            }
        }
    }
    // The reply that decided: the failure's own, the one that accepted the message, or
    // (stopping early) the last one before QUIT.
    let last_before_quit = pairs
        .iter()
        .rev()
        .find(|(command, _)| !command.eq_ignore_ascii_case("QUIT"))
        .map(|(_, reply)| reply.clone());
    let (exit, status, sentence, reply) = match result {
        Ok(sent) => {
            let reply = sent.reply.clone().or(last_before_quit);
            let (status, sentence) = match (sent.stopped, &reply) {
                _ if sent.serverinfo.is_some() => (
                    "described",
                    "the server was described (--serverinfo): EHLO and QUIT, nothing was sent"
                        .to_owned(),
                ),
                (Some(stage), _) => (
                    "stopped",
                    format!(
                        "every step up to {} succeeded and the dialogue stopped there, as --quit-after asked: nothing was sent",
                        stage.name()
                    ),
                ),
                (None, Some(reply)) => {
                    ("sent", format!("the server accepted the message: {reply}"))
                }
                (None, None) => ("sent", "the server accepted the message".to_owned()),
            };
            (Exit::Sent.code(), status, sentence, reply)
        }
        Err(failure) => (
            failure.exit().code(),
            "failed",
            failure.to_string(),
            failure.reply().cloned(),
        ),
    };
    let warnings: Vec<String> = match result {
        Ok(sent) => sent.warnings.iter().map(ToString::to_string).collect(),
        Err(_) => Vec::new(),
    };
    let queue_id = match (status, &reply) {
        ("sent", Some(reply)) => queue_id(&reply.lines.join(" ")),
        _ => None,
    };
    let timing = transcript.timing();
    let seconds = |d: std::time::Duration| (d.as_secs_f64() * 1000.0).round() / 1000.0;
    json!({
        "status": status,
        "exit": exit,
        "sentence": sentence,
        "reply": reply.as_ref().map(reply_json),
        "queue_id": queue_id,
        "recipients": { "accepted": accepted, "refused": refused },
        "warnings": warnings,
        "bytes": {
            "sent": transcript.client_octets(),
            "message": job.message.expected_len(),
        },
        "seconds": {
            "connect": timing.connected.map(seconds),
            "tls": timing.tls.map(seconds),
            "data": timing.data.map(seconds),
            "total": seconds(timing.total),
        },
    })
}

fn reply_json(reply: &ServerReply) -> Value {
    json!({
        "code": reply.code,
        "enhanced": reply.enhanced(),
        "text": reply.lines.join("\n"),
    })
}

/// Each command line (without CRLF) with the reply it got, in order; the greeting is paired
/// with `<connect>`, and the message data with its final `.`.
fn pairs(transcript: &Transcript) -> Vec<(String, ServerReply)> {
    let mut waiting: VecDeque<String> = VecDeque::from(["<connect>".to_owned()]);
    let mut pairs = Vec::new();
    let mut lines = Vec::new();
    let mut in_data = false;
    for event in transcript.events() {
        match event {
            Event::Client(line) => {
                let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                if !in_data || text == "." {
                    in_data = false;
                    waiting.push_back(text);
                }
            }
            Event::Server(line) => {
                let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                let code = text.get(..3).and_then(|code| code.parse::<u16>().ok());
                lines.push(text.get(4..).unwrap_or_default().to_owned());
                let last = text.as_bytes().get(3) != Some(&b'-');
                if let (Some(code), true) = (code, last) {
                    let command = waiting.pop_front().unwrap_or_default();
                    in_data = code == 354;
                    let reply = ServerReply {
                        code,
                        lines: std::mem::take(&mut lines),
                    };
                    pairs.push((command, reply));
                }
            }
            _ => {}
        }
    }
    pairs
}

/// The address of a `RCPT TO:<address> …` line.
fn rcpt_address(command: &str) -> Option<&str> {
    let prefix = command.get(..8)?;
    if !prefix.eq_ignore_ascii_case("RCPT TO:") {
        return None;
    }
    let rest = command[8..].trim_start();
    let inner = rest.strip_prefix('<')?;
    inner.split_once('>').map(|(address, _)| address)
}

/// The queue id in a reply to the end of the data, in the forms the common servers use:
/// Postfix and this workbench's server `queued as ID`, Exim `id=ID`, Gmail
/// `OK  <seconds> <id> - gsmtp`, Microsoft 365 `[InternalId=ID…]`, sendmail
/// `ID Message accepted for delivery`.
pub fn queue_id(text: &str) -> Option<String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let clean = |word: &str| {
        word.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_' && c != '.')
            .trim_end_matches('.')
            .to_owned()
    };
    let found = words
        .windows(3)
        .find(|w| w[0].eq_ignore_ascii_case("queued") && w[1].eq_ignore_ascii_case("as"))
        .map(|w| clean(w[2]))
        .or_else(|| words.iter().find_map(|w| w.strip_prefix("id=").map(clean)))
        .or_else(|| {
            words
                .iter()
                .find_map(|w| w.strip_prefix("[InternalId=").map(clean))
        })
        .or_else(|| {
            let gsmtp = words.last().is_some_and(|w| *w == "gsmtp");
            let at = words
                .iter()
                .position(|w| w.chars().all(|c| c.is_ascii_digit()))?;
            gsmtp.then(|| words.get(at + 1).map(|w| clean(w)))?
        })
        .or_else(|| {
            let at = words
                .iter()
                .position(|w| w.eq_ignore_ascii_case("Message"))?;
            let accepted = words.get(at + 1)?.eq_ignore_ascii_case("accepted");
            (accepted && at > 0).then(|| clean(words[at - 1]))
        });
    found.filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_ids_of_common_servers() {
        let cases = [
            ("2.0.0 Ok: queued as 4Xk2mN0q1Tz9", Some("4Xk2mN0q1Tz9")),
            ("OK id=1tFk3Q-000Abc-2x", Some("1tFk3Q-000Abc-2x")),
            (
                "2.0.0 OK  1733064000 a640c23a62f3a-aa5f1e1b2c3sm1234567866b.12 - gsmtp",
                Some("a640c23a62f3a-aa5f1e1b2c3sm1234567866b.12"),
            ),
            (
                "2.6.0 <x@example.com> [InternalId=12345678901234, Hostname=AM0PR01MB1234.eurprd01.prod.outlook.com] 9876 bytes in 0.123, 76.2 KB/sec Queued mail for delivery",
                Some("12345678901234"),
            ),
            (
                "2.0.0 4B1AbCdE012345 Message accepted for delivery",
                Some("4B1AbCdE012345"),
            ),
            ("2.0.0 Ok", None),
        ];
        for (text, want) in cases {
            assert_eq!(queue_id(text).as_deref(), want, "{text}");
        }
    }

    #[test]
    fn commands_pair_with_their_replies_in_order() {
        let mut transcript = Transcript::new();
        transcript.connected("server:25");
        transcript.server(b"220 hi\r\n");
        transcript.client(b"EHLO c\r\n");
        transcript.server(b"250-hi\r\n250 PIPELINING\r\n");
        transcript.client(b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\nDATA\r\n");
        transcript.server(b"250 ok\r\n550 5.1.1 no\r\n250 ok\r\n354 go\r\n");
        transcript.client(b"RCPT TO:<looks@like.a.command>\r\n.\r\nQUIT\r\n");
        transcript.server(b"250 2.0.0 queued as Q1\r\n221 bye\r\n");
        let pairs = pairs(&transcript);
        let shown: Vec<(&str, u16)> = pairs.iter().map(|(c, r)| (c.as_str(), r.code)).collect();
        assert_eq!(
            shown,
            [
                ("<connect>", 220),
                ("EHLO c", 250),
                ("MAIL FROM:<a@x>", 250),
                ("RCPT TO:<b@y>", 550),
                ("RCPT TO:<c@y>", 250),
                ("DATA", 354),
                (".", 250),
                ("QUIT", 221),
            ]
        );
        assert_eq!(pairs[1].1.lines, ["hi", "PIPELINING"]);
        assert_eq!(rcpt_address("rcpt to:<b@y> NOTIFY=NEVER"), Some("b@y"));
    }
}
