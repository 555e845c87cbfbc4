//! The failure vocabulary both clients share: every way a send can fail, worded once, each
//! mapped to its sysexits code in one place ([`Failure::exit`]).
//!
//! raw-client and lib-client find out what went wrong in their own ways (one parses every
//! reply itself, the other reads lettre's errors); they then say it with the same variant, so
//! for the same failure the user reads the same sentence and gets the same exit code.

use std::path::PathBuf;

use transcript::explain::{Note, advice_for_reply};

use crate::Exit;

/// A server reply as a failure quotes it: its code and its text lines.
///
/// Each client parses replies with its own parser and hands the result over in this form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerReply {
    /// The three-digit reply code.
    pub code: u16,
    /// The text of each line, without code, separator and CRLF.
    pub lines: Vec<String>,
}

impl std::fmt::Display for ServerReply {
    /// The whole reply as one quoted line: `"550 5.1.1 no such user"`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = self.lines.join(" ");
        let text = text.trim();
        if text.is_empty() {
            write!(f, "\"{}\"", self.code)
        } else {
            write!(f, "\"{} {}\"", self.code, text)
        }
    }
}

/// How the server broke the protocol (the reason of [`Failure::Protocol`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// A line does not start with a reply code and a separator (RFC 5321 §4.2).
    #[error("the server sent a line that is not an SMTP reply: {0:?}")]
    NotAReply(String),
    /// A continuation line carries another code than the first line (RFC 5321 §4.2.1).
    #[error("the server mixed reply codes {first} and {other} in one reply")]
    MixedCodes {
        /// The first line's code.
        first: u16,
        /// The differing code.
        other: u16,
    },
    /// A reply line ended in a bare LF, or contained a bare CR (RFC 5321 §2.3.8).
    #[error("the server ended a reply line without CRLF")]
    BareLineEnding,
    /// A reply line was longer than the client accepts.
    #[error("the server sent a reply line longer than {max} octets")]
    LineTooLong {
        /// The longest line accepted, CRLF included.
        max: usize,
    },
    /// A reply had more lines than the client accepts.
    #[error("the server sent a reply of more than {max} lines")]
    TooManyLines {
        /// The most lines accepted.
        max: usize,
    },
    /// A reply code that no rule allows at this point.
    #[error("it answered {0}, which does not fit")]
    UnexpectedReply(ServerReply),
    /// A `334` challenge the SASL mechanism does not expect (RFC 4954 §4).
    #[error("it sent a challenge the mechanism does not expect")]
    UnexpectedChallenge,
    /// More `334` challenges than the mechanism has steps.
    #[error("it asked for more than a user name and a password")]
    TooManyChallenges,
    /// A SASL message of the server that the mechanism cannot use (RFC 5802 §7 for SCRAM).
    #[error("{0}")]
    Sasl(String),
    /// lettre could not parse what the server sent; lettre's own words.
    #[error("{0}")]
    Unparsed(String),
}

