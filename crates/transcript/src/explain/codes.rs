//! Reply codes (RFC 5321 §4.2) and enhanced status codes (RFC 3463, and the IANA registry
//! RFC 5248 set up): what each digit means, what each known code says.

/// RFC 5321 §4.2.1: what the first digit of a reply code says about the outcome.
pub(crate) fn first_digit(digit: u8) -> &'static str {
    match digit {
        b'2' => "2 = done",
        b'3' => "3 = go on, more is needed",
        b'4' => "4 = failed for now, worth trying again later",
        b'5' => "5 = failed for good",
        _ => "not a valid first digit",
    }
}

/// RFC 5321 §4.2.1: what the second digit says the reply is about.
pub(crate) fn second_digit(digit: u8) -> &'static str {
    match digit {
        b'0' => "0 = syntax",
        b'1' => "1 = information",
        b'2' => "2 = the connection",
        b'3' => "3 = unassigned (AUTH uses 23x and 53x)",
        b'4' => "4 = unassigned",
        b'5' => "5 = the mail system",
        _ => "not a valid second digit",
    }
}

/// A reply code's own meaning, and where it is defined.
pub(crate) fn reply(code: u16) -> Option<(&'static str, &'static str)> {
    Some(match code {
        211 => ("system status, or a help reply", "RFC 5321 §4.2.2"),
        214 => ("a help message for a person", "RFC 5321 §4.2.2"),
        220 => ("the service is ready", "RFC 5321 §4.2.2"),
        221 => ("the service is closing the connection", "RFC 5321 §4.2.2"),
        235 => ("authentication succeeded", "RFC 4954 §6"),
        250 => ("the requested action is done", "RFC 5321 §4.2.2"),
        251 => (
            "the user is not local; the server will forward",
            "RFC 5321 §4.2.2",
        ),
        252 => (
            "the user cannot be verified, but the server will try to deliver",
            "RFC 5321 §4.2.2",
        ),
        334 => (
            "a SASL challenge: the server waits for the client's answer",
            "RFC 4954 §4",
        ),
        354 => (
            "start the message data; end it with a line holding only \".\"",
            "RFC 5321 §4.2.2",
        ),
        421 => (
            "the service is not available and is closing the connection",
            "RFC 5321 §4.2.2",
        ),
        432 => ("a password transition is needed", "RFC 4954 §4.7"),
        450 => (
            "the mailbox is not available now (busy, or blocked for the moment)",
            "RFC 5321 §4.2.2",
        ),
        451 => ("the action was aborted by a local error", "RFC 5321 §4.2.2"),
        452 => (
            "the server has too little storage, or too many recipients",
            "RFC 5321 §4.2.2",
        ),
        454 => (
            "TLS, or authentication, is not available for now",
            "RFC 3207 §4; RFC 4954 §6",
        ),
        455 => (
            "the server cannot accommodate the parameters now",
            "RFC 5321 §4.2.2",
        ),
        500 => (
            "a syntax error: the command was not recognized, or its line was too long",
            "RFC 5321 §4.2.2",
        ),
        501 => (
            "a syntax error in the parameters or arguments",
            "RFC 5321 §4.2.2",
        ),
        502 => ("the command is not implemented", "RFC 5321 §4.2.2"),
        503 => ("a bad sequence of commands", "RFC 5321 §4.2.2"),
        504 => ("a command parameter is not implemented", "RFC 5321 §4.2.2"),
        521 => ("this host accepts no mail at all", "RFC 7504 §3"),
        530 => ("authentication is required first", "RFC 4954 §6"),
        534 => ("the authentication mechanism is too weak", "RFC 4954 §6"),
        535 => ("the credentials are invalid", "RFC 4954 §6"),
        538 => (
            "this mechanism needs an encrypted connection",
            "RFC 4954 §6",
        ),
        550 => (
            "the mailbox is unavailable (not found, no access, or refused by policy)",
            "RFC 5321 §4.2.2",
        ),
        551 => ("the user is not local; try another path", "RFC 5321 §4.2.2"),
        552 => (
            "the action exceeded a storage allocation (too big)",
            "RFC 5321 §4.2.2",
        ),
        553 => ("the mailbox name is not allowed", "RFC 5321 §4.2.2"),
        554 => (
            "the transaction failed (or, as a greeting, no SMTP service here)",
            "RFC 5321 §4.2.2",
        ),
        555 => (
            "the MAIL or RCPT parameters are not recognized or not implemented",
            "RFC 5321 §4.2.2",
        ),
        556 => ("the domain accepts no mail", "RFC 7504 §3"),
        _ => return None,
    })
}

/// RFC 3463 §2: the class of an enhanced status code.
pub(crate) fn class(class: &str) -> Option<&'static str> {
    Some(match class {
        "2" => "success",
        "4" => "a persistent transient failure (it may work later)",
        "5" => "a permanent failure (the message or the address must change)",
        _ => return None,
    })
}

