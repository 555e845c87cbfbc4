//! `--serverinfo` through lettre: `SmtpConnection::connect` (greeting and EHLO), `starttls`
//! (STARTTLS and EHLO again), `certificate_chain`, then `abort` (QUIT) — and the description
//! of what the server offered.
//!
//! The greeting and the EHLO replies are read back from the dialogue captured from lettre's
//! own events, as every lib-client transcript is. lettre 0.11 does not expose the negotiated
//! TLS version or cipher suite (its rustls connection is private): the description says so
//! instead of showing them, a named difference from raw-client.

use std::sync::{Arc, Mutex, PoisonError};

use cli::{Failure, Job, Sent, ServerInfo, ServerReply, Stage, TlsInfo, TlsMode};
use lettre::transport::smtp::client::SmtpConnection;
use transcript::Transcript;

use crate::capture::Capture;
use crate::{Finished, Prepared, errors};

/// What the description says instead of the version and cipher suite.
pub(crate) const NOT_KNOWN_TO_LETTRE: &str =
    "not known to lettre (lettre 0.11 keeps its TLS connection private)";

/// The chain lettre's thread read, handed to the caller.
type Chain = Arc<Mutex<Option<Vec<Vec<u8>>>>>;

/// Describes the job's server through lettre; returns the rebuilt transcript whatever
/// happened, and on success a [`Sent`] that carries the description.
pub(crate) fn describe(job: &Job) -> (Transcript, Result<Sent, Failure>) {
    let (prepared, capture, done, finished) = match crate::begin(job) {
        Ok(begun) => begun,
        Err(failed) => {
            let (transcript, failure) = *failed;
            return (transcript, Err(failure));
        }
    };
    let chain: Chain = Arc::new(Mutex::new(None));
    let lettre_chain = chain.clone();
    let run = move |capture: &Capture| dialogue(&prepared, capture, &lettre_chain);
    let result = crate::on_lettre_thread(&capture, done, &finished, job, run).and_then(|sent| {
        let record = capture.lock();
        // The greeting is the reply to no command; raw-client names EHLO without its name.
        let greeting = reply_to(&record.exchanges, "").next();
        let mut ehlo: Vec<ServerReply> = reply_to(&record.exchanges, "EHLO").collect();
        let greeting = greeting.ok_or_else(|| missing("the greeting"))?;
        let last = ehlo.pop().ok_or_else(|| missing("the EHLO reply"))?;
        let before_tls = match job.tls {
            TlsMode::StartTls => ehlo.pop(),
            TlsMode::None | TlsMode::Implicit => None,
        };
        let chain = chain.lock().unwrap_or_else(PoisonError::into_inner).take();
        let tls = chain.map(|chain| TlsInfo {
            version: None,
            cipher: None,
            unknown: Some(NOT_KNOWN_TO_LETTRE.to_owned()),
            chain,
            checked: job.certificate_checked(),
        });
        let info = ServerInfo::new(job, greeting, before_tls, last, tls);
        Ok(Sent {
            reply: None,
            warnings: sent.warnings,
            stopped: None,
            serverinfo: Some(Box::new(info)),
        })
    });
    (capture.finish(), result)
}

/// The replies to `command` (as the capture names it), in order.
fn reply_to<'a>(
    exchanges: &'a [(String, ServerReply)],
    command: &'a str,
) -> impl Iterator<Item = ServerReply> + 'a {
    exchanges
        .iter()
        .filter(move |(written, _)| written == command)
        .map(|(_, reply)| reply.clone())
}

/// lettre's calls for `--serverinfo`: what `send` does up to STARTTLS, then the chain, then
/// QUIT.
fn dialogue(job: &Prepared, capture: &Capture, chain: &Chain) -> Result<Finished, Failure> {
    let mapped = |error: lettre::transport::smtp::Error| {
        errors::failure(&error, &capture.lock(), &job.names)
    };
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
    if job.tls_mode == TlsMode::StartTls
        && let Some(tls) = &job.tls
    {
        connection.starttls(tls, &job.hello).map_err(mapped)?;
    }
    if job.tls.is_some() {
        let certificates = connection.certificate_chain().map_err(mapped)?;
        *chain.lock().unwrap_or_else(PoisonError::into_inner) = Some(certificates);
    }
    // lettre's `abort` says QUIT, reads its reply, and closes.
    connection.abort();
    Ok(Finished::Stopped(match job.tls_mode {
        TlsMode::StartTls => Stage::Tls,
        TlsMode::None | TlsMode::Implicit => Stage::Ehlo,
    }))
}

fn missing(what: &str) -> Failure {
    Failure::Internal(format!("--serverinfo ended without {what}"))
}
