//! The command-line options, one clap definition for both clients.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use heading::{AUTHENTICATION, CONNECTION, ENVELOPE, MESSAGE, OUTPUT, TLS};

/// The `--help` headings, in the order `--help` shows them (clap orders the headings by
/// their first option, and the options under a heading as they are declared).
pub mod heading {
    /// Where and how to connect, and how far to go.
    pub const CONNECTION: &str = "Connection";
    /// Certificates and the TLS mode.
    pub const TLS: &str = "TLS";
    /// AUTH: the user, the secret and the mechanism.
    pub const AUTHENTICATION: &str = "Authentication";
    /// MAIL FROM and RCPT TO: who sends and who receives.
    pub const ENVELOPE: &str = "Envelope";
    /// What the message says, or the prebuilt message to send.
    pub const MESSAGE: &str = "Message";
    /// The transcript, the outcome and what is kept.
    pub const OUTPUT: &str = "Output";
    /// raw-client's load generator.
    pub const LOAD: &str = "Load";
}

/// How to protect the connection (`--tls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TlsChoice {
    /// No TLS at all: only when asked for, and credentials then need --allow-plaintext-auth.
    None,
    /// Plain connect, then STARTTLS (RFC 3207); the default except on port 465.
    Starttls,
    /// TLS from the first byte (RFC 8314); the default on port 465.
    Implicit,
}

