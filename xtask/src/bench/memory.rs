//! Memory and time: one message with a 20 MiB or 100 MiB attachment to `smtp-sink`, no TLS,
//! measured with GNU time (`/usr/bin/time -f '%e %M'`: wall seconds, peak RSS in KiB).
//!
//! raw-client, lib-client, swaks and smtplib build the MIME message themselves from the
//! attachment file; curl (`--upload-file`) and msmtp (standard input) get a prebuilt `.eml`,
//! which is raw-client's own rendering captured through test-server, so they do no encoding
//! at all — the cheapest possible way to put those bytes on the wire.
//!
//! raw-client `--chunking` sends the same message with BDAT (RFC 3030) to [`BdatSink`], which
//! discards it as smtp-sink does, since smtp-sink has no BDAT; the sink checks that every
//! octet of the rendering arrived.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Result, bail};

use super::bdat_sink::BdatSink;
use super::throughput::{Sink, capture_message};
use super::{Ctx, FROM, TO};
use crate::interop::procs;

/// The attachment sizes, MiB.
pub(crate) const SIZES: [u64; 2] = [20, 100];

/// One client at one size.
#[derive(Debug, Clone)]
pub(crate) struct Case {
    pub(crate) name: &'static str,
    pub(crate) ours: bool,
    /// Attachment size, MiB.
    pub(crate) mib: u64,
    /// (wall seconds, peak RSS MiB) per run.
    pub(crate) runs: Vec<(f64, f64)>,
    pub(crate) error: Option<String>,
    /// The message's octets as the BDAT sink received them (the BDAT rows only).
    pub(crate) octets: Option<u64>,
}

impl Case {
    /// Median wall seconds.
    pub(crate) fn seconds(&self) -> f64 {
        super::median(&self.runs.iter().map(|r| r.0).collect::<Vec<_>>())
    }

