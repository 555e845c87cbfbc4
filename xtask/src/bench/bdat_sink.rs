//! A discarding SMTP server that offers CHUNKING, for the `--chunking` rows of the
//! large-attachment table: smtp-sink, which the DATA rows send to, does not implement BDAT
//! (RFC 3030), and test-server stores what it receives, which would put its disk writes into
//! the client's time.
//!
//! Like smtp-sink it answers every command at once and throws the message away; it reads
//! each chunk's octets in 256 KiB reads and counts them, so the bench can check that the
//! whole message arrived. DATA is refused, so a client that fell back to it fails the row
//! instead of being timed under the wrong name. Its threads live in the bench process; the
//! figures are those of the client process alone (GNU time), as for smtp-sink.

use std::io::{BufRead as _, BufReader, BufWriter, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use anyhow::{Context as _, Result};

/// The name in the greeting and the EHLO reply.
const HOSTNAME: &str = "bdat-sink.bench.localhost";
/// The buffer for reading chunks: at least raw-client's default chunk.
const BUFFER: usize = 256 * 1024;
/// How long a connection may stay silent before the sink drops it.
const IDLE: Duration = Duration::from_secs(300);

/// The running sink on 127.0.0.1; dropping it stops accepting.
pub(crate) struct BdatSink {
    pub(crate) port: u16,
    /// The octets of every message the sink received whole (a `BDAT … LAST` answered).
    messages: Arc<Mutex<Vec<u64>>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl BdatSink {
    /// Listens on a free loopback port.
    pub(crate) fn start() -> Result<BdatSink> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the BDAT sink")?;
        let port = listener.local_addr()?.port();
        let messages: Arc<Mutex<Vec<u64>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let messages = messages.clone();
            let stop = stop.clone();
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let messages = messages.clone();
                    thread::spawn(move || {
                        // A client that goes away mid-chunk ends its session; the bench
                        // sees that from the client's exit status and the message count.
                        let _ = session(stream, &messages);
                    });
                }
            })
        };
        Ok(BdatSink {
            port,
            messages,
            stop,
            acceptor: Some(acceptor),
        })
    }

    /// The octets of the messages received whole so far, in order.
    pub(crate) fn messages(&self) -> Vec<u64> {
        self.messages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for BdatSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor with one last connection so it sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// One connection: greeting, then one reply per command; BDAT octets are read and dropped.
fn session(stream: TcpStream, messages: &Mutex<Vec<u64>>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(IDLE))?;
    stream.set_nodelay(true)?;
    let mut reader = BufReader::with_capacity(BUFFER, stream.try_clone()?);
    let mut writer = BufWriter::new(stream.try_clone()?);
    write!(writer, "220 {HOSTNAME} ESMTP bdat-sink\r\n")?;
    writer.flush()?;
    let mut octets: u64 = 0;
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&line);
        let mut words = text.split_whitespace();
        let verb = words.next().unwrap_or_default().to_ascii_uppercase();
        let mut quit = false;
        match verb.as_str() {
            "EHLO" => write!(
                writer,
                "250-{HOSTNAME}\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-BINARYMIME\r\n250 CHUNKING\r\n"
            )?,
            "HELO" => write!(writer, "250 {HOSTNAME}\r\n")?,
            "MAIL" => {
                octets = 0;
                write!(writer, "250 2.1.0 Ok\r\n")?;
            }
            "RCPT" | "NOOP" => write!(writer, "250 2.0.0 Ok\r\n")?,
            "RSET" => {
                octets = 0;
                write!(writer, "250 2.0.0 Ok\r\n")?;
            }
            "BDAT" => {
                let size = words.next().and_then(|size| size.parse::<u64>().ok());
                let last = words
                    .next()
                    .is_some_and(|word| word.eq_ignore_ascii_case("LAST"));
                let Some(size) = size else {
                    // The chunk's end is unknown: nothing after this line can be read.
                    write!(writer, "501 5.5.4 BDAT needs a size\r\n")?;
                    writer.flush()?;
                    break;
                };
                if discard(&mut reader, size)? < size {
                    break;
                }
                octets += size;
                if last {
                    messages
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(octets);
                    write!(writer, "250 2.0.0 Ok: {octets} octets discarded\r\n")?;
                    octets = 0;
                } else {
                    write!(writer, "250 2.0.0 Ok: {size} octets\r\n")?;
                }
            }
            "DATA" => write!(
                writer,
                "502 5.5.1 this sink takes BDAT only (the DATA rows send to smtp-sink)\r\n"
            )?,
            "QUIT" => {
                write!(writer, "221 2.0.0 Bye\r\n")?;
                quit = true;
            }
            _ => write!(writer, "500 5.5.2 command not recognized\r\n")?,
        }
        // Replies to a pipelined group go in one write, once its commands are all read.
        if quit || reader.buffer().is_empty() {
            writer.flush()?;
        }
        if quit {
            break;
        }
    }
    writer.flush()?;
    let _ = reader.get_ref().shutdown(Shutdown::Both);
    Ok(())
}

/// Reads and drops `size` octets; returns how many there were before the end of the stream.
fn discard(reader: &mut BufReader<TcpStream>, size: u64) -> std::io::Result<u64> {
    let mut left = size;
    while left > 0 {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            break;
        }
        let take = available
            .len()
            .min(usize::try_from(left).unwrap_or(usize::MAX));
        reader.consume(take);
        left -= take as u64;
    }
    Ok(size - left)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    /// The replies the sink gives a client that pipelines everything, read to the end.
    fn dialogue(input: &[u8]) -> Result<(String, Vec<u64>)> {
        let sink = BdatSink::start()?;
        let mut stream = TcpStream::connect(("127.0.0.1", sink.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.write_all(input)?;
        stream.shutdown(Shutdown::Write)?;
        let mut replies = String::new();
        stream.read_to_string(&mut replies)?;
        Ok((replies, sink.messages()))
    }

    #[test]
    fn chunks_are_counted_across_a_pipelined_group() -> Result<()> {
        let (replies, messages) = dialogue(
            b"EHLO client\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n\
              BDAT 5\r\nab\r\ncBDAT 3 LAST\r\nd\r\nQUIT\r\n",
        )?;
        assert!(replies.starts_with("220 "), "{replies}");
        assert!(replies.contains("250 CHUNKING\r\n"), "{replies}");
        assert!(replies.contains("250 2.0.0 Ok: 5 octets\r\n"), "{replies}");
        assert!(
            replies.contains("250 2.0.0 Ok: 8 octets discarded\r\n"),
            "{replies}"
        );
        assert!(replies.ends_with("221 2.0.0 Bye\r\n"), "{replies}");
        assert_eq!(messages, [8]);
        Ok(())
    }

    #[test]
    fn data_is_refused_and_nothing_counted() -> Result<()> {
        let (replies, messages) =
            dialogue(b"EHLO client\r\nMAIL FROM:<a@example.org>\r\nDATA\r\nQUIT\r\n")?;
        assert!(replies.contains("\r\n502 5.5.1 "), "{replies}");
        assert!(messages.is_empty());
        Ok(())
    }

    #[test]
    fn a_chunk_cut_short_counts_no_message() -> Result<()> {
        let (_, messages) =
            dialogue(b"EHLO client\r\nMAIL FROM:<a@example.org>\r\nBDAT 100 LAST\r\nshort")?;
        assert!(messages.is_empty());
        Ok(())
    }
}
