//! `--serverinfo`: connect, set up TLS as configured, say EHLO, QUIT — and describe what the
//! server offered.
//!
//! The dialogue is the session's own, stopped as `--quit-after` stops it: after the EHLO
//! that follows TLS (STARTTLS), or after the only EHLO (implicit TLS, or none). This driver
//! keeps the replies the description needs as they are read — the greeting and each EHLO
//! reply, told apart by the reply the session waits for — and asks rustls for the version,
//! cipher suite and certificate chain before the connection is closed.

use cli::{Failure, Job, Sent, ServerInfo, ServerReply, Stage, TlsInfo, TlsMode};
use transcript::Transcript;

use crate::client::{self, Tls};
use crate::session::{Action, Dialogue, Session, Wait};

/// Describes the job's server; returns the transcript whatever happened, and on success a
/// [`Sent`] that carries the description and says nothing was sent.
pub fn describe(job: &Job) -> (Transcript, Result<Sent, Failure>) {
    let tls = match job.tls {
        TlsMode::None => None,
        TlsMode::StartTls | TlsMode::Implicit => match Tls::prepare(job) {
            Ok(tls) => Some(tls),
            Err(failure) => return (Transcript::new(), Err(failure)),
        },
    };
    let mut transcript = Transcript::new();
    let mut connection = match client::connect(job, &mut transcript) {
        Ok(connection) => connection,
        Err(failure) => return (transcript, Err(failure)),
    };
    let mut dialogue = Dialogue::for_job(job, false, 1);
    // The EHLO that counts is the last one: after STARTTLS's handshake, or the only one.
    dialogue.quit_after = Some(match job.tls {
        TlsMode::StartTls => Stage::Tls,
        TlsMode::None | TlsMode::Implicit => Stage::Ehlo,
    });
    // EHLO and QUIT only: no login, whatever the options say.
    dialogue.credentials = None;
    let mut session = Session::new(dialogue);
    let mut greeting = None;
    let mut ehlo_replies: Vec<ServerReply> = Vec::new();
    let mut negotiated = None;
    let result = loop {
        let Some(action) = session.next_action() else {
            break Err(Failure::Internal(
                "the dialogue stopped without a verdict".into(),
            ));
        };
        match action {
            Action::Write(flight) => {
                let written = match (&tls, flight.handshake, flight.message) {
                    (Some(tls), true, _) => {
                        client::handshake(&mut connection, tls, job, &flight.commands)
                    }
                    (None, true, _) => Err(Failure::Internal("a TLS handshake without TLS".into())),
                    (_, false, true) => Err(Failure::Internal(
                        "--serverinfo does not send a message".into(),
                    )),
                    (_, false, false) => connection.send(&flight.commands),
                };
                if let Err(failure) = written {
                    session.on_failure(failure);
                }
            }
            Action::Read(wait) => match connection.read_reply_within(job.timeouts.command, wait) {
                Ok(reply) => {
                    match wait {
                        Wait::Greeting => greeting = Some(ServerReply::from(reply.clone())),
                        // HELO answers a server that does not know EHLO: no extensions.
                        Wait::Reply("EHLO" | "HELO") if reply.code == 250 => {
                            ehlo_replies.push(reply.clone().into());
                        }
                        _ => {}
                    }
                    let unread = connection.unread_input().len();
                    session.on_reply(reply, unread);
                }
                Err(failure) => session.on_failure(failure),
            },
            Action::Note(note) => connection.transcript.note(note),
            Action::StopRecording | Action::Transaction | Action::Accepted(_) => {}
            Action::Done(result) => break result,
        }
        if negotiated.is_none() {
            negotiated = connection.tls_session();
        }
    };
    let transcript = connection.close();
    let sent = result.and_then(|sent| {
        let greeting = greeting.ok_or_else(|| missing("the greeting"))?;
        let ehlo = ehlo_replies
            .pop()
            .ok_or_else(|| missing("the EHLO reply"))?;
        let tls = negotiated.map(|session| TlsInfo {
            version: session.version,
            cipher: session.cipher,
            unknown: None,
            chain: session.chain,
            checked: job.certificate_checked(),
        });
        let ehlo_before_tls = match job.tls {
            TlsMode::StartTls => ehlo_replies.pop(),
            TlsMode::None | TlsMode::Implicit => None,
        };
        let info = ServerInfo::new(job, greeting, ehlo_before_tls, ehlo, tls);
        Ok(Sent {
            reply: None,
            warnings: sent.warnings,
            stopped: None,
            serverinfo: Some(Box::new(info)),
        })
    });
    (transcript, sent)
}

fn missing(what: &str) -> Failure {
    Failure::Internal(format!("--serverinfo ended without {what}"))
}
