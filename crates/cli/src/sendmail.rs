//! The sendmail command line (`raw-client --sendmail`, or the binary called `sendmail`), for
//! programs that pipe a finished message to `sendmail -t -i`: cron, git send-email, PHP's
//! `mail()`, mutt.
//!
//! It is translated into the shared [`Options`]: the message is standard input sent as it is
//! (`--data -`), with Date, Message-ID and From added where missing as a mail server's
//! sendmail does, and the transcript is printed only with `-v`. The server comes from
//! `SMTP_SERVER`, `--account NAME` (`-a`), or an account called `default`; there is no
//! embedded fallback, since mail from a cron job would then be lost without a word.

use std::ffi::OsString;

use clap::Parser as _;

use crate::Options;

/// The account used when neither `SMTP_SERVER` nor `--account` names a server.
pub const DEFAULT_ACCOUNT: &str = "default";

#[derive(clap::Parser)]
#[command(name = "sendmail")]
struct Plain {
    #[command(flatten)]
    options: Options,
}

/// The options for a sendmail command line (`args` without the program name). The error is
/// one sentence for a usage error (exit 64).
pub fn options(args: impl IntoIterator<Item = OsString>) -> Result<Options, String> {
    let mut translated: Vec<OsString> = vec!["sendmail".into(), "--data".into(), "-".into()];
    let mut from = None;
    let mut full_name = None;
    let mut dot_ends_input = true;
    let mut verbose = false;
    let mut recipients = Vec::new();
    let mut args = args
        .into_iter()
        .map(|arg| arg.to_string_lossy().into_owned());
    let value = |flag: &str, attached: &str, args: &mut dyn Iterator<Item = String>| {
        if attached.is_empty() {
            args.next()
                .ok_or_else(|| format!("{flag} needs a value: see `raw-client --sendmail --help`"))
        } else {
            Ok(attached.to_owned())
        }
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--" => {
                recipients.extend(args.by_ref());
                break;
            }
            "-t" => translated.push("--read-envelope".into()),
            "-i" | "-oi" => dot_ends_input = false,
            "-v" => verbose = true,
            // Deliver mail (the default), background/interactive delivery, error modes:
            // every send here is done before the program exits, errors go to its status.
            "-bm" | "-odi" | "-odb" | "-odq" | "-oem" | "-oee" | "-oeq" | "-oep" | "-oew"
            | "-om" | "-Am" | "-Ac" | "--sendmail" => {}
            "--help" | "-h" => return Err(HELP.to_owned()),
            "-a" | "--account" => {
                let name = value(&arg, "", &mut args)?;
                translated.push(format!("--account={name}").into());
            }
            "-C" | "--config" => {
                let path = value(&arg, "", &mut args)?;
                translated.push(format!("--config={path}").into());
            }
            other if other.starts_with("--account=") || other.starts_with("--config=") => {
                translated.push(other.into());
            }
            other if other.starts_with("-f") || other.starts_with("-r") => {
                from = Some(value(&other[..2], &other[2..], &mut args)?);
            }
            other if other.starts_with("-F") => {
                full_name = Some(value("-F", &other[2..], &mut args)?);
            }
            // DSN (RFC 3461), as sendmail spells it: -N notify, -R ret, -V envid.
            other if other.starts_with("-N") => {
                let notify = value("-N", &other[2..], &mut args)?;
                translated.push(format!("--dsn-notify={notify}").into());
            }
            other if other.starts_with("-R") => {
                let ret = value("-R", &other[2..], &mut args)?.to_ascii_lowercase();
                translated.push(format!("--dsn-ret={ret}").into());
            }
            other if other.starts_with("-V") => {
                let envid = value("-V", &other[2..], &mut args)?;
                translated.push(format!("--dsn-envid={envid}").into());
            }
            // -B 8BITMIME|7BIT: the body type is worked out from the bytes themselves.
            other if other.starts_with("-B") => {
                value("-B", &other[2..], &mut args)?;
            }
            other if other.starts_with("-o") => {}
            other if other.starts_with('-') => {
                return Err(format!(
                    "sendmail option {other:?} is not supported: this sendmail takes -t, -i, -oi, -f, -F, -N, -R, -V, -v, -a and recipients"
                ));
            }
            _ => recipients.extend(
                arg.split(',')
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(str::to_owned),
            ),
        }
    }
    for recipient in recipients {
        translated.push(format!("--to={recipient}").into());
    }
    let mut parsed = Plain::try_parse_from(translated).map_err(|e| e.to_string())?;
    let options = &mut parsed.options;
    if let Some(from) = from {
        options.from = Some(from);
    }
    if let (Some(name), Some(from)) = (full_name, options.from.clone())
        && !from.contains('<')
    {
        options.from = Some(format!("{} <{from}>", quote_name(&name)));
    }
    options.add_missing_headers = true;
    options.dot_ends_input = dot_ends_input;
    options.quiet = !verbose;
    options.no_embedded = true;
    options.sender_from_message = true;
    if options.server.is_none()
        && options.account.is_none()
        && options.provider.is_none()
        && crate::accounts::has_account(options.config.as_deref(), DEFAULT_ACCOUNT)
    {
        options.account = Some(DEFAULT_ACCOUNT.to_owned());
    }
    Ok(parsed.options)
}

