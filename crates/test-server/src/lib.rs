//! A local ESMTP test server: the clients' embedded default and the witness of what they
//! put on the wire.
//!
//! It speaks RFC 5321 with STARTTLS (RFC 3207), implicit TLS (RFC 8314), AUTH (RFC 4954)
//! with PLAIN, LOGIN, XOAUTH2, OAUTHBEARER (RFC 7628) and SCRAM-SHA-256 (RFC 7677),
//! PIPELINING (RFC 2920), SIZE (RFC 1870), 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531),
//! CHUNKING and BINARYMIME (RFC 3030), DSN's parameters (RFC 3461) and REQUIRETLS
//! (RFC 8689); it stores each accepted message byte-exact with its envelope and
//! the redacted session transcript before answering `250`; it keeps every connection's
//! transcript and the reason it ended, including those that stored nothing; it refuses
//! bare LF and bare CR in message data by default (SMTP smuggling); and it injects faults
//! on request.
//!
//! ```no_run
//! use test_server::{Config, Server};
//!
//! let server = Server::start(Config::default())?;
//! println!("listening on {}, trust {}", server.addr(), server.ca_pem());
//! // ... send a message to server.addr() ...
//! for message in server.messages() {
//!     println!("{} -> {}", message.id, message.path.display());
//! }
//! # Ok::<(), test_server::Error>(())
//! ```
//!
//! The command parser and session state machine are written here independently of the
//! clients' protocol code, so that each checks the other.

// Without the web inbox, the parts of the store and the server that only it reads are unused.
#![cfg_attr(not(feature = "web"), allow(dead_code))]

mod command;
mod config;
mod connection;
mod ending;
mod error;
pub mod lab;
mod sasl;
mod server;
mod session;
mod store;
mod tls;
#[cfg(feature = "web")]
mod web;

pub use config::{Config, FaultKind, Faults, LineEndings, Pacing, Stage, Voice, parse_duration};
pub use connection::Timing;
pub use ending::{Phase, SessionEnd};
pub use error::Error;
pub use server::Server;
pub use session::Session;
pub use store::{StoredEnvelope, StoredMessage, StoredSession};
#[cfg(feature = "web")]
pub use web::{DEFAULT_ADDR as DEFAULT_HTTP_ADDR, Http, HttpConfig};

#[doc(hidden)]
pub mod fuzzing {
    //! Entry points for the fuzz targets in `fuzz/`, not part of the API: the command
    //! types are private to this crate, so results come back in their `Debug` form.

    /// The server's command parser on one command line given without its CRLF: the
    /// parsed command or the refusal, formatted with `{:?}`.
    pub fn parse_command(line: &[u8]) -> Result<String, String> {
        crate::command::parse(line)
            .map(|command| format!("{command:?}"))
            .map_err(|refusal| format!("{refusal:?}"))
    }
}
