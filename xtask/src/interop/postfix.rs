//! Our clients against Postfix: a private instance in a temporary directory (its own
//! config, queue and data directories, `postfix -c DIR start`), listening on a loopback
//! port with STARTTLS, delivering to Maildirs in the same directory through virtual(8),
//! where the checks read what arrived.
//!
//! The instance lives under /tmp rather than `target/`: Postfix insists on a root-owned
//! queue directory that its own `postfix` user can reach, which every parent of /tmp
//! allows. Its log is copied to `target/interop/run/postfix.log` when it stops.
//!
//! The CHUNKING and DSN checks are in [`extensions`].

mod extensions;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use mail_parser::MessageParser;

use super::mail::{self, Client, Mail, PASSWORD, Send, Tls, USER};
use super::{Ctx, OURS_TO_PEER, Report, procs};
use crate::helpers;

const PEER: &str = "Postfix";
const DOMAIN: &str = "example.net";
const MAILBOXES: &[&str] = &["alice", "bob", "carol"];
/// The Cyrus SASL realm of the account (`smtpd_sasl_local_domain`).
const SASL_REALM: &str = "interop";

/// Runs the Postfix checks.
pub(crate) fn run(ctx: &Ctx, report: &mut Report) {
    let instance = match start(ctx) {
        Ok(instance) => instance,
        Err(error) => {
            report.setup_failed(PEER, OURS_TO_PEER, format!("{error:#}"));
            return;
        }
    };
    let Ok(certs) = &ctx.certs else { return };
    let (port, login) = (instance.port, instance.login_port);
    let scenarios = [
        (Client::Raw, Tls::None, port, None, false, "raw-plain"),
        (Client::Lib, Tls::None, port, None, false, "lib-plain"),
        (
            Client::Raw,
            Tls::Starttls,
            port,
            Some("PLAIN"),
            false,
            "raw-starttls",
        ),
        (
            Client::Lib,
            Tls::Starttls,
            port,
            Some("PLAIN"),
            false,
            "lib-starttls",
        ),
        (
            Client::Raw,
            Tls::Starttls,
            port,
            Some("PLAIN"),
            true,
            "raw-pipelining",
        ),
        (
            Client::Raw,
            Tls::Starttls,
            login,
            Some("LOGIN"),
            false,
            "raw-login",
        ),
        (
            Client::Lib,
            Tls::Starttls,
            login,
            Some("LOGIN"),
            false,
            "lib-login",
        ),
    ];
    for (client, tls, port, mechanism, pipelining, tag) in scenarios {
        let mail = Mail::full(&format!("postfix-{tag}"), DOMAIN);
        let send = Send {
            client,
            port,
            tls,
            ca: &certs.ca,
            password_file: mechanism.map(|_| ctx.fixtures.password_file.as_path()),
            token_file: None,
            pipelining,
            mail: &mail,
        };
        let only_login = if port == login {
            " (only LOGIN offered)"
        } else {
            ""
        };
        let scenario = format!(
            "{}{only_login}: To + Cc + Bcc, attachment, 8-bit body, lines starting with '.'",
            send.label(mechanism.unwrap_or(""))
        );
        let result = check(ctx, &instance, &send, mechanism);
        report.add(PEER, OURS_TO_PEER, scenario, result);
    }
    for pipelining in [false, true] {
        let result = load_check(ctx, &instance, &certs.ca, pipelining);
        let how = if pipelining { " --pipelining" } else { "" };
        report.add(
            PEER,
            OURS_TO_PEER,
            format!(
                "raw-client{how} --repeat {LOAD_REPEAT} --connections {LOAD_CONNECTIONS}, \
                 STARTTLS, AUTH PLAIN: every copy delivered"
            ),
            result,
        );
    }
    for client in [Client::Raw, Client::Lib] {
        let mail = Mail::full(&format!("postfix-{}-wrong-password", client.name()), DOMAIN);
        let send = Send {
            client,
            port: instance.port,
            tls: Tls::Starttls,
            ca: &certs.ca,
            password_file: Some(&ctx.fixtures.wrong_password_file),
            token_file: None,
            pipelining: false,
            mail: &mail,
        };
        let outcome = send.run(&ctx.binaries, &ctx.fixtures);
        let result = match outcome {
            Ok(outcome) if outcome.code() == 77 => Ok(format!(
                "exit 77: {}",
                outcome.stderr.lines().last().unwrap_or("").trim()
            )),
            Ok(outcome) => Err(format!("expected exit 77, got {}", outcome.why())),
            Err(error) => Err(format!("{error:#}")),
        };
        report.add(
            PEER,
            OURS_TO_PEER,
            format!("{}: wrong password → 535, exit 77", send.label("PLAIN")),
            result,
        );
    }
    for (password, tag) in [
        (&ctx.fixtures.password_file, "scram"),
        (&ctx.fixtures.wrong_password_file, "scram-wrong-password"),
    ] {
        let mail = Mail::full(&format!("postfix-raw-{tag}"), DOMAIN);
        let send = Send {
            client: Client::Raw,
            port: instance.port,
            tls: Tls::Starttls,
            ca: &certs.ca,
            password_file: Some(password),
            token_file: None,
            pipelining: false,
            mail: &mail,
        };
        let wrong = tag.ends_with("wrong-password");
        let result = scram_check(ctx, &instance, &send, wrong);
        let scenario = if wrong {
            "raw-client STARTTLS --auth SCRAM-SHA-256, wrong password: 535 after the SCRAM exchange, exit 77"
        } else {
            "raw-client STARTTLS --auth SCRAM-SHA-256 (Cyrus SASL, sasldb): server signature verified, delivered"
        };
        report.add(PEER, OURS_TO_PEER, scenario, result);
    }
    extensions::run(ctx, &instance, &certs.ca, report);
    drop(instance);
}

