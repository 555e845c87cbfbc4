//! One connection, blocking: connect, then drive the dialogue of [`crate::session`] over the
//! socket — write each flight, read each reply within its time limit — until it is done.
//!
//! This is the whole I/O side of a single send: the rules are all in the session.

use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cli::{Failure, Job, Sent, TlsMode};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use transcript::Transcript;

use crate::Settings;
use crate::command::Command;
use crate::connection::{Connection, io_error};
use crate::data::DotStuffer;
use crate::load::Observer;
use crate::session::{Action, Bytes, Chunking, Dialogue, Flight, Session, Wait, chunk_verdict};
use crate::tls;

/// Sends the job's message; returns the transcript whatever happened.
pub fn send(job: &Job, settings: &Settings) -> (Transcript, Result<Sent, Failure>) {
    send_observed(job, settings, &|| {})
}

/// Like [`send`], telling `observer` about progress (for progress bars).
pub fn send_observed(
    job: &Job,
    settings: &Settings,
    observer: &dyn Observer,
) -> (Transcript, Result<Sent, Failure>) {
    match open(job, settings, observer, Until::Done) {
        Ended::Done {
            transcript, result, ..
        } => (transcript, result),
        // Not asked for: `Until::Done` never hands off.
        Ended::HandedOff(open) => (
            open.connection.close(),
            Err(Failure::Internal("the dialogue stopped early".into())),
        ),
    }
}

/// How far [`open`] drives the dialogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Until {
    /// To the end.
    Done,
    /// Until the first message is accepted; then the connection and its dialogue go to a
    /// load run's event loop (`crate::event_loop`), which sends the rest.
    FirstMessage,
}

/// A connection whose first message was accepted, with its dialogue, handed to the event loop.
pub(crate) struct Open {
    pub(crate) connection: Connection,
    pub(crate) session: Session,
    /// The first message's latency.
    pub(crate) latencies: Vec<Duration>,
}

/// How [`open`] ended.
#[allow(
    clippy::large_enum_variant,
    reason = "one per connection, moved once: boxing the common variant would only add an allocation"
)]
pub(crate) enum Ended {
    /// The dialogue finished; the connection is closed.
    Done {
        transcript: Transcript,
        result: Result<Sent, Failure>,
        /// For each accepted message, the time from its MAIL to the reply to its `.`.
        latencies: Vec<Duration>,
    },
    /// The first message was accepted (only with [`Until::FirstMessage`]).
    HandedOff(Box<Open>),
}

