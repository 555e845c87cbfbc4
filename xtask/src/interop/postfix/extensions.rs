//! CHUNKING (RFC 3030) and DSN (RFC 3461) against Postfix, which offers both by default
//! (the instance's main.cf leaves `smtpd_discard_ehlo_keywords` unset): raw-client's BDAT
//! sends must be delivered exactly as the DATA send of the same message, and a DSN request
//! from either client must be accepted and answered with the notification it asked for.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{DOMAIN, Instance, MAILBOXES, PEER, lf_to_crlf, prepended_names, without_prepended};
use crate::interop::mail::{self, Client, Mail, Send, Tls};
use crate::interop::{Ctx, OURS_TO_PEER, Report, procs};

/// The mailbox of the DSN sends' envelope sender, where Postfix's notifications arrive
/// (`sender@example.net` in main.cf's `virtual_mailbox_maps`).
pub(super) const SENDER_MAILBOX: &str = "sender";

/// The DSN request both clients make.
const DSN_ARGS: &[&str] = &[
    "--dsn-notify",
    "success,failure",
    "--dsn-ret",
    "hdrs",
    "--dsn-envid",
    "test-1",
];

/// One BDAT send: raw-client's extra options, `--pipelining`, the chunk size asked for, and
/// what the scenario says.
struct Chunking {
    args: &'static [&'static str],
    pipelining: bool,
    chunk_size: usize,
    what: &'static str,
}

const CHUNKING: &[Chunking] = &[
    Chunking {
        args: &["--chunking"],
        pipelining: false,
        chunk_size: 256 * 1024,
        what: "--chunking: the message in one BDAT chunk",
    },
    Chunking {
        args: &["--chunking", "--chunk-size", "4K"],
        pipelining: false,
        chunk_size: 4 * 1024,
        what: "--chunking --chunk-size 4K: the message (over 4K) in several BDAT chunks",
    },
    Chunking {
        args: &["--chunking"],
        pipelining: true,
        chunk_size: 256 * 1024,
        what: "--pipelining --chunking: AUTH, MAIL, RCPT, BDAT and QUIT in one write",
    },
];

/// Runs the CHUNKING and DSN checks against the running instance.
pub(super) fn run(ctx: &Ctx, instance: &Instance, ca: &Path, report: &mut Report) {
    // One message, sent once with DATA; each BDAT send of it is compared with that delivery.
    let mail = Mail::full("postfix-chunking", DOMAIN);
    let send = |pipelining: bool| Send {
        client: Client::Raw,
        port: instance.port,
        tls: Tls::Starttls,
        ca,
        password_file: Some(ctx.fixtures.password_file.as_path()),
        token_file: None,
        pipelining,
        mail: &mail,
    };
    let baseline = data_baseline(ctx, instance, &send(false));
    for case in CHUNKING {
        let send = send(case.pipelining);
        let result = baseline
            .as_ref()
            .map_err(|why| format!("the DATA send to compare with failed: {why}"))
            .and_then(|baseline| chunking_check(ctx, instance, &send, case, baseline));
        report.add(
            PEER,
            OURS_TO_PEER,
            format!(
                "raw-client, STARTTLS, AUTH PLAIN, {}; delivered as the DATA send of the same message",
                case.what
            ),
            result,
        );
    }
    for client in [Client::Raw, Client::Lib] {
        let result = dsn_check(ctx, instance, ca, client);
        report.add(
            PEER,
            OURS_TO_PEER,
            format!(
                "{}, STARTTLS, AUTH PLAIN, --dsn-notify success,failure --dsn-ret hdrs \
                 --dsn-envid test-1: accepted, and the success DSN Postfix sends back",
                client.name()
            ),
            result,
        );
    }
}

/// What the DATA send of the chunking message delivered to each mailbox, as Postfix wrote it.
struct Baseline {
    delivered: Vec<Vec<u8>>,
}

