//! `cargo xtask tidy`: the conventions of the tree, checked (also by `cargo test`, see
//! `the_tree_is_tidy` at the end; rust-analyzer's `xtask/src/tidy.rs` is the model).
//!
//! - **Crate edges** (from `cargo metadata`, normal dependencies, optional ones included):
//!   lib-client reaches no raw-client code, not even through another crate; test-server
//!   reaches no client crate (raw-client, lib-client, cli); cli reaches test-server only
//!   through an optional dependency that no default feature turns on.
//! - **Client code** under `crates/raw-client/src` and `crates/lib-client/src` never names
//!   `test_server::` (the fuzz crate may).
//! - Every Rust file opens with a `//!` line.
//! - No test is skipped or expected to panic (no ignore or should_panic attributes).
//! - Every dependency of a workspace member is declared with `workspace = true`. `fuzz/` and
//!   `bench/` are cargo projects of their own (cargo-fuzz builds one, the other keeps
//!   criterion out of `cargo test --workspace`): they cannot inherit the workspace's
//!   dependencies, so this one rule skips their manifests; every other rule covers their files.
//! - No absolute path of one machine (a home directory, this machine's `/work`) in any
//!   file git knows of (tracked, or new and not ignored).
//! - Every relative link in a markdown file points at a file or directory of the tree, and
//!   its `#anchor` at a heading of the target.
//!
//! Each check is a function over data (parsed metadata, a file's path and text), so the tests
//! below feed each one a broken case. A problem prints as `path:line: what is wrong`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::helpers;

/// Runs every check on the tree; returns 1 when something is wrong.
pub(crate) fn run() -> Result<i32> {
    let problems = check_tree(helpers::workspace_root())?;
    let (report, code) = report(&problems);
    print!("{report}");
    Ok(code)
}

/// What `cargo xtask tidy` prints for these problems, and its exit status.
fn report(problems: &[Problem]) -> (String, i32) {
    if problems.is_empty() {
        return ("tidy: every check passes\n".to_owned(), 0);
    }
    let mut out: String = problems.iter().map(|p| format!("{p}\n")).collect();
    out.push_str(&format!("tidy: {} problem(s)\n", problems.len()));
    (out, 1)
}

/// One broken convention, at a line of a file (1 when the whole file is meant).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Problem {
    /// Relative to the workspace root, with `/`.
    pub(crate) path: String,
    pub(crate) line: usize,
    pub(crate) what: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path, self.line, self.what)
    }
}

fn problem(path: &str, line: usize, what: impl Into<String>) -> Problem {
    Problem {
        path: path.to_owned(),
        line,
        what: what.into(),
    }
}

/// Every check over the tree at `root`.
pub(crate) fn check_tree(root: &Path) -> Result<Vec<Problem>> {
    let tree = Tree::read(root)?;
    let packages = workspace_packages(root, &tree)?;
    let mut problems = crate_edges(&packages);
    for package in &packages {
        if let Some(text) = tree.text(&package.manifest) {
            problems.extend(workspace_dependencies(&package.manifest, text));
        }
    }
    for (path, text) in &tree.files {
        let Some(text) = text else { continue };
        if path.ends_with(".rs") {
            problems.extend(opens_with_doc_comment(path, text));
            problems.extend(no_skipped_tests(path, text));
            problems.extend(clients_do_not_import_the_server(path, text));
        }
        if path.ends_with(".md") {
            problems.extend(markdown_links(path, text, &tree));
        }
        problems.extend(no_absolute_paths(path, text));
    }
    problems.sort();
    Ok(problems)
}

/// The files git knows of (tracked, or new and not ignored) with their text; `None` for a
/// file that is not UTF-8 (the fuzz seeds, the SVG's binary cousins).
pub(crate) struct Tree {
    files: BTreeMap<String, Option<String>>,
}

