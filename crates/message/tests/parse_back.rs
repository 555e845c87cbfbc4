//! Renders representative messages and parses them back with mail-parser, an
//! independent implementation, checking every header, part and decoded byte.

mod common;

use common::{TempDir, assert_wire_format};
use mail_parser::{Address as ParsedAddress, MessageParser, MimeHeaders, PartType};
use message::{Attachment, Date, Mailbox, MessageBuilder};

const DATE: i64 = 1_700_000_000;

fn mailbox(text: &str) -> Mailbox {
    Mailbox::parse(text).expect("valid mailbox")
}

/// (name, address) pairs of an address header.
fn pairs(address: Option<&ParsedAddress<'_>>) -> Vec<(Option<String>, String)> {
    address
        .expect("header present")
        .iter()
        .map(|a| {
            (
                a.name().map(str::to_owned),
                a.address().expect("address").to_owned(),
            )
        })
        .collect()
}

fn pair(name: Option<&str>, address: &str) -> (Option<String>, String) {
    (name.map(str::to_owned), address.to_owned())
}

/// Content type of a part as `type/subtype` and its charset parameter.
fn content_type(part: &mail_parser::MessagePart<'_>) -> (String, Option<String>) {
    let ct = part.content_type().expect("content type");
    (
        format!("{}/{}", ct.ctype(), ct.subtype().expect("subtype")),
        ct.attribute("charset").map(str::to_owned),
    )
}

#[test]
fn full_message_round_trips() {
    let dir = TempDir::new("parse-back");
    let binary: Vec<u8> = (0..=255u8).cycle().take(256 * 3 + 7).collect();
    let binary_path = dir.write("all-bytes.bin", &binary);
    let text_attachment = "Notizen über Äpfel\r\nzweite Zeile\r\n".as_bytes();
    let text_path = dir.write("notes.txt", text_attachment);

    let text = "Hallo Bob,\nschöne Grüße!\r\n.\nA line with a dot.\rEnd";
    let html = "<p>Hallo <b>Bob</b>,</p>\n<p>schöne Grüße!</p>";
    let message = MessageBuilder::new(mailbox("Jörg Müller <joerg@example.org>"))
        .reply_to(mailbox("\"Replies, Team\" <replies@example.org>"))
        .to(mailbox("Bob Smith <bob@example.net>"))
        .to(mailbox("carol@example.net"))
        .cc(mailbox("\"O'Brien, Dave\" <dave@example.net>"))
        .bcc(mailbox("Hidden <erin@example.net>"))
        .subject("Grüße aus Köln – über 50 € für Äpfel, Birnen und Pflaumen aus dem Garten")
        .date(Date::from_unix(DATE))
        .message_id("<round-trip.1@example.org>")
        .header("X-Mailer", "message tests")
        .text(text)
        .html(html)
        .attach(Attachment::from_path(&binary_path))
        .attach(Attachment::from_path(&text_path).filename("Übersicht 2023.txt"))
        .build()
        .expect("builds");

    let bytes = message.to_bytes().expect("renders");
    assert_wire_format(&bytes);
    assert_eq!(message.expected_len(), bytes.len() as u64);
    assert_eq!(
        message.envelope().eight_bit,
        bytes.iter().any(|&b| b >= 0x80)
    );
    assert!(message.envelope().eight_bit, "8bit text parts");
    assert!(!message.envelope().smtputf8);

    let parsed = MessageParser::default().parse(&bytes).expect("parses");
    assert_eq!(
        pairs(parsed.from()),
        [pair(Some("Jörg Müller"), "joerg@example.org")]
    );
    assert_eq!(
        pairs(parsed.reply_to()),
        [pair(Some("Replies, Team"), "replies@example.org")]
    );
    assert_eq!(
        pairs(parsed.to()),
        [
            pair(Some("Bob Smith"), "bob@example.net"),
            pair(None, "carol@example.net")
        ]
    );
    assert_eq!(
        pairs(parsed.cc()),
        [pair(Some("O'Brien, Dave"), "dave@example.net")]
    );
    assert!(parsed.bcc().is_none(), "Bcc must not be a header");
    assert!(!String::from_utf8_lossy(&bytes).contains("erin@example.net"));
    assert_eq!(
        parsed.subject(),
        Some("Grüße aus Köln – über 50 € für Äpfel, Birnen und Pflaumen aus dem Garten")
    );
    assert_eq!(parsed.message_id(), Some("round-trip.1@example.org"));
    assert_eq!(parsed.date().expect("date").to_timestamp(), DATE);
    assert_eq!(
        parsed.header("X-Mailer").and_then(|v| v.as_text()),
        Some("message tests")
    );

    // multipart/mixed [ multipart/alternative [ text/plain, text/html ], bin, txt ]
    let (root_type, _) = content_type(parsed.root_part());
    assert_eq!(root_type, "multipart/mixed");
    let PartType::Multipart(children) = &parsed.root_part().body else {
        panic!("root is not multipart");
    };
    assert_eq!(children.len(), 3);
    let alternative = parsed.part(children[0]).expect("alternative part");
    assert_eq!(content_type(alternative).0, "multipart/alternative");
    let PartType::Multipart(texts) = &alternative.body else {
        panic!("alternative is not multipart");
    };
    let plain = parsed.part(texts[0]).expect("text part");
    let html_part = parsed.part(texts[1]).expect("html part");
    assert_eq!(
        content_type(plain),
        ("text/plain".into(), Some("utf-8".into()))
    );
    assert_eq!(
        content_type(html_part),
        ("text/html".into(), Some("utf-8".into()))
    );
    assert_eq!(plain.content_transfer_encoding(), Some("8bit"));
    assert_eq!(
        parsed.body_text(0).as_deref(),
        Some("Hallo Bob,\r\nschöne Grüße!\r\n.\r\nA line with a dot.\r\nEnd\r\n")
    );
    assert_eq!(
        parsed.body_html(0).as_deref(),
        Some("<p>Hallo <b>Bob</b>,</p>\r\n<p>schöne Grüße!</p>\r\n")
    );

    assert_eq!(parsed.attachment_count(), 2);
    let bin = parsed.attachment(0).expect("binary attachment");
    assert_eq!(content_type(bin).0, "application/octet-stream");
    assert_eq!(bin.attachment_name(), Some("all-bytes.bin"));
    assert_eq!(bin.content_transfer_encoding(), Some("base64"));
    assert!(
        bin.content_disposition()
            .expect("disposition")
            .is_attachment()
    );
    assert_eq!(bin.contents(), binary);
    let txt = parsed.attachment(1).expect("text attachment");
    assert_eq!(content_type(txt).0, "text/plain");
    assert_eq!(txt.attachment_name(), Some("Übersicht 2023.txt"));
    assert_eq!(txt.contents(), text_attachment);
}

