//! `lib-client`: send one message through lettre, and print the dialogue rebuilt from
//! lettre's own events.

use clap::Parser;

/// Sends an email through lettre (the way most Rust programs do) and prints the dialogue,
/// rebuilt from lettre's own events. With no --server it sends a demo message to an
/// embedded test server. It takes the same options as raw-client.
#[derive(Debug, Parser)]
#[command(
    name = "lib-client",
    version,
    after_help = cli::help::after_help(cli::help::Client::Lib),
    after_long_help = cli::help::after_long_help(cli::help::Client::Lib)
)]
struct Arguments {
    #[command(flatten)]
    options: cli::Options,
}

fn main() {
    let arguments: Arguments = cli::parse_arguments();
    // lib-client turns a panic inside lettre into an error sentence; the default hook would
    // also print a backtrace-style message, so keep the user's terminal clean.
    std::panic::set_hook(Box::new(|_| {}));
    std::process::exit(cli::run("lib-client", &arguments.options, lib_client::send));
}
