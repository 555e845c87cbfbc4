//! What every task shares: the workspace root, the one way xtask runs cargo, the one build
//! of our binaries, running a command with a clear error, and the templates under `xtask/`.
//!
//! Every cargo that xtask starts goes through [`cargo`], which removes the variables cargo
//! sets for a binary it runs (`CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME`, ...). `cargo xtask`
//! is `cargo run -p xtask`, so without that every nested cargo would see them, and ring's
//! build script (which declares `cargo:rerun-if-env-changed` for them) would rerun, and
//! rustls, lettre, test-server and both clients would rebuild, on every switch between
//! `cargo xtask ...` and a cargo started from the shell. [`build_clients`] is the one
//! `cargo build` of our binaries, with the same arguments for compare, interop and bench,
//! so they all share one set of artifacts.

use std::ffi::OsStr;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};

/// The workspace root: the parent of `xtask/`.
pub(crate) fn workspace_root() -> &'static Path {
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().unwrap_or(xtask)
}

/// `path` relative to the workspace root when it is inside it, for messages.
pub(crate) fn relative(path: &Path) -> String {
    path.strip_prefix(workspace_root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Whether cargo sets `name` for a binary it runs (`cargo run`, `cargo test`) or a crate it
/// compiles, rather than the user setting it. User settings (`CARGO_HOME`,
/// `CARGO_TARGET_DIR`, `CARGO_BUILD_*`, `RUSTFLAGS`, ...) and `CARGO` itself (the cargo
/// binary to run) are kept.
pub(crate) fn set_by_cargo_for_a_run(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "OUT_DIR",
    ];
    const PREFIXES: &[&str] = &[
        "CARGO_PKG_",
        "CARGO_BIN_EXE_",
        "CARGO_CFG_",
        "CARGO_FEATURE_",
    ];
    EXACT.contains(&name) || PREFIXES.iter().any(|prefix| name.starts_with(prefix))
}

/// A `cargo` command in the workspace root, without the variables cargo set for running
/// xtask (see the module documentation), so that it builds exactly what a cargo started from
/// the shell builds.
pub(crate) fn cargo() -> Command {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(program);
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(set_by_cargo_for_a_run) {
            command.env_remove(&name);
        }
    }
    command.current_dir(workspace_root());
    command
}

/// Which build of our binaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Profile {
    /// `target/debug`: compare, interop, bench --quick.
    Debug,
    /// `target/release`: the bench measurements.
    Release,
}

/// The packages whose binaries xtask runs.
const BINARIES: [&str; 3] = ["raw-client", "lib-client", "test-server"];

/// The `cargo build` arguments of [`build_clients`], the same for every task.
fn build_arguments(profile: Profile) -> Vec<&'static str> {
    let mut args = vec![
        "build",
        "--quiet",
        "--message-format=json-render-diagnostics",
    ];
    for package in BINARIES {
        args.extend(["--package", package]);
    }
    if profile == Profile::Release {
        args.push("--release");
    }
    args
}

/// Builds raw-client, lib-client and test-server (nothing when they are up to date) and
/// returns the directory that holds the three executables.
pub(crate) fn build_clients(profile: Profile) -> Result<PathBuf> {
    let mut command = cargo();
    command
        .args(build_arguments(profile))
        .stdout(Stdio::piped());
    let mut child = command
        .spawn()
        .context("cannot start cargo to build raw-client, lib-client and test-server")?;
    // cargo prints one JSON message per line; the artifacts name the executables.
    let mut executables = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.context("reading cargo build's messages")?;
            if let Some(path) = executable(&line) {
                executables.push(path);
            }
        }
    }
    let status = child.wait().context("waiting for cargo build")?;
    if !status.success() {
        bail!(
            "building raw-client, lib-client and test-server failed ({status}); the compiler's messages are above"
        );
    }
    binaries_dir(&executables)
}

/// The executable named in one line of `cargo build --message-format=json`, if any.
fn executable(line: &str) -> Option<PathBuf> {
    let message: serde_json::Value = serde_json::from_str(line).ok()?;
    if message.get("reason")?.as_str()? != "compiler-artifact" {
        return None;
    }
    message.get("executable")?.as_str().map(PathBuf::from)
}

/// The one directory holding all of [`BINARIES`].
fn binaries_dir(executables: &[PathBuf]) -> Result<PathBuf> {
    let mut dir: Option<&Path> = None;
    for name in BINARIES {
        let path = executables
            .iter()
            .find(|path| path.file_name() == Some(OsStr::new(name)))
            .with_context(|| format!("cargo build named no {name} executable"))?;
        let parent = path.parent().unwrap_or(Path::new("."));
        match dir {
            Some(dir) if dir != parent => bail!(
                "cargo build put {name} in {} but the others in {}",
                parent.display(),
                dir.display()
            ),
            _ => dir = Some(parent),
        }
    }
    Ok(dir.unwrap_or(Path::new(".")).to_path_buf())
}

/// Runs `command` with the terminal as its output; fails with one sentence naming `what`.
pub(crate) fn status(command: &mut Command, what: &str) -> Result<()> {
    let status = command.status().with_context(|| {
        format!(
            "cannot start {what} ({})",
            command.get_program().to_string_lossy()
        )
    })?;
    if !status.success() {
        bail!("{what} failed ({status}); its output is above");
    }
    Ok(())
}

