//! The SMTP dialogue, step by step, in the order of RFC 5321 §3 — as a state machine that
//! does no I/O.
//!
//! A [`Session`] is fed the server's replies ([`Session::on_reply`]) and says what to do
//! next ([`Action`]): write a flight of command lines (after a TLS handshake, or after the
//! message data), read the next reply within a time limit, or stop with a verdict. The socket
//! belongs to a driver: `crate::client` drives one send with blocking reads and writes, and a
//! load run's `crate::event_loop` drives many connections over `poll(2)`. Both run this same
//! machine, so every rule of the dialogue — what each reply means, which commands may share a
//! flight (RFC 2920), when QUIT may still be said after an error — lives here and only here.
//!
//! By default every command is its own flight and its reply is read before the next one,
//! exactly as lettre does, so the two clients' transcripts are identical. With pipelining
//! (`--pipelining`, when the server offers PIPELINING) `AUTH PLAIN` with its initial
//! response, MAIL, every RCPT and DATA form one flight, and the message, its `.` and the next
//! transaction's commands (or QUIT) the next.

use std::collections::VecDeque;
use std::sync::Arc;

use cli::{
    Credentials, Delivery, Failure, Job, Sent, ServerReply, Stage, TlsMode, Violation, Warning,
};
use message::Envelope;

use crate::auth::{Exchange, Mechanism};
use crate::command::{Command, Extensions};
use crate::reply::Reply;

/// Bytes to write, shared: a load run encodes its commands once and writes them many times.
pub type Bytes = Arc<[u8]>;

/// What the dialogue needs from the job: no socket, no file, no clock.
#[derive(Debug, Clone)]
pub struct Dialogue {
    /// The EHLO name.
    pub helo_name: String,
    /// How the connection is protected.
    pub tls: TlsMode,
    /// AUTH credentials, if any.
    pub credentials: Option<Credentials>,
    /// AUTH may go over a connection without TLS.
    pub allow_plaintext_auth: bool,
    /// MAIL FROM, RCPT TO, and whether the message needs SMTPUTF8 or 8BITMIME.
    pub envelope: Envelope,
    /// The message's size in octets, for the server's SIZE limit (RFC 1870).
    pub message_size: u64,
    /// Pipeline commands when the server offers PIPELINING (RFC 2920).
    pub pipelining: bool,
    /// How many times the message is sent on this connection (1, or `--repeat`).
    pub messages: u32,
    /// The server's host name and port, as OAUTHBEARER names them (RFC 7628 §3.1).
    pub server: (String, u16),
    /// `--quit-after`: stop after this stage, and send nothing.
    pub quit_after: Option<Stage>,
    /// `--allow-partial`: a refused recipient does not end the transaction while another
    /// is accepted.
    pub allow_partial: bool,
    /// DSN, REQUIRETLS and SIZE parameters.
    pub delivery: Delivery,
    /// `--chunking`: send the message with BDAT (RFC 3030) when the server offers CHUNKING.
    pub chunking: Option<Chunking>,
}

/// `--chunking`: how to send the message with BDAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunking {
    /// Fail (exit 69) instead of falling back to DATA when CHUNKING is not offered.
    pub required: bool,
    /// The largest chunk, in octets.
    pub size: u64,
}

impl Chunking {
    /// How many chunks a message of `size` octets takes (at least one: `BDAT 0 LAST`).
    pub fn count(&self, size: u64) -> u64 {
        size.div_ceil(self.size.max(1)).max(1)
    }
}

impl Dialogue {
    /// The dialogue for `job`, sending its message `messages` times.
    pub fn for_job(job: &Job, pipelining: bool, messages: u32) -> Dialogue {
        Dialogue {
            helo_name: job.helo_name.clone(),
            tls: job.tls,
            credentials: job.credentials.clone(),
            allow_plaintext_auth: job.allow_plaintext_auth,
            envelope: job.message.envelope().clone(),
            message_size: job.message.expected_len(),
            pipelining,
            messages: messages.max(1),
            server: (job.endpoint.host.clone(), job.endpoint.port),
            quit_after: job.quit_after,
            allow_partial: job.allow_partial,
            delivery: job.delivery.clone(),
            chunking: None,
        }
    }
}

/// What to write in one go. The parts are written in this order: the TLS handshake, the
/// message data, the command lines — all in as few TCP segments as possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flight {
    /// Run the TLS handshake first (RFC 3207 §4 after `220`, or RFC 8314 §3 on connect); the
    /// commands then leave in the same write as the client's Finished message.
    pub handshake: bool,
    /// Write the message data first: dot-stuffed, ending with the `.` line (RFC 5321 §4.5.2).
    pub message: bool,
    /// Instead, write `lead` (pipelined commands), then the message as BDAT chunks of at
    /// most this many octets, the last one `BDAT n LAST` (RFC 3030 §2), then the commands.
    /// Without pipelining the driver reads each chunk's reply before the next chunk and
    /// hands it to [`chunk_verdict`]; the session reads the last one.
    pub chunks: Option<u64>,
    /// Commands written before BDAT chunks (MAIL and RCPT, pipelined).
    pub lead: Bytes,
    /// Command lines, as `Command::encode` wrote them.
    pub commands: Bytes,
}

/// The reply a driver waits for, which decides its time limit and how a timeout is worded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// The greeting, the first thing a server says.
    Greeting,
    /// The reply to this command (as named in errors).
    Reply(&'static str),
    /// The reply to the end of the message data: the data timeout applies (RFC 5321
    /// §4.5.3.2.6).
    DataEnd,
}

