//! Real clients against our test-server: swaks, curl, Python's smtplib, msmtp and
//! Nodemailer. One test-server runs with a STARTTLS listener and an implicit-TLS listener
//! and one account; each check reads the message, envelope and transcript it stored.
//!
//! Clients that send a prepared message (swaks `--data`, curl `--upload-file`, msmtp from
//! standard input, Nodemailer `raw`) send the rendering of `crates/message`, and the
//! stored bytes must equal it. Clients that build their own MIME (swaks `--attach`,
//! smtplib, Nodemailer) are checked by parsing: subject, text body and attachment decode
//! to what was given.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Result;

use super::mail::{self, Client, Envelope, Fixtures, Mail, PASSWORD, Send, Stored, Tls, USER};
use super::procs::{self, Outcome, Service};
use super::{Ctx, PEER_TO_OURS, Report};

/// The running test-server.
struct Server {
    store: PathBuf,
    port: u16,
    tls_port: u16,
    ca: PathBuf,
    _service: Service,
}

/// The prepared message (the rendering of `crates/message`) and its envelope.
struct Prepared {
    file: PathBuf,
    bytes: Vec<u8>,
    from: String,
    recipients: Vec<String>,
}

/// Runs the selected client groups.
pub(crate) fn run(ctx: &Ctx, report: &mut Report, groups: &[&str]) {
    let setup = (|| -> Result<(Server, Prepared)> {
        let server = start(ctx)?;
        let prepared = prepare(ctx, &server.ca)?;
        Ok((server, prepared))
    })();
    let (server, prepared) = match setup {
        Ok(setup) => setup,
        Err(error) => {
            for group in groups {
                report.setup_failed(group, PEER_TO_OURS, format!("test-server: {error:#}"));
            }
            return;
        }
    };
    for group in groups {
        match *group {
            "swaks" => swaks(ctx, &server, &prepared, report),
            "curl" => curl(ctx, &server, &prepared, report),
            "smtplib" => smtplib(ctx, &server, report),
            "msmtp" => msmtp(ctx, &server, &prepared, report),
            "nodemailer" => nodemailer(ctx, &server, &prepared, report),
            _ => {}
        }
    }
}

fn start(ctx: &Ctx) -> Result<Server> {
    let store = ctx.dir("test-server-store")?;
    let server = procs::start_test_server(
        &ctx.binaries.join("test-server"),
        &store,
        "test-server.interop.localhost",
        (USER, PASSWORD),
        &ctx.work.join("test-server.log"),
    )?;
    Ok(Server {
        store,
        port: server.port,
        tls_port: server.tls_port,
        ca: server.ca,
        _service: server.service,
    })
}

fn prepare(ctx: &Ctx, ca: &Path) -> Result<Prepared> {
    let mail = Mail::full("prepared", "example.com");
    let send = Send {
        client: Client::Raw,
        port: 1,
        tls: Tls::Starttls,
        ca,
        password_file: None,
        pipelining: false,
        mail: &mail,
    };
    let bytes = send.reference(&ctx.fixtures)?;
    let file = ctx.work.join("fixtures").join("prepared.eml");
    mail::write(&file, &bytes)?;
    Ok(Prepared {
        file,
        bytes,
        from: mail.sender(),
        recipients: mail.recipients(),
    })
}

fn envelope(meta: &serde_json::Value) -> Envelope {
    Envelope {
        from: mail::json_str(meta, "from").unwrap_or_default(),
        recipients: mail::json_strs(meta, "recipients"),
        auth_user: mail::json_str(meta, "auth_user"),
        tls: mail::json_bool(meta, "tls"),
    }
}

/// Runs a client and returns what test-server stored for it.
fn received(
    server: &Server,
    run: impl FnOnce() -> Result<Outcome>,
) -> Result<(Outcome, Stored), String> {
    let before = mail::stored_names(&server.store).map_err(|error| format!("{error:#}"))?;
    let outcome = run().map_err(|error| format!("{error:#}"))?;
    mail::expect_success(&outcome)?;
    let stored = mail::new_stored(&server.store, &before)?;
    Ok((outcome, stored))
}