/// The options both clients accept, with the same meaning and defaults.
///
/// With no `--server`, the client starts the embedded test server on a free loopback port
/// and sends a demo message to it.
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// Server as host[:port] (IPv6 as [addr]:port); default port 587, or 465 with --tls implicit.
    /// Without it, an embedded test server on 127.0.0.1 is started for this run.
    #[arg(help_heading = CONNECTION, long, env = "SMTP_SERVER", value_name = "HOST[:PORT]")]
    pub server: Option<String>,

    /// Use the settings of this account from the account file (see --config); options and
    /// SMTP_* variables given too win over the file.
    #[arg(help_heading = CONNECTION, long, value_name = "NAME")]
    pub account: Option<String>,

    /// The account file (TOML) [default: smtp-workbench/accounts.toml in the XDG config
    /// directory, ~/.config unless XDG_CONFIG_HOME says otherwise].
    #[arg(help_heading = CONNECTION, long, value_name = "FILE", requires = "account")]
    pub config: Option<PathBuf>,

    /// A provider's submission server, TLS mode and advice (docs/providers.md); --server,
    /// --tls and --auth override what it sets.
    #[arg(help_heading = CONNECTION, long, value_enum, value_name = "NAME")]
    pub provider: Option<Provider>,

    /// TLS mode [default: implicit on port 465, starttls otherwise].
    #[arg(help_heading = TLS, long, value_enum, env = "SMTP_TLS")]
    pub tls: Option<TlsChoice>,

    /// Extra trusted CA certificates (PEM), added to the built-in web PKI roots.
    #[arg(help_heading = TLS, long, env = "SMTP_CA_FILE", value_name = "PEM")]
    pub ca_file: Option<PathBuf>,

    /// Skip certificate verification (dangerous: anyone on the path can read the mail).
    #[arg(help_heading = TLS, long)]
    pub insecure: bool,

    /// Accept only the server certificate with this SHA-256 fingerprint (hex, colons
    /// optional), whatever CA signed it, like msmtp's tls_fingerprint.
    #[arg(help_heading = TLS, long, value_name = "HEX")]
    pub pin_sha256: Option<String>,

    /// Name sent with EHLO (RFC 5321 §4.1.1.1) [default: this machine's host name].
    #[arg(help_heading = CONNECTION, long, env = "SMTP_HELO_NAME", value_name = "NAME")]
    pub helo_name: Option<String>,

    /// User name for AUTH (RFC 4954); the password comes from --password-env,
    /// --password-file, SMTP_PASSWORD or a prompt.
    #[arg(help_heading = AUTHENTICATION, long, env = "SMTP_USER")]
    pub user: Option<String>,

    /// Read the password from this environment variable.
    #[arg(help_heading = AUTHENTICATION, long, value_name = "VAR")]
    pub password_env: Option<String>,

    /// Read the password from the first line of this file.
    #[arg(help_heading = AUTHENTICATION, long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,

    /// The password itself (visible to other users in the process list; prefer
    /// --password-env or --password-file).
    #[arg(help_heading = AUTHENTICATION, long, value_name = "PASSWORD")]
    pub password: Option<String>,

    /// Run this command with `sh -c` and use the first line it prints as the password
    /// (msmtp's passwordeval): for password managers and keyrings.
    #[arg(help_heading = AUTHENTICATION, long, value_name = "CMD")]
    pub password_command: Option<String>,

    /// The SASL mechanism for AUTH (RFC 4954) [default: PLAIN if the server offers it, else
    /// LOGIN; XOAUTH2 when an OAuth 2.0 token is given]. For XOAUTH2 and OAUTHBEARER the
    /// secret is an OAuth 2.0 access token.
    #[arg(help_heading = AUTHENTICATION, long, value_enum, ignore_case = true, value_name = "MECH")]
    pub auth: Option<AuthChoice>,

    /// Read an OAuth 2.0 access token from this environment variable (implies --auth
    /// XOAUTH2 unless --auth says otherwise).
    #[arg(help_heading = AUTHENTICATION, long, value_name = "VAR")]
    pub oauth2_token_env: Option<String>,

    /// Read an OAuth 2.0 access token from the first line of this file.
    #[arg(help_heading = AUTHENTICATION, long, value_name = "FILE")]
    pub oauth2_token_file: Option<PathBuf>,

    /// Run this command with `sh -c` and use the first line it prints as the OAuth 2.0
    /// access token: a token helper that refreshes it (oama, a provider's CLI...).
    #[arg(help_heading = AUTHENTICATION, long, value_name = "CMD")]
    pub oauth2_token_command: Option<String>,

    /// Allow AUTH over a connection that is not encrypted (--tls none).
    #[arg(help_heading = AUTHENTICATION, long)]
    pub allow_plaintext_auth: bool,

    /// Sender, as "Name <addr>" or addr; also the envelope reverse-path.
    #[arg(help_heading = ENVELOPE, long, env = "SMTP_FROM", value_name = "MAILBOX")]
    pub from: Option<String>,

    /// Recipient in the To header and the envelope (repeatable).
    #[arg(help_heading = ENVELOPE, long, value_name = "MAILBOX")]
    pub to: Vec<String>,

    /// Recipient in the Cc header and the envelope (repeatable).
    #[arg(help_heading = ENVELOPE, long, value_name = "MAILBOX")]
    pub cc: Vec<String>,

    /// Recipient in the envelope only, never in a header (repeatable).
    #[arg(help_heading = ENVELOPE, long, value_name = "MAILBOX")]
    pub bcc: Vec<String>,

    /// Subject header.
    #[arg(help_heading = MESSAGE, long)]
    pub subject: Option<String>,

    /// Plain-text body.
    #[arg(help_heading = MESSAGE, long, conflicts_with = "body_file")]
    pub body: Option<String>,

    /// Plain-text body from a file, or "-" for standard input.
    #[arg(help_heading = MESSAGE, long, value_name = "FILE")]
    pub body_file: Option<PathBuf>,

    /// HTML alternative body from a file (sent as multipart/alternative).
    #[arg(help_heading = MESSAGE, long, value_name = "FILE")]
    pub html_file: Option<PathBuf>,

    /// Attach a file; append ";type=MIME/TYPE" to override the guessed type (repeatable).
    #[arg(help_heading = MESSAGE, long, value_name = "FILE")]
    pub attach: Vec<String>,

    /// Extra header "Name: value" (repeatable).
    #[arg(help_heading = MESSAGE, long, value_name = "NAME: VALUE")]
    pub header: Vec<String>,

    /// Date header, as RFC 5322 date-time or Unix seconds [default: now].
    #[arg(help_heading = MESSAGE, long)]
    pub date: Option<String>,

    /// Message-ID header, as id@host [default: generated].
    #[arg(help_heading = MESSAGE, long, value_name = "ID")]
    pub message_id: Option<String>,

    /// Reply-To header (repeatable).
    #[arg(help_heading = MESSAGE, long, value_name = "MAILBOX")]
    pub reply_to: Vec<String>,

    /// Timeout for connecting and for each command's reply, from 1ms to 24h, e.g. 60, 30s,
    /// 500ms, 2m.
    #[arg(help_heading = CONNECTION, long, default_value = "60s", value_name = "DURATION")]
    pub timeout: String,

    /// Timeout for the reply to the end of the message data (RFC 5321 §4.5.3.2.6), from 1ms
    /// to 24h.
    #[arg(help_heading = CONNECTION, long, default_value = "10m", value_name = "DURATION")]
    pub data_timeout: String,

    /// Transcript format on standard output.
    #[arg(help_heading = OUTPUT, long, value_enum, default_value = "text", value_name = "FORMAT")]
    pub transcript_format: TranscriptFormatChoice,

    /// Show AUTH payloads in the transcript instead of <redacted>.
    #[arg(help_heading = OUTPUT, long)]
    pub show_secrets: bool,

    /// After each transcript line, say what it means and which RFC defines it: lines that
    /// start with "# " (in JSON, an "explain" list on each event). Without them the
    /// transcript is exactly the one printed without --explain.
    #[arg(help_heading = OUTPUT, long)]
    pub explain: bool,

    /// Show details only this client knows (TLS version and cipher suite).
    #[arg(help_heading = OUTPUT, long)]
    pub details: bool,

    /// Print no transcript, only errors.
    #[arg(help_heading = OUTPUT, long, short)]
    pub quiet: bool,

    /// Send this prebuilt RFC 5322 message ("-" for standard input) as it is: line ends
    /// become CRLF, lines starting with "." are dot-stuffed on the wire, Bcc header fields
    /// are removed, nothing is added. The envelope comes from --from and --to/--cc/--bcc,
    /// or with -t from the message's headers.
    #[arg(help_heading = MESSAGE, long, value_name = "FILE", conflicts_with_all = [
        "subject", "body", "body_file", "html_file", "attach", "header", "date", "message_id",
        "reply_to",
    ])]
    pub data: Option<PathBuf>,

    /// Send attachments as they are (Content-Transfer-Encoding: binary) instead of base64:
    /// raw-client with --chunking, to a server that offers BINARYMIME (RFC 3030 §3).
    #[arg(help_heading = MESSAGE, long, conflicts_with = "data")]
    pub binarymime: bool,

    /// With --data: add a Date, Message-ID and From header field where the message has none
    /// (msmtp's default); From is --from.
    #[arg(help_heading = MESSAGE, long, requires = "data")]
    pub add_missing_headers: bool,

    /// With --data: take the envelope from the message (sendmail -t): recipients from To,
    /// Cc and Bcc (or the newest Resent-To/Cc/Bcc), the sender from Sender or From unless
    /// --from names it. Recipients given with --to, --cc or --bcc are added.
    #[arg(help_heading = ENVELOPE, long, short = 't', requires = "data")]
    pub read_envelope: bool,

    /// Do the dialogue up to and including this stage, then QUIT (after `connect`, close;
    /// after `data`'s 354, close without sending the message): nothing is delivered.
    #[arg(help_heading = CONNECTION, long, value_enum, value_name = "STAGE")]
    pub quit_after: Option<Stage>,

    /// Connect, set up TLS as configured, send EHLO, and describe what the server offers
    /// (greeting, extensions, TLS version, cipher and certificate chain); then QUIT.
    #[arg(help_heading = CONNECTION, long, conflicts_with_all = ["quit_after", "data"])]
    pub serverinfo: bool,

    /// With several recipients of which some are refused, send to the accepted ones (exit 0
    /// with a warning naming each refused one) instead of abandoning the transaction.
    #[arg(help_heading = ENVELOPE, long)]
    pub allow_partial: bool,

    /// Ask for delivery status notifications (RFC 3461): `never`, or a comma list of
    /// `success`, `failure`, `delay`; sent as NOTIFY= on each RCPT, with ORCPT=.
    #[arg(help_heading = ENVELOPE, long, value_name = "WHEN")]
    pub dsn_notify: Option<String>,

    /// What a bounce returns (RFC 3461 §4.3): the full message or its headers (RET=).
    #[arg(help_heading = ENVELOPE, long, value_enum, value_name = "WHAT")]
    pub dsn_ret: Option<DsnRet>,

    /// An envelope id the notifications quote (RFC 3461 §4.4, ENVID=, xtext-encoded).
    #[arg(help_heading = ENVELOPE, long, value_name = "ID")]
    pub dsn_envid: Option<String>,

    /// When the server does not offer DSN, send without the DSN parameters and warn,
    /// instead of failing (exit 69).
    #[arg(help_heading = ENVELOPE, long)]
    pub dsn_optional: bool,

    /// REQUIRETLS (RFC 8689): ask every server on the way to use verified TLS or bounce the
    /// message; refused (exit 78) when the server does not offer it or TLS is not verified.
    #[arg(help_heading = ENVELOPE, long)]
    pub require_tls: bool,

    /// Put SIZE=<octets> on MAIL (RFC 1870 §6): the exact size of what will be sent.
    #[arg(help_heading = ENVELOPE, long)]
    pub declare_size: bool,

    /// Also write the outcome (the JSON object that ends --transcript-format json) to FILE.
    #[arg(help_heading = OUTPUT, long, value_name = "FILE")]
    pub result_file: Option<PathBuf>,

    /// Show the message data as one line, `C: <message: N octets, M lines>`, not line by
    /// line.
    #[arg(help_heading = OUTPUT, long)]
    pub hide_data: bool,

    /// Start each transcript line with the seconds since the connection opened.
    #[arg(help_heading = OUTPUT, long)]
    pub timestamps: bool,

    /// Keep the embedded test server's store (the .eml, .json and .transcript files) after
    /// the run, and print where it is; without it the store is removed at exit.
    #[arg(help_heading = OUTPUT, long)]
    pub keep: bool,

    /// sendmail without -i: a line that is only "." ends the message on standard input.
    #[arg(skip)]
    pub dot_ends_input: bool,

    /// sendmail mode: never fall back to the embedded test server.
    #[arg(skip)]
    pub no_embedded: bool,

    /// sendmail mode: without -f, the envelope sender is the message's Sender or From.
    #[arg(skip)]
    pub sender_from_message: bool,
}