impl Wait {
    /// What the client waits for, as errors name it.
    pub fn name(self) -> &'static str {
        match self {
            Wait::Greeting => "the greeting",
            Wait::Reply(command) => command,
            Wait::DataEnd => "the end of the message data",
        }
    }

    /// Whether the data timeout applies instead of the command timeout.
    pub fn is_data_end(self) -> bool {
        self == Wait::DataEnd
    }

    /// The failure when the reply did not come in time. `received_nothing`: the server has
    /// not sent a single byte since the connection opened (a ClientHello-expecting port).
    pub fn timed_out(self, received_nothing: bool) -> Failure {
        match self {
            Wait::Greeting if received_nothing => Failure::NoGreeting,
            Wait::DataEnd => Failure::DataTimeout,
            _ => Failure::Timeout {
                during: format!("waiting for the reply to {}", self.name()),
            },
        }
    }

    /// The failure when the server closed the connection instead of answering.
    pub fn closed(self) -> Failure {
        Failure::Closed {
            during: format!("waiting for the reply to {}", self.name()),
        }
    }
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write this flight.
    Write(Flight),
    /// Read the next reply (waiting at most the time [`Wait`] calls for) and hand it to
    /// [`Session::on_reply`].
    Read(Wait),
    /// A remark for the transcript.
    Note(String),
    /// A transaction begins with the MAIL command in the next (or the last) flight.
    Transaction,
    /// The server accepted one more message with this reply.
    Accepted(ServerReply),
    /// Stop recording the transcript: a load run records its first message only.
    StopRecording,
    /// The dialogue is over: close the connection and report this.
    Done(Result<Sent, Failure>),
}

/// Which reply the session waits for, step by step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Greeting,
    Ehlo,
    Helo,
    StartTls,
    Auth {
        mechanism: Mechanism,
        challenges: u8,
    },
    Mail,
    Rcpt(usize),
    Data,
    DataEnd,
    /// The replies to a pipelined group, in order.
    Group(GroupReply),
    /// The reply to a lone `.` that ends DATA after a pipelined refusal (RFC 2920 §3.1).
    EmptyData,
    /// The reply to BDAT chunk `index` of a pipelined flight (RFC 3030 §2, §4.2).
    Chunk(u64),
    Quit,
    Done,
}

/// Which reply of a pipelined group comes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GroupReply {
    Auth,
    Mail,
    Rcpt(usize),
    Data,
}

/// One transaction's command lines, encoded once.
#[derive(Debug, Clone)]
struct Transaction {
    /// `MAIL FROM:<…>` with the parameters the message needs.
    mail: Bytes,
    rcpts: Vec<Bytes>,
    data: Bytes,
    /// MAIL, every RCPT and DATA in one piece, for pipelining.
    group: Bytes,
}

/// What a pipelined group's replies said so far (RFC 2920 §3.1: read them all, in order).
#[derive(Debug, Default)]
struct Group {
    /// The first refusal; AUTH's refusal wins over the rest.
    first_error: Option<Failure>,
    auth_error: Option<Failure>,
    mail_accepted: bool,
    recipients_accepted: usize,
}

/// One SMTP client dialogue.
#[derive(Debug)]
pub struct Session {
    dialogue: Dialogue,
    state: State,
    actions: VecDeque<Action>,
    /// TLS is (or is being) established.
    tls: bool,
    extensions: Extensions,
    /// Commands are pipelined on this connection.
    pipelining: bool,
    transaction: Option<Transaction>,
    quit: Bytes,
    /// Messages accepted so far.
    accepted: u32,
    last_accepted: Option<ServerReply>,
    group: Group,
    /// QUIT would be taken for message data or ignored by a TLS handshake: after an error,
    /// drop the connection instead (RFC 5321 §4.1.1.4: the server then discards the
    /// unfinished message).
    quit_unsafe: bool,
    /// The failure to report once the QUIT sent after it is answered.
    after_quit: Option<Failure>,
    /// The AUTH exchange in progress (what SCRAM and the OAuth error path remember).
    exchange: Option<Exchange>,
    /// `--quit-after`: the stage the dialogue stopped after, and the reply that ended it.
    stopped: Option<(Stage, Option<ServerReply>)>,
    /// `--allow-partial`: the recipients refused in this transaction, with the failure each
    /// would have been.
    refused: Vec<(String, Failure)>,
    /// The message goes by BDAT on this connection.
    chunked: Option<Chunking>,
    /// Each recipient's RCPT parameters (DSN), for the transaction.
    warnings: Vec<Warning>,
}

impl Session {
    /// A new dialogue, before the connection's first byte.
    pub fn new(dialogue: Dialogue) -> Session {
        let mut session = Session {
            dialogue,
            state: State::Greeting,
            actions: VecDeque::new(),
            tls: false,
            extensions: Extensions::default(),
            pipelining: false,
            transaction: None,
            quit: Arc::from(&b"QUIT\r\n"[..]),
            accepted: 0,
            last_accepted: None,
            group: Group::default(),
            quit_unsafe: false,
            after_quit: None,
            exchange: None,
            stopped: None,
            refused: Vec::new(),
            chunked: None,
            warnings: Vec::new(),
        };
        if session.dialogue.tls == TlsMode::Implicit {
            // RFC 8314 §3: with implicit TLS the handshake comes before any SMTP byte.
            session.tls = true;
            session.quit_unsafe = true;
            session.write(true, false, Arc::from(&[][..]));
        }
        if session.dialogue.quit_after == Some(Stage::Connect) {
            // RFC 5321 §3.1: the client speaks only after the greeting, so there is nothing
            // to say: the connection (and its TLS) is all this stage asks for.
            session
                .actions
                .push_back(Action::Note(Stage::Connect.note()));
            session.stopped = Some((Stage::Connect, None));
            session.finish(false);
            return session;
        }
        session.actions.push_back(Action::Read(Wait::Greeting));
        session
    }

