//! `raw-client --interactive`: an SMTP shell. It connects (to `--server`, or to the embedded
//! test server), prints the greeting, then sends each line the user types with CRLF and
//! prints the reply, in the transcript format (with `--explain`, the notes too).
//!
//! It helps where typing by hand is hard or unsafe, and nowhere else: `STARTTLS` runs the
//! handshake after `220` with the same injection check and certificate verification as a
//! send; `AUTH PLAIN` or `AUTH LOGIN` alone asks for the user and password and sends them in
//! base64, redacted; after `354` it dot-stuffs the message until the line holding only `.`;
//! `?` says what the server accepts next, from what the shell saw ([`state`]). A line it will
//! not send (too long, a bare CR, AUTH before TLS) is refused with the reason ([`typed`]).
//!
//! On a terminal lines come from rustyline (editing, history); with `--quiet`, or when
//! standard input is not a terminal, they are read line by line and every line sent is
//! printed too, so a script's output is the whole transcript.

mod state;
mod typed;

use std::collections::VecDeque;
use std::io::{self, BufRead as _, IsTerminal as _, Write as _};

use cli::{Credentials, Exit, Failure, Job, Options, TranscriptFormat, Violation};
use transcript::Transcript;

use crate::auth::Mechanism;
use crate::client::{self, Tls};
use crate::command::Command;
use crate::connection::Connection;
use crate::data;
use crate::reply::Reply;
use crate::session::{self, Wait};
use state::{Mode, State};
use typed::{DataLine, Refusal, Typed, Verb};

const PROGRAM: &str = "raw-client";

/// Runs the shell with the shared options; returns the process exit status: 0 when the
/// dialogue ran to its end (QUIT, or the end of input); 65 when, reading from a script, a line
/// was refused or the input ended inside the message; a failure's sysexits code when the
/// connection failed (refused, TLS, protocol, `421`).
pub fn run(options: &Options) -> i32 {
    let fail = |failure: &Failure| {
        eprintln!("{PROGRAM}: {failure}");
        failure.exit().code()
    };
    let plan = match cli::Plan::for_shell(options, &mut |text| {
        eprintln!("{PROGRAM}: warning: {text}");
    }) {
        Ok(plan) => plan,
        Err(failure) => return fail(&failure),
    };
    let (job, embedded) = match cli::job_for(plan) {
        Ok(started) => started,
        Err(failure) => return fail(&failure),
    };
    let terminal = !options.quiet && io::stdin().is_terminal();
    let mut printer = Printer::new(&job, terminal);
    let shell = match Shell::open(&job, options.user.clone(), &mut printer) {
        Ok(shell) => shell,
        Err(status) => return status,
    };
    let mut input = Input::new(terminal);
    let status = shell.run(&mut input, &mut printer);
    if let Some(line) = embedded
        .as_ref()
        .and_then(cli::embedded::Embedded::report_stored)
    {
        eprintln!("{PROGRAM}: {line}");
    }
    status
}

/// One connection, typed by hand.
struct Shell<'a> {
    job: &'a Job,
    tls: Tls,
    connection: Connection,
    state: State,
    /// `--user` or `SMTP_USER`, for the AUTH prompt.
    user: Option<String>,
    /// A person types the lines (so a refused line was seen, and can be typed again).
    terminal: bool,
    /// A line was not sent (a script's exit status says so).
    refused: bool,
}

