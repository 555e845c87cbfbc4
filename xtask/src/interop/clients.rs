//! Real clients against our test-server: swaks, curl, Python's smtplib, msmtp and
//! Nodemailer. One test-server runs with a STARTTLS listener and an implicit-TLS listener
//! and one account; each check reads the message, envelope and transcript it stored.
//!
//! Clients that send a prepared message (swaks `--data`, curl `--upload-file`, msmtp from
//! standard input, Nodemailer `raw`) send the rendering of `crates/message`, and the
//! stored bytes must equal it. Clients that build their own MIME (swaks `--attach`,
//! smtplib, Nodemailer) are checked by parsing: subject, text body and attachment decode
//! to what was given.
//!
//! Each peer only builds its table of [`Case`]s (a command line and what test-server must
//! have stored for it); [`run_case`] runs any of them the same way.

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

impl Prepared {
    /// The envelope test-server must record for the prepared message, sent as [`USER`] over TLS.
    fn envelope(&self) -> Envelope {
        Envelope {
            from: self.from.clone(),
            recipients: self.recipients.clone(),
            auth_user: Some(USER.into()),
            tls: true,
        }
    }
}

/// One check: a real client's command line, and what test-server must have stored for it.
struct Case<'a> {
    scenario: &'static str,
    command: Command,
    /// Standard input (msmtp reads the message there).
    stdin: Option<&'a [u8]>,
    /// A check of the client's own output, beyond what test-server stored.
    output: Option<OutputCheck>,
    want: Want<'a>,
}

/// A check of what a client printed; the error says what is wrong.
type OutputCheck = fn(&Outcome) -> Result<(), String>;

/// What test-server must have stored.
struct Want<'a> {
    envelope: Envelope,
    /// The EHLO name the client was configured to give.
    helo: &'static str,
    mechanism: &'static str,
    /// The exact bytes, for a client that sends a prepared message; `None` for one that
    /// builds its own MIME, checked by parsing instead.
    exact: Option<&'a [u8]>,
    subject: String,
    attachment: bool,
    mail_parameter: Option<&'static str>,
}

/// The peer groups this module runs, with the name their rows carry.
const PEERS: [(&str, &str); 5] = [
    ("swaks", "swaks"),
    ("curl", "curl"),
    ("smtplib", "Python smtplib"),
    ("msmtp", "msmtp"),
    ("nodemailer", "Nodemailer"),
];

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
    for (group, peer) in PEERS {
        if !groups.contains(&group) {
            continue;
        }
        let cases = match group {
            "swaks" => swaks(ctx, &server, &prepared),
            "curl" => curl(ctx, &server, &prepared),
            "smtplib" => smtplib(ctx, &server),
            "msmtp" => msmtp(ctx, &server, &prepared),
            _ => nodemailer(ctx, &server, &prepared),
        };
        match cases {
            Err(why) => report.setup_failed(peer, PEER_TO_OURS, why),
            Ok(cases) => {
                for case in cases {
                    let scenario = case.scenario;
                    let result = run_case(&server, &ctx.fixtures, case);
                    report.add(peer, PEER_TO_OURS, scenario, result);
                }
            }
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
        token_file: None,
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

/// Runs one case: the client must succeed and test-server must have stored exactly one new
/// message, with the envelope, EHLO name, AUTH mechanism and content wanted.
fn run_case(server: &Server, fixtures: &Fixtures, mut case: Case<'_>) -> Result<String, String> {
    let before = mail::stored_names(&server.store).map_err(|error| format!("{error:#}"))?;
    let outcome = procs::run(&mut case.command, case.stdin, Duration::from_secs(60))
        .map_err(|error| format!("{error:#}"))?;
    mail::expect_success(&outcome)?;
    let stored = mail::new_stored(&server.store, &before)?;
    if let Some(check) = case.output {
        check(&outcome)?;
    }
    verify(server, fixtures, &stored, &case.want)
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

/// The common checks: envelope, EHLO name, AUTH mechanism (from the server's transcript), a
/// MAIL FROM parameter, and either exact bytes or the parsed parts.
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
            mail::check_parts(&stored.eml, fixtures, &want.subject, want.attachment)?;
            Ok(if want.attachment {
                "subject, 8-bit body and attachment decode to what was sent".into()
            } else {
                "subject and 8-bit body decode to what was sent".into()
            })
        }
    }
}

/// The prepared message sent as is: the stored bytes must be the rendering.
fn exact<'a>(prepared: &'a Prepared, helo: &'static str, mechanism: &'static str) -> Want<'a> {
    Want {
        envelope: prepared.envelope(),
        helo,
        mechanism,
        exact: Some(&prepared.bytes),
        subject: String::new(),
        attachment: false,
        mail_parameter: None,
    }
}

