//! Installing the peers: Debian packages with apt-get, aiosmtpd with pip into a virtual
//! environment under `target/interop/venv`, and the npm packages into
//! `target/interop/node`. Whatever is already there is reused, so a rerun is fast. A
//! failure is kept per tool, so every check that needs it fails with the reason instead
//! of being skipped. `cargo xtask web-test` installs chromium and its venv with the same
//! [`apt_get`] and [`venv`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use super::procs;
use crate::helpers;

/// Debian packages, and the tool each one is for.
const APT_PACKAGES: &[(&str, &str)] = &[
    ("postfix", "postfix"),
    // Cyrus SASL for Postfix's AUTH: saslpasswd2, and the PLAIN/LOGIN/sasldb plugins.
    ("sasl2-bin", "postfix"),
    ("libsasl2-modules", "postfix"),
    ("swaks", "swaks"),
    // swaks needs these Perl modules for --tls (STARTTLS and --tls-on-connect).
    ("libnet-ssleay-perl", "swaks"),
    ("libio-socket-ssl-perl", "swaks"),
    ("msmtp", "msmtp"),
    ("curl", "curl"),
    ("openssl", "openssl"),
    ("ca-certificates", "openssl"),
];

/// What could be installed, per tool; the error says why not.
pub(crate) struct Tools {
    apt: BTreeMap<&'static str, Result<(), String>>,
    /// The virtual environment's python, with aiosmtpd.
    pub(crate) python: Result<PathBuf, String>,
    /// The directory with `node_modules/` (smtp-server, nodemailer) and our scripts.
    pub(crate) node_dir: Result<PathBuf, String>,
}

impl Tools {
    /// Whether a Debian-packaged tool is usable.
    pub(crate) fn apt(&self, tool: &str) -> Result<(), String> {
        self.apt
            .get(tool)
            .cloned()
            .unwrap_or_else(|| Err(format!("{tool} is not a known tool")))
    }
}

/// Installs what is missing.
pub(crate) fn install(root: &Path, cache: &Path) -> Tools {
    let apt = install_apt();
    let python = install_venv(root, cache).map_err(|error| format!("{error:#}"));
    let node_dir = install_node(root, cache).map_err(|error| format!("{error:#}"));
    Tools {
        apt,
        python,
        node_dir,
    }
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|output| {
            output.status.success()
                && String::from_utf8_lossy(&output.stdout) == "install ok installed"
        })
}

/// Whether `program args` runs and exits 0 (within 30 s).
pub(crate) fn works(program: &str, args: &[&str]) -> bool {
    procs::run(
        Command::new(program).args(args),
        None,
        Duration::from_secs(30),
    )
    .is_ok_and(|outcome| outcome.success())
}

fn install_apt() -> BTreeMap<&'static str, Result<(), String>> {
    let mut missing: Vec<&str> = APT_PACKAGES
        .iter()
        .map(|(package, _)| *package)
        .filter(|package| !installed(package))
        .collect();
    // The interpreters the venv and npm steps need, from Debian when absent.
    if !works("python3", &["-c", "import venv, ensurepip"]) {
        missing.extend(["python3", "python3-venv"]);
    }
    if !works("node", &["--version"]) || !works("npm", &["--version"]) {
        missing.extend(["nodejs", "npm"]);
    }
    // git send-email is Debian's git-email package (git itself is a dependency of it), only
    // when this git has no send-email of its own. Debian's send-email has no bundled
    // Mail::Address to fall back on, so it also needs libmailtools-perl (a Recommends of
    // git-email, which --no-install-recommends leaves out): without it every address
    // fails with "Compilation failed in require".
    if !send_email_available() {
        missing.extend(["git-email", "libmailtools-perl"]);
    } else if installed("git-email") && !installed("libmailtools-perl") {
        missing.push("libmailtools-perl");
    }
    let result = if missing.is_empty() {
        Ok(())
    } else {
        println!("interop: installing with apt-get: {}", missing.join(" "));
        apt_get(&missing).map_err(|error| format!("{error:#}"))
    };
    let mut tools = BTreeMap::new();
    for (package, tool) in APT_PACKAGES {
        let now = if installed(package) {
            Ok(())
        } else {
            Err(match &result {
                Err(error) => format!("apt-get could not install {package}: {error}"),
                Ok(()) => format!("{package} is still not installed after apt-get install"),
            })
        };
        let entry = tools.entry(*tool).or_insert(Ok(()));
        if entry.is_ok() {
            *entry = now;
        }
    }
    let mail_address = !installed("git-email") || installed("libmailtools-perl");
    let git = if send_email_available() && mail_address {
        Ok(())
    } else {
        Err(match &result {
            Err(error) => {
                format!("apt-get could not install git-email and libmailtools-perl: {error}")
            }
            Ok(()) => {
                "git send-email is still not available after apt-get install git-email".to_owned()
            }
        })
    };
    tools.insert("git", git);
    tools
}

