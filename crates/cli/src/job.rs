//! The validated job: everything a client needs, checked before any connection.

use std::io::{IsTerminal as _, Read as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use message::{Address, Attachment, Date, Mailbox, Message, MessageBuilder, Prebuilt};
use transcript::RenderOptions;

use crate::options::{AuthChoice, DsnRet, Provider, Stage, TranscriptFormatChoice};
use crate::{Delivery, Dsn, Failure, Options, TlsChoice, secret};

/// Where to send, as the options say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Server {
    /// No `--server`: the binaries start the embedded test server (`cli::embedded`).
    Embedded,
    /// A server named by the user.
    Remote {
        /// Host name or IP address (IPv6 without brackets).
        host: String,
        /// TCP port.
        port: u16,
    },
}

/// Where a job connects, known before the job is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The server as shown in transcripts and errors: `host:port` as the user named it, or
    /// `the embedded test server` (whose port changes every run).
    pub shown: String,
}

impl Endpoint {
    /// A server the user named (IPv6 shown in brackets).
    pub fn remote(host: &str, port: u16) -> Endpoint {
        let shown = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Endpoint {
            host: host.to_owned(),
            port,
            shown,
        }
    }

    /// The embedded test server listening on `addr`.
    pub fn embedded(addr: std::net::SocketAddr) -> Endpoint {
        Endpoint {
            host: addr.ip().to_string(),
            port: addr.port(),
            shown: "the embedded test server".to_owned(),
        }
    }
}

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plaintext only.
    None,
    /// STARTTLS is required (RFC 3207): without it, nothing is sent after EHLO.
    StartTls,
    /// TLS from the first byte (RFC 8314).
    Implicit,
}

/// How the server certificate is checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verify {
    /// Extra trusted roots (PEM), from `--ca-file` or the embedded server.
    pub ca_pem: Option<Vec<u8>>,
    /// `--insecure`: accept any certificate.
    pub insecure: bool,
    /// `--pin-sha256`: accept only the certificate with this SHA-256 fingerprint.
    pub pin_sha256: Option<[u8; 32]>,
}

/// AUTH credentials. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name (authentication identity).
    pub user: String,
    /// The secret: the password, or for XOAUTH2 and OAUTHBEARER the OAuth 2.0 access token.
    pub password: String,
    /// `--auth` (XOAUTH2 when a token was given without it); `None`: lettre's choice,
    /// PLAIN if offered, else LOGIN.
    pub mechanism: Option<AuthChoice>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("mechanism", &self.mechanism)
            .finish()
    }
}

/// Timeouts for each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Connecting, and each command's reply.
    pub command: Duration,
    /// The reply to the end of the message data.
    pub data_end: Duration,
}

/// The range every duration option accepts: long enough for any real server, short enough
/// that adding it to the clock can never overflow.
pub const DURATION_RANGE: (Duration, Duration) =
    (Duration::from_millis(1), Duration::from_secs(24 * 60 * 60));

/// Transcript output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TranscriptFormat {
    /// `C: ` / `S: ` / `-- ` lines.
    Text,
    /// JSON Lines.
    Json,
}

/// What to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    /// Transcript format.
    pub format: TranscriptFormat,
    /// Redaction and detail settings.
    pub render: RenderOptions,
    /// Print no transcript.
    pub quiet: bool,
}

impl Output {
    /// Renders a transcript in the chosen format; with `--explain`, a send that failed ends
    /// with notes on what most likely went wrong.
    pub fn render(&self, transcript: &transcript::Transcript, failure: Option<&Failure>) -> String {
        let closing = failure.map(Failure::explanation).unwrap_or_default();
        match self.format {
            TranscriptFormat::Text => transcript.render_text_with(self.render, &closing),
            TranscriptFormat::Json => transcript.render_json_with(self.render, &closing),
        }
    }
}

