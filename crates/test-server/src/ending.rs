//! Why a session ended: every way a connection can finish, as a sentence for people and a
//! short name for the session records.

use std::fmt;
use std::time::Duration;

/// What the server was waiting for when the client went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The next command.
    Command,
    /// A SASL response after a `334` challenge (RFC 4954 §4).
    Auth,
    /// Message data after `354`, before the final `.` line (RFC 5321 §4.1.1.4).
    Data,
    /// The octets of a BDAT chunk, before its last one (RFC 3030 §2).
    Chunk,
}

/// Why a session ended: [`Session::reason`](crate::Session::reason). `Display` gives the
/// sentence the binary logs and the session transcript ends with; [`SessionEnd::kind`]
/// gives a stable name for programs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEnd {
    /// The client sent QUIT and was answered `221` (RFC 5321 §4.1.1.10).
    Quit,
    /// The client closed the connection without QUIT.
    ClientClosed {
        /// What the server was waiting for.
        during: Phase,
    },
    /// Nothing came from the client within the idle timeout; answered `421 4.4.2`
    /// (RFC 5321 §4.5.3.2).
    IdleTimeout {
        /// `Config::idle_timeout`.
        after: Duration,
    },
    /// The connection reached the session time limit; answered `421 4.4.2`.
    SessionTimeout {
        /// `Config::session_timeout`.
        limit: Duration,
    },
    /// The TLS handshake (STARTTLS or implicit TLS) failed.
    TlsFailed {
        /// What went wrong, as rustls or the socket said it.
        why: String,
    },
    /// Refused because `Config::max_connections` connections were already open; answered
    /// `421 4.3.2` (RFC 5321 §3.8), or closed silently on the implicit TLS listener.
    ConnectionCap {
        /// `Config::max_connections`.
        limit: usize,
    },
    /// An injected fault closed the connection.
    DroppedByFault {
        /// The fault, as written for `--fault`, such as `drop-mid-data`.
        fault: String,
    },
    /// Without PIPELINING, the client sent more right after the end of data; answered
    /// `554 5.5.0` and closed (the SMTP smuggling defence, RFC 2920 §3.1).
    PipeliningViolation,
    /// Reading from or writing to the connection failed.
    ConnectionError {
        /// The I/O error.
        error: String,
    },
    /// The server was stopped (the `Server` dropped) while the session ran.
    ServerStopped,
    /// The session panicked: a bug in test-server.
    InternalError,
}

impl SessionEnd {
    /// A short stable name: `quit`, `client-closed`, `idle-timeout`, `session-timeout`,
    /// `tls-failed`, `connection-cap`, `fault`, `pipelining-violation`, `connection-error`,
    /// `server-stopped` or `internal-error`. It is the `reason` of a session's `.json`.
    pub fn kind(&self) -> &'static str {
        match self {
            SessionEnd::Quit => "quit",
            SessionEnd::ClientClosed { .. } => "client-closed",
            SessionEnd::IdleTimeout { .. } => "idle-timeout",
            SessionEnd::SessionTimeout { .. } => "session-timeout",
            SessionEnd::TlsFailed { .. } => "tls-failed",
            SessionEnd::ConnectionCap { .. } => "connection-cap",
            SessionEnd::DroppedByFault { .. } => "fault",
            SessionEnd::PipeliningViolation => "pipelining-violation",
            SessionEnd::ConnectionError { .. } => "connection-error",
            SessionEnd::ServerStopped => "server-stopped",
            SessionEnd::InternalError => "internal-error",
        }
    }
}

