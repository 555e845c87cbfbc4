//! lib-client: the same job as raw-client, done the way most Rust programs send mail —
//! through lettre (rustls with ring, no connection pool).
//!
//! lettre's `SmtpTransport::send_raw` is `connect` (greeting and EHLO), `starttls`, `auth`,
//! `send` (MAIL, RCPT, DATA and the message) and `abort` (QUIT) on an `SmtpConnection`;
//! lib-client makes exactly those calls itself, in that order, so the dialogue is lettre's —
//! and steps in between where lettre lacks a check: it refuses a message larger than the
//! server's SIZE (RFC 1870 §6), which lettre would send anyway.
//!
//! lettre does not hand out its dialogue, so the transcript is rebuilt from its own `tracing`
//! events, captured as they happen by a subscriber that only lettre's thread sees and that
//! never prints anything ([`capture`]). Secrets in those events are redacted by the
//! `transcript` crate like every other transcript.
//!
//! lettre's timeout is one socket timeout per read. So lettre runs on a thread of its own with
//! the longer of `--timeout` and `--data-timeout`, and a watchdog here holds each reply to its
//! own deadline, as raw-client does: `--data-timeout` for the end of the data, `--timeout` for
//! the rest, for the whole reply (a server that trickles a byte at a time cannot stretch it).
//! When a deadline passes, lib-client reports and leaves lettre's thread behind.
//!
//! Two things are done differently from a plain `send` so the bytes match raw-client's:
//! the message is handed over without its final CRLF, because lettre always appends
//! `\r\n.\r\n` (so the wire gets exactly one line ending before the `.`), and the EHLO name is
//! set explicitly instead of lettre's `hostname` default.

mod capture;
mod errors;
mod serverinfo;

use std::net::ToSocketAddrs as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::time::Instant;

use cli::{AuthChoice, Failure, Job, Sent, ServerReply, Stage, TlsMode};
use lettre::address::{Address, Envelope};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, SmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use transcript::Transcript;

use crate::capture::{Capture, Wake};

/// Sends the job's message through lettre; returns the rebuilt transcript whatever happened.
pub fn send(job: &Job) -> (Transcript, Result<Sent, Failure>) {
    if job.serverinfo {
        return serverinfo::describe(job);
    }
    let (prepared, capture, done, finished) = match begin(job) {
        Ok(begun) => begun,
        Err(failed) => {
            let (transcript, failure) = *failed;
            return (transcript, Err(failure));
        }
    };
    let result = on_lettre_thread(&capture, done, &finished, job, move |capture| {
        dialogue(&prepared, capture)
    });
    (capture.finish(), result)
}

/// Runs `dialogue` on a thread of lettre's own, a panic in it caught, and watches it with
/// the job's timeouts (lettre's own cannot bound every wait).
pub(crate) fn on_lettre_thread(
    capture: &Capture,
    done: mpsc::Sender<Wake>,
    finished: &mpsc::Receiver<Wake>,
    job: &Job,
    dialogue: impl FnOnce(&Capture) -> Result<Finished, Failure> + Send + 'static,
) -> Result<Sent, Failure> {
    let lettre_side = capture.clone();
    std::thread::Builder::new()
        .name("lettre".into())
        .spawn(move || {
            let outcome =
                lettre_side.during(|| catch_unwind(AssertUnwindSafe(|| dialogue(&lettre_side))));
            let _ = done.send(Wake::Finished(outcome));
        })
        .map_err(|error| Failure::Internal(format!("cannot start lettre's thread: {error}")))?;
    watch(capture, finished, job)
}

/// What every lettre run starts with: the job in lettre's terms, the host resolved first
/// (lettre reports a name that does not resolve as a plain I/O error, so it is resolved with
/// the call raw-client makes and both clients say the same), and the capture with the channel
/// that wakes the watchdog. A failure comes with the transcript so far.
pub(crate) type Begun = (Prepared, Capture, mpsc::Sender<Wake>, mpsc::Receiver<Wake>);