    /// Median peak RSS, MiB.
    pub(crate) fn rss(&self) -> f64 {
        super::median(&self.runs.iter().map(|r| r.1).collect::<Vec<_>>())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Raw,
    /// raw-client `--chunking=required`, to the BDAT sink.
    RawChunking,
    /// The same with `--binarymime`: the attachment unencoded (RFC 3030 §3).
    RawBinary,
    Lib,
    Curl,
    Msmtp,
    Swaks,
    Smtplib,
}

const CLIENTS: &[(&str, Kind, bool)] = &[
    ("raw-client", Kind::Raw, true),
    (CHUNKING_NAME, Kind::RawChunking, true),
    (BINARYMIME_NAME, Kind::RawBinary, true),
    ("lib-client (lettre)", Kind::Lib, true),
    ("curl --upload-file (prebuilt .eml)", Kind::Curl, false),
    ("msmtp (prebuilt .eml on stdin)", Kind::Msmtp, false),
    ("swaks --attach", Kind::Swaks, false),
    ("Python smtplib (EmailMessage)", Kind::Smtplib, false),
];

/// The row of raw-client `--chunking` (the default `--chunk-size`).
pub(crate) const CHUNKING_NAME: &str = "raw-client --chunking (BDAT, 256 KiB chunks)";

/// The row of raw-client `--chunking --binarymime`.
pub(crate) const BINARYMIME_NAME: &str =
    "raw-client --chunking --binarymime (attachment unencoded)";

/// Runs every client at both sizes.
pub(crate) fn run(ctx: &Ctx) -> Result<Vec<Case>> {
    let dir = ctx.dir("memory")?;
    let sink = Sink::start(&dir)?;
    let bdat_sink = BdatSink::start()?;
    let script = ctx.peers_script()?;
    let msmtprc = dir.join("msmtprc-empty");
    std::fs::write(
        &msmtprc,
        "# no accounts: everything is on the command line\n",
    )?;
    std::fs::set_permissions(&msmtprc, std::fs::Permissions::from_mode(0o600))?;
    let mut all = Vec::new();
    for mib in SIZES {
        let attachment = attachment(&dir, mib)?;
        println!("  {mib} MiB: capturing raw-client's rendering as the prebuilt .eml");
        let stored = capture_message(ctx, &format!("attach-{mib}"), &message_args(&attachment))?;
        let eml = dir.join(format!("attach-{mib}MiB.eml"));
        std::fs::rename(&stored, &eml).or_else(|_| std::fs::copy(&stored, &eml).map(drop))?;
        let eml_bytes = std::fs::read(&eml)?;
        // 3 runs for 100 MiB (docs/performance.md says so), the full count for 20 MiB.
        let runs = if mib >= 100 {
            ctx.runs.min(3)
        } else {
            ctx.runs
        };
        let mut cases: Vec<(Case, Kind)> = CLIENTS
            .iter()
            // swaks holds the whole message several times over (~500 MiB for 20 MiB).
            .filter(|(_, kind, _)| !(mib >= 100 && *kind == Kind::Swaks))
            .map(|&(name, kind, ours)| {
                (
                    Case {
                        name,
                        ours,
                        mib,
                        runs: Vec::new(),
                        error: None,
                        octets: None,
                    },
                    kind,
                )
            })
            .collect();
        for _ in 0..runs {
            for (case, kind) in &mut cases {
                if case.error.is_some() {
                    continue;
                }
                let command = match kind {
                    Kind::Raw | Kind::Lib => {
                        let mut command = Command::new(ctx.bin.join(if *kind == Kind::Raw {
                            "raw-client"
                        } else {
                            "lib-client"
                        }));
                        command
                            .args(["--server", &format!("127.0.0.1:{}", sink.port)])
                            .args(["--tls", "none", "--quiet"])
                            .args(message_args(&attachment));
                        command
                    }
                    Kind::RawChunking | Kind::RawBinary => {
                        let mut command = Command::new(ctx.bin.join("raw-client"));
                        command
                            .args(["--server", &format!("127.0.0.1:{}", bdat_sink.port)])
                            .args(["--tls", "none", "--quiet", "--chunking=required"])
                            .args(message_args(&attachment));
                        if *kind == Kind::RawBinary {
                            command.arg("--binarymime");
                        }
                        command
                    }
                    Kind::Curl => {
                        let mut command = Command::new("curl");
                        command
                            .args(["--silent", "--show-error", "--max-time", "300"])
                            .arg(format!(
                                "smtp://127.0.0.1:{}/curl.bench.localhost",
                                sink.port
                            ))
                            .args(["--mail-from", FROM, "--mail-rcpt", TO, "--upload-file"])
                            .arg(&eml);
                        command
                    }
                    Kind::Msmtp => {
                        let mut command = Command::new("msmtp");
                        command
                            .arg("-C")
                            .arg(&msmtprc)
                            .args(["--host=127.0.0.1", &format!("--port={}", sink.port)])
                            .args([&format!("--from={FROM}"), "--domain=msmtp.bench.localhost"])
                            .arg(TO);
                        command
                    }
                    Kind::Swaks => {
                        let mut command = Command::new("swaks");
                        command
                            .args(["--server", "127.0.0.1", "--port", &sink.port.to_string()])
                            .args([
                                "--from",
                                FROM,
                                "--to",
                                TO,
                                "--helo",
                                "swaks.bench.localhost",
                            ])
                            .args(["--body", "See the attachment.", "--silent", "2"])
                            .args(["--timeout", "300", "--attach-type"])
                            .arg("application/octet-stream")
                            .arg("--attach")
                            .arg(format!("@{}", attachment.display()));
                        command
                    }
                    Kind::Smtplib => {
                        let mut command = Command::new(&ctx.python);
                        command
                            .arg(&script)
                            .args(["memory", "127.0.0.1", &sink.port.to_string(), FROM, TO])
                            .arg(&attachment);
                        command
                    }
                };
                let input = (*kind == Kind::Msmtp).then_some(eml_bytes.as_slice());
                let received = bdat_sink.messages().len();
                let result = timed(&dir, command, input).and_then(|run| {
                    let messages = bdat_sink.messages();
                    let base64 = eml_bytes.len() as u64;
                    let whole = messages.len() == received + 1;
                    let octets = messages.last().copied();
                    match kind {
                        // The same message as the DATA rows: every octet of the rendering.
                        Kind::RawChunking if !whole || octets != Some(base64) => bail!(
                            "the BDAT sink did not receive the {base64}-octet rendering whole \
                             (messages received whole: {:?})",
                            &messages[received..]
                        ),
                        // The attachment as it is: more than its own size, less than base64.
                        Kind::RawBinary
                            if !whole || !octets.is_some_and(|n| n > mib << 20 && n < base64) =>
                        {
                            bail!(
                                "the BDAT sink did not receive one unencoded message of more \
                                 than {mib} MiB and less than the {base64}-octet base64 \
                                 rendering (received: {:?})",
                                &messages[received..]
                            )
                        }
                        Kind::RawChunking | Kind::RawBinary => Ok((run, octets)),
                        _ => Ok((run, None)),
                    }
                });
                match result {
                    Ok((run, octets)) => {
                        case.runs.push(run);
                        case.octets = octets.or(case.octets);
                    }
                    Err(error) => case.error = Some(format!("{error:#}")),
                }
            }
        }
        for (case, _) in cases {
            match &case.error {
                Some(why) => println!("  {mib:>3} MiB {:<40} failed: {why}", case.name),
                None => println!(
                    "  {mib:>3} MiB {:<40} {:6.2} s {:8.1} MiB peak RSS (median of {})",
                    case.name,
                    case.seconds(),
                    case.rss(),
                    case.runs.len()
                ),
            }
            all.push(case);
        }
    }
    drop((sink, bdat_sink));
    Ok(all)
}

fn message_args(attachment: &Path) -> Vec<String> {
    vec![
        "--from".into(),
        FROM.into(),
        "--to".into(),
        TO.into(),
        "--subject".into(),
        "Attachment".into(),
        "--body".into(),
        "See the attachment.".into(),
        "--attach".into(),
        format!("{};type=application/octet-stream", attachment.display()),
        "--date".into(),
        "1700000000".into(),
        "--message-id".into(),
        "attachment@bench.localhost".into(),
        "--timeout".into(),
        "300s".into(),
    ]
}

/// Runs `command` under GNU time; returns (wall seconds, peak RSS MiB).
fn timed(dir: &Path, command: Command, input: Option<&[u8]>) -> Result<(f64, f64)> {
    let out = dir.join("time.out");
    let _ = std::fs::remove_file(&out);
    let mut timed = Command::new("/usr/bin/time");
    timed
        .arg("-o")
        .arg(&out)
        .args(["-f", "%e %M"])
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => timed.env(key, value),
            None => timed.env_remove(key),
        };
    }
    let outcome = procs::run(&mut timed, input, Duration::from_secs(600))?;
    if !outcome.success() {
        bail!("{}", outcome.why());
    }
    let text = std::fs::read_to_string(&out)?;
    let last = text.lines().last().unwrap_or_default();
    let mut fields = last.split_whitespace();
    let (Some(seconds), Some(kib)) = (fields.next(), fields.next()) else {
        bail!("cannot read GNU time's output {text:?}");
    };
    Ok((seconds.parse()?, kib.parse::<f64>()? / 1024.0))
}

/// `target/bench/memory/attach-{mib}MiB.bin`: deterministic pseudo-random bytes (they do not
/// compress, like a real photo or archive), written once and reused.
fn attachment(dir: &Path, mib: u64) -> Result<PathBuf> {
    let path = dir.join(format!("attach-{mib}MiB.bin"));
    let size = mib * 1024 * 1024;
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == size) {
        return Ok(path);
    }
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15 ^ mib;
    let mut chunk = vec![0u8; 1024 * 1024];
    for _ in 0..mib {
        for word in chunk.chunks_exact_mut(8) {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        file.write_all(&chunk)?;
    }
    file.flush()?;
    Ok(path)
}
