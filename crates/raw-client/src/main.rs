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
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,

    /// Run C connections in parallel, each sending --repeat messages.
    #[arg(long, value_name = "C", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    connections: u32,
}

fn main() {
    let arguments = Arguments::parse();
    let settings = raw_client::Settings {
        pipelining: arguments.pipelining,
        repeat: arguments.repeat,
    };
    let connections = arguments.connections;
    let total = u64::from(arguments.repeat) * u64::from(connections);
    let load = total > 1;
    let progress = (load && !arguments.options.quiet && std::io::stderr().is_terminal())
        .then(|| progress_bar(total));
    let status = cli::run("raw-client", &arguments.options, |job| {
        let tick = || {
            if let Some(bar) = &progress {
                bar.inc(1);
            }
        };
        let (transcript, result) = raw_client::send_many(job, &settings, connections, &tick);
        if let Some(bar) = &progress {
            bar.finish_and_clear();
        }
        if let (true, Ok(report)) = (load, &result) {
            eprintln!("raw-client: {}", report.summary());
        }
        (transcript, result.map(|_| ()).map_err(Into::into))
    });
    std::process::exit(status);
}

fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} messages, {per_sec}, eta {eta}")
    {
        bar.set_style(style);
    }
    bar
}