pub(crate) fn begin(job: &Job) -> Result<Begun, Box<(Transcript, Failure)>> {
    let mut transcript = Transcript::new();
    if job.verify.insecure {
        transcript.note("certificate verification disabled (--insecure)");
    }
    let prepared = match prepare(job) {
        Ok(prepared) => prepared,
        Err(failure) => return Err(Box::new((transcript, failure))),
    };
    let endpoint = &job.endpoint;
    let resolved = (endpoint.host.as_str(), endpoint.port)
        .to_socket_addrs()
        .map_err(|error| error.to_string())
        .and_then(|mut addresses| match addresses.next() {
            Some(_) => Ok(()),
            None => Err("the name has no address".to_owned()),
        });
    if let Err(reason) = resolved {
        let host = endpoint.host.clone();
        return Err(Box::new((transcript, Failure::Resolve { host, reason })));
    }
    let (done, finished) = mpsc::channel();
    let capture = Capture::new(
        transcript,
        &endpoint.shown,
        job.tls == TlsMode::Implicit,
        done.clone(),
    );
    Ok((prepared, capture, done, finished))
}

/// What lettre's thread ends with.
pub(crate) type Outcome = std::thread::Result<Result<Finished, Failure>>;

/// How lettre's dialogue ended well.
pub(crate) enum Finished {
    /// The message was accepted with this reply; with `--allow-partial`, some recipients
    /// were refused with these replies, and `accepted` were not.
    Sent {
        response: Response,
        refused: Vec<(String, ServerReply)>,
        accepted: usize,
        /// `--dsn-optional` without DSN offered.
        warning: Option<cli::Warning>,
    },
    /// `--quit-after`: stopped after this stage.
    Stopped(Stage),
}

/// Waits for lettre's thread, holding each reply to its deadline.
fn watch(capture: &Capture, finished: &mpsc::Receiver<Wake>, job: &Job) -> Result<Sent, Failure> {
    loop {
        let deadline = capture.lock().deadline(job.timeouts);
        let wait = deadline.saturating_duration_since(Instant::now());
        match finished.recv_timeout(wait) {
            Ok(Wake::Finished(outcome)) => return verdict(outcome, capture),
            Ok(Wake::Refused) => {
                if let Some(failure) = capture.lock().refused.clone() {
                    return Err(failure);
                }
            }
            Ok(Wake::Moved) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let record = capture.lock();
                if record.deadline(job.timeouts) <= Instant::now() {
                    return record.late();
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(Failure::Internal(
                    "lettre's thread ended without a result".into(),
                ));
            }
        }
    }
}

/// The verdict on what lettre's thread returned.
fn verdict(outcome: Outcome, capture: &Capture) -> Result<Sent, Failure> {
    let record = capture.lock();
    match outcome {
        // The reply that completed the stage: the last one before QUIT.
        Ok(Ok(Finished::Stopped(stage))) => Ok(Sent {
            stopped: Some(stage),
            reply: record
                .exchanges
                .iter()
                .rev()
                .find(|(command, _)| !command.eq_ignore_ascii_case("QUIT"))
                .map(|(_, reply)| reply.clone()),
            warnings: Vec::new(),
            serverinfo: None,
        }),
        Ok(Ok(Finished::Sent {
            response,
            refused,
            accepted,
            warning,
        })) => {
            let reply = server_reply(&response);
            // lettre's `abort` says QUIT and ignores what becomes of it.
            let mut warnings = if record.quit_unanswered() {
                vec![cli::Warning::QuitUnanswered {
                    accepted: reply.clone(),
                }]
            } else {
                Vec::new()
            };
            if !refused.is_empty() {
                warnings.push(cli::Warning::RecipientsRefused { accepted, refused });
            }
            warnings.extend(warning);
            Ok(Sent {
                reply: Some(reply),
                warnings,
                stopped: None,
                serverinfo: None,
            })
        }
        Ok(Err(failure)) => Err(failure),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            Err(Failure::LettrePanic { what })
        }
    }
}

fn server_reply(response: &Response) -> ServerReply {
    ServerReply {
        code: u16::from(response.code()),
        lines: response.message().map(str::to_owned).collect(),
    }
}

/// The job in lettre's terms.
struct Prepared {
    tls_mode: TlsMode,
    host: String,
    port: u16,
    hello: ClientId,
    tls: Option<TlsParameters>,
    credentials: Option<Credentials>,
    /// The mechanisms lettre may choose from: PLAIN then LOGIN (its default), or the one
    /// `--auth` names.
    mechanisms: Vec<Mechanism>,
    /// `--auth` (or a token) chose the mechanism.
    chosen: bool,
    envelope: Envelope,
    bytes: Vec<u8>,
    size: u64,
    timeout: std::time::Duration,
    /// How the certificate is trusted, for `--explain`.
    checked: transcript::Checked,
    /// For errors: the job's names.
    names: errors::Names,
    /// `--quit-after`.
    quit_after: Option<Stage>,
    /// `--allow-partial`.
    allow_partial: bool,
    /// DSN, REQUIRETLS and SIZE parameters.
    delivery: cli::Delivery,
    /// The envelope recipients, as the message has them (for ORCPT).
    recipients: Vec<message::Address>,
}