/// raw-client's SCRAM-SHA-256 against Cyrus SASL: delivered with the right password (the
/// client checked Postfix's server signature, or it would have stopped), exit 77 after the
/// whole exchange with the wrong one.
fn scram_check(
    ctx: &Ctx,
    instance: &Instance,
    send: &Send<'_>,
    wrong: bool,
) -> Result<String, String> {
    let outcome = send
        .run_with(&ctx.binaries, &ctx.fixtures, &["--auth", "SCRAM-SHA-256"])
        .map_err(|error| format!("{error:#}"))?;
    mail::ensure(
        outcome.stdout.contains("C: AUTH SCRAM-SHA-256 <redacted>"),
        || {
            format!(
                "the transcript has no AUTH SCRAM-SHA-256: {}",
                outcome.stdout
            )
        },
    )?;
    // Two challenges: the server-first message, then the server signature (or, with the
    // wrong password, a refusal after the client's proof).
    let challenges = outcome.stdout.matches("S: 334 ").count();
    if wrong {
        mail::ensure(outcome.code() == 77, || {
            format!("expected exit 77, got {}", outcome.why())
        })?;
        mail::ensure(challenges >= 1, || "no SCRAM exchange happened".into())?;
        return Ok(format!(
            "exit 77 after {challenges} challenge(s): {}",
            outcome.stderr.lines().last().unwrap_or("").trim()
        ));
    }
    mail::expect_success(&outcome)?;
    mail::ensure(challenges == 2, || {
        format!("expected the server-first and server-final challenges, saw {challenges}")
    })?;
    instance
        .wait_delivery(MAILBOXES[0], &send.mail.message_id)
        .map_err(|error| format!("{error:#}"))?;
    Ok("2 challenges, server signature verified, delivered".into())
}

/// Messages per connection and connections of the load checks.
const LOAD_REPEAT: usize = 5;
const LOAD_CONNECTIONS: usize = 3;

