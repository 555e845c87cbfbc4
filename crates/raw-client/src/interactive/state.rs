//! What the shell knows of the dialogue so far — greeting seen, EHLO and its extensions, TLS,
//! login, the transaction and its recipients — learnt only from the commands sent and the
//! replies to them, and the help (`?`) it gives from that: what the server accepts next, and
//! why. Pure: fed replies, unit-tested below without a socket.

use std::fmt;

use crate::command::Extensions;
use crate::reply::Reply;

use super::typed::Verb;

/// Where the typed lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Commands.
    Commands,
    /// The server sent `334`: the next line answers its challenge (RFC 4954 §4).
    SaslAnswer,
    /// After `354`: lines of the message, up to the line holding only `.`.
    Message,
    /// The server said `221` or `421`: nothing more is sent.
    Closed,
}

/// How the server answered EHLO or HELO.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Hello {
    /// EHLO, with the extensions its reply lists.
    Ehlo(Extensions),
    /// HELO: no extensions at all.
    Helo,
}

/// What a `530` to MAIL said is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Missing {
    Tls,
    Login,
}

/// The dialogue as far as the shell has seen it.
#[derive(Debug, Clone)]
pub(crate) struct State {
    /// The greeting's reply code.
    greeting: Option<u16>,
    /// The answer to the last EHLO or HELO since the connection (or TLS) began.
    hello: Option<Hello>,
    /// The EHLO reply was a refusal, so HELO is the way left.
    ehlo_refused: bool,
    tls: bool,
    authenticated: bool,
    /// What a `530` to the last MAIL said is missing.
    mail_refused: Option<Missing>,
    /// In a transaction: how many recipients were accepted.
    transaction: Option<usize>,
    mode: Mode,
    /// `--allow-plaintext-auth`: the shell lets AUTH go before TLS.
    allow_plaintext_auth: bool,
}

impl State {
    /// Before the greeting.
    pub(crate) fn new(allow_plaintext_auth: bool) -> State {
        State {
            greeting: None,
            hello: None,
            ehlo_refused: false,
            tls: false,
            authenticated: false,
            mail_refused: None,
            transaction: None,
            mode: Mode::Commands,
            allow_plaintext_auth,
        }
    }

    pub(crate) fn mode(&self) -> Mode {
        self.mode
    }

    pub(crate) fn tls(&self) -> bool {
        self.tls
    }