/// The server-side transcript test-server stored beside the message.
fn transcript(server: &Server, stored: &Stored) -> String {
    std::fs::read_to_string(
        server
            .store
            .join(stored.name.replace(".eml", ".transcript")),
    )
    .unwrap_or_default()
}

/// The common checks: envelope, AUTH mechanism (from the server's transcript), and either
/// exact bytes or the parsed parts.
struct Want<'a> {
    envelope: Envelope,
    /// The EHLO name the client was configured to give.
    helo: &'a str,
    mechanism: &'a str,
    exact: Option<&'a [u8]>,
    subject: &'a str,
    attachment: bool,
    mail_parameter: Option<&'a str>,
}

fn verify(
    server: &Server,
    fixtures: &Fixtures,
    stored: &Stored,
    want: &Want<'_>,
) -> Result<String, String> {
    mail::check_envelope(&envelope(&stored.meta), &want.envelope)?;
    let helo = mail::json_str(&stored.meta, "helo").unwrap_or_default();
    mail::ensure(helo == want.helo, || {
        format!("EHLO name {helo:?}, configured {:?}", want.helo)
    })?;
    let transcript = transcript(server, stored);
    let auth = format!("C: AUTH {}", want.mechanism);
    mail::ensure(transcript.contains(&auth), || {
        format!("test-server's transcript has no {auth:?}")
    })?;
    if let Some(parameter) = want.mail_parameter {
        let parameters = mail::json_strs(&stored.meta, "mail_parameters");
        mail::ensure(
            parameters.iter().any(|p| p.eq_ignore_ascii_case(parameter)),
            || format!("MAIL FROM parameters {parameters:?} lack {parameter}"),
        )?;
    }
    match want.exact {
        Some(bytes) => {
            mail::same_bytes(&stored.eml, bytes)?;
            Ok(format!(
                "{} bytes stored, identical to the rendering sent",
                stored.eml.len()
            ))
        }
        None => {
            mail::check_parts(&stored.eml, fixtures, want.subject, want.attachment)?;
            Ok(if want.attachment {
                "subject, 8-bit body and attachment decode to what was sent".into()
            } else {
                "subject and 8-bit body decode to what was sent".into()
            })
        }
    }
}

fn tool_result(ctx: &Ctx, tool: &str) -> Result<(), String> {
    ctx.tools.apt(tool)
}

