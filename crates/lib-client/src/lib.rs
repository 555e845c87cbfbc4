//! lib-client: the same job as raw-client, done the way most Rust programs send mail —
//! through lettre's blocking `SmtpTransport` (rustls with ring, no connection pool).
//!
//! lettre does not hand out its dialogue, so the transcript is rebuilt from its own `tracing`
//! events (`Wrote: …` and the cumulative `<< …` reply buffer), captured by a subscriber that
//! only this call sees and that never prints anything. Secrets in those events are redacted
//! by the `transcript` crate like every other transcript.
//!
//! Two things are done differently from a plain `send` so the bytes match raw-client's:
//! the message is handed over without its final CRLF, because lettre always appends
//! `\r\n.\r\n` (so the wire gets exactly one line ending before the `.`), and the EHLO name is
//! set explicitly instead of lettre's `hostname` default.

mod capture;
mod errors;

use std::panic::{AssertUnwindSafe, catch_unwind};

use cli::{Failure, Job, Sent, TlsMode};
use lettre::address::{Address, Envelope};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{SmtpTransport, Transport as _};
use transcript::Transcript;

/// Sends the job's message through lettre; returns the rebuilt transcript whatever happened.
pub fn send(job: &Job) -> (Transcript, Result<Sent, Failure>) {
    let mut transcript = Transcript::new();
    if job.verify.insecure {
        transcript.note("certificate verification disabled (--insecure)");
    }
    let prepared = prepare(job);
    let (transport, envelope, bytes) = match prepared {
        Ok(prepared) => prepared,
        Err(failure) => return (transcript, Err(failure)),
    };
    let capture = capture::Capture::default();
    let outcome =
        capture.during(|| catch_unwind(AssertUnwindSafe(|| transport.send_raw(&envelope, &bytes))));
    capture.rebuild(
        &mut transcript,
        &job.endpoint.shown,
        job.tls == TlsMode::Implicit,
    );
    let result = match outcome {
        Ok(Ok(response)) => Ok(Sent {
            reply: Some(cli::ServerReply {
                code: u16::from(response.code()),
                lines: response.message().map(str::to_owned).collect(),
            }),
            warnings: Vec::new(),
        }),
        Ok(Err(error)) => Err(errors::failure(&error, &transcript, job)),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            Err(Failure::LettrePanic { what })
        }
    };
    (transcript, result)
}

type Prepared = (SmtpTransport, Envelope, Vec<u8>);

/// Maps the job onto lettre's own API.
fn prepare(job: &Job) -> Result<Prepared, Failure> {
    if job.verify.pin_sha256.is_some() {
        return Err(Failure::LettreCannot {
            what: "pin a certificate",
            option: "--pin-sha256",
        });
    }
    let (host, port) = (job.endpoint.host.clone(), job.endpoint.port);
    let tls = match job.tls {
        TlsMode::None => Tls::None,
        TlsMode::StartTls => Tls::Required(tls_parameters(job)?),
        TlsMode::Implicit => Tls::Wrapper(tls_parameters(job)?),
    };
    let mut builder = SmtpTransport::builder_dangerous(host)
        .port(port)
        .tls(tls)
        .hello_name(ClientId::Domain(job.helo_name.clone()))
        .timeout(Some(job.timeouts.command))
        .authentication(vec![Mechanism::Plain, Mechanism::Login]);
    if let Some(credentials) = &job.credentials {
        builder = builder.credentials(Credentials::new(
            credentials.user.clone(),
            credentials.password.clone(),
        ));
    }
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
    Ok((builder.build(), envelope, bytes))
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
