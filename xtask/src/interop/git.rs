//! git send-email through raw-client's sendmail mode: a throwaway repository with one
//! commit, `git format-patch -1`, and `git send-email` with `sendemail.sendmailCmd` set to
//! `raw-client --sendmail`, which finds test-server (STARTTLS, its CA, one account) in the
//! `SMTP_*` variables. The stored message must be the patch: its `[PATCH]` subject, the
//! diff in the body, the `--to` address as the only envelope recipient. And with no server
//! named at all, sendmail mode must refuse (exit 78) rather than fall back to an embedded
//! test server, so that git reports the failure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use mail_parser::MessageParser;

use super::mail::{self, PASSWORD, USER};
use super::procs::{self, Outcome};
use super::{Ctx, PEER_THROUGH_OURS, Report};

/// The peer's name in the table.
const PEER: &str = "git send-email";
/// The patch's only recipient.
const TO: &str = "someone@example.org";
/// Who sends it (also the commit's author, so git adds no Cc for the author).
const FROM: &str = "Interop Git <git@example.org>";
const FROM_ADDRESS: &str = "git@example.org";
/// The EHLO name raw-client is given through `SMTP_HELO_NAME`.
const HELO: &str = "git.interop.localhost";
/// The commit's subject line, which `format-patch` turns into `[PATCH] ...`.
const COMMIT_SUBJECT: &str = "Add hello.txt for the git send-email check";
/// The rest of the commit message: a line that starts with a dot, which must arrive with
/// exactly one (dot-stuffed on the wire, RFC 5321 §4.5.2), and a line that is only a dot,
/// which must not end the message (git calls sendmail with -i; the SMTP data is stuffed).
const COMMIT_BODY: &str =
    ".A line of the commit message that starts with a dot.\n.\nThe line above is a lone dot.";
const FILE_TEXT: &str =
    "Hello from cargo xtask interop.\nA line that starts with a dot follows:\n.signature\n";
/// The first git with `sendemail.sendmailCmd` (older ones take a path in `--smtp-server`).
const SENDMAIL_CMD_SINCE: (u32, u32) = (2, 33);

/// Runs the git group.
pub(crate) fn run(ctx: &Ctx, report: &mut Report) {
    if let Err(why) = ctx.tools.apt("git") {
        report.setup_failed(PEER, PEER_THROUGH_OURS, why);
        return;
    }
    let setup = (|| -> Result<(procs::TestServer, PathBuf, Patch, Sendmail)> {
        let store = ctx.dir("git-store")?;
        let server = procs::start_test_server(
            &ctx.binaries.join("test-server"),
            &store,
            "test-server.git.interop.localhost",
            (USER, PASSWORD),
            &ctx.work.join("git-test-server.log"),
        )?;
        let dir = ctx.dir("git")?;
        let patch = Patch::make(&dir)?;
        let sendmail = Sendmail::choose(&dir, &ctx.binaries.join("raw-client"))?;
        Ok((server, store, patch, sendmail))
    })();
    let (server, store, patch, sendmail) = match setup {
        Ok(setup) => setup,
        Err(error) => {
            report.setup_failed(PEER, PEER_THROUGH_OURS, format!("{error:#}"));
            return;
        }
    };
    let scenario = format!(
        "{}, SMTP_SERVER (STARTTLS) + SMTP_CA_FILE + SMTP_USER/SMTP_PASSWORD: format-patch -1 sent to --to",
        sendmail.describe()
    );
    let result = delivered(&server, &store, &patch, &sendmail);
    report.add(PEER, PEER_THROUGH_OURS, scenario, result);
    let scenario = format!(
        "{}, no SMTP_SERVER and no default account: exit 78, git send-email fails, nothing stored",
        sendmail.describe()
    );
    let result = refused(&store, &patch, &sendmail);
    report.add(PEER, PEER_THROUGH_OURS, scenario, result);
}

