//! `--repeat` and `--connections`: raw-client as a load generator, like Postfix's
//! smtp-source — N messages on each of C parallel connections, then messages per second and
//! latency percentiles.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cli::{Failure, Job, Sent};
use transcript::Transcript;

use crate::Settings;
use crate::client::{self, Ended, Until};
use crate::data::DotStuffer;
use crate::event_loop::{self, Lane, Run};

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

/// What a load run measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Messages the server accepted.
    pub messages: usize,
    /// Parallel connections.
    pub connections: u32,
    /// Wall time from the first connect to the last QUIT.
    pub elapsed: Duration,
    /// Each message's time from MAIL to the reply to its `.`, sorted.
    pub latencies: Vec<Duration>,
    /// What went wrong after messages were accepted (a lost reply to QUIT, recipients
    /// refused with --allow-partial).
    pub warnings: Vec<cli::Warning>,
    /// The reply that accepted the message, for a run of one message.
    pub reply: Option<cli::ServerReply>,
    /// `--quit-after`: where the dialogue stopped.
    pub stopped: Option<cli::Stage>,
}

impl Report {
    /// Accepted messages per second.
    pub fn rate(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// The latency below which `percent` of the messages stayed (nearest rank).
    pub fn percentile(&self, percent: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = (percent / 100.0 * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }

    /// One line for the user.
    pub fn summary(&self) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        format!(
            "sent {} messages over {} connection(s) in {:.3} s: {:.1} msg/s; latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms",
            self.messages,
            self.connections,
            self.elapsed.as_secs_f64(),
            self.rate(),
            ms(self.percentile(50.0)),
            ms(self.percentile(90.0)),
            ms(self.percentile(99.0)),
        )
    }
}

/// Messages up to this size are rendered once and shared by every message of a load run;
/// larger ones are rendered (streamed from disk) for each message, by one thread per
/// connection, so memory stays flat.
pub const SHARED_MESSAGE_LIMIT: u64 = 8 * 1024 * 1024;

/// Runs `connections` sessions in parallel, each sending the message `settings.repeat` times.
/// Returns the first connection's transcript and the report, or the first error.
///
/// Each connection's dialogue, up to its first accepted message, runs on a thread of its own
/// and is recorded. The rest of the messages go through one event loop for all connections
/// ([`crate::event_loop`]); only messages above [`SHARED_MESSAGE_LIMIT`] stay on the threads.
pub fn send_many(
    job: &Job,
    settings: &Settings,
    connections: u32,
    observer: &dyn Observer,
) -> (Transcript, Result<Report, Failure>) {
    let connections = connections.max(1);
    let started = Instant::now();
    let shared = settings.repeat > 1 && job.message.expected_len() <= SHARED_MESSAGE_LIMIT;
    let message = if shared {
        match render_once(job) {
            Ok(message) => Some(message),
            Err(failure) => return (Transcript::new(), Err(failure)),
        }
    } else {
        None
    };
    let until = if message.is_some() {
        Until::FirstMessage
    } else {
        Until::Done
    };
    let opened: Vec<Ended> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..connections)
            .map(|_| scope.spawn(|| client::open(job, settings, observer, until)))
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle.join().unwrap_or_else(|_| Ended::Done {
                    transcript: Transcript::new(),
                    result: Err(Failure::Internal("a connection thread panicked".into())),
                    latencies: Vec::new(),
                })
            })
            .collect()
    });
    let mut results: Vec<(Transcript, Vec<Duration>, Result<Sent, Failure>)> = Vec::new();
    let mut lanes = Vec::new();
    let run = message.map(|message| Run {
        message,
        timeouts: job.timeouts,
        observer,
    });
    for ended in opened {
        match (ended, &run) {
            (
                Ended::Done {
                    transcript,
                    result,
                    latencies,
                },
                _,
            ) => results.push((transcript, latencies, result)),
            (Ended::HandedOff(open), Some(run)) => lanes.push(Lane::new(*open, run)),
            (Ended::HandedOff(open), None) => results.push((
                open.connection.close(),
                open.latencies,
                Err(Failure::Internal(
                    "a connection was handed off without a run".into(),
                )),
            )),
        }
    }
    if let Some(run) = &run {
        event_loop::drive(&mut lanes, run);
    }
    // Connection order does not matter for the report, except that a connection that failed
    // before its first message is reported first: it explains more than a later failure.
    results.extend(lanes.into_iter().map(Lane::finish));
    let elapsed = started.elapsed();
    let mut first_transcript = None;
    let mut latencies = Vec::new();
    let mut first_error = None;
    let mut warnings = Vec::new();
    let (mut reply, mut stopped) = (None, None);
    for (transcript, lane_latencies, result) in results {
        first_transcript.get_or_insert(transcript);
        latencies.extend(lane_latencies);
        match result {
            Ok(sent) => {
                warnings.extend(sent.warnings);
                reply = sent.reply;
                stopped = sent.stopped;
            }
            Err(failure) => {
                first_error.get_or_insert(failure);
            }
        }
    }
    let transcript = first_transcript.unwrap_or_default();
    if let Some(failure) = first_error {
        return (transcript, Err(failure));
    }
    latencies.sort_unstable();
    let one = latencies.len() == 1;
    let report = Report {
        messages: latencies.len(),
        connections,
        elapsed,
        latencies,
        warnings,
        reply: reply.filter(|_| one),
        stopped,
    };
    (transcript, Ok(report))
}

/// The message data as it goes on the wire: rendered, dot-stuffed, ending with `.`.
fn render_once(job: &Job) -> Result<Arc<[u8]>, Failure> {
    let size = usize::try_from(job.message.expected_len()).unwrap_or(0);
    let mut stuffer = DotStuffer::new(Vec::with_capacity(size + size / 32 + 8));
    job.message.render(&mut stuffer)?;
    let data = stuffer.finish_unflushed().map_err(|source| Failure::Io {
        during: "rendering the message".into(),
        reason: source.to_string(),
    })?;
    Ok(data.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let report = Report {
            messages: 10,
            connections: 1,
            elapsed: Duration::from_secs(2),
            latencies: (1..=10).map(Duration::from_millis).collect(),
            warnings: Vec::new(),
            reply: None,
            stopped: None,
        };
        assert_eq!(report.percentile(50.0), Duration::from_millis(5));
        assert_eq!(report.percentile(90.0), Duration::from_millis(9));
        assert_eq!(report.percentile(99.0), Duration::from_millis(10));
        assert!((report.rate() - 5.0).abs() < 1e-9);
        assert!(
            report
                .summary()
                .starts_with("sent 10 messages over 1 connection(s) in 2.000 s: 5.0 msg/s")
        );
    }
}
