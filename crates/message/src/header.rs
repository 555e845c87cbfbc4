//! Header fields on the wire: folding (RFC 5322 §2.2.3), encoded-words (RFC 2047),
//! quoted display names (RFC 5322 §3.2.4), RFC 2231 parameters, and the checks on
//! header names, Message-IDs and content types.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::address::{Mailbox, forbidden_control, is_atext_or_utf8, is_dot_atom_text};
use crate::error::Error;

/// Lines are folded to stay within this many octets where possible (RFC 5322 §2.1.1).
pub(crate) const PREFERRED_LINE: usize = 78;
/// No line may be longer than this many octets, CRLF excluded (RFC 5322 §2.1.1).
pub(crate) const MAX_LINE: usize = 998;
/// An encoded-word may not be longer than 75 characters (RFC 2047 §2).
const MAX_ENCODED_WORD: usize = 75;
/// `=?utf-8?b?` plus `?=`.
const ENCODED_WORD_OVERHEAD: usize = 12;
/// Words longer than this make a text be encoded rather than sent as it is, so that
/// folding can keep every line within [`PREFERRED_LINE`].
const MAX_PLAIN_WORD: usize = 70;

/// Headers the builder writes itself; `.header()` may not add them.
pub(crate) const RESERVED: [&str; 11] = [
    "Date",
    "From",
    "To",
    "Cc",
    "Bcc",
    "Reply-To",
    "Subject",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
];

/// One header field being written: the name, then words separated by single spaces,
/// folded (CRLF before the space) when the next word would pass [`PREFERRED_LINE`].
pub(crate) struct HeaderField {
    name: String,
    out: String,
    line_len: usize,
    has_word: bool,
}

impl HeaderField {
    pub(crate) fn new(name: &str) -> HeaderField {
        HeaderField {
            name: name.to_owned(),
            out: format!("{name}:"),
            line_len: name.len() + 1,
            has_word: false,
        }
    }

    /// Appends a space and `word`, folding first if that keeps the line shorter.
    ///
    /// The first word stays next to the name unless that would pass [`MAX_LINE`]. An
    /// empty word (two spaces in a row in a user value) never folds, so that no
    /// continuation line consists of whitespace only.
    pub(crate) fn word(&mut self, word: &str) {
        let end = self.line_len + 1 + word.len();
        if !word.is_empty() && end > PREFERRED_LINE && (self.has_word || end > MAX_LINE) {
            self.fold();
        }
        self.out.push(' ');
        self.out.push_str(word);
        self.line_len += 1 + word.len();
        self.has_word = true;
    }

    fn fold(&mut self) {
        self.out.push_str("\r\n");
        self.line_len = 0;
    }

    /// Appends `text` as RFC 2047 "B" encoded-words, sized to fill the current line.
    ///
    /// Each word holds whole UTF-8 characters; decoders join adjacent encoded-words
    /// and drop the whitespace between them, so the text comes back exactly.
    pub(crate) fn encoded(&mut self, text: &str) {
        let mut rest = text;
        while let Some(first) = rest.chars().next() {
            let mut room = PREFERRED_LINE
                .saturating_sub(self.line_len + 1)
                .min(MAX_ENCODED_WORD);
            if encoded_word_len(first.len_utf8()) > room {
                self.fold();
                room = MAX_ENCODED_WORD;
            }
            let mut end = 0;
            for c in rest.chars() {
                if encoded_word_len(end + c.len_utf8()) > room {
                    break;
                }
                end += c.len_utf8();
            }
            let word = format!("=?utf-8?b?{}?=", STANDARD.encode(&rest[..end]));
            self.out.push(' ');
            self.out.push_str(&word);
            self.line_len += 1 + word.len();
            self.has_word = true;
            rest = &rest[end..];
        }
    }

    /// Ends the field with CRLF, after checking that no line passes [`MAX_LINE`].
    pub(crate) fn finish(mut self) -> Result<String, Error> {
        if self.out.split("\r\n").any(|line| line.len() > MAX_LINE) {
            return Err(Error::HeaderTooLong { header: self.name });
        }
        self.out.push_str("\r\n");
        Ok(self.out)
    }
}

