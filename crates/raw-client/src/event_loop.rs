//! The event loop of a load run (`--repeat` with `--connections`). Each connection's first
//! message goes through the blocking driver (`crate::client`), recorded; then one thread
//! drives the rest of every connection's messages over non-blocking sockets with `poll(2)`,
//! as Postfix's smtp-source does. (A blocking thread per connection wakes once per reply, and
//! on a small machine those thread switches cost more than the SMTP work.)
//!
//! Each connection is a [`Lane`]: its socket and the same [`Session`] the blocking driver
//! started, which goes on deciding every step (crate::session). The lane only moves bytes:
//! it queues each flight (the message, rendered and dot-stuffed once, is shared by all
//! lanes), hands each complete reply to the session, and enforces the deadline of the reply
//! the session waits for.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cli::{Failure, Sent, Timeouts};
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::io::Errno;
use transcript::Transcript;

use crate::client::Open;
use crate::connection::Connection;
use crate::load::Observer;
use crate::session::{Action, Session, Wait};

/// What every lane of one run shares.
pub(crate) struct Run<'a> {
    /// The message data, dot-stuffed, ending with the `.` line.
    pub(crate) message: Arc<[u8]>,
    pub(crate) timeouts: Timeouts,
    /// Told of each accepted message (progress bars).
    pub(crate) observer: &'a dyn Observer,
}

/// One connection in the event loop.
pub(crate) struct Lane {
    connection: Connection,
    session: Session,
    /// The reply the session waits for, and until when.
    waiting: Wait,
    deadline: Instant,
    /// When the current message's transaction started.
    started: Instant,
    latencies: Vec<Duration>,
    /// `Some` once the lane is finished.
    result: Option<Result<Sent, Failure>>,
}

impl Lane {
    /// Takes over a connection whose first message was accepted, and goes on with its
    /// dialogue (with pipelining, the next transaction's commands are already on their way).
    pub(crate) fn new(open: Open, run: &Run<'_>) -> Lane {
        let Open {
            mut connection,
            session,
            latencies,
        } = open;
        let now = Instant::now();
        let nonblocking = connection.set_nonblocking(true);
        let mut lane = Lane {
            connection,
            session,
            waiting: Wait::Reply("MAIL FROM"),
            deadline: now + run.timeouts.command,
            started: now,
            latencies,
            result: None,
        };
        if let Err(failure) = nonblocking {
            lane.session.on_failure(failure);
        }
        lane.act(run);
        // With pipelining, replies to the next group may have come with the last reply the
        // blocking driver read: poll(2) would never report them.
        match lane.connection.take_tls_plaintext(lane.waiting) {
            Ok(()) => lane.take_replies(run),
            Err(failure) => lane.fail(failure, run),
        }
        lane
    }

    /// Closes the connection; returns its transcript, latencies and result.
    pub(crate) fn finish(self) -> (Transcript, Vec<Duration>, Result<Sent, Failure>) {
        let mut connection = self.connection;
        let _ = connection.set_nonblocking(false);
        let result = self.result.unwrap_or_else(|| {
            Err(Failure::Internal(
                "a load run's connection was left unfinished".into(),
            ))
        });
        (connection.close(), self.latencies, result)
    }

    fn active(&self) -> bool {
        self.result.is_none()
    }

    /// Does what the session says until it waits for a reply or is done.
    fn act(&mut self, run: &Run<'_>) {
        while let Some(action) = self.session.next_action() {
            match action {
                Action::Write(flight) => {
                    if flight.handshake {
                        self.session.on_failure(Failure::Internal(
                            "a TLS handshake in a load run's event loop".into(),
                        ));
                        continue;
                    }
                    if flight.message {
                        self.connection.queue(run.message.clone());
                    }
                    if !flight.commands.is_empty() {
                        self.connection.queue(flight.commands);
                    }
                    if let Err(failure) = self.connection.write_pending() {
                        self.session.on_failure(failure);
                    }
                }
                Action::Read(wait) => {
                    self.waiting = wait;
                    let timeout = if wait.is_data_end() {
                        run.timeouts.data_end
                    } else {
                        run.timeouts.command
                    };
                    self.deadline = Instant::now() + timeout;
                    return;
                }
                Action::Note(note) => self.connection.transcript.note(note),
                Action::Transaction => self.started = Instant::now(),
                Action::Accepted(_) => {
                    self.latencies.push(self.started.elapsed());
                    self.started = Instant::now();
                    run.observer.message_sent();
                }
                Action::StopRecording => self.connection.set_recording(false),
                Action::Done(result) => {
                    self.result = Some(result);
                    return;
                }
            }
        }
    }

    /// The driver failed (a read, a write, a deadline): the session decides what follows.
    fn fail(&mut self, failure: Failure, run: &Run<'_>) {
        self.session.on_failure(failure);
        self.act(run);
    }

    /// Handles what `poll` reported for this lane's socket.
    fn service(&mut self, events: PollFlags, run: &Run<'_>) {
        if events.contains(PollFlags::OUT)
            && let Err(failure) = self.connection.write_pending()
        {
            self.fail(failure, run);
        }
        if !self.active() || !events.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR) {
            return;
        }
        if let Err(failure) = self.connection.read_available(self.waiting) {
            self.fail(failure, run);
            return;
        }
        self.take_replies(run);
    }

    /// Hands every complete reply read so far to the session.
    fn take_replies(&mut self, run: &Run<'_>) {
        while self.active() {
            match self.connection.take_reply(self.waiting) {
                Ok(Some(reply)) => {
                    let unread = self.connection.unread_input().len();
                    self.session.on_reply(reply, unread);
                    self.act(run);
                }
                Ok(None) => break,
                Err(failure) => self.fail(failure, run),
            }
        }
    }
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
                let late = lane.waiting.timed_out(false);
                lane.fail(late, run);
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
                        let failure = Failure::Io {
                            during: "waiting for replies (poll)".into(),
                            reason: source.to_string(),
                        };
                        lanes[index].fail(failure, run);
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