/// `--provider`: submission settings of large mail providers, as published by each (see
/// docs/providers.md for the source and the date each was checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Provider {
    /// Gmail and Google Workspace: app password (PLAIN) or OAuth 2.0 (XOAUTH2).
    Gmail,
    /// Outlook.com (consumer): OAuth 2.0 (XOAUTH2).
    Outlook,
    /// Microsoft 365: OAuth 2.0 (XOAUTH2); Basic authentication off by default from the
    /// end of December 2026.
    Office365,
    /// iCloud Mail: app-specific password.
    Icloud,
    /// Fastmail: app password.
    Fastmail,
    /// Yahoo Mail: app password.
    Yahoo,
}

impl Provider {
    /// The submission server, as `host:port`, and its TLS mode.
    pub fn server(self) -> (&'static str, TlsChoice) {
        match self {
            Provider::Gmail => ("smtp.gmail.com:587", TlsChoice::Starttls),
            Provider::Outlook => ("smtp-mail.outlook.com:587", TlsChoice::Starttls),
            Provider::Office365 => ("smtp.office365.com:587", TlsChoice::Starttls),
            Provider::Icloud => ("smtp.mail.me.com:587", TlsChoice::Starttls),
            Provider::Fastmail => ("smtp.fastmail.com:465", TlsChoice::Implicit),
            Provider::Yahoo => ("smtp.mail.yahoo.com:465", TlsChoice::Implicit),
        }
    }

