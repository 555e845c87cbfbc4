//! Property tests: for arbitrary subjects, display names, bodies and attachments the
//! rendered message keeps the wire invariants, `eight_bit` tells the truth, and an
//! independent parser (mail-parser) gets everything back.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{TempDir, assert_wire_format};
use mail_parser::{MessageParser, MimeHeaders, PartType};
use message::{Address, Attachment, Date, Mailbox, MessageBuilder};
use proptest::prelude::*;

/// Header text: any characters, control characters included, except the three a
/// header may never contain (CR, LF, NUL), which the builder rejects.
fn header_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[^\r\n\x00]{0,120}",
        "[ -~]{0,120}",
        "[a-zA-Z ,.\"\\\\()<>@;:]{0,40}",
    ]
}

/// Bodies as lines joined by any mix of line endings (or none): ordinary text, lines
/// starting with '.', lines long enough to need quoted-printable, and anything at all.
fn body_text() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        4 => "[^\r\n]{0,80}",
        2 => "\\.[^\r\n]{0,10}",
        1 => Just(".".to_owned()),
        1 => "[a-zé. ]{900,3000}",
        1 => any::<String>(),
    ];
    let separator = prop_oneof![Just("\r\n"), Just("\n"), Just("\r"), Just("")];
    prop::collection::vec((line, separator), 0..8).prop_map(|lines| {
        lines
            .into_iter()
            .flat_map(|(line, separator)| [line, separator.to_owned()])
            .collect()
    })
}

/// What the builder promises for body text: CRLF line endings, ending in CRLF.
fn normalized(text: &str) -> String {
    let mut out = text
        .replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace('\n', "\r\n");
    if !out.is_empty() && !out.ends_with("\r\n") {
        out.push_str("\r\n");
    }
    out
}

/// 96 cases keep the test at a fraction of a second; set PROPTEST_CASES for a longer run.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(96);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn rendered_messages_keep_invariants_and_parse_back(
        subject in header_text(),
        from_name in header_text(),
        to_name in header_text(),
        text in body_text(),
        html in prop::option::of(body_text()),
        attachments in prop::collection::vec(
            (prop::collection::vec(any::<u8>(), 0..400), "[^\r\n\x00/\\\\]{1,40}"),
            0..3,
        ),
        international in any::<bool>(),
    ) {
        let dir = TempDir::new("properties");
        let to_address = if international { "zoë@bücher.example" } else { "to@example.net" };
        let mut builder = MessageBuilder::new(Mailbox::new(
            Some(from_name.clone()),
            Address::parse("from@example.org").expect("valid"),
        ))
        .to(Mailbox::new(Some(to_name.clone()), Address::parse(to_address).expect("valid")))
        .subject(subject.as_str())
        .date(Date::from_unix(1_700_000_000))
        .message_id("property@example.org")
        .text(text.as_str());
        if let Some(html) = &html {
            builder = builder.html(html.as_str());
        }
        for (i, (bytes, name)) in attachments.iter().enumerate() {
            let path = dir.write(&format!("attachment-{i}"), bytes);
            builder = builder.attach(Attachment::from_path(path).filename(name.as_str()));
        }
        let message = builder.build().expect("builds");
        let rendered = message.to_bytes().expect("renders");

        assert_wire_format(&rendered);
        prop_assert_eq!(message.envelope().eight_bit, rendered.iter().any(|&b| b >= 0x80));
        prop_assert_eq!(message.envelope().smtputf8, international);
        prop_assert_eq!(message.expected_len(), rendered.len() as u64);

        let parsed = MessageParser::default().parse(&rendered).expect("parses");
        prop_assert_eq!(parsed.subject().unwrap_or(""), subject.as_str());
        let from = parsed.from().and_then(|a| a.first()).expect("From");
        prop_assert_eq!(from.name().unwrap_or(""), from_name.as_str());
        prop_assert_eq!(from.address(), Some("from@example.org"));
        let to = parsed.to().and_then(|a| a.first()).expect("To");
        prop_assert_eq!(to.name().unwrap_or(""), to_name.as_str());
        prop_assert_eq!(to.address(), Some(to_address));

        prop_assert_eq!(parsed.body_text(0).unwrap_or_default(), normalized(&text));
        if let Some(html) = &html {
            prop_assert_eq!(parsed.body_html(0).unwrap_or_default(), normalized(html));
        }
        prop_assert_eq!(parsed.attachment_count(), attachments.len());
        for (i, (bytes, name)) in attachments.iter().enumerate() {
            let part = parsed.attachment(i as u32).expect("attachment");
            // mail-parser turns text/* parts (the type is guessed from the arbitrary
            // name) into lossy UTF-8, so decode the part's base64 on the wire as well.
            let raw = &rendered[part.raw_body_offset() as usize..part.raw_end_offset() as usize];
            let base64: Vec<u8> = raw.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
            prop_assert_eq!(&STANDARD.decode(base64).expect("base64"), bytes);
            if matches!(part.body, PartType::Binary(_)) {
                prop_assert_eq!(part.contents(), bytes.as_slice());
            }
            prop_assert_eq!(part.attachment_name(), Some(name.as_str()));
        }
    }
}

