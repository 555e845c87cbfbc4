//! The SMTP dialogue, step by step, in the order of RFC 5321 §3.
//!
//! By default every command is written and its reply read before the next one, exactly as
//! lettre does, so the two clients' transcripts are identical. `--pipelining` (RFC 2920)
//! groups commands into as few writes as the RFCs allow: `AUTH PLAIN` with its initial
//! response, MAIL, every RCPT and DATA in one flight; the message, its `.` and the next
//! transaction's commands (or QUIT) in the next.

use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use cli::{Credentials, Job, TlsMode};
use message::Envelope;
use rustls::ClientConfig;
use transcript::Transcript;

use crate::command::{Command, Extensions};
use crate::connection::{Connection, io_error};
use crate::data::DotStuffer;
use crate::reply::Reply;
use crate::{Error, tls};

/// Choices only raw-client has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Group commands into flights when the server offers PIPELINING (RFC 2920).
    pub pipelining: bool,
    /// Send the message this many times on the one connection.
    pub repeat: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            pipelining: false,
            repeat: 1,
        }
    }
}

/// What a caller hears while sending, for progress bars. A closure `Fn()` is an observer
/// that hears only of accepted messages.
pub trait Observer: Sync {
    /// The server accepted one more message.
    fn message_sent(&self) {}
    /// `bytes` more of the message (as rendered, before dot-stuffing) went to the socket.
    fn data_sent(&self, bytes: u64) {
        let _ = bytes;
    }
}

impl<F: Fn() + Sync> Observer for F {
    fn message_sent(&self) {
        self()
    }
}

/// The messages the server accepted on one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The reply to the end of the last message's data, e.g. `250 2.0.0 Ok: queued as 000001`.
    pub reply: Reply,
    /// For each message, the time from its MAIL command to the reply to its final `.`.
    pub latencies: Vec<Duration>,
}

/// Sends the job's message; returns the transcript whatever happened.
pub fn send(job: &Job, settings: &Settings) -> (Transcript, Result<Outcome, Error>) {
    send_observed(job, settings, &|| {})
}

/// Like [`send`], telling `observer` about progress (for progress bars).
pub fn send_observed(
    job: &Job,
    settings: &Settings,
    observer: &dyn Observer,
) -> (Transcript, Result<Outcome, Error>) {
    match open_and_send(job, settings, observer, After::Quit) {
        Ok(opened) => (opened.connection.close(), Ok(opened.outcome)),
        Err(failed) => {
            let (transcript, error) = *failed;
            (transcript, Err(error))
        }
    }
}

/// A connection that failed: its transcript, and why.
pub(crate) type Failed = Box<(Transcript, Error)>;

/// What the dialogue does once its first message is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum After {
    /// Send the rest of the `--repeat` messages, then QUIT.
    Quit,
    /// Stop and hand the open connection to a load run's event loop (`crate::event_loop`),
    /// which sends the rest. With pipelining the next transaction's commands are already on
    /// their way, in the same write as the first message's `.`.
    HandOff,
}

/// How many messages a connection sends, and what happens after the first.
#[derive(Debug, Clone, Copy)]
struct Messages {
    repeat: u32,
    after: After,
}

/// A connection after its dialogue: closed by the caller, or handed to the event loop.
pub(crate) struct Opened {
    pub(crate) connection: Connection,
    pub(crate) outcome: Outcome,
    /// The MAIL parameters the server's extensions called for.
    pub(crate) parameters: Vec<&'static str>,
    /// Whether commands are pipelined on this connection (RFC 2920).
    pub(crate) pipelining: bool,
}

