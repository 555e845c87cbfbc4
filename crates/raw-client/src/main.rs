//! `raw-client`: send one message over SMTP written by hand, and print the dialogue.

use std::io::IsTerminal as _;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

/// Sends an email over SMTP, written by hand over TCP and rustls, and prints every line of
/// the dialogue. With no --server it sends a demo message to an embedded test server.
#[derive(Debug, Parser)]
#[command(
    name = "raw-client",
    version,
    after_help = cli::help::after_help(cli::help::Client::Raw),
    after_long_help = cli::help::after_long_help(cli::help::Client::Raw)
)]
struct Arguments {
    #[command(flatten)]
    options: cli::Options,

    /// Group commands into as few writes as the RFCs allow when the server offers
    /// PIPELINING (RFC 2920): AUTH PLAIN + MAIL + RCPT + DATA, then message + . + QUIT.
    #[arg(long, help_heading = cli::heading::CONNECTION)]
    pipelining: bool,

    /// Send the message with BDAT (RFC 3030) instead of DATA when the server offers
    /// CHUNKING: no dot-stuffing, no 354 to wait for; with --pipelining the message leaves
    /// with MAIL and RCPT. Without CHUNKING offered it falls back to DATA, or with
    /// --chunking=required fails (exit 69).
    #[arg(long, help_heading = cli::heading::CONNECTION, value_enum, value_name = "WHEN",
        num_args = 0..=1, default_missing_value = "preferred",
        conflicts_with_all = ["repeat", "connections"])]
    chunking: Option<ChunkingChoice>,

    /// The largest BDAT chunk with --chunking: octets, or with K or M (1024-based).
    #[arg(long, help_heading = cli::heading::CONNECTION, value_name = "SIZE",
        default_value = "256K", value_parser = chunk_size, requires = "chunking")]
    chunk_size: u64,

    /// Send the message N times on each connection (a load generator, like smtp-source).
    #[arg(long, help_heading = cli::heading::LOAD, conflicts_with_all = ["quit_after", "serverinfo"], value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,

    /// Run C connections in parallel, each sending --repeat messages.
    #[arg(long, help_heading = cli::heading::LOAD, conflicts_with_all = ["quit_after", "serverinfo"], value_name = "C", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    connections: u32,

    /// An SMTP shell: type the dialogue yourself, line by line, and read each reply. STARTTLS,
    /// AUTH PLAIN/LOGIN (typed alone: it asks for the user and password) and the message after
    /// DATA get help; ? says what the server accepts next. With --quiet or a non-terminal
    /// standard input it reads commands from standard input, for scripts.
    #[arg(long, help_heading = cli::heading::CONNECTION, conflicts_with_all = [
        "pipelining", "repeat", "connections", "to", "cc", "bcc", "reply_to", "subject",
        "body", "body_file", "html_file", "attach", "header", "date", "message_id",
        "data", "quit_after", "serverinfo",
    ])]
    interactive: bool,
}

/// `--chunking[=WHEN]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ChunkingChoice {
    /// BDAT when offered, else DATA (with a note in the transcript).
    Preferred,
    /// BDAT, or fail when CHUNKING is not offered.
    Required,
}

/// `--chunk-size`: 1 octet to 1 GiB, as `65536`, `64K` or `4M`.
fn chunk_size(text: &str) -> Result<u64, String> {
    let (number, unit) = match text.strip_suffix(['K', 'k']) {
        Some(number) => (number, 1024),
        None => match text.strip_suffix(['M', 'm']) {
            Some(number) => (number, 1024 * 1024),
            None => (text, 1),
        },
    };
    let size = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|&size| (1..=1 << 30).contains(&size));
    size.ok_or_else(|| {
        format!("{text:?} is not a chunk size from 1 octet to 1024M: write e.g. 65536, 256K or 4M")
    })
}