fn data_baseline(ctx: &Ctx, instance: &Instance, send: &Send<'_>) -> Result<Baseline, String> {
    let outcome = send
        .run(&ctx.binaries, &ctx.fixtures)
        .map_err(|error| format!("{error:#}"))?;
    mail::expect_success(&outcome)?;
    mail::ensure(
        outcome.stdout.lines().any(|line| line == "C: DATA") && !outcome.stdout.contains("C: BDAT"),
        || "the send without --chunking did not use DATA".into(),
    )?;
    let mut delivered = Vec::new();
    for mailbox in MAILBOXES {
        delivered.push(
            instance
                .wait_delivery(mailbox, &send.mail.message_id)
                .map_err(|error| format!("{error:#}"))?,
        );
    }
    Ok(Baseline { delivered })
}

/// Whether an EHLO reply in the transcript lists the extension `keyword` (on a `250-` line,
/// or on the `250 ` line that ends the reply).
fn offers(transcript: &str, keyword: &str) -> bool {
    transcript.lines().any(|line| {
        line.strip_prefix("S: 250-")
            .or_else(|| line.strip_prefix("S: 250 "))
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|word| word.eq_ignore_ascii_case(keyword))
    })
}

/// The sizes of the BDAT chunks in a transcript, and whether each was marked LAST.
fn bdat_chunks(transcript: &str) -> Vec<(usize, bool)> {
    transcript
        .lines()
        .filter_map(|line| line.strip_prefix("C: BDAT "))
        .filter_map(|rest| {
            let mut words = rest.split_whitespace();
            let size = words.next()?.parse().ok()?;
            Some((size, words.next() == Some("LAST")))
        })
        .collect()
}

fn chunking_check(
    ctx: &Ctx,
    instance: &Instance,
    send: &Send<'_>,
    case: &Chunking,
    baseline: &Baseline,
) -> Result<String, String> {
    let reference = send
        .reference(&ctx.fixtures)
        .map_err(|error| format!("{error:#}"))?;
    let before: Vec<BTreeSet<String>> = MAILBOXES
        .iter()
        .map(|mailbox| instance.delivered_names(mailbox))
        .collect();
    let outcome = send
        .run_with(&ctx.binaries, &ctx.fixtures, case.args)
        .map_err(|error| format!("{error:#}"))?;
    mail::expect_success(&outcome)?;
    let transcript = &outcome.stdout;
    mail::ensure(offers(transcript, "CHUNKING"), || {
        "Postfix did not offer CHUNKING (is it in smtpd_discard_ehlo_keywords?)".into()
    })?;
    mail::ensure(!transcript.lines().any(|line| line == "C: DATA"), || {
        "raw-client sent DATA although Postfix offers CHUNKING".into()
    })?;
    if case.pipelining {
        mail::ensure(transcript.contains("-- pipelining"), || {
            "raw-client did not pipeline although Postfix offers PIPELINING".into()
        })?;
    }
    // The chunks: each at most the chunk size, only the last one LAST, the rendering in all.
    let chunks = bdat_chunks(transcript);
    let expected = reference.len().div_ceil(case.chunk_size);
    mail::ensure(chunks.len() == expected, || {
        format!(
            "expected {expected} BDAT chunk(s) for {} octets in chunks of {}, the transcript shows {chunks:?}",
            reference.len(),
            case.chunk_size
        )
    })?;
    let lasts: Vec<bool> = chunks.iter().map(|&(_, last)| last).collect();
    mail::ensure(
        lasts.iter().rev().skip(1).all(|last| !last) && lasts.last() == Some(&true),
        || format!("only the last chunk may be BDAT … LAST: {chunks:?}"),
    )?;
    let total: usize = chunks.iter().map(|&(size, _)| size).sum();
    mail::ensure(
        total == reference.len() && chunks.iter().all(|&(size, _)| size <= case.chunk_size),
        || {
            format!(
                "the chunks {chunks:?} are not the {} octets of the rendering",
                reference.len()
            )
        },
    )?;
    let mut stripped = Vec::new();
    for ((mailbox, before), data) in MAILBOXES.iter().zip(&before).zip(&baseline.delivered) {
        let delivered = instance
            .wait_new_delivery(mailbox, &send.mail.message_id, before)
            .map_err(|error| format!("{error:#}"))?;
        for name in prepended_names(&delivered) {
            if !stripped.contains(&name) {
                stripped.push(name);
            }
        }
        mail::same_bytes(without_prepended(&delivered), without_prepended(data))
            .map_err(|why| format!("{mailbox}: BDAT and DATA deliveries differ: {why}"))?;
        mail::same_bytes(&lf_to_crlf(without_prepended(&delivered)), &reference)
            .map_err(|why| format!("{mailbox}: the delivery is not the rendering: {why}"))?;
    }
    let sizes: Vec<String> = chunks.iter().map(|(size, _)| size.to_string()).collect();
    let chunks = match chunks.len() {
        1 => format!("one chunk of {} octets", sizes[0]),
        n => format!("{n} chunks of {} octets", sizes.join(" + ")),
    };
    Ok(format!(
        "{chunks}; delivered to {} Maildirs, each byte for byte the DATA send's delivery (and \
         the rendering) after the fields Postfix prepends ({})",
        MAILBOXES.len(),
        stripped.join(", ")
    ))
}

