//! The message builder, the built message (header block, MIME tree, streamed
//! attachments) and the SMTP envelope that goes with it.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::address::{Address, Mailbox};
use crate::attachment::Attachment;
use crate::body::{
    TransferEncoding, base64_encoded_len, choose_text_encoding, encode_text,
    normalize_line_endings, open_attachment, write_base64_file,
};
use crate::date::Date;
use crate::error::Error;
use crate::header::{
    HeaderField, address_list, check_content_type, check_header_name, check_no_injection,
    normalize_message_id, push_parameter, push_unstructured, push_user_value,
};

/// Collects the parts of a message; [`MessageBuilder::build`] checks them all.
#[derive(Clone, Debug)]
pub struct MessageBuilder {
    from: Mailbox,
    reply_to: Vec<Mailbox>,
    to: Vec<Mailbox>,
    cc: Vec<Mailbox>,
    bcc: Vec<Mailbox>,
    subject: Option<String>,
    date: Option<Date>,
    message_id: Option<String>,
    headers: Vec<(String, String)>,
    text: Option<String>,
    html: Option<String>,
    attachments: Vec<Attachment>,
    binary: bool,
}

impl MessageBuilder {
    /// A message from `from`, which is also the envelope sender (MAIL FROM).
    pub fn new(from: Mailbox) -> MessageBuilder {
        MessageBuilder {
            from,
            reply_to: Vec::new(),
            to: Vec::new(),
            cc: Vec::new(),
            bcc: Vec::new(),
            subject: None,
            date: None,
            message_id: None,
            headers: Vec::new(),
            text: None,
            html: None,
            attachments: Vec::new(),
            binary: false,
        }
    }

    /// Sends attachments as they are, `Content-Transfer-Encoding: binary`, instead of
    /// base64 (RFC 3030 §3): smaller and faster, but only over BDAT to a server that offers
    /// BINARYMIME; the envelope then asks for `BODY=BINARYMIME`.
    pub fn binary_attachments(mut self, binary: bool) -> MessageBuilder {
        self.binary = binary;
        self
    }

    /// Adds a To recipient (header and envelope).
    pub fn to(mut self, mailbox: Mailbox) -> MessageBuilder {
        self.to.push(mailbox);
        self
    }

    /// Adds a Cc recipient (header and envelope).
    pub fn cc(mut self, mailbox: Mailbox) -> MessageBuilder {
        self.cc.push(mailbox);
        self
    }

    /// Adds a Bcc recipient: envelope only, never a header.
    pub fn bcc(mut self, mailbox: Mailbox) -> MessageBuilder {
        self.bcc.push(mailbox);
        self
    }

    /// Adds a Reply-To mailbox.
    pub fn reply_to(mut self, mailbox: Mailbox) -> MessageBuilder {
        self.reply_to.push(mailbox);
        self
    }

    /// Sets the Subject.
    pub fn subject(mut self, subject: impl Into<String>) -> MessageBuilder {
        self.subject = Some(subject.into());
        self
    }

    /// Sets the Date; without it, [`MessageBuilder::build`] uses [`Date::now`].
    pub fn date(mut self, date: Date) -> MessageBuilder {
        self.date = Some(date);
        self
    }

    /// Sets the Message-ID, `id@host` or `<id@host>`; without it, `build` generates
    /// one from the time, the process id and a counter, at the From domain.
    pub fn message_id(mut self, message_id: impl Into<String>) -> MessageBuilder {
        self.message_id = Some(message_id.into());
        self
    }

    /// Adds an extra header, written after MIME-Version in the order added.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> MessageBuilder {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the plain-text body.
    pub fn text(mut self, text: impl Into<String>) -> MessageBuilder {
        self.text = Some(text.into());
        self
    }

    /// Sets the HTML body (with a text body, the two become multipart/alternative).
    pub fn html(mut self, html: impl Into<String>) -> MessageBuilder {
        self.html = Some(html.into());
        self
    }

    /// Adds an attachment (the message becomes multipart/mixed).
    pub fn attach(mut self, attachment: Attachment) -> MessageBuilder {
        self.attachments.push(attachment);
        self
    }