impl<'a> Shell<'a> {
    /// Prepares TLS (so a bad CA file fails before connecting) and connects; on failure,
    /// prints why and returns the exit status.
    fn open(job: &'a Job, user: Option<String>, printer: &mut Printer) -> Result<Shell<'a>, i32> {
        let ended = |printer: &mut Printer, transcript: &Transcript, failure: Failure| {
            printer.flush(transcript, Some(&failure));
            eprintln!("{PROGRAM}: {failure}");
            failure.exit().code()
        };
        let tls = Tls::prepare(job).map_err(|f| ended(printer, &Transcript::new(), f))?;
        let mut transcript = Transcript::new();
        let connection =
            client::connect(job, &mut transcript).map_err(|f| ended(printer, &transcript, f))?;
        Ok(Shell {
            job,
            tls,
            connection,
            state: State::new(job.allow_plaintext_auth),
            user,
            terminal: printer.terminal,
            refused: false,
        })
    }

    /// Runs the dialogue until QUIT, the end of input or a failure; closes the connection.
    fn run(mut self, input: &mut Input, printer: &mut Printer) -> i32 {
        let result = self.dialogue(input, printer);
        let transcript = self.connection.close();
        match result {
            Ok(status) => {
                printer.flush(&transcript, None);
                status
            }
            Err(failure) => {
                printer.flush(&transcript, Some(&failure));
                eprintln!("{PROGRAM}: {failure}");
                failure.exit().code()
            }
        }
    }

    fn dialogue(&mut self, input: &mut Input, printer: &mut Printer) -> Result<i32, Failure> {
        if self.job.tls == cli::TlsMode::Implicit {
            client::handshake(&mut self.connection, &self.tls, self.job, &[])?;
        }
        let greeting = self
            .connection
            .read_reply_within(self.job.timeouts.command, Wait::Greeting)?;
        self.state.greeting(&greeting);
        printer.flush(&self.connection.transcript, None);
        if greeting.code == 421 {
            return Err(closing("the connection (greeting)", greeting));
        }
        printer
            .hint("type SMTP commands; ? says what the server accepts next; QUIT or Ctrl-D ends");
        loop {
            let mode = self.state.mode();
            if mode == Mode::Closed {
                return Ok(self.status());
            }
            let Some(line) = input.line(self.state.prompt())? else {
                return Ok(self.end_of_input(printer));
            };
            if mode == Mode::Message {
                self.message_line(&line, printer)?;
            } else {
                self.command_line(&line, mode == Mode::SaslAnswer, input, printer)?;
            }
        }
    }

    /// A line typed where a command (or SASL answer) is expected.
    fn command_line(
        &mut self,
        line: &[u8],
        sasl: bool,
        input: &mut Input,
        printer: &mut Printer,
    ) -> Result<(), Failure> {
        let typed = match typed::command(line, sasl) {
            Ok(typed) => typed,
            Err(refusal) => {
                self.refuse(&refusal, printer);
                return Ok(());
            }
        };
        let shown = String::from_utf8_lossy(line);
        if matches!(typed, Typed::Send(..) | Typed::Login(_)) && !typed::is_secret(&typed) {
            input.remember(&shown);
        }
        match typed {
            Typed::Nothing => Ok(()),
            Typed::Help => {
                printer.say(&self.state.help().to_string());
                Ok(())
            }
            Typed::Send(_, Verb::Auth) | Typed::Login(_) if self.plaintext_auth() => {
                self.refuse(&Refusal::PlaintextAuth, printer);
                Ok(())
            }
            Typed::Login(mechanism) => {
                printer.typed(&shown);
                self.login(mechanism, input, printer)
            }
            Typed::Send(text, verb) => {
                printer.typed(text);
                let reply = self.exchange(&Command::Typed(text).encode()?, verb)?;
                self.replied(verb, reply, printer)
            }
        }
    }

    /// AUTH over a connection without TLS, which the shell refuses unless allowed.
    fn plaintext_auth(&self) -> bool {
        !self.state.tls() && !self.job.allow_plaintext_auth
    }

    /// `AUTH PLAIN` (RFC 4616: the initial response) or `AUTH LOGIN` (the two `334`
    /// challenges), with the user and password asked for, or taken from the options.
    fn login(
        &mut self,
        mechanism: Mechanism,
        input: &mut Input,
        printer: &mut Printer,
    ) -> Result<(), Failure> {
        let Some((credentials, filled_in)) = self.credentials(input, printer)? else {
            return Ok(());
        };
        if let Some(note) = filled_in {
            self.connection.transcript.note(note);
        }
        let mut reply = self.exchange(&mechanism.start(&credentials)?, Verb::Auth)?;
        self.state.reply(Verb::Auth, &reply);
        let mut step = 0;
        while mechanism == Mechanism::Login && reply.code == 334 && step < 2 {
            reply = self.exchange(&mechanism.respond(&credentials, step)?, Verb::SaslAnswer)?;
            self.state.reply(Verb::SaslAnswer, &reply);
            step += 1;
        }
        printer.flush(&self.connection.transcript, None);
        if reply.code == 421 {
            return Err(closing(mechanism.command_name(), reply));
        }
        Ok(())
    }

    /// The user and password for AUTH: the user from `--user`/`SMTP_USER` or the embedded
    /// server's demo account (on a terminal, as the editable answer to `user: `), else asked
    /// for; the password from the options (or the demo account) when it belongs to that
    /// user, else asked for without echo. With them, the transcript note that says the
    /// password was filled in. `None`: the user gave none, so AUTH is not sent.
    fn credentials(
        &mut self,
        input: &mut Input,
        printer: &mut Printer,
    ) -> Result<Option<(Credentials, Option<String>)>, Failure> {
        let known = self.job.credentials.as_ref();
        let known_user = self.user.clone().or_else(|| known.map(|c| c.user.clone()));
        let Some(user) = input.user(known_user.as_deref())? else {
            printer.hint("no user name: AUTH not sent");
            return Ok(None);
        };
        if user.is_empty() || user.contains(['\r', '\n', '\0']) {
            self.refused = true;
            printer.error(&Failure::BadUser.to_string());
            return Ok(None);
        }
        let known_password = known
            .filter(|credentials| credentials.user == user)
            .map(|credentials| credentials.password.clone());
        let (password, filled_in) = match known_password {
            Some(password) => {
                let whose = if self.job.embedded && self.user.is_none() {
                    "the embedded test server's demo password"
                } else {
                    "the password given in the options"
                };
                (password, Some(format!("AUTH as {user} with {whose}")))
            }
            None => match input.password(&user)? {
                Some(password) => (password, None),
                None => {
                    printer.hint("no password: AUTH not sent");
                    return Ok(None);
                }
            },
        };
        if password.contains(['\r', '\n', '\0']) {
            self.refused = true;
            printer.error("not sent: the password holds a line break or NUL, which PLAIN and LOGIN cannot carry");
            return Ok(None);
        }
        Ok(Some((
            Credentials {
                user,
                password,
                mechanism: None,
            },
            filled_in,
        )))
    }

    /// A line typed after `354`.
    fn message_line(&mut self, line: &[u8], printer: &mut Printer) -> Result<(), Failure> {
        match typed::data_line(line) {
            Err(refusal) => {
                self.refuse(&refusal, printer);
                Ok(())
            }
            Ok(DataLine::End) => {
                printer.typed(".");
                let reply = self.exchange(data::END_OF_DATA, Verb::EndOfData)?;
                self.replied(Verb::EndOfData, reply, printer)
            }
            Ok(DataLine::Line { wire, stuffed }) => {
                printer.typed(&String::from_utf8_lossy(line));
                self.connection.send(&wire)?;
                if stuffed {
                    self.connection.transcript.note(
                        "dot-stuffed: the line begins with \".\", so the shell sent a second \".\" before it",
                    );
                }
                // On a terminal each line's notes come as it is typed; a script's message is
                // printed with the reply to its end (rendering is per transcript, not per line).
                if printer.terminal {
                    printer.flush(&self.connection.transcript, None);
                }
                Ok(())
            }
        }
    }

    /// Sends a line and reads the reply within its time limit.
    fn exchange(&mut self, line: &[u8], verb: Verb) -> Result<Reply, Failure> {
        self.connection.send(line)?;
        let (timeout, wait) = match verb {
            Verb::EndOfData => (self.job.timeouts.data_end, Wait::DataEnd),
            _ => (self.job.timeouts.command, Wait::Reply(verb.name())),
        };
        self.connection.read_reply_within(timeout, wait)
    }

    /// What a reply changes: the state, and after STARTTLS's `220` the handshake.
    fn replied(&mut self, verb: Verb, reply: Reply, printer: &mut Printer) -> Result<(), Failure> {
        if verb == Verb::StartTls && reply.code == 220 {
            if self.state.tls() {
                // RFC 3207 §4.2: a server never offers STARTTLS again, let alone accepts it.
                return Err(Failure::Protocol {
                    after: "STARTTLS".into(),
                    violation: Violation::UnexpectedReply(reply.into()),
                });
            }
            session::nothing_before_the_handshake(self.connection.unread_input().len())?;
            client::handshake(&mut self.connection, &self.tls, self.job, &[])?;
            self.state.tls_established();
            printer.flush(&self.connection.transcript, None);
            printer.hint("TLS is up: send EHLO again, the server's first answer is forgotten (RFC 3207 §4.2)");
            return Ok(());
        }
        self.state.reply(verb, &reply);
        printer.flush(&self.connection.transcript, None);
        if reply.code == 421 {
            return Err(closing(verb.name(), reply));
        }
        if self.state.mode() == Mode::Message {
            printer.hint("type the message: header lines, an empty line, the body; a line holding only \".\" ends it");
        }
        Ok(())
    }

    fn refuse(&mut self, refusal: &Refusal, printer: &mut Printer) {
        self.refused = true;
        printer.flush(&self.connection.transcript, None);
        printer.error(&refusal.to_string());
    }

    /// The input ended: nothing more is sent (not even QUIT).
    fn end_of_input(&mut self, printer: &mut Printer) -> i32 {
        printer.flush(&self.connection.transcript, None);
        if self.state.mode() == Mode::Message {
            printer.error("the input ended inside the message, before the line holding only \".\": the server discards what it got");
            return Exit::DataErr.code();
        }
        self.status()
    }

    /// 0, or 65 when a script had a line refused (a person at a terminal saw why, and
    /// could type it again).
    fn status(&self) -> i32 {
        if self.refused && !self.terminal {
            Exit::DataErr.code()
        } else {
            Exit::Sent.code()
        }
    }
}

/// A `421`: the server is closing the connection (RFC 5321 §3.8).
fn closing(command: &str, reply: Reply) -> Failure {
    Failure::ServiceClosing {
        command: command.to_owned(),
        reply: reply.into(),
    }
}

/// Prints the transcript as it grows, and the shell's own words.
struct Printer {
    output: cli::Output,
    terminal: bool,
    /// Transcript events printed so far.
    printed: usize,
    /// Lines typed on the terminal since the last print: already on the screen, so their
    /// `C:` lines are not printed again (their notes are).
    typed: VecDeque<String>,
}

impl Printer {
    fn new(job: &Job, terminal: bool) -> Printer {
        let mut output = job.output;
        // The shell says which TLS version and cipher the handshake chose.
        output.render.details = true;
        Printer {
            output,
            terminal,
            printed: 0,
            typed: VecDeque::new(),
        }
    }

