//! What the web inbox shows of a stored message, read with mail-parser: the summary of the
//! list, the decoded headers, the text and HTML, the MIME tree, and attachments under names
//! that are safe to save.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use mail_parser::{
    Address, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType,
};
use serde::Serialize;

/// The parsed message, or `None` when mail-parser finds no message at all in the bytes.
pub(crate) fn parse(data: &[u8]) -> Option<Message<'_>> {
    MessageParser::default().parse(data)
}

/// Every address of a header as `Name <address>` (or the address alone).
pub(crate) fn addresses(address: Option<&Address<'_>>) -> Vec<String> {
    let Some(address) = address else {
        return Vec::new();
    };
    address
        .iter()
        .map(|addr| match (addr.name(), addr.address()) {
            (Some(name), Some(address)) => format!("{name} <{address}>"),
            (None, Some(address)) => address.to_owned(),
            (Some(name), None) => name.to_owned(),
            (None, None) => String::new(),
        })
        .collect()
}

/// The header fields in order, each value decoded (RFC 2047 words, address lists, dates)
/// as one line.
pub(crate) fn headers(message: &Message<'_>) -> Vec<(String, String)> {
    let raw = message.raw_message();
    message
        .root_part()
        .headers()
        .iter()
        .map(|header| {
            let decoded = match header.value() {
                HeaderValue::Text(text) => Some(text.to_string()),
                HeaderValue::TextList(list) => Some(list.join(", ")),
                HeaderValue::Address(address) => Some(addresses(Some(address)).join(", ")),
                HeaderValue::DateTime(date) => Some(date.to_rfc822()),
                HeaderValue::ContentType(_) | HeaderValue::Received(_) | HeaderValue::Empty => None,
            };
            let value = decoded.unwrap_or_else(|| {
                // As written, unfolded: structured fields read best so.
                let range = header.offset_start() as usize..header.offset_end() as usize;
                let bytes = raw.get(range).unwrap_or_default();
                unfold(&String::from_utf8_lossy(bytes))
            });
            (header.name().to_owned(), value)
        })
        .collect()
}

fn unfold(value: &str) -> String {
    value
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|piece| !piece.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// One node of the MIME tree.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PartNode {
    /// The part's number in the message (the root is 0), for `/parts/{part}`.
    pub(crate) part: String,
    pub(crate) content_type: String,
    /// The attachment's name, made safe ([`safe_name`]).
    pub(crate) filename: Option<String>,
    /// Decoded octets.
    pub(crate) size: usize,
    pub(crate) disposition: Option<String>,
    pub(crate) children: Vec<PartNode>,
}

/// The declared type of a part, such as `text/plain; charset=utf-8`, or RFC 2045's
/// default when it declares none.
pub(crate) fn content_type(part: &MessagePart<'_>) -> String {
    let Some(declared) = part.content_type() else {
        return "text/plain".to_owned();
    };
    let mut text = declared.ctype().to_ascii_lowercase();
    if let Some(subtype) = declared.subtype() {
        text.push('/');
        text.push_str(&subtype.to_ascii_lowercase());
    }
    if let Some(charset) = declared.attribute("charset") {
        text.push_str("; charset=");
        text.push_str(charset);
    }
    text
}

/// The bare media type of a part, such as `image/png`, fit for a Content-Type header: only
/// token characters, else `application/octet-stream`.
pub(crate) fn media_type(part: &MessagePart<'_>) -> String {
    let declared = content_type(part);
    let bare = declared.split(';').next().unwrap_or("").trim().to_owned();
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match bare.split_once('/') {
        Some((kind, sub)) if token(kind) && token(sub) => bare,
        _ => "application/octet-stream".to_owned(),
    }
}

/// The decoded contents of a part (text as UTF-8).
pub(crate) fn contents<'a>(part: &'a MessagePart<'_>) -> Cow<'a, [u8]> {
    match &part.body {
        PartType::Text(text) | PartType::Html(text) => Cow::Borrowed(text.as_bytes()),
        PartType::Binary(bytes) | PartType::InlineBinary(bytes) => Cow::Borrowed(bytes),
        PartType::Message(message) => Cow::Borrowed(message.raw_message()),
        PartType::Multipart(_) => Cow::Borrowed(&[]),
    }
}

/// The MIME tree from part `index` down.
pub(crate) fn tree(message: &Message<'_>, index: u32) -> PartNode {
    let part = message.part(index);
    let children = match part.map(|p| &p.body) {
        Some(PartType::Multipart(ids)) => ids
            .iter()
            .filter(|&&id| id != index)
            .map(|&id| tree(message, id))
            .collect(),
        _ => Vec::new(),
    };
    PartNode {
        part: index.to_string(),
        content_type: part.map(content_type).unwrap_or_default(),
        filename: part
            .and_then(|p| p.attachment_name())
            .map(|name| safe_name(name, index)),
        size: part.map_or(0, |p| contents(p).len()),
        disposition: part
            .and_then(|p| p.content_disposition())
            .map(|d| d.ctype().to_ascii_lowercase()),
        children,
    }
}

/// An attachment of the list.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Attachment {
    pub(crate) part: String,
    pub(crate) filename: String,
    pub(crate) content_type: String,
    pub(crate) size: usize,
}

