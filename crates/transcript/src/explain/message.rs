//! The message inside DATA: header fields (RFC 5322 §3.6, MIME's RFC 2045/2047/2183), the
//! empty line that ends the header, MIME boundaries (RFC 2046 §5.1.1), and body blocks.

/// A header field by name: what it is for, and where it is defined.
pub(crate) fn header(name: &str) -> (String, &'static str) {
    let (text, source): (&str, &'static str) = match name.to_ascii_lowercase().as_str() {
        "date" => ("Date: when the message was written", "RFC 5322 §3.6.1"),
        "from" => ("From: who wrote the message", "RFC 5322 §3.6.2"),
        "sender" => (
            "Sender: who sent it, when not the author",
            "RFC 5322 §3.6.2",
        ),
        "reply-to" => ("Reply-To: where replies should go", "RFC 5322 §3.6.2"),
        "to" => ("To: the primary recipients", "RFC 5322 §3.6.3"),
        "cc" => ("Cc: recipients who get a copy", "RFC 5322 §3.6.3"),
        "bcc" => (
            "Bcc: hidden recipients (normally removed before sending)",
            "RFC 5322 §3.6.3",
        ),
        "message-id" => (
            "Message-ID: a unique identifier for this message",
            "RFC 5322 §3.6.4",
        ),
        "in-reply-to" => (
            "In-Reply-To: the message this one answers",
            "RFC 5322 §3.6.4",
        ),
        "references" => (
            "References: the thread this message belongs to",
            "RFC 5322 §3.6.4",
        ),
        "subject" => ("Subject: the topic of the message", "RFC 5322 §3.6.5"),
        "comments" => ("Comments: remarks about the message", "RFC 5322 §3.6.5"),
        "keywords" => ("Keywords: words about the message", "RFC 5322 §3.6.5"),
        "return-path" => (
            "Return-Path: the envelope sender, added at final delivery",
            "RFC 5322 §3.6.7",
        ),
        "received" => ("Received: a trace line each relay adds", "RFC 5321 §4.4"),
        "mime-version" => (
            "MIME-Version: this message uses MIME (always 1.0)",
            "RFC 2045 §4",
        ),
        "content-type" => (
            "Content-Type: the media type of the content that follows",
            "RFC 2045 §5",
        ),
        "content-transfer-encoding" => (
            "Content-Transfer-Encoding: how the content is encoded to travel as text",
            "RFC 2045 §6",
        ),
        "content-id" => ("Content-ID: an identifier for this part", "RFC 2045 §7"),
        "content-description" => (
            "Content-Description: a description of this part",
            "RFC 2045 §8",
        ),
        "content-disposition" => (
            "Content-Disposition: show this part inline, or offer it as an attachment (and its file name)",
            "RFC 2183",
        ),
        "content-language" => ("Content-Language: the language of this part", "RFC 3282"),
        "dkim-signature" => (
            "DKIM-Signature: a domain's signature over the message",
            "RFC 6376",
        ),
        "authentication-results" => (
            "Authentication-Results: what a receiver's checks found",
            "RFC 8601",
        ),
        "list-unsubscribe" => ("List-Unsubscribe: how to leave the list", "RFC 2369"),
        "auto-submitted" => (
            "Auto-Submitted: the message was sent by a program",
            "RFC 3834",
        ),
        lower if lower.starts_with("resent-") => (
            "a Resent- field: this message was resent, and the field tells by whom or when",
            "RFC 5322 §3.6.6",
        ),
        lower if lower.starts_with("x-") => (
            "a private header field (X-…): any name not defined by an RFC is allowed",
            "RFC 5322 §3.6.8",
        ),
        _ => ("an optional header field", "RFC 5322 §3.6.8"),
    };
    (text.to_owned(), source)
}

/// The `boundary` parameter of a `multipart/*` Content-Type value, if any.
pub(crate) fn boundary(content_type: &str) -> Option<String> {
    let lower = content_type.to_ascii_lowercase();
    if !lower.trim_start().starts_with("multipart/") {
        return None;
    }
    let at = lower.find("boundary=")?;
    let value = &content_type[at + "boundary=".len()..];
    let value = value.trim_start();
    let value = match value.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next()?,
        None => value.split([';', ' ', '\t']).next()?,
    };
    (!value.is_empty()).then(|| value.to_owned())
}

/// What a Content-Transfer-Encoding value means for the lines of the body.
pub(crate) fn encoding(value: &str) -> (&'static str, &'static str) {
    match value.trim().to_ascii_lowercase().as_str() {
        "base64" => ("base64-encoded content", "RFC 2045 §6.8"),
        "quoted-printable" => ("quoted-printable text", "RFC 2045 §6.7"),
        "8bit" => ("8-bit text", "RFC 2045 §6.2"),
        "binary" => ("binary content", "RFC 2045 §6.2"),
        _ => ("text", "RFC 5322 §2.3"),
    }
}

/// Whether a header value holds an RFC 2047 encoded word (`=?charset?Q?…?=`).
pub(crate) fn has_encoded_word(value: &str) -> bool {
    value
        .find("=?")
        .is_some_and(|at| value[at + 2..].contains("?="))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_are_read_from_multipart_types() {
        assert_eq!(
            boundary("multipart/mixed; boundary=\"=_abc\"").as_deref(),
            Some("=_abc")
        );
        assert_eq!(
            boundary("multipart/alternative; boundary=xyz; charset=x").as_deref(),
            Some("xyz")
        );
        assert_eq!(boundary("text/plain; boundary=xyz"), None);
        assert_eq!(boundary("multipart/mixed"), None);
    }

    #[test]
    fn headers_and_encodings() {
        assert_eq!(header("Date").1, "RFC 5322 §3.6.1");
        assert_eq!(header("message-id").1, "RFC 5322 §3.6.4");
        assert_eq!(header("Content-Disposition").1, "RFC 2183");
        assert_eq!(header("Resent-From").1, "RFC 5322 §3.6.6");
        assert_eq!(header("X-Mailer").1, "RFC 5322 §3.6.8");
        assert_eq!(encoding("BASE64").1, "RFC 2045 §6.8");
        assert!(has_encoded_word("=?UTF-8?Q?Gr=C3=BC=C3=9Fe?="));
        assert!(!has_encoded_word("plain = text"));
    }
}
