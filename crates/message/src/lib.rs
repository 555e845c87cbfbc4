//! The RFC 5322 / MIME message builder both SMTP clients send byte for byte.
//!
//! A [`MessageBuilder`] collects the parts of a message, [`MessageBuilder::build`]
//! validates all of them up front (addresses, header injection, attachment files) so
//! that every error comes before a network connection, and the resulting [`Message`]
//! renders deterministically into any [`std::io::Write`], streaming attachments from
//! disk instead of holding them in memory.
//!
//! ```
//! use message::{Date, Mailbox, MessageBuilder};
//!
//! let message = MessageBuilder::new(Mailbox::parse("Alice <alice@example.org>")?)
//!     .to(Mailbox::parse("bob@example.net")?)
//!     .subject("Hello")
//!     .date(Date::from_unix(1_700_000_000))
//!     .message_id("1@example.org")
//!     .text("Hi Bob!")
//!     .build()?;
//! let bytes = message.to_bytes()?;
//! assert!(bytes.starts_with(b"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"));
//! assert_eq!(message.envelope().recipients[0].as_str(), "bob@example.net");
//! # Ok::<(), message::Error>(())
//! ```
//!
//! `docs/message-format.md` describes the output and the RFC sections behind it.

mod address;
mod attachment;
mod body;
mod builder;
mod date;
mod error;
mod header;
mod prebuilt;

pub use address::{Address, Mailbox};
pub use attachment::Attachment;
pub use builder::{Envelope, Message, MessageBuilder};
pub use date::Date;
pub use error::Error;
pub use prebuilt::{MAX_LINE, Prebuilt};
