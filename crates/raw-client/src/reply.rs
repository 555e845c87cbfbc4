//! Parsing server replies (RFC 5321 §4.2), a pure function over bytes.
//!
//! ```text
//! Reply-line = *( Reply-code "-" [ textstring ] CRLF )
//!              Reply-code [ SP textstring ] CRLF
//! Reply-code = %x32-35 %x30-35 %x30-39
//! ```
//! "Need more bytes" is a normal outcome (`Ok(None)`), not an error.

use std::fmt;

use cli::{ServerReply, Violation};

/// The longest reply line accepted, CRLF included. RFC 5321 §4.5.3.1.5 sets 512 octets, but
/// real servers send longer texts; 1000 (the text-line limit) is what lettre accepts too.
pub const MAX_LINE: usize = 1000;
/// The most lines one reply may have, so an endless multiline reply ends in an error.
pub const MAX_LINES: usize = 100;

/// One complete reply: its code, enhanced status code (RFC 3463) and text lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code.
    pub code: u16,
    /// The enhanced status code of the first line, such as `2.1.0`, if it has one.
    pub enhanced: Option<String>,
    /// The text of each line, without the code, separator and CRLF.
    pub lines: Vec<String>,
}

impl Reply {
    /// 2xx: the command succeeded.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// The reply as failures quote it (`"550 5.1.1 no such user"`).
    pub fn shown(&self) -> ServerReply {
        ServerReply {
            code: self.code,
            lines: self.lines.clone(),
        }
    }
}

impl From<Reply> for ServerReply {
    fn from(reply: Reply) -> ServerReply {
        ServerReply {
            code: reply.code,
            lines: reply.lines,
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.shown().fmt(f)
    }
}

/// Parses one reply from the start of `input`.
///
/// Returns `Ok(Some((reply, used)))` with the number of bytes it took, `Ok(None)` when more
/// bytes are needed, or an error when the bytes can never become a valid reply.
pub fn parse(input: &[u8]) -> Result<Option<(Reply, usize)>, Violation> {
    let mut used = 0;
    let mut code = None;
    let mut enhanced = None;
    let mut lines = Vec::new();
    loop {
        let rest = &input[used..];
        let Some(lf) = rest.iter().position(|&b| b == b'\n') else {
            if rest.len() >= MAX_LINE {
                return Err(Violation::LineTooLong { max: MAX_LINE });
            }
            return Ok(None);
        };
        let line = &rest[..=lf];
        if line.len() > MAX_LINE {
            return Err(Violation::LineTooLong { max: MAX_LINE });
        }
        let Some(body) = line.strip_suffix(b"\r\n") else {
            return Err(Violation::BareLineEnding);
        };
        if body.contains(&b'\r') {
            return Err(Violation::BareLineEnding);
        }
        let (this_code, last, text) = parse_line(body)?;
        match code {
            None => {
                code = Some(this_code);
                enhanced = enhanced_code(this_code, &text);
            }
            Some(first) if first != this_code => {
                return Err(Violation::MixedCodes {
                    first,
                    other: this_code,
                });
            }
            Some(_) => {}
        }
        lines.push(text);
        used += line.len();
        if last {
            let code = code.unwrap_or(this_code);
            return Ok(Some((
                Reply {
                    code,
                    enhanced,
                    lines,
                },
                used,
            )));
        }
        if lines.len() >= MAX_LINES {
            return Err(Violation::TooManyLines { max: MAX_LINES });
        }
    }
}

/// One line without CRLF: code, whether it is the last line, and its text.
fn parse_line(body: &[u8]) -> Result<(u16, bool, String), Violation> {
    let malformed = || Violation::NotAReply(String::from_utf8_lossy(body).into_owned());
    let digits = body.get(..3).ok_or_else(malformed)?;
    let valid = matches!(digits[0], b'2'..=b'5')
        && matches!(digits[1], b'0'..=b'5')
        && digits[2].is_ascii_digit();
    if !valid {
        return Err(malformed());
    }
    let code = digits
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    let (last, text) = match body.get(3) {
        None => (true, &[][..]),
        Some(b' ') => (true, &body[4..]),
        Some(b'-') => (false, &body[4..]),
        Some(_) => return Err(malformed()),
    };
    Ok((code, last, String::from_utf8_lossy(text).into_owned()))
}

/// RFC 3463 §2: `class "." subject "." detail`, whose class must match the reply's first digit.
fn enhanced_code(code: u16, text: &str) -> Option<String> {
    let word = text.split(' ').next()?;
    let mut parts = word.split('.');
    let class = parts.next()?;
    let subject = parts.next()?;
    let detail = parts.next()?;
    let numeric = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
    };
    let ok = parts.next().is_none()
        && matches!(class, "2" | "4" | "5")
        && class.as_bytes()[0] == b'0' + (code / 100) as u8
        && numeric(subject, 3)
        && numeric(detail, 3);
    ok.then(|| word.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &[u8]) -> (Reply, usize) {
        match parse(input) {
            Ok(Some(reply)) => reply,
            other => panic!("{input:?} gave {other:?}"),
        }
    }