/// Everything that can go wrong, from the command line to the server's last reply.
///
/// Sentences are lowercase, without a final period, say what happened and what to do, and
/// quote the server's reply when there is one. No variant ever holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    // Usage (64): the command line is wrong.
    /// clap refused the command line; its message, as clap formats it.
    #[error("{0}")]
    Arguments(String),
    /// Options that cannot work together, with what to do.
    #[error("{why}")]
    Combination {
        /// The sentence.
        why: String,
    },
    /// `--server` cannot be parsed.
    #[error("--server {text:?} is not valid: {why}; write it as host or host:port")]
    BadServer {
        /// As given.
        text: String,
        /// What is wrong.
        why: &'static str,
    },
    /// A duration option is not a duration.
    #[error("{flag} {text:?} is not a duration: write e.g. 60, 30s, 500ms or 2m")]
    BadDuration {
        /// The option.
        flag: &'static str,
        /// As given.
        text: String,
    },
    /// A duration option is outside its range.
    #[error("{flag} {text:?} is out of range: give a duration from {min} to {max}")]
    DurationOutOfRange {
        /// The option.
        flag: &'static str,
        /// As given.
        text: String,
        /// The shortest allowed, as the user would write it.
        min: &'static str,
        /// The longest allowed.
        max: &'static str,
    },
    /// `--pin-sha256` is not a fingerprint.
    #[error(
        "--pin-sha256 {text:?} is not a SHA-256 fingerprint: give 64 hex digits, colons allowed"
    )]
    BadPin {
        /// As given.
        text: String,
    },
    /// `--header` without a colon.
    #[error("--header {header:?} has no colon: write it as \"Name: value\"")]
    HeaderWithoutColon {
        /// As given.
        header: String,
    },
    /// A real server needs a sender.
    #[error("--from is required with --server: add --from ADDRESS")]
    FromRequired,
    /// A real server needs a recipient.
    #[error("no recipient: add --to, --cc or --bcc with an address")]
    NoRecipient,
    /// A password without a user.
    #[error("a password was given without --user: add --user NAME")]
    PasswordWithoutUser,
    /// `--password-env` names an unset variable.
    #[error("the environment variable {var} named by --password-env is not set")]
    PasswordEnvUnset {
        /// The variable.
        var: String,
    },
    /// `--oauth2-token-env` names an unset variable.
    #[error("the environment variable {var} named by --oauth2-token-env is not set")]
    TokenEnvUnset {
        /// The variable.
        var: String,
    },
    /// More than one source for the one secret.
    #[error("{given} were all given: give one source for the password or token")]
    SecretSources {
        /// The options, as `--password-file and --oauth2-token-env`.
        given: String,
    },
    /// An OAuth 2.0 mechanism without a token, or a password mechanism with one.
    #[error("{why}")]
    AuthChoice {
        /// What does not fit, and what to do.
        why: String,
    },
    /// `--user` without any password source, and no terminal to ask.
    #[error(
        "--user needs a password: use --password-env VAR, --password-file FILE or SMTP_PASSWORD"
    )]
    PasswordMissing,
    /// Credentials would go over an unencrypted connection.
    #[error(
        "refusing to send the password over an unencrypted connection: use --tls starttls or implicit, or add --allow-plaintext-auth"
    )]
    PlaintextAuth,
    /// lib-client cannot do what was asked, because lettre has no way to.
    #[error("lib-client cannot {what}: lettre 0.11 has no API for {option}; use raw-client")]
    LettreCannot {
        /// What was asked, e.g. `pin a certificate`.
        what: &'static str,
        /// The option, e.g. `--pin-sha256`.
        option: &'static str,
    },

    // Bad message or address (65).
    /// The message builder refused the message (or, when `input_file`, an attachment is
    /// missing or unreadable: 66); the builder's own sentence.
    #[error("{text}")]
    Message {
        /// The builder's sentence.
        text: String,
        /// An input file is the problem (66), not the message (65).
        input_file: bool,
    },
    /// An address option is not a valid mailbox.
    #[error("{field}: {text}")]
    Address {
        /// The header the address was for, e.g. `To`.
        field: &'static str,
        /// The builder's sentence.
        text: String,
    },
    /// The EHLO name is not a domain or address literal.
    #[error(
        "the EHLO name {name:?} is not valid: use a domain name or an address literal like [192.0.2.1]"
    )]
    BadHeloName {
        /// As given.
        name: String,
    },
    /// The user name is empty or contains CR, LF or NUL.
    #[error("the user name is empty or contains a line break or NUL: give it without them")]
    BadUser,
    /// A text file is not UTF-8.
    #[error("the {what} {} is not UTF-8 text: attach it with --attach instead", one_line(&path.display().to_string()))]
    NotUtf8 {
        /// Which file, e.g. `body file`.
        what: &'static str,
        /// Its path.
        path: PathBuf,
    },
    /// The password file is not UTF-8.
    #[error("the password file {} is not UTF-8 text", one_line(&path.display().to_string()))]
    PasswordFileNotUtf8 {
        /// Its path.
        path: PathBuf,
    },
    /// A command argument contains a byte that would end or change the command line.
    #[error(
        "refusing to send a command whose argument {argument:?} contains a line break, NUL, or a character that would change the command"
    )]
    Injection {
        /// The argument.
        argument: String,
    },
    /// lettre's address parser refused an address the builder accepted.
    #[error("lettre does not accept the address {address:?}: {reason}")]
    LettreAddress {
        /// The address.
        address: String,
        /// lettre's words.
        reason: String,
    },
    /// lettre refused the envelope.
    #[error("lettre refuses the envelope: {reason}")]
    LettreEnvelope {
        /// lettre's words.
        reason: String,
    },

    // Input file missing (66).
    /// A file named on the command line cannot be read.
    #[error("cannot read the {what} {}: {reason}", one_line(&path.display().to_string()))]
    InputFile {
        /// Which file, e.g. `CA file`.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Standard input cannot be read.
    #[error("could not read the {what} from standard input: {reason}")]
    Stdin {
        /// What was read.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The password prompt failed.
    #[error("could not read the password: {reason}")]
    PasswordPrompt {
        /// Why.
        reason: String,
    },

    // Host not found (68).
    /// The host name does not resolve.
    #[error("cannot resolve the server name {host:?} ({reason}): check --server")]
    Resolve {
        /// The host name.
        host: String,
        /// The resolver's words.
        reason: String,
    },

    // Refused by the server (69 for 5xx, 75 for 4xx) and temporary failures (75).
    /// The server answered a command with 4xx or 5xx.
    #[error("the server rejected {command} with {reply}")]
    Rejected {
        /// The command, e.g. `RCPT TO:<b@example.org>` (never an AUTH payload).
        command: String,
        /// The reply.
        reply: ServerReply,
    },
    /// `421`: the server is closing the connection (RFC 5321 §3.8).
    #[error(
        "the server is shutting down the connection: it answered {command} with {reply}; try again later"
    )]
    ServiceClosing {
        /// The command it answered.
        command: String,
        /// The reply.
        reply: ServerReply,
    },
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
    /// The message is larger than the server's SIZE limit (RFC 1870 §4, §6).
    #[error(
        "the message is {size} octets but the server accepts at most {limit} (its EHLO reply says SIZE {limit}): nothing was sent; make the message smaller or use another server"
    )]
    MessageTooBig {
        /// The message's size as it would go on the wire.
        size: u64,
        /// The server's limit.
        limit: u64,
    },
    /// No address of the server accepted the connection.
    #[error("cannot connect to {peer} ({reason}): check the server and port, or try again later")]
    Connect {
        /// host:port.
        peer: String,
        /// The system's words.
        reason: String,
    },
    /// A reply did not come in time.
    #[error(
        "the server did not answer in time while {during}: try again later, or raise --timeout"
    )]
    Timeout {
        /// What the client was doing.
        during: String,
    },
    /// The data was sent, but its reply did not come in time (RFC 5321 §4.5.3.2.6).
    #[error(
        "the server did not answer the end of the message data in time: raise --data-timeout, or check whether the message arrived before sending it again"
    )]
    DataTimeout,
    /// No greeting came at all: often a STARTTLS client on an implicit-TLS port.
    #[error(
        "the server sent no greeting within the timeout after the connection opened: if this port expects TLS from the first byte (like 465), use --tls implicit; otherwise try again later"
    )]
    NoGreeting,
    /// The server closed the connection.
    #[error("the server closed the connection while {during}: try again later")]
    Closed {
        /// What the client was doing.
        during: String,
    },
    /// Another I/O error.
    #[error("the connection failed while {during}: {reason}")]
    Io {
        /// What the client was doing.
        during: String,
        /// The system's words.
        reason: String,
    },

    // The server broke the protocol (76).
    /// The server sent something no rule allows.
    #[error("the server broke the SMTP protocol after {after}: {violation}")]
    Protocol {
        /// The command (or event) after which it happened.
        after: String,
        /// What was wrong.
        violation: Violation,
    },
    /// The server sent bytes after the STARTTLS `220`, before the handshake (RFC 3207 §4.2).
    #[error(
        "the server sent {0} bytes after its STARTTLS reply, before the TLS handshake: this is a response injection attack or a broken server, so the connection was dropped"
    )]
    StartTlsInjection(usize),

    // Authentication failed (77).
    /// A `--password-command` or `--oauth2-token-command` failed or printed nothing.
    #[error("{option} {command:?} gave no secret: {reason}")]
    SecretCommand {
        /// The option.
        option: &'static str,
        /// The command as given.
        command: String,
        /// What went wrong, with the command's standard error (never its output).
        reason: String,
    },
    /// The server did not offer the mechanism `--auth` asked for.
    #[error(
        "the server does not offer AUTH {mechanism}; it offers: {offered} (choose one with --auth)"
    )]
    MechanismNotOffered {
        /// The mechanism asked for.
        mechanism: &'static str,
        /// What it offers, or `nothing`.
        offered: String,
    },
    /// The OAuth 2.0 token was refused, with the status the server sent (RFC 7628 §3.2.2).
    #[error(
        "the server refused the OAuth 2.0 token{status}: it answered {reply}; get a fresh token, and check that it was issued for this user and mail scope"
    )]
    TokenRejected {
        /// The decoded error status, as `(status 401, scope https://mail.google.com/)`,
        /// with its leading space; empty when the server sent none.
        status: String,
        /// The final reply.
        reply: ServerReply,
    },
    /// SCRAM: the server did not prove it knows the password (RFC 5802 §5).
    #[error(
        "the server did not prove that it knows the password ({why}): it may not be the server you meant, so nothing more was sent"
    )]
    ServerUnproven {
        /// What was wrong with its proof.
        why: String,
    },
    /// AUTH was answered with a 5xx (RFC 4954 §6: 535 means bad credentials).
    #[error("authentication failed: the server answered {reply}; check the user name and password")]
    AuthFailed {
        /// The reply.
        reply: ServerReply,
    },
    /// Credentials were given, but the server offers no mechanism the client knows.
    #[error(
        "the server offers no AUTH mechanism this client supports (PLAIN, LOGIN); it offers: {offered}"
    )]
    NoAuthMechanism {
        /// What it offers, or `nothing`.
        offered: String,
    },

    /// A secret command did not finish in time.
    #[error(
        "{option} {command:?} did not finish within {after}: it was stopped; make it faster or raise --timeout"
    )]
    SecretCommandTimeout {
        /// The option.
        option: &'static str,
        /// The command as given.
        command: String,
        /// The timeout.
        after: String,
    },

    // TLS required but unavailable, the certificate is invalid, or the account file is
    // wrong (78).
    /// `--require-tls` cannot be honoured (RFC 8689): nothing was sent.
    #[error("{why}: nothing was sent, because --require-tls asks for TLS on every hop")]
    RequireTls {
        /// Why.
        why: &'static str,
    },
    /// `--result-file` cannot be written (checked before connecting).
    #[error("the result file {} cannot be written ({reason}): choose a path in a writable directory", path.display())]
    ResultFile {
        /// As given.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// The sendmail entry point was not told where to send: it never falls back to the
    /// embedded test server, where mail from cron or git would be lost.
    #[error(
        "sendmail mode needs a server: set SMTP_SERVER, give --account NAME, or add an account named \"default\" to the account file"
    )]
    SendmailServer,
    /// The account file cannot be used: where, and why.
    #[error("{place}: {why}; fix the account file or give the option on the command line")]
    AccountConfig {
        /// The file, with `:LINE` when known.
        place: String,
        /// What is wrong (the key first, when one is).
        why: String,
    },
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
        reply: ServerReply,
    },
    /// STARTTLS was answered with something other than 220.
    #[error(
        "the server refused STARTTLS with {reply}: nothing else was sent; try again later or use --tls implicit"
    )]
    StartTlsRefused {
        /// The reply.
        reply: ServerReply,
    },
    /// The TLS handshake failed for another reason than the certificate.
    #[error("the TLS handshake failed: {reason}")]
    Handshake {
        /// Why.
        reason: String,
    },
    /// The answer to the TLS ClientHello was not TLS: an implicit-TLS client on a plaintext port.
    #[error(
        "the server answered the TLS handshake in plaintext, so this port does not expect TLS from the first byte: use --tls starttls (usually port 587), or the server's implicit-TLS port (usually 465)"
    )]
    PlaintextReplyToTls,
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

    // A bug here or in a library (70).
    /// The embedded test server could not start.
    #[error("could not start the embedded test server: {reason}")]
    EmbeddedStart {
        /// Why.
        reason: String,
    },
    /// The embedded test server acknowledged a message it did not store.
    #[error("the embedded test server accepted the message but stored nothing")]
    EmbeddedStoredNothing,
    /// lettre panicked.
    #[error(
        "lettre panicked while talking to the server ({what}): this is a lettre bug triggered by the server's reply"
    )]
    LettrePanic {
        /// The panic message.
        what: String,
    },
    /// A bug in this program.
    #[error("internal error: {0}; please report it")]
    Internal(String),
}