/// A prebuilt message: header-like lines (Bcc among them, some folded), a blank line, and
/// body lines, joined by any line endings; sometimes any bytes at all.
fn prebuilt_input() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![
        Just("To: b@example.org".to_owned()),
        Just("Bcc: hidden@example.net".to_owned()),
        Just("bcc: x@example.net,\n y@example.net".to_owned()),
        "[A-Za-z-]{1,12}: [ -~]{0,60}",
        " [ -~]{0,40}",
    ];
    let body = prop_oneof![
        "[^\r\n]{0,80}",
        "\\.[ -~]{0,10}",
        Just("Bcc: in the body".to_owned())
    ];
    let ending = prop_oneof![Just("\n"), Just("\r\n")];
    let structured = (
        prop::collection::vec((field, ending.clone()), 0..8),
        prop::collection::vec((body, ending), 0..8),
    )
        .prop_map(|(fields, body)| {
            let mut out = String::new();
            for (line, end) in fields {
                out.push_str(&line);
                out.push_str(end);
            }
            out.push('\n');
            for (line, end) in body {
                out.push_str(&line);
                out.push_str(end);
            }
            out.into_bytes()
        });
    prop_oneof![4 => structured, 1 => prop::collection::vec(any::<u8>(), 0..400)]
}

proptest! {
    #![proptest_config(config())]

    /// Whatever the input, a prebuilt message is refused or keeps the wire invariants: CRLF
    /// only, lines of at most 998 octets, no NUL, no Bcc field left in the header section,
    /// and the body exactly as given (line ends aside).
    #[test]
    fn prebuilt_messages_are_refused_or_sendable(input in prebuilt_input()) {
        let prebuilt = message::Prebuilt {
            from: Some(Mailbox::parse("a@example.com").expect("valid")),
            recipients: vec![Address::parse("r@example.org").expect("valid")],
            ..message::Prebuilt::default()
        };
        let Ok(message) = prebuilt.build(&input) else {
            return Ok(());
        };
        let bytes = message.to_bytes().expect("renders");
        prop_assert!(bytes.ends_with(b"\r\n"));
        prop_assert!(!bytes.contains(&0));
        let lines: Vec<&[u8]> = bytes.split_inclusive(|&b| b == b'\n').collect();
        for line in &lines {
            prop_assert!(line.ends_with(b"\r\n"));
            prop_assert!(!line[..line.len() - 2].contains(&b'\r'));
            prop_assert!(line.len() - 2 <= message::MAX_LINE);
        }
        let header_end = lines.iter().position(|l| *l == b"\r\n").unwrap_or(lines.len());
        for line in &lines[..header_end] {
            prop_assert!(!line.to_ascii_lowercase().starts_with(b"bcc:"));
        }
        let body_in = input.split(|&b| b == b'\n').collect::<Vec<_>>();
        if let Some(blank) = body_in.iter().position(|l| l.is_empty() || *l == b"\r") {
            let tail: Vec<u8> = body_in[blank + 1..]
                .iter()
                .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
                .collect::<Vec<_>>()
                .join(&b"\r\n"[..]);
            prop_assert!(bytes.windows(tail.len().max(1)).any(|w| w == tail.as_slice()) || tail.is_empty());
        }
    }
}