/// Reads the template `xtask/PATH` (e.g. `interop/postfix/main.cf`) and fills it in (see
/// [`fill`]).
pub(crate) fn render(path: &str, values: &[(&str, &str)]) -> Result<String> {
    let full = workspace_root().join("xtask").join(path);
    let template = std::fs::read_to_string(&full)
        .with_context(|| format!("cannot read the template xtask/{path}"))?;
    fill(&format!("xtask/{path}"), &template, values)
}

/// Fills the `@NAME@` placeholders of a template in one pass (a value is never scanned for
/// placeholders). Every placeholder must have a value and every value a placeholder, so a
/// template and its code cannot drift apart silently. `@` elsewhere (`alice@@DOMAIN@`) is
/// kept.
pub(crate) fn fill(name: &str, template: &str, values: &[(&str, &str)]) -> Result<String> {
    let mut out = String::with_capacity(template.len() + 1024);
    let mut used = vec![false; values.len()];
    let mut rest = template;
    while let Some(at) = rest.find('@') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let word_len = after
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(after.len());
        let word = &after[..word_len];
        let is_placeholder = after[word_len..].starts_with('@')
            && word.starts_with(|c: char| c.is_ascii_uppercase());
        if !is_placeholder {
            out.push('@');
            rest = after;
            continue;
        }
        match values.iter().position(|(key, _)| *key == word) {
            Some(index) => {
                used[index] = true;
                out.push_str(values[index].1);
            }
            None => bail!("the template {name} has @{word}@, which xtask does not fill"),
        }
        rest = &after[word_len + 1..];
    }
    out.push_str(rest);
    if let Some(index) = used.iter().position(|used| !used) {
        bail!(
            "the template {name} has no @{}@ for xtask to fill",
            values[index].0
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variables_cargo_sets_for_a_run_are_removed_and_user_settings_kept() {
        for name in [
            "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_PATH",
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION_PRE",
            "CARGO_CRATE_NAME",
            "CARGO_BIN_NAME",
            "CARGO_BIN_EXE_raw-client",
            "CARGO_PRIMARY_PACKAGE",
            "OUT_DIR",
        ] {
            assert!(set_by_cargo_for_a_run(name), "{name} should be removed");
        }
        for name in [
            "CARGO",
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_JOBS",
            "CARGO_PROFILE_DEV_OPT_LEVEL",
            "CARGO_INCREMENTAL",
            "CARGO_TERM_COLOR",
            "RUSTFLAGS",
            "PATH",
        ] {
            assert!(!set_by_cargo_for_a_run(name), "{name} should be kept");
        }
    }

    #[test]
    fn cargo_removes_what_cargo_test_set_for_this_test() {
        // `cargo test` sets CARGO_MANIFEST_DIR and CARGO_PKG_NAME for this very process.
        let command = cargo();
        let removed: Vec<&OsStr> = command
            .get_envs()
            .filter(|(_, value)| value.is_none())
            .map(|(name, _)| name)
            .collect();
        assert!(removed.contains(&OsStr::new("CARGO_MANIFEST_DIR")));
        assert!(removed.contains(&OsStr::new("CARGO_PKG_NAME")));
        assert!(!removed.contains(&OsStr::new("CARGO")));
        assert_eq!(command.get_current_dir(), Some(workspace_root()));
    }

    #[test]
    fn every_task_builds_the_same_packages_and_only_the_profile_differs() {
        let debug = build_arguments(Profile::Debug);
        let mut release = build_arguments(Profile::Release);
        assert_eq!(release.pop(), Some("--release"));
        assert_eq!(debug, release);
        for package in BINARIES {
            assert!(debug.contains(&package));
        }
    }

    #[test]
    fn executables_are_read_from_cargo_messages() {
        let artifact = r#"{"reason":"compiler-artifact","target":{"name":"raw-client"},"executable":"/t/debug/raw-client"}"#;
        let library = r#"{"reason":"compiler-artifact","target":{"name":"cli"},"executable":null}"#;
        assert_eq!(
            executable(artifact),
            Some(PathBuf::from("/t/debug/raw-client"))
        );
        assert_eq!(executable(library), None);
        assert_eq!(executable(r#"{"reason":"build-finished"}"#), None);
        assert_eq!(executable("not json"), None);

        let found: Vec<PathBuf> = ["raw-client", "lib-client", "test-server"]
            .iter()
            .map(|name| Path::new("/t/debug").join(name))
            .collect();
        assert_eq!(binaries_dir(&found).ok(), Some(PathBuf::from("/t/debug")));
        let error = binaries_dir(&found[..2]).map_err(|e| e.to_string());
        assert_eq!(
            error,
            Err("cargo build named no test-server executable".into())
        );
    }

    #[test]
    fn templates_are_filled_in_one_pass_and_must_match_their_values() {
        let filled = fill(
            "t",
            "a@@DOMAIN@ @N@x @lower@ @",
            &[("DOMAIN", "example.net"), ("N", "@DOMAIN@")],
        );
        assert_eq!(
            filled.map_err(|e| e.to_string()),
            Ok("a@example.net @DOMAIN@x @lower@ @".to_owned())
        );
        let unknown = fill("t", "@WHAT@", &[]).map_err(|e| e.to_string());
        assert_eq!(
            unknown,
            Err("the template t has @WHAT@, which xtask does not fill".into())
        );
        let unused = fill("t", "nothing", &[("DIR", "/x")]).map_err(|e| e.to_string());
        assert_eq!(
            unused,
            Err("the template t has no @DIR@ for xtask to fill".into())
        );
    }
}