    /// Checks everything (display names, subject and headers for line breaks, header
    /// names, the Message-ID, recipients, attachment files) and lays out the message.
    ///
    /// Attachment files are opened to check that they are readable regular files but
    /// not read; they are streamed by [`Message::render`].
    pub fn build(self) -> Result<Message, Error> {
        let lists: [(&str, &[Mailbox]); 5] = [
            ("From", std::slice::from_ref(&self.from)),
            ("Reply-To", &self.reply_to),
            ("To", &self.to),
            ("Cc", &self.cc),
            ("Bcc", &self.bcc),
        ];
        for (header, mailboxes) in lists {
            for name in mailboxes.iter().filter_map(|m| m.name.as_deref()) {
                check_no_injection(header, name)?;
            }
        }
        if let Some(subject) = &self.subject {
            check_no_injection("Subject", subject)?;
        }
        for (name, value) in &self.headers {
            check_header_name(name)?;
            check_no_injection(name, value)?;
        }

        let mut recipients: Vec<Address> = Vec::new();
        for mailbox in self.to.iter().chain(&self.cc).chain(&self.bcc) {
            if !recipients.contains(&mailbox.address) {
                recipients.push(mailbox.address.clone());
            }
        }
        if recipients.is_empty() {
            return Err(Error::NoRecipients);
        }

        let message_id = match &self.message_id {
            Some(message_id) => normalize_message_id(message_id)?,
            None => generate_message_id(&self.from.address),
        };
        let date = self.date.clone().unwrap_or_else(Date::now);

        let mut attachments = Vec::with_capacity(self.attachments.len());
        for attachment in &self.attachments {
            let filename = attachment.effective_filename();
            check_no_injection("Content-Disposition", &filename)?;
            let content_type = match attachment.content_type_override() {
                Some(content_type) => check_content_type(content_type)?,
                None => attachment.guessed_content_type(),
            };
            drop(open_attachment(attachment.path())?);
            attachments.push(Entity::Attachment {
                content_type,
                filename,
                path: attachment.path().to_owned(),
                binary: self.binary,
            });
        }

        let root = self.body_tree(&message_id, attachments);
        let mut segments = Segments::default();
        segments.push_str(&self.header_block(&date, &message_id)?);
        segments.push_str(&root.content_headers()?);
        segments.push_str("\r\n");
        root.write_content(&mut segments)?;

        let eight_bit = segments
            .0
            .iter()
            .any(|segment| matches!(segment, Segment::Bytes(bytes) if !bytes.is_ascii()));
        let smtputf8 =
            !self.from.address.is_ascii() || recipients.iter().any(|address| !address.is_ascii());
        Ok(Message {
            envelope: Envelope {
                from: self.from.address.clone(),
                recipients,
                smtputf8,
                eight_bit,
                binary: self.binary && !self.attachments.is_empty(),
            },
            message_id,
            date: Some(date),
            segments: segments.0,
        })
    }

    /// The headers from Date to the user's extra headers, in the fixed order.
    fn header_block(&self, date: &Date, message_id: &str) -> Result<String, Error> {
        let mut block = String::new();
        let mut date_field = HeaderField::new("Date");
        date_field.word(date.as_str());
        block.push_str(&date_field.finish()?);
        block.push_str(&address_list("From", std::slice::from_ref(&self.from))?);
        for (name, mailboxes) in [
            ("Reply-To", &self.reply_to),
            ("To", &self.to),
            ("Cc", &self.cc),
        ] {
            if !mailboxes.is_empty() {
                block.push_str(&address_list(name, mailboxes)?);
            }
        }
        if let Some(subject) = &self.subject {
            let mut field = HeaderField::new("Subject");
            push_unstructured(&mut field, subject);
            block.push_str(&field.finish()?);
        }
        let mut id_field = HeaderField::new("Message-ID");
        id_field.word(message_id);
        block.push_str(&id_field.finish()?);
        block.push_str("MIME-Version: 1.0\r\n");
        for (name, value) in &self.headers {
            let mut field = HeaderField::new(name);
            push_user_value(&mut field, value);
            block.push_str(&field.finish()?);
        }
        Ok(block)
    }