    /// Whether the provider takes only OAuth 2.0 (a password is then worth a warning).
    pub fn wants_oauth(self) -> bool {
        matches!(self, Provider::Outlook | Provider::Office365)
    }
}

/// `--auth`: the SASL mechanisms this workbench speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthChoice {
    /// RFC 4616: user and password in one message.
    #[value(name = "PLAIN")]
    Plain,
    /// The LOGIN mechanism: user, then password, each after a 334.
    #[value(name = "LOGIN")]
    Login,
    /// Google's and Microsoft's OAuth 2.0 mechanism (not an RFC).
    #[value(name = "XOAUTH2")]
    Xoauth2,
    /// RFC 7628: OAuth 2.0 bearer token with a GS2 header.
    #[value(name = "OAUTHBEARER")]
    Oauthbearer,
    /// RFC 5802 and RFC 7677: a salted challenge-response; the password never crosses the
    /// wire, and the server proves it knows it too.
    #[value(name = "SCRAM-SHA-256")]
    ScramSha256,
}

impl AuthChoice {
    /// The name in the AUTH command and the EHLO keyword: `SCRAM-SHA-256`.
    pub fn name(self) -> &'static str {
        match self {
            AuthChoice::Plain => "PLAIN",
            AuthChoice::Login => "LOGIN",
            AuthChoice::Xoauth2 => "XOAUTH2",
            AuthChoice::Oauthbearer => "OAUTHBEARER",
            AuthChoice::ScramSha256 => "SCRAM-SHA-256",
        }
    }

    /// Whether the secret is an OAuth 2.0 token rather than a password.
    pub fn takes_token(self) -> bool {
        matches!(self, AuthChoice::Xoauth2 | AuthChoice::Oauthbearer)
    }
}