/// One send, fully validated: where to connect (`At`), and everything else.
///
/// A [`Plan`] is the options, validated, before the endpoint is known: for a real server it
/// follows from the options ([`Plan::remote_endpoint`]); for the embedded default the
/// binaries start the server first and learn its address. [`Plan::into_job`] then gives the
/// `Job` at its [`Endpoint`], so no code can connect before there is somewhere to connect to.
#[derive(Debug)]
pub struct Job<At = Endpoint> {
    /// Where to connect: the [`Server`] of the options in a plan, the [`Endpoint`] in a job.
    pub endpoint: At,
    /// Whether it is the embedded test server.
    pub embedded: bool,
    /// TLS mode.
    pub tls: TlsMode,
    /// The name TLS verifies the certificate against (the host, or `localhost` embedded).
    pub tls_name: String,
    /// Certificate checks.
    pub verify: Verify,
    /// The EHLO name.
    pub helo_name: String,
    /// AUTH credentials, if any.
    pub credentials: Option<Credentials>,
    /// `--allow-plaintext-auth`.
    pub allow_plaintext_auth: bool,
    /// The message and its envelope.
    pub message: Message,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// What to print.
    pub output: Output,
    /// `--keep`: keep the embedded server's store directory after the run.
    pub keep: bool,
    /// `--quit-after`: stop the dialogue after this stage.
    pub quit_after: Option<Stage>,
    /// `--serverinfo`: describe the server instead of sending.
    pub serverinfo: bool,
    /// `--allow-partial`: send to the accepted recipients when some are refused.
    pub allow_partial: bool,
    /// `--result-file`: where to write the outcome object too.
    pub result_file: Option<PathBuf>,
    /// DSN, REQUIRETLS and SIZE parameters.
    pub delivery: Delivery,
}

/// The validated options before the endpoint is known (see [`Job`]).
pub type Plan = Job<Server>;

impl Plan {
    /// The endpoint of a server the user named; `None` for the embedded default.
    pub fn remote_endpoint(&self) -> Option<Endpoint> {
        match &self.endpoint {
            Server::Remote { host, port } => Some(Endpoint::remote(host, *port)),
            Server::Embedded => None,
        }
    }

    /// The job for this plan at `endpoint`.
    pub fn into_job(self, endpoint: Endpoint) -> Job {
        Job {
            endpoint,
            embedded: self.embedded,
            tls: self.tls,
            tls_name: self.tls_name,
            verify: self.verify,
            helo_name: self.helo_name,
            credentials: self.credentials,
            allow_plaintext_auth: self.allow_plaintext_auth,
            message: self.message,
            timeouts: self.timeouts,
            output: self.output,
            keep: self.keep,
            quit_after: self.quit_after,
            serverinfo: self.serverinfo,
            allow_partial: self.allow_partial,
            result_file: self.result_file,
            delivery: self.delivery,
        }
    }

    /// Validates the options into a plan. `warn` receives warnings for standard error.
    pub fn from_options(options: &Options, warn: &mut dyn FnMut(&str)) -> Result<Plan, Failure> {
        Plan::validate(options, warn, Purpose::Send)
    }

    /// Validates the options for a dialogue typed by hand (`raw-client --interactive`).
    ///
    /// The user types the message, so the message options are not required: the plan carries
    /// the demo message of the embedded default, which the shell never sends. A missing
    /// password is not asked for now but when the user types `AUTH`, so `credentials` is
    /// `None` unless the options name both a user and a password source.
    pub fn for_shell(options: &Options, warn: &mut dyn FnMut(&str)) -> Result<Plan, Failure> {
        Plan::validate(options, warn, Purpose::Shell)
    }