/// Messages at least this large get a progress bar of their own (in bytes).
const LARGE_MESSAGE: u64 = 4 * 1024 * 1024;

fn main() {
    let (program, options, settings, connections) = match sendmail_mode() {
        Some(Ok(options)) => ("sendmail", options, raw_client::Settings::default(), 1),
        Some(Err(sentence)) => {
            eprintln!("sendmail: {sentence}");
            std::process::exit(cli::Exit::Usage.code());
        }
        None => {
            let arguments: Arguments = cli::parse_arguments();
            if arguments.interactive {
                std::process::exit(raw_client::interactive(&arguments.options));
            }
            let settings = raw_client::Settings {
                pipelining: arguments.pipelining,
                repeat: arguments.repeat,
                chunking: arguments
                    .chunking
                    .map(|choice| raw_client::session::Chunking {
                        required: choice == ChunkingChoice::Required,
                        size: arguments.chunk_size,
                    }),
            };
            (
                "raw-client",
                arguments.options,
                settings,
                arguments.connections,
            )
        }
    };
    std::process::exit(send(program, &options, &settings, connections));
}

/// `raw-client --sendmail ARGS`, or this binary installed (or linked) as `sendmail`: the
/// sendmail command line of `cli::sendmail`, or its usage error.
fn sendmail_mode() -> Option<Result<cli::Options, String>> {
    let mut args = std::env::args_os();
    let called = args.next().unwrap_or_default();
    let name = std::path::Path::new(&called)
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let rest: Vec<_> = args.collect();
    if name == "sendmail" {
        return Some(cli::sendmail::options(rest));
    }
    match rest.split_first() {
        Some((first, rest)) if first == "--sendmail" => {
            Some(cli::sendmail::options(rest.iter().cloned()))
        }
        _ => None,
    }
}

/// One send (or load run), with a progress bar on a terminal; returns the exit status.
fn send(
    program: &str,
    options: &cli::Options,
    settings: &raw_client::Settings,
    connections: u32,
) -> i32 {
    let total = u64::from(settings.repeat) * u64::from(connections);
    let load = total > 1;
    let terminal = !options.quiet && std::io::stderr().is_terminal();
    cli::run(program, options, |job| {
        if job.serverinfo {
            return raw_client::serverinfo(job);
        }
        // A load run counts messages; one large message counts its bytes.
        let size = job.message.expected_len();
        let progress = match (terminal, load) {
            (false, _) => Progress::None,
            (true, true) => Progress::Messages(bar(
                total,
                "{bar:40} {pos}/{len} messages, {per_sec}, eta {eta}",
            )),
            (true, false) if size >= LARGE_MESSAGE => Progress::Bytes(bar(
                size,
                "{bar:40} {bytes}/{total_bytes} of message data, {bytes_per_sec}, eta {eta}",
            )),
            (true, false) => Progress::None,
        };
        let (transcript, result) = raw_client::send_many(job, settings, connections, &progress);
        progress.finish();
        if let (true, Ok(report)) = (load, &result) {
            eprintln!("raw-client: {}", report.summary());
        }
        let sent = result.map(|report| cli::Sent {
            reply: report.reply,
            warnings: report.warnings,
            stopped: report.stopped,
            serverinfo: None,
        });
        (transcript, sent)
    })
}

/// The progress bar on standard error, if any.
enum Progress {
    None,
    Messages(ProgressBar),
    Bytes(ProgressBar),
}

impl Progress {
    fn finish(&self) {
        if let Progress::Messages(bar) | Progress::Bytes(bar) = self {
            bar.finish_and_clear();
        }
    }
}

impl raw_client::Observer for Progress {
    fn message_sent(&self) {
        if let Progress::Messages(bar) = self {
            bar.inc(1);
        }
    }

    fn data_sent(&self, bytes: u64) {
        if let Progress::Bytes(bar) = self {
            bar.inc(bytes);
        }
    }
}

fn bar(length: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::new(length);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}
