//! Addresses (RFC 5322 §3.4.1 addr-spec, widened to UTF-8 by RFC 6531/6532) and
//! mailboxes (an address with an optional display name).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::error::Error;

/// A validated addr-spec, `local@domain`.
///
/// The local part is a dot-atom or a quoted-string of at most 64 octets, the domain
/// is dot-separated labels or an address literal such as `[192.0.2.1]` of at most 255
/// octets, and the whole address is at most 254 octets (RFC 5321 §4.5.3.1).
/// Non-ASCII local parts and domains are accepted (RFC 6531); such an address needs
/// the SMTPUTF8 extension and [`Address::is_ascii`] is false.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Address {
    text: String,
    at: usize,
}

impl Address {
    /// Validates `address` as an addr-spec; the error gives the reason in words.
    pub fn parse(address: &str) -> Result<Address, Error> {
        match check_addr_spec(address) {
            Ok(at) => Ok(Address {
                text: address.to_owned(),
                at,
            }),
            Err(reason) => Err(Error::InvalidAddress {
                address: address.to_owned(),
                reason,
            }),
        }
    }

    /// The address as text, exactly as it was given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The part before the last `@`.
    pub fn local_part(&self) -> &str {
        &self.text[..self.at]
    }

    /// The part after the last `@`.
    pub fn domain(&self) -> &str {
        &self.text[self.at + 1..]
    }

    /// False for an internationalized address (RFC 6531), which needs SMTPUTF8.
    pub fn is_ascii(&self) -> bool {
        self.text.is_ascii()
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Address {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Address::parse(s)
    }
}

/// An address with an optional display name, as in `From: Name <local@domain>`.
///
/// The name is plain text; the renderer quotes or RFC 2047-encodes it as needed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mailbox {
    /// The display name, unquoted and undecoded text (`None` or empty: no name).
    pub name: Option<String>,
    /// The address.
    pub address: Address,
}

impl Mailbox {
    /// A mailbox from its parts. The name is checked for line breaks when the
    /// message is built.
    pub fn new(name: Option<String>, address: Address) -> Mailbox {
        Mailbox { name, address }
    }

    /// Parses `a@b`, `<a@b>`, `Name <a@b>` or `"Quoted, Name" <a@b>`.
    ///
    /// Surrounding whitespace is ignored; a quoted name is unescaped.
    pub fn parse(mailbox: &str) -> Result<Mailbox, Error> {
        let invalid = |reason| Error::InvalidAddress {
            address: mailbox.to_owned(),
            reason,
        };
        if let Some(reason) = forbidden_control(mailbox) {
            return Err(invalid(reason));
        }
        let text = mailbox.trim();
        if !text.ends_with('>') {
            if text.contains('<') {
                return Err(invalid("it has a '<' without a closing '>'"));
            }
            return Ok(Mailbox::new(None, Address::parse(text)?));
        }
        let (name, angle) = if let Some(quoted) = text.strip_prefix('"') {
            let (name, rest) = unquote(quoted)
                .ok_or_else(|| invalid("the quoted display name has no closing quote"))?;
            let rest = rest.trim_start();
            if !rest.starts_with('<') {
                return Err(invalid("expected <address> after the quoted display name"));
            }
            (name, rest)
        } else {
            let lt = text
                .find('<')
                .ok_or_else(|| invalid("it has a '>' without an opening '<'"))?;
            (text[..lt].trim().to_owned(), &text[lt..])
        };
        // `angle` starts with '<' and ends with '>', two different characters.
        let inner = angle[1..angle.len() - 1].trim();
        let address = Address::parse(inner)?;
        let name = if name.is_empty() { None } else { Some(name) };
        Ok(Mailbox::new(name, address))
    }
}

impl From<Address> for Mailbox {
    fn from(address: Address) -> Mailbox {
        Mailbox::new(None, address)
    }
}

impl FromStr for Mailbox {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mailbox::parse(s)
    }
}