/// raw-client as a load generator against a real MTA: the event loop's transactions (after
/// each connection's first message) must be accepted and delivered like the first.
fn load_check(
    ctx: &Ctx,
    instance: &Instance,
    ca: &Path,
    pipelining: bool,
) -> Result<String, String> {
    let tag = if pipelining { "pipelining" } else { "lockstep" };
    let mail = Mail::full(&format!("postfix-load-{tag}"), DOMAIN);
    let send = Send {
        client: Client::Raw,
        port: instance.port,
        tls: Tls::Starttls,
        ca,
        password_file: Some(ctx.fixtures.password_file.as_path()),
        token_file: None,
        pipelining,
        mail: &mail,
    };
    let (repeat, connections) = (LOAD_REPEAT.to_string(), LOAD_CONNECTIONS.to_string());
    let outcome = send
        .run_with(
            &ctx.binaries,
            &ctx.fixtures,
            &["--repeat", &repeat, "--connections", &connections],
        )
        .map_err(|error| format!("{error:#}"))?;
    mail::expect_success(&outcome)?;
    let total = LOAD_REPEAT * LOAD_CONNECTIONS;
    let summary = format!("sent {total} messages over {LOAD_CONNECTIONS} connection(s)");
    mail::ensure(outcome.stderr.contains(&summary), || {
        format!(
            "raw-client did not report {summary:?}: {}",
            outcome.stderr.trim()
        )
    })?;
    let reference = send
        .reference(&ctx.fixtures)
        .map_err(|error| format!("{error:#}"))?;
    for mailbox in MAILBOXES {
        let copies = instance
            .wait_deliveries(mailbox, &mail.message_id, total)
            .map_err(|error| format!("{error:#}"))?;
        let exact = copies
            .iter()
            .filter(|copy| lf_to_crlf(copy).ends_with(&reference))
            .count();
        mail::ensure(exact == total, || {
            format!("{mailbox}: {exact} of {total} copies are the rendered message byte for byte")
        })?;
    }
    Ok(format!(
        "{total} copies delivered to each of {} Maildirs, each the rendered message byte for byte after Postfix's trace headers",
        MAILBOXES.len()
    ))
}

fn check(
    ctx: &Ctx,
    instance: &Instance,
    send: &Send<'_>,
    mechanism: Option<&str>,
) -> Result<String, String> {
    let reference = send
        .reference(&ctx.fixtures)
        .map_err(|error| format!("{error:#}"))?;
    let outcome = send
        .run(&ctx.binaries, &ctx.fixtures)
        .map_err(|error| format!("{error:#}"))?;
    mail::expect_success(&outcome)?;
    let tls = send.tls != Tls::None;
    mail::ensure(tls == outcome.stdout.contains("-- TLS established"), || {
        "the transcript does not show the expected TLS state".into()
    })?;
    let auth = mechanism.is_some();
    if let Some(mechanism) = mechanism {
        let line = format!("C: AUTH {mechanism}");
        mail::ensure(outcome.stdout.contains(&line), || {
            format!("the transcript has no {line:?}")
        })?;
    }
    if send.pipelining {
        mail::ensure(outcome.stdout.contains("-- pipelining"), || {
            "raw-client did not pipeline although Postfix offers PIPELINING".into()
        })?;
    }
    let mut exact = 0;
    for mailbox in MAILBOXES {
        let delivered = instance
            .wait_delivery(mailbox, &send.mail.message_id)
            .map_err(|error| format!("{error:#}"))?;
        let subject = &send.mail.subject;
        mail::check_parts(&delivered, &ctx.fixtures, subject, true)
            .map_err(|why| format!("{mailbox}@{DOMAIN}: {why}"))?;
        let parsed = MessageParser::default()
            .parse(&delivered)
            .ok_or("the delivered message does not parse")?;
        let header = |name: &str| -> Vec<String> {
            parsed
                .header_values(name)
                .filter_map(|value| value.as_text().map(str::to_owned))
                .collect()
        };
        let want_path = send.mail.sender();
        mail::ensure(
            header("Return-Path")
                .iter()
                .any(|path| path.contains(&want_path)),
            || {
                format!(
                    "{mailbox}: Return-Path is {:?}, sent MAIL FROM:<{want_path}>",
                    header("Return-Path")
                )
            },
        )?;
        let want_rcpt = format!("{mailbox}@{DOMAIN}");
        mail::ensure(header("Delivered-To").contains(&want_rcpt), || {
            format!("{mailbox}: Delivered-To is {:?}", header("Delivered-To"))
        })?;
        mail::ensure(header("Bcc").is_empty(), || {
            format!("{mailbox}: a Bcc header arrived")
        })?;
        let received = raw_header_lines(&delivered, "Received");
        mail::ensure(tls == received.contains("using TLS"), || {
            format!(
                "{mailbox}: Postfix's Received header does not show the expected TLS state: {received:?}"
            )
        })?;
        mail::ensure(
            auth == received.contains(&format!("Authenticated sender: {USER}")),
            || {
                format!(
                    "{mailbox}: Postfix's Received header does not show the expected AUTH state: {received:?}"
                )
            },
        )?;
        // Maildir files use LF; Postfix prepends Return-Path, Delivered-To and Received.
        // Everything after them should be the rendered message, byte for byte.
        let crlf = lf_to_crlf(&delivered);
        if crlf.ends_with(&reference) {
            exact += 1;
        }
    }
    if exact == MAILBOXES.len() {
        Ok(format!(
            "delivered to {} Maildirs; each is the rendered message byte for byte after the trace headers Postfix prepends",
            MAILBOXES.len()
        ))
    } else {
        Ok(format!(
            "delivered to {} Maildirs with body and attachment intact; Postfix changed some header bytes",
            MAILBOXES.len()
        ))
    }
}