    fn validate(
        options: &Options,
        warn: &mut dyn FnMut(&str),
        purpose: Purpose,
    ) -> Result<Plan, Failure> {
        let merged = crate::accounts::apply(options)?;
        let options = &merged;
        // Probing a server needs no message: stopping before MAIL, or --serverinfo.
        let purpose = match (purpose, options.quit_after) {
            (Purpose::Send, _) if options.serverinfo => Purpose::Probe,
            (Purpose::Send, Some(stage)) if stage < Stage::Mail => Purpose::Probe,
            (purpose, _) => purpose,
        };
        // --provider fills in the server and TLS mode that --server and --tls leave out.
        let preset = options.provider.map(Provider::server);
        let tls_choice = options.tls.or(match (&options.server, preset) {
            (None, Some((_, tls))) => Some(tls),
            _ => None,
        });
        let server = match (&options.server, preset) {
            (Some(text), _) => parse_server(text, tls_choice)?,
            (None, Some((text, _))) => parse_server(text, tls_choice)?,
            (None, None) if options.no_embedded => return Err(Failure::SendmailServer),
            (None, None) => Server::Embedded,
        };
        let tls = match (&server, tls_choice) {
            (_, Some(TlsChoice::None)) => TlsMode::None,
            (_, Some(TlsChoice::Starttls)) => TlsMode::StartTls,
            (_, Some(TlsChoice::Implicit)) => TlsMode::Implicit,
            (Server::Remote { port: 465, .. }, None) => TlsMode::Implicit,
            _ => TlsMode::StartTls,
        };
        let tls_name = match &server {
            Server::Embedded => "localhost".to_owned(),
            Server::Remote { host, .. } => host.clone(),
        };
        let ca_pem = options
            .ca_file
            .as_deref()
            .map(|path| read_input_file(path, "CA file"))
            .transpose()?;
        if options.insecure {
            warn("--insecure: the server certificate is not verified");
        }
        let helo_name = match &options.helo_name {
            Some(name) => name.clone(),
            None => default_helo_name(),
        };
        check_helo_name(&helo_name)?;
        let timeouts = Timeouts {
            command: parse_duration(&options.timeout, "--timeout")?,
            data_end: parse_duration(&options.data_timeout, "--data-timeout")?,
        };
        let credentials = match purpose {
            // --serverinfo says EHLO and QUIT: no secret is read.
            Purpose::Probe if options.serverinfo => None,
            _ => credentials(options, warn, purpose, timeouts.command)?,
        };
        // The embedded server's demo account is added when it starts.
        let embedded_auth = server == Server::Embedded && options.user.is_none();
        check_stage(
            options.quit_after,
            tls,
            credentials.is_some() || embedded_auth,
        )?;
        if let (Some(provider), Some(credentials)) = (options.provider, &credentials)
            && provider.wants_oauth()
            && !credentials.mechanism.is_some_and(AuthChoice::takes_token)
        {
            warn(
                "this provider takes OAuth 2.0 (XOAUTH2) and has turned password logins off or is turning them off: give a token with --oauth2-token-command (docs/providers.md)",
            );
        }
        if credentials.is_some() && tls == TlsMode::None && !options.allow_plaintext_auth {
            return Err(Failure::PlaintextAuth);
        }
        let demo_defaults = server == Server::Embedded || purpose != Purpose::Send;
        let message = match &options.data {
            Some(path) => prebuilt_message(options, path, demo_defaults)?,
            None => build_message(options, demo_defaults)?,
        };
        let dsn_asked = options.dsn_notify.is_some()
            || options.dsn_ret.is_some()
            || options.dsn_envid.is_some();
        let delivery = Delivery {
            dsn: if dsn_asked {
                Some(Dsn {
                    notify: options
                        .dsn_notify
                        .as_deref()
                        .map(crate::delivery::parse_notify)
                        .transpose()?,
                    ret: options.dsn_ret.map(|ret| match ret {
                        DsnRet::Full => "FULL",
                        DsnRet::Hdrs => "HDRS",
                    }),
                    envid: options
                        .dsn_envid
                        .as_deref()
                        .map(crate::delivery::check_envid)
                        .transpose()?,
                })
            } else {
                None
            },
            dsn_optional: options.dsn_optional,
            require_tls: options.require_tls,
            declare_size: options.declare_size,
        };
        let verify = Verify {
            ca_pem,
            insecure: options.insecure,
            pin_sha256: options.pin_sha256.as_deref().map(parse_pin).transpose()?,
        };
        delivery.check_tls(tls, &verify)?;
        let output = Output {
            format: match options.transcript_format {
                TranscriptFormatChoice::Text => TranscriptFormat::Text,
                TranscriptFormatChoice::Json => TranscriptFormat::Json,
            },
            render: RenderOptions {
                show_secrets: options.show_secrets,
                details: options.details,
                explain: options.explain,
                hide_data: options.hide_data,
                timestamps: options.timestamps,
            },
            quiet: options.quiet,
        };
        Ok(Plan {
            embedded: server == Server::Embedded,
            endpoint: server,
            tls,
            tls_name,
            verify,
            helo_name,
            credentials,
            allow_plaintext_auth: options.allow_plaintext_auth,
            message,
            timeouts,
            output,
            keep: options.keep,
            quit_after: options.quit_after,
            serverinfo: options.serverinfo,
            allow_partial: options.allow_partial,
            result_file: options.result_file.clone(),
            delivery,
        })
    }
}

