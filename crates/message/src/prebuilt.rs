//! A message someone else built (`--data FILE`, `sendmail -t`): sent as it is, after the
//! checks that make "as it is" safe.
//!
//! What is changed, and only that: line ends become CRLF (RFC 5322 §2.1), a missing final
//! line end is added, and every `Bcc` and `Resent-Bcc` field is removed, as msmtp and
//! Python's `smtplib.send_message` do, so blind recipients stay blind (RFC 5322 §3.6.3).
//! With [`Prebuilt::add_missing`] a Date, Message-ID and From field are added where the
//! message has none (msmtp's `add_missing_date_header` and friends).
//!
//! What is refused rather than rewritten: a line longer than 998 octets (RFC 5322 §2.1.1), a
//! NUL byte, a CR that does not end a line (RFC 5322 §2.3: CR and LF only together). 8-bit
//! content is marked in the envelope, so a client refuses it before MAIL when the server
//! does not offer 8BITMIME (RFC 6152).

use mail_parser::{HeaderName, MessageParser};

use crate::address::{Address, Mailbox};
use crate::builder::{Envelope, Message, generate_message_id};
use crate::date::Date;
use crate::error::Error;
use crate::header::{HeaderField, address_list};

/// RFC 5322 §2.1.1: at most 998 octets on a line, not counting its CRLF.
pub const MAX_LINE: usize = 998;

/// How to turn prebuilt bytes into a [`Message`].
#[derive(Debug, Clone, Default)]
pub struct Prebuilt {
    /// The envelope sender given on the command line (`--from`, `-f`).
    pub from: Option<Mailbox>,
    /// Envelope recipients given on the command line (`--to`, `--cc`, `--bcc`, arguments).
    pub recipients: Vec<Address>,
    /// `-t`: read the envelope from the message's header fields too.
    pub read_envelope: bool,
    /// Without [`Prebuilt::from`], take the envelope sender from the message's Sender or
    /// From even without `-t` (sendmail mode, as msmtp's `--read-envelope-from`).
    pub read_sender: bool,
    /// Add Date, Message-ID and From where missing (From is [`Prebuilt::from`]).
    pub add_missing: bool,
}

/// One header field as it appears in the input: its name and where its lines are.
struct Field {
    name: String,
    /// Byte range in the normalised input, from the name to the end of its last CRLF.
    range: std::ops::Range<usize>,
}

impl Prebuilt {
    /// Checks and normalises `input`, and works out the envelope.
    pub fn build(&self, input: &[u8]) -> Result<Message, Error> {
        if input.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::EmptyMessage);
        }
        let normalised = normalise(input)?;
        let fields = header_fields(&normalised)?;
        let has = |name: &str| fields.iter().any(|f| f.name.eq_ignore_ascii_case(name));

        let header_end = fields.last().map_or(0, |f| f.range.end);
        let parsed = MessageParser::default()
            .parse_headers(&normalised[..header_end])
            .map(|m| addresses(&m))
            .unwrap_or_default();

        let mut from = self.from.as_ref().map(|m| m.address.clone());
        let mut recipients = Vec::new();
        let resent = parsed.iter().any(|(name, _)| name.starts_with("resent-"));
        if self.read_envelope {
            let wanted: &[&str] = if resent {
                &["resent-to", "resent-cc", "resent-bcc"]
            } else {
                &["to", "cc", "bcc"]
            };
            for (name, list) in &parsed {
                if wanted.contains(&name.as_str()) {
                    recipients.extend(list.iter().cloned());
                }
            }
        }
        if from.is_none() && (self.read_envelope || self.read_sender) {
            let senders: &[&str] = if resent {
                &["resent-sender", "resent-from"]
            } else {
                &["sender", "from"]
            };
            from = senders.iter().find_map(|wanted| {
                parsed
                    .iter()
                    .find(|(name, list)| name == wanted && !list.is_empty())
                    .and_then(|(_, list)| list.first().cloned())
            });
        }
        recipients.extend(self.recipients.iter().cloned());
        let mut unique: Vec<Address> = Vec::new();
        for address in recipients {
            if !unique.contains(&address) {
                unique.push(address);
            }
        }
        if unique.is_empty() {
            return Err(Error::NoEnvelopeRecipients);
        }
        let from = from.ok_or(Error::NoSender)?;

        let mut bytes = Vec::with_capacity(normalised.len() + 200);
        let mut message_id = None;
        if self.add_missing {
            if !has("Date") {
                let mut field = HeaderField::new("Date");
                field.word(Date::now().as_str());
                bytes.extend_from_slice(field.finish()?.as_bytes());
            }
            if !has("From") {
                let mailbox = self.from.clone().ok_or(Error::NoSender)?;
                bytes.extend_from_slice(address_list("From", &[mailbox])?.as_bytes());
            }
            if !has("Message-ID") {
                let id = generate_message_id(&from);
                let mut field = HeaderField::new("Message-ID");
                field.word(&id);
                bytes.extend_from_slice(field.finish()?.as_bytes());
                message_id = Some(id);
            }
        }
        let mut at = 0;
        for field in &fields {
            let bcc = field.name.eq_ignore_ascii_case("Bcc")
                || field.name.eq_ignore_ascii_case("Resent-Bcc");
            if bcc {
                bytes.extend_from_slice(&normalised[at..field.range.start]);
                at = field.range.end;
            }
        }
        bytes.extend_from_slice(&normalised[at..]);

        let smtputf8 = !from.is_ascii() || unique.iter().any(|a| !a.is_ascii());
        let eight_bit = !bytes.is_ascii();
        Ok(Message::prebuilt(
            Envelope {
                from,
                recipients: unique,
                smtputf8,
                eight_bit,
                binary: false,
            },
            message_id.unwrap_or_default(),
            bytes,
        ))
    }
}

