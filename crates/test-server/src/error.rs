//! The one error type of this crate: what can stop the server from starting.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Why the server could not start (a running server answers bad input, it never fails).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// The reason.
        source: io::Error,
    },
    /// The store directory could not be created or read.
    #[error("store directory {}: {source}", path.display())]
    Store {
        /// The directory.
        path: PathBuf,
        /// The reason.
        source: io::Error,
    },
    /// The certificate could not be generated, or the given one could not be used.
    #[error("certificate: {0}")]
    Certificate(String),
    /// An option or fault specification is invalid.
    #[error("{0}")]
    Config(String),
    /// Another I/O failure while starting, such as spawning a thread.
    #[error("{0}")]
    Io(#[from] io::Error),
}