    /// The prompt for the next line.
    pub(crate) fn prompt(&self) -> &'static str {
        match self.mode {
            Mode::Commands | Mode::Closed => "smtp> ",
            Mode::SaslAnswer => "334> ",
            Mode::Message => "data> ",
        }
    }

    /// The server's greeting (RFC 5321 §3.1, §4.3.1).
    pub(crate) fn greeting(&mut self, reply: &Reply) {
        self.greeting = Some(reply.code);
        if reply.code == 421 {
            self.mode = Mode::Closed;
        }
    }

    /// The reply to a command (or SASL answer, or end of data).
    pub(crate) fn reply(&mut self, verb: Verb, reply: &Reply) {
        let code = reply.code;
        if code == 421 {
            self.mode = Mode::Closed;
            return;
        }
        match verb {
            Verb::Ehlo if reply.is_positive() => {
                self.hello = Some(Hello::Ehlo(Extensions::from_ehlo(reply)));
                self.ehlo_refused = false;
                self.reset_transaction();
            }
            Verb::Ehlo => self.ehlo_refused = true,
            Verb::Helo if reply.is_positive() => {
                self.hello = Some(Hello::Helo);
                self.reset_transaction();
            }
            Verb::Auth | Verb::SaslAnswer => {
                self.mode = Mode::Commands;
                match code {
                    334 => self.mode = Mode::SaslAnswer,
                    235 => {
                        self.authenticated = true;
                        self.mail_refused = None;
                    }
                    _ => {}
                }
            }
            Verb::Mail if reply.is_positive() => {
                self.transaction = Some(0);
                self.mail_refused = None;
            }
            Verb::Mail if code == 530 => {
                self.mail_refused = Some(if !self.tls && self.offers_starttls() {
                    Missing::Tls
                } else {
                    Missing::Login
                });
            }
            Verb::Rcpt if reply.is_positive() => {
                if let Some(recipients) = &mut self.transaction {
                    *recipients += 1;
                }
            }
            Verb::Data if code == 354 => self.mode = Mode::Message,
            Verb::EndOfData => {
                self.mode = Mode::Commands;
                self.transaction = None;
            }
            Verb::Rset if reply.is_positive() => self.reset_transaction(),
            Verb::Quit if code == 221 => self.mode = Mode::Closed,
            _ => {}
        }
    }

    /// The TLS handshake after STARTTLS is done: RFC 3207 §4.2 says to forget everything the
    /// server said before it, so EHLO must come again.
    pub(crate) fn tls_established(&mut self) {
        self.tls = true;
        self.hello = None;
        self.ehlo_refused = false;
        self.authenticated = false;
        self.mail_refused = None;
        self.transaction = None;
    }

    fn reset_transaction(&mut self) {
        self.transaction = None;
    }

    fn extensions(&self) -> Option<&Extensions> {
        match &self.hello {
            Some(Hello::Ehlo(extensions)) => Some(extensions),
            _ => None,
        }
    }

    fn offers_starttls(&self) -> bool {
        self.extensions().is_some_and(|e| e.starttls)
    }

    /// What the server accepts next, and why.
    pub(crate) fn help(&self) -> Help {
        let mut help = Help {
            so_far: self.so_far(),
            items: Vec::new(),
        };
        match self.mode {
            Mode::Closed => {
                help.refused(
                    "anything",
                    "the session is over: the server closed it",
                    "RFC 5321 §3.8",
                );
                return help;
            }
            Mode::Message => {
                help.next(
                    ".",
                    "a line holding only a dot ends the message; the server then says whether it takes it",
                    "RFC 5321 §4.1.1.4",
                );
                help.next(
                    "any other line",
                    "is part of the message: header fields, an empty line, then the body; a line starting with a dot gets a second one from the shell",
                    "RFC 5322 §2.1; RFC 5321 §4.5.2",
                );
                return help;
            }
            Mode::SaslAnswer => {
                help.next(
                    "a base64 line",
                    "answers the server's 334 challenge (decode it to read the question)",
                    "RFC 4954 §4",
                );
                help.next("*", "cancels the login", "RFC 4954 §4");
                return help;
            }
            Mode::Commands => {}
        }
        if self.greeting == Some(554) {
            help.next(
                "QUIT",
                "the server refused this session in its greeting (554): it answers every other command with 503",
                "RFC 5321 §3.1, §4.3.2",
            );
            return help;
        }
        let Some(hello) = &self.hello else {
            if self.tls {
                help.next(
                    "EHLO <your name>",
                    "after STARTTLS, send EHLO again: what the server said before TLS may have been tampered with, so it is forgotten",
                    "RFC 3207 §4.2",
                );
            } else if self.ehlo_refused {
                help.next(
                    "HELO <your name>",
                    "the server refused EHLO: HELO is the older greeting, without extensions",
                    "RFC 5321 §4.1.1.1",
                );
            } else {
                help.next(
                    "EHLO <your name>",
                    "send EHLO first: it names your machine and asks which extensions the server offers",
                    "RFC 5321 §4.1.1.1",
                );
            }
            help.refused(
                "MAIL, RCPT, DATA",
                "wait for EHLO (or HELO): the server answers 503 before it",
                "RFC 5321 §4.1.4",
            );
            help.quit();
            return help;
        };
        let no_extensions = Extensions::default();
        let extensions = match hello {
            Hello::Ehlo(extensions) => extensions,
            Hello::Helo => &no_extensions,
        };
        if !self.tls && extensions.starttls {
            help.next(
                "STARTTLS",
                "switch this connection to TLS before anything private: the server offers it",
                "RFC 3207 §4",
            );
        }
        if self.transaction.is_none() && !self.authenticated {
            self.login_help(&mut help, extensions);
        }
        match self.transaction {
            None => match self.mail_refused {
                Some(Missing::Login) if !self.authenticated => help.refused(
                    "MAIL FROM:<address>",
                    "is refused until you authenticate: the server answered 530",
                    "RFC 4954 §6",
                ),
                Some(Missing::Tls) if !self.tls => help.refused(
                    "MAIL FROM:<address>",
                    "is refused until TLS is up: the server answered 530; type STARTTLS",
                    "RFC 3207 §4",
                ),
                _ => help.next(
                    "MAIL FROM:<address>",
                    "starts a transaction with the envelope sender, where bounces go; no space after the colon",
                    "RFC 5321 §4.1.1.2",
                ),
            },
            Some(0) => {
                help.next(
                    "RCPT TO:<address>",
                    "names a recipient of the envelope, one command each",
                    "RFC 5321 §4.1.1.3",
                );
                help.refused(
                    "DATA",
                    "is refused until a recipient is accepted",
                    "RFC 5321 §4.1.1.4",
                );
            }
            Some(_) => {
                help.next(
                    "RCPT TO:<address>",
                    "adds another recipient",
                    "RFC 5321 §4.1.1.3",
                );
                help.next(
                    "DATA",
                    "sends the message: after 354, every line you type is the message until a line holding only a dot",
                    "RFC 5321 §4.1.1.4",
                );
            }
        }
        if self.transaction.is_some() {
            help.next(
                "RSET",
                "abandons this transaction, keeping the connection",
                "RFC 5321 §4.1.1.5",
            );
        }
        help.quit();
        help
    }

    /// AUTH, when the shell can say something about it.
    fn login_help(&self, help: &mut Help, extensions: &Extensions) {
        let known: Vec<&str> = ["PLAIN", "LOGIN"]
            .into_iter()
            .filter(|mechanism| extensions.offers_auth(mechanism))
            .collect();
        if extensions.auth.is_empty() {
            if !self.tls && extensions.starttls {
                help.refused(
                    "AUTH",
                    "is not offered yet: servers that take a password usually offer AUTH only after STARTTLS",
                    "RFC 3207 §4.2",
                );
            }
            return;
        }
        if !self.tls && !self.allow_plaintext_auth {
            help.refused(
                "AUTH",
                "is refused by this shell until TLS is up: the password would cross the network in the clear (--allow-plaintext-auth allows it)",
                "RFC 4954 §4",
            );
            return;
        }
        let (command, why) = match known.as_slice() {
            [] => (
                format!("AUTH {}", extensions.auth.join(" | ")),
                "logs in; the shell asks for the user and password only with PLAIN and LOGIN, so answer each 334 yourself".to_owned(),
            ),
            mechanisms => (
                mechanisms
                    .iter()
                    .map(|mechanism| format!("AUTH {mechanism}"))
                    .collect::<Vec<_>>()
                    .join(" or "),
                "logs in: type it alone and the shell asks for the user and password and sends them in base64".to_owned(),
            ),
        };
        help.items.push(Item {
            command,
            why,
            rfc: "RFC 4954 §4",
            refused: false,
        });
    }

    /// One line on where the dialogue stands.
    fn so_far(&self) -> String {
        let mut parts = Vec::new();
        parts.push(match self.greeting {
            Some(code) => format!("greeted ({code})"),
            None => "no greeting yet".to_owned(),
        });
        parts.push(
            match (&self.hello, self.tls) {
                (Some(Hello::Ehlo(_)), _) => "EHLO answered",
                (Some(Hello::Helo), _) => "HELO answered",
                (None, true) => "EHLO not yet repeated after TLS",
                (None, false) => "no EHLO yet",
            }
            .to_owned(),
        );
        parts.push(if self.tls { "TLS on" } else { "no TLS" }.to_owned());
        parts.push(
            if self.authenticated {
                "logged in"
            } else {
                "not logged in"
            }
            .to_owned(),
        );
        parts.push(match self.transaction {
            None => "no transaction".to_owned(),
            Some(1) => "a transaction with 1 recipient".to_owned(),
            Some(n) => format!("a transaction with {n} recipients"),
        });
        if let Some(extensions) = self.extensions() {
            let offered = offered(extensions);
            if !offered.is_empty() {
                parts.push(format!("the server offers {offered}"));
            }
        }
        parts.join(", ")
    }
}