impl fmt::Display for SessionEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionEnd::Quit => f.write_str("the client sent QUIT"),
            SessionEnd::ClientClosed {
                during: Phase::Command,
            } => f.write_str("the client closed the connection without QUIT"),
            SessionEnd::ClientClosed {
                during: Phase::Auth,
            } => {
                f.write_str("the client closed the connection in the middle of AUTH, without QUIT")
            }
            SessionEnd::ClientClosed {
                during: Phase::Data,
            } => f.write_str(
                "the client closed the connection in the middle of DATA, before the final \
                 \".\" line",
            ),
            SessionEnd::ClientClosed {
                during: Phase::Chunk,
            } => f.write_str(
                "the client closed the connection in the middle of a BDAT chunk, before its \
                 last octet",
            ),
            SessionEnd::IdleTimeout { after } => write!(
                f,
                "the idle timeout passed: nothing came from the client for {} (421 4.4.2)",
                human(*after)
            ),
            SessionEnd::SessionTimeout { limit } => write!(
                f,
                "the session time limit of {} passed (421 4.4.2)",
                human(*limit)
            ),
            SessionEnd::TlsFailed { why } => write!(f, "the TLS handshake failed: {why}"),
            SessionEnd::ConnectionCap { limit } => {
                write!(f, "refused: the connection cap of {limit} was reached")
            }
            SessionEnd::DroppedByFault { fault } => {
                write!(f, "the {fault} fault dropped the connection")
            }
            SessionEnd::PipeliningViolation => f.write_str(
                "the client sent more right after the end of data without PIPELINING \
                 (554 5.5.0, the SMTP smuggling defence)",
            ),
            SessionEnd::ConnectionError { error } => write!(f, "a connection error: {error}"),
            SessionEnd::ServerStopped => f.write_str("the server stopped"),
            SessionEnd::InternalError => {
                f.write_str("an internal error in test-server (the session panicked)")
            }
        }
    }
}

/// `300 ms`, `5 s`, `1.5 s`, `2 min`.
fn human(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 {
        format!("{millis} ms")
    } else if millis / 60_000 * 60_000 == millis {
        format!("{} min", millis / 60_000)
    } else if millis / 1000 * 1000 == millis {
        format!("{} s", millis / 1000)
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ending_is_one_sentence_with_a_kind() {
        for (end, kind, text) in [
            (SessionEnd::Quit, "quit", "the client sent QUIT"),
            (
                SessionEnd::ClientClosed {
                    during: Phase::Command,
                },
                "client-closed",
                "the client closed the connection without QUIT",
            ),
            (
                SessionEnd::ClientClosed {
                    during: Phase::Auth,
                },
                "client-closed",
                "the client closed the connection in the middle of AUTH, without QUIT",
            ),
            (
                SessionEnd::ClientClosed {
                    during: Phase::Data,
                },
                "client-closed",
                "the client closed the connection in the middle of DATA, before the final \
                 \".\" line",
            ),
            (
                SessionEnd::ClientClosed {
                    during: Phase::Chunk,
                },
                "client-closed",
                "the client closed the connection in the middle of a BDAT chunk, before its \
                 last octet",
            ),
            (
                SessionEnd::IdleTimeout {
                    after: Duration::from_millis(300),
                },
                "idle-timeout",
                "the idle timeout passed: nothing came from the client for 300 ms (421 4.4.2)",
            ),
            (
                SessionEnd::SessionTimeout {
                    limit: Duration::from_secs(30 * 60),
                },
                "session-timeout",
                "the session time limit of 30 min passed (421 4.4.2)",
            ),
            (
                SessionEnd::TlsFailed {
                    why: "the client closed the connection".into(),
                },
                "tls-failed",
                "the TLS handshake failed: the client closed the connection",
            ),
            (
                SessionEnd::ConnectionCap { limit: 2 },
                "connection-cap",
                "refused: the connection cap of 2 was reached",
            ),
            (
                SessionEnd::DroppedByFault {
                    fault: "drop-mid-data".into(),
                },
                "fault",
                "the drop-mid-data fault dropped the connection",
            ),
            (
                SessionEnd::PipeliningViolation,
                "pipelining-violation",
                "the client sent more right after the end of data without PIPELINING \
                 (554 5.5.0, the SMTP smuggling defence)",
            ),
            (
                SessionEnd::ConnectionError {
                    error: "broken".into(),
                },
                "connection-error",
                "a connection error: broken",
            ),
            (
                SessionEnd::ServerStopped,
                "server-stopped",
                "the server stopped",
            ),
            (
                SessionEnd::InternalError,
                "internal-error",
                "an internal error in test-server (the session panicked)",
            ),
        ] {
            assert_eq!(end.kind(), kind);
            assert_eq!(end.to_string(), text);
        }
    }

    #[test]
    fn durations_read_naturally() {
        for (duration, text) in [
            (Duration::from_millis(1), "1 ms"),
            (Duration::from_millis(999), "999 ms"),
            (Duration::from_secs(5), "5 s"),
            (Duration::from_millis(1500), "1.5 s"),
            (Duration::from_secs(120), "2 min"),
            (Duration::from_secs(90), "90 s"),
        ] {
            assert_eq!(human(duration), text);
        }
    }
}