/// `SmtpTransport::send_raw`, one call at a time (lettre 0.11's `transport.rs` and
/// `client/connection.rs`), with the SIZE check between AUTH and MAIL. `--quit-after` ends
/// it early with lettre's `abort` (QUIT).
fn dialogue(job: &Prepared, capture: &Capture) -> Result<Finished, Failure> {
    let mapped = |error: lettre::transport::smtp::Error| {
        errors::failure(&error, &capture.lock(), &job.names)
    };
    // Implicit TLS wraps the connection from the first byte; STARTTLS upgrades it below.
    let wrapper = match job.tls_mode {
        TlsMode::Implicit => job.tls.as_ref(),
        TlsMode::None | TlsMode::StartTls => None,
    };
    let mut connection = SmtpConnection::connect(
        (job.host.as_str(), job.port),
        Some(job.timeout),
        &job.hello,
        wrapper,
        None,
    )
    .map_err(mapped)?;
    let stop = |connection: &mut SmtpConnection, stage: Stage| {
        capture.lock().note(stage.note());
        connection.abort();
        Ok(Finished::Stopped(stage))
    };
    // lettre's `connect` is the greeting and the first EHLO in one call.
    if job.quit_after == Some(Stage::Ehlo) {
        return stop(&mut connection, Stage::Ehlo);
    }
    if job.tls_mode == TlsMode::StartTls
        && let Some(tls) = &job.tls
    {
        connection.starttls(tls, &job.hello).map_err(mapped)?;
    }
    // For --explain: whom the certificate names and how this run trusted it.
    if job.tls.is_some()
        && let Ok(der) = connection.peer_certificate()
        && let Some(certificate) = cli::describe_certificate(&der, job.checked.clone())
    {
        capture.lock().tls_certificate(certificate);
    }
    if job.quit_after == Some(Stage::Tls) {
        return stop(&mut connection, Stage::Tls);
    }
    if let Some(credentials) = &job.credentials {
        connection
            .auth(&job.mechanisms, credentials)
            .map_err(|error| match (mapped(error), job.mechanisms.as_slice()) {
                // --auth named one mechanism: say which, as raw-client does.
                (Failure::NoAuthMechanism { offered }, [only]) if job.chosen => {
                    Failure::MechanismNotOffered {
                        mechanism: mechanism_name(*only),
                        offered,
                    }
                }
                (failure, _) => failure,
            })?;
    }
    if job.quit_after == Some(Stage::Auth) {
        return stop(&mut connection, Stage::Auth);
    }
    let limit = capture.lock().size_limit();
    if let Some(limit) = limit
        && job.size > limit
    {
        connection.abort();
        return Err(Failure::MessageTooBig {
            size: job.size,
            limit,
        });
    }
    if job.quit_after.is_some() || job.allow_partial || job.delivery != cli::Delivery::default() {
        return transaction(&mut connection, job, capture, &mapped);
    }
    let response = connection.send(&job.envelope, &job.bytes).map_err(mapped)?;
    connection.abort();
    Ok(Finished::Sent {
        response,
        refused: Vec::new(),
        accepted: job.envelope.to().len(),
        warning: None,
    })
}

