//! The event loop of a load run (`--repeat` with `--connections`). Each connection's first
//! message goes through the dialogue in [`crate::session`], recorded; then one thread drives
//! the rest of every connection's messages over non-blocking sockets with `poll(2)`, as
//! Postfix's smtp-source does. (A blocking thread per connection wakes once per reply, and on
//! a small machine those thread switches cost more than the SMTP work.)
//!
//! Each connection repeats the dialogue's transaction — MAIL, RCPT…, DATA, the message and
//! `.` (RFC 5321 §3.3), or with pipelining the same commands as one group (RFC 2920 §3.1) —
//! as a small state machine, a [`Lane`]. The replies are judged by the dialogue's own rule
//! ([`crate::session::check`]); the message is rendered and dot-stuffed once and shared by all
//! lanes. Any failure ends that connection: with QUIT where the dialogue would send one, else
//! by dropping it (inside DATA the server then discards the unfinished message, RFC 5321
//! §4.1.1.4).

use std::sync::Arc;
use std::time::{Duration, Instant};

use cli::Timeouts;
use message::Envelope;
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::io::Errno;
use transcript::Transcript;

use crate::Error;
use crate::command::Command;
use crate::connection::Connection;
use crate::reply::Reply;
use crate::session::{Failed, Observer, Opened, check, error_allows_quit, mail_command};

/// What every lane of one run shares.
pub(crate) struct Run<'a> {
    /// The message data, dot-stuffed, ending with the `.` line.
    pub(crate) message: Arc<[u8]>,
    /// Messages per connection, the first one included.
    pub(crate) repeat: u32,
    pub(crate) timeouts: Timeouts,
    /// Told of each accepted message (progress bars).
    pub(crate) observer: &'a dyn Observer,
}

/// One transaction's command lines, encoded once per connection.
struct Commands {
    mail: Arc<[u8]>,
    rcpts: Vec<Arc<[u8]>>,
    data: Arc<[u8]>,
    /// MAIL, every RCPT and DATA in one piece, for pipelining.
    group: Arc<[u8]>,
    quit: Arc<[u8]>,
}

impl Commands {
    fn new(envelope: &Envelope, parameters: &[&str]) -> Result<Commands, Error> {
        let mail: Arc<[u8]> = mail_command(envelope, parameters).encode()?.into();
        let rcpts = envelope
            .recipients
            .iter()
            .map(|recipient| Command::Rcpt(recipient.as_str()).encode().map(Arc::from))
            .collect::<Result<Vec<_>, _>>()?;
        let data: Arc<[u8]> = Command::Data.encode()?.into();
        let mut group = mail.to_vec();
        rcpts.iter().for_each(|rcpt| group.extend_from_slice(rcpt));
        group.extend_from_slice(&data);
        Ok(Commands {
            mail,
            rcpts,
            data,
            group: group.into(),
            quit: Command::Quit.encode()?.into(),
        })
    }
}

/// The reply a lane waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    Mail,
    Rcpt(usize),
    Data,
    /// The reply to the final `.`.
    End,
    Quit,
}

impl Waiting {
    fn name(self) -> &'static str {
        match self {
            Waiting::Mail => "MAIL FROM",
            Waiting::Rcpt(_) => "RCPT TO",
            Waiting::Data => "DATA",
            Waiting::End => "the end of the message data",
            Waiting::Quit => "QUIT",
        }
    }
}

/// How a failing lane ends.
enum Ending {
    /// Say QUIT first (the dialogue's rule, [`error_allows_quit`]), then report the error.
    Quit(Error),
    /// Drop the connection now: the error broke it, or a QUIT could become message content.
    Drop(Error),
}

impl From<Error> for Ending {
    fn from(error: Error) -> Ending {
        if error_allows_quit(&error) {
            Ending::Quit(error)
        } else {
            Ending::Drop(error)
        }
    }
}

/// The first refusal in a pipelined group, and what was accepted.
#[derive(Default)]
struct Group {
    first_error: Option<Error>,
    mail_accepted: bool,
    recipients_accepted: usize,
}