#[test]
fn plain_text_only() {
    let message = MessageBuilder::new(mailbox("alice@example.org"))
        .to(mailbox("Bob <bob@example.net>"))
        .subject("Plain")
        .date(Date::parse("Tue, 14 Nov 2023 23:13:20 +0100").expect("valid date"))
        .message_id("plain@example.org")
        .text("just text")
        .build()
        .expect("builds");
    let bytes = message.to_bytes().expect("renders");
    assert_wire_format(&bytes);
    assert!(!message.envelope().eight_bit);
    assert!(bytes.is_ascii());

    let parsed = MessageParser::default().parse(&bytes).expect("parses");
    assert_eq!(pairs(parsed.from()), [pair(None, "alice@example.org")]);
    assert_eq!(pairs(parsed.to()), [pair(Some("Bob"), "bob@example.net")]);
    assert_eq!(parsed.subject(), Some("Plain"));
    assert_eq!(parsed.date().expect("date").to_timestamp(), DATE);
    assert_eq!(
        content_type(parsed.root_part()),
        ("text/plain".into(), Some("utf-8".into()))
    );
    assert_eq!(parsed.root_part().content_transfer_encoding(), Some("7bit"));
    assert_eq!(parsed.body_text(0).as_deref(), Some("just text\r\n"));
    assert_eq!(parsed.attachment_count(), 0);
}