/// What `SmtpConnection::send` does, written out with lettre's own `command` and `message`
/// calls, for what `send` cannot do: stop after MAIL, RCPT or DATA's 354 (`--quit-after`), or
/// go on after a refused recipient (`--allow-partial`). MAIL's parameters are chosen as
/// `send` chooses them, and every error ends with `abort`, as `send` does.
fn transaction(
    connection: &mut SmtpConnection,
    job: &Prepared,
    capture: &Capture,
    mapped: &dyn Fn(lettre::transport::smtp::Error) -> Failure,
) -> Result<Finished, Failure> {
    use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
    use lettre::transport::smtp::extension::{
        Extension, MailBodyParameter, MailParameter, RcptParameter,
    };

    let fail = |connection: &mut SmtpConnection, failure: Failure| {
        connection.abort();
        Err(failure)
    };
    let mut parameters = Vec::new();
    // lettre's `Envelope::has_non_ascii_addresses`, which is not public.
    let non_ascii = job
        .envelope
        .from()
        .into_iter()
        .chain(job.envelope.to())
        .any(|a| !AsRef::<str>::as_ref(a).is_ascii());
    if non_ascii {
        if !connection
            .server_info()
            .supports_feature(Extension::SmtpUtfEight)
        {
            return fail(connection, Failure::needs_smtputf8());
        }
        parameters.push(MailParameter::SmtpUtfEight);
    }
    if !job.bytes.is_ascii() {
        if !connection
            .server_info()
            .supports_feature(Extension::EightBitMime)
        {
            return fail(connection, Failure::needs_8bitmime());
        }
        parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    // SIZE, DSN, REQUIRETLS: the parameters raw-client adds, in its order, from the same
    // rules; lettre sends them as `Other` values.
    let delivery = job.delivery.parameters(
        &|keyword| capture.lock().offers(keyword),
        job.size,
        &job.recipients,
    );
    let delivery = match delivery {
        Ok(delivery) => delivery,
        Err(failure) => return fail(connection, failure),
    };
    if let Some(warning) = &delivery.warning {
        capture.lock().note(warning.to_string());
    }
    // lettre xtext-encodes `Other` values itself (RFC 3461 §4), as raw-client does.
    for parameter in &delivery.mail {
        parameters.push(MailParameter::Other {
            keyword: parameter.keyword.to_owned(),
            value: parameter.value.clone(),
        });
    }
    if let Err(error) = connection.command(Mail::new(job.envelope.from().cloned(), parameters)) {
        return fail(connection, mapped(error));
    }
    let stop = |connection: &mut SmtpConnection, stage: Stage| {
        capture.lock().note(stage.note());
        if stage != Stage::Data {
            connection.abort();
        }
        Ok(Finished::Stopped(stage))
    };
    if job.quit_after == Some(Stage::Mail) {
        return stop(connection, Stage::Mail);
    }
    let mut refused = Vec::new();
    let mut first_refusal = None;
    for (index, to) in job.envelope.to().iter().enumerate() {
        let rcpt_parameters = delivery
            .rcpt
            .get(index)
            .into_iter()
            .flatten()
            .map(|parameter| RcptParameter::Other {
                keyword: parameter.keyword.to_owned(),
                value: parameter.value.clone(),
            })
            .collect();
        match connection.command(Rcpt::new(to.clone(), rcpt_parameters)) {
            Ok(_) => {}
            Err(error) => {
                let failure = mapped(error);
                // A refusal, not a closing service (421) or a broken connection.
                let partial = job.allow_partial && matches!(failure, Failure::Rejected { .. });
                match (partial, failure.reply().cloned()) {
                    (true, Some(reply)) => {
                        refused.push((to.to_string(), reply));
                        first_refusal.get_or_insert(failure);
                    }
                    _ => return fail(connection, failure),
                }
            }
        }
    }
    if refused.len() == job.envelope.to().len()
        && let Some(failure) = first_refusal
    {
        return fail(connection, failure);
    }
    if job.quit_after == Some(Stage::Rcpt) {
        return stop(connection, Stage::Rcpt);
    }
    if let Err(error) = connection.command(Data) {
        return fail(connection, mapped(error));
    }
    if job.quit_after == Some(Stage::Data) {
        // After 354 a QUIT would be message data: drop the connection instead, and the
        // server drops the unfinished message (RFC 5321 §4.1.1.4). lettre's `abort` would
        // say QUIT, so the connection is just closed.
        return stop(connection, Stage::Data);
    }
    match connection.message(&job.bytes) {
        Ok(response) => {
            connection.abort();
            Ok(Finished::Sent {
                response,
                accepted: job.envelope.to().len() - refused.len(),
                refused,
                warning: delivery.warning,
            })
        }
        Err(error) => fail(connection, mapped(error)),
    }
}

/// A lettre mechanism's name as the server offers it.
fn mechanism_name(mechanism: Mechanism) -> &'static str {
    match mechanism {
        Mechanism::Plain => "PLAIN",
        Mechanism::Login => "LOGIN",
        Mechanism::Xoauth2 => "XOAUTH2",
    }
}