/// The message's attachments, each under a safe name.
pub(crate) fn attachments(message: &Message<'_>) -> Vec<Attachment> {
    message
        .attachments
        .iter()
        .filter_map(|&id| message.part(id).map(|part| (id, part)))
        .map(|(id, part)| Attachment {
            part: id.to_string(),
            filename: part
                .attachment_name()
                .map_or_else(|| fallback_name(id), |name| safe_name(name, id)),
            content_type: content_type(part),
            size: contents(part).len(),
        })
        .collect()
}

fn fallback_name(index: u32) -> String {
    format!("part-{index}.bin")
}

/// A file name that is safe to offer for saving: the last path component only (no `../`,
/// no directories, either slash), without control characters, quotes or a leading dot, at
/// most 120 characters; `part-N.bin` when nothing is left.
pub(crate) fn safe_name(given: &str, index: u32) -> String {
    let last = given.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| match c {
            '"' | '<' | '>' | ':' | '|' | '?' | '*' | ';' => '_',
            c => c,
        })
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim();
    let short: String = trimmed.chars().take(120).collect();
    match short.is_empty() {
        true => fallback_name(index),
        false => short,
    }
}

/// The plain ASCII form of a safe name, for `filename=` (RFC 6266 §4.3): other characters
/// become `_`.
pub(crate) fn ascii_name(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            ' '..='~' if c != '\\' && c != '"' && c != '%' => c,
            _ => '_',
        })
        .collect()
}

/// The first part that is really HTML (not text turned into HTML), if any.
pub(crate) fn html_part<'a>(message: &'a Message<'a>) -> Option<&'a str> {
    message
        .html_body
        .iter()
        .filter_map(|&id| message.part(id))
        .find_map(|part| match &part.body {
            PartType::Html(html) => Some(html.as_ref()),
            _ => None,
        })
}

/// The text to show: the first text/plain body part, else mail-parser's text of the HTML.
pub(crate) fn text(message: &Message<'_>) -> Option<String> {
    let plain = message
        .text_body
        .iter()
        .filter_map(|&id| message.part(id))
        .find_map(|part| match &part.body {
            PartType::Text(text) => Some(text.to_string()),
            _ => None,
        });
    plain.or_else(|| message.body_text(0).map(|text| text.into_owned()))
}

/// The HTML with each `cid:` reference to an image part of the message replaced by a
/// `data:` URL of it, so that inline images show under a policy that loads nothing else.
pub(crate) fn inline_images(message: &Message<'_>, html: &str) -> String {
    let mut html = html.to_owned();
    for part in &message.parts {
        let Some(id) = part.content_id() else {
            continue;
        };
        let kind = media_type(part);
        if !kind.starts_with("image/") {
            continue;
        }
        let id = id.trim_start_matches('<').trim_end_matches('>');
        let url = format!("data:{kind};base64,{}", BASE64.encode(contents(part)));
        html = html.replace(&format!("cid:{id}"), &url);
    }
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_safe() {
        for (given, safe) in [
            ("report.pdf", "report.pdf"),
            ("../../etc/passwd", "passwd"),
            ("..\\..\\boot.ini", "boot.ini"),
            ("dir/", "part-3.bin"),
            (".bashrc", "bashrc"),
            ("...", "part-3.bin"),
            ("a\r\nb\u{0}.txt", "ab.txt"),
            ("<script>alert(1)</script>.html", "script_.html"),
            ("say \"hi\";x.txt", "say _hi__x.txt"),
            ("résumé.pdf", "résumé.pdf"),
        ] {
            assert_eq!(safe_name(given, 3), safe, "{given:?}");
        }
        assert_eq!(safe_name(&"a".repeat(500), 1).len(), 120);
        assert_eq!(ascii_name("résumé 100%.pdf"), "r_sum_ 100_.pdf");
    }

    #[test]
    fn a_multipart_message_reads_as_a_tree() {
        let data = b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.com>\r\n\
            To: a@example.com, \"B\" <b@example.com>\r\n\
            Subject: =?utf-8?b?SGVsbG8g4pyT?=\r\n\
            Content-Type: multipart/mixed; boundary=x\r\n\
            \r\n\
            --x\r\n\
            Content-Type: text/plain; charset=utf-8\r\n\
            \r\n\
            plain text\r\n\
            --x\r\n\
            Content-Type: text/html\r\n\
            \r\n\
            <p>html <img src=\"cid:logo@x\"></p>\r\n\
            --x\r\n\
            Content-Type: image/png\r\n\
            Content-ID: <logo@x>\r\n\
            Content-Disposition: attachment; filename=\"../logo.png\"\r\n\
            Content-Transfer-Encoding: base64\r\n\
            \r\n\
            iVBORw0K\r\n\
            --x--\r\n";
        let message = parse(data).expect("parsed");
        assert_eq!(message.subject(), Some("Hello ✓"));
        assert_eq!(addresses(message.from()), ["Jürgen <j@example.com>"]);
        assert_eq!(
            addresses(message.to()),
            ["a@example.com", "B <b@example.com>"]
        );
        let headers = headers(&message);
        assert_eq!(headers[2], ("Subject".to_owned(), "Hello ✓".to_owned()));
        assert_eq!(text(&message).as_deref(), Some("plain text"));
        let html = html_part(&message).expect("html");
        assert!(inline_images(&message, html).contains("src=\"data:image/png;base64,iVBORw0K"));
        let tree = tree(&message, 0);
        assert!(tree.content_type.starts_with("multipart/mixed"));
        assert_eq!(tree.children.len(), 3);
        let files = attachments(&message);
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].filename, "logo.png");
        assert_eq!(files[0].content_type, "image/png");
        assert_eq!(files[0].size, 6);
    }
}
