//! Named accounts (`--account NAME`) from a TOML file (`--config FILE`, or
//! `smtp-workbench/accounts.toml` in the XDG config directory): the server, TLS, user, sender
//! and where the secret comes from. Flags and the `SMTP_*` variables win over the file, since
//! clap has already put them in the options; the file only fills what they left empty.
//!
//! ```toml
//! [accounts.work]
//! provider = "office365"
//! user = "me@contoso.com"
//! from = "Me <me@contoso.com>"
//! oauth2_token_command = "oama access me@contoso.com"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::options::{AuthChoice, Provider, TlsChoice};
use crate::{Failure, Options};

/// The file: accounts by name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    accounts: BTreeMap<String, Account>,
}

/// One account; every key is optional and means what the option of the same name means.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Account {
    server: Option<String>,
    provider: Option<String>,
    tls: Option<String>,
    ca_file: Option<PathBuf>,
    helo_name: Option<String>,
    user: Option<String>,
    from: Option<String>,
    auth: Option<String>,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
    password_command: Option<String>,
    /// The password itself: only in a file no one else can read.
    password: Option<String>,
    oauth2_token_file: Option<PathBuf>,
    oauth2_token_env: Option<String>,
    oauth2_token_command: Option<String>,
}

/// Where the file is when `--config` does not say.
fn default_path() -> Option<PathBuf> {
    use etcetera::BaseStrategy as _;
    etcetera::choose_base_strategy().ok().map(|strategy| {
        strategy
            .config_dir()
            .join("smtp-workbench")
            .join("accounts.toml")
    })
}

/// Whether the account file (`config`, or the default one) has an account called `name`;
/// false when there is no file or it cannot be read (using it would then fail clearly).
pub(crate) fn has_account(config: Option<&Path>, name: &str) -> bool {
    let Some(path) = config.map(Path::to_path_buf).or_else(default_path) else {
        return false;
    };
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| toml::from_str::<File>(&text).ok())
        .is_some_and(|file| file.accounts.contains_key(name))
}

/// `options` with the account's settings filled in where the options have none.
pub(crate) fn apply(options: &Options) -> Result<Options, Failure> {
    let Some(name) = &options.account else {
        return Ok(options.clone());
    };
    let path = match (&options.config, default_path()) {
        (Some(path), _) => path.clone(),
        (None, Some(path)) => path,
        (None, None) => {
            return Err(config_error(
                Path::new("accounts.toml"),
                None,
                "no configuration directory is known for this user: give --config FILE",
            ));
        }
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        config_error(
            &path,
            None,
            &format!("cannot be read ({e}); create it or give --config FILE"),
        )
    })?;
    let file: File = toml::from_str(&text).map_err(|e| {
        let line = e.span().map(|span| line_of(&text, span.start));
        config_error(&path, line, e.message())
    })?;
    let Some(account) = file.accounts.get(name) else {
        let known: Vec<&str> = file.accounts.keys().map(String::as_str).collect();
        let known = if known.is_empty() {
            "it has none".to_owned()
        } else {
            format!("it has {}", known.join(", "))
        };
        return Err(config_error(
            &path,
            None,
            &format!("has no [accounts.{name}]; {known}"),
        ));
    };
    let key_error = |key: &str, why: &str| {
        let line = find_key(&text, name, key);
        config_error(&path, line, &format!("{key}: {why}"))
    };
    let mut merged = options.clone();
    fill(&mut merged.server, &account.server);
    fill(&mut merged.ca_file, &account.ca_file);
    fill(&mut merged.helo_name, &account.helo_name);
    fill(&mut merged.user, &account.user);
    fill(&mut merged.from, &account.from);
    if merged.provider.is_none()
        && let Some(text) = &account.provider
    {
        merged.provider = Some(<Provider as clap::ValueEnum>::from_str(text, true).map_err(
            |_| {
                key_error(
                    "provider",
                    "use gmail, outlook, office365, icloud, fastmail or yahoo",
                )
            },
        )?);
    }
    if merged.tls.is_none()
        && let Some(text) = &account.tls
    {
        merged.tls = Some(
            <TlsChoice as clap::ValueEnum>::from_str(text, true)
                .map_err(|_| key_error("tls", "use none, starttls or implicit"))?,
        );
    }
    if merged.auth.is_none()
        && let Some(text) = &account.auth
    {
        merged.auth = Some(
            <AuthChoice as clap::ValueEnum>::from_str(text, true).map_err(|_| {
                key_error(
                    "auth",
                    "use PLAIN, LOGIN, XOAUTH2, OAUTHBEARER or SCRAM-SHA-256",
                )
            })?,
        );
    }
    // The secret's source comes from the file only when the command line gave none.
    let given = options.password.is_some()
        || options.password_env.is_some()
        || options.password_file.is_some()
        || options.password_command.is_some()
        || options.oauth2_token_env.is_some()
        || options.oauth2_token_file.is_some()
        || options.oauth2_token_command.is_some();
    if !given {
        if account.password.is_some() && readable_by_others(&path) {
            return Err(key_error(
                "password",
                &format!(
                    "a password in a file other users can read; run chmod 600 {}, or name a source (password_file, password_command) instead",
                    path.display()
                ),
            ));
        }
        merged.password.clone_from(&account.password);
        merged.password_env.clone_from(&account.password_env);
        merged.password_file.clone_from(&account.password_file);
        merged
            .password_command
            .clone_from(&account.password_command);
        merged
            .oauth2_token_env
            .clone_from(&account.oauth2_token_env);
        merged
            .oauth2_token_file
            .clone_from(&account.oauth2_token_file);
        merged
            .oauth2_token_command
            .clone_from(&account.oauth2_token_command);
    }
    Ok(merged)
}

