//! The options both clients share, turned into one validated [`Job`], and the sysexits
//! codes every failure maps to.
//!
//! Everything a user can get wrong (an address with CR/LF, a missing attachment, an
//! unreadable password file, a port out of range) is caught here, before any connection.

mod embedded;
mod exit;
mod job;
mod options;
mod run;

pub use embedded::{DEMO_PASSWORD, DEMO_USER, start_embedded};
pub use exit::{Exit, Failure};
pub use job::{Credentials, Job, Output, Server, Timeouts, TlsMode, TranscriptFormat, Verify};
pub use options::{Options, TlsChoice, TranscriptFormatChoice};
pub use run::run;