    /// The MIME tree: the text (or html, or both as multipart/alternative), inside
    /// multipart/mixed with the attachments when there are any.
    fn body_tree(&self, message_id: &str, attachments: Vec<Entity>) -> Entity {
        let mut texts = Vec::new();
        if let Some(text) = &self.text {
            texts.push(Entity::text("plain", text));
        }
        if let Some(html) = &self.html {
            texts.push(Entity::text("html", html));
        }
        if texts.is_empty() {
            texts.push(Entity::text("plain", ""));
        }
        let outer = boundary(message_id, 0, &texts, &[]);
        let inner = boundary(message_id, 1, &texts, &[outer.as_str()]);

        let (alternative_boundary, mixed_boundary) = if attachments.is_empty() {
            (outer, inner)
        } else {
            (inner, outer)
        };
        let body = if texts.len() == 2 {
            Entity::Multipart {
                subtype: "alternative",
                boundary: alternative_boundary,
                parts: texts,
            }
        } else {
            texts.remove(0)
        };
        if attachments.is_empty() {
            body
        } else {
            let mut parts = Vec::with_capacity(attachments.len() + 1);
            parts.push(body);
            parts.extend(attachments);
            Entity::Multipart {
                subtype: "mixed",
                boundary: mixed_boundary,
                parts,
            }
        }
    }
}

/// A MIME entity (RFC 2045 §2.4): its content headers and content.
#[derive(Debug)]
enum Entity {
    Text {
        subtype: &'static str,
        encoding: TransferEncoding,
        content: Vec<u8>,
    },
    Attachment {
        content_type: String,
        filename: String,
        path: PathBuf,
        /// Sent as it is (BINARYMIME) rather than base64.
        binary: bool,
    },
    Multipart {
        subtype: &'static str,
        boundary: String,
        parts: Vec<Entity>,
    },
}

impl Entity {
    fn text(subtype: &'static str, text: &str) -> Entity {
        let normalized = normalize_line_endings(text);
        let encoding = choose_text_encoding(&normalized);
        Entity::Text {
            subtype,
            encoding,
            content: encode_text(&normalized, encoding),
        }
    }

    /// Content-Type, Content-Disposition and Content-Transfer-Encoding, as applicable.
    fn content_headers(&self) -> Result<String, Error> {
        let mut headers = String::new();
        match self {
            Entity::Text {
                subtype, encoding, ..
            } => {
                headers.push_str(&format!("Content-Type: text/{subtype}; charset=utf-8\r\n"));
                headers.push_str(&format!(
                    "Content-Transfer-Encoding: {}\r\n",
                    encoding.as_str()
                ));
            }
            Entity::Attachment {
                content_type,
                filename,
                binary,
                ..
            } => {
                let mut field = HeaderField::new("Content-Type");
                field.word(&format!("{content_type};"));
                push_parameter(&mut field, "name", filename, true);
                headers.push_str(&field.finish()?);
                let mut field = HeaderField::new("Content-Disposition");
                field.word("attachment;");
                push_parameter(&mut field, "filename", filename, true);
                headers.push_str(&field.finish()?);
                let encoding = if *binary {
                    "binary"
                } else {
                    TransferEncoding::Base64.as_str()
                };
                headers.push_str(&format!("Content-Transfer-Encoding: {encoding}\r\n"));
            }
            Entity::Multipart {
                subtype, boundary, ..
            } => {
                headers.push_str(&format!(
                    "Content-Type: multipart/{subtype}; boundary=\"{boundary}\"\r\n"
                ));
            }
        }
        Ok(headers)
    }

    /// The content after the blank line; it is empty or ends with CRLF. In a
    /// multipart, the CRLF before each delimiter belongs to the delimiter
    /// (RFC 2046 §5.1.1), so every part's own final CRLF is kept.
    fn write_content(&self, out: &mut Segments) -> Result<(), Error> {
        match self {
            Entity::Text { content, .. } => out.push_bytes(content),
            Entity::Attachment {
                path, binary: true, ..
            } => out.0.push(Segment::Raw(path.clone())),
            Entity::Attachment { path, .. } => out.0.push(Segment::File(path.clone())),
            Entity::Multipart {
                boundary, parts, ..
            } => {
                for part in parts {
                    out.push_str(&format!("--{boundary}\r\n"));
                    out.push_str(&part.content_headers()?);
                    out.push_str("\r\n");
                    part.write_content(out)?;
                    out.push_str("\r\n");
                }
                out.push_str(&format!("--{boundary}--\r\n"));
            }
        }
        Ok(())
    }
}

