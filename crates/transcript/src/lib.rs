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
pub use render::{DATA_RECORD_LIMIT, RenderOptions, Timing, Transcript};

/// The server's certificate as a client saw it after the handshake, for `--explain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// Whom it was issued to, e.g. `CN=localhost`.
    pub subject: String,
    /// Who signed it, e.g. `CN=test-server CA`.
    pub issuer: String,
    /// The names it is valid for (its subject alternative names).
    pub names: Vec<String>,
    /// The last day it is valid, `YYYY-MM-DD` (UTC).
    pub not_after: String,
    /// How the client checked it.
    pub checked: Checked,
}

/// How a client decided to trust the server's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// The chain leads to a trusted root and the certificate names `name`.
    Verified {
        /// The name the certificate had to carry.
        name: String,
        /// Which roots were trusted, e.g. `webpki-roots (Mozilla's list)`.
        roots: String,
    },
    /// `--pin-sha256`: its SHA-256 fingerprint is the pinned one; nothing else was checked.
    Pinned,
    /// `--insecure`: any certificate was accepted.
    Insecure,
}

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
        /// The server's certificate, when a client recorded it; only `--explain` shows it.
        certificate: Option<Box<Certificate>>,
    },
    /// A remark by the recorder, such as `certificate verification disabled (--insecure)`.
    Note(String),
    /// The connection was closed.
    Closed,
}