/// The reply that follows transcript line `index` (the next `S:` line).
fn reply_after<'a>(lines: &[&'a str], index: usize) -> Option<&'a str> {
    lines[index + 1..]
        .iter()
        .find(|line| line.starts_with("S: "))
        .copied()
}

/// The DSN parameters on MAIL and every RCPT, each answered 250, and the end of data too.
fn dsn_transcript(transcript: &str, mail: &Mail) -> Result<(), String> {
    let lines: Vec<&str> = transcript.lines().collect();
    mail::ensure(offers(transcript, "DSN"), || {
        "Postfix did not offer DSN (is it in smtpd_discard_ehlo_keywords?)".into()
    })?;
    let accepted = |prefix: &str, parameters: &[String]| -> Result<(), String> {
        let index = lines
            .iter()
            .position(|line| line.starts_with(prefix))
            .ok_or_else(|| format!("the transcript has no {prefix:?} line"))?;
        let line = lines[index];
        for parameter in parameters {
            mail::ensure(
                line.split_whitespace().any(|word| word == parameter),
                || format!("{line:?} lacks {parameter}"),
            )?;
        }
        let reply = reply_after(&lines, index).unwrap_or("no reply");
        mail::ensure(reply.starts_with("S: 250"), || {
            format!("{line:?} was answered {reply:?}")
        })
    };
    accepted(
        &format!("C: MAIL FROM:<{}>", mail.sender()),
        &["RET=HDRS".into(), "ENVID=test-1".into()],
    )?;
    for recipient in mail.recipients() {
        accepted(
            &format!("C: RCPT TO:<{recipient}>"),
            &[
                "NOTIFY=SUCCESS,FAILURE".into(),
                format!("ORCPT=rfc822;{recipient}"),
            ],
        )?;
    }
    mail::ensure(
        lines
            .iter()
            .any(|line| line.starts_with("S: 250") && line.contains("queued as")),
        || "the message was not answered 250 … queued as".into(),
    )
}

/// One per-recipient block of a delivery status notification (RFC 3464 §2.3).
#[derive(Debug, Default)]
struct RecipientStatus {
    final_recipient: String,
    original_recipient: String,
    action: String,
    status: String,
}

/// The per-recipient blocks of a notification: groups of `Name: value` lines that hold a
/// Final-Recipient, as Postfix writes them (LF line ends in a Maildir).
fn recipient_statuses(notification: &str) -> Vec<RecipientStatus> {
    notification
        .split("\n\n")
        .filter(|block| block.contains("Final-Recipient:"))
        .map(|block| {
            let mut status = RecipientStatus::default();
            for line in block.lines() {
                let Some((name, value)) = line.split_once(':') else {
                    continue;
                };
                let value = value.trim().to_owned();
                match name.to_ascii_lowercase().as_str() {
                    "final-recipient" => status.final_recipient = value,
                    "original-recipient" => status.original_recipient = value,
                    "action" => status.action = value,
                    "status" => status.status = value,
                    _ => {}
                }
            }
            status
        })
        .collect()
}

