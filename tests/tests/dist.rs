//! What `cargo xtask dist` ships, from the real binaries: the man page of `--generate-man`
//! (every option under its help heading, the exit statuses, the examples), the completion
//! scripts of `--generate-completions SHELL` (bash's run in bash), and the help they are
//! made from (`-h` and `--help` grouped by purpose, the hidden options hidden).

use std::path::Path;
use std::process::Command;

use clap::Args as _;
use workspace_tests::{TempDir, binary};

const CLIENTS: [&str; 2] = ["raw-client", "lib-client"];

/// The help headings of the shared options, in the order `--help` shows them.
const HEADINGS: [&str; 6] = [
    "Connection",
    "TLS",
    "Authentication",
    "Envelope",
    "Message",
    "Output",
];

/// Exit code, standard output and standard error of `client ARGS`, with no `SMTP_*`
/// variable of the caller's (clap shows their values in the help).
fn run(client: &str, args: &[&str]) -> (i32, String, String) {
    let mut command = Command::new(binary(client));
    command.args(args);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SMTP_") {
            command.env_remove(&name);
        }
    }
    let output = command.output().expect("the client runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Every shared option as (long name, help heading), from the clap definition itself.
fn shared_options() -> Vec<(String, String)> {
    let command = cli::Options::augment_args(clap::Command::new("options"));
    command
        .get_arguments()
        .filter(|arg| !arg.is_hide_set())
        .map(|arg| {
            let long = arg.get_long().expect("every shared option is long");
            let heading = arg
                .get_help_heading()
                .unwrap_or_else(|| panic!("--{long} has no help heading"));
            (long.to_owned(), heading.to_owned())
        })
        .collect()
}

/// The options of a client binary that are its own, with their headings.
fn own_options(client: &str) -> Vec<(&'static str, &'static str)> {
    match client {
        "raw-client" => vec![
            ("pipelining", "Connection"),
            ("interactive", "Connection"),
            ("repeat", "Load"),
            ("connections", "Load"),
        ],
        _ => Vec::new(),
    }
}

/// An option name as roff writes it: `\-\-quit\-after`.
fn roff(long: &str) -> String {
    format!("\\-\\-{}", long.replace('-', "\\-"))
}

/// The man page's sections, as (name, text up to the next section).
fn sections(page: &str) -> Vec<(String, String)> {
    let mut sections: Vec<(String, String)> = Vec::new();
    for line in page.lines() {
        if let Some(name) = line.strip_prefix(".SH ") {
            sections.push((name.trim_matches('"').to_owned(), String::new()));
        } else if let Some((_, text)) = sections.last_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    sections
}

#[test]
fn every_shared_option_has_a_heading_of_the_six() {
    let options = shared_options();
    assert!(options.len() > 40, "{options:?}");
    for (long, heading) in &options {
        assert!(HEADINGS.contains(&heading.as_str()), "--{long}: {heading}");
    }
    let under = |heading: &str| -> Vec<&str> {
        options
            .iter()
            .filter(|(_, h)| h == heading)
            .map(|(long, _)| long.as_str())
            .collect()
    };
    assert_eq!(under("TLS"), ["tls", "ca-file", "insecure", "pin-sha256"]);
    assert!(under("Connection").contains(&"quit-after"));
    assert!(under("Connection").contains(&"serverinfo"));
    assert!(under("Envelope").contains(&"read-envelope"));
    assert!(under("Message").contains(&"data"));
    assert!(under("Authentication").contains(&"oauth2-token-command"));
    assert!(under("Output").contains(&"result-file"));
}

#[test]
fn the_man_page_has_every_option_under_its_heading() {
    for client in CLIENTS {
        let (code, page, stderr) = run(client, &["--generate-man"]);
        assert_eq!(code, 0, "{client}: {stderr}");
        assert!(stderr.is_empty(), "{client}: {stderr}");
        assert!(
            page.contains(&format!("\n.TH {client} 1 ")),
            "{client}: {page}"
        );
        let sections = sections(&page);
        let names: Vec<&str> = sections.iter().map(|(name, _)| name.as_str()).collect();
        let mut want = vec!["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS"];
        let upper: Vec<String> = HEADINGS.iter().map(|h| h.to_uppercase()).collect();
        want.extend(upper.iter().map(String::as_str));
        if client == "raw-client" {
            want.push("LOAD");
        }
        want.extend(["EXIT STATUS", "EXAMPLES", "VERSION"]);
        assert_eq!(names, want, "{client}");
        let section = |name: &str| -> &str {
            sections
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, text)| text.as_str())
                .unwrap_or_default()
        };
        let mut options: Vec<(String, String)> = shared_options();
        options.extend(
            own_options(client)
                .into_iter()
                .map(|(long, heading)| (long.to_owned(), heading.to_owned())),
        );
        for (long, heading) in &options {
            let entry = format!("\\fB{}\\fR", roff(long));
            assert!(
                section(&heading.to_uppercase()).contains(&entry),
                "{client}: --{long} is not under {heading}"
            );
        }
        // The options section only has --help and --version; nothing hidden is shown.
        assert!(section("OPTIONS").contains(&roff("help")), "{client}");
        assert!(
            !page.contains("generate\\-"),
            "{client}: the hidden options show"
        );
        // The values of an option and its variable are there.
        let connection = section("CONNECTION");
        assert!(connection.contains("rcpt"), "{client}: {connection}");
        assert!(connection.contains("\\fBSMTP_SERVER\\fR"), "{client}");
        let exit = section("EXIT STATUS");
        for code in [0, 64, 65, 66, 68, 69, 70, 73, 75, 76, 77, 78] {
            assert!(
                exit.contains(&format!(".TP\n\\fB{code}\\fR\n")),
                "{client}: exit {code}: {exit}"
            );
        }
        let examples = section("EXAMPLES");
        assert!(examples.contains(&roff("quit-after")), "{client}");
        assert!(examples.contains(&roff("serverinfo")), "{client}");
        assert_eq!(
            examples.contains(&roff("sendmail")),
            client == "raw-client",
            "{client}: {examples}"
        );
        // One preamble, at the top: the parts clap_mangen renders are joined without theirs.
        assert_eq!(page.matches(".ds Aq").count(), 2, "{client}");
    }
}