/// Whether `git send-email` can run: git is there and its exec path has the send-email
/// script (`git send-email -h` would exit 129 either way).
fn send_email_available() -> bool {
    procs::run(
        Command::new("git").arg("--exec-path"),
        None,
        Duration::from_secs(30),
    )
    .is_ok_and(|outcome| {
        outcome.success()
            && Path::new(outcome.stdout.trim())
                .join("git-send-email")
                .is_file()
    })
}

/// `apt-get update` and `apt-get install --no-install-recommends PACKAGES`, as root only
/// (otherwise it fails saying which `sudo apt-get install` to run).
pub(crate) fn apt_get(packages: &[&str]) -> Result<()> {
    let uid = procs::output(Command::new("id").arg("-u"))?;
    if uid.trim() != "0" {
        bail!(
            "not running as root, so apt-get cannot install them; run `sudo apt-get install {}` first",
            packages.join(" ")
        );
    }
    if packages.contains(&"postfix") {
        // Without an answer, postfix's postinst asks which configuration to write. We want
        // none: the system instance stays unconfigured and stopped, ours runs in a temp dir.
        procs::run(
            &mut Command::new("debconf-set-selections"),
            Some(b"postfix postfix/main_mailer_type select No configuration\npostfix postfix/mailname string localhost\n"),
            Duration::from_secs(60),
        )
        .context("running debconf-set-selections")?;
    }
    let run = |args: &[&str]| -> Result<()> {
        let outcome = procs::run(
            Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive"),
            None,
            Duration::from_secs(1200),
        )?;
        if !outcome.success() {
            let tail: Vec<&str> = outcome.stderr.lines().rev().take(5).collect();
            bail!(
                "apt-get {} failed ({}): {}",
                args.join(" "),
                outcome.why(),
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            );
        }
        Ok(())
    };
    run(&["update", "-q"])?;
    let mut args = vec![
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        "-o",
        "Dpkg::Options::=--force-confdef",
        "-o",
        "Dpkg::Options::=--force-confold",
    ];
    args.extend(packages);
    run(&args)
}

/// `target/interop/venv` with the pinned aiosmtpd; returns its python.
fn install_venv(root: &Path, cache: &Path) -> Result<PathBuf> {
    venv(
        &cache.join("venv"),
        &root.join("xtask/interop/requirements.txt"),
        "aiosmtpd",
        "interop",
    )
}

/// A virtual environment at `venv` with the pinned packages of `requirements`, for `task`;
/// returns its python. It is reused while it has the same requirements (a copy is kept in
/// it) and `import` works, and made anew otherwise.
pub(crate) fn venv(venv: &Path, requirements: &Path, import: &str, task: &str) -> Result<PathBuf> {
    let python = venv.join("bin").join("python");
    let wanted = std::fs::read_to_string(requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    let stamp = venv.join(format!("{task}-requirements.txt"));
    let current = std::fs::read_to_string(&stamp).unwrap_or_default();
    if current == wanted
        && works(
            &python.display().to_string(),
            &["-c", &format!("import {import}")],
        )
    {
        return Ok(python);
    }
    println!(
        "{task}: creating {} and installing {import} with pip",
        helpers::relative(venv)
    );
    if venv.exists() {
        std::fs::remove_dir_all(venv).with_context(|| format!("removing {}", venv.display()))?;
    }
    let outcome = procs::run(
        Command::new("python3").args(["-m", "venv"]).arg(venv),
        None,
        Duration::from_secs(300),
    )?;
    if !outcome.success() {
        bail!("python3 -m venv failed: {}", outcome.why());
    }
    let outcome = procs::run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(requirements),
        None,
        Duration::from_secs(600),
    )?;
    if !outcome.success() {
        bail!(
            "pip install -r {} failed: {}",
            helpers::relative(requirements),
            outcome.why()
        );
    }
    std::fs::write(&stamp, wanted)?;
    Ok(python)
}