fn encoded_word_len(bytes: usize) -> usize {
    ENCODED_WORD_OVERHEAD + bytes.div_ceil(3) * 4
}

/// True when `text` can go on the wire as it is and still come back unchanged:
/// printable ASCII words of moderate length, single spaces, nothing that looks like
/// an encoded-word.
fn is_plain(text: &str) -> bool {
    !text.is_empty()
        && text.bytes().all(|b| (b' '..=b'~').contains(&b))
        && !text.contains("=?")
        && text
            .split(' ')
            .all(|word| !word.is_empty() && word.len() <= MAX_PLAIN_WORD)
}

/// Appends unstructured text (Subject, RFC 5322 §3.2.5): as it is when plain,
/// otherwise as encoded-words.
pub(crate) fn push_unstructured(field: &mut HeaderField, text: &str) {
    if is_plain(text) {
        for word in text.split(' ') {
            field.word(word);
        }
    } else {
        field.encoded(text);
    }
}

/// Appends an extra user header value: printable ASCII (and tabs) verbatim, folded
/// only at existing spaces, because the value may be structured (a URL, a list of
/// message ids); anything else as encoded-words, as for unstructured text.
pub(crate) fn push_user_value(field: &mut HeaderField, value: &str) {
    if value
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
    {
        for word in value.split(' ') {
            field.word(word);
        }
    } else {
        field.encoded(value);
    }
}

/// Appends a display name (RFC 5322 §3.2.5 phrase): atoms as they are, other plain
/// ASCII as a quoted-string, anything else as encoded-words (RFC 2047 §5 (3)).
pub(crate) fn push_phrase(field: &mut HeaderField, name: &str) {
    if !is_plain(name) {
        field.encoded(name);
    } else if name
        .split(' ')
        .all(|atom| atom.chars().all(is_atext_or_utf8))
    {
        for atom in name.split(' ') {
            field.word(atom);
        }
    } else {
        let mut quoted = String::with_capacity(name.len() + 2);
        quoted.push('"');
        for c in name.chars() {
            if c == '"' || c == '\\' {
                quoted.push('\\');
            }
            quoted.push(c);
        }
        quoted.push('"');
        field.word(&quoted);
    }
}

/// An address-list header (From, Reply-To, To, Cc; RFC 5322 §3.6.2, §3.6.3).
pub(crate) fn address_list(name: &str, mailboxes: &[Mailbox]) -> Result<String, Error> {
    let mut field = HeaderField::new(name);
    for (i, mailbox) in mailboxes.iter().enumerate() {
        let comma = if i + 1 < mailboxes.len() { "," } else { "" };
        match mailbox.name.as_deref() {
            Some(display) if !display.is_empty() => {
                push_phrase(&mut field, display);
                field.word(&format!("<{}>{comma}", mailbox.address));
            }
            _ => field.word(&format!("{}{comma}", mailbox.address)),
        }
    }
    field.finish()
}

/// Appends a MIME parameter `name="value"`, or its RFC 2231 form
/// `name*=utf-8''percent-encoded` (split into `name*0*`, `name*1*`, ... when long)
/// for values that are not short printable ASCII. `last` leaves off the `;`.
pub(crate) fn push_parameter(field: &mut HeaderField, name: &str, value: &str, last: bool) {
    let semicolon = if last { "" } else { ";" };
    if is_plain(value) && value.len() <= 60 {
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
        field.word(&format!("{name}=\"{escaped}\"{semicolon}"));
        return;
    }
    let encoded = percent_encode(value);
    if name.len() + encoded.len() <= 50 {
        field.word(&format!("{name}*=utf-8''{encoded}{semicolon}"));
        return;
    }
    let sections = percent_encoded_sections(value, 50);
    let count = sections.len();
    for (i, section) in sections.iter().enumerate() {
        let charset = if i == 0 { "utf-8''" } else { "" };
        let end = if i + 1 < count { ";" } else { semicolon };
        field.word(&format!("{name}*{i}*={charset}{section}{end}"));
    }
}