/// The unfolded text of every `name:` header line in the raw header section.
fn raw_header_lines(message: &[u8], name: &str) -> String {
    let text = String::from_utf8_lossy(message);
    let head = text.split("\n\n").next().unwrap_or("");
    let mut out = String::new();
    let mut inside = false;
    for line in head.lines() {
        if line.starts_with(' ') || line.starts_with('\t') {
            if inside {
                out.push_str(line.trim_end());
            }
            continue;
        }
        inside = line
            .split_once(':')
            .is_some_and(|(field, _)| field.eq_ignore_ascii_case(name));
        if inside {
            out.push('\n');
            out.push_str(line.trim_end());
        }
    }
    out
}

/// The header fields Postfix prepends to a delivered message: smtpd's Received, and
/// virtual(8)'s Return-Path, Delivered-To and, when the original recipient is known (from
/// a DSN ORCPT), X-Original-To.
const PREPENDED: [&str; 4] = ["Return-Path", "X-Original-To", "Delivered-To", "Received"];

/// A delivered message without the fields Postfix prepended: the [`PREPENDED`] fields at the
/// top, each with its folded lines, and nothing after the first other field.
fn without_prepended(message: &[u8]) -> &[u8] {
    let mut rest = message;
    loop {
        let prepended = PREPENDED.iter().any(|name| {
            rest.len() > name.len()
                && rest[..name.len()].eq_ignore_ascii_case(name.as_bytes())
                && rest[name.len()] == b':'
        });
        if !prepended {
            return rest;
        }
        // The field's first line, then its continuation lines (starting with a space or tab).
        loop {
            match rest.iter().position(|&byte| byte == b'\n') {
                Some(end) => rest = &rest[end + 1..],
                None => return &[],
            }
            if !matches!(rest.first(), Some(b' ' | b'\t')) {
                break;
            }
        }
    }
}

/// The names of the fields [`without_prepended`] strips from a delivered message, in order.
fn prepended_names(message: &[u8]) -> Vec<String> {
    let stripped = &message[..message.len() - without_prepended(message).len()];
    String::from_utf8_lossy(stripped)
        .lines()
        .filter(|line| !line.starts_with([' ', '\t']))
        .filter_map(|line| line.split_once(':').map(|(name, _)| name.to_owned()))
        .collect()
}

fn lf_to_crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 40);
    for &byte in bytes {
        if byte == b'\n' && out.last() != Some(&b'\r') {
            out.push(b'\r');
        }
        out.push(byte);
    }
    out
}

