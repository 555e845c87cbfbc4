//! Each kind of bad input gives its own error variant, a message that names the
//! culprit, and the right answer to `is_input_file_error` (sysexits 66 vs 65).

mod common;

use common::TempDir;
use message::{Address, Attachment, Date, Error, Mailbox, MessageBuilder};

fn builder() -> MessageBuilder {
    MessageBuilder::new(Mailbox::parse("a@example.org").expect("valid"))
        .to(Mailbox::parse("b@example.org").expect("valid"))
        .date(Date::from_unix(1_700_000_000))
        .message_id("errors@example.org")
        .text("body")
}

#[test]
fn header_injection_in_the_subject() {
    let error = builder()
        .subject("hi\r\nBcc: evil@x")
        .build()
        .expect_err("a line break in the subject is rejected");
    assert!(matches!(&error, Error::HeaderInjection { header } if header == "Subject"));
    assert_eq!(
        error.to_string(),
        "the \"Subject\" header contains a line break or NUL byte (header injection): remove CR, LF and NUL from the value"
    );
    assert!(!error.is_input_file_error());
}

#[test]
fn header_injection_in_a_display_name_and_a_user_header() {
    let evil = Mailbox::new(
        Some("Eve\nBcc: x@y".to_owned()),
        Address::parse("eve@example.org").expect("valid"),
    );
    let error = builder().cc(evil).build().expect_err("rejected");
    assert!(matches!(&error, Error::HeaderInjection { header } if header == "Cc"));
    assert!(error.to_string().contains("\"Cc\" header"));

    let error = builder()
        .header("X-Tag", "a\rb")
        .build()
        .expect_err("rejected");
    assert!(matches!(&error, Error::HeaderInjection { header } if header == "X-Tag"));
    assert!(error.to_string().contains("\"X-Tag\" header"));
    assert!(!error.is_input_file_error());
}

#[test]
fn bad_addresses() {
    let error = Address::parse("a@b\r\nc").expect_err("rejected");
    assert!(matches!(
        &error,
        Error::InvalidAddress { address, reason: "it contains a line break" } if address == "a@b\r\nc"
    ));
    assert_eq!(
        error.to_string(),
        "the address \"a@b\\r\\nc\" is not valid: it contains a line break"
    );
    assert!(!error.is_input_file_error());

    let error = Mailbox::parse("Bob <bob@exa mple.org>").expect_err("rejected");
    assert_eq!(
        error.to_string(),
        "the address \"bob@exa mple.org\" is not valid: the domain contains whitespace"
    );
    assert!(!error.is_input_file_error());
}

#[test]
fn missing_attachment() {
    let dir = TempDir::new("errors");
    let missing = dir.path().join("no-such-file.pdf");
    let error = builder()
        .attach(Attachment::from_path(&missing))
        .build()
        .expect_err("a missing attachment is an error at build time");
    match &error {
        Error::AttachmentMissing { path, source } => {
            assert_eq!(path, &missing);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected AttachmentMissing, got {other:?}"),
    }
    let text = error.to_string();
    assert!(text.starts_with("the attachment file "), "{text}");
    assert!(text.contains(&missing.display().to_string()), "{text}");
    assert!(text.ends_with("does not exist: check the path"), "{text}");
    assert!(error.is_input_file_error());
}

#[test]
fn a_directory_is_not_a_readable_attachment() {
    let dir = TempDir::new("errors-dir");
    let error = builder()
        .attach(Attachment::from_path(dir.path()))
        .build()
        .expect_err("a directory is not an attachment");
    assert!(matches!(&error, Error::AttachmentUnreadable { path, .. } if path == dir.path()));
    let text = error.to_string();
    assert!(
        text.ends_with("cannot be read: it is not a regular file"),
        "{text}"
    );
    assert!(error.is_input_file_error());
}

#[test]
fn an_attachment_removed_after_build_fails_at_render() {
    let dir = TempDir::new("errors-render");
    let path = dir.write("gone.txt", b"soon gone");
    let message = builder()
        .attach(Attachment::from_path(&path))
        .build()
        .expect("builds while the file exists");
    std::fs::remove_file(&path).expect("remove");
    let error = message.to_bytes().expect_err("the file is gone");
    assert!(matches!(&error, Error::AttachmentMissing { .. }));
    assert!(error.is_input_file_error());
}

#[test]
fn other_message_errors_are_not_input_file_errors() {
    let errors = [
        MessageBuilder::new(Mailbox::parse("a@example.org").expect("valid"))
            .build()
            .expect_err("no recipients"),
        builder().header("To", "x@y").build().expect_err("reserved"),
        builder()
            .header("X Bad", "v")
            .build()
            .expect_err("bad name"),
        builder()
            .message_id("no-at-sign")
            .build()
            .expect_err("bad id"),
        builder()
            .attach(Attachment::from_path("Cargo.toml").content_type("pdf"))
            .build()
            .expect_err("bad content type"),
        Date::parse("yesterday").expect_err("bad date"),
    ];
    let expected = [
        "the message has no recipients: add at least one To, Cc or Bcc address",
        "the header \"To\" is set by the message builder: use the matching builder option instead",
        "the header name \"X Bad\" is not valid: use 1 to 76 printable ASCII characters without ':' or spaces",
        "the message id \"no-at-sign\" is not valid: it has no @ (use the form id@host)",
        "the content type \"pdf\" is not valid: use a MIME type like \"application/pdf\"",
        "the date \"yesterday\" is not valid: it does not have the form [day-of-week,] day month year hh:mm[:ss] zone (use a form like \"Tue, 14 Nov 2023 22:13:20 +0000\" or unix seconds)",
    ];
    for (error, expected) in errors.iter().zip(expected) {
        assert_eq!(error.to_string(), expected);
        assert!(!error.is_input_file_error(), "{error}");
    }
}