/// Shows the mailbox the way a person would type it: `Name <a@b>`, with the name
/// quoted when it is not a plain phrase. Headers use the encoded form instead.
impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name.as_deref() {
            Some(name) if !name.is_empty() => {
                let plain = name
                    .split(' ')
                    .all(|word| !word.is_empty() && word.chars().all(is_atext_or_utf8));
                if plain {
                    write!(f, "{name} <{}>", self.address)
                } else {
                    f.write_str("\"")?;
                    for c in name.chars() {
                        if c == '"' || c == '\\' {
                            f.write_str("\\")?;
                        }
                        write!(f, "{c}")?;
                    }
                    write!(f, "\" <{}>", self.address)
                }
            }
            _ => write!(f, "{}", self.address),
        }
    }
}

/// Splits `rest` (the text after an opening quote) at the closing quote, returning
/// the unescaped content and what follows the quote.
fn unquote(rest: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = rest.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?.1),
            '"' => return Some((out, &rest[i + 1..])),
            _ => out.push(c),
        }
    }
    None
}

/// The reason a string may not appear in a header at all, if it contains CR, LF or NUL.
pub(crate) fn forbidden_control(s: &str) -> Option<&'static str> {
    if s.contains(['\r', '\n']) {
        Some("it contains a line break")
    } else if s.contains('\0') {
        Some("it contains a NUL byte")
    } else {
        None
    }
}

/// RFC 5322 atext, extended with every non-ASCII, non-control character (RFC 6532 §3.2).
pub(crate) fn is_atext_or_utf8(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || "!#$%&'*+-/=?^_`{|}~".contains(c)
        || (!c.is_ascii() && !c.is_control())
}

/// True for a dot-atom-text: atext runs separated by single dots.
pub(crate) fn is_dot_atom_text(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(is_atext_or_utf8))
}

/// Checks an addr-spec and returns the index of the `@` that separates local part and domain.
fn check_addr_spec(s: &str) -> Result<usize, &'static str> {
    if s.is_empty() {
        return Err("it is empty");
    }
    if let Some(reason) = forbidden_control(s) {
        return Err(reason);
    }
    if s.chars().any(char::is_control) {
        return Err("it contains a control character");
    }
    // The domain cannot contain '@', so the last one is the separator even when a
    // quoted local part contains '@' itself.
    let at = s
        .rfind('@')
        .ok_or("it has no @ between local part and domain")?;
    let (local, domain) = (&s[..at], &s[at + 1..]);
    check_local_part(local)?;
    check_domain(domain)?;
    if s.len() > 254 {
        return Err("it is longer than 254 octets");
    }
    Ok(at)
}

fn check_local_part(local: &str) -> Result<(), &'static str> {
    if local.is_empty() {
        return Err("the local part (before the @) is empty");
    }
    if local.len() > 64 {
        return Err("the local part (before the @) is longer than 64 octets");
    }
    if let Some(quoted) = local.strip_prefix('"') {
        let inner = quoted
            .strip_suffix('"')
            .ok_or("the quoted local part has no closing quote")?;
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(' '..='~') => {}
                    Some(_) => {
                        return Err(
                            "the quoted local part escapes a character that cannot be escaped",
                        );
                    }
                    None => return Err("the quoted local part ends with a lone backslash"),
                },
                '"' => return Err("the quoted local part contains an unescaped quote"),
                _ => {}
            }
        }
        return Ok(());
    }
    if local.contains(char::is_whitespace) {
        return Err("the local part contains whitespace (remove it, or quote the local part)");
    }
    if !local.chars().all(|c| c == '.' || is_atext_or_utf8(c)) {
        return Err(
            "the local part contains a character that must be quoted, such as ()<>[]:;@\\,\"",
        );
    }
    if !is_dot_atom_text(local) {
        return Err("the local part has a leading, trailing or double dot");
    }
    Ok(())
}

