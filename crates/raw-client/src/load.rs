//! `--repeat` and `--connections`: raw-client as a load generator, like Postfix's
//! smtp-source — N messages on each of C parallel connections, then messages per second and
//! latency percentiles.

use std::time::{Duration, Instant};

use cli::Job;
use transcript::Transcript;

use crate::Error;
use crate::session::{Settings, send_observed};

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

/// Runs `connections` sessions in parallel, each sending the message `settings.repeat` times.
/// Returns the first connection's transcript and the report, or the first error.
pub fn send_many(
    job: &Job,
    settings: &Settings,
    connections: u32,
    message_sent: &(dyn Fn() + Sync),
) -> (Transcript, Result<Report, Error>) {
    let connections = connections.max(1);
    let started = Instant::now();
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..connections)
            .map(|_| scope.spawn(|| send_observed(job, settings, message_sent)))
            .collect();
        handles.into_iter().map(|handle| handle.join()).collect()
    });
    let elapsed = started.elapsed();
    let mut first_transcript = None;
    let mut latencies = Vec::new();
    let mut first_error = None;
    for result in results {
        let (transcript, outcome) = match result {
            Ok(pair) => pair,
            Err(_) => (
                Transcript::new(),
                Err(Error::Protocol {
                    after: "a load run".into(),
                    reason: "a connection thread panicked".into(),
                }),
            ),
        };
        first_transcript.get_or_insert(transcript);
        match outcome {
            Ok(outcome) => latencies.extend(outcome.latencies),
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    let transcript = first_transcript.unwrap_or_default();
    if let Some(error) = first_error {
        return (transcript, Err(error));
    }
    latencies.sort_unstable();
    let report = Report {
        messages: latencies.len(),
        connections,
        elapsed,
        latencies,
    };
    (transcript, Ok(report))
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
