//! docs/course/ cannot go stale: every command in its ```` ```console ```` blocks runs here,
//! and what it prints must be what the chapter shows.
//!
//! A block is a terminal session. `$ command` runs in bash (a trailing `\` continues it), in
//! a scratch directory under target/course/ where `docs` leads to the repository's docs, so
//! commands read as they would from the repository root. `> text` is a line the reader
//! types (`>` alone is an empty line): it is sent to the command's standard input once
//! everything shown before it has been printed; standard input closes after the last one. Any other line is output (standard output and standard error together);
//! `[..]` in a line matches any text, and a line `...` any number of lines. A command that
//! ends with `&` keeps running in the background until the chapter ends (the test server);
//! the lines after it are what it prints first, which is also how the runner knows it is
//! ready. A command that fails must be followed by `echo $?`, so the chapter shows the exit
//! code. Ports 2525 and 4650 stand for free ports picked for each run, both ways.
//!
//! A block that starts ```` ```console network ```` needs a real provider and an account: it
//! is shown, not run, and may only talk to the providers the chapter is about.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

/// How long one expected line may take: the first `cargo run` of a chapter may build.
const LINE_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a command may take to exit once everything it should print has been printed.
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);
/// The ports chapters use, each replaced by a free one.
const PORTS: [u16; 2] = [2525, 4650];
/// The only hosts a `console network` block may name.
const PROVIDERS: [&str; 3] = [
    "smtp.gmail.com",
    "smtp.office365.com",
    "smtp-mail.outlook.com",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

fn chapters() -> Vec<PathBuf> {
    let dir = workspace().join("docs/course");
    let mut chapters: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("docs/course exists")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| {
            path.extension().is_some_and(|ext| ext == "md")
                && path.file_name().is_some_and(|name| name != "README.md")
        })
        .collect();
    chapters.sort();
    chapters
}