/// RFC 3463 §3: the subject of an enhanced status code.
pub(crate) fn subject(subject: &str) -> Option<&'static str> {
    Some(match subject {
        "0" => "other or undefined",
        "1" => "addressing",
        "2" => "the mailbox",
        "3" => "the mail system",
        "4" => "network and routing",
        "5" => "the mail delivery protocol",
        "6" => "message content or media",
        "7" => "security or policy",
        _ => return None,
    })
}

/// The enumerated status codes of the IANA SMTP Enhanced Status Codes registry (updated
/// 2024-12-06): subject, detail, meaning, and the document that defines it.
pub(crate) const ENHANCED: &[(u8, u8, &str, &str)] = &[
    (0, 0, "other or undefined status", "RFC 3463"),
    (1, 0, "other address status", "RFC 3463"),
    (
        1,
        1,
        "bad destination mailbox address (no such user)",
        "RFC 3463",
    ),
    (
        1,
        2,
        "bad destination system address (no such domain)",
        "RFC 3463",
    ),
    (1, 3, "bad destination mailbox address syntax", "RFC 3463"),
    (
        1,
        4,
        "the destination mailbox address is ambiguous",
        "RFC 3463",
    ),
    (1, 5, "the destination address is valid", "RFC 3463"),
    (
        1,
        6,
        "the destination mailbox has moved, with no forwarding address",
        "RFC 3463",
    ),
    (1, 7, "bad sender's mailbox address syntax", "RFC 3463"),
    (1, 8, "bad sender's system address", "RFC 3463"),
    (
        1,
        9,
        "the message was relayed to a mailer that cannot return status",
        "RFC 3886",
    ),
    (
        1,
        10,
        "the recipient's domain has a null MX: it accepts no mail",
        "RFC 7505",
    ),
    (2, 0, "other or undefined mailbox status", "RFC 3463"),
    (
        2,
        1,
        "the mailbox is disabled and accepts no messages",
        "RFC 3463",
    ),
    (2, 2, "the mailbox is full", "RFC 3463"),
    (
        2,
        3,
        "the message is longer than the mailbox allows",
        "RFC 3463",
    ),
    (2, 4, "a mailing list could not be expanded", "RFC 3463"),
    (3, 0, "other or undefined mail system status", "RFC 3463"),
    (3, 1, "the mail system is full", "RFC 3463"),
    (
        3,
        2,
        "the system is not accepting network messages",
        "RFC 3463",
    ),
    (
        3,
        3,
        "the system cannot do the features the message asks for",
        "RFC 3463",
    ),
    (3, 4, "the message is too big for the system", "RFC 3463"),
    (3, 5, "the system is configured wrongly", "RFC 3463"),
    (3, 6, "the requested priority was changed", "RFC 6710"),
    (
        4,
        0,
        "other or undefined network or routing status",
        "RFC 3463",
    ),
    (4, 1, "no answer from the host", "RFC 3463"),
    (4, 2, "a bad connection", "RFC 3463"),
    (4, 3, "a directory (DNS) server failure", "RFC 3463"),
    (4, 4, "unable to route the message", "RFC 3463"),
    (4, 5, "the mail system is congested", "RFC 3463"),
    (4, 6, "a routing loop was detected", "RFC 3463"),
    (4, 7, "the delivery time expired", "RFC 3463"),
    (5, 0, "other or undefined protocol status", "RFC 3463"),
    (5, 1, "an invalid command", "RFC 3463"),
    (5, 2, "a syntax error", "RFC 3463"),
    (5, 3, "too many recipients", "RFC 3463"),
    (5, 4, "invalid command arguments", "RFC 3463"),
    (5, 5, "the wrong protocol version", "RFC 3463"),
    (
        5,
        6,
        "an authentication exchange line is too long",
        "RFC 4954",
    ),
    (6, 0, "other or undefined media error", "RFC 3463"),
    (6, 1, "the media type is not supported", "RFC 3463"),
    (6, 2, "a conversion is required and prohibited", "RFC 3463"),
    (
        6,
        3,
        "a conversion is required but not supported",
        "RFC 3463",
    ),
    (6, 4, "a conversion was done, with loss", "RFC 3463"),
    (6, 5, "a conversion failed", "RFC 3463"),
    (6, 6, "the message content is not available", "RFC 4468"),
    (
        6,
        7,
        "non-ASCII addresses are not permitted for that sender or recipient",
        "RFC 6531",
    ),
    (
        6,
        8,
        "a UTF-8 reply is required, but the client does not permit it",
        "RFC 6531",
    ),
    (
        6,
        9,
        "a message with UTF-8 headers cannot be passed on to a recipient",
        "RFC 6531",
    ),
    (6, 10, "a duplicate of X.6.8, deprecated", "RFC 6531"),
    (7, 0, "other or undefined security status", "RFC 3463"),
    (
        7,
        1,
        "delivery not authorized, the message is refused",
        "RFC 3463",
    ),
    (7, 2, "expanding the mailing list is prohibited", "RFC 3463"),
    (
        7,
        3,
        "a security conversion is required but not possible",
        "RFC 3463",
    ),
    (7, 4, "security features are not supported", "RFC 3463"),
    (7, 5, "a cryptographic failure", "RFC 3463"),
    (
        7,
        6,
        "the cryptographic algorithm is not supported",
        "RFC 3463",
    ),
    (7, 7, "the message integrity check failed", "RFC 3463"),
    (
        7,
        8,
        "the authentication credentials are invalid",
        "RFC 4954",
    ),
    (7, 9, "the authentication mechanism is too weak", "RFC 4954"),
    (7, 10, "encryption is needed", "RFC 5248"),
    (
        7,
        11,
        "the authentication mechanism needs encryption",
        "RFC 4954",
    ),
    (7, 12, "a password transition is needed", "RFC 4954"),
    (7, 13, "the user account is disabled", "RFC 5248"),
    (7, 14, "a trust relationship is required", "RFC 5248"),
    (7, 15, "the priority level is too low", "RFC 6710"),
    (7, 16, "the message is too big for its priority", "RFC 6710"),
    (7, 17, "the mailbox owner has changed", "RFC 7293"),
    (7, 18, "the domain owner has changed", "RFC 7293"),
    (7, 19, "the RRVS test cannot be completed", "RFC 7293"),
    (7, 20, "no passing DKIM signature was found", "RFC 7372"),
    (7, 21, "no acceptable DKIM signature was found", "RFC 7372"),
    (
        7,
        22,
        "no valid DKIM signature matches the author",
        "RFC 7372",
    ),
    (7, 23, "SPF validation failed", "RFC 7372"),
    (7, 24, "SPF validation hit an error", "RFC 7372"),
    (7, 25, "reverse DNS validation failed", "RFC 7372"),
    (7, 26, "several authentication checks failed", "RFC 7372"),
    (
        7,
        27,
        "the sender's domain has a null MX: it accepts no mail",
        "RFC 7505",
    ),
    (7, 28, "a mail flood was detected", "the IANA registry"),
    (7, 29, "ARC validation failed", "RFC 8617"),
    (7, 30, "REQUIRETLS support is required", "RFC 8689"),
];