/// The extensions the help talks about, as the EHLO reply named them.
fn offered(extensions: &Extensions) -> String {
    let mut words = Vec::new();
    if extensions.starttls {
        words.push("STARTTLS".to_owned());
    }
    if !extensions.auth.is_empty() {
        words.push(format!("AUTH {}", extensions.auth.join(" ")));
    }
    if extensions.pipelining {
        words.push("PIPELINING".to_owned());
    }
    words.join(", ")
}

/// The help for one state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Help {
    /// Where the dialogue stands.
    pub(crate) so_far: String,
    /// What may come next, or is refused, and why.
    pub(crate) items: Vec<Item>,
}

/// One command the help names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Item {
    pub(crate) command: String,
    pub(crate) why: String,
    pub(crate) rfc: &'static str,
    /// Named because it is refused now.
    pub(crate) refused: bool,
}

impl Help {
    fn next(&mut self, command: &str, why: &str, rfc: &'static str) {
        self.items.push(Item {
            command: command.to_owned(),
            why: why.to_owned(),
            rfc,
            refused: false,
        });
    }

    fn refused(&mut self, command: &str, why: &str, rfc: &'static str) {
        self.items.push(Item {
            command: command.to_owned(),
            why: why.to_owned(),
            rfc,
            refused: true,
        });
    }

