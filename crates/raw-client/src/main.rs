//! `raw-client`: send one message over SMTP written by hand, and print the dialogue.

use clap::Parser;

/// Sends an email over SMTP, written by hand over TCP and rustls, and prints every line of
/// the dialogue. With no --server it sends a demo message to an embedded test server.
#[derive(Debug, Parser)]
#[command(name = "raw-client", version)]
struct Arguments {
    #[command(flatten)]
    options: cli::Options,

    /// Group MAIL, RCPT and DATA into one write when the server offers PIPELINING (RFC 2920).
    #[arg(long)]
    pipelining: bool,
}

fn main() {
    let arguments = Arguments::parse();
    let settings = raw_client::Settings {
        pipelining: arguments.pipelining,
    };
    let status = cli::run("raw-client", &arguments.options, |job| {
        let (transcript, result) = raw_client::send(job, &settings);
        (transcript, result.map(|_| ()).map_err(Into::into))
    });
    std::process::exit(status);
}
