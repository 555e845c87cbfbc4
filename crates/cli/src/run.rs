//! The part of `main` both clients share: options to job, the embedded default, printing the
//! transcript, and the exit status.

use std::io::Write as _;
use std::time::Duration;

use transcript::Transcript;

use crate::{Exit, Failure, Job, Options, start_embedded};

/// Runs one send and returns the process exit status.
///
/// `send` does the SMTP work and returns the transcript whatever happened. The transcript
/// goes to standard output; warnings, errors and the stored message's path go to standard
/// error as `program: sentence`.
pub fn run(
    program: &str,
    options: &Options,
    send: impl FnOnce(&Job) -> (Transcript, Result<(), Failure>),
) -> i32 {
    let mut warn = |text: &str| eprintln!("{program}: warning: {text}");
    let mut job = match Job::from_options(options, &mut warn) {
        Ok(job) => job,
        Err(failure) => return fail(program, &failure),
    };
    let server = match start_embedded(&mut job) {
        Ok(server) => server,
        Err(failure) => return fail(program, &failure),
    };
    let (transcript, result) = send(&job);
    if !job.output.quiet {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(job.output.render(&transcript).as_bytes());
        let _ = stdout.flush();
    }
    if let Err(failure) = result {
        return fail(program, &failure);
    }
    if let Some(server) = server {
        let sessions = server.wait_for_sessions(1, Duration::from_secs(5));
        let stored = sessions
            .iter()
            .flat_map(|session| &session.message_ids)
            .next();
        match stored {
            Some(id) => eprintln!(
                "{program}: the embedded test server stored the message as {}",
                server.store_dir().join(format!("{id}.eml")).display()
            ),
            None => {
                let failure = Failure::new(
                    Exit::Software,
                    "the embedded test server accepted the message but stored nothing",
                );
                return fail(program, &failure);
            }
        }
    }
    Exit::Sent.code()
}

fn fail(program: &str, failure: &Failure) -> i32 {
    eprintln!("{program}: {failure}");
    failure.exit.code()
}