fn swaks<'a>(ctx: &Ctx, server: &Server, prepared: &'a Prepared) -> Result<Vec<Case<'a>>, String> {
    ctx.tools.apt("swaks")?;
    const HELO: &str = "swaks.interop.localhost";
    let base = |port: u16, args: &[&str]| -> Command {
        let mut command = Command::new("swaks");
        command
            .args(["--server", "127.0.0.1", "--port", &port.to_string()])
            .args(["--helo", HELO, "--timeout", "20"])
            .args(["--tls-verify", "--tls-ca-path"])
            .arg(&server.ca)
            .args(["--auth-user", USER, "--auth-password", PASSWORD])
            .args([
                "--from",
                &prepared.from,
                "--to",
                &prepared.recipients.join(","),
            ])
            .args(args);
        command
    };
    // swaks terminates DATA with "\r\n.\r\n" after the data it is given, so data that
    // already ends in CRLF would arrive with an extra empty line: its --data is the
    // message without the final line break (swaks source: `$n{data} .= "\r\n."`).
    let swaks_file = ctx.work.join("fixtures").join("prepared-for-swaks.eml");
    let trimmed = prepared
        .bytes
        .strip_suffix(b"\r\n")
        .unwrap_or(&prepared.bytes);
    mail::write(&swaks_file, trimmed).map_err(|error| format!("{error:#}"))?;
    let data = format!("@{}", swaks_file.display());
    let subject = "Interop swaks: attachment";
    let header = format!("Subject: {subject}");
    let body = format!("@{}", ctx.fixtures.body_file.display());
    let attach = format!("@{}", ctx.fixtures.attachment.display());
    Ok(vec![
        Case {
            scenario: "--tls (STARTTLS, --tls-verify), --auth PLAIN, 3 recipients, --data: the rendered message (final CRLF left to swaks)",
            command: base(server.port, &["--tls", "--auth", "PLAIN", "--data", &data]),
            stdin: None,
            output: None,
            want: exact(prepared, HELO, "PLAIN"),
        },
        Case {
            scenario: "--tls, --auth LOGIN, --pipeline, --body 8-bit text, --attach binary",
            command: base(
                server.port,
                &[
                    "--tls",
                    "--auth",
                    "LOGIN",
                    "--pipeline",
                    "--header",
                    &header,
                    "--body",
                    &body,
                    "--attach-type",
                    "application/octet-stream",
                    "--attach",
                    &attach,
                ],
            ),
            stdin: None,
            output: Some(swaks_pipelined),
            want: Want {
                exact: None,
                subject: subject.into(),
                attachment: true,
                ..exact(prepared, HELO, "LOGIN")
            },
        },
        Case {
            scenario: "--tls-on-connect (implicit TLS), --auth PLAIN, --data: the rendered message",
            command: base(
                server.tls_port,
                &["--tls-on-connect", "--auth", "PLAIN", "--data", &data],
            ),
            stdin: None,
            output: None,
            want: exact(prepared, HELO, "PLAIN"),
        },
    ])
}

/// With --pipeline swaks writes MAIL and the RCPTs before reading a reply: its log shows the
/// RCPT line right after the MAIL line.
fn swaks_pipelined(outcome: &Outcome) -> Result<(), String> {
    let lines: Vec<&str> = outcome.stdout.lines().collect();
    let mail_at = lines.iter().position(|line| line.contains("MAIL FROM:"));
    let pipelined = mail_at
        .and_then(|at| lines.get(at + 1))
        .is_some_and(|next| next.contains("RCPT TO:"));
    mail::ensure(pipelined, || "swaks did not pipeline MAIL and RCPT".into())
}

fn curl<'a>(ctx: &Ctx, server: &Server, prepared: &'a Prepared) -> Result<Vec<Case<'a>>, String> {
    ctx.tools.apt("curl")?;
    const HELO: &str = "curl.interop.localhost";
    // curl takes the EHLO name from the URL path; without one it appends the upload file's
    // name to the URL and would say "EHLO prepared.eml".
    let base = |scheme: &str, port: u16, args: &[&str]| -> Command {
        let mut command = Command::new("curl");
        command
            .args(["--silent", "--show-error", "--max-time", "30", "--url"])
            .arg(format!("{scheme}://127.0.0.1:{port}/{HELO}"))
            .arg("--cacert")
            .arg(&server.ca)
            .args(["--user", &format!("{USER}:{PASSWORD}")])
            .args(["--mail-from", &prepared.from]);
        for recipient in &prepared.recipients {
            command.args(["--mail-rcpt", recipient]);
        }
        command.arg("--upload-file").arg(&prepared.file).args(args);
        command
    };
    let rows: [(&str, u16, &[&str], &'static str, &'static str); 3] = [
        (
            "smtp",
            server.port,
            &["--ssl-reqd"],
            "PLAIN",
            "smtp:// --ssl-reqd (STARTTLS) --cacert, --user (AUTH PLAIN), 3 recipients, --upload-file: the rendered message",
        ),
        (
            "smtps",
            server.tls_port,
            &[],
            "PLAIN",
            "smtps:// (implicit TLS) --cacert, --user, --upload-file: the rendered message",
        ),
        (
            "smtps",
            server.tls_port,
            &["--login-options", "AUTH=LOGIN"],
            "LOGIN",
            "smtps://, --login-options AUTH=LOGIN, --upload-file: the rendered message",
        ),
    ];
    Ok(rows
        .into_iter()
        .map(|(scheme, port, args, mechanism, scenario)| Case {
            scenario,
            command: base(scheme, port, args),
            stdin: None,
            output: None,
            want: exact(prepared, HELO, mechanism),
        })
        .collect())
}

