//! Real clients graded by `test-server lab`: swaks (with and without `--pipeline`) and msmtp
//! (STARTTLS and implicit TLS) must pass every applicable check, as smtplib and curl do in
//! `tests/tests/lab.rs`. They find the server in the lab's `SMTP_*` variables; a check
//! failed (or a client that never connected) fails the row with the lab's own words.

use std::process::Command;

use super::mail;
use super::{Ctx, PEER_TO_OURS, Report};

/// The message each client sends: CRLF line ends, Date and From, and a line that starts
/// with a dot, so that every check has something to judge.
const MESSAGE: &[u8] = b"Date: Tue, 01 Dec 2026 12:00:00 +0000\r\nFrom: student@lab.test\r\n\
To: teacher@lab.test\r\nSubject: graded by the lab\r\n\r\nHello from a real client.\r\n\
.signature: a line that starts with a dot\r\n";

/// Runs the lab group.
pub(crate) fn run(ctx: &Ctx, report: &mut Report) {
    let message = ctx.work.join("fixtures").join("lab-message.eml");
    // swaks adds the CRLF before its "." itself (see clients.rs), so it gets the message
    // without its last line break.
    let for_swaks = ctx.work.join("fixtures").join("lab-message-for-swaks.eml");
    let written = mail::write(&message, MESSAGE)
        .and_then(|()| mail::write(&for_swaks, MESSAGE.strip_suffix(b"\r\n").unwrap_or(MESSAGE)));
    if let Err(error) = written {
        report.setup_failed("lab", PEER_TO_OURS, format!("{error:#}"));
        return;
    }
    let swaks = format!(
        "swaks --server \"$SMTP_HOST\" --port \"$SMTP_PORT\" --helo swaks.lab.test --timeout 20 \
         --tls --tls-verify --tls-ca-path \"$SMTP_CA_FILE\" --auth PLAIN \
         --auth-user \"$SMTP_USER\" --auth-password \"$SMTP_PASSWORD\" \
         --from \"$SMTP_FROM\" --to \"$SMTP_TO\" --data @{}",
        for_swaks.display()
    );
    let msmtp = |tls: &str| {
        format!(
            "msmtp --host=\"$SMTP_HOST\" {tls} --tls=on --tls-trust-file=\"$SMTP_CA_FILE\" \
             --domain=msmtp.lab.test --auth=plain --user=\"$SMTP_USER\" \
             --passwordeval='echo \"$SMTP_PASSWORD\"' --from=\"$SMTP_FROM\" \"$SMTP_TO\" < {}",
            message.display()
        )
    };
    let rows = [
        (
            "swaks",
            "submission",
            "swaks --tls --auth PLAIN --data: every applicable check passes",
            swaks.clone(),
        ),
        (
            "swaks",
            "strict",
            "swaks --pipeline under the strict profile (replies in pieces): every applicable check passes",
            format!("{swaks} --pipeline"),
        ),
        (
            "msmtp",
            "submission",
            "msmtp --tls-starttls=on --auth=plain, message on stdin: every applicable check passes",
            msmtp("--port=\"$SMTP_PORT\" --tls-starttls=on"),
        ),
        (
            "msmtp",
            "implicit",
            "msmtp --tls-starttls=off (implicit TLS): every applicable check passes",
            msmtp("--port=\"$SMTP_TLS_PORT\" --tls-starttls=off"),
        ),
    ];
    for (tool, profile, scenario, script) in rows {
        let peer = format!("{tool} (lab)");
        if let Err(why) = ctx.tools.apt(tool) {
            report.add(&peer, PEER_TO_OURS, scenario, Err(why));
            continue;
        }
        let result = graded(ctx, profile, &script);
        report.add(&peer, PEER_TO_OURS, scenario, result);
    }
}

/// Runs `test-server lab --json --profile PROFILE -- sh -c SCRIPT` and reads its verdict.
fn graded(ctx: &Ctx, profile: &str, script: &str) -> Result<String, String> {
    let output = Command::new(ctx.binaries.join("test-server"))
        .args(["lab", "--json", "--profile", profile])
        .args(["--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0"])
        .args(["--timeout", "60s", "--", "sh", "-c", script])
        .output()
        .map_err(|e| format!("cannot run test-server lab: {e}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let card: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("the lab printed no JSON scorecard ({e}): {stderr}"))?;
    let checks = card["checks"].as_array().cloned().unwrap_or_default();
    let count = |status: &str| checks.iter().filter(|c| c["status"] == status).count();
    let failures: Vec<String> = checks
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| format!("{}: {} {}", c["id"], c["evidence"], c["detail"]))
        .collect();
    if card["sessions"].as_array().is_none_or(Vec::is_empty) {
        return Err(format!("the client never connected: {stderr}"));
    }
    if !failures.is_empty() || output.status.code() != Some(0) {
        return Err(format!(
            "exit {:?}; failed {}",
            output.status.code(),
            failures.join("; ")
        ));
    }
    Ok(format!(
        "{} passed, {} not applicable",
        count("pass"),
        count("not-applicable")
    ))
}
