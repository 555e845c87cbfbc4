//! Where a password or an OAuth 2.0 token comes from: a file, an environment variable, or a
//! command's first line of output (msmtp's `passwordeval`: how password managers, keyrings
//! and token helpers that refresh OAuth tokens plug in). The secret itself is never shown:
//! a failing command's standard error is, its standard output never.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::Failure;

/// One place to get the secret from, and the option that named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// `--password` itself.
    Given(String),
    File(PathBuf),
    Env(String),
    Command(String),
}

/// The first line of a secret file, with a warning when others may read the file.
pub(crate) fn from_file(
    path: &Path,
    what: &'static str,
    warn: &mut dyn FnMut(&str),
) -> Result<String, Failure> {
    let bytes = std::fs::read(path).map_err(|e| Failure::InputFile {
        what,
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    warn_if_readable_by_others(path, warn);
    let text = String::from_utf8(bytes).map_err(|_| Failure::PasswordFileNotUtf8 {
        path: path.to_path_buf(),
    })?;
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

/// `chmod 600` advice for a secret file that its group or others can read.
fn warn_if_readable_by_others(path: &Path, warn: &mut dyn FnMut(&str)) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(metadata) = std::fs::metadata(path)
        && metadata.permissions().mode() & 0o077 != 0
    {
        warn(&format!(
            "{} can be read by other users of this machine; run chmod 600 {}",
            path.display(),
            path.display()
        ));
    }
}

/// Runs `sh -c command` and returns the first line of its standard output. `option` names
/// the option in errors; the command gets `timeout` to finish.
pub(crate) fn from_command(
    option: &'static str,
    command: &str,
    timeout: Duration,
) -> Result<String, Failure> {
    let failed = |reason: String| Failure::SecretCommand {
        option,
        command: command.to_owned(),
        reason,
    };
    let mut child = Command::new("sh")
        .args(["-c", command])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("it could not be started ({e})")))?;
    // Read both pipes on their own threads, so a chatty command cannot block on a full one.
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let out = std::thread::spawn(move || read_all(stdout.as_mut()));
    let err = std::thread::spawn(move || read_all(stderr.as_mut()));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Failure::SecretCommandTimeout {
                    option,
                    command: command.to_owned(),
                    after: format!("{timeout:?}"),
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(failed(format!("waiting for it failed ({e})"))),
        }
    };
    let output = out.join().unwrap_or_default();
    let errors = err.join().unwrap_or_default();
    let errors = String::from_utf8_lossy(&errors);
    let errors = errors.trim();
    let said = if errors.is_empty() {
        String::new()
    } else {
        format!("; it said: {}", crate::failure::one_line(errors))
    };
    if !status.success() {
        return Err(failed(format!("it exited with {status}{said}")));
    }
    let text = String::from_utf8(output)
        .map_err(|_| failed(format!("it printed something that is not UTF-8{said}")))?;
    let first = text
        .lines()
        .next()
        .unwrap_or_default()
        .trim_end()
        .to_owned();
    if first.is_empty() {
        return Err(failed(format!("its first line of output is empty{said}")));
    }
    Ok(first)
}

fn read_all(pipe: Option<&mut impl std::io::Read>) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Some(pipe) = pipe {
        let _ = pipe.read_to_end(&mut bytes);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(5);

    #[test]
    fn a_command_gives_its_first_line() {
        let secret = from_command("--password-command", "printf 'hunter2\\nmore\\n'", SECOND);
        assert_eq!(secret.ok().as_deref(), Some("hunter2"));
    }

    #[test]
    fn a_failing_command_shows_its_stderr_but_never_its_stdout() {
        let failure = from_command(
            "--password-command",
            "echo s3cr3t-$((40 + 2)); echo 'vault is locked' >&2; exit 3",
            SECOND,
        )
        .expect_err("it fails");
        let text = failure.to_string();
        assert!(text.contains("vault is locked"), "{text}");
        assert!(text.contains("exit status: 3"), "{text}");
        // The command is shown as given; what it printed (s3cr3t-42) never is.
        assert!(!text.contains("s3cr3t-42"), "{text}");
        assert_eq!(failure.exit().code(), 77);
    }

    #[test]
    fn an_empty_answer_and_a_slow_command_are_errors() {
        let empty = from_command("--oauth2-token-command", "true", SECOND).expect_err("empty");
        assert!(
            empty.to_string().contains("first line of output is empty"),
            "{empty}"
        );
        assert_eq!(empty.exit().code(), 77);
        let slow = from_command(
            "--oauth2-token-command",
            "sleep 5",
            Duration::from_millis(200),
        )
        .expect_err("too slow");
        assert_eq!(
            slow.to_string(),
            "--oauth2-token-command \"sleep 5\" did not finish within 200ms: it was stopped; make it faster or raise --timeout"
        );
        assert_eq!(slow.exit().code(), 75);
    }

    #[test]
    fn a_file_others_can_read_gets_a_warning() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("cli-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("token");
        std::fs::write(&path, "tok\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let mut warnings = Vec::new();
        let secret = from_file(&path, "token file", &mut |w| warnings.push(w.to_owned()));
        assert_eq!(secret.ok().as_deref(), Some("tok"));
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].ends_with(&format!("run chmod 600 {}", path.display())));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        warnings.clear();
        let _ = from_file(&path, "token file", &mut |w| warnings.push(w.to_owned()));
        assert!(warnings.is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }
}