fn swaks(ctx: &Ctx, server: &Server, prepared: &Prepared, report: &mut Report) {
    const PEER: &str = "swaks";
    if let Err(why) = tool_result(ctx, "swaks") {
        report.setup_failed(PEER, PEER_TO_OURS, why);
        return;
    }
    let base = |port: u16| -> Command {
        let mut command = Command::new("swaks");
        command
            .args(["--server", "127.0.0.1", "--port", &port.to_string()])
            .args(["--helo", "swaks.interop.localhost", "--timeout", "20"])
            .args(["--tls-verify", "--tls-ca-path"])
            .arg(&server.ca)
            .args(["--auth-user", USER, "--auth-password", PASSWORD])
            .args([
                "--from",
                &prepared.from,
                "--to",
                &prepared.recipients.join(","),
            ]);
        command
    };
    let full = Envelope {
        from: prepared.from.clone(),
        recipients: prepared.recipients.clone(),
        auth_user: Some(USER.into()),
        tls: true,
    };
    // swaks terminates DATA with "\r\n.\r\n" after the data it is given, so data that
    // already ends in CRLF would arrive with an extra empty line: its --data is the
    // message without the final line break (swaks source: `$n{data} .= "\r\n."`).
    let swaks_file = ctx.work.join("fixtures").join("prepared-for-swaks.eml");
    let trimmed = prepared
        .bytes
        .strip_suffix(b"\r\n")
        .unwrap_or(&prepared.bytes);
    if let Err(error) = mail::write(&swaks_file, trimmed) {
        report.setup_failed(PEER, PEER_TO_OURS, format!("{error:#}"));
        return;
    }
    let data = format!("@{}", swaks_file.display());

    let result = received(server, || {
        let mut command = base(server.port);
        command.args(["--tls", "--auth", "PLAIN", "--data", &data]);
        procs::run(&mut command, None, Duration::from_secs(60))
    })
    .and_then(|(_, stored)| {
        verify(
            server,
            &ctx.fixtures,
            &stored,
            &Want {
                helo: "swaks.interop.localhost",
                envelope: full.clone(),
                mechanism: "PLAIN",
                exact: Some(&prepared.bytes),
                subject: "",
                attachment: false,
                mail_parameter: None,
            },
        )
    });
    report.add(PEER, PEER_TO_OURS, "--tls (STARTTLS, --tls-verify), --auth PLAIN, 3 recipients, --data: the rendered message (final CRLF left to swaks)", result);

    let subject = "Interop swaks: attachment";
    let body = format!("@{}", ctx.fixtures.body_file.display());
    let attach = format!("@{}", ctx.fixtures.attachment.display());
    let result = received(server, || {
        let mut command = base(server.port);
        command
            .args(["--tls", "--auth", "LOGIN", "--pipeline"])
            .args(["--header", &format!("Subject: {subject}")])
            .args([
                "--body",
                &body,
                "--attach-type",
                "application/octet-stream",
                "--attach",
                &attach,
            ]);
        procs::run(&mut command, None, Duration::from_secs(60))
    })
    .and_then(|(outcome, stored)| {
        // With --pipeline swaks writes MAIL and the RCPTs before reading a reply: its log
        // shows the RCPT line right after the MAIL line.
        let lines: Vec<&str> = outcome.stdout.lines().collect();
        let mail_at = lines.iter().position(|line| line.contains("MAIL FROM:"));
        let pipelined = mail_at
            .and_then(|at| lines.get(at + 1))
            .is_some_and(|next| next.contains("RCPT TO:"));
        mail::ensure(pipelined, || "swaks did not pipeline MAIL and RCPT".into())?;
        verify(
            server,
            &ctx.fixtures,
            &stored,
            &Want {
                helo: "swaks.interop.localhost",
                envelope: full.clone(),
                mechanism: "LOGIN",
                exact: None,
                subject,
                attachment: true,
                mail_parameter: None,
            },
        )
    });
    report.add(
        PEER,
        PEER_TO_OURS,
        "--tls, --auth LOGIN, --pipeline, --body 8-bit text, --attach binary",
        result,
    );

    let result = received(server, || {
        let mut command = base(server.tls_port);
        command.args(["--tls-on-connect", "--auth", "PLAIN", "--data", &data]);
        procs::run(&mut command, None, Duration::from_secs(60))
    })
    .and_then(|(_, stored)| {
        verify(
            server,
            &ctx.fixtures,
            &stored,
            &Want {
                helo: "swaks.interop.localhost",
                envelope: full.clone(),
                mechanism: "PLAIN",
                exact: Some(&prepared.bytes),
                subject: "",
                attachment: false,
                mail_parameter: None,
            },
        )
    });
    report.add(
        PEER,
        PEER_TO_OURS,
        "--tls-on-connect (implicit TLS), --auth PLAIN, --data: the rendered message",
        result,
    );
}