/// What the options are validated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// Sending the message the options describe.
    Send,
    /// A dialogue typed by hand: no message options needed, no password prompt yet.
    Shell,
    /// `--serverinfo`, or `--quit-after` a stage before MAIL: no message options needed.
    Probe,
}

/// `--quit-after tls` needs TLS, and `--quit-after auth` credentials, or the stage never
/// comes.
fn check_stage(stage: Option<Stage>, tls: TlsMode, credentials: bool) -> Result<(), Failure> {
    let why = match stage {
        Some(Stage::Tls) if tls == TlsMode::None => "--quit-after tls needs TLS: drop --tls none",
        Some(Stage::Auth) if !credentials => {
            "--quit-after auth needs credentials: add --user and a password or token source"
        }
        _ => return Ok(()),
    };
    Err(Failure::Combination {
        why: why.to_owned(),
    })
}

/// `host[:port]`, `[v6]:port` or a bare IPv6 address; the default port follows the TLS mode.
fn parse_server(text: &str, tls: Option<TlsChoice>) -> Result<Server, Failure> {
    let bad = |why: &'static str| Failure::BadServer {
        text: text.to_owned(),
        why,
    };
    let default_port = if tls == Some(TlsChoice::Implicit) {
        465
    } else {
        587
    };
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(|| bad("missing ]"))?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(bad("unexpected text after ]")),
            },
        }
    } else if text.matches(':').count() > 1 {
        (text, None)
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() || host.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad(
            "the host name is empty or contains spaces or control characters",
        ));
    }
    let port = match port {
        None => default_port,
        Some(port) => match port.parse::<u16>() {
            Ok(0) | Err(_) => return Err(bad("the port must be a number from 1 to 65535")),
            Ok(port) => port,
        },
    };
    Ok(Server::Remote {
        host: host.to_owned(),
        port,
    })
}

/// The host name, as lettre uses it by default; `[127.0.0.1]` if it is unusable.
fn default_helo_name() -> String {
    let name = gethostname::gethostname().to_string_lossy().into_owned();
    let usable = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if usable {
        name
    } else {
        "[127.0.0.1]".to_owned()
    }
}

/// RFC 5321 §4.1.1.1: a domain or an address literal; never a line break.
fn check_helo_name(name: &str) -> Result<(), Failure> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>');
    if ok {
        Ok(())
    } else {
        Err(Failure::BadHeloName {
            name: name.to_owned(),
        })
    }
}

