//! raw-client: SMTP written by hand over `std::net::TcpStream` and rustls.
//!
//! Read [`session`] top to bottom: it is the dialogue of RFC 5321 in order — greeting, EHLO,
//! STARTTLS, AUTH, MAIL, RCPT, DATA, QUIT — one small function per step, as a state machine
//! that does no I/O. The reply parser ([`reply`]) and command encoder ([`command`]) are pure
//! functions over bytes; [`auth`](crate::auth) holds the SASL mechanisms. The I/O is in two
//! drivers of the same session: `client` (one send, blocking) and `event_loop` (the rest of
//! a load run's messages, over `poll(2)`). [`interactive`] is the SMTP shell of
//! `--interactive`, where a person types the dialogue; [`serverinfo`] describes a server
//! (`--serverinfo`) with the same session, stopped after EHLO. Failures are the shared
//! [`cli::Failure`].

mod auth;
mod client;
pub mod command;
mod connection;
pub mod data;
mod event_loop;
mod interactive;
pub mod load;
pub mod reply;
mod serverinfo;
pub mod session;
mod tls;

pub use client::{send, send_observed};
pub use interactive::run as interactive;
pub use load::{Observer, Report, send_many};
pub use serverinfo::describe as serverinfo;

/// Choices only raw-client has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Group commands into flights when the server offers PIPELINING (RFC 2920).
    pub pipelining: bool,
    /// Send the message this many times on the one connection.
    pub repeat: u32,
    /// `--chunking`: send the message with BDAT when the server offers CHUNKING (RFC 3030).
    pub chunking: Option<session::Chunking>,
}

impl Settings {
    /// lettre's dialogue: one command at a time, one message, DATA.
    pub const DEFAULT: Settings = Settings {
        pipelining: false,
        repeat: 1,
        chunking: None,
    };
}

impl Default for Settings {
    fn default() -> Self {
        Settings::DEFAULT
    }
}
