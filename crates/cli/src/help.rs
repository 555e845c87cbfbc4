//! What `-h` and `--help` say after the options (examples and the exit status table), and
//! the shell completions and man page made from the same clap command, for both binaries.
//!
//! The examples and the exit statuses are tables here, so that `-h`, `--help` and the man
//! page cannot drift apart. The hidden `--generate-completions SHELL` and `--generate-man`
//! are added to every binary's command by [`crate::parse_arguments`], which answers them
//! before anything else: they print to standard output and exit 0 (`cargo xtask dist`
//! writes their output to `target/dist/`).

use std::io::Write as _;

use clap::{Arg, ArgAction, ArgMatches, Command};
use roff::{Roff, bold, roman};

use crate::Exit;

/// Which client binary the help is for: raw-client has the sendmail mode too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// `raw-client`.
    Raw,
    /// `lib-client`.
    Lib,
}

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::Raw => "raw-client",
            Client::Lib => "lib-client",
        }
    }
}

/// One example: what it does, and its command line, where `PROGRAM` stands for the binary.
struct Example {
    what: &'static str,
    lines: &'static [&'static str],
    /// Also shown by `-h`, not only by `--help`.
    short: bool,
    /// Only raw-client has it.
    raw_only: bool,
}

const EXAMPLES: &[Example] = &[
    Example {
        what: "The demo message, to an embedded test server started for this run",
        lines: &["PROGRAM"],
        short: true,
        raw_only: false,
    },
    Example {
        what: "A real submission server (STARTTLS on 587), the password from a file",
        lines: &[
            "PROGRAM --server smtp.example.com:587 --user me@example.com \\",
            "    --password-file ~/.smtp-pass --from me@example.com --to you@example.org \\",
            "    --subject Hello --body 'Hi there'",
        ],
        short: true,
        raw_only: false,
    },
    Example {
        what: "A message someone else built, the envelope from its own From, To, Cc and Bcc",
        lines: &[
            "PROGRAM --server smtp.example.com:587 --user me@example.com \\",
            "    --password-file ~/.smtp-pass --data message.eml -t",
        ],
        short: true,
        raw_only: false,
    },
    Example {
        what: "Would the server take this recipient? Stop after RCPT TO: nothing is sent",
        lines: &[
            "PROGRAM --server mx.example.org:25 --tls none --from me@example.com \\",
            "    --to someone@example.org --quit-after rcpt",
        ],
        short: false,
        raw_only: false,
    },
    Example {
        what: "What the server offers: greeting, extensions, TLS and its certificate chain",
        lines: &["PROGRAM --server smtp.example.com:587 --serverinfo"],
        short: false,
        raw_only: false,
    },
    Example {
        what: "For programs: one JSON object per event, and the outcome in out.json too",
        lines: &["PROGRAM --transcript-format json --result-file out.json"],
        short: false,
        raw_only: false,
    },
    Example {
        what: "As `sendmail -t -i` (cron, git send-email): the message on standard input, the \
               server from SMTP_SERVER or the account \"default\" (docs/scripting.md)",
        lines: &["PROGRAM --sendmail -t -i < message.eml"],
        short: false,
        raw_only: true,
    },
];

/// Every exit status, with a short name (for `-h`) and what leads to it (for `--help`).
const EXIT_STATUS: [(Exit, &str, &str); 12] = [
    (
        Exit::Sent,
        "sent",
        "the server accepted the message (with --quit-after or --serverinfo: the dialogue \
         went as far as asked)",
    ),
    (
        Exit::Usage,
        "usage",
        "an unknown option, a bad value, options that cannot go together",
    ),
    (
        Exit::DataErr,
        "bad message or address",
        "CR or LF in a header or an address, an invalid address, a --data message that \
         cannot be sent as it is",
    ),
    (
        Exit::NoInput,
        "input file missing",
        "an attachment, body, --data, password or token file",
    ),
    (
        Exit::NoHost,
        "host not found",
        "the server's name does not resolve",
    ),
    (
        Exit::Unavailable,
        "permanent rejection",
        "a 5xx reply, a needed extension missing, the message larger than the server's SIZE",
    ),
    (
        Exit::Software,
        "internal error",
        "the embedded test server failed, or a library panicked",
    ),
    (
        Exit::CantCreate,
        "--result-file cannot be created",
        "the outcome file's directory is missing or not writable (checked before connecting)",
    ),
    (
        Exit::TempFail,
        "temporary failure",
        "a 4xx reply, a timeout, a refused or dropped connection",
    ),
    (
        Exit::Protocol,
        "protocol violation",
        "a malformed reply, or bytes after the STARTTLS 220",
    ),
    (
        Exit::NoPerm,
        "authentication failed",
        "535, no usable AUTH mechanism, a refused OAuth 2.0 token, a failed secret command",
    ),
    (
        Exit::Config,
        "TLS, certificate or configuration",
        "no STARTTLS, an untrusted certificate, a bad account file, sendmail mode with no \
         server",
    ),
];