#[test]
fn bash_completes_options_and_the_values_of_quit_after() {
    let dir = TempDir::new("dist");
    for client in CLIENTS {
        let (code, script, stderr) = run(client, &["--generate-completions", "bash"]);
        assert_eq!(code, 0, "{client}: {stderr}");
        assert!(script.contains("--quit-after"), "{client}");
        assert!(
            script.contains("compgen -W \"connect greeting ehlo tls auth mail rcpt data\""),
            "{client}"
        );
        assert!(
            !script.contains("generate-"),
            "{client}: hidden options complete"
        );
        let function = script
            .split("complete -F ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("the script registers a function")
            .to_owned();
        assert!(script.trim_end().ends_with("fi"), "{client}");
        assert!(script.contains(&format!(" {client}\n")), "{client}");
        let file = dir.file(&format!("{client}.bash"), script.as_bytes());
        // What bash itself offers: run the completion function as `complete -F` would.
        let complete = |words: &[&str]| -> Vec<String> {
            let line: Vec<String> = words.iter().map(|word| shell_quote_str(word)).collect();
            let line = line.join(" ");
            let probe = format!(
                "source {file}\nCOMP_WORDS=({line})\nCOMP_CWORD={cword}\n\
                 {function} {client} {current} {previous}\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
                file = shell_quote(&file),
                cword = words.len() - 1,
                current = shell_quote_str(words[words.len() - 1]),
                previous = shell_quote_str(words[words.len() - 2]),
            );
            let output = Command::new("bash")
                .args(["--norc", "--noprofile", "-c", &probe])
                .output()
                .expect("bash runs");
            assert!(output.status.success(), "{probe}: {output:?}");
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(
            complete(&[client, "--quit-after", ""]),
            [
                "connect", "greeting", "ehlo", "tls", "auth", "mail", "rcpt", "data"
            ],
            "{client}"
        );
        assert_eq!(
            complete(&[client, "--quit-after", "r"]),
            ["rcpt"],
            "{client}"
        );
        assert_eq!(
            complete(&[client, "--quit-a"]),
            ["--quit-after"],
            "{client}"
        );
        assert_eq!(
            complete(&[client, "--transcript-format", "j"]),
            ["json"],
            "{client}"
        );
        let pipelining = complete(&[client, "--pipel"]);
        assert_eq!(
            pipelining == ["--pipelining"],
            client == "raw-client",
            "{client}: {pipelining:?}"
        );
    }
}

fn shell_quote(path: &Path) -> String {
    shell_quote_str(&path.display().to_string())
}

fn shell_quote_str(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

#[test]
fn every_shell_gets_a_script_and_an_unknown_one_is_a_usage_error() {
    for client in CLIENTS {
        // Elvish's and PowerShell's scripts complete option names only, not their values.
        for (shell, mark, values) in [
            ("bash", "complete -F", true),
            ("zsh", "#compdef", true),
            ("fish", "complete -c", true),
            ("elvish", "edit:completion:arg-completer", false),
            ("powershell", "Register-ArgumentCompleter", false),
        ] {
            let (code, script, stderr) = run(client, &["--generate-completions", shell]);
            assert_eq!(code, 0, "{client} {shell}: {stderr}");
            assert!(script.contains(mark), "{client} {shell}: {script}");
            assert!(script.contains(client), "{client} {shell}");
            assert!(script.contains("quit-after"), "{client} {shell}");
            assert_eq!(script.contains("rcpt"), values, "{client} {shell}");
            assert!(!script.contains("generate-"), "{client} {shell}");
        }
        let (code, stdout, stderr) = run(client, &["--generate-completions", "tcsh"]);
        assert_eq!(code, 64, "{client}: {stderr}");
        assert!(stdout.is_empty(), "{client}");
        assert!(
            stderr.contains("invalid value 'tcsh'"),
            "{client}: {stderr}"
        );
        assert!(
            stderr.contains("bash, elvish, fish, powershell, zsh"),
            "{client}: {stderr}"
        );
    }
}

#[test]
fn help_is_grouped_by_purpose_and_ends_with_examples_and_exit_statuses() {
    for client in CLIENTS {
        let mut headings: Vec<&str> = vec!["Options"];
        headings.extend(HEADINGS);
        if client == "raw-client" {
            headings.push("Load");
        }
        for flag in ["-h", "--help"] {
            let (code, help, stderr) = run(client, &[flag]);
            assert_eq!(code, 0, "{client} {flag}: {stderr}");
            let shown: Vec<&str> = help
                .lines()
                .filter(|line| !line.starts_with(' ') && line.ends_with(':'))
                .map(|line| line.trim_end_matches(':'))
                .collect();
            let mut want = headings.clone();
            want.push(if flag == "-h" {
                "Examples (--help shows more, and what each exit status means)"
            } else {
                "Examples"
            });
            if flag == "--help" {
                want.push("Exit status (sysexits.h)");
            }
            assert_eq!(shown, want, "{client} {flag}:\n{help}");
            assert!(
                !help.contains("--generate"),
                "{client} {flag}: hidden options show"
            );
            // Each option is listed under its heading: --ca-file after "TLS:", before
            // "Authentication:".
            let at = |text: &str| help.find(text).unwrap_or(usize::MAX);
            assert!(at("\nTLS:") < at("--ca-file <PEM>"), "{client} {flag}");
            assert!(
                at("--ca-file <PEM>") < at("\nAuthentication:"),
                "{client} {flag}"
            );
            assert!(
                at("\nEnvelope:") < at("-t, --read-envelope"),
                "{client} {flag}"
            );
            for line in help
                .lines()
                .skip_while(|line| !line.starts_with("Examples"))
            {
                assert!(line.chars().count() <= 80, "{client} {flag}: {line:?}");
            }
        }
        let (_, short, _) = run(client, &["-h"]);
        assert!(short.contains("\n  {client}\n".replace("{client}", client).as_str()));
        assert!(short.contains("--password-file ~/.smtp-pass --data message.eml -t"));
        assert!(short.contains("Exit status: 0 sent, 64 usage, 65 bad message or address,"));
        assert!(
            short
                .trim_end()
                .ends_with("78 TLS, certificate or configuration.")
        );
        let (_, long, _) = run(client, &["--help"]);
        for example in [
            "--quit-after rcpt",
            "--serverinfo\n",
            "--transcript-format json --result-file out.json",
        ] {
            assert!(long.contains(example), "{client}: {example}");
        }
        assert_eq!(
            long.contains(&format!("{client} --sendmail -t -i < message.eml")),
            client == "raw-client",
            "{client}"
        );
        for row in [
            "\n   0  sent: ",
            "\n  64  usage: ",
            "\n  73  --result-file cannot be created: ",
            "\n  77  authentication failed: ",
            "\n  78  TLS, certificate or configuration: ",
        ] {
            assert!(long.contains(row), "{client}: {row:?}\n{long}");
        }
    }
}