fn curl(ctx: &Ctx, server: &Server, prepared: &Prepared, report: &mut Report) {
    const PEER: &str = "curl";
    if let Err(why) = tool_result(ctx, "curl") {
        report.setup_failed(PEER, PEER_TO_OURS, why);
        return;
    }
    let full = Envelope {
        from: prepared.from.clone(),
        recipients: prepared.recipients.clone(),
        auth_user: Some(USER.into()),
        tls: true,
    };
    let base = |url: String| -> Command {
        let mut command = Command::new("curl");
        command
            .args([
                "--silent",
                "--show-error",
                "--max-time",
                "30",
                "--url",
                &url,
            ])
            .arg("--cacert")
            .arg(&server.ca)
            .args(["--user", &format!("{USER}:{PASSWORD}")])
            .args(["--mail-from", &prepared.from]);
        for recipient in &prepared.recipients {
            command.args(["--mail-rcpt", recipient]);
        }
        command.arg("--upload-file").arg(&prepared.file);
        command
    };
    // curl takes the EHLO name from the URL path; without one it appends the upload file's
    // name to the URL and would say "EHLO prepared.eml".
    let cases = [
        (
            format!("smtp://127.0.0.1:{}/curl.interop.localhost", server.port),
            vec!["--ssl-reqd"],
            "PLAIN",
            "smtp:// --ssl-reqd (STARTTLS) --cacert, --user (AUTH PLAIN), 3 recipients, --upload-file: the rendered message",
        ),
        (
            format!(
                "smtps://127.0.0.1:{}/curl.interop.localhost",
                server.tls_port
            ),
            vec![],
            "PLAIN",
            "smtps:// (implicit TLS) --cacert, --user, --upload-file: the rendered message",
        ),
        (
            format!(
                "smtps://127.0.0.1:{}/curl.interop.localhost",
                server.tls_port
            ),
            vec!["--login-options", "AUTH=LOGIN"],
            "LOGIN",
            "smtps://, --login-options AUTH=LOGIN, --upload-file: the rendered message",
        ),
    ];
    for (url, extra, mechanism, scenario) in cases {
        let result = received(server, || {
            let mut command = base(url);
            command.args(extra);
            procs::run(&mut command, None, Duration::from_secs(60))
        })
        .and_then(|(_, stored)| {
            verify(
                server,
                &ctx.fixtures,
                &stored,
                &Want {
                    helo: "curl.interop.localhost",
                    envelope: full.clone(),
                    mechanism,
                    exact: Some(&prepared.bytes),
                    subject: "",
                    attachment: false,
                    mail_parameter: None,
                },
            )
        });
        report.add(PEER, PEER_TO_OURS, scenario, result);
    }
}

fn smtplib(ctx: &Ctx, server: &Server, report: &mut Report) {
    const PEER: &str = "Python smtplib";
    let python = match &ctx.tools.python {
        Ok(python) => python.clone(),
        Err(why) => {
            report.setup_failed(PEER, PEER_TO_OURS, why);
            return;
        }
    };
    let script = ctx.root.join("xtask/interop/smtplib_client.py");
    let cases = [
        (
            "starttls",
            None,
            "PLAIN",
            "alice@example.com",
            true,
            "starttls(), login() (AUTH PLAIN), send_message(): To + Cc, 8-bit text, attachment",
        ),
        (
            "implicit",
            Some("LOGIN"),
            "LOGIN",
            "alice@example.com",
            true,
            "SMTP_SSL (implicit TLS), AUTH LOGIN, send_message(): To + Cc, 8-bit text, attachment",
        ),
        (
            "starttls",
            None,
            "PLAIN",
            "zoë@example.com",
            false,
            "starttls(), login(), send_message() to a UTF-8 address: SMTPUTF8",
        ),
    ];
    for (index, (mode, mechanism, used, to, attach, scenario)) in cases.into_iter().enumerate() {
        let subject = format!("Interop smtplib {index}: Grüße");
        let spec = serde_json::json!({
            "host": "127.0.0.1",
            "port": if mode == "implicit" { server.tls_port } else { server.port },
            "mode": mode,
            "ca": server.ca,
            "user": USER,
            "password": PASSWORD,
            "mechanism": mechanism,
            "from": "Interop Sender <sender@example.org>",
            "to": [to],
            "cc": ["bob@example.com"],
            "subject": subject,
            "text": ctx.fixtures.body,
            "attachments": if attach { vec![ctx.fixtures.attachment.clone()] } else { vec![] },
        });
        let result = write_spec(ctx, &format!("smtplib-{index}.json"), &spec).and_then(|spec| {
            received(server, || {
                procs::run(
                    Command::new(&python).arg(&script).arg(&spec),
                    None,
                    Duration::from_secs(60),
                )
            })
            .and_then(|(_, stored)| {
                verify(
                    server,
                    &ctx.fixtures,
                    &stored,
                    &Want {
                        helo: "smtplib.interop.localhost",
                        envelope: Envelope {
                            from: "sender@example.org".into(),
                            recipients: vec![to.into(), "bob@example.com".into()],
                            auth_user: Some(USER.into()),
                            tls: true,
                        },
                        mechanism: used,
                        exact: None,
                        subject: &subject,
                        attachment: attach,
                        mail_parameter: (!to.is_ascii()).then_some("SMTPUTF8"),
                    },
                )
            })
        });
        report.add(PEER, PEER_TO_OURS, scenario, result);
    }
}