    /// Notes a line the user typed (only a terminal shows it already).
    fn typed(&mut self, line: &str) {
        if self.terminal {
            self.typed.push_back(line.to_owned());
        }
    }

    /// Prints the events not printed yet, each with its notes; with a failure, the notes on
    /// what went wrong close the last one.
    ///
    /// The whole transcript is rendered each time: a line's notes and its redaction depend
    /// on the lines before it.
    fn flush(&mut self, transcript: &Transcript, failure: Option<&Failure>) {
        let rendered = self.output.render(transcript, failure);
        let events = match self.output.format {
            TranscriptFormat::Text => by_event(&rendered),
            TranscriptFormat::Json => rendered.lines().map(|line| vec![line]).collect(),
        };
        let mut stdout = io::stdout().lock();
        for event in events.iter().skip(self.printed) {
            let echoed = self.output.format == TranscriptFormat::Text
                && self.typed.front().is_some_and(|typed| {
                    event.first().and_then(|line| line.strip_prefix("C: ")) == Some(typed)
                });
            let lines = if echoed {
                self.typed.pop_front();
                &event[1..]
            } else {
                &event[..]
            };
            for line in lines {
                let _ = writeln!(stdout, "{line}");
            }
        }
        let _ = stdout.flush();
        self.printed = self.printed.max(events.len());
        self.typed.clear();
    }