    /// The next thing to do, if any. After [`Action::Read`] the driver reads a reply and
    /// calls [`Session::on_reply`] (or [`Session::on_failure`]); after [`Action::Done`]
    /// there is nothing more.
    pub fn next_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// One complete reply from the server. `unread` is how many more bytes the driver has
    /// already received after it: right after STARTTLS's `220` there must be none.
    pub fn on_reply(&mut self, reply: Reply, unread: usize) {
        let result = match self.state {
            State::Greeting => self.greeting(reply),
            State::Ehlo => self.ehlo(reply),
            State::Helo => self.helo(reply),
            State::StartTls => self.starttls(reply, unread),
            State::Auth {
                mechanism,
                challenges,
            } => self.auth(reply, mechanism, challenges),
            State::Mail => self.mail(reply),
            State::Rcpt(index) => self.rcpt(reply, index),
            State::Data => self.data(reply),
            State::DataEnd => self.data_end(reply),
            State::Group(which) => self.group_reply(reply, which),
            State::EmptyData => self.empty_data(),
            State::Chunk(index) => self.chunk(reply, index),
            State::Quit => {
                self.finish(true);
                Ok(())
            }
            State::Done => Ok(()),
        };
        if let Err(failure) = result {
            self.fail(failure);
        }
    }

    /// The driver could not go on: a read timed out, the connection broke, the handshake or
    /// the message rendering failed. Waiting for QUIT's reply, that only ends the dialogue.
    pub fn on_failure(&mut self, failure: Failure) {
        if self.state == State::Done {
            return;
        }
        // What was queued after the step that failed (the read after a failed write) is moot.
        self.actions.clear();
        if self.state == State::Quit {
            self.finish(false);
        } else {
            self.quit_unsafe |= !failure.allows_quit();
            self.fail(failure);
        }
    }

    // The dialogue, in the order of RFC 5321 §3.

    /// RFC 5321 §3.1, §4.2: the server speaks first, with 220 (or 554 to refuse service).
    fn greeting(&mut self, reply: Reply) -> Result<(), Failure> {
        self.quit_unsafe = false;
        let reply = check(reply, "the connection (greeting)", |code| code == 220)?;
        if self.stop_after(Stage::Greeting, &reply) {
            return Ok(());
        }
        self.send_ehlo(false)
    }

    fn send_ehlo(&mut self, handshake: bool) -> Result<(), Failure> {
        let ehlo = Command::Ehlo(&self.dialogue.helo_name).encode()?;
        self.state = State::Ehlo;
        self.write(handshake, false, ehlo.into());
        self.read(Wait::Reply("EHLO"));
        Ok(())
    }

    /// RFC 5321 §4.1.1.1: EHLO, and HELO only for old servers that do not know EHLO (500,
    /// 502). While TLS is required and not yet active, any EHLO failure ends the session:
    /// HELO cannot negotiate STARTTLS, and falling back to plaintext is exactly what a
    /// stripping attack wants.
    fn ehlo(&mut self, reply: Reply) -> Result<(), Failure> {
        self.quit_unsafe = false;
        if reply.code == 250 {
            self.extensions = Extensions::from_ehlo(&reply);
            return self.after_ehlo(&reply);
        }
        let tls_pending = self.dialogue.tls == TlsMode::StartTls && !self.tls;
        if tls_pending && reply.code != 421 {
            return Err(Failure::EhloRejectedTlsRequired {
                reply: reply.into(),
            });
        }
        if matches!(reply.code, 500 | 502) {
            let helo = Command::Helo(&self.dialogue.helo_name).encode()?;
            self.state = State::Helo;
            self.write(false, false, helo.into());
            self.read(Wait::Reply("HELO"));
            return Ok(());
        }
        check(reply, "EHLO", |code| code == 250).map(|_| ())
    }

    /// A server that only knows HELO offers no extensions.
    fn helo(&mut self, reply: Reply) -> Result<(), Failure> {
        let reply = check(reply, "HELO", |code| code == 250)?;
        self.extensions = Extensions::default();
        self.after_ehlo(&reply)
    }

    /// After EHLO: STARTTLS if TLS is required and not yet up, then AUTH, then mail.
    fn after_ehlo(&mut self, reply: &Reply) -> Result<(), Failure> {
        let starttls_next = self.dialogue.tls == TlsMode::StartTls && !self.tls;
        // The first EHLO is the one before STARTTLS; with implicit TLS (or none) it is
        // the only one, and TLS (if any) is already up.
        let first = self.dialogue.tls != TlsMode::StartTls || starttls_next;
        if (first && self.stop_after(Stage::Ehlo, reply))
            || (self.tls && self.stop_after(Stage::Tls, reply))
        {
            return Ok(());
        }
        if starttls_next {
            return self.send_starttls();
        }
        // --quit-after stops at one command's reply: no pipelined groups.
        self.pipelining = self.dialogue.pipelining
            && self.extensions.pipelining
            && self.dialogue.quit_after.is_none();
        let Some(credentials) = &self.dialogue.credentials else {
            return self.start_transactions(None);
        };
        if !self.tls && !self.dialogue.allow_plaintext_auth {
            return Err(Failure::PlaintextAuth);
        }
        let offered = || {
            if self.extensions.auth.is_empty() {
                "nothing".to_owned()
            } else {
                self.extensions.auth.join(" ")
            }
        };
        let mechanism = match credentials.mechanism.map(Mechanism::from_choice) {
            // --auth: that mechanism, if the server offers it.
            Some(chosen) if self.extensions.offers_auth(chosen.name()) => chosen,
            Some(chosen) => {
                return Err(Failure::MechanismNotOffered {
                    mechanism: chosen.name(),
                    offered: offered(),
                });
            }
            None => Mechanism::choose(&self.extensions)
                .ok_or_else(|| Failure::NoAuthMechanism { offered: offered() })?,
        };
        let (host, port) = &self.dialogue.server;
        let (exchange, start) = Exchange::start(mechanism, credentials, host, *port)?;
        self.exchange = Some(exchange);
        if self.pipelining && mechanism.completes_in_one_round_trip() {
            return self.start_transactions(Some(start));
        }
        self.state = State::Auth {
            mechanism,
            challenges: 0,
        };
        self.write(false, false, start.into());
        self.read(Wait::Reply(mechanism.command_name()));
        Ok(())
    }