/// LF or CRLF line ends to CRLF, a final line end added; NUL, a lone CR or a line over
/// [`MAX_LINE`] octets refused with its line number.
fn normalise(input: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(input.len() + input.len() / 32 + 2);
    for (index, line) in input.split_inclusive(|&b| b == b'\n').enumerate() {
        let line_number = index + 1;
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if let Some(at) = content.iter().position(|&b| b == 0 || b == b'\r') {
            let what = if content[at] == 0 {
                "a NUL byte"
            } else {
                "a CR that does not end the line"
            };
            return Err(Error::Unsendable {
                line: line_number,
                reason: format!("it has {what} at octet {}", at + 1),
            });
        }
        if content.len() > MAX_LINE {
            return Err(Error::Unsendable {
                line: line_number,
                reason: format!(
                    "it is {} octets long, and SMTP allows {MAX_LINE} (RFC 5322 §2.1.1); encode the part (quoted-printable or base64) first",
                    content.len()
                ),
            });
        }
        out.extend_from_slice(content);
        out.extend_from_slice(b"\r\n");
    }
    Ok(out)
}

/// The header fields up to the first empty line (or the end), each with its folded lines.
/// Any other line there is refused: a receiving parser might end the header section at it
/// or not, and a Bcc field after it could then reach every recipient.
fn header_fields(message: &[u8]) -> Result<Vec<Field>, Error> {
    let mut fields: Vec<Field> = Vec::new();
    let mut at = 0;
    for (index, line) in message.split_inclusive(|&b| b == b'\n').enumerate() {
        let end = at + line.len();
        if line == b"\r\n" {
            break;
        }
        let refuse = |reason: &str| Error::Unsendable {
            line: index + 1,
            reason: reason.to_owned(),
        };
        if matches!(line.first(), Some(b' ' | b'\t')) {
            match fields.last_mut() {
                Some(field) => field.range.end = end,
                None => {
                    return Err(refuse(
                        "a folded line with no header field before it; start the message with its header fields",
                    ));
                }
            }
        } else {
            // RFC 5322 §3.6.8: a field name is printable ASCII without ":" or space.
            let name_end = line.iter().position(|&b| b == b':');
            let name = name_end.map(|colon| &line[..colon]);
            match name {
                Some(name) if !name.is_empty() && name.iter().all(|&b| (33..=126).contains(&b)) => {
                    fields.push(Field {
                        name: String::from_utf8_lossy(name).into_owned(),
                        range: at..end,
                    });
                }
                _ if index == 0 && line.starts_with(b"From ") => {
                    return Err(refuse(
                        "it is an mbox \"From \" line (as git format-patch writes), not part of the message; remove it, or send patches with git send-email",
                    ));
                }
                _ => {
                    return Err(refuse(
                        "it is not a header field (Name: value), and no blank line before it ends the header fields",
                    ));
                }
            }
        }
        at = end;
    }
    Ok(fields)
}