/// The meaning of `class.subject.detail` (e.g. `5.7.8`), or why it is not one.
pub(crate) fn enhanced(code: &str) -> Option<(String, &'static str)> {
    let mut parts = code.split('.');
    let (class_part, subject_part, detail_part) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let class_text = class(class_part)?;
    let subject_number: u8 = subject_part.parse().ok()?;
    let detail_number: u16 = detail_part.parse().ok()?;
    let subject_text = subject(subject_part).unwrap_or("an unregistered subject");
    let found = ENHANCED
        .iter()
        .find(|(s, d, _, _)| *s == subject_number && u16::from(*d) == detail_number);
    Some(match found {
        Some((_, _, meaning, source)) => (
            format!("{code}: {class_text}; {subject_text}; {meaning}"),
            *source,
        ),
        None => (
            format!(
                "{code}: {class_text}; {subject_text}; detail {detail_number} is not in the IANA registry (a server's own code)"
            ),
            "RFC 3463 §2",
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_code_is_explained() {
        for (subject_number, detail, meaning, source) in ENHANCED {
            for class_digit in ["2", "4", "5"] {
                let code = format!("{class_digit}.{subject_number}.{detail}");
                let (text, from) = enhanced(&code).unwrap_or_else(|| panic!("{code}"));
                assert!(text.contains(meaning), "{code}: {text}");
                assert_eq!(&from, source);
            }
        }
        // Every subject of the registry has its detail 0.
        for subject_number in 0..=7u8 {
            assert!(
                ENHANCED
                    .iter()
                    .any(|(s, d, _, _)| *s == subject_number && *d == 0)
            );
        }
        assert_eq!(ENHANCED.len(), 81, "the registry's enumerated codes");
    }

    #[test]
    fn enhanced_codes_read_as_class_subject_detail() {
        let cases = [
            (
                "5.7.8",
                "5.7.8: a permanent failure (the message or the address must change); security or policy; the authentication credentials are invalid",
            ),
            ("2.1.0", "2.1.0: success; addressing; other address status"),
            (
                "4.7.1",
                "4.7.1: a persistent transient failure (it may work later); security or policy; delivery not authorized, the message is refused",
            ),
            (
                "5.7.139",
                "5.7.139: a permanent failure (the message or the address must change); security or policy; detail 139 is not in the IANA registry (a server's own code)",
            ),
        ];
        for (code, want) in cases {
            assert_eq!(enhanced(code).map(|(text, _)| text).as_deref(), Some(want));
        }
        for bad in ["3.1.1", "5.x.1", "5.1", "5.1.1.1", ""] {
            assert!(enhanced(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn reply_codes() {
        for code in [
            211, 214, 220, 221, 235, 250, 251, 252, 334, 354, 421, 432, 450, 451, 452, 454, 455,
            500, 501, 502, 503, 504, 521, 530, 534, 535, 538, 550, 551, 552, 553, 554, 555, 556,
        ] {
            let (meaning, source) = reply(code).unwrap_or_else(|| panic!("{code}"));
            assert!(!meaning.is_empty() && source.starts_with("RFC "), "{code}");
        }
        assert!(reply(299).is_none());
        assert_eq!(first_digit(b'5'), "5 = failed for good");
        assert_eq!(second_digit(b'5'), "5 = the mail system");
    }
}
