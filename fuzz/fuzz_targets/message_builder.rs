//! The message builder (`message::MessageBuilder`) on arbitrary names, addresses,
//! subject, extra headers, bodies and an attachment.
//!
//! Invariants when `build()` succeeds: the rendered bytes are CRLF lines only (no bare CR
//! or LF), no line passes 998 octets, `envelope().eight_bit` is true exactly when a byte
//! is >= 0x80, `expected_len()` is the real length, rendering twice gives the same bytes,
//! and no user text can start a header field of its own (header injection) or end the
//! header block early.

#![no_main]

use std::path::PathBuf;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use message::{Address, Attachment, Date, Mailbox, MessageBuilder};

#[derive(Arbitrary, Debug)]
struct Input {
    from: Party,
    to: Vec<Party>,
    cc: Vec<Party>,
    bcc: Vec<Party>,
    reply_to: Option<Party>,
    subject: Option<String>,
    date: i64,
    message_id: Option<String>,
    headers: Vec<(String, String)>,
    text: Option<String>,
    html: Option<String>,
    attachment: Option<AttachmentInput>,
}

#[derive(Arbitrary, Debug)]
struct Party {
    name: Option<String>,
    address: String,
}

#[derive(Arbitrary, Debug)]
struct AttachmentInput {
    filename: Option<String>,
    content_type: Option<String>,
    content: Vec<u8>,
}

impl Party {
    /// The mailbox as `Mailbox::parse` reads it when it can, else the name with the
    /// address (or a fixed one when the address is invalid), so most inputs get built.
    fn mailbox(&self) -> Mailbox {
        if let Ok(mailbox) = Mailbox::parse(&self.address) {
            return mailbox;
        }
        let address = Address::parse(&self.address)
            .unwrap_or_else(|_| Address::parse("someone@example.org").expect("a valid address"));
        Mailbox::new(self.name.clone(), address)
    }
}

/// The header fields the builder itself writes at the top level.
const BUILDER_FIELDS: [&str; 10] = [
    "Date",
    "From",
    "Reply-To",
    "To",
    "Cc",
    "Subject",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
];

fuzz_target!(|input: Input| {
    let mut builder = MessageBuilder::new(input.from.mailbox()).date(Date::from_unix(input.date));
    for party in &input.to {
        builder = builder.to(party.mailbox());
    }
    for party in &input.cc {
        builder = builder.cc(party.mailbox());
    }
    for party in &input.bcc {
        builder = builder.bcc(party.mailbox());
    }
    if let Some(party) = &input.reply_to {
        builder = builder.reply_to(party.mailbox());
    }
    if let Some(subject) = &input.subject {
        builder = builder.subject(subject.as_str());
    }
    if let Some(message_id) = &input.message_id {
        builder = builder.message_id(message_id.as_str());
    }
    for (name, value) in &input.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    if let Some(text) = &input.text {
        builder = builder.text(text.as_str());
    }
    if let Some(html) = &input.html {
        builder = builder.html(html.as_str());
    }
    if let Some(attachment) = &input.attachment {
        let path = attachment_path();
        std::fs::write(&path, &attachment.content).expect("writing the attachment file");
        let mut file = Attachment::from_path(path);
        if let Some(name) = &attachment.filename {
            file = file.filename(name.as_str());
        }
        if let Some(content_type) = &attachment.content_type {
            file = file.content_type(content_type);
        }
        builder = builder.attach(file);
    }

    let Ok(message) = builder.build() else {
        return;
    };
    let bytes = message.to_bytes().expect("rendering into memory");
    assert_eq!(message.expected_len(), bytes.len() as u64);
    let mut again = Vec::new();
    let written = message.render(&mut again).expect("rendering into memory");
    assert_eq!(written, bytes.len() as u64);
    assert_eq!(again, bytes, "two renderings differ");

    assert!(bytes.ends_with(b"\r\n"), "the last line is not ended");
    for (i, &byte) in bytes.iter().enumerate() {
        match byte {
            b'\r' => assert_eq!(bytes.get(i + 1), Some(&b'\n'), "bare CR at {i}"),
            b'\n' => assert!(i > 0 && bytes[i - 1] == b'\r', "bare LF at {i}"),
            _ => {}
        }
    }
    // Every line without its CRLF (the checks above make each end in CRLF).
    let lines: Vec<&[u8]> = bytes
        .split_inclusive(|&b| b == b'\n')
        .map(|line| &line[..line.len() - 2])
        .collect();
    for line in &lines {
        assert!(line.len() <= 998, "a line of {} octets", line.len());
    }
    assert_eq!(
        message.envelope().eight_bit,
        bytes.iter().any(|&b| b >= 0x80),
        "eight_bit does not match the bytes"
    );

    // The header block: fields the builder writes or the user named, each once per
    // header added, continuation lines that are not blank, and Content-Type inside it.
    let end = lines
        .iter()
        .position(|line| line.is_empty())
        .expect("a blank line after the header block");
    let mut user_fields = 0;
    let mut content_type = false;
    for line in &lines[..end] {
        if line.starts_with(b" ") || line.starts_with(b"\t") {
            assert!(
                line.iter().any(|b| !b.is_ascii_whitespace()),
                "a blank continuation line"
            );
            continue;
        }
        let colon = line.iter().position(|&b| b == b':').expect("a field name");
        let name = String::from_utf8_lossy(&line[..colon]);
        content_type |= name == "Content-Type";
        if BUILDER_FIELDS.contains(&name.as_ref()) {
            continue;
        }
        assert!(
            input.headers.iter().any(|(user, _)| *user == name),
            "field {name:?} written by nobody"
        );
        user_fields += 1;
    }
    assert!(content_type, "Content-Type outside the header block");
    assert_eq!(user_fields, input.headers.len(), "extra header fields");
});

/// One scratch file per process for the attachment's content.
fn attachment_path() -> PathBuf {
    std::env::temp_dir().join(format!("smtp-fuzz-attachment-{}", std::process::id()))
}
