//! The one owner of the SMTP transcript format: events, their `C:`/`S:`/`--` text and JSON
//! renderings, secret redaction, and the diff of two transcripts.
//!
//! Both clients and the test server record into a [`Transcript`]. Because the clients write
//! in different chunks (lettre writes the message and the final `.` separately, raw-client
//! in one flight), client and server bytes are split into protocol lines here, so the same
//! bytes on the wire always give the same transcript, whatever the write boundaries were.
//!
//! With `--explain` ([`RenderOptions::explain`]) each line is followed by annotation lines
//! starting with `# ` (in JSON, an `explain` list on each event) from [`explain`]; removing
//! them gives back the plain transcript byte for byte.
//!
//! Redaction is decided from the dialogue itself, not by whoever recorded it: the initial
//! response of `AUTH <mechanism> <initial-response>` and the first client line after each
//! `334` challenge are SASL payloads (RFC 4954 §4) and are shown as `<redacted>`.

mod diff;
pub mod explain;
mod render;

pub use diff::{Diff, color_wanted, diff, diff_explained};
pub use render::{DATA_RECORD_LIMIT, RenderOptions, Transcript};

/// One thing that happened on a connection, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The TCP connection is up; `peer` is what the user asked for, e.g. `localhost:587`.
    Connected {
        /// The server as named by the user (host and port).
        peer: String,
    },
    /// One line the client sent, with its line ending (a final partial line has none).
    Client(Vec<u8>),
    /// One line the server sent, with its line ending.
    Server(Vec<u8>),
    /// The TLS handshake finished; `detail` (version, cipher suite) is shown only on request.
    TlsEstablished {
        /// Protocol version and cipher suite, when the recorder knows them.
        detail: Option<String>,
    },
    /// A remark by the recorder, such as `certificate verification disabled (--insecure)`.
    Note(String),
    /// The connection was closed.
    Closed,
}