fn credentials(
    options: &Options,
    warn: &mut dyn FnMut(&str),
    purpose: Purpose,
    timeout: Duration,
) -> Result<Option<Credentials>, Failure> {
    let given: Vec<(&str, Option<secret::Source>)> = vec![
        (
            "--password-file",
            options.password_file.clone().map(secret::Source::File),
        ),
        (
            "--password-env",
            options.password_env.clone().map(secret::Source::Env),
        ),
        (
            "--password",
            options.password.clone().map(secret::Source::Given),
        ),
        (
            "--password-command",
            options
                .password_command
                .clone()
                .map(secret::Source::Command),
        ),
        (
            "--oauth2-token-file",
            options.oauth2_token_file.clone().map(secret::Source::File),
        ),
        (
            "--oauth2-token-env",
            options.oauth2_token_env.clone().map(secret::Source::Env),
        ),
        (
            "--oauth2-token-command",
            options
                .oauth2_token_command
                .clone()
                .map(secret::Source::Command),
        ),
    ];
    let given: Vec<(&str, secret::Source)> = given
        .into_iter()
        .filter_map(|(option, source)| source.map(|source| (option, source)))
        .collect();
    if given.len() > 1 {
        let names: Vec<&str> = given.iter().map(|(option, _)| *option).collect();
        return Err(Failure::SecretSources {
            given: names.join(" and "),
        });
    }
    let token_given = given
        .first()
        .is_some_and(|(option, _)| option.starts_with("--oauth2"));
    // A token implies XOAUTH2 (what Gmail and Microsoft 365 both take); a token with a
    // password mechanism is a mistake.
    let mechanism = match (options.auth, token_given) {
        (None, true) => Some(AuthChoice::Xoauth2),
        (Some(choice), true) if !choice.takes_token() => {
            return Err(Failure::AuthChoice {
                why: format!(
                    "--auth {} takes a password, not an OAuth 2.0 token: use --auth XOAUTH2 or OAUTHBEARER, or give a password",
                    choice.name()
                ),
            });
        }
        (choice, _) => choice,
    };
    let Some(user) = options.user.clone() else {
        if !given.is_empty() {
            return Err(Failure::PasswordWithoutUser);
        }
        if let Some(choice) = options.auth {
            return Err(Failure::AuthChoice {
                why: format!("--auth {} needs --user NAME", choice.name()),
            });
        }
        return Ok(None);
    };
    if user.is_empty() || user.chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
        return Err(Failure::BadUser);
    }
    let password = match given.first() {
        Some((_, secret::Source::Given(password))) => {
            warn(
                "--password is visible to other users of this machine; prefer --password-env or --password-file",
            );
            password.clone()
        }
        Some((option, secret::Source::File(path))) => {
            let what = if option.starts_with("--oauth2") {
                "token file"
            } else {
                "password file"
            };
            secret::from_file(path, what, warn)?
        }
        Some(("--oauth2-token-env", secret::Source::Env(var))) => {
            std::env::var(var).map_err(|_| Failure::TokenEnvUnset { var: var.clone() })?
        }
        Some((_, secret::Source::Env(var))) => {
            std::env::var(var).map_err(|_| Failure::PasswordEnvUnset { var: var.clone() })?
        }
        Some((option, secret::Source::Command(command))) => {
            let option = if option.starts_with("--oauth2") {
                "--oauth2-token-command"
            } else {
                "--password-command"
            };
            secret::from_command(option, command, timeout)?
        }
        None => match std::env::var("SMTP_PASSWORD") {
            Ok(password) => password,
            // The shell asks when the user types AUTH.
            Err(_) if purpose == Purpose::Shell => return Ok(None),
            Err(_) if mechanism.is_some_and(AuthChoice::takes_token) => {
                return Err(Failure::AuthChoice {
                    why: "an OAuth 2.0 mechanism needs a token: add --oauth2-token-env VAR, --oauth2-token-file FILE or --oauth2-token-command CMD".to_owned(),
                });
            }
            Err(_) if std::io::stdin().is_terminal() => {
                rpassword::prompt_password(format!("Password for {user}: ")).map_err(|e| {
                    Failure::PasswordPrompt {
                        reason: e.to_string(),
                    }
                })?
            }
            Err(_) => return Err(Failure::PasswordMissing),
        },
    };
    Ok(Some(Credentials {
        user,
        password,
        mechanism,
    }))
}

