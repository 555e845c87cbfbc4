//! Our clients against a Node.js server built on the `smtp-server` package (npm), run by
//! `xtask/interop/node/server.js`: STARTTLS, implicit TLS, AUTH PLAIN/LOGIN, PIPELINING,
//! 8BITMIME and SMTPUTF8, storing the bytes of its onData stream.

use std::process::Command;
use std::time::Duration;

use super::mail::{self, Client, Envelope, Mail, PASSWORD, Send, TOKEN, Tls, USER};
use super::procs::{self, Service};
use super::{Ctx, OURS_TO_PEER, Report};

const PEER: &str = "smtp-server (Node.js)";

fn envelope(meta: &serde_json::Value) -> Envelope {
    Envelope {
        from: mail::json_str(meta, "mail_from").unwrap_or_default(),
        recipients: mail::json_strs(meta, "rcpt_to"),
        auth_user: mail::json_str(meta, "auth_user"),
        tls: mail::json_bool(meta, "tls"),
    }
}

/// Which of smtp-server's listeners a case uses: STARTTLS, implicit TLS, or STARTTLS with
/// only AUTH LOGIN offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listener {
    Starttls,
    Implicit,
    Login,
}

/// What a case sends: the full message, or one between UTF-8 addresses (SMTPUTF8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Content {
    Full,
    Utf8,
}

/// Each of our clients (raw-client with and without --pipelining) on each listener.
const CASES: [(Client, Listener, bool, Content); 11] = [
    (Client::Raw, Listener::Starttls, false, Content::Full),
    (Client::Raw, Listener::Starttls, true, Content::Full),
    (Client::Lib, Listener::Starttls, false, Content::Full),
    (Client::Raw, Listener::Implicit, false, Content::Full),
    (Client::Raw, Listener::Implicit, true, Content::Full),
    (Client::Lib, Listener::Implicit, false, Content::Full),
    (Client::Raw, Listener::Login, false, Content::Full),
    (Client::Lib, Listener::Login, false, Content::Full),
    (Client::Raw, Listener::Starttls, false, Content::Utf8),
    (Client::Raw, Listener::Starttls, true, Content::Utf8),
    (Client::Lib, Listener::Starttls, false, Content::Utf8),
];

struct Ports {
    starttls: u16,
    implicit: u16,
    login: u16,
}

