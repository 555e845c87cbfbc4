//! `cargo xtask dist`: the shell completions and man pages of both clients, written to
//! `target/dist/` by running the release binaries with their hidden `--generate-completions
//! SHELL` and `--generate-man` options (so what ships is what the binaries themselves say).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::helpers::{self, Profile};

/// The clients whose files are written.
const CLIENTS: [&str; 2] = ["raw-client", "lib-client"];

/// The shells `--generate-completions` takes, and the extension of each script.
const SHELLS: [(&str, &str); 5] = [
    ("bash", "bash"),
    ("zsh", "zsh"),
    ("fish", "fish"),
    ("elvish", "elv"),
    ("powershell", "ps1"),
];

/// `cargo xtask dist [--debug]`
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Use the debug build instead of the release build (quicker to build; the files are the
    /// same).
    #[arg(long)]
    pub(crate) debug: bool,
}

/// One file to write: the client, its arguments, and the path under `target/dist/`.
#[derive(Debug, PartialEq, Eq)]
struct Output {
    client: &'static str,
    args: Vec<&'static str>,
    path: PathBuf,
}

/// Every file `dist` writes, in order.
fn outputs() -> Vec<Output> {
    let mut outputs = Vec::new();
    for client in CLIENTS {
        for (shell, extension) in SHELLS {
            outputs.push(Output {
                client,
                args: vec!["--generate-completions", shell],
                path: Path::new("completions").join(format!("{client}.{extension}")),
            });
        }
        outputs.push(Output {
            client,
            args: vec!["--generate-man"],
            path: Path::new("man").join(format!("{client}.1")),
        });
    }
    outputs
}

/// Builds the clients and writes every file; returns 0.
pub(crate) fn run(args: &Args) -> Result<i32> {
    let profile = if args.debug {
        Profile::Debug
    } else {
        Profile::Release
    };
    println!(
        "dist: building the clients ({})",
        if args.debug { "debug" } else { "release" }
    );
    let binaries = helpers::build_clients(profile)?;
    // target/release -> target/dist, wherever the target directory is.
    let dist = binaries.parent().unwrap_or(&binaries).join("dist");
    for dir in ["completions", "man"] {
        let dir = dist.join(dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    for output in outputs() {
        let bytes = generate(&binaries.join(output.client), &output.args)?;
        let path = dist.join(&output.path);
        std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
        println!(
            "dist: wrote {} ({} bytes, `{} {}`)",
            helpers::relative(&path),
            bytes.len(),
            output.client,
            output.args.join(" ")
        );
    }
    println!(
        "dist: in bash, source a .bash file; zsh wants a .zsh file renamed _raw-client (or \
         _lib-client) in a directory of $fpath; read a page with man -l {}",
        helpers::relative(&dist.join("man").join("raw-client.1"))
    );
    Ok(0)
}

/// The standard output of `binary ARGS`, which must exit 0 and print something. `SMTP_*`
/// variables are removed, so that nothing of this shell's settings ends up in the files.
fn generate(binary: &Path, args: &[&str]) -> Result<Vec<u8>> {
    let mut command = Command::new(binary);
    command.args(args);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SMTP_") {
            command.env_remove(&name);
        }
    }
    let output = command
        .output()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    let shown = format!("{} {}", helpers::relative(binary), args.join(" "));
    if !output.status.success() {
        bail!(
            "`{shown}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    if output.stdout.is_empty() {
        bail!("`{shown}` printed nothing");
    }
    Ok(output.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_client_gets_five_completion_scripts_and_a_man_page() {
        let outputs = outputs();
        assert_eq!(outputs.len(), 12);
        let paths: Vec<String> = outputs
            .iter()
            .map(|output| output.path.display().to_string())
            .collect();
        for client in CLIENTS {
            for extension in ["bash", "zsh", "fish", "elv", "ps1"] {
                assert!(paths.contains(&format!("completions/{client}.{extension}")));
            }
            assert!(paths.contains(&format!("man/{client}.1")));
        }
        assert_eq!(
            outputs[1],
            Output {
                client: "raw-client",
                args: vec!["--generate-completions", "zsh"],
                path: PathBuf::from("completions/raw-client.zsh"),
            }
        );
    }
}