/// `--dsn-ret`: what a delivery status notification returns (RFC 3461 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DsnRet {
    /// The whole message (RET=FULL).
    Full,
    /// Its header section only (RET=HDRS).
    Hdrs,
}

/// `--quit-after`: the stages of the dialogue, in order (RFC 5321 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Stage {
    /// The TCP connection (and with implicit TLS the handshake) is up; close without a word.
    Connect,
    /// The server's 220 greeting.
    Greeting,
    /// EHLO is answered (the first EHLO, before STARTTLS).
    Ehlo,
    /// TLS is up and EHLO answered again (with implicit TLS, the same as ehlo).
    Tls,
    /// AUTH succeeded.
    Auth,
    /// MAIL FROM is accepted.
    Mail,
    /// Every RCPT TO is answered: would the recipients be accepted?
    Rcpt,
    /// DATA is answered 354; the connection is then closed without the message.
    Data,
}

impl Stage {
    /// The name as `--quit-after` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Connect => "connect",
            Stage::Greeting => "greeting",
            Stage::Ehlo => "ehlo",
            Stage::Tls => "tls",
            Stage::Auth => "auth",
            Stage::Mail => "mail",
            Stage::Rcpt => "rcpt",
            Stage::Data => "data",
        }
    }

    /// The transcript note where the dialogue stops, the same in both clients.
    pub fn note(self) -> String {
        match self {
            Stage::Connect => "stopping after connect (--quit-after): closing without a word, since a client speaks only after the greeting (RFC 5321 §3.1)".to_owned(),
            Stage::Data => "stopping after DATA's 354 (--quit-after data): QUIT would now be message data, so the connection is closed and the server drops the unfinished message".to_owned(),
            stage => format!(
                "stopping after {} (--quit-after): QUIT, and nothing is sent",
                stage.name()
            ),
        }
    }
}

/// `--transcript-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TranscriptFormatChoice {
    /// `C: ` / `S: ` / `-- ` lines.
    Text,
    /// One JSON object per event.
    Json,
}
