//! What is sent and how arrivals are checked: the fixtures (a body with 8-bit text and
//! lines starting with '.', a binary attachment), the reference rendering by
//! `crates/message` (through `crates/cli`, exactly as both clients build it), our clients'
//! command lines, and the comparisons of what a peer stored.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow};
use clap::Parser as _;
use mail_parser::{MessageParser, MimeHeaders as _};

use super::procs;

/// The Date every message carries, so renderings are reproducible.
pub(crate) const DATE: &str = "Mon, 23 Nov 2026 12:00:00 +0000";
/// The account every AUTH-capable peer accepts.
pub(crate) const USER: &str = "alice";
/// Its password (a test credential, on loopback only).
pub(crate) const PASSWORD: &str = "interop-s3cret";
/// Its OAuth 2.0 access token, for the peers that take XOAUTH2 (a test value).
pub(crate) const TOKEN: &str = "ya29.interop-token";
/// The EHLO name our clients give.
pub(crate) const HELO: &str = "client.interop.localhost";

/// The body: 8-bit UTF-8, a line starting with '.', a line that is only '.', and a line
/// starting with two dots. Each must arrive exactly once and unchanged (RFC 5321 §4.5.2).
const BODY: &str = "Grüße from cargo xtask interop: 8-bit UTF-8 (café, naïve, 日本語, 📬).\n\
.This line starts with a dot and must arrive with exactly one.\n\
.\n\
The line above is a lone dot; it must not end the message.\n\
..This one starts with two dots.\n\
Last line.\n";

/// Files every check uses, written once per run.
pub(crate) struct Fixtures {
    /// The body as a file (LF line endings, as a user would write it).
    pub(crate) body_file: PathBuf,
    /// The body text.
    pub(crate) body: String,
    /// A binary attachment with every byte value.
    pub(crate) attachment: PathBuf,
    /// Its bytes.
    pub(crate) attachment_bytes: Vec<u8>,
    /// A file holding [`PASSWORD`].
    pub(crate) password_file: PathBuf,
    /// A file holding a wrong password.
    pub(crate) wrong_password_file: PathBuf,
    /// The OAuth 2.0 token [`TOKEN`], and one no server accepts.
    pub(crate) token_file: PathBuf,
    pub(crate) wrong_token_file: PathBuf,
}

impl Fixtures {
    /// Writes the fixtures into `dir`.
    pub(crate) fn write(dir: &Path) -> Result<Fixtures> {
        std::fs::create_dir_all(dir)?;
        let body_file = dir.join("body.txt");
        std::fs::write(&body_file, BODY)?;
        let attachment = dir.join("interop-sample.bin");
        let attachment_bytes: Vec<u8> = (0..5000u32)
            .map(|i| (i.wrapping_mul(7).wrapping_add(i / 256) % 256) as u8)
            .collect();
        std::fs::write(&attachment, &attachment_bytes)?;
        let password_file = dir.join("password");
        std::fs::write(&password_file, format!("{PASSWORD}\n"))?;
        let wrong_password_file = dir.join("wrong-password");
        std::fs::write(&wrong_password_file, "not-the-password\n")?;
        let token_file = dir.join("token");
        std::fs::write(&token_file, format!("{TOKEN}\n"))?;
        let wrong_token_file = dir.join("wrong-token");
        std::fs::write(&wrong_token_file, "expired-token\n")?;
        for file in [
            &password_file,
            &wrong_password_file,
            &token_file,
            &wrong_token_file,
        ] {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(Fixtures {
            body_file,
            body: BODY.to_owned(),
            attachment,
            attachment_bytes,
            password_file,
            wrong_password_file,
            token_file,
            wrong_token_file,
        })
    }
}

/// One of our two clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Client {
    /// `raw-client`: SMTP by hand.
    Raw,
    /// `lib-client`: lettre.
    Lib,
}

impl Client {
    /// The binary name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Client::Raw => "raw-client",
            Client::Lib => "lib-client",
        }
    }
}

/// A message: headers and envelope. The body is always the fixture body.
#[derive(Debug, Clone)]
pub(crate) struct Mail {
    pub(crate) from: String,
    pub(crate) to: Vec<String>,
    pub(crate) cc: Vec<String>,
    pub(crate) bcc: Vec<String>,
    pub(crate) subject: String,
    pub(crate) attach: bool,
    pub(crate) message_id: String,
}