impl Failure {
    /// The sysexits code (DESIGN.md): the one place a failure becomes an exit status.
    pub fn exit(&self) -> Exit {
        use Failure::*;
        match self {
            Arguments(_)
            | BadServer { .. }
            | BadDuration { .. }
            | DurationOutOfRange { .. }
            | BadPin { .. }
            | HeaderWithoutColon { .. }
            | FromRequired
            | NoRecipient
            | PasswordWithoutUser
            | PasswordEnvUnset { .. }
            | TokenEnvUnset { .. }
            | SecretSources { .. }
            | AuthChoice { .. }
            | PasswordMissing
            | PlaintextAuth
            | Combination { .. }
            | LettreCannot { .. } => Exit::Usage,
            Message {
                input_file: true, ..
            } => Exit::NoInput,
            Message { .. }
            | Address { .. }
            | BadHeloName { .. }
            | BadUser
            | NotUtf8 { .. }
            | PasswordFileNotUtf8 { .. }
            | Injection { .. }
            | LettreAddress { .. }
            | LettreEnvelope { .. } => Exit::DataErr,
            InputFile { .. } | Stdin { .. } | PasswordPrompt { .. } => Exit::NoInput,
            Resolve { .. } => Exit::NoHost,
            Rejected { reply, .. } if (400..500).contains(&reply.code) => Exit::TempFail,
            Rejected { .. } | MissingExtension { .. } | MessageTooBig { .. } => Exit::Unavailable,
            ServiceClosing { .. }
            | Connect { .. }
            | Timeout { .. }
            | DataTimeout
            | NoGreeting
            | Closed { .. }
            | Io { .. } => Exit::TempFail,
            Protocol { .. } | StartTlsInjection(_) => Exit::Protocol,
            AuthFailed { .. }
            | NoAuthMechanism { .. }
            | SecretCommand { .. }
            | MechanismNotOffered { .. }
            | TokenRejected { .. }
            | ServerUnproven { .. } => Exit::NoPerm,
            SecretCommandTimeout { .. } => Exit::TempFail,
            ResultFile { .. } => Exit::CantCreate,
            AccountConfig { .. }
            | RequireTls { .. }
            | SendmailServer
            | StartTlsUnavailable
            | EhloRejectedTlsRequired { .. }
            | StartTlsRefused { .. }
            | Handshake { .. }
            | PlaintextReplyToTls
            | Certificate { .. }
            | PinMismatch { .. }
            | TlsSetup(_) => Exit::Config,
            EmbeddedStart { .. } | EmbeddedStoredNothing | LettrePanic { .. } | Internal(_) => {
                Exit::Software
            }
        }
    }

