//! `raw-client`: send one message over SMTP written by hand, and print the dialogue.

use std::io::IsTerminal as _;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

/// Sends an email over SMTP, written by hand over TCP and rustls, and prints every line of
/// the dialogue. With no --server it sends a demo message to an embedded test server.
#[derive(Debug, Parser)]
#[command(name = "raw-client", version)]
struct Arguments {
    #[command(flatten)]
    options: cli::Options,

    /// Group commands into as few writes as the RFCs allow when the server offers
    /// PIPELINING (RFC 2920): AUTH PLAIN + MAIL + RCPT + DATA, then message + . + QUIT.
    #[arg(long)]
    pipelining: bool,

    /// Send the message N times on each connection (a load generator, like smtp-source).
    #[arg(long, conflicts_with_all = ["quit_after", "serverinfo"], value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,

    /// Run C connections in parallel, each sending --repeat messages.
    #[arg(long, conflicts_with_all = ["quit_after", "serverinfo"], value_name = "C", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    connections: u32,

    /// An SMTP shell: type the dialogue yourself, line by line, and read each reply. STARTTLS,
    /// AUTH PLAIN/LOGIN (typed alone: it asks for the user and password) and the message after
    /// DATA get help; ? says what the server accepts next. With --quiet or a non-terminal
    /// standard input it reads commands from standard input, for scripts.
    #[arg(long, conflicts_with_all = [
        "pipelining", "repeat", "connections", "to", "cc", "bcc", "reply_to", "subject",
        "body", "body_file", "html_file", "attach", "header", "date", "message_id",
        "data", "quit_after", "serverinfo",
    ])]
    interactive: bool,
}

/// Messages at least this large get a progress bar of their own (in bytes).
const LARGE_MESSAGE: u64 = 4 * 1024 * 1024;

fn main() {
    let arguments: Arguments = cli::parse_arguments();
    if arguments.interactive {
        std::process::exit(raw_client::interactive(&arguments.options));
    }
    let settings = raw_client::Settings {
        pipelining: arguments.pipelining,
        repeat: arguments.repeat,
    };
    let connections = arguments.connections;
    let total = u64::from(arguments.repeat) * u64::from(connections);
    let load = total > 1;
    let terminal = !arguments.options.quiet && std::io::stderr().is_terminal();
    let status = cli::run("raw-client", &arguments.options, |job| {
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
        let (transcript, result) = raw_client::send_many(job, &settings, connections, &progress);
        progress.finish();
        if let (true, Ok(report)) = (load, &result) {
            eprintln!("raw-client: {}", report.summary());
        }
        let sent = result.map(|report| cli::Sent {
            reply: report.reply,
            warnings: report.warnings,
            stopped: report.stopped,
        });
        (transcript, sent)
    });
    std::process::exit(status);
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