impl Mail {
    /// From sender@example.org to alice (To), bob (Cc) and carol (Bcc) at `domain`, with
    /// the attachment; `tag` makes the Message-ID unique.
    pub(crate) fn full(tag: &str, domain: &str) -> Mail {
        Mail {
            from: "Interop Sender <sender@example.org>".into(),
            to: vec![format!("Alice <alice@{domain}>")],
            cc: vec![format!("bob@{domain}")],
            bcc: vec![format!("carol@{domain}")],
            subject: format!("Interop {tag}: Grüße, attachment and dots"),
            attach: true,
            message_id: format!("{tag}@interop.smtp-workbench.example"),
        }
    }

    /// The envelope recipients, in the order the clients send them.
    pub(crate) fn recipients(&self) -> Vec<String> {
        self.to
            .iter()
            .chain(&self.cc)
            .chain(&self.bcc)
            .map(|mailbox| bare_address(mailbox))
            .collect()
    }

    /// The envelope sender.
    pub(crate) fn sender(&self) -> String {
        bare_address(&self.from)
    }
}

/// `Name <addr>` → `addr`.
pub(crate) fn bare_address(mailbox: &str) -> String {
    match (mailbox.rfind('<'), mailbox.rfind('>')) {
        (Some(start), Some(end)) if start < end => mailbox[start + 1..end].to_owned(),
        _ => mailbox.trim().to_owned(),
    }
}

/// TLS mode for our clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tls {
    None,
    Starttls,
    Implicit,
}

/// One run of one of our clients.
pub(crate) struct Send<'a> {
    pub(crate) client: Client,
    pub(crate) port: u16,
    pub(crate) tls: Tls,
    /// The CA file that signed the peer's certificate.
    pub(crate) ca: &'a Path,
    /// The password file, when authenticating as [`USER`].
    pub(crate) password_file: Option<&'a Path>,
    /// An OAuth 2.0 token file instead, for `--auth XOAUTH2` as [`USER`].
    pub(crate) token_file: Option<&'a Path>,
    /// raw-client's `--pipelining`.
    pub(crate) pipelining: bool,
    pub(crate) mail: &'a Mail,
}

impl Send<'_> {
    /// The shared options (everything but raw-client's `--pipelining`).
    pub(crate) fn options(&self, fixtures: &Fixtures) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "--server".into(),
            format!("127.0.0.1:{}", self.port),
            "--tls".into(),
            match self.tls {
                Tls::None => "none",
                Tls::Starttls => "starttls",
                Tls::Implicit => "implicit",
            }
            .into(),
            "--ca-file".into(),
            self.ca.display().to_string(),
            "--helo-name".into(),
            HELO.into(),
            "--timeout".into(),
            "20s".into(),
            "--from".into(),
            self.mail.from.clone(),
        ];
        if let Some(password_file) = self.password_file {
            args.extend([
                "--user".into(),
                USER.into(),
                "--password-file".into(),
                password_file.display().to_string(),
            ]);
        }
        if let Some(token_file) = self.token_file {
            args.extend([
                "--user".into(),
                USER.into(),
                "--auth".into(),
                "XOAUTH2".into(),
                "--oauth2-token-file".into(),
                token_file.display().to_string(),
            ]);
        }
        for (flag, list) in [
            ("--to", &self.mail.to),
            ("--cc", &self.mail.cc),
            ("--bcc", &self.mail.bcc),
        ] {
            for mailbox in list {
                args.extend([flag.into(), mailbox.clone()]);
            }
        }
        args.extend([
            "--subject".into(),
            self.mail.subject.clone(),
            "--body-file".into(),
            fixtures.body_file.display().to_string(),
            "--date".into(),
            DATE.into(),
            "--message-id".into(),
            self.mail.message_id.clone(),
        ]);
        if self.mail.attach {
            args.extend(["--attach".into(), fixtures.attachment.display().to_string()]);
        }
        args
    }

    /// Runs the client; the transcript is on standard output.
    pub(crate) fn run(&self, binaries: &Path, fixtures: &Fixtures) -> Result<procs::Outcome> {
        self.run_with(binaries, fixtures, &[])
    }

    /// Like [`Send::run`], with more options (raw-client's `--repeat`, `--connections`).
    pub(crate) fn run_with(
        &self,
        binaries: &Path,
        fixtures: &Fixtures,
        extra: &[&str],
    ) -> Result<procs::Outcome> {
        let mut args = self.options(fixtures);
        if self.pipelining {
            args.push("--pipelining".into());
        }
        args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        let mut command = Command::new(binaries.join(self.client.name()));
        command.args(&args);
        for var in [
            "SMTP_SERVER",
            "SMTP_TLS",
            "SMTP_CA_FILE",
            "SMTP_HELO_NAME",
            "SMTP_USER",
            "SMTP_PASSWORD",
            "SMTP_FROM",
        ] {
            command.env_remove(var);
        }
        procs::run(&mut command, None, Duration::from_secs(60))
    }

    /// The bytes both clients send for these options, rendered by `crates/message` through
    /// the same `cli::Plan` the clients build.
    pub(crate) fn reference(&self, fixtures: &Fixtures) -> Result<Vec<u8>> {
        render(&self.options(fixtures))
    }

    /// A short label: client, TLS, AUTH (with the mechanism expected), pipelining.
    pub(crate) fn label(&self, mechanism: &str) -> String {
        let mut parts = vec![self.client.name().to_owned()];
        parts.push(
            match self.tls {
                Tls::None => "plaintext",
                Tls::Starttls => "STARTTLS",
                Tls::Implicit => "implicit TLS",
            }
            .to_owned(),
        );
        if self.password_file.is_some() {
            parts.push(format!("AUTH {mechanism}").trim_end().to_owned());
        }
        if self.pipelining {
            parts.push("--pipelining".into());
        }
        parts.join(", ")
    }
}