    /// RFC 3207 §4: STARTTLS when the server offers it; without it, nothing else is sent.
    fn send_starttls(&mut self) -> Result<(), Failure> {
        if !self.extensions.starttls {
            return Err(Failure::StartTlsUnavailable);
        }
        self.state = State::StartTls;
        self.write(false, false, Command::StartTls.encode()?.into());
        self.read(Wait::Reply("STARTTLS"));
        Ok(())
    }

    /// RFC 3207 §4: `220`, then the handshake. Bytes that arrived after the 220 and before
    /// the handshake did not come through TLS, so they are an attack, never input (§4.2).
    /// RFC 3207 §4.2 also says to forget what EHLO said before TLS and ask again: that EHLO
    /// leaves with the client's TLS Finished.
    fn starttls(&mut self, reply: Reply, unread: usize) -> Result<(), Failure> {
        match reply.code {
            220 => {}
            421 => {
                return Err(Failure::ServiceClosing {
                    command: "STARTTLS".into(),
                    reply: reply.into(),
                });
            }
            _ => {
                return Err(Failure::StartTlsRefused {
                    reply: reply.into(),
                });
            }
        }
        if let Err(injection) = nothing_before_the_handshake(unread) {
            self.quit_unsafe = true;
            return Err(injection);
        }
        self.tls = true;
        self.quit_unsafe = true;
        self.extensions = Extensions::default();
        self.send_ehlo(true)
    }

    /// RFC 4954 §4, §6: `334` asks for the next SASL message, `235` is success, `535` (or any
    /// 5xx) means the credentials were refused.
    fn auth(&mut self, reply: Reply, mechanism: Mechanism, challenges: u8) -> Result<(), Failure> {
        let Some(exchange) = &mut self.exchange else {
            return Err(Failure::Internal("AUTH without its exchange".into()));
        };
        if reply.code == 334 {
            let Some(credentials) = &self.dialogue.credentials else {
                return Err(Failure::Internal("AUTH without credentials".into()));
            };
            let challenge = reply.lines.first().map_or("", String::as_str);
            let response = exchange.respond(credentials, challenge)?;
            self.state = State::Auth {
                mechanism,
                challenges: challenges + 1,
            };
            self.write(false, false, response.into());
            self.read(Wait::Reply(mechanism.command_name()));
            return Ok(());
        }
        exchange.finish(reply.clone())?;
        if self.stop_after(Stage::Auth, &reply) {
            return Ok(());
        }
        self.start_transactions(None)
    }

    /// Before the first MAIL: the parameters the message needs (RFC 6531 §3.4 SMTPUTF8,
    /// RFC 6152 §3 BODY=8BITMIME, only when offered, in lettre's order) and the server's SIZE
    /// limit (RFC 1870 §6: do not send a message the server said it cannot take). With
    /// pipelining, `pipelined_auth` (AUTH PLAIN with its initial response) leads the group.
    fn start_transactions(&mut self, pipelined_auth: Option<Vec<u8>>) -> Result<(), Failure> {
        // --quit-after auth without AUTH to do (no credentials): stop all the same, before
        // anything of the message is said.
        if let Some(stage) = self
            .dialogue
            .quit_after
            .filter(|&stage| stage <= Stage::Auth)
        {
            self.stop_with(stage, None);
            return Ok(());
        }
        let envelope = &self.dialogue.envelope;
        let mut parameters = Vec::new();
        if envelope.smtputf8 {
            if !self.extensions.smtputf8 {
                return Err(Failure::needs_smtputf8());
            }
            parameters.push("SMTPUTF8");
        }
        let binary_ok = self.dialogue.chunking.is_some()
            && self.extensions.chunking
            && self.extensions.binarymime;
        if envelope.binary {
            // RFC 3030 §3: unencoded binary only in BDAT chunks, to a server that offers it.
            if !binary_ok {
                return Err(Failure::MissingExtension {
                    extension: "BINARYMIME",
                    why: "--binarymime sends attachments unencoded, which needs --chunking and a server offering CHUNKING and BINARYMIME",
                });
            }
            parameters.push("BODY=BINARYMIME");
        } else if envelope.eight_bit {
            if !self.extensions.eight_bit_mime {
                return Err(Failure::needs_8bitmime());
            }
            parameters.push("BODY=8BITMIME");
        }
        if let Some(limit) = self.extensions.size.filter(|&limit| limit > 0)
            && self.dialogue.message_size > limit
        {
            return Err(Failure::MessageTooBig {
                size: self.dialogue.message_size,
                limit,
            });
        }
        let extensions = &self.extensions;
        let delivery = self.dialogue.delivery.parameters(
            &|keyword| extensions.offers(keyword),
            self.dialogue.message_size,
            &envelope.recipients,
        )?;
        // RFC 3030 §2: BDAT when asked for and offered; else DATA, or fail when required.
        self.chunked = match self.dialogue.chunking {
            Some(chunking) if self.extensions.chunking => Some(chunking),
            Some(Chunking { required: true, .. }) => {
                return Err(Failure::MissingExtension {
                    extension: "CHUNKING",
                    why: "--chunking=required sends the message with BDAT (RFC 3030)",
                });
            }
            Some(_) => {
                self.actions.push_back(Action::Note(
                    "the server does not offer CHUNKING (RFC 3030): the message goes with DATA"
                        .into(),
                ));
                None
            }
            None => None,
        };
        if let Some(warning) = delivery.warning {
            self.actions.push_back(Action::Note(warning.to_string()));
            self.warnings.push(warning);
        }
        let mut parameters: Vec<String> = parameters.into_iter().map(str::to_owned).collect();
        parameters.extend(delivery.mail.iter().map(cli::Parameter::encoded));
        let rcpt: Vec<Vec<String>> = delivery
            .rcpt
            .iter()
            .map(|list| list.iter().map(cli::Parameter::encoded).collect())
            .collect();
        let transaction = Transaction::new(envelope, &parameters, &rcpt, self.chunked)?;
        self.refused.clear();
        self.actions.push_back(Action::Transaction);
        if self.pipelining {
            // RFC 2920 §3.1: MAIL and RCPT may go anywhere in a group, DATA only last.
            let mut flight = pipelined_auth.clone().unwrap_or_default();
            flight.extend_from_slice(&transaction.group);
            self.actions.push_back(Action::Note(format!(
                "pipelining (RFC 2920): {}MAIL, {} RCPT and {} in one write",
                if pipelined_auth.is_some() {
                    "AUTH PLAIN, "
                } else {
                    ""
                },
                transaction.rcpts.len(),
                if self.chunked.is_some() {
                    "the message in BDAT chunks (RFC 3030), then QUIT,"
                } else {
                    "DATA"
                }
            )));
            self.group = Group::default();
            let first = if pipelined_auth.is_some() {
                GroupReply::Auth
            } else {
                GroupReply::Mail
            };
            self.transaction = Some(transaction);
            if let Some(chunking) = self.chunked {
                // No 354 to wait for: the chunks and QUIT follow in the same write.
                self.write_chunks(chunking, flight.into(), self.quit.clone());
            } else {
                self.write(false, false, flight.into());
            }
            self.await_group(first);
        } else {
            let mail = transaction.mail.clone();
            self.transaction = Some(transaction);
            self.send_mail(mail);
        }
        Ok(())
    }