    /// Whether a polite `QUIT` still makes sense after this failure (RFC 5321 §4.1.1.10):
    /// not once the connection is broken, timed out, closed by the server, or no longer
    /// trustworthy.
    pub fn allows_quit(&self) -> bool {
        !matches!(
            self,
            Failure::Timeout { .. }
                | Failure::DataTimeout
                | Failure::NoGreeting
                | Failure::Closed { .. }
                | Failure::Io { .. }
                | Failure::Protocol { .. }
                | Failure::ServiceClosing { .. }
                | Failure::StartTlsInjection(_)
                | Failure::Handshake { .. }
                | Failure::PlaintextReplyToTls
                | Failure::Certificate { .. }
                | Failure::PinMismatch { .. }
        )
    }
}

impl Failure {
    /// RFC 6531 §3.4: an internationalized address needs SMTPUTF8.
    pub fn needs_smtputf8() -> Failure {
        Failure::MissingExtension {
            extension: "SMTPUTF8",
            why: "an address is internationalized",
        }
    }

    /// RFC 6152 §3: 8-bit content needs 8BITMIME.
    pub fn needs_8bitmime() -> Failure {
        Failure::MissingExtension {
            extension: "8BITMIME",
            why: "the message has 8-bit content",
        }
    }

    /// The failure for a TLS handshake error from rustls (both clients use rustls): a
    /// certificate problem (fix the trust), a server too old for TLS 1.2, a plaintext answer
    /// to the ClientHello (the 465/587 mix-up), or another handshake failure.
    pub fn from_tls(error: &rustls::Error, tls_name: &str) -> Failure {
        use rustls::{AlertDescription, InvalidMessage, PeerIncompatible};
        match error {
            rustls::Error::InvalidCertificate(reason) => Failure::Certificate {
                name: tls_name.to_owned(),
                reason: reason.to_string(),
            },
            rustls::Error::AlertReceived(AlertDescription::ProtocolVersion)
            | rustls::Error::PeerIncompatible(
                PeerIncompatible::ServerDoesNotSupportTls12Or13
                | PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig,
            ) => Failure::Handshake {
                reason: "the server does not speak TLS 1.2 or 1.3, and older versions are not \
                         safe enough to use"
                    .into(),
            },
            // A TLS record starts with its content type (20 to 24); "220 …" starts with '2'.
            rustls::Error::InvalidMessage(InvalidMessage::InvalidContentType) => {
                Failure::PlaintextReplyToTls
            }
            other => Failure::Handshake {
                reason: other.to_string(),
            },
        }
    }
}