/// Connects and runs the dialogue; on error, says QUIT where it still may, closes, and
/// returns the transcript.
pub(crate) fn open_and_send(
    job: &Job,
    settings: &Settings,
    observer: &dyn Observer,
    after: After,
) -> Result<Opened, Failed> {
    let mut transcript = Transcript::new();
    let (host, port) = job
        .endpoint()
        .map_err(|failure| Box::new((Transcript::new(), failure.into())))?;
    let tls_config = match job.tls {
        TlsMode::None => None,
        TlsMode::StartTls | TlsMode::Implicit => Some(
            tls::client_config(&job.verify)
                .map_err(|error| Box::new((Transcript::new(), error)))?,
        ),
    };
    if job.verify.insecure {
        transcript.note("certificate verification disabled (--insecure)");
    }
    let mut connection = Connection::connect(
        &host,
        port,
        &job.peer(),
        job.timeouts.command,
        &mut transcript,
    )
    .map_err(|error| Box::new((std::mem::take(&mut transcript), error)))?;
    let mut state = State::Commands;
    let result = dialogue(
        &mut connection,
        &mut state,
        job,
        settings,
        tls_config,
        observer,
        after,
    );
    match result {
        Ok((outcome, parameters, pipelining)) => Ok(Opened {
            connection,
            outcome,
            parameters,
            pipelining,
        }),
        Err(error) => {
            if state == State::Commands && error_allows_quit(&error) {
                quit(&mut connection);
            }
            Err(Box::new((connection.close(), error)))
        }
    }
}

/// Where the dialogue is, which decides whether `QUIT` may still be sent after an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between commands: QUIT is allowed.
    Commands,
    /// After STARTTLS was accepted and before the handshake finished: nothing may be sent.
    AwaitingTls,
    /// Inside the message data: QUIT would become message content, so the connection is
    /// dropped instead and the server discards the unfinished message (RFC 5321 §4.1.1.4).
    /// Also after a pipelined MAIL, RCPT… DATA group whose replies are not read yet: its DATA
    /// may still be answered 354.
    Data,
}

fn dialogue(
    connection: &mut Connection,
    state: &mut State,
    job: &Job,
    settings: &Settings,
    tls_config: Option<Arc<ClientConfig>>,
    observer: &dyn Observer,
    after: After,
) -> Result<(Outcome, Vec<&'static str>, bool), Error> {
    let envelope = job.message.envelope();
    if let (TlsMode::Implicit, Some(config)) = (job.tls, &tls_config) {
        tls_on_connect(connection, job, config.clone())?;
    }
    greeting(connection)?;
    let mut extensions = ehlo(connection, job)?;
    if let (TlsMode::StartTls, Some(config)) = (job.tls, &tls_config) {
        starttls(connection, state, job, &extensions, config.clone())?;
        // RFC 3207 §4.2: discard everything learned before TLS and ask again. The EHLO went
        // out with the client's TLS Finished; here comes its reply.
        extensions = ehlo_reply(connection, job)?;
    }
    let pipelining = settings.pipelining && extensions.pipelining;
    let mut pipelined_auth = None;
    if let Some(credentials) = &job.credentials {
        if pipelining && can_pipeline_auth(connection, job, &extensions) {
            pipelined_auth = Some(plain_initial_response(credentials));
        } else {
            authenticate(connection, job, &extensions, credentials)?;
        }
    }
    let parameters = mail_parameters(envelope, &extensions)?;
    let repeat = settings.repeat.max(1);
    if pipelining {
        let (reply, latencies) = pipelined_session(
            connection,
            state,
            job,
            &parameters,
            pipelined_auth.as_deref(),
            Messages { repeat, after },
            observer,
        )?;
        return Ok((Outcome { reply, latencies }, parameters, true));
    }
    let here = match after {
        After::Quit => repeat,
        After::HandOff => 1,
    };
    let mut latencies = Vec::with_capacity(here as usize);
    let reply = {
        let mut last = None;
        for index in 0..here {
            let started = Instant::now();
            mail(connection, envelope, &parameters)?;
            for recipient in &envelope.recipients {
                rcpt(connection, recipient.as_str())?;
            }
            data(connection)?;
            last = Some(message_data(connection, state, job, b"", observer)?);
            latencies.push(started.elapsed());
            observer.message_sent();
            if index == 0 && repeat > 1 {
                pause_recording(connection, repeat - 1);
            }
        }
        if after == After::Quit {
            quit(connection);
        }
        last.ok_or_else(|| Error::Protocol {
            after: "DATA".into(),
            reason: "no message was sent".into(),
        })?
    };
    Ok((Outcome { reply, latencies }, parameters, false))
}

/// A load run records its first message only, so the transcript stays readable and small.
fn pause_recording(connection: &mut Connection, more: u32) {
    connection.transcript.note(format!(
        "the next {more} messages on this connection are not recorded"
    ));
    connection.set_recording(false);
}