    /// RFC 5321 §4.1.1.2: MAIL FROM starts the transaction.
    fn send_mail(&mut self, mail: Bytes) {
        self.state = State::Mail;
        self.write(false, false, mail);
        self.read(Wait::Reply("MAIL FROM"));
    }

    fn mail(&mut self, reply: Reply) -> Result<(), Failure> {
        let transaction = self.transaction()?;
        let reply = judge(reply, |code| code == 250, || shown(&transaction.mail))?;
        if self.stop_after(Stage::Mail, &reply) {
            return Ok(());
        }
        self.send_rcpt(0)
    }

    /// RFC 5321 §4.1.1.3: one RCPT TO per envelope recipient (To, Cc and Bcc alike). A
    /// refused recipient ends the transaction, as in lettre and curl, unless
    /// `--allow-partial` says to go on with the others.
    fn send_rcpt(&mut self, index: usize) -> Result<(), Failure> {
        let transaction = self.transaction()?;
        let Some(rcpt) = transaction.rcpts.get(index).cloned() else {
            if let Some(chunking) = self.chunked {
                // RFC 3030 §2: BDAT needs no go-ahead; the driver reads the reply to each
                // chunk but the last, the session that one.
                self.state = State::DataEnd;
                self.quit_unsafe = false;
                self.write_chunks(chunking, Arc::from(&[][..]), Arc::from(&[][..]));
                self.read(Wait::DataEnd);
                return Ok(());
            }
            // RFC 5321 §4.1.1.4: DATA, answered 354 before the content may follow.
            let data = transaction.data.clone();
            self.state = State::Data;
            self.write(false, false, data);
            self.read(Wait::Reply("DATA"));
            return Ok(());
        };
        self.state = State::Rcpt(index);
        self.write(false, false, rcpt);
        self.read(Wait::Reply("RCPT TO"));
        Ok(())
    }

    fn rcpt(&mut self, reply: Reply, index: usize) -> Result<(), Failure> {
        let transaction = self.transaction()?;
        let rcpt = transaction.rcpts.get(index).cloned().unwrap_or_default();
        let count = transaction.rcpts.len();
        let answer: ServerReply = reply.clone().into();
        let verdict = judge(reply, |code| matches!(code, 250 | 251), || shown(&rcpt));
        self.partial(verdict, index)?;
        if index + 1 == count {
            if self.refused.len() == count {
                // Every recipient refused: the first refusal is the failure.
                return Err(self.refused.remove(0).1);
            }
            if self.dialogue.quit_after == Some(Stage::Rcpt) {
                self.stop_with(Stage::Rcpt, Some(answer));
                return Ok(());
            }
        }
        self.send_rcpt(index + 1)
    }

    /// A RCPT verdict: with `--allow-partial` a refusal (not `421`, which closes the
    /// service) is remembered and the transaction goes on; without it, it ends it.
    fn partial(&mut self, verdict: Result<Reply, Failure>, index: usize) -> Result<bool, Failure> {
        match verdict {
            Ok(_) => Ok(true),
            // Pipelined BDAT chunks leave with the RCPTs: the message goes to whoever was
            // accepted, so a refusal can only be reported, as --allow-partial does.
            Err(failure @ Failure::Rejected { .. })
                if self.dialogue.allow_partial || (self.pipelining && self.chunked.is_some()) =>
            {
                let address = self
                    .dialogue
                    .envelope
                    .recipients
                    .get(index)
                    .map(|address| address.as_str().to_owned())
                    .unwrap_or_default();
                self.refused.push((address, failure));
                Ok(false)
            }
            Err(failure) => Err(failure),
        }
    }