/// A deterministic boundary for multipart nesting `level`: `=_` and the FNV-1a hash
/// of the Message-ID and level, perturbed by a counter while it occurs in a text part
/// or equals a boundary already `taken`. Quoted-printable and base64 output cannot
/// contain `=_`, so only 7bit and 8bit text needs the check.
fn boundary(message_id: &str, level: u8, texts: &[Entity], taken: &[&str]) -> String {
    let mut counter: u32 = 0;
    loop {
        let mut input = message_id.as_bytes().to_vec();
        input.push(0);
        input.push(level);
        if counter > 0 {
            input.extend_from_slice(&counter.to_be_bytes());
        }
        let candidate = format!("=_{:016x}", fnv1a(&input));
        let in_text = texts.iter().any(|text| match text {
            Entity::Text { content, .. } => content
                .windows(candidate.len())
                .any(|window| window == candidate.as_bytes()),
            _ => false,
        });
        if !in_text && !taken.contains(&candidate.as_str()) {
            return candidate;
        }
        counter += 1;
    }
}

/// The 64-bit FNV-1a hash: tiny, stable across platforms and versions.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// `<time.pid.counter@domain>`: unique per process and call without a random source.
pub(crate) fn generate_message_id(from: &Address) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "<{nanos:x}.{:x}.{count:x}@{}>",
        std::process::id(),
        from.domain()
    )
}

/// The rendered message as bytes held in memory and files streamed at render time.
#[derive(Debug, Default)]
struct Segments(Vec<Segment>);

impl Segments {
    fn push_str(&mut self, text: &str) {
        self.push_bytes(text.as_bytes());
    }

    fn push_bytes(&mut self, bytes: &[u8]) {
        match self.0.last_mut() {
            Some(Segment::Bytes(last)) => last.extend_from_slice(bytes),
            _ => self.0.push(Segment::Bytes(bytes.to_vec())),
        }
    }
}

#[derive(Clone, Debug)]
enum Segment {
    Bytes(Vec<u8>),
    /// An attachment, written as base64 lines.
    File(PathBuf),
    /// An attachment, written as it is (BINARYMIME).
    Raw(PathBuf),
}

/// The SMTP envelope (RFC 5321 §2.3.1): who MAIL FROM and RCPT TO name, and which
/// extensions the message needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse-path: the From address.
    pub from: Address,
    /// To, then Cc, then Bcc, in the order given, each address once.
    pub recipients: Vec<Address>,
    /// An envelope address is internationalized: send `SMTPUTF8` on MAIL FROM (RFC 6531).
    pub smtputf8: bool,
    /// The rendered message has a byte >= 0x80: send `BODY=8BITMIME` (RFC 6152).
    pub eight_bit: bool,
    /// Attachments go as they are: send `BODY=BINARYMIME`, over BDAT only (RFC 3030 §3).
    pub binary: bool,
}

/// A checked message, ready to render as often as needed.
#[derive(Clone, Debug)]
pub struct Message {
    envelope: Envelope,
    message_id: String,
    date: Option<Date>,
    segments: Vec<Segment>,
}

impl Message {
    /// The envelope to send the message with.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// The Message-ID header value, with angle brackets (empty for a prebuilt message that
    /// brought its own, or none).
    pub fn message_id(&self) -> &str {
        &self.message_id
    }

    /// The Date header value (`None` for a prebuilt message).
    pub fn date(&self) -> Option<&Date> {
        self.date.as_ref()
    }

    /// A prebuilt message's checked bytes and envelope (see [`crate::Prebuilt`]).
    pub(crate) fn prebuilt(envelope: Envelope, message_id: String, bytes: Vec<u8>) -> Message {
        Message {
            envelope,
            message_id,
            date: None,
            segments: vec![Segment::Bytes(bytes)],
        }
    }

