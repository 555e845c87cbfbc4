//! What the words of a dialogue mean: the commands, the EHLO keywords (the IANA SMTP Service
//! Extensions registry, and a few common private ones), the SASL mechanisms, and the MAIL and
//! RCPT parameters.

use super::Note;

/// A client command verb: what it does, and where it is defined.
pub(crate) fn command(verb: &str) -> Option<(&'static str, &'static str)> {
    Some(match verb {
        "EHLO" => (
            "EHLO greets the server with the client's name and asks which extensions it offers",
            "RFC 5321 §4.1.1.1",
        ),
        "HELO" => (
            "HELO greets the server the old way: no extensions (the fallback when EHLO is not known)",
            "RFC 5321 §4.1.1.1",
        ),
        "STARTTLS" => (
            "STARTTLS asks to turn this connection into a TLS one before anything private is sent",
            "RFC 3207 §4",
        ),
        "AUTH" => ("AUTH starts a SASL login", "RFC 4954 §4"),
        "MAIL" => (
            "MAIL FROM starts a transaction and gives the envelope sender (where bounces go)",
            "RFC 5321 §4.1.1.2",
        ),
        "RCPT" => (
            "RCPT TO names one envelope recipient (To, Cc and Bcc alike)",
            "RFC 5321 §4.1.1.3",
        ),
        "DATA" => (
            "DATA asks to send the message itself; the server should answer 354",
            "RFC 5321 §4.1.1.4",
        ),
        "BDAT" => (
            "BDAT sends a chunk of the message of an exact size, no dot-stuffing; LAST marks the end",
            "RFC 3030 §2",
        ),
        "RSET" => ("RSET aborts the current transaction", "RFC 5321 §4.1.1.5"),
        "VRFY" => ("VRFY asks whether a user exists", "RFC 5321 §4.1.1.6"),
        "EXPN" => (
            "EXPN asks for the members of a mailing list",
            "RFC 5321 §4.1.1.7",
        ),
        "HELP" => ("HELP asks the server for help text", "RFC 5321 §4.1.1.8"),
        "NOOP" => (
            "NOOP does nothing; the server just answers 250",
            "RFC 5321 §4.1.1.9",
        ),
        "QUIT" => (
            "QUIT asks the server to close the connection; it answers 221",
            "RFC 5321 §4.1.1.10",
        ),
        _ => return None,
    })
}

/// An EHLO keyword (RFC 5321 §4.1.1.1: one per line after the first), with its argument.
pub(crate) fn keyword(keyword: &str, argument: &str) -> (String, &'static str) {
    known_keyword(keyword, argument).unwrap_or_else(|| {
        (
            format!(
                "{keyword}: an extension this explainer does not know (not in the IANA registry)"
            ),
            "RFC 5321 §4.1.1.1",
        )
    })
}

/// What an EHLO keyword offers, for a description of the server (`--serverinfo`): the
/// explanation `--explain` gives, without the keyword it starts with, and where it is
/// defined; the SIZE limit in MiB and in octets. `None` for a keyword this tool does not
/// know.
pub fn ehlo_offer(keyword: &str, parameters: &str) -> Option<Note> {
    if keyword.eq_ignore_ascii_case("SIZE") {
        let parameters = parameters.trim();
        let text = match parameters.parse::<u64>() {
            Ok(limit) if limit > 0 => {
                format!("the server accepts messages up to {}", size_in_words(limit))
            }
            // RFC 1870 §4: no number (or 0) means no fixed limit.
            Ok(_) => "the server announces no fixed limit on message size".to_owned(),
            Err(_) if parameters.is_empty() => {
                "the server announces no fixed limit on message size".to_owned()
            }
            Err(_) => format!("the server announces a limit that is not a number ({parameters})"),
        };
        return Some(Note::new(text, "RFC 1870 §4"));
    }
    let (text, source) = known_keyword(keyword, parameters)?;
    // Each explanation reads `KEYWORD …: meaning`; a description shows the keyword itself.
    let meaning = text
        .split_once(": ")
        .map_or(text.as_str(), |(_, meaning)| meaning);
    Some(Note::new(meaning, source))
}

/// A message size for people, and exactly: `35 MiB (36700160 octets)`; below 1 KiB only
/// the octets, `500 octets`.
pub fn size_in_words(octets: u64) -> String {
    if octets < 1024 {
        return bytes(octets);
    }
    format!("{} ({octets} octets)", bytes(octets))
}

