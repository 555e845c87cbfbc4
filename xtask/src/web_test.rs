//! `cargo xtask web-test`: the web inbox of `test-server --http` in a real browser.
//!
//! It installs Debian's chromium and chromium-driver when they are missing (as root, with
//! interop's [`install::apt_get`]), a pinned Selenium into `target/web-test/venv` (interop's
//! [`install::venv`]), builds our three binaries, and runs `xtask/web-test/web_test.py`,
//! which starts test-server, sends with both clients and Python's smtplib, drives Chromium
//! over WebDriver, prints a pass/fail table and saves screenshots under `target/web-test/`.
//! Nothing is skipped: a browser that cannot be installed fails the run with the reason.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};

use crate::helpers::{self, Profile};
use crate::interop::install;

/// Runs the browser test; returns 0 when every check passed, 1 otherwise.
pub(crate) fn run() -> Result<i32> {
    let started = Instant::now();
    let root = helpers::workspace_root();
    let out = root.join("target").join("web-test");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    println!("web-test: checking chromium and chromedriver are installed");
    let browser = install_browser()?;
    let python = install::venv(
        &out.join("venv"),
        &root.join("xtask/web-test/requirements.txt"),
        "selenium",
        "web-test",
    )
    .context("cannot install Selenium into target/web-test/venv")?;
    let binaries = helpers::build_clients(Profile::Debug)?;
    println!(
        "web-test: setup (install check, venv, build) took {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let script = root.join("xtask/web-test/web_test.py");
    let status = Command::new(&python)
        .arg(&script)
        .arg("--binaries")
        .arg(&binaries)
        .arg("--out")
        .arg(&out)
        .arg("--chromium")
        .arg(&browser.chromium)
        .arg("--chromedriver")
        .arg(&browser.chromedriver)
        // Selenium Manager must never fetch a driver or a browser: both paths are given.
        .env("SE_OFFLINE", "true")
        .env("PYTHONUNBUFFERED", "1")
        .current_dir(root)
        .status()
        .with_context(|| format!("cannot start {}", helpers::relative(&script)))?;
    println!(
        "web-test: took {:.0} s in all",
        started.elapsed().as_secs_f64()
    );
    match status.code() {
        Some(0) => Ok(0),
        Some(1) => Ok(1),
        _ => bail!(
            "{} stopped before finishing its checks ({status}); its output is above",
            helpers::relative(&script)
        ),
    }
}

/// The browser and its WebDriver.
struct Browser {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

/// Finds chromium and chromedriver, installing Debian's packages when either is missing.
fn install_browser() -> Result<Browser> {
    let found = || Some((find("chromium")?, find("chromedriver")?));
    let mut missing: Vec<&str> = Vec::new();
    if found().is_none() {
        missing.extend(["chromium", "chromium-driver"]);
    }
    // The venv step needs python3 with venv and ensurepip (Debian splits them off).
    if !install::works("python3", &["-c", "import venv, ensurepip"]) {
        missing.extend(["python3", "python3-venv"]);
    }
    if !missing.is_empty() {
        println!("web-test: installing with apt-get: {}", missing.join(" "));
        install::apt_get(&missing)
            .with_context(|| format!("cannot install {}", missing.join(" ")))?;
    }
    match found() {
        Some((chromium, chromedriver)) => Ok(Browser {
            chromium,
            chromedriver,
        }),
        None => bail!(
            "chromium or chromedriver is still missing (looked in /usr/bin and on PATH) after apt-get install chromium chromium-driver, so the web inbox cannot be tested in a browser"
        ),
    }
}

/// `/usr/bin/NAME` (where Debian puts it), else the first `NAME` on `PATH`.
fn find(name: &str) -> Option<PathBuf> {
    let debian = Path::new("/usr/bin").join(name);
    if is_executable(&debian) {
        return Some(debian);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}
