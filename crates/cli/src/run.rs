//! The part of `main` both client binaries share: options to job, the embedded default,
//! printing the transcript, warnings and errors, and the exit status.

use std::io::Write as _;

use transcript::Transcript;

use crate::embedded::{self, Embedded};
use crate::{Exit, Failure, Job, Options, Plan, Sent};

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
    let (job, embedded) = match job_for(plan) {
        Ok(started) => started,
        Err(failure) => return fail(&failure),
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

/// The job at the server the options name, or at the embedded test server started for this
/// run (kept running as long as the returned [`Embedded`] lives).
pub fn job_for(plan: Plan) -> Result<(Job, Option<Embedded>), Failure> {
    match plan.remote_endpoint() {
        Some(endpoint) => Ok((plan.into_job(endpoint), None)),
        None => embedded::start(plan).map(|(job, server)| (job, Some(server))),
    }
}