impl Failure {
    /// For `--explain`: the failure, what most likely caused it and what to do.
    pub fn explanation(&self) -> Vec<Note> {
        let mut notes = vec![Note::tool(format!("the send failed: {self}"))];
        let advice = match self {
            Failure::Rejected { reply, .. }
            | Failure::ServiceClosing { reply, .. }
            | Failure::AuthFailed { reply }
            | Failure::StartTlsRefused { reply }
            | Failure::EhloRejectedTlsRequired { reply } => {
                let text = reply.lines.join(" ");
                let enhanced = reply.enhanced();
                advice_for_reply(reply.code, enhanced.as_deref(), &text)
                    .map(|advice| Note::tool(format!("what to do: {advice}")))
            }
            Failure::NoGreeting => Some(Note::new(
                "a server on an implicit-TLS port (usually 465) waits for the TLS handshake and says nothing in plaintext: try --tls implicit",
                "RFC 8314 §3",
            )),
            Failure::PlaintextReplyToTls => Some(Note::new(
                "a submission port (usually 587) greets in plaintext and switches with STARTTLS: use --tls starttls there",
                "RFC 3207 §4; RFC 8314 §3",
            )),
            Failure::StartTlsUnavailable => Some(Note::new(
                "without STARTTLS the password and the message would cross the network in clear, so nothing was sent",
                "RFC 3207 §4",
            )),
            Failure::Certificate { .. } | Failure::PinMismatch { .. } => Some(Note::new(
                "the certificate must chain to a trusted root and name the host you connect to; a private CA goes in --ca-file",
                "RFC 6125 §6",
            )),
            Failure::MessageTooBig { .. } => Some(Note::new(
                "the server announced its limit in its EHLO reply (SIZE), so the message was not sent at all",
                "RFC 1870 §6",
            )),
            Failure::DataTimeout => Some(Note::new(
                "the server may still have taken the message: check before sending it again",
                "RFC 5321 §4.5.3.2.6",
            )),
            Failure::Timeout { .. } => Some(Note::new(
                "no reply within the timeout: a slow or overloaded server, or a firewall that drops packets",
                "RFC 5321 §4.5.3.2",
            )),
            Failure::Connect { .. } => Some(Note::tool(
                "nothing accepted the connection: check the host and the port (587 for submission with STARTTLS, 465 for implicit TLS)",
            )),
            Failure::StartTlsInjection(_) => Some(Note::new(
                "bytes that arrive between STARTTLS's 220 and the handshake were not protected: someone may be tampering",
                "RFC 3207 §4.2",
            )),
            Failure::NoAuthMechanism { .. } => Some(Note::new(
                "the server's EHLO reply lists the mechanisms it accepts after AUTH",
                "RFC 4954 §3",
            )),
            _ => None,
        };
        notes.extend(advice);
        notes
    }
}

