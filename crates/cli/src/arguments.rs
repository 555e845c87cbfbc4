//! Parsing a binary's command line so that every usage error exits 64 (sysexits `EX_USAGE`)
//! with clap's own message, while `--help` and `--version` still exit 0.

use clap::error::ErrorKind;

use crate::Exit;

/// Parses the process arguments into `T`; on a usage error prints clap's message and exits
/// with 64 instead of clap's 2.
pub fn parse_arguments<T: clap::Parser>() -> T {
    match T::try_parse() {
        Ok(arguments) => arguments,
        Err(error) => exit_for(&error),
    }
}

fn exit_for(error: &clap::Error) -> ! {
    let _ = error.print();
    let code = match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
        _ => Exit::Usage.code(),
    };
    std::process::exit(code)
}