impl Tree {
    fn read(root: &Path) -> Result<Tree> {
        let output = Command::new("git")
            .args([
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ])
            .current_dir(root)
            .output()
            .context("tidy lists the files with git, which could not be started")?;
        if !output.status.success() {
            bail!(
                "git ls-files failed in {}: {}",
                root.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let mut files = BTreeMap::new();
        for name in output.stdout.split(|byte| *byte == 0) {
            let Ok(name) = std::str::from_utf8(name) else {
                continue;
            };
            let full = root.join(name);
            // Deleted but not yet committed: not part of the tree any more.
            if name.is_empty() || !full.is_file() {
                continue;
            }
            let bytes =
                std::fs::read(&full).with_context(|| format!("cannot read {}", full.display()))?;
            files.insert(name.to_owned(), String::from_utf8(bytes).ok());
        }
        Ok(Tree { files })
    }

    /// A tree of the given files, for tests.
    #[cfg(test)]
    fn of(files: &[(&str, &str)]) -> Tree {
        Tree {
            files: files
                .iter()
                .map(|(path, text)| ((*path).to_owned(), Some((*text).to_owned())))
                .collect(),
        }
    }

    fn text(&self, path: &str) -> Option<&str> {
        self.files.get(path)?.as_deref()
    }

    /// A file, or a directory holding one.
    fn exists(&self, path: &str) -> bool {
        let dir = format!("{}/", path.trim_end_matches('/'));
        path.is_empty()
            || self.files.contains_key(path)
            || self
                .files
                .range(dir.clone()..)
                .next()
                .is_some_and(|(name, _)| name.starts_with(&dir))
    }
}

// ---------------------------------------------------------------------------------------
// Crate edges.

/// A workspace member, as far as the edge checks need it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Package {
    pub(crate) name: String,
    /// Its Cargo.toml, relative to the root.
    pub(crate) manifest: String,
    /// Its normal (not dev, not build) dependencies on other workspace members.
    pub(crate) dependencies: Vec<Dependency>,
    /// Its `[features]`.
    pub(crate) features: BTreeMap<String, Vec<String>>,
}

/// A normal dependency on another workspace member.
#[derive(Debug, Clone, Default)]
pub(crate) struct Dependency {
    pub(crate) name: String,
    pub(crate) optional: bool,
    /// Where the manifest declares it.
    pub(crate) line: usize,
}

/// The workspace members from `cargo metadata --no-deps` (edges between our crates are path
/// dependencies between members, so the members are the whole graph that matters).
fn workspace_packages(root: &Path, tree: &Tree) -> Result<Vec<Package>> {
    let output = helpers::cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .context("cannot start cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("cargo metadata printed no JSON")?;
    packages_from_metadata(&metadata, root, &|path| tree.text(path).map(str::to_owned))
}

/// Parses `cargo metadata` output; `manifest_text` gives a manifest's text by relative path
/// (for the line of each dependency).
fn packages_from_metadata(
    metadata: &serde_json::Value,
    root: &Path,
    manifest_text: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Package>> {
    let packages = metadata
        .get("packages")
        .and_then(|p| p.as_array())
        .context("cargo metadata has no packages")?;
    let names: BTreeSet<&str> = packages
        .iter()
        .filter_map(|p| p.get("name")?.as_str())
        .collect();
    let mut out = Vec::new();
    for package in packages {
        let text_of = |key: &str| package.get(key).and_then(|v| v.as_str()).unwrap_or("");
        let manifest_path = Path::new(text_of("manifest_path"));
        let manifest = manifest_path
            .strip_prefix(root)
            .unwrap_or(manifest_path)
            .to_string_lossy()
            .into_owned();
        let text = manifest_text(&manifest).unwrap_or_default();
        let mut dependencies = Vec::new();
        for dependency in package
            .get("dependencies")
            .and_then(|d| d.as_array())
            .into_iter()
            .flatten()
        {
            let name = dependency
                .get("name")
                .and_then(|n| n.as_str())
                .unwrap_or("");
            let normal = dependency.get("kind").is_none_or(|kind| kind.is_null());
            if !normal || !names.contains(name) {
                continue;
            }
            let key = dependency
                .get("rename")
                .and_then(|r| r.as_str())
                .unwrap_or(name);
            dependencies.push(Dependency {
                name: name.to_owned(),
                optional: dependency
                    .get("optional")
                    .and_then(|o| o.as_bool())
                    .unwrap_or(false),
                line: declaration_line(&text, key).unwrap_or(1),
            });
        }
        let features = package
            .get("features")
            .and_then(|f| f.as_object())
            .map(|features| {
                features
                    .iter()
                    .map(|(name, list)| {
                        let list = list
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect();
                        (name.clone(), list)
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(Package {
            name: text_of("name").to_owned(),
            manifest,
            dependencies,
            features,
        });
    }
    Ok(out)
}

/// The line declaring dependency `key` in a normal `[dependencies]` section.
fn declaration_line(manifest: &str, key: &str) -> Option<usize> {
    let mut normal = false;
    for (index, line) in manifest.lines().enumerate() {
        let line = line.trim();
        if let Some(header) = section(line) {
            let (table, name) = dependency_table(header);
            normal = table == Some("dependencies");
            if normal && name == Some(key) {
                return Some(index + 1);
            }
            if name.is_some() {
                normal = false;
            }
            continue;
        }
        if normal && entry_key(line) == Some(key) {
            return Some(index + 1);
        }
    }
    None
}

/// `[header]` → `header`.
fn section(line: &str) -> Option<&str> {
    line.strip_prefix('[')?.split(']').next().map(str::trim)
}

/// For a section header: which kind of dependency table it is (`dependencies`,
/// `dev-dependencies`, `build-dependencies`, also under `target.'cfg'.`) and, for the
/// `[dependencies.NAME]` form, the dependency's name.
fn dependency_table(header: &str) -> (Option<&'static str>, Option<&str>) {
    let header = match header.strip_prefix("target.") {
        // target.'cfg(unix)'.dependencies: the kind follows the quoted or dotted cfg.
        Some(rest) => rest
            .rsplit_once("'.")
            .or_else(|| rest.rsplit_once("\"."))
            .or_else(|| rest.split_once('.'))
            .map_or(rest, |(_, kind)| kind),
        None => header,
    };
    let (kind, name) = match header.split_once('.') {
        Some((kind, name)) => (kind, Some(name.trim().trim_matches('"'))),
        None => (header, None),
    };
    let kind = match kind {
        "dependencies" => Some("dependencies"),
        "dev-dependencies" => Some("dev-dependencies"),
        "build-dependencies" => Some("build-dependencies"),
        _ => None,
    };
    (kind, name)
}

/// `name.workspace = true` or `name = ...` → `name`.
fn entry_key(line: &str) -> Option<&str> {
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    Some(key.strip_suffix(".workspace").unwrap_or(key).trim())
}

/// The path from `from` to `to` over normal dependencies (optional ones included), skipping
/// the edges `skip` rejects; `None` when `to` cannot be reached.
fn path_between<'a>(
    packages: &'a [Package],
    from: &'a str,
    to: &str,
    skip: &dyn Fn(&Package, &Dependency) -> bool,
) -> Option<Vec<&'a str>> {
    let by_name: BTreeMap<&str, &Package> = packages.iter().map(|p| (p.name.as_str(), p)).collect();
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([from]);
    while let Some(name) = queue.pop_front() {
        let Some(package) = by_name.get(name) else {
            continue;
        };
        for dependency in &package.dependencies {
            if skip(package, dependency) {
                continue;
            }
            let next = dependency.name.as_str();
            if next == from || came_from.contains_key(next) {
                continue;
            }
            came_from.insert(next, name);
            if next == to {
                let mut path = vec![next];
                let mut at = next;
                while let Some(previous) = came_from.get(at) {
                    path.push(previous);
                    if *previous == from {
                        break;
                    }
                    at = previous;
                }
                path.reverse();
                return Some(path);
            }
            queue.push_back(next);
        }
    }
    None
}

/// The features a package turns on by default, and the optional dependencies they enable.
fn enabled_by_default(package: &Package) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut features = BTreeSet::new();
    let mut dependencies = BTreeSet::new();
    let mut queue = vec!["default".to_owned()];
    while let Some(feature) = queue.pop() {
        if !features.insert(feature.clone()) {
            continue;
        }
        for entry in package.features.get(&feature).into_iter().flatten() {
            if let Some(dependency) = entry.strip_prefix("dep:") {
                dependencies.insert(dependency.to_owned());
            } else if let Some((dependency, _)) = entry.split_once('/') {
                // `dep?/feature` enables a feature of the dependency only if it is on anyway.
                if !dependency.ends_with('?') {
                    dependencies.insert(dependency.to_owned());
                }
            } else if package
                .dependencies
                .iter()
                .any(|d| d.name == *entry && d.optional)
                && !package.features.contains_key(entry)
            {
                dependencies.insert(entry.clone());
            } else {
                queue.push(entry.clone());
            }
        }
    }
    (features, dependencies)
}

fn line_of_first_edge(package: &Package, path: &[&str]) -> usize {
    path.get(1)
        .and_then(|next| package.dependencies.iter().find(|d| d.name == *next))
        .map_or(1, |d| d.line)
}

/// The crate-edge invariants of DESIGN.md.
pub(crate) fn crate_edges(packages: &[Package]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let find = |name: &str| packages.iter().find(|p| p.name == name);
    let never = |_: &Package, _: &Dependency| false;
    let mut forbid = |from: &str, to: &str, why: &str| {
        let Some(package) = find(from) else { return };
        if let Some(path) = path_between(packages, from, to, &never) {
            problems.push(problem(
                &package.manifest,
                line_of_first_edge(package, &path),
                format!("{from} depends on {to} ({}); {why}", path.join(" → ")),
            ));
        }
    };
    forbid(
        "lib-client",
        "raw-client",
        "lib-client must not use raw-client's code, not even through another crate",
    );
    for client in ["raw-client", "lib-client", "cli"] {
        forbid(
            "test-server",
            client,
            "test-server must not depend on a client crate (raw-client, lib-client, cli), not even through another crate",
        );
    }
    if let Some(cli) = find("cli") {
        let (_, on_by_default) = enabled_by_default(cli);
        for dependency in cli.dependencies.iter().filter(|d| d.name == "test-server") {
            if !dependency.optional {
                problems.push(problem(
                    &cli.manifest,
                    dependency.line,
                    "cli depends on test-server; it may only through an optional dependency behind a non-default feature",
                ));
            } else if on_by_default.contains("test-server") {
                problems.push(problem(
                    &cli.manifest,
                    dependency.line,
                    "cli's default features turn on its optional test-server dependency; only a non-default feature may",
                ));
            }
        }
        // Any other way from cli to test-server (through another crate) is not allowed either.
        let allowed = |package: &Package, dependency: &Dependency| {
            package.name == "cli" && dependency.name == "test-server"
        };
        if let Some(path) = path_between(packages, "cli", "test-server", &allowed) {
            problems.push(problem(
                &cli.manifest,
                line_of_first_edge(cli, &path),
                format!(
                    "cli depends on test-server through another crate ({}); only its own optional dependency behind a non-default feature may bring it in",
                    path.join(" → ")
                ),
            ));
        }
    }
    problems
}

/// No client source names the server's code.
pub(crate) fn clients_do_not_import_the_server(path: &str, text: &str) -> Vec<Problem> {
    let client = ["crates/raw-client/src/", "crates/lib-client/src/"]
        .iter()
        .any(|dir| path.starts_with(dir));
    if !client {
        return Vec::new();
    }
    let server = concat!("test_", "server");
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let code = line.split("//").next().unwrap_or("");
            code.contains(&format!("{server}::"))
                || code.trim_start().starts_with(&format!("use {server}"))
                || code.contains(&format!("extern crate {server}"))
        })
        .map(|(index, _)| {
            problem(
                path,
                index + 1,
                format!(
                    "client code uses {server}::; the clients never import the server's code (only the fuzz crate may use both)"
                ),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Files.

/// Every Rust file opens with a `//!` line saying what it owns.
pub(crate) fn opens_with_doc_comment(path: &str, text: &str) -> Vec<Problem> {
    if text
        .lines()
        .next()
        .is_some_and(|line| line.starts_with("//!"))
    {
        Vec::new()
    } else {
        vec![problem(
            path,
            1,
            "the file does not open with a `//!` line saying what it owns",
        )]
    }
}

/// The attributes that skip a test or expect it to panic, spelled in pieces so that this
/// file does not contain them.
const SKIPPED: [(&str, &str); 2] = [
    (
        concat!("#[", "ignore"),
        "skips a test; make it run and assert on what it checks",
    ),
    (
        concat!("#[", "should_panic"),
        "expects a panic; assert on the Err instead",
    ),
];

/// No test is skipped or expected to panic (STYLE.md).
pub(crate) fn no_skipped_tests(path: &str, text: &str) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (index, line) in text.lines().enumerate() {
        for (attribute, why) in SKIPPED {
            if line.contains(attribute) {
                problems.push(problem(path, index + 1, format!("`{attribute}]` {why}")));
            }
        }
    }
    problems
}

/// Every dependency of a workspace member is declared with `workspace = true`, so versions
/// and features are chosen once, in the root Cargo.toml.
pub(crate) fn workspace_dependencies(path: &str, text: &str) -> Vec<Problem> {
    /// Where the scan is.
    enum Table {
        /// Not in a dependency table.
        Other,
        /// `[dependencies]` and its kin: one dependency per line.
        Dependencies,
        /// `[dependencies.NAME]`: one dependency, whose keys follow.
        Named {
            line: usize,
            name: String,
            inherited: bool,
        },
    }
    let not_inherited = |line: usize, name: &str| {
        problem(
            path,
            line,
            format!(
                "dependency {name} is not declared with `workspace = true`; add it to [workspace.dependencies] in the root Cargo.toml"
            ),
        )
    };
    let mut problems = Vec::new();
    let mut table = Table::Other;
    let end = |table: &Table, problems: &mut Vec<Problem>| {
        if let Table::Named {
            line,
            name,
            inherited: false,
        } = table
        {
            problems.push(not_inherited(*line, name));
        }
    };
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(header) = section(line) {
            end(&table, &mut problems);
            table = match dependency_table(header) {
                (Some(_), Some(name)) => Table::Named {
                    line: index + 1,
                    name: name.to_owned(),
                    inherited: false,
                },
                (Some(_), None) => Table::Dependencies,
                (None, _) => Table::Other,
            };
            continue;
        }
        let Some(key) = entry_key(line) else { continue };
        match &mut table {
            Table::Other => {}
            Table::Named { inherited, .. } => {
                if key == "workspace" && value(line) == "true" {
                    *inherited = true;
                }
            }
            Table::Dependencies => {
                let dotted = line
                    .split('=')
                    .next()
                    .is_some_and(|key| key.trim().ends_with(".workspace"));
                let inherited = if dotted {
                    value(line) == "true"
                } else {
                    inline_workspace(value(line))
                };
                if !inherited {
                    problems.push(not_inherited(index + 1, key));
                }
            }
        }
    }
    end(&table, &mut problems);
    problems
}

/// The value of a `key = value` line, without a trailing comment.
fn value(line: &str) -> &str {
    let value = line.split_once('=').map_or("", |(_, value)| value);
    let value = match value.find(" #") {
        Some(at) if !value.trim_start().starts_with('"') => &value[..at],
        _ => value,
    };
    value.trim()
}

/// `{ workspace = true, features = [...] }`.
fn inline_workspace(value: &str) -> bool {
    let Some(inner) = value.strip_prefix('{').and_then(|v| v.strip_suffix('}')) else {
        return false;
    };
    inner.split(',').any(|pair| {
        pair.split_once('=')
            .is_some_and(|(key, value)| key.trim() == "workspace" && value.trim() == "true")
    })
}

/// The beginnings of absolute paths that exist on one machine only, spelled in pieces so that
/// this file does not contain them.
const MACHINE_PATHS: [&str; 5] = [
    concat!("/wo", "rk/"),
    concat!("/ro", "ot/"),
    concat!("/ho", "me/"),
    concat!("/Us", "ers/"),
    concat!("C:\\", "Users\\"),
];

/// No absolute path of one machine: the tree must work wherever it is cloned.
pub(crate) fn no_absolute_paths(path: &str, text: &str) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (index, line) in text.lines().enumerate() {
        for machine in MACHINE_PATHS {
            let found = line.match_indices(machine).any(|(at, _)| {
                // The same letters inside a URL's path or a longer relative path are not a
                // machine path: only a path that starts there is.
                let before = line[..at].chars().next_back();
                before.is_none_or(|c| !(c.is_alphanumeric() || matches!(c, '/' | '.' | '_' | '-')))
            });
            if found {
                problems.push(problem(
                    path,
                    index + 1,
                    format!(
                        "`{machine}` is an absolute path on one machine; use a path relative to the workspace"
                    ),
                ));
            }
        }
    }
    problems
}

// ---------------------------------------------------------------------------------------
// Markdown links.

/// Every relative link resolves to a file or directory of the tree, and its anchor to a
/// heading of the target.
pub(crate) fn markdown_links(path: &str, text: &str, tree: &Tree) -> Vec<Problem> {
    let dir = path.rsplit_once('/').map_or("", |(dir, _)| dir);
    let mut problems = Vec::new();
    for (number, target) in link_targets(text) {
        if target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (file, anchor) = target.split_once('#').unwrap_or((target.as_str(), ""));
        let file = file.replace("%20", " ");
        let resolved = if file.is_empty() {
            Some(path.to_owned())
        } else if let Some(from_root) = file.strip_prefix('/') {
            normalize("", from_root)
        } else {
            normalize(dir, &file)
        };
        let Some(resolved) = resolved else {
            problems.push(problem(
                path,
                number,
                format!("the link {target} points outside the repository"),
            ));
            continue;
        };
        if !tree.exists(&resolved) {
            problems.push(problem(
                path,
                number,
                format!("the link {target} points at {resolved}, which does not exist"),
            ));
            continue;
        }
        if !anchor.is_empty() && resolved.ends_with(".md") {
            let headings = tree.text(&resolved).map(heading_slugs).unwrap_or_default();
            if !headings.contains(anchor) {
                problems.push(problem(
                    path,
                    number,
                    format!("the link {target}: {resolved} has no heading #{anchor}"),
                ));
            }
        }
    }
    problems
}

/// `dir` joined with a relative `path`, `.` and `..` resolved; `None` when it leaves the root.
fn normalize(dir: &str, path: &str) -> Option<String> {
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

/// The lines of a markdown text outside fenced code blocks, numbered from 1, with inline
/// code spans blanked out.
fn prose_lines(text: &str) -> Vec<(usize, String)> {
    let mut fence: Option<&str> = None;
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let marker = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m));
        match (fence, marker) {
            (None, Some(marker)) => fence = Some(marker),
            (Some(open), Some(marker)) if open == marker => fence = None,
            (Some(_), _) => {}
            (None, None) => {
                // Even pieces between backticks are outside code spans.
                let prose: Vec<&str> = line.split('`').step_by(2).collect();
                out.push((index + 1, prose.join(" ")));
            }
        }
    }
    out
}

/// The targets of `[text](target)`, `![alt](target)` and `[label]: target`, by line.
fn link_targets(text: &str) -> Vec<(usize, String)> {
    let mut targets = Vec::new();
    for (number, line) in prose_lines(text) {
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let end = after.find(')').unwrap_or(after.len());
            let target = after[..end].trim();
            let target = target
                .strip_prefix('<')
                .and_then(|t| t.split('>').next())
                .unwrap_or_else(|| target.split_whitespace().next().unwrap_or(""));
            if !target.is_empty() {
                targets.push((number, target.to_owned()));
            }
            rest = &after[end..];
        }
        let trimmed = line.trim_start();
        if let Some(definition) = trimmed.strip_prefix('[')
            && let Some((label, target)) = definition.split_once("]:")
            && !label.is_empty()
            && let Some(target) = target.split_whitespace().next()
        {
            targets.push((number, target.to_owned()));
        }
    }
    targets
}

