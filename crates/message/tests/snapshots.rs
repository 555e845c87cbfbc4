//! Byte-exact snapshots of rendered messages (CRLF shown as `␍␊`), so that any
//! change to what the clients send shows up in review.

mod common;

use common::{TempDir, assert_wire_format, visible};
use message::{Attachment, Date, Mailbox, Message, MessageBuilder};

fn mailbox(text: &str) -> Mailbox {
    Mailbox::parse(text).expect("valid mailbox")
}

/// The fixed parts every snapshot shares: sender, date and Message-ID.
fn builder(from: &str, id: &str) -> MessageBuilder {
    MessageBuilder::new(mailbox(from))
        .date(Date::from_unix(1_700_000_000))
        .message_id(id)
}

fn render(message: &Message) -> String {
    let bytes = message.to_bytes().expect("renders");
    assert_wire_format(&bytes);
    assert_eq!(
        message.envelope().eight_bit,
        bytes.iter().any(|&b| b >= 0x80)
    );
    visible(&bytes)
}

#[test]
fn plain_text() {
    let message = builder("Alice <alice@example.org>", "plain@example.org")
        .to(mailbox("Bob <bob@example.net>"))
        .subject("Lunch tomorrow?")
        .text("Hi Bob,\n\nlunch at noon?\n\n-- \nAlice\n")
        .build()
        .expect("builds");
    insta::assert_snapshot!("plain_text", render(&message));
}

#[test]
fn text_and_html() {
    let message = builder("Alice <alice@example.org>", "alternative@example.org")
        .to(mailbox("bob@example.net"))
        .cc(mailbox("\"Carol, the Boss\" <carol@example.net>"))
        .bcc(mailbox("dave@example.net"))
        .reply_to(mailbox("team@example.org"))
        .subject("Status report")
        .header("X-Priority", "3")
        .text("All green.")
        .html("<p>All <b>green</b>.</p>")
        .build()
        .expect("builds");
    insta::assert_snapshot!("text_and_html", render(&message));
}

#[test]
fn html_and_two_attachments() {
    let dir = TempDir::new("snapshot");
    let binary: Vec<u8> = (0..=255u8).collect();
    let binary = dir.write("bytes.bin", &binary);
    let csv = dir.write("table.csv", b"a,b\r\n1,2\r\n");
    let message = builder("reports@example.org", "attachments@example.org")
        .to(mailbox("bob@example.net"))
        .subject("Monthly report")
        .html("<h1>Report</h1>\n<p>See the attachments.</p>")
        .attach(Attachment::from_path(&binary))
        .attach(Attachment::from_path(&csv).filename("Bericht März.csv"))
        .build()
        .expect("builds");
    insta::assert_snapshot!("html_and_two_attachments", render(&message));
}

#[test]
fn non_ascii_subject_names_and_body() {
    let message = builder("Jörg Müller <joerg@example.org>", "utf8@example.org")
        .to(mailbox("Zoë Saldaña <zoe@example.net>"))
        .to(mailbox("\"Smith, John\" <john@example.net>"))
        .subject("Grüße aus Köln – Einladung zum Sommerfest 🎉 am Samstag, bitte antworten")
        .text("Liebe Zoë,\r\nwir feiern am Samstag. Bis bald! 🎉\n")
        .build()
        .expect("builds");
    assert!(message.envelope().eight_bit);
    assert!(!message.envelope().smtputf8);
    insta::assert_snapshot!("non_ascii", render(&message));
}

#[test]
fn internationalized_address() {
    let message = builder("Jörg <jörg@bücher.example>", "idn@bücher.example")
        .to(mailbox("用户@例子.广告"))
        .subject("SMTPUTF8")
        .text("ASCII body.")
        .build()
        .expect("builds");
    assert!(message.envelope().smtputf8);
    assert!(message.envelope().eight_bit);
    insta::assert_snapshot!("internationalized_address", render(&message));
}

#[test]
fn long_line_becomes_quoted_printable() {
    let long: String = (0..150).map(|i| format!("word{i} ")).collect();
    let message = builder("alice@example.org", "qp@example.org")
        .to(mailbox("bob@example.net"))
        .subject("A long line")
        .text(format!("Short line.\n{long}=end\n.\nÜber.\n"))
        .build()
        .expect("builds");
    assert!(!message.envelope().eight_bit);
    insta::assert_snapshot!("long_line_qp", render(&message));
}