/// A registered (or common private) EHLO keyword's explanation; `None` for any other.
fn known_keyword(keyword: &str, argument: &str) -> Option<(String, &'static str)> {
    let upper = keyword.to_ascii_uppercase();
    let (text, source): (String, &'static str) = match upper.as_str() {
        "PIPELINING" => (
            "PIPELINING: the client may send several commands without waiting for each reply"
                .into(),
            "RFC 2920",
        ),
        "SIZE" => (size(argument), "RFC 1870 §4"),
        "8BITMIME" => (
            "8BITMIME: the message may contain 8-bit bytes (BODY=8BITMIME on MAIL)".into(),
            "RFC 6152",
        ),
        "SMTPUTF8" => (
            "SMTPUTF8: addresses and headers may be UTF-8 (SMTPUTF8 on MAIL)".into(),
            "RFC 6531",
        ),
        "ENHANCEDSTATUSCODES" => (
            "ENHANCEDSTATUSCODES: replies carry a class.subject.detail code after the reply code"
                .into(),
            "RFC 2034",
        ),
        "STARTTLS" => (
            "STARTTLS: the server can switch this connection to TLS".into(),
            "RFC 3207",
        ),
        "AUTH" => (auth(argument), "RFC 4954 §3"),
        "CHUNKING" => (
            "CHUNKING: the message may be sent in BDAT chunks instead of DATA".into(),
            "RFC 3030",
        ),
        "BINARYMIME" => (
            "BINARYMIME: binary MIME parts may be sent unencoded (with CHUNKING)".into(),
            "RFC 3030 §3",
        ),
        "DSN" => (
            "DSN: the client may ask for delivery status notifications (NOTIFY, RET, ENVID, ORCPT)"
                .into(),
            "RFC 3461",
        ),
        "REQUIRETLS" => (
            "REQUIRETLS: the client may require TLS on every hop of the message's path".into(),
            "RFC 8689",
        ),
        "DELIVERBY" => (
            "DELIVERBY: the client may set a time by which the message must be delivered".into(),
            "RFC 2852",
        ),
        "ETRN" => (
            "ETRN: a client may ask the server to flush its queue for a domain".into(),
            "RFC 1985",
        ),
        "VRFY" => ("VRFY: the server answers VRFY".into(), "RFC 5321 §3.5"),
        "EXPN" => ("EXPN: the server answers EXPN".into(), "RFC 5321 §3.5"),
        "HELP" => ("HELP: the server answers HELP".into(), "RFC 5321 §4.1.1.8"),
        "BURL" => (
            "BURL: the message may be fetched from an IMAP URL instead of sent".into(),
            "RFC 4468",
        ),
        "MT-PRIORITY" => (
            "MT-PRIORITY: the client may give the message a priority".into(),
            "RFC 6710",
        ),
        "FUTURERELEASE" => (
            "FUTURERELEASE: the client may ask to hold the message until a later time".into(),
            "RFC 4865",
        ),
        "LIMITS" => (
            format!("LIMITS: the server announces its limits ({argument})"),
            "RFC 9422",
        ),
        "RRVS" => (
            "RRVS: the client may ask that the recipient be the same owner since a date".into(),
            "RFC 7293",
        ),
        "MTRK" => ("MTRK: message tracking".into(), "RFC 3885"),
        "NO-SOLICITING" => (
            "NO-SOLICITING: the server states its solicitation policy".into(),
            "RFC 3865",
        ),
        "CONPERM" | "CONNEG" => (
            format!("{upper}: content conversion permission and negotiation"),
            "RFC 4141",
        ),
        "CHECKPOINT" => (
            "CHECKPOINT: an interrupted transfer can restart where it stopped".into(),
            "RFC 1845",
        ),
        "SEND" | "SOML" | "SAML" | "TURN" => (
            format!("{upper}: an obsolete command from RFC 821"),
            "RFC 5321 appendix F",
        ),
        "XCLIENT" | "XFORWARD" => (
            format!(
                "{upper}: a Postfix extension for proxies to pass on the real client's details"
            ),
            "Postfix's documentation",
        ),
        "VERB" | "ONEX" => (
            format!("{upper}: an old Sendmail extension"),
            "the IANA registry",
        ),
        _ => return None,
    };
    Some((text, source))
}

/// `SIZE n` with the limit in words.
fn size(argument: &str) -> String {
    match argument.trim().parse::<u64>() {
        Ok(0) | Err(_) => "SIZE: the server announces no fixed limit on message size".into(),
        Ok(limit) => format!(
            "SIZE {limit}: the server accepts messages up to {} (SIZE=n on MAIL declares a message's size)",
            bytes(limit)
        ),
    }
}

/// A size for people: `35 MiB`, `500 octets`.
pub(crate) fn bytes(n: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if n >= MIB {
        let whole = n / MIB;
        let tenths = (n % MIB) * 10 / MIB;
        if tenths == 0 {
            format!("{whole} MiB")
        } else {
            format!("{whole}.{tenths} MiB")
        }
    } else if n >= 1024 {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} octets")
    }
}