/// `target/interop/node` with `npm ci` from our package.json and package-lock.json, plus
/// our scripts copied beside `node_modules/`.
fn install_node(root: &Path, cache: &Path) -> Result<PathBuf> {
    let source = root.join("xtask/interop/node");
    let dir = cache.join("node");
    std::fs::create_dir_all(&dir)?;
    let lock =
        std::fs::read(source.join("package-lock.json")).context("reading package-lock.json")?;
    let current = std::fs::read(dir.join("package-lock.json")).unwrap_or_default();
    let complete = ["smtp-server", "nodemailer"].iter().all(|package| {
        dir.join("node_modules")
            .join(package)
            .join("package.json")
            .exists()
    });
    for file in [
        "package.json",
        "package-lock.json",
        "server.js",
        "client.js",
    ] {
        std::fs::copy(source.join(file), dir.join(file))
            .with_context(|| format!("copying xtask/interop/node/{file}"))?;
    }
    if current == lock && complete {
        return Ok(dir);
    }
    println!("interop: installing smtp-server and nodemailer with npm ci into target/interop/node");
    let outcome = procs::run(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir),
        None,
        Duration::from_secs(600),
    )?;
    if !outcome.success() {
        bail!("npm ci failed: {}", outcome.why());
    }
    Ok(dir)
}

/// The versions of everything tested, for the report and docs/interop.md.
pub(crate) fn versions(tools: &Tools) -> Vec<(String, String)> {
    let first_line = |program: &str, args: &[&str]| -> String {
        match procs::run(
            Command::new(program).args(args),
            None,
            Duration::from_secs(30),
        ) {
            Ok(outcome) if outcome.success() => {
                let text = if outcome.stdout.trim().is_empty() {
                    outcome.stderr
                } else {
                    outcome.stdout
                };
                text.lines().next().unwrap_or("").trim().to_owned()
            }
            Ok(outcome) => format!("unavailable ({})", outcome.why()),
            Err(error) => format!("unavailable ({error:#})"),
        }
    };
    let mut versions = vec![
        (
            "Postfix".to_owned(),
            first_line("postconf", &["-d", "mail_version"]),
        ),
        ("swaks".to_owned(), first_line("swaks", &["--version"])),
        ("curl".to_owned(), first_line("curl", &["--version"])),
        ("msmtp".to_owned(), first_line("msmtp", &["--version"])),
        ("git".to_owned(), first_line("git", &["--version"])),
        ("OpenSSL".to_owned(), first_line("openssl", &["version"])),
    ];
    match &tools.python {
        Ok(python) => {
            let python = python.display().to_string();
            versions.push((
                "Python (smtplib)".into(),
                first_line(&python, &["--version"]),
            ));
            versions.push((
                "aiosmtpd".into(),
                first_line(
                    &python,
                    &["-c", "import aiosmtpd; print(aiosmtpd.__version__)"],
                ),
            ));
        }
        Err(error) => versions.push(("Python / aiosmtpd".into(), format!("unavailable ({error})"))),
    }
    versions.push(("Node.js".into(), first_line("node", &["--version"])));
    if let Ok(dir) = &tools.node_dir {
        for package in ["smtp-server", "nodemailer"] {
            let path = dir.join("node_modules").join(package).join("package.json");
            let version = std::fs::read(&path)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
                .and_then(|json| {
                    json.get("version")
                        .and_then(|v| v.as_str())
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| "unavailable".into());
            versions.push((package.to_owned(), version));
        }
    }
    versions
}