/// RFC 8314 §3: with implicit TLS the handshake comes before any SMTP byte.
fn tls_on_connect(
    connection: &mut Connection,
    job: &Job,
    config: Arc<ClientConfig>,
) -> Result<(), Error> {
    connection.start_tls(config, tls::server_name(&job.tls_name)?, &job.tls_name, b"")
}

/// RFC 5321 §3.1, §4.2: the server speaks first, with 220 (or 554 to refuse service).
fn greeting(connection: &mut Connection) -> Result<Reply, Error> {
    let reply = connection.read_reply("the greeting")?;
    check(reply, "the connection (greeting)", |code| code == 220)
}

/// RFC 5321 §4.1.1.1: EHLO, and HELO only for old servers that do not know EHLO (500/502).
/// While TLS is required and not yet active, any EHLO failure ends the session: HELO cannot
/// negotiate STARTTLS, and falling back to plaintext is exactly what a stripping attack wants.
fn ehlo(connection: &mut Connection, job: &Job) -> Result<Extensions, Error> {
    connection.send(&Command::Ehlo(&job.helo_name).encode()?)?;
    ehlo_reply(connection, job)
}

/// The reply to an EHLO already sent.
fn ehlo_reply(connection: &mut Connection, job: &Job) -> Result<Extensions, Error> {
    let reply = connection.read_reply("EHLO")?;
    if reply.code == 250 {
        return Ok(Extensions::from_ehlo(&reply));
    }
    let tls_pending = job.tls == TlsMode::StartTls && !connection.is_tls();
    if tls_pending && reply.code != 421 {
        return Err(Error::EhloRejectedTlsRequired { reply });
    }
    if matches!(reply.code, 500 | 502) {
        let reply = command(connection, &Command::Helo(&job.helo_name), "HELO")?;
        check(reply, "HELO", |code| code == 250)?;
        return Ok(Extensions::default());
    }
    check(reply, "EHLO", |code| code == 250).map(|_| Extensions::default())
}

/// RFC 3207 §4: STARTTLS, 220, then the handshake. Bytes that arrive after the 220 and before
/// the handshake did not come through TLS, so they are an attack, never input (§4.2).
fn starttls(
    connection: &mut Connection,
    state: &mut State,
    job: &Job,
    extensions: &Extensions,
    config: Arc<ClientConfig>,
) -> Result<(), Error> {
    if !extensions.starttls {
        return Err(Error::StartTlsUnavailable);
    }
    let reply = command(connection, &Command::StartTls, "STARTTLS")?;
    match reply.code {
        220 => {}
        421 => {
            return Err(Error::ServiceClosing {
                command: "STARTTLS".into(),
                reply,
            });
        }
        _ => return Err(Error::StartTlsRefused { reply }),
    }
    *state = State::AwaitingTls;
    let injected = connection.unread_input().len();
    if injected > 0 {
        return Err(Error::StartTlsInjection(injected));
    }
    let ehlo = Command::Ehlo(&job.helo_name).encode()?;
    connection.start_tls(
        config,
        tls::server_name(&job.tls_name)?,
        &job.tls_name,
        &ehlo,
    )?;
    *state = State::Commands;
    Ok(())
}

/// RFC 4954 §4: PLAIN when offered (one line, initial response), else LOGIN — lettre's order.
fn authenticate(
    connection: &mut Connection,
    job: &Job,
    extensions: &Extensions,
    credentials: &Credentials,
) -> Result<(), Error> {
    if !connection.is_tls() && !job.allow_plaintext_auth {
        return Err(Error::PlaintextAuth);
    }
    if extensions.offers_auth("PLAIN") {
        auth_plain(connection, credentials)
    } else if extensions.offers_auth("LOGIN") {
        auth_login(connection, credentials)
    } else {
        let offered = if extensions.auth.is_empty() {
            "nothing".to_owned()
        } else {
            extensions.auth.join(" ")
        };
        Err(Error::NoAuthMechanism { offered })
    }
}

/// RFC 4616 §2: base64("" NUL user NUL password) as the initial response (RFC 4954 §4).
fn auth_plain(connection: &mut Connection, credentials: &Credentials) -> Result<(), Error> {
    let auth = plain_initial_response(credentials);
    connection.send(&auth)?;
    let reply = connection.read_reply("AUTH PLAIN")?;
    auth_result(reply, "AUTH PLAIN")
}

