//! `cargo xtask compare`: both clients, same options, one diff.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

/// Runs both clients and prints the diff; returns 0 when identical, 1 otherwise.
pub(crate) fn run(args: &[String]) -> Result<i32> {
    let (shared, raw_only) = match args.iter().position(|arg| arg == "--") {
        Some(at) => (&args[..at], &args[at + 1..]),
        None => (args, &[][..]),
    };
    let root = workspace_root()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(&cargo)
        .args([
            "build",
            "--quiet",
            "--package",
            "raw-client",
            "--package",
            "lib-client",
        ])
        .current_dir(&root)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("building the clients failed");
    }
    let mut shared = shared.to_vec();
    // A fixed Date and Message-ID, unless given, so the diff shows only the dialogue.
    if !shared.iter().any(|arg| arg.starts_with("--date")) {
        shared.extend(["--date".into(), "Mon, 23 Nov 2026 12:00:00 +0000".into()]);
    }
    if !shared.iter().any(|arg| arg.starts_with("--message-id")) {
        shared.extend([
            "--message-id".into(),
            "compare@smtp-workbench.example".into(),
        ]);
    }
    let out_dir = root.join("target").join("compare");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let binaries = root.join("target").join("debug");
    let raw_args: Vec<String> = shared.iter().chain(raw_only).cloned().collect();
    let raw = run_client(&binaries, "raw-client", &raw_args, &out_dir)?;
    let lib = run_client(&binaries, "lib-client", &shared, &out_dir)?;
    let color = transcript::color_wanted();
    let diff = transcript::diff(&raw.text, &lib.text, "raw-client", "lib-client", color);
    print!("{}", diff.unified);
    println!(
        "raw-client exited {}, lib-client exited {}; transcripts in {}",
        raw.status,
        lib.status,
        relative(&out_dir, &root).display()
    );
    println!("verdict: {}", diff.verdict());
    Ok(if diff.is_identical() && raw.status == lib.status {
        0
    } else {
        1
    })
}

struct Run {
    text: String,
    status: i32,
}

fn run_client(binaries: &Path, name: &str, args: &[String], out_dir: &Path) -> Result<Run> {
    let output = Command::new(binaries.join(name))
        .args(args)
        .output()
        .with_context(|| format!("running {name}"))?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let path = out_dir.join(format!("{name}.txt"));
    std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    for line in stderr.lines() {
        eprintln!("{line}");
    }
    Ok(Run {
        text,
        status: output.status.code().unwrap_or(-1),
    })
}

fn workspace_root() -> Result<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map(Path::to_path_buf)
        .context("xtask is not inside the workspace")
}

fn relative<'a>(path: &'a Path, root: &Path) -> &'a Path {
    path.strip_prefix(root).unwrap_or(path)
}