    /// `--quit-after`: when `stage` is the one, QUIT now, ending with success; `reply` is
    /// the one that completed the stage.
    fn stop_after(&mut self, stage: Stage, reply: &Reply) -> bool {
        if self.dialogue.quit_after != Some(stage) {
            return false;
        }
        self.stop_with(stage, Some(reply.clone().into()));
        true
    }

    fn stop_with(&mut self, stage: Stage, reply: Option<ServerReply>) {
        self.actions.push_back(Action::Note(stage.note()));
        self.stopped = Some((stage, reply));
        self.send_quit();
    }

    fn data(&mut self, reply: Reply) -> Result<(), Failure> {
        let reply = judge(reply, |code| code == 354, || "DATA".into())?;
        if self.dialogue.quit_after == Some(Stage::Data) {
            // After 354 the server reads message data: a QUIT would be part of it. Closing
            // the connection instead makes the server drop the transaction (RFC 5321
            // §4.1.1.4 and §3.8): nothing is delivered.
            self.actions.push_back(Action::Note(Stage::Data.note()));
            self.stopped = Some((Stage::Data, Some(reply.into())));
            self.finish(false);
            return Ok(());
        }
        self.send_message();
        Ok(())
    }

    /// RFC 5321 §4.5.2: the message, dot-stuffed, then `.`; with pipelining the next
    /// transaction's group (or QUIT) goes in the same write (RFC 2920 §3.1).
    fn send_message(&mut self) {
        let more = self.accepted + 1 < self.dialogue.messages;
        let trailer: Bytes = match (self.pipelining, more, &self.transaction) {
            (true, true, Some(transaction)) => transaction.group.clone(),
            (true, false, _) => self.quit.clone(),
            _ => Arc::from(&[][..]),
        };
        self.state = State::DataEnd;
        self.quit_unsafe = true;
        self.write(false, true, trailer);
        self.read(Wait::DataEnd);
    }

    /// RFC 5321 §4.1.1.4: the reply to the final `.` alone decides whether the message was
    /// accepted.
    fn data_end(&mut self, reply: Reply) -> Result<(), Failure> {
        let more = self.accepted + 1 < self.dialogue.messages;
        self.quit_unsafe = false;
        if let Err(failure) = judge(
            reply.clone(),
            |code| code == 250,
            || "the message data".into(),
        ) {
            return match (self.pipelining, more) {
                // The next group is on its way: its DATA may be answered 354, and a QUIT
                // would then be message content.
                (true, true) => {
                    self.quit_unsafe = true;
                    Err(failure)
                }
                // The QUIT is on its way already: report the refusal after its reply.
                (true, false) => {
                    self.after_quit = Some(failure);
                    self.await_quit();
                    Ok(())
                }
                (false, _) => Err(failure),
            };
        }
        self.accepted += 1;
        let accepted: ServerReply = reply.into();
        self.last_accepted = Some(accepted.clone());
        self.actions.push_back(Action::Accepted(accepted));
        if self.accepted == 1 && self.dialogue.messages > 1 {
            self.actions.push_back(Action::Note(format!(
                "the next {} messages on this connection are not recorded",
                self.dialogue.messages - 1
            )));
            self.actions.push_back(Action::StopRecording);
        }
        if more {
            // The warning is about the last message; each transaction starts afresh.
            self.refused.clear();
        }
        match (more, self.pipelining) {
            (true, true) => {
                self.actions.push_back(Action::Transaction);
                self.group = Group::default();
                self.await_group(GroupReply::Mail);
            }
            (true, false) => {
                self.actions.push_back(Action::Transaction);
                let mail = self.transaction()?.mail.clone();
                self.send_mail(mail);
            }
            (false, true) => self.await_quit(),
            (false, false) => self.send_quit(),
        }
        Ok(())
    }

    /// RFC 2920 §3.1: the replies to a pipelined group come in order, one per command, and
    /// every one is read before acting on any refusal.
    fn await_group(&mut self, which: GroupReply) {
        if let (GroupReply::Data, Some(chunking)) = (which, self.chunked) {
            // The chunks came right after the RCPTs: their replies come next. The server
            // knows where each chunk ends, so a QUIT is never message data here.
            self.quit_unsafe = false;
            return self.await_chunk(0, chunking);
        }
        self.state = State::Group(which);
        self.quit_unsafe = true;
        let wait = match which {
            GroupReply::Auth => Wait::Reply("AUTH PLAIN"),
            GroupReply::Mail => Wait::Reply("MAIL FROM"),
            GroupReply::Rcpt(_) => Wait::Reply("RCPT TO"),
            GroupReply::Data => Wait::Reply("DATA"),
        };
        self.read(wait);
    }

    fn group_reply(&mut self, reply: Reply, which: GroupReply) -> Result<(), Failure> {
        let transaction = self.transaction()?.clone();
        match which {
            GroupReply::Auth => {
                self.group.auth_error = auth_result(reply, Mechanism::Plain).err();
                self.await_group(GroupReply::Mail);
            }
            GroupReply::Mail => {
                let verdict = judge(reply, |code| code == 250, || shown(&transaction.mail));
                self.group.mail_accepted = self.remember(verdict);
                self.await_group(next_in_group(0, transaction.rcpts.len()));
            }
            GroupReply::Rcpt(index) => {
                let rcpt = transaction.rcpts.get(index).cloned().unwrap_or_default();
                let verdict = judge(reply, |code| matches!(code, 250 | 251), || shown(&rcpt));
                let verdict = match self.partial(verdict, index) {
                    Ok(true) => Ok(()),
                    // Refused, and --allow-partial: not a refusal of the group, unless it
                    // was the last recipient left.
                    Ok(false) if self.refused.len() < transaction.rcpts.len() => Err(None),
                    Ok(false) => Err(Some(self.refused.remove(0).1)),
                    Err(failure) => Err(Some(failure)),
                };
                match verdict {
                    Ok(()) => self.group.recipients_accepted += 1,
                    Err(Some(failure)) => {
                        self.group.first_error.get_or_insert(failure);
                    }
                    Err(None) => {}
                }
                self.await_group(next_in_group(index + 1, transaction.rcpts.len()));
            }
            GroupReply::Data => return self.group_data(reply),
        }
        Ok(())
    }