fn smtplib<'a>(ctx: &Ctx, server: &Server) -> Result<Vec<Case<'a>>, String> {
    let python = ctx.tools.python.clone()?;
    let script = ctx.root.join("xtask/interop/smtplib_client.py");
    // (mode, AUTH mechanism asked for, the one used, To, attachment, scenario)
    let rows = [
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
    let mut cases = Vec::new();
    for (index, (mode, mechanism, used, to, attach, scenario)) in rows.into_iter().enumerate() {
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
        let spec = write_spec(ctx, &format!("smtplib-{index}.json"), &spec)?;
        let mut command = Command::new(&python);
        command.arg(&script).arg(&spec);
        cases.push(Case {
            scenario,
            command,
            stdin: None,
            output: None,
            want: Want {
                envelope: Envelope {
                    from: "sender@example.org".into(),
                    recipients: vec![to.into(), "bob@example.com".into()],
                    auth_user: Some(USER.into()),
                    tls: true,
                },
                helo: "smtplib.interop.localhost",
                mechanism: used,
                exact: None,
                subject,
                attachment: attach,
                mail_parameter: (!to.is_ascii()).then_some("SMTPUTF8"),
            },
        });
    }
    Ok(cases)
}

fn msmtp<'a>(ctx: &Ctx, server: &Server, prepared: &'a Prepared) -> Result<Vec<Case<'a>>, String> {
    ctx.tools.apt("msmtp")?;
    const HELO: &str = "msmtp.interop.localhost";
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
             domain {HELO}\ntimeout 20\nlogfile {}\n\n{}{}",
            server.ca.display(),
            dir.join("msmtp.log").display(),
            account("starttls", server.port, "on", "plain"),
            account("implicit", server.tls_port, "off", "login"),
        );
        std::fs::write(&path, text)?;
        // msmtp refuses a configuration file with a password that others can read.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        Ok(path)
    })()
    .map_err(|error| format!("{error:#}"))?;
    let rows = [
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
    ];
    Ok(rows
        .into_iter()
        .map(|(account, mechanism, scenario)| {
            let mut command = Command::new("msmtp");
            command
                .arg("-C")
                .arg(&config)
                .args(["-a", account])
                .args(&prepared.recipients);
            Case {
                scenario,
                command,
                stdin: Some(prepared.bytes.as_slice()),
                output: None,
                want: exact(prepared, HELO, mechanism),
            }
        })
        .collect())
}

fn nodemailer<'a>(
    ctx: &Ctx,
    server: &Server,
    prepared: &'a Prepared,
) -> Result<Vec<Case<'a>>, String> {
    let dir = ctx.tools.node_dir.clone()?;
    let subject = "Interop Nodemailer: Grüße";
    let rows = [
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
    let mut cases = Vec::new();
    for (index, (mut spec, mechanism, raw, scenario)) in rows.into_iter().enumerate() {
        if let Some(object) = spec.as_object_mut() {
            object.insert("host".into(), "127.0.0.1".into());
            object.insert("ca".into(), serde_json::json!(server.ca));
            object.insert("user".into(), USER.into());
            object.insert("password".into(), PASSWORD.into());
            object.insert("from".into(), "Interop Sender <sender@example.org>".into());
        }
        let spec = write_spec(ctx, &format!("nodemailer-{index}.json"), &spec)?;
        let mut command = Command::new("node");
        command
            .arg(dir.join("client.js"))
            .arg(&spec)
            .current_dir(&dir);
        cases.push(Case {
            scenario,
            command,
            stdin: None,
            output: None,
            want: Want {
                envelope: Envelope {
                    from: "sender@example.org".into(),
                    recipients: ["alice@example.com", "bob@example.com", "carol@example.com"]
                        .map(str::to_owned)
                        .to_vec(),
                    auth_user: Some(USER.into()),
                    tls: true,
                },
                helo: "nodemailer.interop.localhost",
                mechanism,
                exact: raw.then_some(prepared.bytes.as_slice()),
                subject: subject.into(),
                attachment: true,
                mail_parameter: None,
            },
        });
    }
    Ok(cases)
}

fn write_spec(ctx: &Ctx, name: &str, spec: &serde_json::Value) -> Result<PathBuf, String> {
    let path: PathBuf = ctx.work.join("fixtures").join(name);
    let text = serde_json::to_vec_pretty(spec).map_err(|error| error.to_string())?;
    mail::write(&path, &text).map_err(|error| format!("{error:#}"))?;
    Ok(path)
}