fn check_domain(domain: &str) -> Result<(), &'static str> {
    if domain.is_empty() {
        return Err("the domain (after the @) is empty");
    }
    if domain.len() > 255 {
        return Err("the domain is longer than 255 octets");
    }
    if let Some(literal) = domain.strip_prefix('[') {
        let literal = literal
            .strip_suffix(']')
            .ok_or("the address literal has no closing ']'")?;
        let valid = match literal.get(..5) {
            Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => {
                literal[5..].parse::<Ipv6Addr>().is_ok()
            }
            _ => literal.parse::<Ipv4Addr>().is_ok(),
        };
        return if valid {
            Ok(())
        } else {
            Err("the address literal is not [IPv4] or [IPv6:address]")
        };
    }
    if domain.contains(char::is_whitespace) {
        return Err("the domain contains whitespace");
    }
    for label in domain.split('.') {
        if label.is_empty() {
            return Err("the domain has an empty label (a leading, trailing or double dot)");
        }
        if label.len() > 63 {
            return Err("a domain label is longer than 63 octets");
        }
        if !label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || (!c.is_ascii() && !c.is_control()))
        {
            return Err("the domain contains a character other than letters, digits, '-' and '.'");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a domain label starts or ends with '-'");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_addresses() {
        let cases: &[(&str, &str, &str, bool)] = &[
            ("a@b", "a", "b", true),
            ("user@example.org", "user", "example.org", true),
            (
                "first.last+tag@sub.example.co.uk",
                "first.last+tag",
                "sub.example.co.uk",
                true,
            ),
            (
                "!#$%&'*+-/=?^_`{|}~@example.org",
                "!#$%&'*+-/=?^_`{|}~",
                "example.org",
                true,
            ),
            (
                "\"john doe\"@example.org",
                "\"john doe\"",
                "example.org",
                true,
            ),
            ("\"a@b\"@example.org", "\"a@b\"", "example.org", true),
            (
                "\"esc\\\"aped\"@example.org",
                "\"esc\\\"aped\"",
                "example.org",
                true,
            ),
            ("user@[192.0.2.1]", "user", "[192.0.2.1]", true),
            (
                "user@[IPv6:2001:db8::1]",
                "user",
                "[IPv6:2001:db8::1]",
                true,
            ),
            ("user@localhost", "user", "localhost", true),
            ("x@a-b.c1", "x", "a-b.c1", true),
            ("用户@例子.广告", "用户", "例子.广告", false),
            ("jörg@bücher.example", "jörg", "bücher.example", false),
            ("ascii@bücher.example", "ascii", "bücher.example", false),
        ];
        for &(input, local, domain, ascii) in cases {
            let address = Address::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(address.as_str(), input);
            assert_eq!(address.to_string(), input);
            assert_eq!(address.local_part(), local, "{input}");
            assert_eq!(address.domain(), domain, "{input}");
            assert_eq!(address.is_ascii(), ascii, "{input}");
        }
    }

    #[test]
    fn bad_addresses_give_reasons() {
        let long_local = format!("{}@example.org", "a".repeat(65));
        let long_label = format!("a@{}.org", "b".repeat(64));
        let long_domain = format!("a@{}", vec!["c".repeat(63); 5].join("."));
        let long_total = format!("{}@{}", "a".repeat(64), vec!["d".repeat(60); 4].join("."));
        let cases: Vec<(&str, &str)> = vec![
            ("", "it is empty"),
            ("a@b\r\nc", "it contains a line break"),
            ("a@b\nc", "it contains a line break"),
            ("a\0@b", "it contains a NUL byte"),
            ("a\x07@b", "it contains a control character"),
            ("example.org", "it has no @ between local part and domain"),
            ("@example.org", "the local part (before the @) is empty"),
            ("user@", "the domain (after the @) is empty"),
            (
                &long_local,
                "the local part (before the @) is longer than 64 octets",
            ),
            (
                ".user@example.org",
                "the local part has a leading, trailing or double dot",
            ),
            (
                "user.@example.org",
                "the local part has a leading, trailing or double dot",
            ),
            (
                "us..er@example.org",
                "the local part has a leading, trailing or double dot",
            ),
            (
                "us er@example.org",
                "the local part contains whitespace (remove it, or quote the local part)",
            ),
            (
                " user@example.org",
                "the local part contains whitespace (remove it, or quote the local part)",
            ),
            (
                "a(b)@example.org",
                "the local part contains a character that must be quoted, such as ()<>[]:;@\\,\"",
            ),
            (
                "a@b@example.org",
                "the local part contains a character that must be quoted, such as ()<>[]:;@\\,\"",
            ),
            (
                "<a@example.org>",
                "the local part contains a character that must be quoted, such as ()<>[]:;@\\,\"",
            ),
            (
                "\"abc@example.org",
                "the quoted local part has no closing quote",
            ),
            (
                "\"a\"b\"@example.org",
                "the quoted local part contains an unescaped quote",
            ),
            (
                "\"ab\\\"@example.org",
                "the quoted local part ends with a lone backslash",
            ),
            (
                "user@example..org",
                "the domain has an empty label (a leading, trailing or double dot)",
            ),
            (
                "user@.example.org",
                "the domain has an empty label (a leading, trailing or double dot)",
            ),
            (
                "user@example.org.",
                "the domain has an empty label (a leading, trailing or double dot)",
            ),
            (
                "user@-example.org",
                "a domain label starts or ends with '-'",
            ),
            (
                "user@example-.org",
                "a domain label starts or ends with '-'",
            ),
            (
                "user@exa_mple.org",
                "the domain contains a character other than letters, digits, '-' and '.'",
            ),
            ("user@example.org ", "the domain contains whitespace"),
            (&long_label, "a domain label is longer than 63 octets"),
            (&long_domain, "the domain is longer than 255 octets"),
            (&long_total, "it is longer than 254 octets"),
            (
                "user@[300.1.1.1]",
                "the address literal is not [IPv4] or [IPv6:address]",
            ),
            (
                "user@[IPv6:zz::1]",
                "the address literal is not [IPv4] or [IPv6:address]",
            ),
            ("user@[1.2.3.4", "the address literal has no closing ']'"),
        ];
        for (input, expected) in cases {
            match Address::parse(input) {
                Err(Error::InvalidAddress { address, reason }) => {
                    assert_eq!(address, input);
                    assert_eq!(reason, expected, "{input:?}");
                }
                other => panic!("{input:?}: expected InvalidAddress, got {other:?}"),
            }
        }
    }

    #[test]
    fn error_message_escapes_line_breaks() {
        let error = Address::parse("a@b\r\nc").expect_err("line break");
        assert_eq!(
            error.to_string(),
            "the address \"a@b\\r\\nc\" is not valid: it contains a line break"
        );
    }

    #[test]
    fn mailboxes() {
        let cases: &[(&str, Option<&str>, &str)] = &[
            ("a@b", None, "a@b"),
            ("  a@b  ", None, "a@b"),
            ("<a@b>", None, "a@b"),
            ("< a@b >", None, "a@b"),
            ("Name <a@b>", Some("Name"), "a@b"),
            ("Two Words<a@b>", Some("Two Words"), "a@b"),
            ("\"Quoted, Name\" <a@b>", Some("Quoted, Name"), "a@b"),
            ("\"Es\\\"caped\\\\\" <a@b>", Some("Es\"caped\\"), "a@b"),
            ("\"\" <a@b>", None, "a@b"),
            (
                "Jörg Müller <jörg@bücher.example>",
                Some("Jörg Müller"),
                "jörg@bücher.example",
            ),
            ("\"a <b>\" <c@d>", Some("a <b>"), "c@d"),
        ];
        for &(input, name, address) in cases {
            let mailbox = Mailbox::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(mailbox.name.as_deref(), name, "{input}");
            assert_eq!(mailbox.address.as_str(), address, "{input}");
        }
    }

    #[test]
    fn bad_mailboxes() {
        let cases: &[(&str, &str)] = &[
            ("Name <a@b", "it has a '<' without a closing '>'"),
            ("Name a@b>", "it has a '>' without an opening '<'"),
            (
                "\"Name <a@b>",
                "the quoted display name has no closing quote",
            ),
            (
                "\"Name\" a@b>",
                "expected <address> after the quoted display name",
            ),
            ("Name\r\nBcc: x@y <a@b>", "it contains a line break"),
            ("<a@b>\n", "it contains a line break"),
            ("Name <>", "it is empty"),
        ];
        for &(input, expected) in cases {
            match Mailbox::parse(input) {
                Err(Error::InvalidAddress { reason, .. }) => {
                    assert_eq!(reason, expected, "{input:?}")
                }
                other => panic!("{input:?}: expected InvalidAddress, got {other:?}"),
            }
        }
    }

    #[test]
    fn mailbox_display_round_trips() {
        for input in [
            "a@b",
            "Name <a@b>",
            "\"Quoted, Name\" <a@b>",
            "\"Es\\\"c\" <a@b>",
        ] {
            let mailbox = Mailbox::parse(input).expect("valid");
            assert_eq!(mailbox.to_string(), input);
            assert_eq!(
                Mailbox::parse(&mailbox.to_string()).expect("valid"),
                mailbox
            );
        }
    }
}
