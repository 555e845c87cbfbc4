//! raw-client: SMTP written by hand over `std::net::TcpStream` and rustls.
//!
//! Read [`session`] top to bottom: it is the dialogue of RFC 5321 in order — connect, greeting,
//! EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA, QUIT — one small function per step. The reply
//! parser ([`reply`]) and command encoder ([`command`]) are pure functions over bytes.

pub mod command;
mod connection;
pub mod data;
mod event_loop;
pub mod load;
pub mod reply;
pub mod session;
mod tls;

use std::io;

use cli::{Exit, Failure};

pub use load::{Report, send_many};
pub use session::{Observer, Outcome, Settings, send, send_observed};

/// Everything that can go wrong while sending, each mapped to one sysexits code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The host name does not resolve.
    #[error("cannot resolve the server name {host:?} ({source}): check --server")]
    Resolve {
        /// The host name.
        host: String,
        /// Why.
        source: io::Error,
    },
    /// No address of the server accepted the connection.
    #[error("cannot connect to {peer} ({source}): check the server and port, or try again later")]
    Connect {
        /// host:port.
        peer: String,
        /// Why.
        source: io::Error,
    },
    /// A read or write took longer than the timeout.
    #[error(
        "the server did not answer in time while {during}: try again later, or raise --timeout"
    )]
    Timeout {
        /// What the client was doing.
        during: String,
    },
    /// The server closed the connection.
    #[error("the server closed the connection while {during}: try again later")]
    Closed {
        /// What the client was doing.
        during: String,
    },
    /// Another I/O error.
    #[error("the connection failed while {during}: {source}")]
    Io {
        /// What the client was doing.
        during: String,
        /// Why.
        source: io::Error,
    },
    /// The server broke the protocol.
    #[error("the server broke the SMTP protocol after {after}: {reason}")]
    Protocol {
        /// The command (or event) after which it happened.
        after: String,
        /// What was wrong.
        reason: String,
    },
    /// The server answered a command with 4xx or 5xx.
    #[error("the server rejected {command} with {reply}")]
    Rejected {
        /// The command, e.g. `RCPT TO:<b@example.org>`.
        command: String,
        /// The reply.
        reply: reply::Reply,
    },
    /// `421`: the server is closing the connection (RFC 5321 §3.8).
    #[error(
        "the server is shutting down the connection: it answered {command} with {reply}; try again later"
    )]
    ServiceClosing {
        /// The command it answered.
        command: String,
        /// The reply.
        reply: reply::Reply,
    },
    /// AUTH was answered with a 5xx (RFC 4954 §6: 535 means bad credentials).
    #[error("authentication failed: the server answered {reply}; check the user name and password")]
    AuthFailed {
        /// The reply.
        reply: reply::Reply,
    },
    /// Credentials were given, but the server offers no mechanism the client knows.
    #[error(
        "the server offers no AUTH mechanism this client supports (PLAIN, LOGIN); it offers: {offered}"
    )]
    NoAuthMechanism {
        /// What it offers.
        offered: String,
    },
    /// Credentials would go over an unencrypted connection.
    #[error(
        "refusing to send the password over an unencrypted connection: use --tls starttls or implicit, or add --allow-plaintext-auth"
    )]
    PlaintextAuth,
    /// TLS is required and the server does not offer STARTTLS.
    #[error(
        "TLS is required but the server does not offer STARTTLS, so nothing was sent after EHLO: use a server that supports TLS (or --tls none on a network you trust)"
    )]
    StartTlsUnavailable,
    /// TLS is required and the server rejects EHLO, so STARTTLS cannot be negotiated.
    #[error(
        "TLS is required but the server rejected EHLO with {reply}, so STARTTLS cannot be used: nothing else was sent"
    )]
    EhloRejectedTlsRequired {
        /// The reply.
        reply: reply::Reply,
    },
    /// STARTTLS was answered with something other than 220.
    #[error(
        "the server refused STARTTLS with {reply}: nothing else was sent; try again later or use --tls implicit"
    )]
    StartTlsRefused {
        /// The reply.
        reply: reply::Reply,
    },
    /// The server sent bytes after the STARTTLS `220`, before the handshake (RFC 3207 §4.2).
    #[error(
        "the server sent {0} bytes after its STARTTLS reply, before the TLS handshake: this is a response injection attack or a broken server, so the connection was dropped"
    )]
    StartTlsInjection(usize),
    /// The TLS handshake failed for another reason than the certificate.
    #[error("the TLS handshake failed: {reason}")]
    Handshake {
        /// Why.
        reason: String,
    },
    /// The server certificate did not verify.
    #[error(
        "the server certificate is not valid for {name} ({reason}): if the server uses its own CA, pass it with --ca-file"
    )]
    Certificate {
        /// The name checked.
        name: String,
        /// rustls' reason.
        reason: String,
    },
    /// The certificate does not have the pinned fingerprint.
    #[error(
        "the server certificate's SHA-256 fingerprint is {fingerprint}, not the one given with --pin-sha256: check the pin, or whether someone is intercepting the connection"
    )]
    PinMismatch {
        /// The certificate's real fingerprint.
        fingerprint: String,
    },
    /// The TLS configuration could not be built (bad CA file, bad server name).
    #[error("cannot set up TLS: {0}")]
    TlsSetup(String),
    /// The message needs an extension the server does not offer.
    #[error(
        "the message needs the {extension} extension ({why}) but the server does not offer it: nothing was sent"
    )]
    MissingExtension {
        /// The extension keyword.
        extension: &'static str,
        /// Why the message needs it.
        why: &'static str,
    },
    /// A command argument contained CR/LF.
    #[error(transparent)]
    Injection(#[from] command::InjectionError),
    /// The message could not be rendered (e.g. an attachment vanished).
    #[error(transparent)]
    Message(#[from] message::Error),
    /// The job is incomplete.
    #[error(transparent)]
    Job(#[from] Failure),
}

impl Error {
    /// The sysexits code for this error (DESIGN.md).
    pub fn exit(&self) -> Exit {
        match self {
            Error::Resolve { .. } => Exit::NoHost,
            Error::Connect { .. }
            | Error::Timeout { .. }
            | Error::Closed { .. }
            | Error::Io { .. }
            | Error::ServiceClosing { .. } => Exit::TempFail,
            Error::Protocol { .. } | Error::StartTlsInjection(_) => Exit::Protocol,
            Error::Rejected { reply, .. } => Exit::for_reply(reply.code),
            Error::AuthFailed { .. } | Error::NoAuthMechanism { .. } => Exit::NoPerm,
            Error::PlaintextAuth
            | Error::StartTlsUnavailable
            | Error::EhloRejectedTlsRequired { .. }
            | Error::StartTlsRefused { .. }
            | Error::Handshake { .. }
            | Error::Certificate { .. }
            | Error::PinMismatch { .. }
            | Error::TlsSetup(_) => Exit::Config,
            Error::MissingExtension { .. } => Exit::Unavailable,
            Error::Injection(_) => Exit::DataErr,
            Error::Message(error) if error.is_input_file_error() => Exit::NoInput,
            Error::Message(_) => Exit::DataErr,
            Error::Job(failure) => failure.exit,
        }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure::new(error.exit(), error.to_string())
    }
}