/// `-F` text as a display name: quoted when it is not a plain phrase.
fn quote_name(name: &str) -> String {
    let plain = name
        .chars()
        .all(|c| c.is_alphanumeric() || c == ' ' || c == '-' || c == '.');
    if plain {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// sendmail without `-i`: a line that is only `.` ends the input (the rest is ignored).
pub(crate) fn cut_at_dot(input: &mut Vec<u8>) {
    let mut at = 0;
    for line in input.split_inclusive(|&b| b == b'\n') {
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        if content.strip_suffix(b"\r").unwrap_or(content) == b"." {
            input.truncate(at);
            return;
        }
        at += line.len();
    }
}

const HELP: &str = "usage: sendmail [-t] [-i|-oi] [-f FROM] [-F NAME] [-N DSN] [-R RET] [-V ENVID] [-v] [-a ACCOUNT] [RECIPIENT...] < message
Sends the message on standard input as it is, adding Date, Message-ID and From where missing.
-t reads recipients from the To, Cc and Bcc fields (and removes Bcc); -i keeps reading after a line that is only \".\".
The server is SMTP_SERVER, the account of -a, or the account \"default\" (see docs/scripting.md).";

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Options {
        options(args.iter().map(OsString::from)).expect("valid sendmail options")
    }

    #[test]
    fn the_usual_command_lines() {
        let php = parse(&["-t", "-i"]);
        assert!(php.read_envelope && !php.dot_ends_input && php.quiet && php.no_embedded);
        assert_eq!(php.data.as_deref(), Some(std::path::Path::new("-")));
        let cron = parse(&[
            "-FCronDaemon",
            "-i",
            "-B8BITMIME",
            "-oem",
            "-f",
            "root@host.example",
            "user@example.org",
        ]);
        assert_eq!(cron.from.as_deref(), Some("CronDaemon <root@host.example>"));
        assert_eq!(cron.to, ["user@example.org"]);
        let git = parse(&[
            "-i",
            "-fme@example.com",
            "a@example.org,b@example.org",
            "--",
            "-c@example.org",
        ]);
        assert_eq!(git.to, ["a@example.org", "b@example.org", "-c@example.org"]);
        assert!(parse(&["-v", "x@example.org"]).dot_ends_input);
        assert!(!parse(&["-v", "x@example.org"]).quiet);
        let dsn = parse(&[
            "-N",
            "success,failure",
            "-Rhdrs",
            "-V",
            "id1",
            "x@example.org",
        ]);
        assert_eq!(dsn.dsn_notify.as_deref(), Some("success,failure"));
        assert_eq!(dsn.dsn_ret, Some(crate::DsnRet::Hdrs));
        assert_eq!(dsn.dsn_envid.as_deref(), Some("id1"));
    }

    #[test]
    fn unknown_options_are_usage_errors() {
        for bad in [&["-bs"][..], &["-X", "log"], &["-f"]] {
            let error = options(bad.iter().map(OsString::from)).expect_err("refused");
            assert!(!error.is_empty());
        }
    }

    #[test]
    fn a_lone_dot_ends_the_input() {
        let mut input = b"Subject: x\n\nkept\n.\nlost\n".to_vec();
        cut_at_dot(&mut input);
        assert_eq!(input, b"Subject: x\n\nkept\n");
        let mut dotted = b"a\r\n..b\r\n".to_vec();
        cut_at_dot(&mut dotted);
        assert_eq!(dotted, b"a\r\n..b\r\n");
    }
}