fn dsn_check(ctx: &Ctx, instance: &Instance, ca: &Path, client: Client) -> Result<String, String> {
    // The notification goes to the envelope sender, so it must be a mailbox of this instance.
    let mail = Mail {
        from: format!("Interop Sender <{SENDER_MAILBOX}@{DOMAIN}>"),
        ..Mail::full(&format!("postfix-{}-dsn", client.name()), DOMAIN)
    };
    let send = Send {
        client,
        port: instance.port,
        tls: Tls::Starttls,
        ca,
        password_file: Some(ctx.fixtures.password_file.as_path()),
        token_file: None,
        pipelining: false,
        mail: &mail,
    };
    let reference = send
        .reference(&ctx.fixtures)
        .map_err(|error| format!("{error:#}"))?;
    let outcome = send
        .run_with(&ctx.binaries, &ctx.fixtures, DSN_ARGS)
        .map_err(|error| format!("{error:#}"))?;
    mail::expect_success(&outcome)?;
    dsn_transcript(&outcome.stdout, &mail)?;
    for mailbox in MAILBOXES {
        let delivered = instance
            .wait_delivery(mailbox, &mail.message_id)
            .map_err(|error| format!("{error:#}"))?;
        mail::same_bytes(&lf_to_crlf(without_prepended(&delivered)), &reference)
            .map_err(|why| format!("{mailbox}: the delivery is not the rendering: {why}"))?;
    }
    let recipients = mail.recipients();
    let notifications = instance
        .wait_notifications(&mail.message_id, recipients.len())
        .map_err(|error| format!("{error:#}"))?;
    for notification in &notifications {
        mail::ensure(notification.contains("report-type=delivery-status"), || {
            "the notification is not a multipart/report of delivery-status".into()
        })?;
        mail::ensure(
            notification
                .lines()
                .any(|line| line == "Original-Envelope-Id: test-1"),
            || "the notification does not quote Original-Envelope-Id: test-1".into(),
        )?;
        // RET=HDRS: the headers come back, the body does not.
        mail::ensure(
            notification.contains("Content-Type: text/rfc822-headers")
                && !notification.contains("Content-Type: message/rfc822")
                && !notification.contains("Last line."),
            || "the notification returns more than the headers (RET=HDRS)".into(),
        )?;
    }
    let statuses: Vec<RecipientStatus> = notifications
        .iter()
        .flat_map(|notification| recipient_statuses(notification))
        .collect();
    for recipient in &recipients {
        let status = statuses
            .iter()
            .find(|status| status.final_recipient == format!("rfc822; {recipient}"))
            .ok_or_else(|| format!("no notification names {recipient}: {statuses:?}"))?;
        mail::ensure(
            status.action == "delivered"
                && status.status.starts_with("2.")
                && status.original_recipient == format!("rfc822;{recipient}"),
            || format!("{recipient}: {status:?}"),
        )?;
    }
    Ok(format!(
        "MAIL with RET=HDRS ENVID=test-1 and {n} RCPT with NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;… \
         answered 250; delivered to {n} Maildirs byte for byte; Postfix's success notification \
         ({}, to {SENDER_MAILBOX}@{DOMAIN}) quotes Original-Envelope-Id: test-1, says Action: \
         delivered with each Original-Recipient, and returns the headers only \
         (text/rfc822-headers)",
        match notifications.len() {
            1 => "one message".to_owned(),
            n => format!("{n} messages"),
        },
        n = recipients.len()
    ))
}