/// The whole `AUTH PLAIN <initial-response>` command line.
fn plain_initial_response(credentials: &Credentials) -> Vec<u8> {
    let message = format!("\0{}\0{}", credentials.user, credentials.password);
    let response = BASE64.encode(message);
    let auth = Command::Auth {
        mechanism: "PLAIN",
        initial_response: Some(&response),
    };
    // The user name and password were checked for CR/LF when the job was built, and base64
    // has none, so this cannot fail.
    auth.encode().unwrap_or_default()
}

/// RFC 4954 §4: AUTH must end a pipelined group, except when it carries an initial response
/// for a mechanism that completes in one round trip without a security layer, like PLAIN.
/// Then it may lead the group of MAIL, RCPT and DATA.
fn can_pipeline_auth(connection: &Connection, job: &Job, extensions: &Extensions) -> bool {
    extensions.offers_auth("PLAIN") && (connection.is_tls() || job.allow_plaintext_auth)
}

/// The LOGIN mechanism: a 334 challenge for the user name, one for the password. A third
/// challenge is refused, so a server cannot keep the client in an endless 334 loop.
fn auth_login(connection: &mut Connection, credentials: &Credentials) -> Result<(), Error> {
    let start = Command::Auth {
        mechanism: "LOGIN",
        initial_response: None,
    };
    let mut reply = command(connection, &start, "AUTH LOGIN")?;
    for secret in [&credentials.user, &credentials.password] {
        if reply.code != 334 {
            return auth_result(reply, "AUTH LOGIN");
        }
        let response = BASE64.encode(secret);
        reply = command(connection, &Command::AuthResponse(&response), "AUTH LOGIN")?;
    }
    if reply.code == 334 {
        return Err(Error::Protocol {
            after: "AUTH LOGIN".into(),
            reason: "it asked for more than a user name and a password".into(),
        });
    }
    auth_result(reply, "AUTH LOGIN")
}

/// RFC 4954 §6: 235 is success; 535 (or any 5xx) means the credentials were refused.
fn auth_result(reply: Reply, command: &str) -> Result<(), Error> {
    match reply.code {
        200..=299 => Ok(()),
        334 => Err(Error::Protocol {
            after: command.into(),
            reason: "it sent a challenge the mechanism does not expect".into(),
        }),
        500..=599 => Err(Error::AuthFailed { reply }),
        _ => check(reply, command, |_| false).map(|_| ()),
    }
}

/// RFC 6531 §3.4 and RFC 6152 §3: SMTPUTF8 for internationalized addresses, BODY=8BITMIME
/// for 8-bit content, in lettre's order, and only when the server offers them.
fn mail_parameters(
    envelope: &Envelope,
    extensions: &Extensions,
) -> Result<Vec<&'static str>, Error> {
    let mut parameters = Vec::new();
    if envelope.smtputf8 {
        if !extensions.smtputf8 {
            return Err(Error::MissingExtension {
                extension: "SMTPUTF8",
                why: "an address is internationalized",
            });
        }
        parameters.push("SMTPUTF8");
    }
    if envelope.eight_bit {
        if !extensions.eight_bit_mime {
            return Err(Error::MissingExtension {
                extension: "8BITMIME",
                why: "the message has 8-bit content",
            });
        }
        parameters.push("BODY=8BITMIME");
    }
    Ok(parameters)
}

/// RFC 5321 §4.1.1.2: MAIL FROM starts the transaction.
fn mail(
    connection: &mut Connection,
    envelope: &Envelope,
    parameters: &[&str],
) -> Result<(), Error> {
    let mail = mail_command(envelope, parameters);
    let reply = command(connection, &mail, "MAIL FROM")?;
    check(reply, &describe(&mail), |code| code == 250).map(|_| ())
}

/// RFC 5321 §4.1.1.3: one RCPT TO per envelope recipient (To, Cc and Bcc alike).
fn rcpt(connection: &mut Connection, recipient: &str) -> Result<(), Error> {
    let rcpt = Command::Rcpt(recipient);
    let reply = command(connection, &rcpt, "RCPT TO")?;
    check(reply, &describe(&rcpt), |code| matches!(code, 250 | 251)).map(|_| ())
}