/// One connection in the event loop.
pub(crate) struct Lane {
    connection: Connection,
    commands: Commands,
    pipelining: bool,
    waiting: Waiting,
    deadline: Instant,
    /// How long a command's reply may take.
    command_timeout: Duration,
    /// Messages accepted on this connection so far.
    accepted: u32,
    /// When the current message's transaction started.
    started: Instant,
    latencies: Vec<Duration>,
    group: Group,
    /// The error to report once the QUIT sent after it is answered.
    after_quit: Option<Error>,
    /// `Some` once the lane is finished.
    result: Option<Result<(), Error>>,
}

impl Lane {
    /// Takes over a connection whose first message was accepted, and starts the next
    /// transaction (with pipelining, its commands are already on their way).
    pub(crate) fn new(opened: Opened, envelope: &Envelope, run: &Run<'_>) -> Result<Lane, Failed> {
        let Opened {
            mut connection,
            outcome,
            parameters,
            pipelining,
        } = opened;
        let prepared = Commands::new(envelope, &parameters)
            .and_then(|commands| connection.set_nonblocking(true).map(|()| commands));
        let commands = match prepared {
            Ok(commands) => commands,
            Err(error) => return Err(Box::new((connection.close(), error))),
        };
        let now = Instant::now();
        let mut lane = Lane {
            connection,
            commands,
            pipelining,
            waiting: Waiting::Mail,
            deadline: now + run.timeouts.command,
            command_timeout: run.timeouts.command,
            accepted: outcome.latencies.len() as u32,
            started: now,
            latencies: outcome.latencies,
            group: Group::default(),
            after_quit: None,
            result: None,
        };
        if !pipelining {
            let mail = lane.commands.mail.clone();
            lane.send(&mail);
        }
        // With pipelining, replies to the next group may have come with the last reply the
        // dialogue read: poll(2) would never report them.
        match lane.connection.take_tls_plaintext(lane.waiting.name()) {
            Ok(()) => lane.take_replies(run),
            Err(error) => lane.end(Ending::Drop(error)),
        }
        Ok(lane)
    }

    /// Closes the connection; returns its transcript, latencies and result.
    pub(crate) fn finish(self) -> (Transcript, Vec<Duration>, Result<(), Error>) {
        let mut connection = self.connection;
        let _ = connection.set_nonblocking(false);
        let result = self.result.unwrap_or_else(|| {
            Err(Error::Protocol {
                after: "a load run".into(),
                reason: "the connection was left unfinished".into(),
            })
        });
        (connection.close(), self.latencies, result)
    }

    fn active(&self) -> bool {
        self.result.is_none()
    }

    /// Queues a flight and writes what the socket takes now.
    fn send(&mut self, bytes: &Arc<[u8]>) {
        self.connection.queue(bytes.clone());
        self.flush();
    }

    fn flush(&mut self) {
        if let Err(error) = self.connection.write_pending() {
            self.end(Ending::Drop(error));
        }
    }

    fn expect(&mut self, waiting: Waiting, timeout: Duration) {
        self.waiting = waiting;
        self.deadline = Instant::now() + timeout;
    }

    fn end(&mut self, ending: Ending) {
        match ending {
            Ending::Drop(error) => self.result = Some(Err(error)),
            Ending::Quit(error) => {
                self.after_quit = Some(error);
                let quit = self.commands.quit.clone();
                self.expect(Waiting::Quit, self.command_timeout);
                self.send(&quit);
            }
        }
    }