#[derive(clap::Parser)]
#[command(name = "reference")]
struct ReferenceArgs {
    #[command(flatten)]
    options: cli::Options,
}

/// Renders the message the clients would send for these shared options.
pub(crate) fn render(args: &[String]) -> Result<Vec<u8>> {
    let parsed = ReferenceArgs::try_parse_from(
        std::iter::once("reference".to_owned()).chain(args.iter().cloned()),
    )
    .map_err(|error| anyhow!("reference options: {error}"))?;
    let plan = cli::Plan::from_options(&parsed.options, &mut |_| {})
        .map_err(|failure| anyhow!("reference job: {failure}"))?;
    plan.message
        .to_bytes()
        .map_err(|error| anyhow!("rendering the reference: {error}"))
}

/// A message a peer stored, with the metadata it wrote beside it.
pub(crate) struct Stored {
    /// The `.eml` file name.
    pub(crate) name: String,
    /// The stored bytes.
    pub(crate) eml: Vec<u8>,
    /// The `.json` beside it.
    pub(crate) meta: serde_json::Value,
}

/// The `.eml` files in `dir` now.
pub(crate) fn stored_names(dir: &Path) -> Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".eml") && !name.starts_with('.') {
            names.insert(name);
        }
    }
    Ok(names)
}

/// The one message stored in `dir` since `before` was taken (waiting briefly for it).
pub(crate) fn new_stored(dir: &Path, before: &BTreeSet<String>) -> Result<Stored, String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = stored_names(dir).map_err(|error| format!("{error:#}"))?;
        let new: Vec<&String> = now.difference(before).collect();
        match new.as_slice() {
            [] if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            [] => return Err("the peer stored no message".into()),
            [name] => {
                let eml =
                    std::fs::read(dir.join(name)).map_err(|error| format!("{name}: {error}"))?;
                let json_path = dir.join(name.replace(".eml", ".json"));
                let meta = std::fs::read(&json_path)
                    .map_err(|error| format!("{}: {error}", json_path.display()))
                    .and_then(|bytes| {
                        serde_json::from_slice(&bytes)
                            .map_err(|error| format!("{}: {error}", json_path.display()))
                    })?;
                return Ok(Stored {
                    name: (*name).clone(),
                    eml,
                    meta,
                });
            }
            more => {
                return Err(format!(
                    "the peer stored {} messages, expected one",
                    more.len()
                ));
            }
        }
    }
}

/// Exact comparison; the error names the first differing offset with context.
pub(crate) fn same_bytes(got: &[u8], want: &[u8]) -> Result<(), String> {
    if got == want {
        return Ok(());
    }
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let show = |bytes: &[u8]| {
        let start = at.saturating_sub(20);
        let end = (at + 20).min(bytes.len());
        format!("{:?}", String::from_utf8_lossy(&bytes[start.min(end)..end]))
    };
    Err(format!(
        "stored {} bytes, rendered {}; first difference at byte {at}: stored {} vs rendered {}",
        got.len(),
        want.len(),
        show(got),
        show(want)
    ))
}