    /// The shell's answer to `?`, on standard output.
    fn say(&self, text: &str) {
        let mut stdout = io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
    }

    /// A hint for the person at the terminal (a script gets none).
    fn hint(&self, text: &str) {
        if self.terminal {
            self.say(&format!("({text})\n"));
        }
    }

    /// Why a line was not sent, on standard error.
    fn error(&self, text: &str) {
        eprintln!("{PROGRAM}: {text}");
    }
}

/// A text rendering cut into events: each `C:`, `S:` or `--` line with the `#` notes after it.
fn by_event(rendered: &str) -> Vec<Vec<&str>> {
    let mut events: Vec<Vec<&str>> = Vec::new();
    for line in rendered.lines() {
        match events.last_mut() {
            Some(event) if line.starts_with("# ") || line == "#" => event.push(line),
            _ => events.push(vec![line]),
        }
    }
    events
}

/// Where typed lines come from.
enum Input {
    /// A person at a terminal: rustyline, with line editing and history. A paste of several
    /// lines comes back as one; its other lines wait in `pasted`.
    Terminal {
        editor: Box<rustyline::DefaultEditor>,
        pasted: VecDeque<String>,
    },
    /// A script (or `--quiet`): standard input, line by line.
    Lines(io::StdinLock<'static>),
}

impl Input {
    fn new(terminal: bool) -> Input {
        if terminal {
            let config = rustyline::Config::builder()
                .auto_add_history(false)
                .max_history_size(1000)
                .map(rustyline::config::Builder::build);
            if let Ok(editor) = config.and_then(rustyline::DefaultEditor::with_config) {
                return Input::Terminal {
                    editor: Box::new(editor),
                    pasted: VecDeque::new(),
                };
            }
        }
        Input::Lines(io::stdin().lock())
    }

