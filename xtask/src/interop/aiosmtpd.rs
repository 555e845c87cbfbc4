//! Our clients against aiosmtpd (Python, from PyPI, in `target/interop/venv`), run by
//! `xtask/interop/aiosmtpd_server.py`: STARTTLS required before MAIL, AUTH PLAIN and LOGIN
//! only under TLS, and a handler that saves `envelope.original_content`, the raw bytes.

use std::process::Command;
use std::time::Duration;

use super::mail::{self, Client, Envelope, Mail, PASSWORD, Send, Tls, USER};
use super::procs::{self, Service};
use super::{Ctx, OURS_TO_PEER, Report};

const PEER: &str = "aiosmtpd";

fn envelope(meta: &serde_json::Value) -> Envelope {
    Envelope {
        from: mail::json_str(meta, "mail_from").unwrap_or_default(),
        recipients: mail::json_strs(meta, "rcpt_tos"),
        auth_user: mail::json_str(meta, "auth_user"),
        tls: mail::json_bool(meta, "tls"),
    }
}

/// Runs the aiosmtpd checks.
pub(crate) fn run(ctx: &Ctx, report: &mut Report) {
    let started = (|| -> anyhow::Result<_> {
        let python = ctx
            .tools
            .python
            .as_ref()
            .map_err(|error| anyhow::anyhow!("{error}"))?;
        let certs = ctx
            .certs
            .as_ref()
            .map_err(|error| anyhow::anyhow!("{error}"))?;
        let store = ctx.dir("aiosmtpd-store")?;
        let (port, login_port) = (procs::free_port()?, procs::free_port()?);
        let mut command = Command::new(python);
        command
            .arg(ctx.root.join("xtask/interop/aiosmtpd_server.py"))
            .args([
                "--port",
                &port.to_string(),
                "--login-port",
                &login_port.to_string(),
            ])
            .arg("--cert")
            .arg(&certs.cert)
            .arg("--key")
            .arg(&certs.key)
            .arg("--store")
            .arg(&store)
            .args(["--user", USER, "--password", PASSWORD]);
        let mut service = Service::spawn(PEER, command, &ctx.work.join("aiosmtpd.log"))?;
        service.wait_listening(&[port, login_port], Duration::from_secs(30))?;
        Ok((service, store, port, login_port))
    })();
    let (service, store, port, login_port) = match started {
        Ok(started) => started,
        Err(error) => {
            report.setup_failed(PEER, OURS_TO_PEER, format!("{error:#}"));
            return;
        }
    };
    let Ok(certs) = &ctx.certs else { return };

    for client in [Client::Raw, Client::Lib] {
        for (listener, port, mechanism) in [
            ("PLAIN and LOGIN offered", port, "PLAIN"),
            ("only LOGIN offered", login_port, "LOGIN"),
        ] {
            let mail = Mail::full(
                &format!("aiosmtpd-{}-{}", client.name(), mechanism.to_lowercase()),
                "example.com",
            );
            let send = Send {
                client,
                port,
                tls: Tls::Starttls,
                ca: &certs.ca,
                password_file: Some(&ctx.fixtures.password_file),
                token_file: None,
                pipelining: false,
                mail: &mail,
            };
            let want = Envelope {
                from: mail.sender(),
                recipients: mail.recipients(),
                auth_user: Some(USER.into()),
                tls: true,
            };
            let expected_auth = format!("C: AUTH {mechanism}");
            let result = mail::send_exact(
                &ctx.binaries,
                &ctx.fixtures,
                &store,
                &send,
                &want,
                envelope,
                &|outcome, stored| {
                    mail::ensure(outcome.stdout.contains(&expected_auth), || {
                        format!("the transcript has no {expected_auth:?}")
                    })?;
                    let options = mail::json_strs(&stored.meta, "mail_options");
                    mail::ensure(
                        options.iter().any(|option| option == "BODY=8BITMIME"),
                        || {
                            format!(
                                "MAIL FROM parameters {options:?} lack BODY=8BITMIME for an 8-bit body"
                            )
                        },
                    )
                },
            );
            report.add(
                PEER,
                OURS_TO_PEER,
                format!(
                    "{} ({listener}): To + Cc + Bcc, attachment, 8-bit, dot lines",
                    send.label(mechanism)
                ),
                result,
            );
        }
    }

    // raw-client's --pipelining only pipelines when the server offers PIPELINING
    // (RFC 2920 §3); aiosmtpd does not, so the dialogue must stay in lockstep.
    let mail = Mail::full("aiosmtpd-raw-no-pipelining", "example.com");
    let send = Send {
        client: Client::Raw,
        port,
        tls: Tls::Starttls,
        ca: &certs.ca,
        password_file: Some(&ctx.fixtures.password_file),
        token_file: None,
        pipelining: true,
        mail: &mail,
    };
    let want = Envelope {
        from: mail.sender(),
        recipients: mail.recipients(),
        auth_user: Some(USER.into()),
        tls: true,
    };
    let result = mail::send_exact(
        &ctx.binaries,
        &ctx.fixtures,
        &store,
        &send,
        &want,
        envelope,
        &|outcome, _| {
            mail::ensure(!outcome.stdout.contains("-- pipelining"), || {
                "raw-client pipelined although aiosmtpd does not offer PIPELINING".into()
            })
        },
    );
    report.add(
        PEER,
        OURS_TO_PEER,
        "raw-client, STARTTLS, AUTH PLAIN, --pipelining, but no PIPELINING offered: stays in lockstep",
        result,
    );

    // Refusals: the real server's replies must map onto the documented exit codes.
    for client in [Client::Raw, Client::Lib] {
        let mail = Mail::full(
            &format!("aiosmtpd-{}-wrong-password", client.name()),
            "example.com",
        );
        let send = Send {
            client,
            port,
            tls: Tls::Starttls,
            ca: &certs.ca,
            password_file: Some(&ctx.fixtures.wrong_password_file),
            token_file: None,
            pipelining: false,
            mail: &mail,
        };
        let result = mail::send_refused(&ctx.binaries, &ctx.fixtures, &store, &send, 77);
        report.add(
            PEER,
            OURS_TO_PEER,
            format!(
                "{}: wrong password → 535, exit 77, nothing stored",
                send.label("PLAIN")
            ),
            result,
        );

        let mail = Mail::full(
            &format!("aiosmtpd-{}-no-starttls", client.name()),
            "example.com",
        );
        let send = Send {
            client,
            port,
            tls: Tls::None,
            ca: &certs.ca,
            password_file: None,
            token_file: None,
            pipelining: false,
            mail: &mail,
        };
        let result = mail::send_refused(&ctx.binaries, &ctx.fixtures, &store, &send, 69);
        report.add(
            PEER,
            OURS_TO_PEER,
            format!(
                "{}: MAIL without the required STARTTLS → 530, exit 69, nothing stored",
                send.label("")
            ),
            result,
        );
    }
    drop(service);
}