/// Parses a message and checks the text body is the fixture body (line endings aside), the
/// attachment (if expected) decodes to the fixture bytes, and the subject decodes to
/// `subject`.
pub(crate) fn check_parts(
    raw: &[u8],
    fixtures: &Fixtures,
    subject: &str,
    attachment: bool,
) -> Result<(), String> {
    let message = MessageParser::default()
        .parse(raw)
        .ok_or("the stored message does not parse as RFC 5322")?;
    let got_subject = message.subject().unwrap_or_default();
    if got_subject != subject {
        return Err(format!(
            "subject decodes to {got_subject:?}, sent {subject:?}"
        ));
    }
    let text = message
        .body_text(0)
        .ok_or("the stored message has no text body")?;
    let normalize = |text: &str| text.replace("\r\n", "\n").trim_end().to_owned();
    if normalize(&text) != normalize(&fixtures.body) {
        return Err(format!(
            "the text body differs: got {:?}",
            normalize(&text).chars().take(120).collect::<String>()
        ));
    }
    let attachments: Vec<_> = message.attachments().collect();
    match (attachment, attachments.as_slice()) {
        (false, []) => Ok(()),
        (false, more) => Err(format!("{} unexpected attachments", more.len())),
        (true, [part]) => {
            let name = part.attachment_name().unwrap_or_default();
            let want_name = fixtures
                .attachment
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name != want_name {
                return Err(format!("attachment named {name:?}, sent {want_name:?}"));
            }
            if part.contents() != fixtures.attachment_bytes.as_slice() {
                return Err(format!(
                    "the attachment decodes to {} bytes that differ from the {} sent",
                    part.contents().len(),
                    fixtures.attachment_bytes.len()
                ));
            }
            Ok(())
        }
        (true, other) => Err(format!("{} attachments, expected 1", other.len())),
    }
}

/// The envelope a peer recorded, in common terms.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Envelope {
    pub(crate) from: String,
    pub(crate) recipients: Vec<String>,
    pub(crate) auth_user: Option<String>,
    pub(crate) tls: bool,
}

/// Compares a recorded envelope with the expected one.
pub(crate) fn check_envelope(got: &Envelope, want: &Envelope) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("envelope {got:?}, expected {want:?}"))
    }
}

/// A string field of a JSON object.
pub(crate) fn json_str(meta: &serde_json::Value, key: &str) -> Option<String> {
    meta.get(key)
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
}