/// RFC 5321 §4.1.1.4: DATA, answered 354 before the content may follow.
fn data(connection: &mut Connection) -> Result<(), Error> {
    let reply = command(connection, &Command::Data, "DATA")?;
    check(reply, "DATA", |code| code == 354).map(|_| ())
}

/// RFC 2920 §3.1: the whole session in as few flights as the RFCs allow. The first flight is
/// `[AUTH PLAIN <ir>]` MAIL, every RCPT, DATA (DATA must be last in a group); then each message
/// goes out with its `.` and, in the same write, the next transaction's group or QUIT.
fn pipelined_session(
    connection: &mut Connection,
    state: &mut State,
    job: &Job,
    parameters: &[&str],
    auth: Option<&[u8]>,
    Messages { repeat, after }: Messages,
    observer: &dyn Observer,
) -> Result<(Reply, Vec<Duration>), Error> {
    let mut latencies = Vec::with_capacity(repeat as usize);
    let envelope = job.message.envelope();
    let group = transaction_group(envelope, parameters)?;
    let mut flight = auth.map(<[u8]>::to_vec).unwrap_or_default();
    flight.extend_from_slice(&group);
    connection.transcript.note(format!(
        "pipelining (RFC 2920): {}MAIL, {} RCPT and DATA in one write",
        if auth.is_some() { "AUTH PLAIN, " } else { "" },
        envelope.recipients.len()
    ));
    connection.send(&flight)?;
    let mut started = Instant::now();
    let mut auth_error = None;
    if auth.is_some() {
        let reply = connection.read_reply("AUTH PLAIN")?;
        auth_error = auth_result(reply, "AUTH PLAIN").err();
    }
    let mut index = 0;
    loop {
        let group_result = read_group_replies(connection, state, envelope, parameters);
        if let Some(error) = auth_error.take() {
            // The server may have accepted MAIL without AUTH: never send the message then.
            if group_result.is_ok() {
                *state = State::Data;
            }
            return Err(error);
        }
        group_result?;
        index += 1;
        let last = index >= repeat;
        let trailer = if last {
            Command::Quit.encode()?
        } else {
            group.clone()
        };
        let reply = message_data(connection, state, job, &trailer, observer).inspect_err(|_| {
            if !last {
                // The next group is on its way: a QUIT could land inside its DATA.
                *state = State::Data;
            }
        })?;
        latencies.push(started.elapsed());
        observer.message_sent();
        started = Instant::now();
        if last {
            let _ = connection.read_reply("QUIT");
            return Ok((reply, latencies));
        }
        if index == 1 {
            pause_recording(connection, repeat - 1);
        }
        if after == After::HandOff {
            return Ok((reply, latencies));
        }
    }
}

/// MAIL, every RCPT and DATA, as one group of command lines.
fn transaction_group(envelope: &Envelope, parameters: &[&str]) -> Result<Vec<u8>, Error> {
    let mut group = mail_command(envelope, parameters).encode()?;
    for recipient in &envelope.recipients {
        group.extend(Command::Rcpt(recipient.as_str()).encode()?);
    }
    group.extend(Command::Data.encode()?);
    Ok(group)
}

/// Reads the replies to a pipelined MAIL, RCPT… DATA group, in order, and checks all of them
/// (RFC 2920 §3.1). If DATA got 354 although no recipient was accepted, a lone `.` ends it;
/// if some were refused, the connection is dropped inside DATA so nothing is delivered.
fn read_group_replies(
    connection: &mut Connection,
    state: &mut State,
    envelope: &Envelope,
    parameters: &[&str],
) -> Result<(), Error> {
    let mail = mail_command(envelope, parameters);
    let mut first_error = None;
    let mut accepted = 0;
    let reply = connection.read_reply("MAIL FROM")?;
    let mail_ok = remember(
        check(reply, &describe(&mail), |c| c == 250),
        &mut first_error,
    );
    for recipient in &envelope.recipients {
        let rcpt = Command::Rcpt(recipient.as_str());
        let reply = connection.read_reply("RCPT TO")?;
        if remember(
            check(reply, &describe(&rcpt), |c| matches!(c, 250 | 251)),
            &mut first_error,
        ) {
            accepted += 1;
        }
    }
    let data_reply = connection.read_reply("DATA")?;
    let Some(error) = first_error else {
        return check(data_reply, "DATA", |code| code == 354).map(|_| ());
    };
    if data_reply.code == 354 {
        if mail_ok && accepted > 0 {
            *state = State::Data;
        } else {
            connection.send(b".\r\n")?;
            connection.read_reply("the end of an empty message")?;
        }
    }
    Err(error)
}