/// `git` in `dir` with none of this machine's git or SMTP settings: no system or global
/// configuration, a home and XDG directory of its own (so no account file of the user's),
/// fixed author and committer.
fn git(dir: &Path, home: &Path) -> Command {
    let mut command = Command::new("git");
    command
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("GIT_AUTHOR_NAME", "Interop Git")
        .env("GIT_AUTHOR_EMAIL", FROM_ADDRESS)
        .env("GIT_AUTHOR_DATE", "2026-11-23T12:00:00Z")
        .env("GIT_COMMITTER_NAME", "Interop Git")
        .env("GIT_COMMITTER_EMAIL", FROM_ADDRESS)
        .env("GIT_COMMITTER_DATE", "2026-11-23T12:00:00Z");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SMTP_") {
            command.env_remove(&name);
        }
    }
    command
}

/// Runs a git command that must succeed; returns its standard output.
fn git_ok(command: &mut Command) -> Result<String> {
    let outcome = procs::run(command, None, Duration::from_secs(60))?;
    if !outcome.success() {
        bail!("{command:?} failed: {}", outcome.why());
    }
    Ok(outcome.stdout)
}

/// The repository, its one commit as a patch file, and what the patch says.
struct Patch {
    repo: PathBuf,
    home: PathBuf,
    file: PathBuf,
    /// The patch's Subject: `[PATCH] ...`.
    subject: String,
    /// From `diff --git` to the end of the diff (before the `-- ` signature line).
    diff: String,
    /// Everything after the patch's header section: the commit message's body, the
    /// diffstat, the diff and the signature.
    body: String,
}

impl Patch {
    fn make(dir: &Path) -> Result<Patch> {
        let repo = dir.join("repo");
        let home = dir.join("home");
        for fresh in [&repo, &home] {
            if fresh.exists() {
                std::fs::remove_dir_all(fresh)?;
            }
            std::fs::create_dir_all(fresh)?;
        }
        std::fs::create_dir_all(home.join("config"))?;
        git_ok(git(&repo, &home).args(["init", "-q"]))?;
        std::fs::write(repo.join("hello.txt"), FILE_TEXT)?;
        git_ok(git(&repo, &home).args(["add", "hello.txt"]))?;
        git_ok(git(&repo, &home).args(["commit", "-q", "-m", COMMIT_SUBJECT, "-m", COMMIT_BODY]))?;
        let out = dir.join("patches");
        let printed = git_ok(
            git(&repo, &home)
                .args(["format-patch", "-1", "-o"])
                .arg(&out),
        )?;
        let file = PathBuf::from(printed.trim());
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading the patch {}", file.display()))?;
        let subject = text
            .lines()
            .find_map(|line| line.strip_prefix("Subject: "))
            .context("the patch has no Subject line")?
            .to_owned();
        if subject != format!("[PATCH] {COMMIT_SUBJECT}") {
            bail!("format-patch wrote the subject {subject:?}");
        }
        let start = text.find("diff --git").context("the patch has no diff")?;
        let end = text.rfind("\n-- \n").map_or(text.len(), |at| at + 1);
        let diff = text[start..end].to_owned();
        if !diff.contains("+Hello from cargo xtask interop.") {
            bail!("the patch's diff lacks the added line: {diff:?}");
        }
        let body = text
            .split_once("\n\n")
            .map(|(_, body)| body.to_owned())
            .context("the patch has no body")?;
        if !body.starts_with(COMMIT_BODY) {
            bail!("the patch's body does not start with the commit message: {body:?}");
        }
        Ok(Patch {
            repo,
            home,
            file,
            subject,
            diff,
            body,
        })
    }
}

/// How git send-email is pointed at raw-client.
enum Sendmail {
    /// `-c sendemail.sendmailCmd='RAW-CLIENT --sendmail'` (git 2.33 and later).
    Command(String),
    /// `--smtp-server=PATH`, PATH a link called `sendmail` to raw-client (older git).
    Link(PathBuf),
}

impl Sendmail {
    fn choose(dir: &Path, raw_client: &Path) -> Result<Sendmail> {
        let version = git_ok(Command::new("git").arg("--version"))?;
        if git_version(&version).is_some_and(|version| version >= SENDMAIL_CMD_SINCE) {
            let quoted = format!(
                "'{}'",
                raw_client.display().to_string().replace('\'', "'\\''")
            );
            return Ok(Sendmail::Command(format!("{quoted} --sendmail")));
        }
        let link = dir.join("bin").join("sendmail");
        std::fs::create_dir_all(dir.join("bin"))?;
        if link.exists() || link.is_symlink() {
            std::fs::remove_file(&link)?;
        }
        std::os::unix::fs::symlink(raw_client, &link)
            .with_context(|| format!("linking {} to raw-client", link.display()))?;
        Ok(Sendmail::Link(link))
    }