/// What the TLS handshake needs, prepared before connecting so a bad CA file or server name
/// fails before any byte is sent.
pub(crate) struct Tls {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl Tls {
    /// The configuration for the job's certificate checks (`--ca-file`, `--insecure`,
    /// `--pin-sha256`) and the name the certificate must carry.
    pub(crate) fn prepare(job: &Job) -> Result<Tls, Failure> {
        let config = tls::client_config(&job.verify)?;
        let name = tls::server_name(&job.tls_name)?;
        Ok(Tls { config, name })
    }
}

/// Opens the TCP connection to the job's server; with `--insecure`, the transcript says so
/// first. The transcript moves into the connection; on failure it stays with the caller.
pub(crate) fn connect(job: &Job, transcript: &mut Transcript) -> Result<Connection, Failure> {
    if job.verify.insecure {
        transcript.note("certificate verification disabled (--insecure)");
    }
    let endpoint = &job.endpoint;
    Connection::connect(
        &endpoint.host,
        endpoint.port,
        &endpoint.shown,
        job.timeouts.command,
        transcript,
    )
}

/// Runs the TLS handshake now, then writes `first_flight` (see [`Connection::start_tls`]),
/// and records the server's certificate for `--explain`: whom it names and how this run
/// trusted it.
pub(crate) fn handshake(
    connection: &mut Connection,
    tls: &Tls,
    job: &Job,
    first_flight: &[u8],
) -> Result<(), Failure> {
    connection.start_tls(
        tls.config.clone(),
        tls.name.clone(),
        &job.tls_name,
        first_flight,
    )?;
    if let Some(certificate) = connection
        .peer_certificate()
        .and_then(|der| cli::describe_certificate(der, job.certificate_checked()))
    {
        connection.transcript.tls_certificate(certificate);
    }
    Ok(())
}

/// Connects and drives the dialogue, with `settings.repeat` messages.
pub(crate) fn open(job: &Job, settings: &Settings, observer: &dyn Observer, until: Until) -> Ended {
    let failed = |transcript: Transcript, failure: Failure| Ended::Done {
        transcript,
        result: Err(failure),
        latencies: Vec::new(),
    };
    let tls = match job.tls {
        TlsMode::None => None,
        TlsMode::StartTls | TlsMode::Implicit => match Tls::prepare(job) {
            Ok(tls) => Some(tls),
            Err(failure) => return failed(Transcript::new(), failure),
        },
    };
    let mut transcript = Transcript::new();
    let connection = match connect(job, &mut transcript) {
        Ok(connection) => connection,
        Err(failure) => return failed(transcript, failure),
    };
    let mut dialogue = Dialogue::for_job(job, settings.pipelining, settings.repeat);
    dialogue.chunking = settings.chunking;
    let session = Session::new(dialogue);
    drive(connection, session, job, tls.as_ref(), observer, until)
}

/// Does what the session says until it is done (or, with [`Until::FirstMessage`], until its
/// first message is accepted).
fn drive(
    mut connection: Connection,
    mut session: Session,
    job: &Job,
    tls: Option<&Tls>,
    observer: &dyn Observer,
    until: Until,
) -> Ended {
    let mut latencies = Vec::new();
    let mut started = Instant::now();
    while let Some(action) = session.next_action() {
        match action {
            Action::Write(flight) => {
                if let Err(failure) = write(&mut connection, &flight, job, tls, observer) {
                    session.on_failure(failure);
                }
            }
            Action::Read(wait) => {
                let timeout = if wait.is_data_end() {
                    job.timeouts.data_end
                } else {
                    job.timeouts.command
                };
                match connection.read_reply_within(timeout, wait) {
                    Ok(reply) => {
                        let unread = connection.unread_input().len();
                        session.on_reply(reply, unread);
                    }
                    Err(failure) => session.on_failure(failure),
                }
            }
            Action::Note(note) => connection.transcript.note(note),
            Action::Transaction => started = Instant::now(),
            Action::Accepted(_) => {
                latencies.push(started.elapsed());
                started = Instant::now();
                observer.message_sent();
                if until == Until::FirstMessage {
                    return Ended::HandedOff(Box::new(Open {
                        connection,
                        session,
                        latencies,
                    }));
                }
            }
            Action::StopRecording => connection.set_recording(false),
            Action::Done(result) => {
                return Ended::Done {
                    transcript: connection.close(),
                    result,
                    latencies,
                };
            }
        }
    }
    Ended::Done {
        transcript: connection.close(),
        result: Err(Failure::Internal(
            "the dialogue stopped without a verdict".into(),
        )),
        latencies,
    }
}

/// Writes one flight: after the TLS handshake (its commands leave with the client's
/// Finished, which saves a round trip), after the message data, or on its own.
fn write(
    connection: &mut Connection,
    flight: &Flight,
    job: &Job,
    tls: Option<&Tls>,
    observer: &dyn Observer,
) -> Result<(), Failure> {
    if flight.handshake {
        let tls = tls.ok_or_else(|| Failure::Internal("a TLS handshake without TLS".into()))?;
        return handshake(connection, tls, job, &flight.commands);
    }
    if flight.message {
        return message_data(connection, job, &flight.commands, observer);
    }
    if let Some(size) = flight.chunks {
        return message_chunks(connection, job, flight, size, observer);
    }
    connection.send(&flight.commands)
}

/// RFC 3030 §2: the message as BDAT chunks of at most `size` octets, streamed (one chunk in
/// memory at a time), the last one `BDAT n LAST`; `flight.lead` before the first, and
/// `flight.commands` after the last, in their writes. Without pipelining (no lead, no
/// commands) each chunk's reply is read before the next chunk goes.
fn message_chunks(
    connection: &mut Connection,
    job: &Job,
    flight: &Flight,
    size: u64,
    observer: &dyn Observer,
) -> Result<(), Failure> {
    let sending = "sending the message data";
    let total = job.message.expected_len();
    let chunking = Chunking {
        required: false,
        size,
    };
    let mut chunker = Chunker {
        connection,
        job,
        size: usize::try_from(size).unwrap_or(usize::MAX).max(1),
        count: chunking.count(total),
        index: 0,
        buffer: Vec::new(),
        scratch: Vec::new(),
        lead: Some(flight.lead.clone()),
        trailer: flight.commands.clone(),
        pipelined: !(flight.lead.is_empty() && flight.commands.is_empty()),
        refused: None,
        observer,
    };
    let rendered = job.message.render(&mut chunker);
    if let Some(failure) = chunker.refused.take() {
        return Err(failure);
    }
    rendered.map_err(|error| match error {
        message::Error::Io(source) => io_error(source, sending),
        other => Failure::from(other),
    })?;
    chunker.finish()
}

/// Cuts the rendered message into BDAT chunks as it comes (see [`message_chunks`]).
struct Chunker<'a> {
    connection: &'a mut Connection,
    job: &'a Job,
    size: usize,
    /// How many chunks the message's expected length makes: the replies the session counts.
    count: u64,
    index: u64,
    buffer: Vec<u8>,
    scratch: Vec<u8>,
    lead: Option<Bytes>,
    trailer: Bytes,
    pipelined: bool,
    /// A chunk's refusal (without pipelining), which stops the rendering.
    refused: Option<Failure>,
    observer: &'a dyn Observer,
}