/// The message of the options; with `demo_defaults` (the embedded server, or the shell),
/// what the options leave out is the demo message's.
fn build_message(options: &Options, demo_defaults: bool) -> Result<Message, Failure> {
    let from = match (&options.from, demo_defaults) {
        (Some(from), _) => from.as_str(),
        (None, true) => "Demo Sender <sender@example.com>",
        (None, false) => {
            return Err(Failure::FromRequired);
        }
    };
    let mut builder = MessageBuilder::new(mailbox(from, "From")?);
    let no_recipients = options.to.is_empty() && options.cc.is_empty() && options.bcc.is_empty();
    if no_recipients && demo_defaults {
        builder = builder.to(mailbox("Demo Recipient <recipient@example.com>", "To")?);
    } else if no_recipients {
        return Err(Failure::NoRecipient);
    }
    for to in &options.to {
        builder = builder.to(mailbox(to, "To")?);
    }
    for cc in &options.cc {
        builder = builder.cc(mailbox(cc, "Cc")?);
    }
    for bcc in &options.bcc {
        builder = builder.bcc(mailbox(bcc, "Bcc")?);
    }
    for reply_to in &options.reply_to {
        builder = builder.reply_to(mailbox(reply_to, "Reply-To")?);
    }
    match (&options.subject, demo_defaults) {
        (Some(subject), _) => builder = builder.subject(subject.clone()),
        (None, true) => builder = builder.subject("Hello from the SMTP workbench"),
        (None, false) => {}
    }
    let body = match (&options.body, &options.body_file) {
        (Some(body), _) => Some(body.clone()),
        (None, Some(path)) => Some(read_text(path, "body file")?),
        (None, None) if demo_defaults => Some(
            "Hello!\n\nThis demo message went to the embedded test server, one SMTP command\n\
             at a time. Compare the dialogue above with RFC 5321.\n"
                .to_owned(),
        ),
        (None, None) => None,
    };
    if let Some(body) = body {
        builder = builder.text(body);
    }
    if let Some(path) = &options.html_file {
        builder = builder.html(read_text(path, "HTML file")?);
    }
    for spec in &options.attach {
        builder = builder.attach(attachment(spec));
    }
    for header in &options.header {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| Failure::HeaderWithoutColon {
                header: header.clone(),
            })?;
        builder = builder.header(name.trim(), value.trim_start());
    }
    if let Some(date) = &options.date {
        builder = builder.date(Date::parse(date)?);
    }
    if let Some(id) = &options.message_id {
        builder = builder.message_id(id.clone());
    }
    Ok(builder.binary_attachments(options.binarymime).build()?)
}

/// `--data FILE`: the prebuilt message, checked, with its envelope (see [`Prebuilt`]).
fn prebuilt_message(
    options: &Options,
    path: &Path,
    demo_defaults: bool,
) -> Result<Message, Failure> {
    let from = match (&options.from, demo_defaults && !options.read_envelope) {
        (Some(from), _) => Some(mailbox(from, "From")?),
        (None, true) => Some(mailbox("Demo Sender <sender@example.com>", "From")?),
        (None, false) => None,
    };
    let mut recipients = Vec::new();
    for (field, list) in [
        ("To", &options.to),
        ("Cc", &options.cc),
        ("Bcc", &options.bcc),
    ] {
        for text in list {
            recipients.push(mailbox(text, field)?.address);
        }
    }
    if recipients.is_empty() && demo_defaults && !options.read_envelope {
        recipients.push(Address::parse("recipient@example.com")?);
    }
    let mut input = read_bytes(path, "message file")?;
    if options.dot_ends_input {
        crate::sendmail::cut_at_dot(&mut input);
    }
    let prebuilt = Prebuilt {
        from,
        recipients,
        read_envelope: options.read_envelope,
        read_sender: options.sender_from_message,
        add_missing: options.add_missing_headers,
    };
    Ok(prebuilt.build(&input)?)
}

/// `FILE` or `FILE;type=mime/type`.
fn attachment(spec: &str) -> Attachment {
    match spec.rsplit_once(";type=") {
        Some((path, mime)) => Attachment::from_path(path).content_type(mime),
        None => Attachment::from_path(spec),
    }
}