    /// Handles what `poll` reported for this lane's socket.
    fn service(&mut self, events: PollFlags, run: &Run<'_>) {
        if events.contains(PollFlags::OUT) {
            self.flush();
        }
        if !self.active() || !events.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR) {
            return;
        }
        if let Err(error) = self.connection.read_available(self.waiting.name()) {
            self.end_waiting(error);
            return;
        }
        self.take_replies(run);
    }

    /// Handles every complete reply read so far.
    fn take_replies(&mut self, run: &Run<'_>) {
        while self.active() {
            match self.connection.take_reply(self.waiting.name()) {
                Ok(Some(reply)) => self.on_reply(reply, run),
                Ok(None) => break,
                Err(error) => self.end_waiting(error),
            }
        }
    }

    /// A read failed or timed out: the lane ends, quietly if only QUIT's reply was missing.
    fn end_waiting(&mut self, error: Error) {
        if self.waiting == Waiting::Quit {
            self.result = Some(self.after_quit.take().map_or(Ok(()), Err));
        } else {
            self.end(Ending::Drop(error));
        }
    }

    fn on_reply(&mut self, reply: Reply, run: &Run<'_>) {
        if let Err(ending) = self.step(reply, run) {
            self.end(ending);
        }
    }

    /// The transaction, one reply at a time.
    fn step(&mut self, reply: Reply, run: &Run<'_>) -> Result<(), Ending> {
        let command = self.command_timeout;
        let recipients = self.commands.rcpts.len();
        match (self.waiting, self.pipelining) {
            (Waiting::Mail, false) => {
                judge(reply, |code| code == 250, || shown(&self.commands.mail))?;
                let rcpt = self.commands.rcpts[0].clone();
                self.expect(Waiting::Rcpt(0), command);
                self.send(&rcpt);
            }
            (Waiting::Rcpt(index), false) => {
                let rcpt = &self.commands.rcpts[index];
                judge(reply, |code| matches!(code, 250 | 251), || shown(rcpt))?;
                let (next, bytes) = match self.commands.rcpts.get(index + 1) {
                    Some(next) => (Waiting::Rcpt(index + 1), next.clone()),
                    None => (Waiting::Data, self.commands.data.clone()),
                };
                self.expect(next, command);
                self.send(&bytes);
            }
            (Waiting::Data, false) => {
                judge(reply, |code| code == 354, || "DATA".into())?;
                self.expect(Waiting::End, run.timeouts.data_end);
                self.send(&run.message);
            }
            (Waiting::Mail, true) => {
                let result = judge(reply, |code| code == 250, || shown(&self.commands.mail));
                self.group.mail_accepted = self.remember(result);
                self.expect(Waiting::Rcpt(0), command);
            }
            (Waiting::Rcpt(index), true) => {
                let rcpt = &self.commands.rcpts[index];
                let result = judge(reply, |code| matches!(code, 250 | 251), || shown(rcpt));
                if self.remember(result) {
                    self.group.recipients_accepted += 1;
                }
                let next = if index + 1 < recipients {
                    Waiting::Rcpt(index + 1)
                } else {
                    Waiting::Data
                };
                self.expect(next, command);
            }
            (Waiting::Data, true) => {
                let group = std::mem::take(&mut self.group);
                if let Some(error) = group.first_error {
                    // A 354 means the server now reads message data: never send the message
                    // after a refusal, and never a QUIT that would become its content.
                    return Err(if reply.code == 354 {
                        Ending::Drop(error)
                    } else {
                        Ending::from(error)
                    });
                }
                judge(reply, |code| code == 354, || "DATA".into())?;
                // RFC 2920 §3.1: the message, its `.` and the next group (or QUIT) in one write.
                let more = self.accepted + 1 < run.repeat;
                let trailer = if more {
                    self.commands.group.clone()
                } else {
                    self.commands.quit.clone()
                };
                self.expect(Waiting::End, run.timeouts.data_end);
                self.connection.queue(run.message.clone());
                self.send(&trailer);
            }
            (Waiting::End, _) => {
                let in_flight = self.pipelining;
                let more = self.accepted + 1 < run.repeat;
                let verdict = judge(reply, |code| code == 250, || "the message data".into());
                if let Err(error) = verdict {
                    return Err(match (in_flight, more) {
                        // The next group is on its way: its DATA may be answered 354.
                        (true, true) => Ending::Drop(error),
                        // The QUIT is on its way already.
                        (true, false) => {
                            self.after_quit = Some(error);
                            self.expect(Waiting::Quit, command);
                            return Ok(());
                        }
                        (false, _) => Ending::from(error),
                    });
                }
                self.accepted += 1;
                self.latencies.push(self.started.elapsed());
                run.observer.message_sent();
                self.started = Instant::now();
                match (more, in_flight) {
                    (true, true) => self.expect(Waiting::Mail, command),
                    (true, false) => {
                        let mail = self.commands.mail.clone();
                        self.expect(Waiting::Mail, command);
                        self.send(&mail);
                    }
                    (false, true) => self.expect(Waiting::Quit, command),
                    (false, false) => {
                        let quit = self.commands.quit.clone();
                        self.expect(Waiting::Quit, command);
                        self.send(&quit);
                    }
                }
            }
            (Waiting::Quit, _) => {
                self.result = Some(self.after_quit.take().map_or(Ok(()), Err));
            }
        }
        Ok(())
    }

    /// Keeps the first refusal of a pipelined group; returns whether this reply was positive.
    fn remember(&mut self, result: Result<Reply, Error>) -> bool {
        match result {
            Ok(_) => true,
            Err(error) => {
                self.group.first_error.get_or_insert(error);
                false
            }
        }
    }
}