impl Chunker<'_> {
    /// Writes the buffered octets as the next chunk.
    fn emit(&mut self, last: bool) -> std::io::Result<()> {
        if !last && self.index + 1 >= self.count {
            return Err(self.stop(changed()));
        }
        let header = Command::Bdat {
            size: self.buffer.len() as u64,
            last,
        }
        .encode()
        .map_err(|failure| self.stop(failure))?;
        let mut lead = self
            .lead
            .take()
            .map(|lead| lead.to_vec())
            .unwrap_or_default();
        lead.extend_from_slice(&header);
        let trailer = if last {
            self.trailer.clone()
        } else {
            Arc::from(&[][..])
        };
        self.connection
            .send_chunk(&lead, &self.buffer, &trailer, &mut self.scratch)?;
        self.observer.data_sent(self.buffer.len() as u64);
        self.buffer.clear();
        if !last && !self.pipelined {
            let reply = self
                .connection
                .read_reply_within(self.job.timeouts.command, Wait::Reply("BDAT"))
                .map_err(|failure| self.stop(failure))?;
            if let Err(failure) = chunk_verdict(reply, self.index, self.count) {
                return Err(self.stop(failure));
            }
        }
        self.index += 1;
        Ok(())
    }

    /// Keeps `failure` to report, and stops the rendering.
    fn stop(&mut self, failure: Failure) -> std::io::Error {
        self.refused = Some(failure);
        std::io::Error::other("the BDAT chunks stopped")
    }

    /// The last chunk, with what is left.
    fn finish(mut self) -> Result<(), Failure> {
        if self.index + 1 != self.count {
            return Err(changed());
        }
        let sent = self.emit(true);
        match (self.refused.take(), sent) {
            (Some(failure), _) => Err(failure),
            (None, Err(error)) => Err(io_error(error, "sending the message data")),
            (None, Ok(())) => Ok(()),
        }
    }
}

/// The message's length is not what it was when the chunk count was worked out: an
/// attachment changed while it was being sent.
fn changed() -> Failure {
    Failure::Internal(
        "the message's length changed while it was sent (an attachment file changed?): the BDAT chunks no longer add up".into(),
    )
}

impl Write for Chunker<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if bytes.is_empty() {
            return Ok(0);
        }
        // A full buffer goes as a chunk only once more is known to follow, so the last
        // chunk is never empty (no `BDAT 0 LAST` but for an empty message).
        if self.buffer.len() >= self.size {
            self.emit(false)?;
        }
        let room = self.size - self.buffer.len();
        let taken = room.min(bytes.len());
        if self.buffer.capacity() == 0 {
            self.buffer.reserve_exact(self.size.min(16 * 1024 * 1024));
        }
        self.buffer.extend_from_slice(&bytes[..taken]);
        Ok(taken)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// RFC 5321 §4.5.2: the message, dot-stuffed, streamed into the socket, then `.` and the
/// `trailer` (pipelined commands, or nothing) in the same write.
fn message_data(
    connection: &mut Connection,
    job: &Job,
    trailer: &[u8],
    observer: &dyn Observer,
) -> Result<(), Failure> {
    let sending = "sending the message data";
    let buffered = BufWriter::with_capacity(64 * 1024, &mut *connection);
    let mut writer = Outgoing {
        stuffer: DotStuffer::new(buffered),
        observer,
    };
    job.message
        .render(&mut writer)
        .map_err(|error| match error {
            message::Error::Io(source) => io_error(source, sending),
            other => Failure::from(other),
        })?;
    let Outgoing { stuffer, .. } = writer;
    let mut buffered = stuffer
        .finish_unflushed()
        .map_err(|e| io_error(e, sending))?;
    buffered
        .write_all(trailer)
        .and_then(|()| buffered.flush())
        .map_err(|e| io_error(e, sending))
}

/// Passes the rendered message to the dot-stuffer, telling the observer how much went, but
/// ignores `flush`: the renderer flushes when it is done, and the message must instead leave
/// in the same write as its final `.` (and any pipelined trailer), or the `.` would cost a
/// packet of its own.
struct Outgoing<'a, W: Write> {
    stuffer: DotStuffer<W>,
    observer: &'a dyn Observer,
}

impl<W: Write> Write for Outgoing<'_, W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let written = self.stuffer.write(bytes)?;
        self.observer.data_sent(written as u64);
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
