//! Parsing a binary's command line so that every usage error exits 64 (sysexits `EX_USAGE`)
//! with clap's own message, while `--help` and `--version` still exit 0, and the hidden
//! `--generate-completions SHELL` and `--generate-man` print and exit 0 (see `help.rs`).

use clap::error::ErrorKind;

use crate::Exit;

/// Parses the process arguments into `T`; on a usage error prints clap's message and exits
/// with 64 instead of clap's 2. `--generate-completions SHELL` and `--generate-man`, hidden
/// from the help, print the completion script or man page of `T`'s command and exit.
pub fn parse_arguments<T: clap::Parser>() -> T {
    let mut matches = match crate::help::with_generators(T::command()).try_get_matches() {
        Ok(matches) => matches,
        Err(error) => exit_for(&error),
    };
    if let Some(code) = crate::help::generate_if_asked(&matches, T::command()) {
        std::process::exit(code);
    }
    match T::from_arg_matches_mut(&mut matches) {
        Ok(arguments) => arguments,
        Err(error) => exit_for(&error.format(&mut T::command())),
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