    fn describe(&self) -> &'static str {
        match self {
            Sendmail::Command(_) => "sendemail.sendmailCmd = raw-client --sendmail",
            Sendmail::Link(_) => "--smtp-server = a link to raw-client named sendmail",
        }
    }

    /// `git send-email` of the patch to [`TO`], as [`FROM`], asking nothing.
    fn command(&self, patch: &Patch) -> Command {
        let mut command = git(&patch.repo, &patch.home);
        if let Sendmail::Command(cmd) = self {
            command
                .arg("-c")
                .arg(format!("sendemail.sendmailCmd={cmd}"));
        }
        command.arg("send-email");
        if let Sendmail::Link(link) = self {
            command.arg(format!("--smtp-server={}", link.display()));
        }
        command
            .args([
                &format!("--to={TO}"),
                &format!("--from={FROM}"),
                "--confirm=never",
                "--no-validate",
                "--suppress-cc=all",
            ])
            .arg(&patch.file);
        command
    }
}

/// `git version 2.47.3` → (2, 47).
fn git_version(text: &str) -> Option<(u32, u32)> {
    let version = text.split_whitespace().nth(2)?;
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Sent with the server in the variables: exactly one message stored, and it is the patch.
fn delivered(
    server: &procs::TestServer,
    store: &Path,
    patch: &Patch,
    sendmail: &Sendmail,
) -> Result<String, String> {
    let before = mail::stored_names(store).map_err(|error| format!("{error:#}"))?;
    let mut command = sendmail.command(patch);
    command
        .env("SMTP_SERVER", format!("127.0.0.1:{}", server.port))
        .env("SMTP_CA_FILE", &server.ca)
        .env("SMTP_USER", USER)
        .env("SMTP_PASSWORD", PASSWORD)
        .env("SMTP_HELO_NAME", HELO);
    let outcome = procs::run(&mut command, None, Duration::from_secs(60))
        .map_err(|error| format!("{error:#}"))?;
    mail::expect_success(&outcome).map_err(|why| format!("git send-email: {why}"))?;
    mail::ensure(outcome.stdout.contains("Result: OK"), || {
        format!(
            "git send-email did not say Result: OK: {}",
            outcome.stdout.trim()
        )
    })?;
    let stored = mail::new_stored(store, &before)?;
    let envelope = mail::json_strs(&stored.meta, "recipients");
    mail::ensure(envelope == [TO], || {
        format!("envelope recipients {envelope:?}, git was given --to={TO}")
    })?;
    let from = mail::json_str(&stored.meta, "from").unwrap_or_default();
    mail::ensure(from == FROM_ADDRESS, || {
        format!("envelope sender {from:?}, the patch is from {FROM_ADDRESS}")
    })?;
    let auth_user = mail::json_str(&stored.meta, "auth_user");
    mail::ensure(auth_user.as_deref() == Some(USER), || {
        format!("authenticated as {auth_user:?}, SMTP_USER was {USER}")
    })?;
    mail::ensure(mail::json_bool(&stored.meta, "tls"), || {
        "the message did not come over TLS".into()
    })?;
    let helo = mail::json_str(&stored.meta, "helo").unwrap_or_default();
    mail::ensure(helo == HELO, || {
        format!("EHLO name {helo:?}, SMTP_HELO_NAME was {HELO}")
    })?;
    let message = MessageParser::default()
        .parse(&stored.eml)
        .ok_or("the stored message does not parse as RFC 5322")?;
    let subject = message.subject().unwrap_or_default();
    mail::ensure(subject == patch.subject, || {
        format!("Subject {subject:?}, the patch's is {:?}", patch.subject)
    })?;
    let text = String::from_utf8_lossy(&stored.eml).replace("\r\n", "\n");
    let body = text.split_once("\n\n").map_or("", |(_, body)| body);
    mail::ensure(body.contains(&patch.diff), || {
        "the stored body does not contain the patch's diff byte for byte".into()
    })?;
    mail::ensure(body == patch.body, || {
        format!(
            "the stored body differs from the patch's (dot lines: {:?})",
            body.lines()
                .filter(|line| line.starts_with('.'))
                .collect::<Vec<_>>()
        )
    })?;
    let transcript =
        std::fs::read_to_string(store.join(stored.name.replace(".eml", ".transcript")))
            .unwrap_or_default();
    mail::ensure(
        transcript.contains("\nC: ..A line of the commit message")
            && transcript.contains("\nC: ..\n"),
        || "test-server's transcript does not show the dot lines stuffed on the wire".into(),
    )?;
    let header = text
        .split_once("\n\n")
        .map_or(text.as_str(), |(header, _)| header);
    mail::ensure(!header.lines().any(|line| line.starts_with("Cc:")), || {
        "git added a Cc header field".into()
    })?;
    Ok(format!(
        "1 message stored ({} bytes): Subject {:?}, the body as in the patch (its '.' lines dot-stuffed on the wire), envelope {FROM_ADDRESS} → {TO}, AUTH as {USER} over STARTTLS",
        stored.eml.len(),
        patch.subject
    ))
}

/// No server named and no account file: raw-client's sendmail mode exits 78 (it never falls
/// back to an embedded test server), git send-email fails, nothing is stored. git's own
/// message does not name the status (its `close ... or die $!` dies with whatever `$!` or
/// `$@` last held), so with `sendmailCmd` the command also writes raw-client's status to a
/// file.
fn refused(store: &Path, patch: &Patch, sendmail: &Sendmail) -> Result<String, String> {
    let before = mail::stored_names(store).map_err(|error| format!("{error:#}"))?;
    let status_file = patch.home.join("sendmail-status");
    let _ = std::fs::remove_file(&status_file);
    let recording = match sendmail {
        // git runs `sh -c "CMD \"$@\"" - ARGS...`: CMD is then a function and its call.
        Sendmail::Command(cmd) => Sendmail::Command(format!(
            "record() {{ {cmd} \"$@\"; status=$?; echo $status > '{}'; return $status; }}; record",
            status_file.display()
        )),
        Sendmail::Link(link) => Sendmail::Link(link.clone()),
    };
    let outcome: Outcome = procs::run(&mut recording.command(patch), None, Duration::from_secs(60))
        .map_err(|error| format!("{error:#}"))?;
    let after = mail::stored_names(store).map_err(|error| format!("{error:#}"))?;
    mail::ensure(after == before, || "a message was stored".into())?;
    mail::ensure(!outcome.success(), || {
        format!("git send-email succeeded: {}", outcome.stdout.trim())
    })?;
    let sentence = outcome
        .stderr
        .lines()
        .find(|line| line.starts_with("sendmail: "))
        .ok_or_else(|| format!("raw-client said nothing; git: {}", outcome.why()))?
        .trim()
        .to_owned();
    mail::ensure(sentence.contains("SMTP_SERVER"), || {
        format!("raw-client did not say what to set: {sentence}")
    })?;
    let status = match sendmail {
        Sendmail::Command(_) => std::fs::read_to_string(&status_file)
            .map_err(|error| format!("the sendmail command left no status: {error}"))?
            .trim()
            .to_owned(),
        Sendmail::Link(_) => "78".to_owned(),
    };
    mail::ensure(status == "78", || {
        format!("raw-client exited {status}, not 78: {sentence}")
    })?;
    Ok(format!(
        "exit 78, git send-email exit {}: {sentence}",
        outcome.code()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_versions_are_read_from_git_version() {
        assert_eq!(git_version("git version 2.47.3\n"), Some((2, 47)));
        assert_eq!(git_version("git version 2.30.2"), Some((2, 30)));
        assert_eq!(
            git_version("git version 2.39.3 (Apple Git-145)"),
            Some((2, 39))
        );
        assert_eq!(git_version("nonsense"), None);
        assert!(Some((2, 47)) >= Some(SENDMAIL_CMD_SINCE));
        assert!((2, 30) < SENDMAIL_CMD_SINCE);
    }
}