/// The anchors GitHub gives a markdown file's headings: lowercase, punctuation dropped,
/// spaces as `-`, repeats numbered `-1`, `-2`.
fn heading_slugs(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut slugs = BTreeSet::new();
    let mut fence = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") || line.trim_start().starts_with("~~~") {
            fence = !fence;
            continue;
        }
        let Some(heading) = line.strip_prefix('#') else {
            continue;
        };
        if fence {
            continue;
        }
        let heading = heading.trim_start_matches('#');
        if !heading.starts_with(' ') {
            continue;
        }
        let slug: String = heading
            .trim()
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        let count = seen.entry(slug.clone()).or_insert(0);
        slugs.insert(if *count == 0 {
            slug
        } else {
            format!("{slug}-{count}")
        });
        *count += 1;
    }
    slugs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole tree, every check: `cargo test` fails on the first broken convention.
    #[test]
    fn the_tree_is_tidy() -> Result<()> {
        let problems = check_tree(helpers::workspace_root())?;
        let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(
            problems.is_empty(),
            "cargo xtask tidy finds {} problem(s):\n{}",
            problems.len(),
            listed.join("\n")
        );
        Ok(())
    }

    #[test]
    fn each_problem_is_one_line_and_any_problem_fails_the_run() {
        assert_eq!(report(&[]), ("tidy: every check passes\n".to_owned(), 0));
        let problems = [problem("a.rs", 1, "one"), problem("docs/b.md", 7, "two")];
        assert_eq!(
            report(&problems),
            (
                "a.rs:1: one\ndocs/b.md:7: two\ntidy: 2 problem(s)\n".to_owned(),
                1
            )
        );
    }

    fn package(name: &str, dependencies: &[(&str, bool, usize)]) -> Package {
        Package {
            name: name.to_owned(),
            manifest: format!("crates/{name}/Cargo.toml"),
            dependencies: dependencies
                .iter()
                .map(|(name, optional, line)| Dependency {
                    name: (*name).to_owned(),
                    optional: *optional,
                    line: *line,
                })
                .collect(),
            features: BTreeMap::new(),
        }
    }

    /// The graph DESIGN.md asks for: cli brings test-server in through a non-default feature.
    fn good_graph() -> Vec<Package> {
        let mut cli = package(
            "cli",
            &[
                ("message", false, 9),
                ("transcript", false, 10),
                ("test-server", true, 11),
            ],
        );
        cli.features
            .insert("embedded".into(), vec!["dep:test-server".into()]);
        vec![
            package("message", &[]),
            package("transcript", &[]),
            cli,
            package("test-server", &[("transcript", false, 9)]),
            package(
                "raw-client",
                &[
                    ("cli", false, 9),
                    ("message", false, 10),
                    ("transcript", false, 11),
                ],
            ),
            package(
                "lib-client",
                &[
                    ("cli", false, 9),
                    ("message", false, 10),
                    ("transcript", false, 11),
                ],
            ),
        ]
    }

    fn edges(packages: &[Package]) -> Vec<String> {
        crate_edges(packages)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn with(
        mut packages: Vec<Package>,
        name: &str,
        edit: impl FnOnce(&mut Package),
    ) -> Vec<Package> {
        if let Some(package) = packages.iter_mut().find(|p| p.name == name) {
            edit(package);
        }
        packages
    }

    #[test]
    fn the_designed_graph_has_no_forbidden_edge() {
        assert_eq!(edges(&good_graph()), Vec::<String>::new());
    }

    #[test]
    fn lib_client_reaching_raw_client_is_named_with_its_path() {
        let direct = with(good_graph(), "lib-client", |p| {
            p.dependencies.push(Dependency {
                name: "raw-client".into(),
                optional: false,
                line: 14,
            });
        });
        assert_eq!(
            edges(&direct),
            [
                "crates/lib-client/Cargo.toml:14: lib-client depends on raw-client (lib-client → raw-client); lib-client must not use raw-client's code, not even through another crate"
            ]
        );
        // Through another crate: the line is the first edge's, the path is spelled out.
        let mut through_helper = with(good_graph(), "lib-client", |p| {
            p.dependencies.push(Dependency {
                name: "helper".into(),
                optional: true,
                line: 12,
            });
        });
        through_helper.push(package("helper", &[("raw-client", false, 8)]));
        assert_eq!(
            edges(&through_helper),
            [
                "crates/lib-client/Cargo.toml:12: lib-client depends on raw-client (lib-client → helper → raw-client); lib-client must not use raw-client's code, not even through another crate"
            ]
        );
    }

    #[test]
    fn test_server_reaching_a_client_crate_is_named() {
        let broken = with(good_graph(), "test-server", |p| {
            p.dependencies.push(Dependency {
                name: "cli".into(),
                optional: true,
                line: 12,
            });
        });
        let found = edges(&broken);
        assert!(found.contains(&"crates/test-server/Cargo.toml:12: test-server depends on cli (test-server → cli); test-server must not depend on a client crate (raw-client, lib-client, cli), not even through another crate".to_owned()), "{found:?}");
        // cli → test-server is optional here, so test-server → cli → test-server is a cycle
        // only on paper; the rule is about test-server's own edges.
        assert_eq!(found.len(), 1, "{found:?}");
    }

    #[test]
    fn cli_may_bring_test_server_in_only_behind_a_non_default_feature() {
        let required = with(good_graph(), "cli", |p| p.dependencies[2].optional = false);
        assert_eq!(
            edges(&required),
            [
                "crates/cli/Cargo.toml:11: cli depends on test-server; it may only through an optional dependency behind a non-default feature"
            ]
        );
        let by_default = with(good_graph(), "cli", |p| {
            p.features.insert("default".into(), vec!["embedded".into()]);
        });
        assert_eq!(
            edges(&by_default),
            [
                "crates/cli/Cargo.toml:11: cli's default features turn on its optional test-server dependency; only a non-default feature may"
            ]
        );
        // The implicit feature of an optional dependency, and `dep/feature`, turn it on too;
        // `dep?/feature` does not.
        for (entry, on) in [
            ("test-server", true),
            ("test-server/x", true),
            ("test-server?/x", false),
        ] {
            let graph = with(good_graph(), "cli", |p| {
                p.features.clear();
                p.features.insert("default".into(), vec![entry.into()]);
            });
            assert_eq!(!edges(&graph).is_empty(), on, "{entry}");
        }
        let through_message = with(good_graph(), "message", |p| {
            p.dependencies.push(Dependency {
                name: "test-server".into(),
                optional: false,
                line: 7,
            });
        });
        assert_eq!(
            edges(&through_message),
            [
                "crates/cli/Cargo.toml:9: cli depends on test-server through another crate (cli → message → test-server); only its own optional dependency behind a non-default feature may bring it in"
            ]
        );
    }

    #[test]
    fn metadata_gives_normal_dependencies_between_members_with_their_lines() -> Result<()> {
        let metadata = serde_json::json!({
            "packages": [
                {
                    "name": "cli",
                    "manifest_path": "/r/crates/cli/Cargo.toml",
                    "features": {"embedded": ["dep:test-server"]},
                    "dependencies": [
                        {"name": "clap", "kind": null, "optional": false},
                        {"name": "test-server", "kind": null, "optional": true},
                        {"name": "message", "kind": "dev", "optional": false},
                    ],
                },
                {"name": "test-server", "manifest_path": "/r/crates/test-server/Cargo.toml",
                 "features": {}, "dependencies": []},
                {"name": "message", "manifest_path": "/r/crates/message/Cargo.toml",
                 "features": {}, "dependencies": []},
            ]
        });
        let manifest = "[package]\nname = \"cli\"\n\n[dependencies]\nclap.workspace = true\ntest-server = { workspace = true, optional = true }\n\n[dev-dependencies]\nmessage.workspace = true\n";
        let packages = packages_from_metadata(&metadata, Path::new("/r"), &|path| {
            (path == "crates/cli/Cargo.toml").then(|| manifest.to_owned())
        })?;
        let cli = &packages[0];
        assert_eq!(cli.manifest, "crates/cli/Cargo.toml");
        assert_eq!(cli.dependencies.len(), 1);
        assert_eq!(cli.dependencies[0].name, "test-server");
        assert!(cli.dependencies[0].optional);
        assert_eq!(cli.dependencies[0].line, 6);
        assert_eq!(cli.features["embedded"], ["dep:test-server"]);
        Ok(())
    }

    #[test]
    fn client_code_naming_the_server_is_found_by_line() {
        let server = concat!("test_", "server");
        let text = format!(
            "//! x\nuse std::io;\nlet s = {server}::Server::start();\n// {server}:: in a comment\n"
        );
        let found = clients_do_not_import_the_server("crates/raw-client/src/lib.rs", &text);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].line, 3);
        assert!(
            found[0]
                .to_string()
                .starts_with("crates/raw-client/src/lib.rs:3: client code uses")
        );
        let import = format!("//! x\nuse {server}::Config;\n");
        assert_eq!(
            clients_do_not_import_the_server("crates/lib-client/src/capture.rs", &import).len(),
            1
        );
        // The fuzz crate and the workspace tests may use both.
        assert!(
            clients_do_not_import_the_server("fuzz/fuzz_targets/reply_parser.rs", &text).is_empty()
        );
        assert!(clients_do_not_import_the_server("tests/src/lib.rs", &text).is_empty());
    }

    #[test]
    fn a_rust_file_must_open_with_a_doc_line() {
        assert!(opens_with_doc_comment("a.rs", "//! What this owns.\nfn f() {}\n").is_empty());
        for text in [
            "// a plain comment\n",
            "\n//! too late\n",
            "fn f() {}\n",
            "",
        ] {
            assert_eq!(
                opens_with_doc_comment("crates/x/src/a.rs", text),
                [problem(
                    "crates/x/src/a.rs",
                    1,
                    "the file does not open with a `//!` line saying what it owns"
                )]
            );
        }
    }

    #[test]
    fn skipped_and_panicking_tests_are_found_by_line() {
        let text = format!(
            "//! t\n#[test]\n{}]\nfn a() {{}}\n{} = \"why\"]\nfn b() {{}}\n{}(expected = \"x\")]\nfn c() {{}}\n",
            SKIPPED[0].0, SKIPPED[0].0, SKIPPED[1].0
        );
        let found: Vec<String> = no_skipped_tests("tests/tests/a.rs", &text)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].starts_with("tests/tests/a.rs:3: `#["));
        assert!(found[1].starts_with("tests/tests/a.rs:5: "));
        assert!(
            found[2].starts_with("tests/tests/a.rs:7: ") && found[2].contains("assert on the Err")
        );
    }

    #[test]
    fn tidy_does_not_trip_over_its_own_source() {
        let own = include_str!("tidy.rs");
        assert!(no_skipped_tests("xtask/src/tidy.rs", own).is_empty());
        assert!(no_absolute_paths("xtask/src/tidy.rs", own).is_empty());
    }

    #[test]
    fn dependencies_must_come_from_the_workspace() {
        let good = "[package]\nname = \"x\"\nversion.workspace = true\n\n[dependencies]\nclap.workspace = true\nlettre = { workspace = true, features = [\"pool\"] }\n# a comment\n\n[dev-dependencies]\ninsta = { workspace = true }\n\n[dependencies.serde]\nworkspace = true\nfeatures = [\"derive\"]\n\n[lints]\nworkspace = true\n";
        assert_eq!(
            workspace_dependencies("crates/x/Cargo.toml", good),
            Vec::new()
        );
        let bad = "[package]\nname = \"x\"\n\n[dependencies]\nclap.workspace = true\nlettre = \"0.11\"\nring = { version = \"0.17\", workspace = false }\n\n[target.'cfg(unix)'.dev-dependencies]\nlibc = { version = \"0.2\" }\n\n[build-dependencies.cc]\nversion = \"1\"\n\n[features]\nfast = []\n";
        let found: Vec<String> = workspace_dependencies("crates/x/Cargo.toml", bad)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            found,
            [
                "crates/x/Cargo.toml:6: dependency lettre is not declared with `workspace = true`; add it to [workspace.dependencies] in the root Cargo.toml",
                "crates/x/Cargo.toml:7: dependency ring is not declared with `workspace = true`; add it to [workspace.dependencies] in the root Cargo.toml",
                "crates/x/Cargo.toml:10: dependency libc is not declared with `workspace = true`; add it to [workspace.dependencies] in the root Cargo.toml",
                "crates/x/Cargo.toml:12: dependency cc is not declared with `workspace = true`; add it to [workspace.dependencies] in the root Cargo.toml",
            ]
        );
    }

    #[test]
    fn machine_paths_are_found_and_relative_ones_are_not() {
        let home = MACHINE_PATHS[2];
        let text = format!(
            "see {home}alice/notes.txt\ncd {}wt/x\nhttps://example.com{home}page and a{home}b\n/tmp/test-server-1/000001.eml\n",
            MACHINE_PATHS[0]
        );
        let found: Vec<String> = no_absolute_paths("docs/a.md", &text)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("docs/a.md:1: `/ho"));
        assert!(found[1].starts_with("docs/a.md:2: `/wo"));
    }

    #[test]
    fn markdown_links_must_resolve_to_files_and_headings() {
        let tree = Tree::of(&[
            ("README.md", ""),
            (
                "docs/a.md",
                "# Title\n\n## Storage layout\n\n## Faults\n## Faults\n",
            ),
            ("docs/round-trips.svg", "<svg/>"),
            ("crates/raw-client/src/session.rs", "//! s"),
        ]);
        let good = "[a](docs/a.md) [b](docs/a.md#storage-layout) [c](docs/a.md#faults-1) \
                    ![svg](docs/round-trips.svg) [dir](crates/raw-client/) [web](https://example.com/x.md) \
                    [mail](mailto:a@example.com)\n\n[ref]: docs/a.md#title\n";
        assert_eq!(markdown_links("README.md", good, &tree), Vec::new());
        let from_docs =
            "[up](../crates/raw-client/src/session.rs) [same](#faults) [svg](round-trips.svg)\n";
        assert_eq!(markdown_links("docs/a.md", from_docs, &tree), Vec::new());

        let bad = "# Doc\n\n[gone](docs/b.md)\n```\n[in code](nowhere.md)\n```\n`[in a span](nowhere.md)` \
                   [anchor](docs/a.md#no-such) [out](../../shared/DESIGN.md)\n";
        let found: Vec<String> = markdown_links("README.md", bad, &tree)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            found,
            [
                "README.md:3: the link docs/b.md points at docs/b.md, which does not exist",
                "README.md:7: the link docs/a.md#no-such: docs/a.md has no heading #no-such",
                "README.md:7: the link ../../shared/DESIGN.md points outside the repository",
            ]
        );
    }

    #[test]
    fn heading_anchors_follow_github() {
        let slugs = heading_slugs(
            "# The test server (`crates/test-server`)\n## Strict and permissive line endings\n```\n# not a heading\n```\n#nope\n",
        );
        assert_eq!(
            slugs.into_iter().collect::<Vec<_>>(),
            [
                "strict-and-permissive-line-endings",
                "the-test-server-cratestest-server"
            ]
        );
    }
}