impl Failure {
    /// The server's reply this failure is about, if it is about one.
    pub fn reply(&self) -> Option<&ServerReply> {
        match self {
            Failure::Rejected { reply, .. }
            | Failure::ServiceClosing { reply, .. }
            | Failure::TokenRejected { reply, .. }
            | Failure::AuthFailed { reply }
            | Failure::EhloRejectedTlsRequired { reply }
            | Failure::StartTlsRefused { reply }
            | Failure::Protocol {
                violation: Violation::UnexpectedReply(reply),
                ..
            } => Some(reply),
            _ => None,
        }
    }
}

impl ServerReply {
    /// The enhanced status code at the start of the text (RFC 3463), when its class matches.
    pub fn enhanced(&self) -> Option<String> {
        let word = self.lines.first()?.split(' ').next()?;
        let mut parts = word.split('.');
        let class = parts.next()?;
        let valid = parts.count() == 2
            && class.len() == 1
            && u16::from(class.as_bytes()[0].wrapping_sub(b'0')) == self.code / 100;
        valid.then(|| word.to_owned())
    }
}

impl From<message::Error> for Failure {
    fn from(error: message::Error) -> Failure {
        Failure::Message {
            input_file: error.is_input_file_error(),
            text: one_line(&error.to_string()),
        }
    }
}