    /// The next line, without its line ending; `None` at the end of input (Ctrl-D).
    fn line(&mut self, prompt: &str) -> Result<Option<Vec<u8>>, Failure> {
        match self {
            Input::Terminal { editor, pasted } => {
                if let Some(line) = pasted.pop_front() {
                    return Ok(Some(line.into_bytes()));
                }
                loop {
                    match editor.readline(prompt) {
                        Ok(text) => {
                            let mut lines = text.split('\n').map(str::to_owned);
                            let first = lines.next().unwrap_or_default();
                            pasted.extend(lines);
                            return Ok(Some(first.into_bytes()));
                        }
                        // Ctrl-C drops the line being typed, as in a shell.
                        Err(rustyline::error::ReadlineError::Interrupted) => {}
                        Err(rustyline::error::ReadlineError::Eof) => return Ok(None),
                        Err(error) => return Err(stdin_failure("next line", &error)),
                    }
                }
            }
            Input::Lines(stdin) => next_line(stdin),
        }
    }

    /// Adds a line to the history (a terminal's only).
    fn remember(&mut self, line: &str) {
        if let Input::Terminal { editor, .. } = self {
            let _ = editor.add_history_entry(line);
        }
    }

    /// The user name for AUTH. On a terminal it is asked for, with `known` as the answer
    /// to edit or accept; from a script it is `known`, or else the next line.
    fn user(&mut self, known: Option<&str>) -> Result<Option<String>, Failure> {
        match self {
            Input::Terminal { editor, .. } => {
                match editor.readline_with_initial("user: ", (known.unwrap_or_default(), "")) {
                    Ok(user) => Ok(Some(user.trim().to_owned())),
                    Err(
                        rustyline::error::ReadlineError::Interrupted
                        | rustyline::error::ReadlineError::Eof,
                    ) => Ok(None),
                    Err(error) => Err(stdin_failure("user name", &error)),
                }
            }
            Input::Lines(stdin) => match known {
                Some(user) => Ok(Some(user.to_owned())),
                None => {
                    Ok(next_line(stdin)?.map(|line| String::from_utf8_lossy(&line).into_owned()))
                }
            },
        }
    }

    /// The password for AUTH: on a terminal, asked for without echo; from a script, the
    /// next line (it is never printed).
    fn password(&mut self, user: &str) -> Result<Option<String>, Failure> {
        if io::stdin().is_terminal() {
            return rpassword::prompt_password(format!("password for {user}: "))
                .map(Some)
                .map_err(|error| Failure::PasswordPrompt {
                    reason: error.to_string(),
                });
        }
        match self {
            Input::Lines(stdin) => {
                Ok(next_line(stdin)?.map(|line| String::from_utf8_lossy(&line).into_owned()))
            }
            Input::Terminal { .. } => Ok(None),
        }
    }
}

/// The next line of standard input without its LF (and the CR before it, for a script
/// written with CRLF line ends); a last line without LF counts too.
fn next_line(stdin: &mut io::StdinLock<'static>) -> Result<Option<Vec<u8>>, Failure> {
    let mut line = Vec::new();
    match stdin.read_until(b'\n', &mut line) {
        Ok(0) => Ok(None),
        Ok(_) => {
            if line.last() == Some(&b'\n') {
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
            }
            Ok(Some(line))
        }
        Err(error) => Err(stdin_failure("next line", &error)),
    }
}

fn stdin_failure(what: &'static str, error: &dyn std::fmt::Display) -> Failure {
    Failure::Stdin {
        what,
        reason: error.to_string(),
    }
}
