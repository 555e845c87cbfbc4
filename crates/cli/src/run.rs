//! The part of `main` both client binaries share: options to job, the embedded default,
//! printing the transcript, warnings and errors, and the exit status.

use std::io::Write as _;

use transcript::Transcript;

use crate::embedded::{self, Embedded};
use crate::{Exit, Failure, Job, Options, Plan, Sent, TranscriptFormat};

/// Runs one send and returns the process exit status.
///
/// `send` does the SMTP work and returns the transcript whatever happened. The transcript
/// (or, for `--serverinfo`, the server's description) goes to standard output; warnings,
/// errors and the stored message's path go to standard error as `program: sentence`.
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
    // Created now, so a path that cannot be written fails before anything is sent.
    let result_file = match &job.result_file {
        Some(path) => match std::fs::File::create(path) {
            Ok(file) => Some((path, file)),
            Err(e) => {
                return fail(&Failure::ResultFile {
                    path: path.clone(),
                    reason: e.to_string(),
                });
            }
        },
        None => None,
    };
    let (transcript, result) = send(&job);
    // Worked out only when someone reads it: it walks the whole transcript.
    let wanted = job.output.format == TranscriptFormat::Json || result_file.is_some();
    let outcome = if wanted {
        crate::outcome(&job, &transcript, result.as_ref())
    } else {
        String::new()
    };
    // --serverinfo that worked prints its description instead of the transcript: in JSON
    // one document, without the outcome line (which still goes to --result-file).
    let described = result
        .as_ref()
        .ok()
        .and_then(|sent| sent.serverinfo.as_deref());
    if !job.output.quiet {
        let mut stdout = std::io::stdout().lock();
        if let Some(info) = described {
            let _ = stdout.write_all(info.render(job.output.format).as_bytes());
        } else {
            let _ = stdout.write_all(
                job.output
                    .render(&transcript, result.as_ref().err())
                    .as_bytes(),
            );
            if job.output.format == TranscriptFormat::Json {
                let _ = writeln!(
                    stdout,
                    "{}",
                    crate::outcome::explained(&outcome, job.output.render)
                );
            }
        }
        let _ = stdout.flush();
    }
    if let Some((path, mut file)) = result_file {
        let written = writeln!(file, "{outcome}");
        if let Err(e) = written {
            warn(&format!(
                "the result file {} could not be written ({e}); the exit status still says how the send went",
                path.display()
            ));
        }
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
    if sent.serverinfo.is_some() {
        // Nothing was sent, so the embedded server has nothing to report.
        return Exit::Sent.code();
    }
    if let Some(stage) = sent.stopped {
        eprintln!(
            "{program}: every step up to {} succeeded; stopped there as --quit-after asked, nothing was sent",
            stage.name()
        );
        return Exit::Sent.code();
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