impl Instance {
    /// The files in the mailbox's Maildir `new/` now.
    fn delivered_names(&self, mailbox: &str) -> BTreeSet<String> {
        std::fs::read_dir(self.dir.join("mail").join(mailbox).join("new"))
            .map(|entries| {
                entries
                    .flatten()
                    .map(|entry| entry.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The one message with this Message-ID delivered to the mailbox since `before`.
    fn wait_new_delivery(
        &self,
        mailbox: &str,
        message_id: &str,
        before: &BTreeSet<String>,
    ) -> anyhow::Result<Vec<u8>> {
        let new = self.dir.join("mail").join(mailbox).join("new");
        let needle = format!("Message-ID: <{message_id}>");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            for name in self.delivered_names(mailbox).difference(before) {
                let bytes = std::fs::read(new.join(name))?;
                if String::from_utf8_lossy(&bytes).contains(&needle) {
                    return Ok(bytes);
                }
            }
            if Instant::now() > deadline {
                anyhow::bail!(
                    "no new message with {needle} was delivered to {mailbox}@{DOMAIN} within 30 s; the Postfix log ends:\n{}",
                    procs::log_tail(&self.dir.join("postfix.log"))
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The delivery status notifications in the sender's Maildir that return the headers of
    /// the message with this Message-ID, once they name `recipients` recipients in all.
    fn wait_notifications(
        &self,
        message_id: &str,
        recipients: usize,
    ) -> anyhow::Result<Vec<String>> {
        let new = self.dir.join("mail").join(SENDER_MAILBOX).join("new");
        let needle = format!("<{message_id}>");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut found = Vec::new();
            for name in self.delivered_names(SENDER_MAILBOX) {
                let text = String::from_utf8_lossy(&std::fs::read(new.join(name))?).into_owned();
                if text.contains(&needle) && text.contains("Final-Recipient:") {
                    found.push(text);
                }
            }
            let named: usize = found
                .iter()
                .map(|text| recipient_statuses(text).len())
                .sum();
            if named >= recipients {
                return Ok(found);
            }
            if Instant::now() > deadline {
                anyhow::bail!(
                    "{} notification(s) naming {named} of {recipients} recipients reached {SENDER_MAILBOX}@{DOMAIN} within 30 s; the Postfix log ends:\n{}",
                    found.len(),
                    procs::log_tail(&self.dir.join("postfix.log"))
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_read_from_the_transcript() {
        let transcript = "C: MAIL FROM:<a@example.org>\nC: BDAT 4096\n-- 4096 octets …\n\
                          S: 250 2.0.0 Ok\nC: BDAT 3722 LAST\nS: 250 2.0.0 Ok: queued as X\n";
        assert_eq!(bdat_chunks(transcript), [(4096, false), (3722, true)]);
        assert!(bdat_chunks("C: DATA\nS: 354 go ahead\n").is_empty());
    }

    #[test]
    fn dsn_parameters_and_their_replies_are_checked() {
        let mail = Mail {
            to: vec!["a@example.net".into()],
            cc: Vec::new(),
            bcc: Vec::new(),
            ..Mail::full("t", "example.net")
        };
        let good = "S: 250-DSN\nC: MAIL FROM:<sender@example.org> BODY=8BITMIME RET=HDRS ENVID=test-1\n\
                    S: 250 2.1.0 Ok\nC: RCPT TO:<a@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@example.net\n\
                    S: 250 2.1.5 Ok\nC: DATA\nS: 354 End data with <CR><LF>.<CR><LF>\n\
                    S: 250 2.0.0 Ok: queued as 4Xyz\n";
        assert_eq!(dsn_transcript(good, &mail), Ok(()));
        let refused = good.replace("S: 250 2.1.5 Ok", "S: 555 5.5.4 Unsupported option: NOTIFY");
        assert!(dsn_transcript(&refused, &mail).is_err());
        let no_envid = good.replace(" ENVID=test-1", "");
        let error = dsn_transcript(&no_envid, &mail).expect_err("no ENVID");
        assert!(error.contains("ENVID=test-1"), "{error}");
        assert!(dsn_transcript(&good.replace("S: 250-DSN\n", ""), &mail).is_err());
        assert!(dsn_transcript(&good.replace("S: 250-DSN", "S: 250 DSN"), &mail).is_ok());
        assert!(!offers("S: 250-DSNX\nS: 250 CHUNKINGS\n", "DSN"));
        assert!(offers("S: 250-PIPELINING\nS: 250 CHUNKING\n", "CHUNKING"));
    }

    #[test]
    fn recipient_blocks_of_a_notification() {
        let notification = "Content-Type: message/delivery-status\n\n\
                            Reporting-MTA: dns; postfix.interop.localhost\n\
                            Original-Envelope-Id: test-1\n\n\
                            Final-Recipient: rfc822; alice@example.net\n\
                            Original-Recipient: rfc822;alice@example.net\n\
                            Action: delivered\nStatus: 2.0.0\n\n\
                            Final-Recipient: rfc822; bob@example.net\nAction: failed\nStatus: 5.1.1\n\n";
        let statuses = recipient_statuses(notification);
        assert_eq!(statuses.len(), 2);
        assert_eq!(statuses[0].final_recipient, "rfc822; alice@example.net");
        assert_eq!(statuses[0].original_recipient, "rfc822;alice@example.net");
        assert_eq!(
            (statuses[0].action.as_str(), statuses[0].status.as_str()),
            ("delivered", "2.0.0")
        );
        assert_eq!(statuses[1].action, "failed");
    }
}