    fn quit(&mut self) {
        self.next("QUIT", "ends the session politely", "RFC 5321 §4.1.1.10");
    }
}

impl fmt::Display for Help {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "so far: {}", self.so_far)?;
        let accepted: Vec<&Item> = self.items.iter().filter(|item| !item.refused).collect();
        let refused: Vec<&Item> = self.items.iter().filter(|item| item.refused).collect();
        let width = self
            .items
            .iter()
            .map(|item| item.command.chars().count())
            .max()
            .unwrap_or(0);
        for (title, items) in [
            ("next, the server accepts:", accepted),
            ("not now:", refused),
        ] {
            if items.is_empty() {
                continue;
            }
            writeln!(f, "{title}")?;
            for item in items {
                writeln!(f, "  {:width$}  {} ({})", item.command, item.why, item.rfc)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(text: &str) -> Reply {
        let wire = format!("{}\r\n", text.replace('\n', "\r\n"));
        match crate::reply::parse(wire.as_bytes()) {
            Ok(Some((reply, _))) => reply,
            other => panic!("{text:?} is not a reply: {other:?}"),
        }
    }

    const GREETING: &str = "220 mx.example ESMTP";
    const EHLO_PLAIN: &str = "250-mx.example\n250-PIPELINING\n250 STARTTLS";
    const EHLO_TLS: &str = "250-mx.example\n250-PIPELINING\n250 AUTH PLAIN LOGIN";

    /// A command's verb and its reply; `None` marks the TLS handshake.
    type Step<'a> = Option<(Verb, &'a str)>;

    /// A state after the greeting and these steps.
    fn after(steps: &[Step<'_>]) -> State {
        let mut state = State::new(false);
        state.greeting(&reply(GREETING));
        for step in steps {
            match step {
                Some((verb, text)) => state.reply(*verb, &reply(text)),
                None => state.tls_established(),
            }
        }
        state
    }

    /// The help text with the column padding squeezed out, so the tests do not depend on it.
    fn help(state: &State) -> String {
        let text = state.help().to_string();
        text.lines()
            .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_help_follows_the_dialogue() {
        let tls = [
            Some((Verb::Ehlo, EHLO_PLAIN)),
            Some((Verb::StartTls, "220 2.0.0 Ready")),
            None,
        ];
        let tls_ehlo = [&tls[..], &[Some((Verb::Ehlo, EHLO_TLS))]].concat();
        let logged_in = [&tls_ehlo[..], &[Some((Verb::Auth, "235 2.7.0 ok"))]].concat();
        let mail = [&logged_in[..], &[Some((Verb::Mail, "250 2.1.0 Ok"))]].concat();
        let rcpt = [&mail[..], &[Some((Verb::Rcpt, "250 2.1.5 Ok"))]].concat();
        let data = [&rcpt[..], &[Some((Verb::Data, "354 go ahead"))]].concat();
        let sent = [&data[..], &[Some((Verb::EndOfData, "250 2.0.0 queued"))]].concat();
        let refused_mail = [
            &tls_ehlo[..],
            &[Some((Verb::Mail, "530 5.7.0 Authentication required"))],
        ]
        .concat();
        let plaintext_mail = [
            Some((Verb::Ehlo, EHLO_PLAIN)),
            Some((Verb::Mail, "530 5.7.0 Must issue a STARTTLS command first")),
        ];
        let challenged = [&tls_ehlo[..], &[Some((Verb::Auth, "334 VXNlcm5hbWU6"))]].concat();
        // The name, the dialogue so far, what the help must say and what it must not.
        type Case<'a> = (&'a str, &'a [Step<'a>], &'a [&'a str], &'a [&'a str]);
        let cases: &[Case<'_>] = &[
            (
                "greeted",
                &[],
                &[
                    "so far: greeted (220), no EHLO yet, no TLS, not logged in, no transaction\n",
                    "EHLO <your name> send EHLO first",
                    "MAIL, RCPT, DATA wait for EHLO (or HELO)",
                    "QUIT",
                ],
                &["STARTTLS", "AUTH"],
            ),
            (
                "EHLO in plaintext",
                &tls[..1],
                &[
                    "the server offers STARTTLS, PIPELINING",
                    "STARTTLS",
                    "AUTH is not offered yet",
                    "MAIL FROM:<address> starts a transaction",
                ],
                &["EHLO <your name>"],
            ),
            (
                "TLS, before the second EHLO",
                &tls,
                &[
                    "EHLO not yet repeated after TLS, TLS on",
                    "after STARTTLS, send EHLO again",
                    "(RFC 3207 §4.2)",
                ],
                &["STARTTLS switch", "AUTH"],
            ),
            (
                "TLS and EHLO",
                &tls_ehlo,
                &[
                    "the server offers AUTH PLAIN LOGIN, PIPELINING",
                    "AUTH PLAIN or AUTH LOGIN",
                    "the shell asks for the user and password",
                ],
                &["STARTTLS switch", "EHLO <your name>"],
            ),
            (
                "MAIL refused for the login",
                &refused_mail,
                &[
                    "not now:",
                    "MAIL FROM:<address> is refused until you authenticate: the server answered 530 (RFC 4954 §6)",
                    "AUTH PLAIN or AUTH LOGIN",
                ],
                &["starts a transaction"],
            ),
            (
                "MAIL refused for TLS",
                &plaintext_mail,
                &["is refused until TLS is up", "STARTTLS"],
                &["starts a transaction"],
            ),
            (
                "logged in",
                &logged_in,
                &["logged in, no transaction", "MAIL FROM:<address>"],
                &["AUTH PLAIN or", "RSET", "not logged in"],
            ),
            (
                "MAIL accepted",
                &mail,
                &[
                    "a transaction with 0 recipients",
                    "RCPT TO:<address>",
                    "DATA is refused until a recipient is accepted",
                    "RSET",
                ],
                &["MAIL FROM"],
            ),
            (
                "a recipient accepted",
                &rcpt,
                &["a transaction with 1 recipient,", "DATA sends the message"],
                &["is refused"],
            ),
            (
                "in the message",
                &data,
                &[
                    ". a line holding only a dot ends the message",
                    "any other line",
                ],
                &["QUIT", "RCPT"],
            ),
            (
                "message sent",
                &sent,
                &["logged in, no transaction", "MAIL FROM:<address>"],
                &["DATA"],
            ),
            (
                "a challenge",
                &challenged,
                &["a base64 line", "*"],
                &["MAIL"],
            ),
        ];
        for (name, steps, present, absent) in cases {
            let text = help(&after(steps));
            for want in *present {
                assert!(text.contains(want), "{name}: no {want:?} in\n{text}");
            }
            for unwanted in *absent {
                assert!(!text.contains(unwanted), "{name}: {unwanted:?} in\n{text}");
            }
        }
    }

    #[test]
    fn auth_before_tls_is_refused_unless_allowed() {
        let ehlo = "250-mx.example\n250 AUTH PLAIN";
        let state = after(&[Some((Verb::Ehlo, ehlo))]);
        assert!(help(&state).contains("AUTH is refused by this shell until TLS is up"));
        let mut allowed = State::new(true);
        allowed.greeting(&reply(GREETING));
        allowed.reply(Verb::Ehlo, &reply(ehlo));
        assert!(help(&allowed).contains("AUTH PLAIN "), "{}", help(&allowed));
    }

    #[test]
    fn refusals_and_endings() {
        let helo = after(&[Some((Verb::Ehlo, "502 5.5.1 EHLO not implemented"))]);
        assert!(help(&helo).contains("HELO <your name> the server refused EHLO"));
        let mut refused = State::new(false);
        refused.greeting(&reply("554 5.3.2 no service"));
        assert!(help(&refused).contains("QUIT the server refused this session"));
        let quit = after(&[Some((Verb::Quit, "221 2.0.0 Bye"))]);
        assert_eq!(quit.mode(), Mode::Closed);
        assert!(help(&quit).contains("the session is over"));
        let closing = after(&[Some((Verb::Other, "421 4.4.2 Idle timeout"))]);
        assert_eq!(closing.mode(), Mode::Closed);
        let reset = after(&[
            Some((Verb::Ehlo, EHLO_PLAIN)),
            Some((Verb::Mail, "250 ok")),
            Some((Verb::Rset, "250 ok")),
        ]);
        assert!(help(&reset).contains("no transaction"));
        assert_eq!(reset.prompt(), "smtp> ");
    }
}