#[test]
fn internationalized_addresses() {
    let message = MessageBuilder::new(mailbox("Jörg <jörg@bücher.example>"))
        .to(mailbox("用户 <用户@例子.广告>"))
        .subject("IDN")
        .date(Date::from_unix(DATE))
        .message_id("idn@bücher.example")
        .text("ascii body")
        .build()
        .expect("builds");
    assert!(message.envelope().smtputf8);
    assert!(message.envelope().eight_bit, "raw UTF-8 in headers");
    assert_eq!(message.envelope().recipients[0].as_str(), "用户@例子.广告");
    let bytes = message.to_bytes().expect("renders");
    assert_wire_format(&bytes);
    let rendered = String::from_utf8(bytes.clone()).expect("UTF-8");
    assert!(
        rendered.contains("<jörg@bücher.example>"),
        "RFC 6532 raw UTF-8"
    );

    let parsed = MessageParser::default().parse(&bytes).expect("parses");
    assert_eq!(
        pairs(parsed.from()),
        [pair(Some("Jörg"), "jörg@bücher.example")]
    );
    assert_eq!(pairs(parsed.to()), [pair(Some("用户"), "用户@例子.广告")]);
    assert_eq!(parsed.message_id(), Some("idn@bücher.example"));
    assert_eq!(parsed.body_text(0).as_deref(), Some("ascii body\r\n"));
}

#[test]
fn long_lines_become_quoted_printable() {
    let long = format!("{}é{}", "x".repeat(1500), " y".repeat(400));
    let text = format!("short\n{long}\n.\nend");
    let message = MessageBuilder::new(mailbox("a@example.org"))
        .to(mailbox("b@example.org"))
        .date(Date::from_unix(DATE))
        .message_id("qp@example.org")
        .text(text.as_str())
        .build()
        .expect("builds");
    let bytes = message.to_bytes().expect("renders");
    assert_wire_format(&bytes);
    assert!(bytes.is_ascii(), "quoted-printable output is ASCII");
    assert!(!message.envelope().eight_bit);
    let parsed = MessageParser::default().parse(&bytes).expect("parses");
    assert_eq!(
        parsed.root_part().content_transfer_encoding(),
        Some("quoted-printable")
    );
    assert_eq!(
        parsed.body_text(0).as_deref(),
        Some(format!("short\r\n{long}\r\n.\r\nend\r\n").as_str())
    );
}

#[test]
fn html_with_attachments_and_empty_attachment() {
    let dir = TempDir::new("parse-back-html");
    let png = dir.write(
        "pixel.png",
        &[0x89, b'P', b'N', b'G', 0, 0xff, b'\r', b'\n'],
    );
    let empty = dir.write("empty.dat", b"");
    let message = MessageBuilder::new(mailbox("a@example.org"))
        .to(mailbox("b@example.org"))
        .date(Date::from_unix(DATE))
        .message_id("html@example.org")
        .html("<h1>Report</h1>")
        .attach(Attachment::from_path(&png))
        .attach(Attachment::from_path(&empty).content_type("application/x-custom"))
        .build()
        .expect("builds");
    let bytes = message.to_bytes().expect("renders");
    assert_wire_format(&bytes);
    let parsed = MessageParser::default().parse(&bytes).expect("parses");
    assert_eq!(content_type(parsed.root_part()).0, "multipart/mixed");
    assert_eq!(parsed.body_html(0).as_deref(), Some("<h1>Report</h1>\r\n"));
    assert_eq!(parsed.attachment_count(), 2);
    let first = parsed.attachment(0).expect("png");
    assert_eq!(content_type(first).0, "image/png");
    assert_eq!(first.attachment_name(), Some("pixel.png"));
    assert_eq!(
        first.contents(),
        [0x89, b'P', b'N', b'G', 0, 0xff, b'\r', b'\n']
    );
    let second = parsed.attachment(1).expect("empty");
    assert_eq!(content_type(second).0, "application/x-custom");
    assert_eq!(second.attachment_name(), Some("empty.dat"));
    assert!(second.contents().is_empty());
}

#[test]
fn no_body_at_all() {
    let message = MessageBuilder::new(mailbox("a@example.org"))
        .bcc(mailbox("b@example.org"))
        .date(Date::from_unix(DATE))
        .message_id("empty@example.org")
        .build()
        .expect("builds");
    let bytes = message.to_bytes().expect("renders");
    assert_wire_format(&bytes);
    let parsed = MessageParser::default().parse(&bytes).expect("parses");
    assert!(parsed.to().is_none() && parsed.bcc().is_none());
    assert_eq!(
        content_type(parsed.root_part()),
        ("text/plain".into(), Some("utf-8".into()))
    );
    assert_eq!(parsed.body_text(0).as_deref().unwrap_or(""), "");
}