/// The address fields that matter for the envelope, lower-case name and valid addresses,
/// in header order. An address the parser finds but that is not a valid addr-spec (a
/// group's empty list, `undisclosed-recipients:;`) is left out.
fn addresses(message: &mail_parser::Message<'_>) -> Vec<(String, Vec<Address>)> {
    let wanted = [
        HeaderName::From,
        HeaderName::Sender,
        HeaderName::To,
        HeaderName::Cc,
        HeaderName::Bcc,
        HeaderName::ResentFrom,
        HeaderName::ResentSender,
        HeaderName::ResentTo,
        HeaderName::ResentCc,
        HeaderName::ResentBcc,
    ];
    message
        .headers()
        .iter()
        .filter(|header| wanted.contains(&header.name))
        .map(|header| {
            let list = header
                .value
                .as_address()
                .map(|list| {
                    list.iter()
                        .filter_map(|addr| addr.address())
                        .filter_map(|text| Address::parse(text).ok())
                        .collect()
                })
                .unwrap_or_default();
            (header.name.as_str().to_ascii_lowercase(), list)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(input: &str, prebuilt: Prebuilt) -> (Envelope, String) {
        let message = prebuilt.build(input.as_bytes()).expect("sendable");
        let bytes = message.to_bytes().expect("renders");
        (
            message.envelope().clone(),
            String::from_utf8(bytes).expect("UTF-8"),
        )
    }

    fn read_envelope() -> Prebuilt {
        Prebuilt {
            read_envelope: true,
            ..Prebuilt::default()
        }
    }

    fn recipients(envelope: &Envelope) -> Vec<&str> {
        envelope.recipients.iter().map(Address::as_str).collect()
    }

    #[test]
    fn bcc_is_removed_and_every_recipient_kept() {
        let input = "From: A <a@example.com>\nTo: b@example.org, \"Last, First\" <c@example.org>\nBcc: hidden@example.net,\n  other@example.net\nCc: d@example.org\nSubject: x\n\n.leading dot\nBcc: in the body stays\n";
        let (envelope, sent) = send(input, read_envelope());
        assert_eq!(envelope.from.as_str(), "a@example.com");
        assert_eq!(
            recipients(&envelope),
            [
                "b@example.org",
                "c@example.org",
                "hidden@example.net",
                "other@example.net",
                "d@example.org"
            ]
        );
        assert_eq!(
            sent,
            "From: A <a@example.com>\r\nTo: b@example.org, \"Last, First\" <c@example.org>\r\nCc: d@example.org\r\nSubject: x\r\n\r\n.leading dot\r\nBcc: in the body stays\r\n"
        );
        assert!(!envelope.eight_bit && !envelope.smtputf8);
    }

    #[test]
    fn nothing_is_added_unless_asked() {
        let input = "Subject: only\r\n\r\nbody";
        let given = Prebuilt {
            from: Some(Mailbox::parse("me@example.com").expect("valid")),
            recipients: vec![Address::parse("you@example.org").expect("valid")],
            ..Prebuilt::default()
        };
        let (envelope, sent) = send(input, given.clone());
        assert_eq!(sent, "Subject: only\r\n\r\nbody\r\n");
        assert_eq!(recipients(&envelope), ["you@example.org"]);
        let added = Prebuilt {
            add_missing: true,
            ..given
        };
        let (_, sent) = send(input, added);
        let lines: Vec<&str> = sent.split("\r\n").collect();
        assert!(lines[0].starts_with("Date: "), "{sent}");
        assert_eq!(lines[1], "From: me@example.com");
        assert!(lines[2].starts_with("Message-ID: <"), "{sent}");
        assert!(sent.ends_with("Subject: only\r\n\r\nbody\r\n"), "{sent}");
    }

    #[test]
    fn resent_fields_win_and_sender_comes_before_from() {
        let input = "Resent-From: r@example.com\nResent-To: new@example.org\nFrom: a@example.com\nSender: s@example.com\nTo: old@example.org\n\nhi\n";
        let (envelope, _) = send(input, read_envelope());
        assert_eq!(envelope.from.as_str(), "r@example.com");
        assert_eq!(recipients(&envelope), ["new@example.org"]);
        let (envelope, _) = send(
            "From: a@example.com\nSender: s@example.com\nTo: t@example.org\n\nhi\n",
            read_envelope(),
        );
        assert_eq!(envelope.from.as_str(), "s@example.com");
    }

    #[test]
    fn the_sender_alone_can_come_from_the_message() {
        let given = Prebuilt {
            recipients: vec![Address::parse("list@example.org").expect("valid")],
            read_sender: true,
            ..Prebuilt::default()
        };
        let (envelope, _) = send("From: a@example.com\nTo: b@example.org\n\nhi\n", given);
        assert_eq!(envelope.from.as_str(), "a@example.com");
        assert_eq!(recipients(&envelope), ["list@example.org"]);
    }

    #[test]
    fn unsendable_messages_are_refused_with_the_line() {
        let long = format!("To: b@example.org\n\n{}\n", "x".repeat(999));
        let cases = [
            (long.as_str(), 3, "999 octets long"),
            ("To: b@example.org\n\na\0b\n", 3, "NUL byte"),
            (
                "To: b@example.org\r\nSubject: a\rb\r\n\r\n",
                2,
                "CR that does not end",
            ),
        ];
        for (input, line, why) in cases {
            let error = read_envelope()
                .build(input.as_bytes())
                .expect_err("refused");
            let text = error.to_string();
            assert!(text.contains(&format!("line {line}")), "{text}");
            assert!(text.contains(why), "{text}");
        }
        let exactly = format!(
            "From: a@example.com\nTo: b@example.org\n\n{}\n",
            "x".repeat(998)
        );
        assert!(read_envelope().build(exactly.as_bytes()).is_ok());
    }

    #[test]
    fn a_malformed_header_section_is_refused() {
        let cases = [
            (
                "From 1a2b3c Mon Sep 17 00:00:00 2001\nFrom: a@example.com\n\nx\n",
                1,
                "mbox",
            ),
            (" folded\nTo: b@example.org\n\nx\n", 1, "folded line"),
            (
                "To: b@example.org\nhello\nBcc: c@example.org\n\nx\n",
                2,
                "not a header field",
            ),
            (
                "To: b@example.org\nBad Name: x\n\nx\n",
                2,
                "not a header field",
            ),
        ];
        for (input, line, why) in cases {
            let text = read_envelope()
                .build(input.as_bytes())
                .expect_err(input)
                .to_string();
            assert!(text.contains(&format!("line {line} ")), "{text}");
            assert!(text.contains(why), "{text}");
        }
    }

    #[test]
    fn eight_bit_content_and_addresses_are_marked() {
        let (envelope, _) = send(
            "From: a@example.com\nTo: b@example.org\n\nGrüße\n",
            read_envelope(),
        );
        assert!(envelope.eight_bit && !envelope.smtputf8);
        let (envelope, _) = send(
            "From: a@example.com\nTo: jörg@example.org\n\nhi\n",
            read_envelope(),
        );
        assert!(envelope.smtputf8);
    }

    #[test]
    fn no_recipient_or_sender_is_an_error() {
        assert!(matches!(
            read_envelope().build(b"\n\n"),
            Err(Error::EmptyMessage)
        ));
        assert!(matches!(
            read_envelope().build(b"From: a@example.com\nTo: undisclosed-recipients:;\n\nhi\n"),
            Err(Error::NoEnvelopeRecipients)
        ));
        assert!(matches!(
            read_envelope().build(b"To: b@example.org\n\nhi\n"),
            Err(Error::NoSender)
        ));
    }
}