    /// The reply to pipelined chunk `index` (RFC 3030 §2): `250` for each; the last one's
    /// says whether the message was accepted. The QUIT is on its way already.
    fn chunk(&mut self, reply: Reply, index: u64) -> Result<(), Failure> {
        let count = self
            .chunked
            .map_or(1, |chunking| chunking.count(self.dialogue.message_size));
        let verdict = chunk_verdict(reply.clone(), index, count);
        if index + 1 < count {
            if let Err(failure) = verdict {
                self.group.first_error.get_or_insert(failure);
            }
            if let Some(chunking) = self.chunked {
                self.await_chunk(index + 1, chunking);
            }
            return Ok(());
        }
        let group = std::mem::take(&mut self.group);
        match (verdict, group.auth_error.or(group.first_error)) {
            // The message was accepted: whatever RCPT refused, it went to the others.
            (Ok(_), _) => {
                self.accepted += 1;
                let accepted: ServerReply = reply.into();
                self.last_accepted = Some(accepted.clone());
                self.actions.push_back(Action::Accepted(accepted));
            }
            (Err(failure), earlier) => self.after_quit = Some(earlier.unwrap_or(failure)),
        }
        self.await_quit();
        Ok(())
    }

    /// Waits for the reply to chunk `index`; the last one's has the data timeout.
    fn await_chunk(&mut self, index: u64, chunking: Chunking) {
        self.state = State::Chunk(index);
        let last = index + 1 >= chunking.count(self.dialogue.message_size);
        self.read(if last {
            Wait::DataEnd
        } else {
            Wait::Reply("BDAT")
        });
    }

    /// Sends the message as BDAT chunks after `lead`, then `trailer`.
    fn write_chunks(&mut self, chunking: Chunking, lead: Bytes, trailer: Bytes) {
        self.actions.push_back(Action::Write(Flight {
            handshake: false,
            message: false,
            chunks: Some(chunking.size),
            lead,
            commands: trailer,
        }));
    }

    /// The reply to the group's DATA decides what to do with the refusals before it. After
    /// any refusal the message is never sent. If DATA got 354 anyway (RFC 2920 §3.1), the
    /// server now reads message data: when nothing deliverable is left (MAIL or every
    /// recipient refused) a lone `.` ends it; when some recipients were accepted, the
    /// connection is dropped so the server discards the transaction (RFC 5321 §4.1.1.4)
    /// rather than deliver an empty message to them.
    fn group_data(&mut self, reply: Reply) -> Result<(), Failure> {
        let group = std::mem::take(&mut self.group);
        let refusal = group.auth_error.or(group.first_error);
        // Without a 354 the server reads commands again: QUIT is safe.
        self.quit_unsafe = reply.code == 354;
        let Some(failure) = refusal else {
            judge(reply, |code| code == 354, || "DATA".into())?;
            self.send_message();
            return Ok(());
        };
        if reply.code != 354 || (group.mail_accepted && group.recipients_accepted > 0) {
            return Err(failure);
        }
        self.after_quit = Some(failure);
        self.state = State::EmptyData;
        self.write(false, false, Arc::from(&b".\r\n"[..]));
        self.read(Wait::Reply("the end of an empty message"));
        Ok(())
    }

    /// After the lone `.`: QUIT, then report the refusal that caused it.
    fn empty_data(&mut self) -> Result<(), Failure> {
        self.quit_unsafe = false;
        match self.after_quit.take() {
            Some(failure) => Err(failure),
            None => Err(Failure::Internal(
                "an empty message without a refusal".into(),
            )),
        }
    }

    /// Keeps the first refusal of a pipelined group; returns whether this reply was positive.
    fn remember(&mut self, verdict: Result<Reply, Failure>) -> bool {
        match verdict {
            Ok(_) => true,
            Err(failure) => {
                self.group.first_error.get_or_insert(failure);
                false
            }
        }
    }

    /// RFC 5321 §4.1.1.10: QUIT, and wait for its `221`.
    fn send_quit(&mut self) {
        self.write(false, false, self.quit.clone());
        self.await_quit();
    }

    fn await_quit(&mut self) {
        self.state = State::Quit;
        self.quit_unsafe = true;
        self.read(Wait::Reply("QUIT"));
    }

    /// The end: QUIT was answered (whatever the answer) or its reply was lost. Once the data
    /// was accepted, a lost reply is only a warning: the message is the server's now (RFC
    /// 5321 §6.1), and calling the send a failure would make scripts send it twice.
    fn finish(&mut self, answered: bool) {
        let result = match (self.after_quit.take(), self.last_accepted.clone()) {
            (Some(failure), _) => Err(failure),
            (None, _) if self.stopped.is_some() => {
                let (stage, reply) = self.stopped.clone().unzip();
                Ok(Sent {
                    reply: reply.flatten(),
                    warnings: Vec::new(),
                    stopped: stage,
                    serverinfo: None,
                })
            }
            (None, Some(accepted)) => {
                let mut warnings = Vec::new();
                if !answered {
                    warnings.push(Warning::QuitUnanswered {
                        accepted: accepted.clone(),
                    });
                }
                if !self.refused.is_empty() {
                    let refused = std::mem::take(&mut self.refused);
                    warnings.push(Warning::RecipientsRefused {
                        accepted: self.dialogue.envelope.recipients.len() - refused.len(),
                        refused: refused
                            .into_iter()
                            .filter_map(|(address, failure)| {
                                failure.reply().cloned().map(|reply| (address, reply))
                            })
                            .collect(),
                    });
                }
                warnings.append(&mut self.warnings);
                Ok(Sent {
                    warnings,
                    reply: Some(accepted),
                    stopped: None,
                    serverinfo: None,
                })
            }
            (None, None) => Err(Failure::Internal("QUIT before any message".into())),
        };
        self.done(result);
    }