/// A list-of-strings field of a JSON object.
pub(crate) fn json_strs(meta: &serde_json::Value, key: &str) -> Vec<String> {
    meta.get(key)
        .and_then(serde_json::Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A boolean field of a JSON object.
pub(crate) fn json_bool(meta: &serde_json::Value, key: &str) -> bool {
    meta.get(key)
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false)
}

/// Fails unless the outcome is a success.
pub(crate) fn expect_success(outcome: &procs::Outcome) -> Result<(), String> {
    if outcome.success() {
        Ok(())
    } else {
        Err(outcome.why())
    }
}

/// Writes bytes, for fixtures derived during the run.
pub(crate) fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Fails with the message unless `condition`.
pub(crate) fn ensure(condition: bool, message: impl FnOnce() -> String) -> Result<(), String> {
    if condition { Ok(()) } else { Err(message()) }
}

/// Sends with one of our clients to a peer that stores exactly what it received in
/// `store`, and checks: the client succeeded, the stored bytes equal the reference
/// rendering, the recorded envelope (converted by `envelope`) is `want`, and `extra` holds
/// for the transcript and what was stored. Returns a note for the report.
pub(crate) fn send_exact(
    binaries: &Path,
    fixtures: &Fixtures,
    store: &Path,
    send: &Send<'_>,
    want: &Envelope,
    envelope: fn(&serde_json::Value) -> Envelope,
    extra: &dyn Fn(&procs::Outcome, &Stored) -> Result<(), String>,
) -> Result<String, String> {
    let reference = send
        .reference(fixtures)
        .map_err(|error| format!("{error:#}"))?;
    let before = stored_names(store).map_err(|error| format!("{error:#}"))?;
    let outcome = send
        .run(binaries, fixtures)
        .map_err(|error| format!("{error:#}"))?;
    expect_success(&outcome)?;
    let stored = new_stored(store, &before)?;
    same_bytes(&stored.eml, &reference)?;
    check_envelope(&envelope(&stored.meta), want)?;
    extra(&outcome, &stored)?;
    Ok(format!(
        "{} bytes stored, identical to the rendering",
        stored.eml.len()
    ))
}

/// Sends with one of our clients and expects it to fail with exit code `code`, with
/// nothing stored.
pub(crate) fn send_refused(
    binaries: &Path,
    fixtures: &Fixtures,
    store: &Path,
    send: &Send<'_>,
    code: i32,
) -> Result<String, String> {
    let before = stored_names(store).map_err(|error| format!("{error:#}"))?;
    let outcome = send
        .run(binaries, fixtures)
        .map_err(|error| format!("{error:#}"))?;
    let after = stored_names(store).map_err(|error| format!("{error:#}"))?;
    ensure(after == before, || "the peer stored a message".into())?;
    if outcome.code() == code {
        let reason = outcome
            .stderr
            .lines()
            .last()
            .unwrap_or("")
            .trim()
            .to_owned();
        Ok(format!("exit {code}: {reason}"))
    } else {
        Err(format!("expected exit {code}, got {}", outcome.why()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fixtures in a temporary directory, removed when dropped.
    struct Temp(Fixtures, PathBuf);

    impl Drop for Temp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.1);
        }
    }

    fn fixtures(name: &str) -> Temp {
        let dir =
            std::env::temp_dir().join(format!("xtask-interop-test-{name}-{}", std::process::id()));
        Temp(Fixtures::write(&dir).expect("fixtures"), dir)
    }

    fn send<'a>(mail: &'a Mail, ca: &'a Path) -> Send<'a> {
        Send {
            client: Client::Raw,
            port: 2525,
            tls: Tls::Starttls,
            ca,
            password_file: None,
            token_file: None,
            pipelining: false,
            mail,
        }
    }

    #[test]
    fn the_reference_rendering_parses_back_to_the_fixtures() {
        let temp = fixtures("parse");
        let fixtures = &temp.0;
        let mail = Mail::full("unit", "example.net");
        let reference = send(&mail, &fixtures.body_file)
            .reference(fixtures)
            .expect("renders");
        assert!(reference.ends_with(b"\r\n"));
        check_parts(&reference, fixtures, &mail.subject, true).expect("parts");
        // A flipped byte in the base64 of the attachment is caught.
        let text = String::from_utf8(reference.clone()).expect("utf-8");
        let at = text.rfind("\r\n--").expect("closing boundary") - 10;
        let mut corrupted = reference.clone();
        corrupted[at] = if corrupted[at] == b'A' { b'B' } else { b'A' };
        assert!(check_parts(&corrupted, fixtures, &mail.subject, true).is_err());
        assert!(check_parts(&reference, fixtures, "another subject", true).is_err());
        assert!(check_parts(&reference, fixtures, &mail.subject, false).is_err());
    }

    #[test]
    fn the_reference_has_the_dot_lines_and_8_bit_text() {
        let temp = fixtures("dots");
        let fixtures = &temp.0;
        let mail = Mail::full("dots", "example.net");
        let reference = send(&mail, &fixtures.body_file)
            .reference(fixtures)
            .expect("renders");
        let text = String::from_utf8(reference).expect("utf-8");
        assert!(text.contains("\r\n.This line starts with a dot"));
        assert!(text.contains("\r\n.\r\n"));
        assert!(text.contains("\r\n..This one"));
        assert!(text.contains("Grüße"));
        assert!(!text.contains("Bcc"));
    }

    #[test]
    fn addresses_and_recipients() {
        assert_eq!(
            bare_address("Alice <alice@example.com>"),
            "alice@example.com"
        );
        assert_eq!(bare_address(" bob@example.com "), "bob@example.com");
        let mail = Mail::full("x", "example.net");
        assert_eq!(
            mail.recipients(),
            ["alice@example.net", "bob@example.net", "carol@example.net"]
        );
        assert_eq!(mail.sender(), "sender@example.org");
    }

    #[test]
    fn same_bytes_names_the_first_difference() {
        assert!(same_bytes(b"abc", b"abc").is_ok());
        let error = same_bytes(b"abcX\r\n", b"abc\r\n").expect_err("differs");
        assert!(error.contains("first difference at byte 3"), "{error}");
        let error = same_bytes(b"abc\r\n\r\n", b"abc\r\n").expect_err("longer");
        assert!(error.contains("stored 7 bytes, rendered 5"), "{error}");
    }
}