/// `AUTH mechanisms…`, each mechanism named.
fn auth(argument: &str) -> String {
    let names: Vec<String> = argument
        .split_ascii_whitespace()
        .map(|mechanism| match sasl(mechanism) {
            Some((what, source)) => format!("{mechanism} ({what}, {source})"),
            None => format!("{mechanism} (a mechanism this explainer does not know)"),
        })
        .collect();
    if names.is_empty() {
        "AUTH: the server offers SASL login, but names no mechanism".into()
    } else {
        format!(
            "AUTH: the server offers SASL login with {}",
            names.join(", ")
        )
    }
}

/// A SASL mechanism: what it is, and where it is defined.
pub(crate) fn sasl(mechanism: &str) -> Option<(&'static str, &'static str)> {
    Some(match mechanism.to_ascii_uppercase().as_str() {
        "PLAIN" => ("user name and password in one base64 message", "RFC 4616"),
        "LOGIN" => (
            "user name and password in two base64 answers",
            "draft-murchison-sasl-login",
        ),
        "XOAUTH2" => (
            "an OAuth 2.0 access token, Google's and Microsoft's format",
            "Google's XOAUTH2 protocol",
        ),
        "OAUTHBEARER" => ("an OAuth 2.0 bearer token", "RFC 7628"),
        "SCRAM-SHA-1" | "SCRAM-SHA-1-PLUS" => (
            "a salted challenge-response: the password never crosses the wire",
            "RFC 5802",
        ),
        "SCRAM-SHA-256" | "SCRAM-SHA-256-PLUS" => (
            "a salted challenge-response with SHA-256: the password never crosses the wire",
            "RFC 7677",
        ),
        "CRAM-MD5" => ("an MD5 challenge-response, now discouraged", "RFC 2195"),
        "DIGEST-MD5" => ("an MD5 digest exchange, historic", "RFC 6331"),
        "GSSAPI" => ("Kerberos", "RFC 4752"),
        "EXTERNAL" => (
            "an identity established outside SASL, such as a TLS client certificate",
            "RFC 4422 appendix A",
        ),
        "ANONYMOUS" => ("no credentials", "RFC 4505"),
        "NTLM" => ("Microsoft's NTLM", "Microsoft's documentation"),
        "XOAUTH" => (
            "Google's older OAuth 1.0 mechanism",
            "Google's documentation",
        ),
        "PLAIN-CLIENTTOKEN" => ("a Google variant of PLAIN", "Google's documentation"),
        _ => return None,
    })
}

