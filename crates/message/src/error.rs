//! The one error type of the crate: everything that can be wrong with a message.

use std::io;
use std::path::PathBuf;

/// Why a message could not be built or rendered.
///
/// Every variant except [`Error::AttachmentMissing`], [`Error::AttachmentUnreadable`]
/// and [`Error::Io`] describes a problem with the message itself (sysexits 65);
/// [`Error::is_input_file_error`] tells the two attachment cases apart (sysexits 66).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An address is not a valid RFC 5322 / RFC 6531 addr-spec.
    #[error("the address {address:?} is not valid: {reason}")]
    InvalidAddress {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A header name, value, display name or address contains CR, LF or NUL.
    ///
    /// Such values are rejected, never stripped, because a line break in a header
    /// would let the value start a new header (or the body) of its own.
    #[error(
        "the {header:?} header contains a line break or NUL byte (header injection): remove CR, LF and NUL from the value"
    )]
    HeaderInjection {
        /// The header whose value (or name) contains the line break.
        header: String,
    },

    /// An extra header name is not RFC 5322 ftext (printable ASCII except ':').
    #[error(
        "the header name {name:?} is not valid: use 1 to 76 printable ASCII characters without ':' or spaces"
    )]
    InvalidHeaderName {
        /// The name as given.
        name: String,
    },

    /// An extra header would replace one the builder writes itself.
    #[error(
        "the header {name:?} is set by the message builder: use the matching builder option instead"
    )]
    ReservedHeader {
        /// The name as given.
        name: String,
    },

    /// A header line would exceed the 998-octet limit of RFC 5322 §2.1.1 even after folding.
    #[error(
        "the {header:?} header has a word too long to fold within 998 octets: shorten the value or add spaces"
    )]
    HeaderTooLong {
        /// The header that is too long.
        header: String,
    },

    /// A date is not an RFC 5322 date-time or unix seconds.
    #[error(
        "the date {date:?} is not valid: {reason} (use a form like \"Tue, 14 Nov 2023 22:13:20 +0000\" or unix seconds)"
    )]
    InvalidDate {
        /// The date as given.
        date: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A Message-ID is not `id@host` or `<id@host>`.
    #[error("the message id {message_id:?} is not valid: {reason}")]
    InvalidMessageId {
        /// The message id as given.
        message_id: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// An attachment content type is not `type/subtype` (optionally with parameters).
    #[error(
        "the content type {content_type:?} is not valid: use a MIME type like \"application/pdf\""
    )]
    InvalidContentType {
        /// The content type as given.
        content_type: String,
    },

    /// The message has no To, Cc or Bcc recipient.
    #[error("the message has no recipients: add at least one To, Cc or Bcc address")]
    NoRecipients,

    /// A prebuilt message gives no envelope recipient.
    #[error(
        "the message has no envelope recipient: give --to, or -t to take them from its To, Cc and Bcc fields"
    )]
    NoEnvelopeRecipients,

    /// A prebuilt message is empty.
    #[error("the message is empty: give a file (or standard input) that holds an RFC 5322 message")]
    EmptyMessage,

    /// A prebuilt message gives no envelope sender.
    #[error(
        "the message has no envelope sender: give --from (sendmail: -f), or -t with a From field in the message"
    )]
    NoSender,

    /// A prebuilt message cannot go over SMTP as it is.
    #[error("line {line} of the message cannot be sent as it is: {reason}")]
    Unsendable {
        /// The line, counting from 1.
        line: usize,
        /// Why.
        reason: String,
    },

    /// An attachment file does not exist.
    #[error("the attachment file {} does not exist: check the path", path.display())]
    AttachmentMissing {
        /// The path as given.
        path: PathBuf,
        /// The error from opening it.
        source: io::Error,
    },

    /// An attachment file exists but cannot be read (permissions, a directory, ...).
    #[error("the attachment file {} cannot be read: {source}", path.display())]
    AttachmentUnreadable {
        /// The path as given.
        path: PathBuf,
        /// The error from opening or reading it.
        source: io::Error,
    },

    /// Writing the rendered message failed.
    #[error("writing the message failed: {0}")]
    Io(#[from] io::Error),
}

impl Error {
    /// True when the problem is an input file (an attachment) rather than the message.
    ///
    /// The command-line clients map this to sysexits 66 (`EX_NOINPUT`), everything
    /// else about the message to 65 (`EX_DATAERR`).
    pub fn is_input_file_error(&self) -> bool {
        matches!(
            self,
            Error::AttachmentMissing { .. } | Error::AttachmentUnreadable { .. }
        )
    }
}