/// Keeps the first error of a pipelined group; returns whether this reply was positive.
fn remember(result: Result<Reply, Error>, first_error: &mut Option<Error>) -> bool {
    match result {
        Ok(_) => true,
        Err(error) => {
            first_error.get_or_insert(error);
            false
        }
    }
}

/// RFC 5321 §4.5.2: the message, dot-stuffed, streamed into the socket, then `.` and the
/// `trailer` (pipelined commands, or nothing) in the same write; the reply to the final `.`
/// alone decides whether the message was accepted (§4.1.1.4).
fn message_data(
    connection: &mut Connection,
    state: &mut State,
    job: &Job,
    trailer: &[u8],
    observer: &dyn Observer,
) -> Result<Reply, Error> {
    *state = State::Data;
    let sending = "sending the message data";
    {
        let buffered = BufWriter::with_capacity(64 * 1024, &mut *connection);
        let mut writer = Outgoing {
            stuffer: DotStuffer::new(buffered),
            observer,
        };
        job.message
            .render(&mut writer)
            .map_err(|error| match error {
                message::Error::Io(source) => io_error(source, sending),
                other => Error::Message(other),
            })?;
        let Outgoing { stuffer, .. } = writer;
        let mut buffered = stuffer
            .finish_unflushed()
            .map_err(|e| io_error(e, sending))?;
        *state = State::Commands;
        buffered
            .write_all(trailer)
            .and_then(|()| buffered.flush())
            .map_err(|e| io_error(e, sending))?;
    }
    let reply =
        connection.read_reply_within(job.timeouts.data_end, "the end of the message data")?;
    check(reply, "the message data", |code| code == 250)
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

/// RFC 5321 §4.1.1.10: QUIT, read the 221, and close; errors no longer matter here.
fn quit(connection: &mut Connection) {
    if let Ok(bytes) = Command::Quit.encode()
        && connection.send(&bytes).is_ok()
    {
        let _ = connection.read_reply("QUIT");
    }
}

/// Sends one command and reads its reply.
fn command(connection: &mut Connection, command: &Command<'_>, name: &str) -> Result<Reply, Error> {
    connection.send(&command.encode()?)?;
    connection.read_reply(name)
}

/// Accepts the expected codes; 421 closes the service (RFC 5321 §3.8), 4xx/5xx reject the
/// command, and any other code is a protocol violation.
pub(crate) fn check(
    reply: Reply,
    command: &str,
    expected: fn(u16) -> bool,
) -> Result<Reply, Error> {
    if expected(reply.code) {
        return Ok(reply);
    }
    match reply.code {
        421 => Err(Error::ServiceClosing {
            command: command.to_owned(),
            reply,
        }),
        400..=599 => Err(Error::Rejected {
            command: command.to_owned(),
            reply,
        }),
        _ => Err(Error::Protocol {
            after: command.to_owned(),
            reason: format!("it answered {}, which does not fit", reply.quoted()),
        }),
    }
}

/// Whether the connection is still in a state where a polite QUIT makes sense.
pub(crate) fn error_allows_quit(error: &Error) -> bool {
    !matches!(
        error,
        Error::Timeout { .. }
            | Error::Closed { .. }
            | Error::Io { .. }
            | Error::Protocol { .. }
            | Error::ServiceClosing { .. }
            | Error::StartTlsInjection(_)
            | Error::Handshake { .. }
            | Error::Certificate { .. }
            | Error::PinMismatch { .. }
    )
}

pub(crate) fn mail_command<'a>(envelope: &'a Envelope, parameters: &'a [&'a str]) -> Command<'a> {
    Command::Mail {
        from: envelope.from.as_str(),
        parameters,
    }
}

/// A command as shown in errors, without its CRLF.
fn describe(command: &Command<'_>) -> String {
    command
        .encode()
        .map(|bytes| String::from_utf8_lossy(&bytes).trim_end().to_owned())
        .unwrap_or_default()
}
