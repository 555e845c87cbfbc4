//! The options both clients share, turned into one validated [`Job`], and the failure
//! vocabulary both clients speak: one [`Failure`] enum, its sentences and its sysexits codes.
//!
//! Everything a user can get wrong (an address with CR/LF, a missing attachment, an
//! unreadable password file, a port out of range) is caught here, before any connection.
//! With the `embedded` feature (the client binaries turn it on), [`run`] is the part of
//! `main` both binaries share, and [`embedded`] starts the test server of the default run.

mod accounts;
mod arguments;
mod certificate;
mod delivery;
#[cfg(feature = "embedded")]
pub mod embedded;
mod exit;
mod failure;
pub mod help;
mod job;
mod options;
mod outcome;
#[cfg(feature = "embedded")]
mod run;
mod secret;
pub mod sendmail;
mod serverinfo;

pub use arguments::parse_arguments;
pub use certificate::describe_certificate;
pub use delivery::{Delivery, Dsn, Parameter, Parameters, xtext};
pub use exit::Exit;
pub use failure::{Failure, Sent, ServerReply, Violation, Warning};
pub use job::{
    Credentials, DURATION_RANGE, Endpoint, Job, Output, Plan, Server, Timeouts, TlsMode,
    TranscriptFormat, Verify,
};
pub use options::{
    AuthChoice, DsnRet, Options, Provider, Stage, TlsChoice, TranscriptFormatChoice, heading,
};
pub use outcome::{outcome, queue_id};
#[cfg(feature = "embedded")]
pub use run::{job_for, run};
pub use serverinfo::{ServerInfo, TlsInfo};

/// The demo account of the embedded server.
pub const DEMO_USER: &str = "demo";
/// The demo account's password (only ever valid on the embedded server).
pub const DEMO_PASSWORD: &str = "demo-password";