/// Maps the job onto lettre's own API.
fn prepare(job: &Job) -> Result<Prepared, Failure> {
    if job.verify.pin_sha256.is_some() {
        return Err(Failure::LettreCannot {
            what: "pin a certificate",
            option: "--pin-sha256",
        });
    }
    if job.message.envelope().binary {
        return Err(Failure::LettreCannot {
            what: "send attachments unencoded (BINARYMIME needs BDAT, which lettre does not speak)",
            option: "--binarymime",
        });
    }
    // lettre's `SmtpConnection::connect` reads the greeting and says EHLO in one call.
    match job.quit_after {
        Some(Stage::Connect) => {
            return Err(Failure::LettreCannot {
                what: "stop before its EHLO (connecting includes the greeting and EHLO)",
                option: "--quit-after connect",
            });
        }
        Some(Stage::Greeting) => {
            return Err(Failure::LettreCannot {
                what: "stop before its EHLO (connecting includes the greeting and EHLO)",
                option: "--quit-after greeting",
            });
        }
        _ => {}
    }
    let mechanisms = match job.credentials.as_ref().and_then(|c| c.mechanism) {
        None => vec![Mechanism::Plain, Mechanism::Login],
        Some(AuthChoice::Plain) => vec![Mechanism::Plain],
        Some(AuthChoice::Login) => vec![Mechanism::Login],
        Some(AuthChoice::Xoauth2) => vec![Mechanism::Xoauth2],
        Some(AuthChoice::Oauthbearer) => {
            return Err(Failure::LettreCannot {
                what: "authenticate with OAUTHBEARER",
                option: "--auth OAUTHBEARER",
            });
        }
        Some(AuthChoice::ScramSha256) => {
            return Err(Failure::LettreCannot {
                what: "authenticate with SCRAM-SHA-256",
                option: "--auth SCRAM-SHA-256",
            });
        }
    };
    let tls = match job.tls {
        TlsMode::None => None,
        TlsMode::StartTls | TlsMode::Implicit => Some(tls_parameters(job)?),
    };
    let message = &job.message;
    let address = |text: &str| {
        text.parse::<Address>().map_err(|e| Failure::LettreAddress {
            address: text.to_owned(),
            reason: e.to_string(),
        })
    };
    let envelope = message.envelope();
    let recipients = envelope
        .recipients
        .iter()
        .map(|recipient| address(recipient.as_str()))
        .collect::<Result<Vec<_>, _>>()?;
    let envelope =
        Envelope::new(Some(address(envelope.from.as_str())?), recipients).map_err(|e| {
            Failure::LettreEnvelope {
                reason: e.to_string(),
            }
        })?;
    let mut bytes = message.to_bytes()?;
    // lettre always writes "\r\n.\r\n" after the data; the rendered message ends in CRLF.
    if bytes.ends_with(b"\r\n") {
        bytes.truncate(bytes.len() - 2);
    }
    Ok(Prepared {
        tls_mode: job.tls,
        host: job.endpoint.host.clone(),
        port: job.endpoint.port,
        hello: ClientId::Domain(job.helo_name.clone()),
        tls,
        credentials: job.credentials.as_ref().map(|credentials| {
            Credentials::new(credentials.user.clone(), credentials.password.clone())
        }),
        chosen: job
            .credentials
            .as_ref()
            .is_some_and(|c| c.mechanism.is_some()),
        mechanisms,
        envelope,
        bytes,
        size: message.expected_len(),
        // The watchdog holds each reply to its own deadline; lettre's one socket timeout
        // must not cut the longer one short.
        timeout: job.timeouts.command.max(job.timeouts.data_end),
        checked: job.certificate_checked(),
        names: errors::Names {
            tls_name: job.tls_name.clone(),
            peer: job.endpoint.shown.clone(),
            starttls: job.tls == TlsMode::StartTls,
        },
        quit_after: job.quit_after,
        allow_partial: job.allow_partial,
        delivery: job.delivery.clone(),
        recipients: message.envelope().recipients.clone(),
    })
}

fn tls_parameters(job: &Job) -> Result<TlsParameters, Failure> {
    let mut builder = TlsParameters::builder(job.tls_name.clone())
        .dangerous_accept_invalid_certs(job.verify.insecure)
        .dangerous_accept_invalid_hostnames(job.verify.insecure);
    if let Some(pem) = &job.verify.ca_pem {
        let certificate = Certificate::from_pem(pem)
            .map_err(|e| Failure::TlsSetup(format!("the CA file is not usable ({e})")))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .build_rustls()
        .map_err(|e| Failure::TlsSetup(e.to_string()))
}