#[test]
fn every_command_in_the_course_prints_what_the_chapter_shows() {
    let chapters = chapters();
    let mut failures = Vec::new();
    for chapter in &chapters {
        let name = chapter
            .file_stem()
            .and_then(|stem| stem.to_str())
            .expect("a chapter name");
        let text = std::fs::read_to_string(chapter).expect("the chapter is readable");
        let blocks = parse(&text).unwrap_or_else(|error| panic!("{name}.md: {error}"));
        let mut run = Chapter::new(name);
        for block in &blocks {
            if let Err(error) = run.block(block) {
                failures.push(format!("{name}.md line {}: {error}", block.line));
                break;
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

#[test]
fn the_course_is_linked_from_the_readme_and_its_index() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).expect("README.md");
    assert!(
        readme.contains("(docs/course/README.md)"),
        "README links the course"
    );
    let index = std::fs::read_to_string(workspace().join("docs/course/README.md"))
        .expect("docs/course/README.md");
    let chapters = chapters();
    assert_eq!(chapters.len(), 7, "seven chapters: {chapters:?}");
    for chapter in chapters {
        let file = chapter
            .file_name()
            .and_then(|name| name.to_str())
            .expect("a file name");
        assert!(
            index.contains(&format!("]({file})")),
            "the index links {file}"
        );
    }
}

#[test]
fn only_console_blocks_hold_commands_and_network_blocks_name_a_provider() {
    for chapter in chapters() {
        let text = std::fs::read_to_string(&chapter).expect("readable");
        let blocks = parse(&text).unwrap_or_else(|error| panic!("{}: {error}", chapter.display()));
        for block in blocks.iter().filter(|block| block.network) {
            for command in &block.commands {
                assert!(
                    PROVIDERS.iter().any(|host| command.text.contains(host)),
                    "{} line {}: a network block talks only to {PROVIDERS:?}: {}",
                    chapter.display(),
                    block.line,
                    command.text
                );
            }
        }
    }
}

#[test]
fn the_matcher_knows_its_wildcards() {
    assert!(line_matches("C: EHLO [..]", "C: EHLO vm"));
    assert!(line_matches("a [..] c [..]", "a b c d e"));
    assert!(line_matches("[..]", ""));
    assert!(!line_matches("C: EHLO [..]", "S: EHLO vm"));
    assert!(!line_matches("a[..]b", "a c"));
    assert!(line_matches("exact", "exact"));
    assert_eq!(
        parse("```console\n$ echo a \\\n  b\n> typed\na b\n...\n```\n")
            .map(|blocks| blocks[0].commands[0].clone()),
        Ok(Step {
            text: "echo a \\\n  b".into(),
            items: vec![
                Item::Typed("typed".into()),
                Item::Shown("a b".into()),
                Item::Any
            ],
        })
    );
    assert_eq!(
        parse("```console\n$ cat\n>\n```\n").map(|blocks| blocks[0].commands[0].items.clone()),
        Ok(vec![Item::Typed(String::new())])
    );
    assert!(parse("```console\n$ cat\n...\n> x\n```\n").is_err());
    assert!(parse("```sh\n$ cargo run\n```\n").is_err());
}

/// One ```console block.
#[derive(Debug)]
struct Block {
    /// The line of its opening fence.
    line: usize,
    network: bool,
    commands: Vec<Step>,
}

/// One command and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    text: String,
    items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    /// `> text`: typed by the reader.
    Typed(String),
    /// An output line (with `[..]` wildcards).
    Shown(String),
    /// `...`: any number of output lines.
    Any,
}

fn parse(text: &str) -> Result<Vec<Block>, String> {
    let mut blocks = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((number, line)) = lines.next() {
        let Some(info) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        let info = info.trim();
        let body: Vec<&str> = lines
            .by_ref()
            .map(|(_, line)| line)
            .take_while(|line| line.trim_start() != "```")
            .collect();
        let line = number + 1;
        match info {
            "console" | "console network" => blocks.push(Block {
                line,
                network: info == "console network",
                commands: steps(&body).map_err(|e| format!("line {line}: {e}"))?,
            }),
            _ if body.iter().any(|line| line.starts_with("$ ")) => {
                return Err(format!(
                    "line {line}: commands belong in ```console blocks, which the tests run"
                ));
            }
            _ => {}
        }
    }
    Ok(blocks)
}

fn steps(body: &[&str]) -> Result<Vec<Step>, String> {
    let mut steps: Vec<Step> = Vec::new();
    let mut continued = false;
    for line in body {
        if continued {
            let step = steps.last_mut().ok_or("a continuation without a command")?;
            step.text.push('\n');
            step.text.push_str(line);
            continued = line.ends_with('\\');
            continue;
        }
        if let Some(command) = line.strip_prefix("$ ") {
            steps.push(Step {
                text: command.to_owned(),
                items: Vec::new(),
            });
            continued = command.ends_with('\\');
            continue;
        }
        let step = steps
            .last_mut()
            .ok_or("the block must start with a `$ ` command")?;
        let typed = match *line {
            ">" => Some(""),
            line => line.strip_prefix("> "),
        };
        let item = if let Some(typed) = typed {
            if step.items.last() == Some(&Item::Any) {
                return Err("`...` cannot come right before a typed line".into());
            }
            Item::Typed(typed.to_owned())
        } else if *line == "..." {
            Item::Any
        } else {
            Item::Shown((*line).to_owned())
        };
        step.items.push(item);
    }
    Ok(steps)
}

/// `shown` with each `[..]` matching any text.
fn line_matches(shown: &str, actual: &str) -> bool {
    let mut parts = shown.split("[..]");
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = actual.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i == parts.len() - 1 {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// One chapter's run: its scratch directory, ports and background commands.
struct Chapter {
    dir: PathBuf,
    ports: Vec<(u16, u16)>,
    background: Vec<Child>,
    last_status: i32,
}

impl Chapter {
    fn new(name: &str) -> Chapter {
        let dir = workspace().join("target/course").join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("the scratch directory");
        std::os::unix::fs::symlink(workspace().join("docs"), dir.join("docs"))
            .expect("a docs link");
        let ports = PORTS
            .iter()
            .map(|&shown| {
                let listener =
                    std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
                let port = listener.local_addr().expect("its address").port();
                (shown, port)
            })
            .collect();
        Chapter {
            dir,
            ports,
            background: Vec::new(),
            last_status: 0,
        }
    }

    /// The chapter's text with its ports replaced by this run's.
    fn to_run(&self, text: &str) -> String {
        self.ports
            .iter()
            .fold(text.to_owned(), |text, (shown, real)| {
                text.replace(&shown.to_string(), &real.to_string())
            })
    }

    /// What the command printed, with this run's ports shown as the chapter's.
    fn as_shown(&self, text: &str) -> String {
        self.ports
            .iter()
            .fold(text.to_owned(), |text, (shown, real)| {
                text.replace(&real.to_string(), &shown.to_string())
            })
    }

    fn block(&mut self, block: &Block) -> Result<(), String> {
        if block.network {
            return Ok(());
        }
        let mut failed: Option<&str> = None;
        for step in &block.commands {
            if let Some(command) = failed
                && step.text != "echo $?"
            {
                return Err(format!(
                    "`{command}` exited {}; show it with `$ echo $?` right after",
                    self.last_status
                ));
            }
            self.step(step)
                .map_err(|error| format!("`{}`: {error}", step.text))?;
            failed = (self.last_status != 0).then_some(step.text.as_str());
        }
        match failed {
            Some(command) => Err(format!(
                "`{command}` exited {}; show it with `$ echo $?` right after",
                self.last_status
            )),
            None => Ok(()),
        }
    }

    fn step(&mut self, step: &Step) -> Result<(), String> {
        let (text, background) = match step.text.strip_suffix('&') {
            Some(text) => (text.trim_end(), true),
            None => (step.text.as_str(), false),
        };
        // `(exit N)` first, so that `echo $?` shows the previous command's status.
        let script = format!(
            "exec 2>&1\n(exit {})\n{}",
            self.last_status,
            self.to_run(text)
        );
        let mut command = Command::new("bash");
        // The reader's own settings (SMTP_SERVER, SMTP_USER, …) must not change the run, and
        // neither may what cargo sets for this test: ring's build script reruns when
        // CARGO_MANIFEST_DIR changes, so leaving it would rebuild for every nested cargo.
        for (name, _) in std::env::vars_os() {
            let name_text = name.to_string_lossy();
            if name_text.starts_with("SMTP_")
                || name_text.starts_with("CARGO_PKG_")
                || workspace_tests::CARGO_TEST_VARIABLES.contains(&name_text.as_ref())
            {
                command.env_remove(name);
            }
        }
        let mut child = command
            .arg("-c")
            .arg(script)
            .current_dir(&self.dir)
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .env("CARGO_TERM_COLOR", "never")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot run bash: {e}"))?;
        let mut output = Output::of(&mut child);
        let mut stdin = child.stdin.take();
        let result = self.follow(&step.items, &mut output, &mut stdin, background);
        if background {
            self.background.push(child);
            return result;
        }
        drop(stdin);
        if let Err(error) = result {
            stop(&mut child);
            return Err(error);
        }
        self.last_status = wait(&mut child).inspect_err(|_| stop(&mut child))?;
        let rest = output.rest();
        if !rest.is_empty() {
            return Err(format!(
                "it printed more than the chapter shows:\n{}",
                self.as_shown(&rest.join("\n"))
            ));
        }
        Ok(())
    }

    /// Matches the output against the chapter's lines, typing what the reader types.
    fn follow(
        &self,
        items: &[Item],
        output: &mut Output,
        stdin: &mut Option<ChildStdin>,
        background: bool,
    ) -> Result<(), String> {
        // After a `...`, output lines up to the next shown one are any lines at all.
        let mut after_ellipsis = false;
        for (index, item) in items.iter().enumerate() {
            match item {
                Item::Typed(text) => {
                    let line = format!("{}\n", self.to_run(text));
                    stdin
                        .as_mut()
                        .ok_or("nothing to type into")?
                        .write_all(line.as_bytes())
                        .map_err(|e| format!("cannot type {text:?}: {e}"))?;
                }
                Item::Any => {
                    after_ellipsis = true;
                    if index == items.len() - 1 && !background {
                        output.take_all();
                    }
                }
                Item::Shown(shown) => loop {
                    let Some(actual) = output.next() else {
                        return Err(format!(
                            "the chapter shows {shown:?} next, but the command printed{}:\n{}",
                            if output.ended {
                                " only"
                            } else {
                                " nothing more in time"
                            },
                            self.as_shown(&output.seen.join("\n"))
                        ));
                    };
                    let actual = self.as_shown(&actual);
                    if line_matches(shown, &actual) {
                        after_ellipsis = false;
                        break;
                    }
                    if !after_ellipsis {
                        return Err(format!(
                            "the chapter shows {shown:?} where the command printed {actual:?}; all it printed:\n{}",
                            self.as_shown(&output.seen.join("\n"))
                        ));
                    }
                },
            }
        }
        Ok(())
    }
}

impl Drop for Chapter {
    /// Stops the background commands.
    fn drop(&mut self) {
        for child in &mut self.background {
            stop(child);
        }
    }
}

/// A command's output, line by line, read on a thread.
struct Output {
    lines: Receiver<String>,
    seen: Vec<String>,
    ended: bool,
}

impl Output {
    fn of(child: &mut Child) -> Output {
        let stdout = child.stdout.take().expect("a piped stdout");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end_matches('\n').trim_end_matches('\r');
                // Keeps reading once nobody listens, so a background command never
                // meets a closed pipe.
                let _ = send.send(text.to_owned());
                line.clear();
            }
        });
        Output {
            lines,
            seen: Vec::new(),
            ended: false,
        }
    }

    fn next(&mut self) -> Option<String> {
        let line = match self.lines.recv_timeout(LINE_TIMEOUT) {
            Ok(line) => line,
            Err(RecvTimeoutError::Disconnected) => {
                self.ended = true;
                return None;
            }
            Err(RecvTimeoutError::Timeout) => return None,
        };
        self.seen.push(line.clone());
        Some(line)
    }

    /// Everything until the command's output ends.
    fn take_all(&mut self) {
        while self.next().is_some() {}
    }

    /// What is left once the command has exited.
    fn rest(&mut self) -> Vec<String> {
        let mut rest = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            rest.push(line);
        }
        rest
    }
}

fn wait(child: &mut Child) -> Result<i32, String> {
    let start = std::time::Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status.code().unwrap_or(-1)),
            Ok(None) if start.elapsed() < EXIT_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(None) => return Err("it did not exit after printing what it should".into()),
            Err(e) => return Err(format!("cannot wait for it: {e}")),
        }
    }
}

/// Ends a command and everything it started (`cargo run` and its child).
fn stop(child: &mut Child) {
    let group = format!("-{}", child.id());
    let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
    let _ = child.wait();
}
