//! The part of `main` both client binaries share: options to job, the embedded default,
//! printing the transcript, warnings and errors, and the exit status.

use std::io::Write as _;

use transcript::Transcript;

use crate::{Exit, Failure, Job, Options, Plan, Sent, embedded};

/// Runs one send and returns the process exit status.
///
/// `send` does the SMTP work and returns the transcript whatever happened. The transcript
/// goes to standard output; warnings, errors and the stored message's path go to standard
/// error as `program: sentence`.
pub fn run(
    program: &str,
    options: &Options,
    send: impl FnOnce(&Job) -> (Transcript, Result<Sent, Failure>),
) -> i32 {
    let warn = |text: &str| eprintln!("{program}: warning: {text}");
    let fail = |failure: &Failure| {
        eprintln!("{program}: {failure}");
        failure.exit().code()
    };
    let plan = match Plan::from_options(options, &mut |text| warn(text)) {
        Ok(plan) => plan,
        Err(failure) => return fail(&failure),
    };
    let (job, embedded) = match plan.remote_endpoint() {
        Some(endpoint) => (plan.into_job(endpoint), None),
        None => match embedded::start(plan) {
            Ok((job, server)) => (job, Some(server)),
            Err(failure) => return fail(&failure),
        },
    };
    let (transcript, result) = send(&job);
    if !job.output.quiet {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(
            job.output
                .render(&transcript, result.as_ref().err())
                .as_bytes(),
        );
        let _ = stdout.flush();
    }
    let kept = embedded
        .as_ref()
        .and_then(|server| server.kept_store())
        .map(|dir| {
            format!(
                "{program}: the embedded test server's store is {}",
                dir.display()
            )
        });
    let sent = match result {
        Ok(sent) => sent,
        Err(failure) => {
            if let Some(kept) = kept {
                eprintln!("{kept}");
            }
            return fail(&failure);
        }
    };
    for warning in &sent.warnings {
        warn(&warning.to_string());
    }
    if let Some(server) = &embedded {
        match server.report() {
            Ok(line) => eprintln!("{program}: {line}"),
            Err(failure) => return fail(&failure),
        }
    }
    Exit::Sent.code()
}