fn mailbox(text: &str, field: &'static str) -> Result<Mailbox, Failure> {
    Mailbox::parse(text).map_err(|error| Failure::Address {
        field,
        text: crate::failure::one_line(&error.to_string()),
    })
}

fn read_text(path: &Path, what: &'static str) -> Result<String, Failure> {
    let bytes = read_bytes(path, what)?;
    String::from_utf8(bytes).map_err(|_| Failure::NotUtf8 {
        what,
        path: path.to_path_buf(),
    })
}

/// A file, or standard input for `-`.
fn read_bytes(path: &Path, what: &'static str) -> Result<Vec<u8>, Failure> {
    if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| Failure::Stdin {
                what,
                reason: e.to_string(),
            })?;
        Ok(bytes)
    } else {
        read_input_file(path, what)
    }
}

fn read_input_file(path: &Path, what: &'static str) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::InputFile {
        what,
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// 64 hex digits, with or without colons: `AB:CD:...` as `openssl x509 -fingerprint -sha256` prints.
fn parse_pin(text: &str) -> Result<[u8; 32], Failure> {
    let hex: String = text.chars().filter(|&c| c != ':').collect();
    let bad = || Failure::BadPin {
        text: text.to_owned(),
    };
    if hex.len() != 64 || !hex.is_ascii() {
        return Err(bad());
    }
    let mut pin = [0u8; 32];
    for (i, byte) in pin.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(pin)
}

/// `60`, `60s`, `500ms`, `2m` or `1h`, within [`DURATION_RANGE`].
fn parse_duration(text: &str, flag: &'static str) -> Result<Duration, Failure> {
    let text = text.trim();
    let bad = || Failure::BadDuration {
        flag,
        text: text.to_owned(),
    };
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    if number.is_empty() {
        return Err(bad());
    }
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(bad()),
    };
    let (min, max) = DURATION_RANGE;
    let out_of_range = || Failure::DurationOutOfRange {
        flag,
        text: text.to_owned(),
        min: "1ms",
        max: "24h",
    };
    // A number too long for u64 is still a number: out of range, not malformed.
    let value: u64 = number.parse().map_err(|_| out_of_range())?;
    let millis = value
        .checked_mul(millis_per_unit)
        .ok_or_else(out_of_range)?;
    let duration = Duration::from_millis(millis);
    if duration < min || duration > max {
        return Err(out_of_range());
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Exit;

    #[derive(clap::Parser)]
    struct Arguments {
        #[command(flatten)]
        options: Options,
    }

    /// The plan for these options, with the warnings it gave.
    fn plan(args: &[&str]) -> (Result<Plan, Failure>, Vec<String>) {
        let mut argv = vec!["client", "--from", "a@example.com", "--to", "b@example.org"];
        argv.extend(args);
        let arguments = <Arguments as clap::Parser>::try_parse_from(argv).expect("valid options");
        let mut warnings = Vec::new();
        let plan = Plan::from_options(&arguments.options, &mut |w| warnings.push(w.to_owned()));
        (plan, warnings)
    }

    #[test]
    fn a_provider_fills_in_what_server_and_tls_leave_out() {
        let remote = |args: &[&str]| match plan(args).0.expect("a plan") {
            Plan {
                endpoint: Server::Remote { host, port },
                tls,
                ..
            } => (host, port, tls),
            other => panic!("not remote: {:?}", other.endpoint),
        };
        assert_eq!(
            remote(&["--provider", "office365"]),
            ("smtp.office365.com".into(), 587, TlsMode::StartTls)
        );
        assert_eq!(
            remote(&["--provider", "fastmail"]),
            ("smtp.fastmail.com".into(), 465, TlsMode::Implicit)
        );
        assert_eq!(
            remote(&[
                "--provider",
                "gmail",
                "--tls",
                "implicit",
                "--server",
                "smtp.gmail.com:465"
            ]),
            ("smtp.gmail.com".into(), 465, TlsMode::Implicit)
        );
        assert_eq!(
            remote(&["--provider", "gmail", "--server", "relay.example:2525"]),
            ("relay.example".into(), 2525, TlsMode::StartTls)
        );
    }

    #[test]
    fn a_password_for_an_oauth_only_provider_is_warned_about() {
        let password = [
            "--provider",
            "office365",
            "--user",
            "u@contoso.com",
            "--password-command",
            "echo pw",
        ];
        let (with_password, warnings) = plan(&password);
        assert!(with_password.is_ok());
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("takes OAuth 2.0 (XOAUTH2)")),
            "{warnings:?}"
        );
        let token = [
            "--provider",
            "office365",
            "--user",
            "u@contoso.com",
            "--oauth2-token-command",
            "echo t",
        ];
        let (with_token, warnings) = plan(&token);
        let credentials = with_token
            .expect("a plan")
            .credentials
            .expect("credentials");
        assert_eq!(credentials.mechanism, Some(AuthChoice::Xoauth2));
        assert_eq!(credentials.password, "t");
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn servers() {
        let remote = |host: &str, port| Server::Remote {
            host: host.to_owned(),
            port,
        };
        let cases = [
            ("mail.example.com", None, remote("mail.example.com", 587)),
            ("mail.example.com:25", None, remote("mail.example.com", 25)),
            (
                "mail.example.com",
                Some(TlsChoice::Implicit),
                remote("mail.example.com", 465),
            ),
            ("[::1]:2525", None, remote("::1", 2525)),
            ("::1", None, remote("::1", 587)),
            ("127.0.0.1:465", None, remote("127.0.0.1", 465)),
        ];
        for (text, tls, want) in cases {
            assert_eq!(parse_server(text, tls), Ok(want), "{text}");
        }
        for bad in [
            "host:0",
            "host:65536",
            "host:x",
            ":25",
            "[::1",
            "a b:25",
            "[::1]x",
        ] {
            let failure = parse_server(bad, None).expect_err(bad);
            assert_eq!(failure.exit(), Exit::Usage, "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60", "-t"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("30s", "-t"), Ok(Duration::from_secs(30)));
        assert_eq!(
            parse_duration("500ms", "-t"),
            Ok(Duration::from_millis(500))
        );
        assert_eq!(parse_duration("2m", "-t"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("24h", "-t"), Ok(Duration::from_secs(86_400)));
        for bad in ["", "1d", "x", "-1", "ms"] {
            assert!(
                matches!(parse_duration(bad, "-t"), Err(Failure::BadDuration { .. })),
                "{bad}"
            );
        }
        // Too short, too long, or too large for any integer: the range is in the sentence.
        for out in [
            "0",
            "0ms",
            "25h",
            "86400001ms",
            "18446744073709551615",
            "999999999999999999m",
            "99999999999999999999999999s",
        ] {
            let failure = parse_duration(out, "--timeout").expect_err(out);
            assert_eq!(failure.exit(), Exit::Usage, "{out}");
            assert!(
                failure.to_string().contains("from 1ms to 24h"),
                "{out}: {failure}"
            );
        }
    }

    #[test]
    fn pins() {
        let hex = "AB".repeat(32);
        assert_eq!(parse_pin(&hex), Ok([0xab; 32]));
        let colons = vec!["0f"; 32].join(":");
        assert_eq!(parse_pin(&colons), Ok([0x0f; 32]));
        for bad in ["", "ab", &"zz".repeat(32), &"ab".repeat(33)] {
            assert_eq!(
                parse_pin(bad).map_err(|f| f.exit()),
                Err(Exit::Usage),
                "{bad}"
            );
        }
    }

    #[test]
    fn helo_names() {
        assert!(check_helo_name("client.example.com").is_ok());
        assert!(check_helo_name("[127.0.0.1]").is_ok());
        for bad in ["", "a\r\nMAIL FROM:<x>", "a b", "a\n"] {
            assert_eq!(
                check_helo_name(bad).map_err(|f| f.exit()),
                Err(Exit::DataErr),
                "{bad:?}"
            );
        }
    }
}