/// [`check`], naming the command only when the reply is not the expected one.
fn judge(
    reply: Reply,
    expected: fn(u16) -> bool,
    command: impl FnOnce() -> String,
) -> Result<Reply, Error> {
    if expected(reply.code) {
        Ok(reply)
    } else {
        check(reply, &command(), expected)
    }
}

/// A command line as shown in errors, without its CRLF.
fn shown(line: &[u8]) -> String {
    String::from_utf8_lossy(line).trim_end().to_owned()
}

/// Drives every lane until each has finished: waits in `poll(2)` for the sockets that have
/// replies (or room for pending output), and ends lanes whose reply is overdue.
pub(crate) fn drive(lanes: &mut [Lane], run: &Run<'_>) {
    let mut active = Vec::with_capacity(lanes.len());
    let mut events = Vec::with_capacity(lanes.len());
    loop {
        let now = Instant::now();
        let mut next_deadline: Option<Instant> = None;
        for lane in lanes.iter_mut().filter(|lane| lane.active()) {
            if lane.deadline <= now {
                let waiting = lane.waiting.name();
                lane.end_waiting(Error::Timeout {
                    during: format!("waiting for the reply to {waiting}"),
                });
            }
            if lane.active() {
                next_deadline = Some(next_deadline.map_or(lane.deadline, |d| d.min(lane.deadline)));
            }
        }
        let Some(next_deadline) = next_deadline else {
            return;
        };
        active.clear();
        active.extend((0..lanes.len()).filter(|&index| lanes[index].active()));
        let wait_for = next_deadline.saturating_duration_since(now);
        events.clear();
        {
            let mut fds: Vec<PollFd<'_>> = active
                .iter()
                .map(|&index| {
                    let connection = &lanes[index].connection;
                    let mut flags = PollFlags::IN;
                    if connection.wants_write() {
                        flags |= PollFlags::OUT;
                    }
                    PollFd::new(connection.socket(), flags)
                })
                .collect();
            match wait(&mut fds, wait_for) {
                Ok(_) => events.extend(fds.iter().map(PollFd::revents)),
                Err(Errno::INTR) => continue,
                Err(errno) => {
                    let source = std::io::Error::from(errno);
                    for &index in &active {
                        lanes[index].end(Ending::Drop(Error::Io {
                            during: "waiting for replies (poll)".into(),
                            source: std::io::Error::new(source.kind(), source.to_string()),
                        }));
                    }
                    return;
                }
            }
        }
        for (&index, &flags) in active.iter().zip(&events) {
            if !flags.is_empty() {
                lanes[index].service(flags, run);
            }
        }
    }
}

/// How long [`wait`] polls without sleeping before it blocks.
const BUSY_POLL: Duration = Duration::from_micros(50);

/// Waits until a socket is ready or `timeout` has passed. On loopback a reply comes back in
/// tens of microseconds, sooner than a sleeping thread is woken again (on a virtual machine
/// especially), so the loop first polls without sleeping for up to [`BUSY_POLL`], as Linux's
/// `busy_poll` does for sockets; only then does it sleep in `poll(2)`. Against a remote
/// server the spin is a few microseconds of CPU per reply that takes milliseconds.
fn wait(fds: &mut [PollFd<'_>], timeout: Duration) -> rustix::io::Result<usize> {
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let spin_until = Instant::now() + BUSY_POLL.min(timeout);
    loop {
        let ready = poll(fds, Some(&zero))?;
        if ready > 0 {
            return Ok(ready);
        }
        if Instant::now() >= spin_until {
            break;
        }
        std::hint::spin_loop();
    }
    // Round up, so the loop does not spin on a deadline less than a millisecond away.
    let timeout = Timespec::try_from(timeout + Duration::from_millis(1)).unwrap_or(Timespec {
        tv_sec: 1,
        tv_nsec: 0,
    });
    poll(fds, Some(&timeout))
}