fn fill<T: Clone>(option: &mut Option<T>, from_file: &Option<T>) {
    if option.is_none() {
        option.clone_from(from_file);
    }
}

fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
}

/// The 1-based line of byte offset `at`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

/// The line where `key` is set in `[accounts.NAME]`, for the error sentence.
fn find_key(text: &str, account: &str, key: &str) -> Option<usize> {
    let header = format!("[accounts.{account}]");
    let mut inside = false;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == header;
        } else if inside
            && line
                .split_once('=')
                .is_some_and(|(name, _)| name.trim() == key)
        {
            return Some(i + 1);
        }
    }
    None
}

fn config_error(path: &Path, line: Option<usize>, why: &str) -> Failure {
    let place = match line {
        Some(line) => format!("{}:{line}", path.display()),
        None => path.display().to_string(),
    };
    Failure::AccountConfig {
        place,
        why: crate::failure::one_line(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;
    use std::os::unix::fs::PermissionsExt as _;

    #[derive(clap::Parser)]
    struct Arguments {
        #[command(flatten)]
        options: Options,
    }

    fn options(args: &[&str]) -> Options {
        let mut argv = vec!["client"];
        argv.extend(args);
        Arguments::try_parse_from(argv)
            .expect("valid options")
            .options
    }

    fn config(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cli-accounts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        path
    }

    const FILE: &str = "\
[accounts.work]
provider = \"office365\"
user = \"me@contoso.com\"
from = \"Me <me@contoso.com>\"
oauth2_token_command = \"echo tok\"

[accounts.lab]
server = \"127.0.0.1:2525\"
tls = \"none\"
";

    #[test]
    fn an_account_fills_what_the_command_line_left_empty() {
        let path = config("good.toml", FILE);
        let path = path.to_str().unwrap_or_default();
        let merged = apply(&options(&["--config", path, "--account", "work"])).expect("applies");
        assert_eq!(merged.provider, Some(Provider::Office365));
        assert_eq!(merged.user.as_deref(), Some("me@contoso.com"));
        assert_eq!(merged.oauth2_token_command.as_deref(), Some("echo tok"));
        // A flag wins, and a secret source on the command line replaces the file's.
        let flags = apply(&options(&[
            "--config",
            path,
            "--account",
            "work",
            "--user",
            "other@contoso.com",
            "--password-env",
            "PW",
        ]))
        .expect("applies");
        assert_eq!(flags.user.as_deref(), Some("other@contoso.com"));
        assert_eq!(flags.oauth2_token_command, None);
        assert_eq!(flags.password_env.as_deref(), Some("PW"));
    }

    #[test]
    fn bad_files_name_the_file_the_line_and_the_key() {
        let typo = config(
            "typo.toml",
            "[accounts.work]\nuser = \"me\"\nsevrer = \"x\"\n",
        );
        let failure = apply(&options(&[
            "--config",
            typo.to_str().unwrap_or_default(),
            "--account",
            "work",
        ]))
        .expect_err("unknown key");
        let text = failure.to_string();
        assert!(text.contains(&format!("{}:3", typo.display())), "{text}");
        assert!(text.contains("sevrer"), "{text}");
        assert_eq!(failure.exit().code(), 78);

        let bad_tls = config("tls.toml", "[accounts.work]\ntls = \"always\"\n");
        let failure = apply(&options(&[
            "--config",
            bad_tls.to_str().unwrap_or_default(),
            "--account",
            "work",
        ]))
        .expect_err("bad value");
        assert_eq!(
            failure.to_string(),
            format!(
                "{}:2: tls: use none, starttls or implicit; fix the account file or give the option on the command line",
                bad_tls.display()
            )
        );

        let good = config("names.toml", FILE);
        let missing = apply(&options(&[
            "--config",
            good.to_str().unwrap_or_default(),
            "--account",
            "home",
        ]))
        .expect_err("no such account");
        assert!(
            missing
                .to_string()
                .contains("has no [accounts.home]; it has lab, work"),
            "{missing}"
        );
    }

    #[test]
    fn a_password_in_a_file_others_can_read_is_refused() {
        let path = config(
            "open.toml",
            "[accounts.work]\nuser = \"me\"\npassword = \"hunter2\"\n",
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let failure = apply(&options(&[
            "--config",
            path.to_str().unwrap_or_default(),
            "--account",
            "work",
        ]))
        .expect_err("readable");
        let text = failure.to_string();
        assert!(
            text.contains(":3: password: a password in a file other users can read"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let merged = apply(&options(&[
            "--config",
            path.to_str().unwrap_or_default(),
            "--account",
            "work",
        ]))
        .expect("private now");
        assert_eq!(merged.password.as_deref(), Some("hunter2"));
    }
}