/// Runs the smtp-server checks.
pub(crate) fn run(ctx: &Ctx, report: &mut Report) {
    let started = (|| -> anyhow::Result<_> {
        let dir = ctx
            .tools
            .node_dir
            .as_ref()
            .map_err(|error| anyhow::anyhow!("{error}"))?;
        let certs = ctx
            .certs
            .as_ref()
            .map_err(|error| anyhow::anyhow!("{error}"))?;
        let store = ctx.dir("smtp-server-store")?;
        let ports = Ports {
            starttls: procs::free_port()?,
            implicit: procs::free_port()?,
            login: procs::free_port()?,
        };
        let mut command = Command::new("node");
        command
            .arg(dir.join("server.js"))
            .args(["--port", &ports.starttls.to_string()])
            .args(["--secure-port", &ports.implicit.to_string()])
            .args(["--login-port", &ports.login.to_string()])
            .arg("--cert")
            .arg(&certs.cert)
            .arg("--key")
            .arg(&certs.key)
            .arg("--store")
            .arg(&store)
            .args(["--user", USER, "--password", PASSWORD, "--token", TOKEN])
            .current_dir(dir);
        let mut service = Service::spawn(PEER, command, &ctx.work.join("smtp-server.log"))?;
        service.wait_listening(
            &[ports.starttls, ports.implicit, ports.login],
            Duration::from_secs(30),
        )?;
        Ok((service, store, ports))
    })();
    let (service, store, ports) = match started {
        Ok(started) => started,
        Err(error) => {
            report.setup_failed(PEER, OURS_TO_PEER, format!("{error:#}"));
            return;
        }
    };
    let Ok(certs) = &ctx.certs else { return };

    for (index, &(client, listener, pipelining, content)) in CASES.iter().enumerate() {
        let (tls, port, mechanism) = match listener {
            Listener::Starttls => (Tls::Starttls, ports.starttls, "PLAIN"),
            Listener::Implicit => (Tls::Implicit, ports.implicit, "PLAIN"),
            Listener::Login => (Tls::Starttls, ports.login, "LOGIN"),
        };
        let utf8 = content == Content::Utf8;
        let what = match (listener, content) {
            (Listener::Login, _) => "only LOGIN offered",
            (_, Content::Utf8) => "SMTPUTF8: UTF-8 addresses",
            (_, Content::Full) => "To + Cc + Bcc, attachment, 8-bit, dot lines",
        };
        let tag = format!("smtp-server-{index}-{}", client.name());
        let mail = if utf8 {
            Mail {
                from: "Jörg Sender <jörg@bücher.example>".into(),
                to: vec!["Zoë <zoë@example.com>".into()],
                cc: vec!["用户@例子.example".into()],
                bcc: vec!["bob@example.com".into()],
                subject: format!("Interop {tag}: SMTPUTF8"),
                attach: false,
                message_id: format!("{tag}@interop.smtp-workbench.example"),
            }
        } else {
            Mail::full(&tag, "example.com")
        };
        let send = Send {
            client,
            port,
            tls,
            ca: &certs.ca,
            password_file: Some(&ctx.fixtures.password_file),
            token_file: None,
            pipelining,
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
                mail::ensure(
                    pipelining == outcome.stdout.contains("-- pipelining"),
                    || {
                        format!(
                            "expected pipelining {pipelining} (smtp-server offers PIPELINING), the transcript disagrees"
                        )
                    },
                )?;
                mail::ensure(utf8 == mail::json_bool(&stored.meta, "smtp_utf8"), || {
                    format!("smtp-server recorded SMTPUTF8 = {}, expected {utf8}", !utf8)
                })?;
                let body = mail::json_str(&stored.meta, "body_type").unwrap_or_default();
                mail::ensure(body == "8bitmime", || {
                    format!(
                        "smtp-server recorded BODY={body:?}, expected 8bitmime for an 8-bit body"
                    )
                })
            },
        );
        let label = send.label(mechanism);
        report.add(PEER, OURS_TO_PEER, format!("{label}: {what}"), result);
    }
    // XOAUTH2, the OAuth 2.0 mechanism of Gmail and Microsoft 365: both clients deliver
    // with the right token; a refused one gets smtp-server's 334 status, which raw-client
    // answers and decodes into its sentence (exit 77).
    for client in [Client::Raw, Client::Lib] {
        let mail = Mail::full(
            &format!("smtp-server-xoauth2-{}", client.name()),
            "example.com",
        );
        let send = Send {
            client,
            port: ports.starttls,
            tls: Tls::Starttls,
            ca: &certs.ca,
            password_file: None,
            token_file: Some(&ctx.fixtures.token_file),
            pipelining: false,
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
                mail::ensure(
                    outcome.stdout.contains("C: AUTH XOAUTH2 <redacted>"),
                    || "the transcript has no AUTH XOAUTH2".into(),
                )
            },
        );
        report.add(
            PEER,
            OURS_TO_PEER,
            format!(
                "{}, STARTTLS, --auth XOAUTH2 --oauth2-token-file: delivered",
                client.name()
            ),
            result,
        );
    }
    let mail = Mail::full("smtp-server-xoauth2-refused", "example.com");
    let send = Send {
        client: Client::Raw,
        port: ports.starttls,
        tls: Tls::Starttls,
        ca: &certs.ca,
        password_file: None,
        token_file: Some(&ctx.fixtures.wrong_token_file),
        pipelining: false,
        mail: &mail,
    };
    let result =
        mail::send_refused(&ctx.binaries, &ctx.fixtures, &store, &send, 77).and_then(|note| {
            mail::ensure(note.contains("status 401"), || {
                format!("the sentence lacks the decoded status: {note}")
            })?;
            Ok(note)
        });
    report.add(
        PEER,
        OURS_TO_PEER,
        "raw-client, STARTTLS, --auth XOAUTH2, refused token: the 334 status decoded, exit 77",
        result,
    );
    drop(service);
}