fn msmtp(ctx: &Ctx, server: &Server, prepared: &Prepared, report: &mut Report) {
    const PEER: &str = "msmtp";
    if let Err(why) = tool_result(ctx, "msmtp") {
        report.setup_failed(PEER, PEER_TO_OURS, why);
        return;
    }
    let config = (|| -> Result<PathBuf> {
        let dir = ctx.dir("msmtp")?;
        let path = dir.join("msmtprc");
        let account = |name: &str, port: u16, starttls: &str, auth: &str| {
            format!(
                "account {name}\nhost 127.0.0.1\nport {port}\ntls_starttls {starttls}\nauth {auth}\n\
                 user {USER}\npassword {PASSWORD}\nfrom {}\n\n",
                prepared.from
            )
        };
        let text = format!(
            "# msmtp configuration for cargo xtask interop\ndefaults\ntls on\ntls_trust_file {}\n\
             domain msmtp.interop.localhost\ntimeout 20\nlogfile {}\n\n{}{}",
            server.ca.display(),
            dir.join("msmtp.log").display(),
            account("starttls", server.port, "on", "plain"),
            account("implicit", server.tls_port, "off", "login"),
        );
        std::fs::write(&path, text)?;
        // msmtp refuses a configuration file with a password that others can read.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        Ok(path)
    })();
    let config = match config {
        Ok(config) => config,
        Err(error) => {
            report.setup_failed(PEER, PEER_TO_OURS, format!("{error:#}"));
            return;
        }
    };
    let full = Envelope {
        from: prepared.from.clone(),
        recipients: prepared.recipients.clone(),
        auth_user: Some(USER.into()),
        tls: true,
    };
    for (account, mechanism, scenario) in [
        (
            "starttls",
            "PLAIN",
            "tls_starttls on, tls_trust_file = test-server's ca.pem, auth plain, message on stdin: the rendered message",
        ),
        (
            "implicit",
            "LOGIN",
            "tls_starttls off (implicit TLS), auth login, message on stdin: the rendered message",
        ),
    ] {
        let result = received(server, || {
            let mut command = Command::new("msmtp");
            command
                .arg("-C")
                .arg(&config)
                .args(["-a", account])
                .args(&prepared.recipients);
            procs::run(&mut command, Some(&prepared.bytes), Duration::from_secs(60))
        })
        .and_then(|(_, stored)| {
            verify(
                server,
                &ctx.fixtures,
                &stored,
                &Want {
                    helo: "msmtp.interop.localhost",
                    envelope: full.clone(),
                    mechanism,
                    exact: Some(&prepared.bytes),
                    subject: "",
                    attachment: false,
                    mail_parameter: None,
                },
            )
        });
        report.add(PEER, PEER_TO_OURS, scenario, result);
    }
}