/// RFC 2231 §7 / RFC 5987 value-chars: attr-char as it is, every other octet as `%XX`.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-encodes `value` in sections of at most `max` characters, each holding
/// whole UTF-8 characters: some decoders (mail-parser among them) decode every
/// section on its own.
fn percent_encoded_sections(value: &str, max: usize) -> Vec<String> {
    let mut sections = Vec::new();
    let mut current = String::new();
    let mut buffer = [0u8; 4];
    for c in value.chars() {
        let encoded = percent_encode(c.encode_utf8(&mut buffer));
        if !current.is_empty() && current.len() + encoded.len() > max {
            sections.push(std::mem::take(&mut current));
        }
        current.push_str(&encoded);
    }
    if !current.is_empty() {
        sections.push(current);
    }
    sections
}

/// Checks a user header name: RFC 5322 ftext (printable ASCII except ':'), at most
/// 76 characters so that `Name: ` fits a line, and not one the builder writes.
pub(crate) fn check_header_name(name: &str) -> Result<(), Error> {
    if forbidden_control(name).is_some() {
        return Err(Error::HeaderInjection {
            header: name.to_owned(),
        });
    }
    let ftext = name.bytes().all(|b| (33..=126).contains(&b) && b != b':');
    if name.is_empty() || name.len() > 76 || !ftext {
        return Err(Error::InvalidHeaderName {
            name: name.to_owned(),
        });
    }
    if RESERVED
        .iter()
        .any(|reserved| reserved.eq_ignore_ascii_case(name))
    {
        return Err(Error::ReservedHeader {
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// Fails with [`Error::HeaderInjection`] naming `header` if `value` has CR, LF or NUL.
pub(crate) fn check_no_injection(header: &str, value: &str) -> Result<(), Error> {
    match forbidden_control(value) {
        Some(_) => Err(Error::HeaderInjection {
            header: header.to_owned(),
        }),
        None => Ok(()),
    }
}

/// Normalizes `id@host` or `<id@host>` to `<id@host>` after checking RFC 5322 §3.6.4
/// msg-id syntax (dot-atom-text `@` dot-atom-text or `[literal]`, UTF-8 allowed).
pub(crate) fn normalize_message_id(message_id: &str) -> Result<String, Error> {
    check_no_injection("Message-ID", message_id)?;
    let invalid = |reason| Error::InvalidMessageId {
        message_id: message_id.to_owned(),
        reason,
    };
    let trimmed = message_id.trim();
    let inner = match (trimmed.strip_prefix('<'), trimmed.ends_with('>')) {
        (Some(open), true) => &open[..open.len() - 1],
        (None, false) => trimmed,
        _ => return Err(invalid("its angle brackets do not match")),
    };
    let (left, right) = inner
        .split_once('@')
        .ok_or(invalid("it has no @ (use the form id@host)"))?;
    if !is_dot_atom_text(left) {
        return Err(invalid(
            "the part before the @ is not a dot-atom (letters, digits, !#$%&'*+-/=?^_`{|}~ and single dots)",
        ));
    }
    let literal = right
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .is_some_and(|r| {
            r.bytes()
                .all(|b| (33..=126).contains(&b) && !b"[]\\".contains(&b))
        });
    if !literal && !is_dot_atom_text(right) {
        return Err(invalid(
            "the part after the @ is not a host name or [literal]",
        ));
    }
    Ok(format!("<{inner}>"))
}

/// Checks a content type given by the user: `type/subtype` tokens (RFC 2045 §5.1),
/// optionally followed by `; parameters` in printable ASCII. Returns it trimmed.
pub(crate) fn check_content_type(content_type: &str) -> Result<String, Error> {
    check_no_injection("Content-Type", content_type)?;
    let trimmed = content_type.trim();
    let (essence, parameters) = trimmed.split_once(';').unwrap_or((trimmed, ""));
    let is_token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| (33..=126).contains(&b) && !b"()<>@,;:\\\"/[]?=".contains(&b))
    };
    let essence_ok = essence
        .trim()
        .split_once('/')
        .is_some_and(|(kind, subtype)| is_token(kind) && is_token(subtype));
    let parameters_ok = parameters
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
    if essence_ok && parameters_ok && trimmed.len() <= 200 {
        Ok(trimmed.to_owned())
    } else {
        Err(Error::InvalidContentType {
            content_type: content_type.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Address;

    fn decode_encoded_words(value: &str) -> String {
        let mut bytes = Vec::new();
        for word in value.split_whitespace() {
            let payload = word
                .strip_prefix("=?utf-8?b?")
                .and_then(|w| w.strip_suffix("?="))
                .expect("an encoded-word");
            bytes.extend(STANDARD.decode(payload).expect("base64"));
        }
        String::from_utf8(bytes).expect("whole UTF-8 characters")
    }

    fn field_lines(field: &str) -> Vec<&str> {
        let body = field.strip_suffix("\r\n").expect("ends with CRLF");
        body.split("\r\n").collect()
    }

    #[test]
    fn encoded_words_stay_short_and_keep_characters_whole() {
        let texts = [
            "é",
            "Grüße aus Köln",
            &"ü".repeat(100),
            &"😀".repeat(40),
            &"a€😀b".repeat(30),
            "plain with one ä",
        ];
        for text in texts {
            let mut field = HeaderField::new("Subject");
            field.encoded(text);
            let rendered = field.finish().expect("fits");
            let lines = field_lines(&rendered);
            let mut words = String::new();
            for (i, line) in lines.iter().enumerate() {
                assert!(line.len() <= PREFERRED_LINE, "{line:?}");
                let line = if i == 0 {
                    line.strip_prefix("Subject:").expect("name")
                } else {
                    line
                };
                for word in line.split(' ').filter(|w| !w.is_empty()) {
                    assert!(word.len() <= MAX_ENCODED_WORD, "{word}");
                    // Every word decodes on its own to whole characters.
                    decode_encoded_words(word);
                }
                words.push_str(line);
                words.push(' ');
            }
            assert_eq!(decode_encoded_words(&words), text);
        }
    }

    #[test]
    fn encoded_word_table() {
        let cases: &[(&str, &str)] = &[
            ("é", "Subject: =?utf-8?b?w6k=?=\r\n"),
            ("Grüße", "Subject: =?utf-8?b?R3LDvMOfZQ==?=\r\n"),
            ("tab\there", "Subject: =?utf-8?b?dGFiCWhlcmU=?=\r\n"),
            (" leading", "Subject: =?utf-8?b?IGxlYWRpbmc=?=\r\n"),
            (
                "=?utf-8?q?x?=",
                "Subject: =?utf-8?b?PT91dGYtOD9xP3g/PQ==?=\r\n",
            ),
        ];
        for &(text, expected) in cases {
            let mut field = HeaderField::new("Subject");
            push_unstructured(&mut field, text);
            assert_eq!(field.finish().expect("fits"), expected, "{text:?}");
        }
    }

    #[test]
    fn folding_table() {
        let long = "word ".repeat(30);
        let long = long.trim_end();
        let cases: &[(&str, &str)] = &[
            ("Hello", "Subject: Hello\r\n"),
            ("", "Subject:\r\n"),
            (
                long,
                "Subject: word word word word word word word word word word word word word word\r\n word word word word word word word word word word word word word word word\r\n word\r\n",
            ),
        ];
        for &(text, expected) in cases {
            let mut field = HeaderField::new("Subject");
            push_unstructured(&mut field, text);
            assert_eq!(field.finish().expect("fits"), expected, "{text:?}");
        }
    }

    #[test]
    fn user_values_fold_only_at_spaces_and_too_long_words_fail() {
        let mut field = HeaderField::new("X-Long");
        push_user_value(&mut field, &format!("{} b  c ", "a".repeat(80)));
        let rendered = field.finish().expect("fits");
        assert_eq!(
            rendered,
            format!("X-Long: {}\r\n b  c \r\n", "a".repeat(80))
        );
        // Unfolding (removing CRLF before WSP) gives the value back.
        assert_eq!(
            rendered.replace("\r\n ", " "),
            format!("X-Long: {} b  c \r\n", "a".repeat(80))
        );

        let mut field = HeaderField::new("X-Url");
        push_user_value(&mut field, &"u".repeat(1000));
        match field.finish() {
            Err(Error::HeaderTooLong { header }) => assert_eq!(header, "X-Url"),
            other => panic!("expected HeaderTooLong, got {other:?}"),
        }
    }

    #[test]
    fn display_names() {
        let address = Address::parse("a@example.org").expect("valid");
        let cases: &[(Option<&str>, &str)] = &[
            (None, "To: a@example.org\r\n"),
            (Some(""), "To: a@example.org\r\n"),
            (Some("Alice"), "To: Alice <a@example.org>\r\n"),
            (
                Some("Alice B Smith"),
                "To: Alice B Smith <a@example.org>\r\n",
            ),
            (
                Some("Smith, Alice"),
                "To: \"Smith, Alice\" <a@example.org>\r\n",
            ),
            (
                Some("Alice Q. Smith"),
                "To: \"Alice Q. Smith\" <a@example.org>\r\n",
            ),
            (
                Some("say \"hi\" \\o/"),
                "To: \"say \\\"hi\\\" \\\\o/\" <a@example.org>\r\n",
            ),
            (Some("a<b>;c@d"), "To: \"a<b>;c@d\" <a@example.org>\r\n"),
            (Some("Jörg"), "To: =?utf-8?b?SsO2cmc=?= <a@example.org>\r\n"),
            (
                Some("two  spaces"),
                "To: =?utf-8?b?dHdvICBzcGFjZXM=?= <a@example.org>\r\n",
            ),
        ];
        for &(name, expected) in cases {
            let mailbox = Mailbox::new(name.map(str::to_owned), address.clone());
            assert_eq!(
                address_list("To", &[mailbox]).expect("fits"),
                expected,
                "{name:?}"
            );
        }
    }

    #[test]
    fn address_lists_fold_between_mailboxes() {
        let mailboxes: Vec<Mailbox> = (0..6)
            .map(|i| Mailbox::parse(&format!("Person {i} <person{i}@example.org>")).expect("valid"))
            .collect();
        let rendered = address_list("To", &mailboxes).expect("fits");
        assert!(
            rendered
                .split("\r\n")
                .all(|line| line.len() <= PREFERRED_LINE)
        );
        assert_eq!(
            rendered,
            "To: Person 0 <person0@example.org>, Person 1 <person1@example.org>, Person 2\r\n <person2@example.org>, Person 3 <person3@example.org>, Person 4\r\n <person4@example.org>, Person 5 <person5@example.org>\r\n"
        );
        let idn = Mailbox::parse("用户@例子.广告").expect("valid");
        assert_eq!(
            address_list("To", &[idn]).expect("fits"),
            "To: 用户@例子.广告\r\n"
        );
    }

    #[test]
    fn parameters() {
        let cases: &[(&str, &str)] = &[
            ("report.pdf", "X: name=\"report.pdf\"\r\n"),
            ("my \"q\".txt", "X: name=\"my \\\"q\\\".txt\"\r\n"),
            ("résumé.pdf", "X: name*=utf-8''r%C3%A9sum%C3%A9.pdf\r\n"),
            ("a b", "X: name=\"a b\"\r\n"),
            (
                &"ä".repeat(20),
                "X: name*0*=utf-8''%C3%A4%C3%A4%C3%A4%C3%A4%C3%A4%C3%A4%C3%A4%C3%A4;\r\n name*1*=%C3%A4%C3%A4%C3%A4%C3%A4%C3%A4%C3%A4%C3%A4%C3%A4;\r\n name*2*=%C3%A4%C3%A4%C3%A4%C3%A4\r\n",
            ),
        ];
        for &(value, expected) in cases {
            let mut field = HeaderField::new("X");
            push_parameter(&mut field, "name", value, true);
            assert_eq!(field.finish().expect("fits"), expected, "{value:?}");
        }
        let value = "€x😀".repeat(20);
        let sections = percent_encoded_sections(&value, 50);
        assert_eq!(sections.concat(), percent_encode(&value));
        for section in sections {
            assert!(section.len() <= 50);
            // Every section decodes to whole characters on its own.
            let bytes: Vec<u8> = section
                .split('%')
                .enumerate()
                .flat_map(|(i, piece)| {
                    if i == 0 {
                        piece.as_bytes().to_vec()
                    } else {
                        let mut bytes = vec![u8::from_str_radix(&piece[..2], 16).expect("hex")];
                        bytes.extend_from_slice(&piece.as_bytes()[2..]);
                        bytes
                    }
                })
                .collect();
            assert!(String::from_utf8(bytes).is_ok(), "{section}");
        }
    }

    #[test]
    fn header_names() {
        assert!(check_header_name("X-Mailer").is_ok());
        assert!(check_header_name("List-Unsubscribe").is_ok());
        for bad in ["", "X Mailer", "X:Mailer", "Xé", &"X".repeat(77)] {
            assert!(
                matches!(check_header_name(bad), Err(Error::InvalidHeaderName { ref name }) if name == bad),
                "{bad:?}"
            );
        }
        for injected in ["X-A\r\nBcc", "X-A\n", "X\0"] {
            assert!(
                matches!(check_header_name(injected), Err(Error::HeaderInjection { ref header }) if header == injected),
                "{injected:?}"
            );
        }
        for reserved in RESERVED.iter().map(|r| r.to_string()).chain([
            "bcc".into(),
            "SUBJECT".into(),
            "message-id".into(),
        ]) {
            assert!(
                matches!(check_header_name(&reserved), Err(Error::ReservedHeader { ref name }) if *name == reserved),
                "{reserved:?}"
            );
        }
    }

    #[test]
    fn message_ids() {
        let good: &[(&str, &str)] = &[
            ("1@example.org", "<1@example.org>"),
            ("<1@example.org>", "<1@example.org>"),
            (" <a.b+c@host> ", "<a.b+c@host>"),
            ("x@[127.0.0.1]", "<x@[127.0.0.1]>"),
            ("ü@bücher.example", "<ü@bücher.example>"),
        ];
        for &(input, expected) in good {
            assert_eq!(normalize_message_id(input).expect(input), expected);
        }
        let bad: &[(&str, &str)] = &[
            ("<1@example.org", "its angle brackets do not match"),
            ("1example.org", "it has no @ (use the form id@host)"),
            (
                "a b@host",
                "the part before the @ is not a dot-atom (letters, digits, !#$%&'*+-/=?^_`{|}~ and single dots)",
            ),
            (
                "a..b@host",
                "the part before the @ is not a dot-atom (letters, digits, !#$%&'*+-/=?^_`{|}~ and single dots)",
            ),
            (
                "a@ho st",
                "the part after the @ is not a host name or [literal]",
            ),
            (
                "a@b@c",
                "the part after the @ is not a host name or [literal]",
            ),
        ];
        for &(input, expected) in bad {
            match normalize_message_id(input) {
                Err(Error::InvalidMessageId { reason, .. }) => {
                    assert_eq!(reason, expected, "{input}")
                }
                other => panic!("{input}: expected InvalidMessageId, got {other:?}"),
            }
        }
        assert!(matches!(
            normalize_message_id("1@x\r\nBcc: y@z"),
            Err(Error::HeaderInjection { ref header }) if header == "Message-ID"
        ));
    }

    #[test]
    fn content_types() {
        for good in [
            "application/pdf",
            " text/plain; charset=iso-8859-1 ",
            "image/svg+xml",
        ] {
            assert_eq!(check_content_type(good).expect(good), good.trim());
        }
        for bad in [
            "pdf",
            "text/",
            "/plain",
            "text/pl ain",
            "text/plain; ü",
            "a/b/c",
        ] {
            assert!(
                matches!(
                    check_content_type(bad),
                    Err(Error::InvalidContentType { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            check_content_type("text/plain\r\nBcc: x@y"),
            Err(Error::HeaderInjection { ref header }) if header == "Content-Type"
        ));
    }
}
