//! The message data after `DATA` (RFC 5321 §4.5.2 transparency, §2.3.8 line endings).
//!
//! [`DotStuffer`] sits between the message renderer and the socket. Whatever bytes it is
//! given, what reaches the wire is made of CRLF-terminated lines only (a bare CR or LF
//! becomes CRLF), every line that starts with `.` gets a second `.`, and [`DotStuffer::finish`]
//! ends the data with exactly one `.` line. So no input can end the data early or smuggle a
//! second message (SMTP smuggling, CVE-2023-51764).

use std::io::{self, Write};

/// The line that ends the message data (RFC 5321 §4.1.1.4).
pub const END_OF_DATA: &[u8] = b".\r\n";

/// One line of message data typed by hand (without its line ending), as it goes on the wire:
/// a leading `.` doubled, CRLF at the end. The interactive shell sends its messages this way.
pub fn stuffed_line(line: &[u8]) -> Vec<u8> {
    let mut wire = Vec::with_capacity(line.len() + 3);
    let mut stuffer = DotStuffer::new(&mut wire);
    // Writing into a Vec cannot fail.
    let _ = stuffer
        .write_all(line)
        .and_then(|()| stuffer.write_all(b"\r\n"));
    wire
}

/// Dot-stuffs and normalizes line endings while streaming into `inner`.
pub struct DotStuffer<W: Write> {
    inner: W,
    /// At the start of a line (nothing written yet counts as a line start).
    line_start: bool,
    /// The previous byte was a CR whose LF has not been seen yet.
    pending_cr: bool,
    /// Reused output buffer, so each `write` becomes one write to `inner`.
    out: Vec<u8>,
}

impl<W: Write> DotStuffer<W> {
    /// Starts the data of one message.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            line_start: true,
            pending_cr: false,
            out: Vec::new(),
        }
    }

    /// Ends the last line if needed, writes the `.` line, flushes, and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        let mut inner = self.finish_unflushed()?;
        inner.flush()?;
        Ok(inner)
    }

    /// Like [`DotStuffer::finish`] without the flush, so more bytes can join the same write.
    pub fn finish_unflushed(mut self) -> io::Result<W> {
        self.out.clear();
        if self.pending_cr || !self.line_start {
            self.out.extend_from_slice(b"\r\n");
        }
        self.out.extend_from_slice(END_OF_DATA);
        self.inner.write_all(&self.out)?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for DotStuffer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.clear();
        self.out.reserve(buf.len() + buf.len() / 64 + 4);
        let mut rest = buf;
        while !rest.is_empty() {
            if self.pending_cr {
                self.pending_cr = false;
                self.out.extend_from_slice(b"\r\n");
                self.line_start = true;
                if rest[0] == b'\n' {
                    rest = &rest[1..];
                    continue;
                }
            }
            if self.line_start && rest[0] == b'.' {
                self.out.push(b'.');
            }
            // Copy the run up to the next CR or LF in one go: most bytes are plain text.
            let run = rest
                .iter()
                .position(|&b| b == b'\r' || b == b'\n')
                .unwrap_or(rest.len());
            if run > 0 {
                self.out.extend_from_slice(&rest[..run]);
                self.line_start = false;
                rest = &rest[run..];
                continue;
            }
            match rest {
                [b'\r', b'\n', ..] => {
                    self.out.extend_from_slice(b"\r\n");
                    self.line_start = true;
                    rest = &rest[2..];
                }
                [b'\r', ..] => {
                    self.pending_cr = true;
                    rest = &rest[1..];
                }
                _ => {
                    // A bare LF becomes CRLF.
                    self.out.extend_from_slice(b"\r\n");
                    self.line_start = true;
                    rest = &rest[1..];
                }
            }
        }
        self.inner.write_all(&self.out)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stuff(chunks: &[&[u8]]) -> Vec<u8> {
        let mut stuffer = DotStuffer::new(Vec::new());
        for chunk in chunks {
            stuffer.write_all(chunk).expect("writing to a Vec");
        }
        stuffer.finish().expect("writing to a Vec")
    }

    #[test]
    fn typed_lines() {
        assert_eq!(stuffed_line(b"Hello"), b"Hello\r\n");
        assert_eq!(stuffed_line(b".hidden"), b"..hidden\r\n");
        assert_eq!(stuffed_line(b""), b"\r\n");
        assert_eq!(stuffed_line(b"a.b"), b"a.b\r\n");
    }

    #[test]
    fn table() {
        let cases: &[(&[&[u8]], &[u8])] = &[
            (&[b"hi\r\n"], b"hi\r\n.\r\n"),
            (&[b"hi"], b"hi\r\n.\r\n"),
            (&[b""], b".\r\n"),
            (
                &[b".start\r\nmid.dle\r\n.\r\n"],
                b"..start\r\nmid.dle\r\n..\r\n.\r\n",
            ),
            (
                &[b"a\n.\r\nMAIL FROM:<x>\r\n"],
                b"a\r\n..\r\nMAIL FROM:<x>\r\n.\r\n",
            ),
            (&[b"a\r.\rb"], b"a\r\n..\r\nb\r\n.\r\n"),
            (&[b"a\r", b"\n.b\r", b"\n"], b"a\r\n..b\r\n.\r\n"),
            (&[b"a\r\r\n.x"], b"a\r\n\r\n..x\r\n.\r\n"),
            (&[b"end\r"], b"end\r\n.\r\n"),
        ];
        for (chunks, want) in cases {
            assert_eq!(
                String::from_utf8_lossy(&stuff(chunks)),
                String::from_utf8_lossy(want),
                "{chunks:?}"
            );
        }
    }
}