    #[test]
    fn complete_replies() {
        type Case<'a> = (&'a [u8], u16, Option<&'a str>, &'a [&'a str]);
        let cases: &[Case<'_>] = &[
            (b"220 mx ESMTP\r\n", 220, None, &["mx ESMTP"]),
            (b"250 2.1.0 Ok\r\n", 250, Some("2.1.0"), &["2.1.0 Ok"]),
            (
                b"250-mx\r\n250-PIPELINING\r\n250 SIZE 10\r\n",
                250,
                None,
                &["mx", "PIPELINING", "SIZE 10"],
            ),
            (b"250\r\n", 250, None, &[""]),
            (b"250 \r\n", 250, None, &[""]),
            (b"550 5.1.1 no\r\n", 550, Some("5.1.1"), &["5.1.1 no"]),
            (
                b"550 2.1.1 wrong class\r\n",
                550,
                None,
                &["2.1.1 wrong class"],
            ),
            (b"334 VXNlcm5hbWU6\r\n", 334, None, &["VXNlcm5hbWU6"]),
        ];
        for &(input, code, enhanced, lines) in cases {
            let (reply, used) = ok(input);
            assert_eq!(used, input.len());
            assert_eq!(reply.code, code);
            assert_eq!(reply.enhanced.as_deref(), enhanced);
            assert_eq!(reply.lines, lines);
        }
    }

    #[test]
    fn bytes_after_the_reply_are_left() {
        let (reply, used) = ok(b"220 a\r\n250 injected\r\n");
        assert_eq!(reply.code, 220);
        assert_eq!(used, 7);
    }

    #[test]
    fn incomplete_replies_need_more() {
        for input in [
            &b""[..],
            b"25",
            b"250 ok",
            b"250 ok\r",
            b"250-a\r\n",
            b"250-a\r\n250 b",
        ] {
            assert_eq!(parse(input), Ok(None), "{input:?}");
        }
    }

    #[test]
    fn malformed_replies() {
        let cases: &[(&[u8], Violation)] = &[
            (b"hello\r\n", Violation::NotAReply("hello".into())),
            (b"150 x\r\n", Violation::NotAReply("150 x".into())),
            (b"260 x\r\n", Violation::NotAReply("260 x".into())),
            (b"25x x\r\n", Violation::NotAReply("25x x".into())),
            (b"250x\r\n", Violation::NotAReply("250x".into())),
            (b"25\r\n", Violation::NotAReply("25".into())),
            (
                b"250-a\r\n251 b\r\n",
                Violation::MixedCodes {
                    first: 250,
                    other: 251,
                },
            ),
            (b"250 ok\n", Violation::BareLineEnding),
            (b"250 o\rk\r\n", Violation::BareLineEnding),
        ];
        for (input, want) in cases {
            assert_eq!(parse(input).as_ref(), Err(want), "{input:?}");
        }
    }

    #[test]
    fn limits() {
        let mut long = b"250 ".to_vec();
        long.resize(MAX_LINE + 10, b'x');
        assert_eq!(
            parse(&long),
            Err(Violation::LineTooLong { max: MAX_LINE }),
            "without CRLF yet"
        );
        long.extend_from_slice(b"\r\n");
        assert_eq!(parse(&long), Err(Violation::LineTooLong { max: MAX_LINE }));
        let endless = b"250-x\r\n".repeat(MAX_LINES + 1);
        assert_eq!(
            parse(&endless),
            Err(Violation::TooManyLines { max: MAX_LINES })
        );
    }

    #[test]
    fn quoted_for_errors() {
        let (reply, _) = ok(b"550-5.7.1 line one\r\n550 5.7.1 line two\r\n");
        assert_eq!(reply.to_string(), "\"550 5.7.1 line one 5.7.1 line two\"");
    }
}