fn nodemailer(ctx: &Ctx, server: &Server, prepared: &Prepared, report: &mut Report) {
    const PEER: &str = "Nodemailer";
    let dir = match &ctx.tools.node_dir {
        Ok(dir) => dir.clone(),
        Err(why) => {
            report.setup_failed(PEER, PEER_TO_OURS, why);
            return;
        }
    };
    let subject = "Interop Nodemailer: Grüße";
    let recipients = |list: &[&str]| list.iter().map(|r| (*r).to_owned()).collect::<Vec<_>>();
    let cases = [
        (
            serde_json::json!({
                "port": server.port, "requireTLS": true,
                "to": ["Alice <alice@example.com>"], "cc": ["bob@example.com"], "bcc": ["carol@example.com"],
                "subject": subject, "text": ctx.fixtures.body, "attachments": [ctx.fixtures.attachment],
            }),
            "PLAIN",
            false,
            "STARTTLS (requireTLS), AUTH (its choice), To + Cc + Bcc, 8-bit text, attachment",
        ),
        (
            serde_json::json!({
                "port": server.tls_port, "secure": true, "authMethod": "LOGIN",
                "to": ["alice@example.com"], "cc": ["bob@example.com"], "bcc": ["carol@example.com"],
                "raw": prepared.file,
            }),
            "LOGIN",
            true,
            "secure: true (implicit TLS), authMethod LOGIN, raw: the rendered message",
        ),
        (
            serde_json::json!({
                "port": server.port, "requireTLS": true,
                "to": ["alice@example.com"], "cc": ["bob@example.com"], "bcc": ["carol@example.com"],
                "raw": prepared.file,
            }),
            "PLAIN",
            true,
            "STARTTLS (requireTLS), AUTH, raw: the rendered message",
        ),
    ];
    for (index, (mut spec, mechanism, exact, scenario)) in cases.into_iter().enumerate() {
        if let Some(object) = spec.as_object_mut() {
            object.insert("host".into(), "127.0.0.1".into());
            object.insert("ca".into(), serde_json::json!(server.ca));
            object.insert("user".into(), USER.into());
            object.insert("password".into(), PASSWORD.into());
            object.insert("from".into(), "Interop Sender <sender@example.org>".into());
        }
        let result = write_spec(ctx, &format!("nodemailer-{index}.json"), &spec).and_then(|spec| {
            received(server, || {
                procs::run(
                    Command::new("node")
                        .arg(dir.join("client.js"))
                        .arg(&spec)
                        .current_dir(&dir),
                    None,
                    Duration::from_secs(60),
                )
            })
            .and_then(|(_, stored)| {
                verify(
                    server,
                    &ctx.fixtures,
                    &stored,
                    &Want {
                        helo: "nodemailer.interop.localhost",
                        envelope: Envelope {
                            from: "sender@example.org".into(),
                            recipients: recipients(&[
                                "alice@example.com",
                                "bob@example.com",
                                "carol@example.com",
                            ]),
                            auth_user: Some(USER.into()),
                            tls: true,
                        },
                        mechanism,
                        exact: exact.then_some(prepared.bytes.as_slice()),
                        subject,
                        attachment: true,
                        mail_parameter: None,
                    },
                )
            })
        });
        report.add(PEER, PEER_TO_OURS, scenario, result);
    }
}

fn write_spec(ctx: &Ctx, name: &str, spec: &serde_json::Value) -> Result<PathBuf, String> {
    let path: PathBuf = ctx.work.join("fixtures").join(name);
    let text = serde_json::to_vec_pretty(spec).map_err(|error| error.to_string())?;
    mail::write(&path, &text).map_err(|error| format!("{error:#}"))?;
    Ok(path)
}