/// The running instance; dropping it runs `postfix stop`, makes sure the master process
/// (by the PID in its pid file) is gone, keeps the log in the run directory and removes
/// the temporary directory.
struct Instance {
    dir: PathBuf,
    port: u16,
    /// An smtpd that offers only AUTH LOGIN.
    login_port: u16,
    /// Where the instance's log is copied when it stops.
    keep_log: Option<PathBuf>,
}

fn start(ctx: &Ctx) -> Result<Instance> {
    ctx.tools.apt("postfix").map_err(anyhow::Error::msg)?;
    let certs = ctx
        .certs
        .as_ref()
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let uid = procs::output(Command::new("id").arg("-u"))?;
    if uid.trim() != "0" {
        bail!("a private Postfix instance must be started as root (postfix start); run as root");
    }
    stop_leftovers();
    let (port, login_port) = (procs::free_port()?, procs::free_port()?);
    // /tmp rather than $TMPDIR: the postfix user must be able to reach every parent.
    let dir = Path::new(TMP).join(format!("{PREFIX}{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    let instance = Instance {
        dir: dir.clone(),
        port,
        login_port,
        keep_log: Some(ctx.work.join("postfix.log")),
    };
    for sub in ["", "etc", "spool", "data", "mail", "tls"] {
        let path = dir.join(sub);
        std::fs::create_dir_all(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    let uid = procs::output(Command::new("id").args(["-u", "postfix"]))
        .context("the postfix user does not exist (is the postfix package installed?)")?;
    let gid = procs::output(Command::new("id").args(["-g", "postfix"]))?;
    let (uid, gid): (u32, u32) = (uid.trim().parse()?, gid.trim().parse()?);
    for sub in ["data", "mail"] {
        std::os::unix::fs::chown(dir.join(sub), Some(uid), Some(gid))?;
    }
    // Postfix reads the key as root before dropping privileges; a private copy keeps the
    // rest of the run's files out of its way.
    std::fs::copy(&certs.cert, dir.join("tls/server.pem"))?;
    std::fs::copy(&certs.key, dir.join("tls/server.key"))?;
    std::fs::set_permissions(
        dir.join("tls/server.key"),
        std::fs::Permissions::from_mode(0o600),
    )?;

    // AUTH through Cyrus SASL: PLAIN and LOGIN checked against a sasldb of our own. The
    // smtpd.conf goes in $config_directory/sasl, where Debian's Postfix looks for it
    // (cyrus_sasl_config_path points there too, for builds that honour it).
    let sasl = dir.join("etc/sasl");
    std::fs::create_dir_all(&sasl)?;
    std::fs::set_permissions(&sasl, std::fs::Permissions::from_mode(0o755))?;
    let sasldb = sasl.join("sasldb2");
    // smtpd.conf for the main smtpd; smtpd-login.conf (smtpd_sasl_path in master.cf) for the
    // one that offers only LOGIN.
    // SCRAM-SHA-256 is offered too (after PLAIN, which both clients still choose by
    // default): Cyrus computes it from the sasldb password.
    for (name, mechanisms) in [
        ("smtpd", "PLAIN LOGIN SCRAM-SHA-256"),
        ("smtpd-login", "LOGIN"),
    ] {
        std::fs::write(
            sasl.join(format!("{name}.conf")),
            format!(
                "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: {mechanisms}\nsasldb_path: {}\n",
                sasldb.display()
            ),
        )?;
    }
    let outcome = procs::run(
        Command::new("saslpasswd2")
            .arg("-f")
            .arg(&sasldb)
            .args(["-p", "-c", "-u", SASL_REALM, USER]),
        Some(PASSWORD.as_bytes()),
        Duration::from_secs(30),
    )
    .context("running saslpasswd2 (package sasl2-bin)")?;
    if !outcome.success() {
        bail!(
            "saslpasswd2 could not create the account: {}",
            outcome.why()
        );
    }
    std::os::unix::fs::chown(&sasldb, Some(uid), Some(gid))?;
    std::fs::set_permissions(&sasldb, std::fs::Permissions::from_mode(0o600))?;

    std::fs::write(dir.join("etc/master.cf"), master_cf(port, login_port)?)?;
    std::fs::write(dir.join("etc/main.cf"), main_cf(&dir, uid, gid)?)?;

    let postfix = |action: &str| -> Result<()> {
        let command = format!("postfix -c {} {action}", dir.join("etc").display());
        let outcome = procs::run(
            Command::new("sh").args(["-c", &command]),
            None,
            Duration::from_secs(60),
        )?;
        if outcome.success() {
            return Ok(());
        }
        // The postfix command prints its errors only to a terminal (else to the log it may
        // not have opened yet): ask again under script(1) to show why.
        let why = procs::run(
            Command::new("script").args(["-qec", &command, "/dev/null"]),
            None,
            Duration::from_secs(60),
        )
        .map(|again| again.stdout.trim().to_owned())
        .unwrap_or_default();
        bail!(
            "{command} failed ({}): {why}; the instance log ends:\n{}",
            outcome.why(),
            procs::log_tail(&dir.join("postfix.log"))
        );
    };
    postfix("check")?;
    postfix("start")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(procs::accepts(port) && procs::accepts(login_port)) {
        if Instant::now() > deadline {
            bail!(
                "Postfix did not listen on 127.0.0.1:{port} and :{login_port} within 30 s; its log ends:\n{}",
                procs::log_tail(&dir.join("postfix.log"))
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(instance)
}

const TMP: &str = "/tmp";
const PREFIX: &str = "smtp-workbench-postfix-";

/// Stops and removes instances left by an earlier run that was killed before its guard
/// ran (their xtask, whose PID names the directory, is gone).
fn stop_leftovers() {
    let Ok(entries) = std::fs::read_dir(TMP) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(owner) = name.strip_prefix(PREFIX) else {
            continue;
        };
        if owner == std::process::id().to_string() || Path::new("/proc").join(owner).exists() {
            continue;
        }
        println!("interop: stopping the Postfix instance left in {TMP}/{name}");
        drop(Instance {
            dir: entry.path(),
            port: 0,
            login_port: 0,
            keep_log: None,
        });
    }
}

/// `xtask/interop/postfix/master.cf` with the two smtpd services on these loopback ports.
fn master_cf(port: u16, login_port: u16) -> Result<String> {
    helpers::render(
        "interop/postfix/master.cf",
        &[
            ("LISTEN", &format!("127.0.0.1:{port}")),
            ("LISTEN_LOGIN", &format!("127.0.0.1:{login_port}")),
        ],
    )
}

/// `xtask/interop/postfix/main.cf` for the instance in `dir`, delivering as `uid`:`gid`.
fn main_cf(dir: &Path, uid: u32, gid: u32) -> Result<String> {
    let dir = dir.display().to_string();
    let (uid, gid) = (uid.to_string(), gid.to_string());
    helpers::render(
        "interop/postfix/main.cf",
        &[
            ("DIR", &dir),
            ("UID", &uid),
            ("GID", &gid),
            ("DOMAIN", DOMAIN),
            ("SASL_REALM", SASL_REALM),
        ],
    )
}

impl Instance {
    /// The delivered message with this Message-ID in the mailbox's Maildir.
    fn wait_delivery(&self, mailbox: &str, message_id: &str) -> Result<Vec<u8>> {
        let mut found = self.wait_deliveries(mailbox, message_id, 1)?;
        Ok(found.swap_remove(0))
    }

    /// At least `count` delivered messages with this Message-ID in the mailbox's Maildir.
    fn wait_deliveries(
        &self,
        mailbox: &str,
        message_id: &str,
        count: usize,
    ) -> Result<Vec<Vec<u8>>> {
        let new = self.dir.join("mail").join(mailbox).join("new");
        let needle = format!("Message-ID: <{message_id}>");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut found = Vec::new();
            if let Ok(entries) = std::fs::read_dir(&new) {
                for entry in entries.flatten() {
                    let bytes = std::fs::read(entry.path())?;
                    if String::from_utf8_lossy(&bytes).contains(&needle) {
                        found.push(bytes);
                    }
                }
            }
            if found.len() >= count {
                return Ok(found);
            }
            if Instant::now() > deadline {
                bail!(
                    "{} of {count} messages with {needle} were delivered to {mailbox}@{DOMAIN} within 30 s; the Postfix log ends:\n{}",
                    found.len(),
                    procs::log_tail(&self.dir.join("postfix.log"))
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn master_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("spool/pid/master.pid"))
            .ok()
            .and_then(|text| text.trim().parse().ok())
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let pid = self.master_pid();
        let _ = procs::run(
            Command::new("postfix")
                .arg("-c")
                .arg(self.dir.join("etc"))
                .arg("stop"),
            None,
            Duration::from_secs(60),
        );
        if let Some(pid) = pid {
            // Ours while it runs in our queue directory (the master's working directory), so
            // a stale pid file whose number was reused never gets another process killed.
            let spool = self.dir.join("spool");
            let alive =
                || std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == spool);
            let deadline = Instant::now() + Duration::from_secs(10);
            while alive() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            if alive() {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
        if let Some(keep_log) = &self.keep_log {
            let _ = std::fs::copy(self.dir.join("postfix.log"), keep_log);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_postfix_templates_are_filled_completely() -> Result<()> {
        let main = main_cf(Path::new("/tmp/smtp-workbench-postfix-7"), 101, 102)?;
        assert!(main.contains(
            "\nvirtual_mailbox_maps = inline:{ alice@example.net=alice/, bob@example.net=bob/, carol@example.net=carol/, sender@example.net=sender/ }\n"
        ));
        assert!(main.contains("\nqueue_directory = /tmp/smtp-workbench-postfix-7/spool\n"));
        assert!(main.contains("\nvirtual_uid_maps = static:101\nvirtual_gid_maps = static:102\n"));
        assert!(main.contains("\nsmtpd_sasl_local_domain = interop\n"));
        let master = master_cf(2525, 2526)?;
        assert!(master.contains("\n127.0.0.1:2525    inet  n"));
        assert!(master.contains("\n127.0.0.1:2526 inet n"));
        for text in [&main, &master] {
            assert!(!text.contains("@DIR@") && !text.contains("@LISTEN"));
        }
        Ok(())
    }

    #[test]
    fn only_the_prepended_trace_fields_are_stripped() {
        let delivered = b"Return-Path: <a@example.org>\nDelivered-To: b@example.net\n\
Received: from client (localhost [127.0.0.1])\n\tby postfix (Postfix) with ESMTPSA id X\n\
\tfor <b@example.net>; Mon, 23 Nov 2026 12:00:00 +0000 (UTC)\n\
Date: Mon, 23 Nov 2026 12:00:00 +0000\nReceived: kept, it came with the message\n\nbody\n";
        assert_eq!(
            without_prepended(delivered),
            b"Date: Mon, 23 Nov 2026 12:00:00 +0000\nReceived: kept, it came with the message\n\nbody\n"
        );
        assert_eq!(
            without_prepended(b"Subject: x\n\nbody\n"),
            b"Subject: x\n\nbody\n"
        );
        assert_eq!(without_prepended(b"Received: cut"), b"");
        // A field whose name only starts like one of them is the message's own.
        assert_eq!(
            without_prepended(b"Received-SPF: pass\n"),
            b"Received-SPF: pass\n"
        );
    }

    #[test]
    fn maildir_line_endings_become_crlf_once() {
        assert_eq!(lf_to_crlf(b"a\nb\r\nc\n"), b"a\r\nb\r\nc\r\n");
        assert_eq!(lf_to_crlf(b""), b"");
    }

    #[test]
    fn header_lines_are_unfolded_and_matched_by_name() {
        let message = b"Return-Path: <a@example.org>\nReceived: from x\n\tby y (using TLSv1.3)\n\
Received: from z\nSubject: Received: no\n\nReceived: in the body\n";
        let received = raw_header_lines(message, "received");
        assert_eq!(
            received,
            "\nReceived: from x\tby y (using TLSv1.3)\nReceived: from z"
        );
    }
}