    /// The number of bytes [`Message::render`] will write if the attachment files do
    /// not change in between (a missing file counts as empty).
    pub fn expected_len(&self) -> u64 {
        self.segments
            .iter()
            .map(|segment| match segment {
                Segment::Bytes(bytes) => bytes.len() as u64,
                Segment::File(path) => {
                    base64_encoded_len(std::fs::metadata(path).map_or(0, |m| m.len()))
                }
                Segment::Raw(path) => std::fs::metadata(path).map_or(0, |m| m.len()),
            })
            .sum()
    }

    /// Writes the message into `out` (streaming attachments from disk), flushes it,
    /// and returns the number of bytes written.
    pub fn render<W: Write>(&self, mut out: W) -> Result<u64, Error> {
        let mut written = 0u64;
        for segment in &self.segments {
            match segment {
                Segment::Bytes(bytes) => {
                    out.write_all(bytes)?;
                    written += bytes.len() as u64;
                }
                Segment::File(path) => written += write_base64_file(path, &mut out)?,
                Segment::Raw(path) => written += crate::body::copy_file(path, &mut out)?,
            }
        }
        out.flush()?;
        Ok(written)
    }

    /// The whole message in memory.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let mut bytes = Vec::with_capacity(usize::try_from(self.expected_len()).unwrap_or(0));
        self.render(&mut bytes)?;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(text: &str) -> Mailbox {
        Mailbox::parse(text).expect("valid mailbox")
    }

    fn builder() -> MessageBuilder {
        MessageBuilder::new(mailbox("Alice <alice@example.org>"))
            .to(mailbox("bob@example.net"))
            .date(Date::from_unix(1_700_000_000))
            .message_id("test-1@example.org")
    }

    fn render(builder: MessageBuilder) -> String {
        let message = builder.build().expect("builds");
        String::from_utf8(message.to_bytes().expect("renders")).expect("UTF-8")
    }

    #[test]
    fn fnv1a_matches_reference_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn plain_text_message() {
        assert_eq!(
            render(builder().subject("Hi").text("Hello\nBob")),
            "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n\
             From: Alice <alice@example.org>\r\n\
             To: bob@example.net\r\n\
             Subject: Hi\r\n\
             Message-ID: <test-1@example.org>\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: 7bit\r\n\
             \r\n\
             Hello\r\n\
             Bob\r\n"
        );
    }

    #[test]
    fn no_body_is_an_empty_text_part() {
        let rendered = render(builder());
        assert!(rendered.ends_with(
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
        ));
    }

    #[test]
    fn header_order_and_bcc() {
        let rendered = render(
            builder()
                .header("X-First", "1")
                .cc(mailbox("carol@example.net"))
                .bcc(mailbox("Secret <dave@example.net>"))
                .reply_to(mailbox("replies@example.org"))
                .header("X-Second", "2")
                .subject("s"),
        );
        let names: Vec<&str> = rendered
            .split("\r\n\r\n")
            .next()
            .expect("header block")
            .split("\r\n")
            .map(|line| line.split(':').next().expect("name"))
            .collect();
        assert_eq!(
            names,
            [
                "Date",
                "From",
                "Reply-To",
                "To",
                "Cc",
                "Subject",
                "Message-ID",
                "MIME-Version",
                "X-First",
                "X-Second",
                "Content-Type",
                "Content-Transfer-Encoding"
            ]
        );
        assert!(!rendered.contains("dave"));
        assert!(!rendered.contains("Secret"));
    }

    #[test]
    fn envelope_recipients_are_ordered_and_deduplicated() {
        let message = builder()
            .to(mailbox("carol@example.net"))
            .cc(mailbox("Bob again <bob@example.net>"))
            .cc(mailbox("erin@example.net"))
            .bcc(mailbox("carol@example.net"))
            .bcc(mailbox("dave@example.net"))
            .bcc(mailbox("Bob@example.net"))
            .build()
            .expect("builds");
        let recipients: Vec<&str> = message
            .envelope()
            .recipients
            .iter()
            .map(Address::as_str)
            .collect();
        assert_eq!(
            recipients,
            [
                "bob@example.net",
                "carol@example.net",
                "erin@example.net",
                "dave@example.net",
                "Bob@example.net"
            ]
        );
        assert_eq!(message.envelope().from.as_str(), "alice@example.org");
        assert!(!message.envelope().smtputf8);
        assert!(!message.envelope().eight_bit);
    }