/// `text` with control characters escaped (`\r`, `\n`, `\u{0}`), so a file name or value
/// the user typed cannot break the one-line sentence.
pub(crate) fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Something the user should know although the message was sent (exit 0).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Warning {
    /// The data was accepted, then the reply to QUIT did not come (RFC 5321 §4.1.1.10 and
    /// §6.1: once the server said `250` to the data, the message is its responsibility).
    #[error(
        "the server accepted the message ({accepted}) but did not answer QUIT: the message was sent, so do not send it again"
    )]
    QuitUnanswered {
        /// The reply to the end of the data.
        accepted: ServerReply,
    },
    /// `--dsn-optional`: the server offers no DSN, so the message went without the DSN
    /// parameters.
    #[error(
        "the server does not offer DSN (RFC 3461), so the message was sent without NOTIFY, RET, ENVID and ORCPT, as --dsn-optional allows: no delivery status notification was asked for"
    )]
    DsnNotOffered,
    /// `--allow-partial`: some recipients were refused, the message went to the others.
    #[error(
        "the message went to {accepted} recipient(s) but the server refused {}: {}; send it to them again once the cause is fixed",
        refused.len(),
        refused.iter().map(|(address, reply)| format!("<{address}> ({reply})")).collect::<Vec<_>>().join(", ")
    )]
    RecipientsRefused {
        /// How many were accepted.
        accepted: usize,
        /// Each refused address and its reply.
        refused: Vec<(String, ServerReply)>,
    },
}

/// A successful send, and what went wrong after the message was accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    /// The reply that accepted the (last) message, e.g. `250 2.0.0 Ok: queued as 000001`;
    /// `None` where a summary of many messages stands for it.
    pub reply: Option<ServerReply>,
    /// Warnings for standard error; the exit status stays 0.
    pub warnings: Vec<Warning>,
    /// `--quit-after`: the dialogue stopped, as asked, after this stage; nothing was sent.
    pub stopped: Option<crate::Stage>,
    /// `--serverinfo`: what the server offers; nothing was sent. It is printed instead of
    /// the transcript.
    pub serverinfo: Option<Box<crate::ServerInfo>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_quoted_on_one_line() {
        let reply = ServerReply {
            code: 550,
            lines: vec!["5.7.1 line one".into(), "5.7.1 line two".into()],
        };
        assert_eq!(reply.to_string(), "\"550 5.7.1 line one 5.7.1 line two\"");
        let bare = ServerReply {
            code: 250,
            lines: vec![String::new()],
        };
        assert_eq!(bare.to_string(), "\"250\"");
    }

    #[test]
    fn reply_codes_decide_between_temporary_and_permanent() {
        let rejected = |code| Failure::Rejected {
            command: "MAIL FROM:<a@b>".into(),
            reply: ServerReply {
                code,
                lines: vec!["no".into()],
            },
        };
        assert_eq!(rejected(451).exit(), Exit::TempFail);
        assert_eq!(rejected(550).exit(), Exit::Unavailable);
        assert_eq!(rejected(554).exit().code(), 69);
    }

    #[test]
    fn sentences_are_one_line_without_a_final_period() {
        let samples = [
            Failure::NoGreeting,
            Failure::DataTimeout,
            Failure::PlaintextReplyToTls,
            Failure::MessageTooBig {
                size: 4096,
                limit: 500,
            },
            Failure::DurationOutOfRange {
                flag: "--timeout",
                text: "99999999h".into(),
                min: "1ms",
                max: "24h",
            },
        ];
        for failure in samples {
            let text = failure.to_string();
            assert!(!text.contains('\n') && !text.ends_with('.'), "{text}");
            assert!(text.chars().next().is_some_and(|c| !c.is_uppercase()));
        }
    }
}