    /// Ends with `failure`: says QUIT first where that is still safe, else drops the
    /// connection.
    fn fail(&mut self, failure: Failure) {
        if self.quit_unsafe || !failure.allows_quit() {
            self.done(Err(failure));
            return;
        }
        self.after_quit = Some(failure);
        self.send_quit();
    }

    fn done(&mut self, result: Result<Sent, Failure>) {
        self.state = State::Done;
        self.actions.push_back(Action::Done(result));
    }

    fn write(&mut self, handshake: bool, message: bool, commands: Bytes) {
        self.actions.push_back(Action::Write(Flight {
            handshake,
            message,
            chunks: None,
            lead: Arc::from(&[][..]),
            commands,
        }));
    }

    fn read(&mut self, wait: Wait) {
        self.actions.push_back(Action::Read(wait));
    }

    fn transaction(&self) -> Result<&Transaction, Failure> {
        self.transaction
            .as_ref()
            .ok_or_else(|| Failure::Internal("a transaction reply before MAIL".into()))
    }
}

impl Transaction {
    /// `rcpt_parameters` has one list per recipient (DSN); with `chunked`, the pipelined
    /// group ends with the last RCPT, since BDAT chunks follow it.
    fn new(
        envelope: &Envelope,
        parameters: &[String],
        rcpt_parameters: &[Vec<String>],
        chunked: Option<Chunking>,
    ) -> Result<Transaction, Failure> {
        let parameters: Vec<&str> = parameters.iter().map(String::as_str).collect();
        let mail: Bytes = Command::Mail {
            from: envelope.from.as_str(),
            parameters: &parameters,
        }
        .encode()?
        .into();
        let rcpts = envelope
            .recipients
            .iter()
            .enumerate()
            .map(|(index, recipient)| {
                let command = match rcpt_parameters.get(index) {
                    Some(parameters) if !parameters.is_empty() => Command::RcptWith {
                        to: recipient.as_str(),
                        parameters,
                    },
                    _ => Command::Rcpt(recipient.as_str()),
                };
                command.encode().map(Bytes::from)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let data: Bytes = Command::Data.encode()?.into();
        let mut group = mail.to_vec();
        rcpts.iter().for_each(|rcpt| group.extend_from_slice(rcpt));
        if chunked.is_none() {
            group.extend_from_slice(&data);
        }
        Ok(Transaction {
            mail,
            rcpts,
            data,
            group: group.into(),
        })
    }
}

/// RFC 3207 §4.2: after STARTTLS's `220`, `unread` is how many more bytes the server sent
/// before the handshake. They did not come through TLS, so any is an attack (response
/// injection) or a broken server, never input. The interactive shell checks the same.
pub(crate) fn nothing_before_the_handshake(unread: usize) -> Result<(), Failure> {
    match unread {
        0 => Ok(()),
        _ => Err(Failure::StartTlsInjection(unread)),
    }
}

fn next_in_group(index: usize, recipients: usize) -> GroupReply {
    if index < recipients {
        GroupReply::Rcpt(index)
    } else {
        GroupReply::Data
    }
}

/// RFC 3030 §2: each BDAT chunk is answered `250`; a refusal names the chunk.
pub fn chunk_verdict(reply: Reply, index: u64, count: u64) -> Result<Reply, Failure> {
    judge(
        reply,
        |code| code == 250,
        || format!("BDAT (chunk {} of {count})", index + 1),
    )
}

/// RFC 4954 §6: 235 is success; 535 (or any 5xx) means the credentials were refused; a
/// `334` here is a challenge the mechanism has no answer for.
pub(crate) fn auth_result(reply: Reply, mechanism: Mechanism) -> Result<(), Failure> {
    let command = mechanism.command_name();
    match reply.code {
        200..=299 => Ok(()),
        334 => Err(Failure::Protocol {
            after: command.into(),
            violation: Violation::UnexpectedChallenge,
        }),
        500..=599 => Err(Failure::AuthFailed {
            reply: reply.into(),
        }),
        _ => check(reply, command, |_| false).map(|_| ()),
    }
}

/// Accepts the expected codes; 421 closes the service (RFC 5321 §3.8), 4xx/5xx reject the
/// command, and any other code is a protocol violation.
fn check(reply: Reply, command: &str, expected: fn(u16) -> bool) -> Result<Reply, Failure> {
    if expected(reply.code) {
        return Ok(reply);
    }
    Err(match reply.code {
        421 => Failure::ServiceClosing {
            command: command.to_owned(),
            reply: reply.into(),
        },
        400..=599 => Failure::Rejected {
            command: command.to_owned(),
            reply: reply.into(),
        },
        _ => Failure::Protocol {
            after: command.to_owned(),
            violation: Violation::UnexpectedReply(reply.into()),
        },
    })
}

/// [`check`], naming the command only when the reply is not the expected one (a load run
/// judges thousands of replies).
fn judge(
    reply: Reply,
    expected: fn(u16) -> bool,
    command: impl FnOnce() -> String,
) -> Result<Reply, Failure> {
    if expected(reply.code) {
        Ok(reply)
    } else {
        check(reply, &command(), expected)
    }
}

/// A command line as shown in errors, without its CRLF.
fn shown(line: &[u8]) -> String {
    String::from_utf8_lossy(line).trim_end().to_owned()
}