    #[test]
    fn no_recipients() {
        let result = MessageBuilder::new(mailbox("a@example.org")).build();
        assert!(matches!(result, Err(Error::NoRecipients)));
        let bcc_only = MessageBuilder::new(mailbox("a@example.org"))
            .bcc(mailbox("b@example.org"))
            .build()
            .expect("Bcc is a recipient");
        assert_eq!(bcc_only.envelope().recipients.len(), 1);
    }

    #[test]
    fn header_injection_is_rejected_per_header() {
        let evil = "x\r\nBcc: evil@example.com";
        let evil_name = || Some(evil.to_owned());
        let address = || Address::parse("v@example.org").expect("valid");
        let cases: Vec<(MessageBuilder, &str)> = vec![
            (builder().subject(evil), "Subject"),
            (builder().subject("a\nb"), "Subject"),
            (builder().subject("a\rb"), "Subject"),
            (builder().subject("a\0b"), "Subject"),
            (
                MessageBuilder::new(Mailbox::new(evil_name(), address()))
                    .to(mailbox("b@example.org")),
                "From",
            ),
            (builder().to(Mailbox::new(evil_name(), address())), "To"),
            (builder().cc(Mailbox::new(evil_name(), address())), "Cc"),
            (builder().bcc(Mailbox::new(evil_name(), address())), "Bcc"),
            (
                builder().reply_to(Mailbox::new(evil_name(), address())),
                "Reply-To",
            ),
            (builder().header("X-Custom", evil), "X-Custom"),
            (builder().header("X-Custom\r\nBcc", "v"), "X-Custom\r\nBcc"),
            (builder().message_id(evil), "Message-ID"),
            (
                builder().attach(Attachment::from_path("Cargo.toml").filename("a\r\nb.txt")),
                "Content-Disposition",
            ),
            (
                builder()
                    .attach(Attachment::from_path("Cargo.toml").content_type("text/plain\r\nX: y")),
                "Content-Type",
            ),
        ];
        for (builder, expected) in cases {
            match builder.build() {
                Err(Error::HeaderInjection { header }) => assert_eq!(header, expected),
                other => panic!("{expected}: expected HeaderInjection, got {other:?}"),
            }
        }
    }

    #[test]
    fn user_header_names_are_checked() {
        assert!(matches!(
            builder().header("Bad Name", "v").build(),
            Err(Error::InvalidHeaderName { name }) if name == "Bad Name"
        ));
        assert!(matches!(
            builder().header("bcc", "v").build(),
            Err(Error::ReservedHeader { name }) if name == "bcc"
        ));
    }

    #[test]
    fn boundary_avoids_text_content() {
        let message_id = "<test-1@example.org>";
        let plain = boundary(message_id, 0, &[], &[]);
        let texts = vec![Entity::text("plain", &format!("before --{plain} after"))];
        let perturbed = boundary(message_id, 0, &texts, &[]);
        assert_ne!(perturbed, plain);
        assert!(perturbed.starts_with("=_") && perturbed.len() == 18);
        assert_ne!(boundary(message_id, 1, &[], &[&plain]), plain);
        // Deterministic: the same inputs give the same boundary.
        assert_eq!(boundary(message_id, 0, &texts, &[]), perturbed);
    }

    #[test]
    fn generated_message_ids_are_unique_and_at_the_from_domain() {
        let from = Address::parse("a@example.org").expect("valid");
        let first = generate_message_id(&from);
        let second = generate_message_id(&from);
        assert_ne!(first, second);
        assert!(first.starts_with('<') && first.ends_with("@example.org>"));
        assert_eq!(normalize_message_id(&first).expect("valid msg-id"), first);
        let message = MessageBuilder::new(mailbox("a@example.org"))
            .to(mailbox("b@example.org"))
            .build()
            .expect("builds");
        assert!(message.message_id().ends_with("@example.org>"));
    }
}