/// The width the epilogues are wrapped to, so that an 80-column terminal shows them as they are.
const WIDTH: usize = 80;

fn examples(client: Client, short: bool) -> impl Iterator<Item = &'static Example> {
    EXAMPLES.iter().filter(move |example| {
        (!short || example.short) && (client == Client::Raw || !example.raw_only)
    })
}

fn command_line(client: Client, line: &str) -> String {
    line.replace("PROGRAM", client.name())
}

/// `words` wrapped to [`WIDTH`], the first line after `first`, the others after `rest`.
fn wrap(words: &str, first: &str, rest: &str) -> String {
    wrap_units(words.split_whitespace(), first, rest)
}

/// `units` joined by spaces and wrapped to [`WIDTH`] between units, never inside one.
fn wrap_units<'a>(units: impl IntoIterator<Item = &'a str>, first: &str, rest: &str) -> String {
    let mut out = String::new();
    let mut line = first.to_owned();
    let mut empty = true;
    for unit in units {
        if !empty && line.chars().count() + 1 + unit.chars().count() > WIDTH {
            out.push_str(line.trim_end());
            out.push('\n');
            line = rest.to_owned();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(unit);
        empty = false;
    }
    out.push_str(line.trim_end());
    out
}

/// `-h`'s text after the options: the main examples and the exit statuses in one sentence.
pub fn after_help(client: Client) -> String {
    let mut out = String::from("Examples (--help shows more, and what each exit status means):\n");
    for example in examples(client, true) {
        out.push_str(&wrap(example.what, "  # ", "  # "));
        out.push('\n');
        for line in example.lines {
            out.push_str(&format!("  {}\n", command_line(client, line)));
        }
        out.push('\n');
    }
    // Each status stays on one line with its code: "77 authentication failed,".
    let last = EXIT_STATUS.len() - 1;
    let statuses: Vec<String> = EXIT_STATUS
        .iter()
        .enumerate()
        .map(|(at, (exit, name, _))| {
            let end = if at == last { '.' } else { ',' };
            format!("{} {name}{end}", exit.code())
        })
        .collect();
    out.push_str(&wrap_units(
        std::iter::once("Exit status:").chain(statuses.iter().map(String::as_str)),
        "",
        "",
    ));
    out
}

/// `--help`'s text after the options: every example, and the exit status table.
pub fn after_long_help(client: Client) -> String {
    let mut out = String::from("Examples:\n");
    for example in examples(client, false) {
        out.push_str(&wrap(example.what, "  # ", "  # "));
        out.push('\n');
        for line in example.lines {
            out.push_str(&format!("  {}\n", command_line(client, line)));
        }
        out.push('\n');
    }
    out.push_str("Exit status (sysexits.h):\n");
    for (exit, name, why) in EXIT_STATUS {
        let entry = format!("{name}: {why}");
        out.push_str(&wrap(&entry, &format!("  {:>2}  ", exit.code()), "      "));
        out.push('\n');
    }
    out.trim_end().to_owned()
}

/// The hidden options' names.
const COMPLETIONS: &str = "generate-completions";
const MAN: &str = "generate-man";

/// `command` with the hidden `--generate-completions SHELL` and `--generate-man`.
pub(crate) fn with_generators(command: Command) -> Command {
    command
        .arg(
            Arg::new(COMPLETIONS)
                .long(COMPLETIONS)
                .value_name("SHELL")
                .value_parser(clap::value_parser!(clap_complete::Shell))
                .help("Print a completion script for SHELL on standard output, and exit")
                .hide(true),
        )
        .arg(
            Arg::new(MAN)
                .long(MAN)
                .action(ArgAction::SetTrue)
                .help("Print the man page (roff) on standard output, and exit")
                .hide(true),
        )
}

/// When `matches` asks for a completion script or the man page: prints it from `command`
/// (the binary's own, without the hidden options) and returns the exit status.
pub(crate) fn generate_if_asked(matches: &ArgMatches, command: Command) -> Option<i32> {
    let name = command.get_name().to_owned();
    let mut out = Vec::new();
    let what = if let Some(shell) = matches.get_one::<clap_complete::Shell>(COMPLETIONS) {
        let mut command = command;
        clap_complete::generate(*shell, &mut command, name.clone(), &mut out);
        format!("the {shell} completion script")
    } else if matches.get_flag(MAN) {
        out = man_page(command);
        "the man page".to_owned()
    } else {
        return None;
    };
    let mut stdout = std::io::stdout().lock();
    Some(match stdout.write_all(&out).and_then(|()| stdout.flush()) {
        Ok(()) => Exit::Sent.code(),
        Err(error) => {
            eprintln!("{name}: cannot write {what} to standard output: {error}");
            Exit::CantCreate.code()
        }
    })
}

/// The man page: clap_mangen's title, name, synopsis, description and options (a section
/// per help heading), then the exit statuses and examples from the tables above as roff of
/// their own (the epilogue text itself would be filled into one paragraph), then the version.
fn man_page(command: Command) -> Vec<u8> {
    let client = if command.get_name() == Client::Raw.name() {
        Client::Raw
    } else {
        Client::Lib
    };
    let has_version = command.get_version().is_some();
    let man = clap_mangen::Man::new(command).manual("SMTP workbench");
    let mut roff = Roff::new();
    roff.control("SH", ["EXIT STATUS"]);
    for (exit, name, why) in EXIT_STATUS {
        roff.control("TP", [])
            .text([bold(exit.code().to_string())])
            .text([roman(format!("{name}: {why}."))]);
    }
    roff.control("SH", ["EXAMPLES"]);
    for example in examples(client, false) {
        roff.control("PP", []).text([roman(example.what)]);
        roff.control("RS", ["4"]).control("nf", []);
        for line in example.lines {
            roff.text([bold(command_line(client, line))]);
        }
        roff.control("fi", []).control("RE", []);
    }
    // Each part is rendered on its own, and each starts with the same two-line preamble
    // (the definition of the Aq string): keep the first one only. Writing into a Vec cannot
    // fail.
    let mut parts: Vec<Vec<u8>> = vec![Vec::new(); 7];
    let _ = man.render_title(&mut parts[0]);
    let _ = man.render_name_section(&mut parts[1]);
    let _ = man.render_synopsis_section(&mut parts[2]);
    let _ = man.render_description_section(&mut parts[3]);
    let _ = man.render_options_section(&mut parts[4]);
    let _ = roff.to_writer(&mut parts[5]);
    if has_version {
        let _ = man.render_version_section(&mut parts[6]);
    }
    let mut page = String::new();
    let mut preamble: Option<String> = None;
    for part in parts {
        let text = String::from_utf8_lossy(&part).into_owned();
        let body = match &preamble {
            None => {
                let end = text.find(".TH").unwrap_or(0);
                preamble = Some(text[..end].to_owned());
                text.as_str()
            }
            Some(preamble) => text.strip_prefix(preamble.as_str()).unwrap_or(&text),
        };
        page.push_str(body);
    }
    page.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_exit_status_is_listed_once_in_order() {
        let codes: Vec<i32> = EXIT_STATUS.iter().map(|(exit, _, _)| exit.code()).collect();
        assert_eq!(codes, [0, 64, 65, 66, 68, 69, 70, 73, 75, 76, 77, 78]);
    }

    #[test]
    fn epilogues_fit_an_80_column_terminal() {
        for client in [Client::Raw, Client::Lib] {
            for text in [after_help(client), after_long_help(client)] {
                for line in text.lines() {
                    assert!(line.chars().count() <= WIDTH, "{line:?}");
                }
                assert!(!text.contains("PROGRAM"), "{text}");
                assert!(text.contains(client.name()), "{text}");
            }
        }
        assert!(after_long_help(Client::Raw).contains("raw-client --sendmail -t -i"));
        assert!(!after_long_help(Client::Lib).contains("--sendmail"));
        let short = after_help(Client::Lib);
        assert!(
            short.contains("64 usage,") && short.contains("\n77 authentication failed,"),
            "{short}"
        );
        let long = after_long_help(Client::Lib);
        assert!(
            long.contains("\n  73  --result-file cannot be created: "),
            "{long}"
        );
        assert!(
            long.contains("--quit-after rcpt") && long.contains("--serverinfo"),
            "{long}"
        );
    }

    #[test]
    fn wrapping_keeps_the_indent_and_every_word() {
        let text = "word ".repeat(40);
        let wrapped = wrap(&text, "  12  ", "      ");
        assert!(wrapped.lines().count() > 1);
        assert!(wrapped.starts_with("  12  word"));
        for line in wrapped.lines().skip(1) {
            assert!(line.starts_with("      word"), "{line:?}");
        }
        assert_eq!(
            wrapped.split_whitespace().filter(|w| *w == "word").count(),
            40
        );
    }
}