/// A MAIL FROM or RCPT TO parameter (`KEYWORD` or `KEYWORD=value`).
pub(crate) fn parameter(parameter: &str) -> (String, &'static str) {
    let (keyword, value) = parameter.split_once('=').unwrap_or((parameter, ""));
    match keyword.to_ascii_uppercase().as_str() {
        "BODY" => match value.to_ascii_uppercase().as_str() {
            "8BITMIME" => (
                "BODY=8BITMIME: the message contains 8-bit bytes".into(),
                "RFC 6152 §3",
            ),
            "7BIT" => (
                "BODY=7BIT: the message is plain 7-bit ASCII".into(),
                "RFC 6152 §3",
            ),
            "BINARYMIME" => (
                "BODY=BINARYMIME: the message has binary parts (sent with BDAT)".into(),
                "RFC 3030 §3",
            ),
            _ => (format!("{parameter}: an unknown BODY type"), "RFC 6152 §3"),
        },
        "SMTPUTF8" => (
            "SMTPUTF8: this message uses UTF-8 addresses or headers".into(),
            "RFC 6531 §3.4",
        ),
        "SIZE" => (
            format!(
                "SIZE={value}: the client declares the message's size, so the server can refuse it now"
            ),
            "RFC 1870 §6",
        ),
        "RET" => (
            format!("{parameter}: what a delivery status notification should return"),
            "RFC 3461 §4.3",
        ),
        "ENVID" => (
            "ENVID: an envelope identifier for delivery status notifications".into(),
            "RFC 3461 §4.4",
        ),
        "NOTIFY" => (
            format!("{parameter}: when to send a delivery status notification for this recipient"),
            "RFC 3461 §4.1",
        ),
        "ORCPT" => (
            "ORCPT: the recipient's original address, for delivery status notifications".into(),
            "RFC 3461 §4.2",
        ),
        "AUTH" => (
            "AUTH=: the identity that submitted the message".into(),
            "RFC 4954 §5",
        ),
        "REQUIRETLS" => (
            "REQUIRETLS: every hop must use TLS for this message".into(),
            "RFC 8689 §4",
        ),
        "MT-PRIORITY" => (format!("{parameter}: the message's priority"), "RFC 6710"),
        "BY" => (format!("{parameter}: deliver by this time"), "RFC 2852"),
        "HOLDFOR" | "HOLDUNTIL" => (
            format!("{parameter}: hold the message until later"),
            "RFC 4865",
        ),
        _ => (
            format!("{parameter}: a parameter this explainer does not know"),
            "RFC 5321 §4.1.2",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_keyword_is_known() {
        for name in [
            "PIPELINING",
            "SIZE",
            "8BITMIME",
            "SMTPUTF8",
            "ENHANCEDSTATUSCODES",
            "STARTTLS",
            "AUTH",
            "CHUNKING",
            "BINARYMIME",
            "DSN",
            "REQUIRETLS",
            "DELIVERBY",
            "ETRN",
            "VRFY",
            "EXPN",
            "HELP",
            "BURL",
            "MT-PRIORITY",
            "FUTURERELEASE",
            "LIMITS",
            "RRVS",
            "MTRK",
            "NO-SOLICITING",
            "CONPERM",
            "CONNEG",
            "CHECKPOINT",
            "SEND",
            "SOML",
            "SAML",
            "TURN",
            "VERB",
            "ONEX",
        ] {
            let (text, _) = keyword(name, "");
            assert!(!text.contains("does not know"), "{name}: {text}");
        }
        let (unknown, _) = keyword("X-FROBNICATE", "");
        assert!(unknown.contains("does not know"));
    }

    #[test]
    fn sizes_and_mechanisms_are_spelled_out() {
        assert_eq!(
            keyword("SIZE", "36700160").0,
            "SIZE 36700160: the server accepts messages up to 35 MiB (SIZE=n on MAIL declares a message's size)"
        );
        assert!(keyword("size", "0").0.contains("no fixed limit"));
        assert!(keyword("SIZE", "500").0.contains("500 octets"));
        let auth = keyword("AUTH", "PLAIN LOGIN XOAUTH2").0;
        assert!(auth.contains("PLAIN (user name and password in one base64 message, RFC 4616)"));
        assert!(auth.contains("XOAUTH2 ("), "{auth}");
        assert_eq!(bytes(157_286_400), "150 MiB");
        assert_eq!(bytes(35_882_577), "34.2 MiB");
    }

    #[test]
    fn sizes_in_words_give_the_exact_octets_too() {
        for (octets, words) in [
            (36_700_160, "35 MiB (36700160 octets)"),
            (35_882_577, "34.2 MiB (35882577 octets)"),
            (10_240, "10 KiB (10240 octets)"),
            (1024, "1 KiB (1024 octets)"),
            (1023, "1023 octets"),
            (0, "0 octets"),
        ] {
            assert_eq!(size_in_words(octets), words, "{octets}");
        }
    }

    #[test]
    fn offers_are_the_explanations_without_their_keyword() {
        let offer = |keyword: &str, parameters: &str| {
            ehlo_offer(keyword, parameters).map(|note| (note.text, note.rfc))
        };
        assert_eq!(
            offer("SIZE", "36700160"),
            Some((
                "the server accepts messages up to 35 MiB (36700160 octets)".to_owned(),
                Some("RFC 1870 §4".to_owned())
            ))
        );
        for parameters in ["", "0"] {
            let (text, _) = offer("size", parameters).expect("SIZE is known");
            assert_eq!(text, "the server announces no fixed limit on message size");
        }
        let (text, _) = offer("SIZE", "lots").expect("SIZE is known");
        assert!(text.contains("not a number (lots)"), "{text}");
        let (text, rfc) = offer("PIPELINING", "").expect("PIPELINING is known");
        assert_eq!(
            text,
            "the client may send several commands without waiting for each reply"
        );
        assert_eq!(rfc.as_deref(), Some("RFC 2920"));
        let (text, _) = offer("AUTH", "PLAIN LOGIN").expect("AUTH is known");
        assert!(
            text.starts_with("the server offers SASL login with PLAIN ("),
            "{text}"
        );
        assert!(text.contains("LOGIN ("), "{text}");
        assert_eq!(offer("X-FROBNICATE", "1"), None);
        // The explanation --explain gives is unchanged.
        assert_eq!(
            keyword("PIPELINING", "").0,
            "PIPELINING: the client may send several commands without waiting for each reply"
        );
    }

    #[test]
    fn parameters() {
        assert_eq!(
            parameter("BODY=8BITMIME"),
            (
                "BODY=8BITMIME: the message contains 8-bit bytes".into(),
                "RFC 6152 §3"
            )
        );
        assert!(parameter("SIZE=1234").0.starts_with("SIZE=1234: "));
        assert!(
            parameter("NOTIFY=SUCCESS,FAILURE")
                .0
                .contains("delivery status")
        );
        assert!(parameter("X-ODD").0.contains("does not know"));
        for verb in [
            "EHLO", "HELO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "VRFY",
            "EXPN", "HELP", "NOOP", "QUIT",
        ] {
            assert!(command(verb).is_some(), "{verb}");
        }
    }
}
