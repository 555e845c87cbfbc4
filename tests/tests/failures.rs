//! The failure matrix: every failure class of the exit-code table, run against both clients.
//!
//! For each case both clients meet the same server (a test-server with a fault, a scripted
//! peer, or no server at all) and must end with the same exit code and the same sentence —
//! or with the difference the case names, where lettre makes the same behaviour impossible.
//! Every `--` event either client records must be one that happened on the wire: a connection
//! the server saw, a TLS handshake the server completed.
//!
//! The table in docs/failures.md is generated from these cases (the test fails when it is
//! stale; `UPDATE_FAILURE_DOCS=1` rewrites it). Usage errors (64) and bad input caught before
//! connecting (65, 66) are the shared option parser's, checked through both real binaries in
//! `tests/shared/binary_checks.rs`.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cli::Exit;
use test_server::{Config, Stage};
use transcript::Event;
use workspace_tests::scripted::{Scripted, Seen, Step};
use workspace_tests::{Client, ClientRun, Scenario, TempDir, job_at, run_job};

/// Who the clients talk to.
enum Peer {
    /// A test-server with this configuration change.
    Server(fn(&mut Config)),
    /// A scripted server; each client gets its own.
    Script(fn() -> Vec<Step>),
    /// Nothing listens on this port.
    ClosedPort,
    /// A host name no resolver can answer: one label longer than 63 octets (RFC 1035
    /// §2.3.4), which the system resolver refuses without sending a query.
    UnresolvableHost,
    /// A test-server whose message loses an attachment between building and sending.
    VanishingAttachment,
}

/// How lib-client's ending compares with raw-client's.
enum Lib {
    /// The same exit code and sentence.
    Same,
    /// The same exit code and sentence, but lettre says no QUIT where raw-client does: it
    /// drops the connection after its own refusals (lettre-wire.md).
    NoQuit,
    /// lettre words it its own way: lib-client's exit code and sentence, and why.
    Says(Exit, &'static str, &'static str),
}

struct Case {
    name: &'static str,
    tls: &'static str,
    /// Client options. Four are the harness's own: `--no-ca` (do not trust the server's CA),
    /// `--plain-port` and `--tls-port` (connect to that listener whatever the TLS mode), and
    /// `--wrong-name` (check the certificate against another name).
    args: &'static [&'static str],
    login: bool,
    peer: Peer,
    /// raw-client's exit code and sentence.
    exit: Exit,
    says: &'static str,
    lib: Lib,
}

const BOB: &str = "bob@example.org";

/// A body that makes the message larger than 500 octets.
const LONG_BODY: &str = "This body makes the message larger than the 500 octets the server \
    advertises with SIZE 500 in its EHLO reply, so a client that reads RFC 1870 section 6 \
    does not send it at all. It goes on a little longer than it needs to, to be safe about \
    the size of the header fields, which the test does not count: Date, From, To, Subject, \
    Message-ID, MIME-Version and Content-Type together are well under four hundred octets.\n";

fn stall(config: &mut Config, stage: Stage) {
    config
        .faults
        .stall
        .push((stage, Duration::from_millis(1500)));
}

fn send(text: &str) -> Step {
    Step::Send(text.as_bytes().to_vec())
}

/// A scripted server's greeting and EHLO reply (no extensions), then `rest`.
fn after_ehlo(rest: Vec<Step>) -> Vec<Step> {
    let mut script = vec![
        send("220 mx.example ESMTP\r\n"),
        Step::Read,
        send("250 mx.example\r\n"),
    ];
    script.extend(rest);
    script
}

/// MAIL and RCPT accepted, then `rest`.
fn after_rcpt(rest: Vec<Step>) -> Vec<Step> {
    let mut steps = vec![
        Step::Read,
        send("250 2.1.0 Ok\r\n"),
        Step::Read,
        send("250 2.1.5 Ok\r\n"),
    ];
    steps.extend(rest);
    after_ehlo(steps)
}

/// STARTTLS offered and answered with `reply`; then the server says nothing more for a while
/// (no TLS, no reply to QUIT).
fn starttls_answered(reply: &str) -> Vec<Step> {
    vec![
        send("220 mx.example ESMTP\r\n"),
        Step::Read,
        send("250-mx.example\r\n250 STARTTLS\r\n"),
        Step::Read,
        send(reply),
        Step::Stall(Duration::from_millis(1500)),
    ]
}

/// A whole dialogue that accepts the message, after `greeting`.
fn whole_dialogue(greeting: &str) -> Vec<Step> {
    let mut script = vec![
        send(greeting),
        Step::Read,
        send("250 mx.example\r\n"),
        Step::Read,
        send("250 2.1.0 Ok\r\n"),
        Step::Read,
        send("250 2.1.5 Ok\r\n"),
        Step::Read,
        send("354 go ahead\r\n"),
        Step::ReadData,
        send("250 2.0.0 queued\r\n"),
    ];
    script.extend(quit());
    script
}

/// QUIT answered, as a polite server does after a refusal.
fn quit() -> Vec<Step> {
    vec![Step::Read, send("221 2.0.0 Bye\r\n")]
}

fn cases() -> Vec<Case> {
    let quick = &["--timeout", "500ms", "--data-timeout", "500ms"][..];
    vec![
        // 66: an input file is missing.
        Case {
            name: "attachment deleted after the job was built",
            tls: "none",
            args: &[],
            login: false,
            peer: Peer::VanishingAttachment,
            exit: Exit::NoInput,
            says: "the attachment file DIR/gone.txt does not exist: check the path",
            lib: Lib::Same,
        },
        // 68: the host name does not resolve.
        Case {
            name: "unknown host",
            tls: "none",
            args: &[],
            login: false,
            peer: Peer::UnresolvableHost,
            exit: Exit::NoHost,
            says: "cannot resolve the server name \"HOST\" (failed to lookup address information: Name or service not known): check --server",
            lib: Lib::Same,
        },
        // 69: a permanent refusal (5xx), at each command.
        Case {
            name: "greeting 554",
            tls: "none",
            args: &[],
            login: false,
            peer: Peer::Script(|| {
                vec![
                    send("554 5.7.1 no service for you\r\n"),
                    Step::Read,
                    send("221 Bye\r\n"),
                ]
            }),
            exit: Exit::Unavailable,
            says: "the server rejected the connection (greeting) with \"554 5.7.1 no service for you\"",
            lib: Lib::NoQuit,
        },
        Case {
            name: "EHLO 550 (no TLS asked)",
            tls: "none",
            args: &[],
            login: false,
            peer: Peer::Script(|| {
                let mut script = vec![
                    send("220 mx.example ESMTP\r\n"),
                    Step::Read,
                    send("550 5.7.1 go away\r\n"),
                ];
                script.extend(quit());
                script
            }),
            exit: Exit::Unavailable,
            says: "the server rejected EHLO with \"550 5.7.1 go away\"",
            lib: Lib::Same,
        },
        Case {
            name: "MAIL 550",
            tls: "none",
            args: &[],
            login: false,
            peer: Peer::Script(|| {
                let mut steps = vec![Step::Read, send("550 5.7.1 sender refused\r\n")];
                steps.extend(quit());
                after_ehlo(steps)
            }),
            exit: Exit::Unavailable,
            says: "the server rejected MAIL FROM:<alice@example.com> with \"550 5.7.1 sender refused\"",
            lib: Lib::Same,
        },
        Case {
            name: "RCPT 550",
            tls: "starttls",
            args: &[],
            login: true,
            peer: Peer::Server(|c| c.faults.reject_recipients.push(BOB.into())),
            exit: Exit::Unavailable,
            says: "the server rejected RCPT TO:<bob@example.org> with \"550 5.1.1 Mailbox unavailable\"",
            lib: Lib::Same,
        },
        Case {
            name: "DATA 554",
            tls: "none",
            args: &[],
            login: false,
            peer: Peer::Script(|| {
                let mut steps = vec![Step::Read, send("554 5.5.1 no valid recipients\r\n")];
                steps.extend(quit());
                after_rcpt(steps)
            }),
            exit: Exit::Unavailable,
            says: "the server rejected DATA with \"554 5.5.1 no valid recipients\"",
            lib: Lib::Same,
        },
        Case {
            name: "end of data 554",
            tls: "starttls",
            args: &[],
            login: true,
            peer: Peer::Server(|c| c.faults.reject_data = true),
            exit: Exit::Unavailable,
            says: "the server rejected the message data with \"554 5.6.0 Message content rejected\"",
            lib: Lib::Same,
        },
        Case {
            name: "message larger than the advertised SIZE",
            tls: "starttls",
            args: &["--body", LONG_BODY],
            login: true,
            peer: Peer::Server(|c| c.size_limit = 500),
            exit: Exit::Unavailable,
            says: "the message is SIZE octets but the server accepts at most 500 (its EHLO reply says SIZE 500): nothing was sent; make the message smaller or use another server",
            lib: Lib::Same,
        },
        Case {
            name: "SMTPUTF8 needed but not offered",
            tls: "none",
            args: &["--to", "bøb@example.org"],
            login: false,
            peer: Peer::Script(|| after_ehlo(quit())),
            exit: Exit::Unavailable,
            says: "the message needs the SMTPUTF8 extension (an address is internationalized) but the server does not offer it: nothing was sent",
            lib: Lib::NoQuit,
        },
        // 75: a temporary failure (4xx, timeout, refused connection).
        Case {
            name: "connection refused",
            tls: "none",
            args: &[],
            login: false,
            peer: Peer::ClosedPort,
            exit: Exit::TempFail,
            says: "cannot connect to 127.0.0.1:PORT (Connection refused (os error 111)): check the server and port, or try again later",
            lib: Lib::Same,
        },
        Case {
            name: "MAIL 451",
            tls: "starttls",
            args: &[],
            login: true,
            peer: Peer::Server(|c| c.faults.tempfail_mail = true),
            exit: Exit::TempFail,
            says: "the server rejected MAIL FROM:<alice@example.com> with \"451 4.3.0 Temporary failure, try again later\"",
            lib: Lib::Same,
        },
        Case {
            name: "RCPT 450",
            tls: "starttls",
            args: &[],
            login: true,
            peer: Peer::Server(|c| c.faults.tempfail_recipients.push(BOB.into())),
            exit: Exit::TempFail,
            says: "the server rejected RCPT TO:<bob@example.org> with \"450 4.2.0 Mailbox temporarily unavailable\"",
            lib: Lib::Same,
        },
        Case {
            name: "DATA 451",
            tls: "none",
            args: &[],
            login: false,
            peer: Peer::Script(|| {
                let mut steps = vec![Step::Read, send("451 4.3.0 try later\r\n")];
                steps.extend(quit());
                after_rcpt(steps)
            }),
            exit: Exit::TempFail,
            says: "the server rejected DATA with \"451 4.3.0 try later\"",
            lib: Lib::Same,
        },
        Case {
            name: "end of data 452",
            tls: "none",
            args: &[],
            login: false,
            peer: Peer::Script(|| {
                let mut steps = vec![
                    Step::Read,
                    send("354 go ahead\r\n"),
                    Step::ReadData,
                    send("452 4.3.1 out of storage\r\n"),
                ];
                steps.extend(quit());
                after_rcpt(steps)
            }),
            exit: Exit::TempFail,
            says: "the server rejected the message data with \"452 4.3.1 out of storage\"",
            lib: Lib::Same,
        },
        Case {
            name: "421 after MAIL",
            tls: "none",
            args: &[],
            login: false,
            peer: Peer::Script(|| {
                after_ehlo(vec![Step::Read, send("421 4.3.2 shutting down\r\n")])
            }),
            exit: Exit::TempFail,
            says: "the server is shutting down the connection: it answered MAIL FROM:<alice@example.com> with \"421 4.3.2 shutting down\"; try again later",
            lib: Lib::Same,
        },
        Case {
            name: "the connection drops inside DATA",
            tls: "starttls",
            args: &[],
            login: true,
            peer: Peer::Server(|c| c.faults.drop_mid_data = true),
            exit: Exit::TempFail,
            says: "the server closed the connection while waiting for the reply to the end of the message data: try again later",
            lib: Lib::Same,
        },
        Case {
            name: "no greeting (timeout)",
            tls: "starttls",
            args: quick,
            login: true,
            peer: Peer::Server(|c| stall(c, Stage::Greeting)),
            exit: Exit::TempFail,
            says: "the server sent no greeting within the timeout after the connection opened: if this port expects TLS from the first byte (like 465), use --tls implicit; otherwise try again later",
            lib: Lib::Same,
        },
        Case {
            name: "no greeting after the implicit TLS handshake (timeout)",
            tls: "implicit",
            args: quick,
            login: true,
            peer: Peer::Server(|c| stall(c, Stage::Greeting)),
            exit: Exit::TempFail,
            says: "the server did not answer in time while waiting for the reply to the greeting: try again later, or raise --timeout",
            lib: Lib::Same,
        },
        Case {
            name: "EHLO timeout",
            tls: "starttls",
            args: quick,
            login: true,
            peer: Peer::Server(|c| stall(c, Stage::Ehlo)),
            exit: Exit::TempFail,
            says: "the server did not answer in time while waiting for the reply to EHLO: try again later, or raise --timeout",
            lib: Lib::Same,
        },
        Case {
            name: "MAIL timeout",
            tls: "starttls",
            args: quick,
            login: true,
            peer: Peer::Server(|c| stall(c, Stage::Mail)),
            exit: Exit::TempFail,
            says: "the server did not answer in time while waiting for the reply to MAIL FROM: try again later, or raise --timeout",
            lib: Lib::Same,
        },
        Case {
            name: "RCPT timeout",
            tls: "starttls",
            args: quick,
            login: true,
            peer: Peer::Server(|c| stall(c, Stage::Rcpt)),
            exit: Exit::TempFail,
            says: "the server did not answer in time while waiting for the reply to RCPT TO: try again later, or raise --timeout",
            lib: Lib::Same,
        },
        Case {
            name: "DATA timeout",
            tls: "starttls",
            args: quick,
            login: true,
            peer: Peer::Server(|c| stall(c, Stage::Data)),
            exit: Exit::TempFail,
            says: "the server did not answer in time while waiting for the reply to DATA: try again later, or raise --timeout",
            lib: Lib::Same,
        },
        Case {
            name: "end of data timeout (--data-timeout)",
            tls: "starttls",
            args: &["--timeout", "5s", "--data-timeout", "500ms"],
            login: true,
            peer: Peer::Server(|c| stall(c, Stage::EndOfData)),
            exit: Exit::TempFail,
            says: "the server did not answer the end of the message data in time: raise --data-timeout, or check whether the message arrived before sending it again",
            lib: Lib::Same,
        },
        // 0 with a warning: the message was accepted, only QUIT's reply is lost.
        Case {
            name: "QUIT timeout after the message was accepted",
            tls: "starttls",
            args: quick,
            login: true,
            peer: Peer::Server(|c| stall(c, Stage::Quit)),
            exit: Exit::Sent,
            says: "warning: the server accepted the message (\"250 2.0.0 Ok: queued as 000001\") but did not answer QUIT: the message was sent, so do not send it again",
            lib: Lib::Same,
        },
        // 76: the server broke the protocol.
        Case {
            name: "a line that is not a reply",
            tls: "none",
            args: &[],
            login: false,
            peer: Peer::Script(|| after_ehlo(vec![Step::Read, send("hello there\r\n")])),
            exit: Exit::Protocol,
            says: "the server broke the SMTP protocol after MAIL FROM: the server sent a line that is not an SMTP reply: \"hello there\"",
            lib: Lib::Says(
                Exit::Protocol,
                "the server broke the SMTP protocol after MAIL FROM: response error: error Tag at: hello there",
                "lettre's reply parser words it its own way",
            ),
        },
        Case {
            name: "greeting 354",
            tls: "none",
            args: &[],
            login: false,
            peer: Peer::Script(|| whole_dialogue("354 start mail input\r\n")),
            exit: Exit::Protocol,
            says: "the server broke the SMTP protocol after the connection (greeting): it answered \"354 start mail input\", which does not fit",
            lib: Lib::Says(
                Exit::Sent,
                "",
                "lettre takes any 2xx or 3xx greeting as a welcome and sends the message \
                 (docs/upstream/lettre-positive-intermediate.md)",
            ),
        },
        Case {
            name: "greeting 221",
            tls: "none",
            args: &[],
            login: false,
            peer: Peer::Script(|| whole_dialogue("221 2.0.0 closing\r\n")),
            exit: Exit::Protocol,
            says: "the server broke the SMTP protocol after the connection (greeting): it answered \"221 2.0.0 closing\", which does not fit",
            lib: Lib::Says(
                Exit::Sent,
                "",
                "lettre takes any 2xx or 3xx greeting as a welcome and sends the message \
                 (docs/upstream/lettre-positive-intermediate.md)",
            ),
        },
        Case {
            name: "DATA answered 250 instead of 354",
            tls: "none",
            args: &[],
            login: false,
            peer: Peer::Script(|| {
                let mut steps = vec![
                    Step::Read,
                    send("250 2.0.0 ok\r\n"),
                    Step::ReadData,
                    send("250 2.0.0 queued\r\n"),
                ];
                steps.extend(quit());
                after_rcpt(steps)
            }),
            exit: Exit::Protocol,
            says: "the server broke the SMTP protocol after DATA: it answered \"250 2.0.0 ok\", which does not fit",
            lib: Lib::Says(
                Exit::Sent,
                "",
                "lettre sends the message after any 2xx or 3xx answer to DATA, although only \
                 354 invites it (docs/upstream/lettre-data-without-354.md)",
            ),
        },
        Case {
            name: "a reply line that never ends",
            tls: "none",
            args: &["--timeout", "500ms"],
            login: false,
            peer: Peer::Script(|| {
                vec![
                    Step::Repeat(b"220 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx".to_vec(), 30_000),
                    Step::Stall(Duration::from_millis(1500)),
                ]
            }),
            exit: Exit::Protocol,
            says: "the server broke the SMTP protocol after the greeting: the server sent a reply line longer than 1000 octets",
            lib: Lib::Says(
                Exit::TempFail,
                "the server sent no greeting within the timeout after the connection opened: if this port expects TLS from the first byte (like 465), use --tls implicit; otherwise try again later",
                "lettre reads a line until it ends, however long (docs/upstream/lettre-endless-line.md); \
                 lib-client's deadline ends the wait, and lettre shows no line until it ends",
            ),
        },
        // 77: authentication failed.
        Case {
            name: "AUTH 535",
            tls: "starttls",
            args: &[],
            login: true,
            peer: Peer::Server(|c| c.faults.reject_auth = true),
            exit: Exit::NoPerm,
            says: "authentication failed: the server answered \"535 5.7.8 Authentication credentials invalid\"; check the user name and password",
            lib: Lib::Same,
        },
        Case {
            name: "no AUTH mechanism in common",
            tls: "none",
            args: &["--allow-plaintext-auth"],
            login: true,
            peer: Peer::Script(|| {
                let mut script = vec![
                    send("220 mx.example ESMTP\r\n"),
                    Step::Read,
                    send("250-mx.example\r\n250 AUTH CRAM-MD5\r\n"),
                ];
                script.extend(quit());
                script
            }),
            exit: Exit::NoPerm,
            says: "the server offers no AUTH mechanism this client supports (PLAIN, LOGIN); it offers: CRAM-MD5",
            lib: Lib::NoQuit,
        },
        // 78: TLS required but unavailable, or the certificate is invalid.
        Case {
            name: "STARTTLS not offered",
            tls: "starttls",
            args: &[],
            login: true,
            peer: Peer::Server(|c| c.faults.no_starttls = true),
            exit: Exit::Config,
            says: "TLS is required but the server does not offer STARTTLS, so nothing was sent after EHLO: use a server that supports TLS (or --tls none on a network you trust)",
            lib: Lib::NoQuit,
        },
        Case {
            name: "STARTTLS 454",
            tls: "starttls",
            args: &[],
            login: false,
            peer: Peer::Script(|| {
                let mut script = vec![
                    send("220 mx.example ESMTP\r\n"),
                    Step::Read,
                    send("250-mx.example\r\n250 STARTTLS\r\n"),
                    Step::Read,
                    send("454 4.7.0 TLS not available\r\n"),
                ];
                script.extend(quit());
                script
            }),
            exit: Exit::Config,
            says: "the server refused STARTTLS with \"454 4.7.0 TLS not available\": nothing else was sent; try again later or use --tls implicit",
            lib: Lib::Same,
        },
        Case {
            name: "STARTTLS answered 354",
            tls: "starttls",
            args: &["--timeout", "500ms"],
            login: false,
            peer: Peer::Script(|| starttls_answered("354 go ahead\r\n")),
            exit: Exit::Config,
            says: "the server refused STARTTLS with \"354 go ahead\": nothing else was sent; try again later or use --tls implicit",
            lib: Lib::Says(
                Exit::Config,
                "the TLS handshake failed: the server stopped answering",
                "lettre takes any 2xx or 3xx answer to STARTTLS as yes and starts TLS \
                 (docs/upstream/lettre-positive-intermediate.md)",
            ),
        },
        Case {
            name: "STARTTLS answered 221",
            tls: "starttls",
            args: &["--timeout", "500ms"],
            login: false,
            peer: Peer::Script(|| starttls_answered("221 2.0.0 bye\r\n")),
            exit: Exit::Config,
            says: "the server refused STARTTLS with \"221 2.0.0 bye\": nothing else was sent; try again later or use --tls implicit",
            lib: Lib::Says(
                Exit::Config,
                "the TLS handshake failed: the server stopped answering",
                "lettre takes any 2xx or 3xx answer to STARTTLS as yes and starts TLS \
                 (docs/upstream/lettre-positive-intermediate.md)",
            ),
        },
        Case {
            name: "EHLO 502 while STARTTLS is required",
            tls: "starttls",
            args: &[],
            login: false,
            peer: Peer::Script(|| {
                let mut script = vec![
                    send("220 mx.example ESMTP\r\n"),
                    Step::Read,
                    send("502 5.5.1 EHLO not implemented\r\n"),
                ];
                script.extend(quit());
                script
            }),
            exit: Exit::Config,
            says: "TLS is required but the server rejected EHLO with \"502 5.5.1 EHLO not implemented\", so STARTTLS cannot be used: nothing else was sent",
            lib: Lib::Same,
        },
        Case {
            name: "certificate from an unknown CA",
            tls: "starttls",
            args: &["--no-ca"],
            login: true,
            peer: Peer::Server(|_| {}),
            exit: Exit::Config,
            says: "the server certificate is not valid for 127.0.0.1 (UnknownIssuer): if the server uses its own CA, pass it with --ca-file",
            lib: Lib::Same,
        },
        Case {
            name: "certificate for another name",
            tls: "starttls",
            args: &["--wrong-name"],
            login: true,
            peer: Peer::Server(|_| {}),
            exit: Exit::Config,
            says: "the server certificate is not valid for wrong.example (certificate not valid for name \"wrong.example\"; certificate is only valid for DnsName(\"localhost\"), IpAddress(127.0.0.1) or IpAddress(0::1)): if the server uses its own CA, pass it with --ca-file",
            lib: Lib::Same,
        },
        Case {
            name: "expired certificate",
            tls: "starttls",
            args: &[],
            login: true,
            peer: Peer::Server(|c| {
                let expired = workspace_tests::certs::generate(true);
                c.certificate = Some((expired.chain_pem, expired.key_pem));
            }),
            exit: Exit::Config,
            says: "the server certificate is not valid for 127.0.0.1 (certificate expired: verification time NOW (UNIX), but certificate is not valid after 1577836800 (AGO seconds ago)): if the server uses its own CA, pass it with --ca-file",
            lib: Lib::Same,
        },
        Case {
            name: "implicit TLS against a plaintext port",
            tls: "implicit",
            args: &["--plain-port"],
            login: false,
            peer: Peer::Server(|_| {}),
            exit: Exit::Config,
            says: "the server answered the TLS handshake in plaintext, so this port does not expect TLS from the first byte: use --tls starttls (usually port 587), or the server's implicit-TLS port (usually 465)",
            lib: Lib::Same,
        },
        Case {
            name: "STARTTLS against an implicit-TLS port",
            tls: "starttls",
            args: &["--tls-port", "--timeout", "500ms"],
            login: false,
            peer: Peer::Server(|c| c.tls_listen = Some(([127, 0, 0, 1], 0).into())),
            exit: Exit::TempFail,
            says: "the server sent no greeting within the timeout after the connection opened: if this port expects TLS from the first byte (like 465), use --tls implicit; otherwise try again later",
            lib: Lib::Same,
        },
    ]
}

/// One client's run and what its server saw.
struct Ran {
    run: ClientRun,
    /// The server saw a connection, and completed this many TLS handshakes.
    connected: bool,
    handshakes: usize,
    /// Text to put back in place of run-specific parts of the sentence.
    replace: Vec<(String, &'static str)>,
}

fn attempt(client: Client, case: &Case) -> Ran {
    let mut args: Vec<&str> = case
        .args
        .iter()
        .copied()
        .filter(|arg| {
            !matches!(
                *arg,
                "--no-ca" | "--plain-port" | "--tls-port" | "--wrong-name"
            )
        })
        .collect();
    let dir = TempDir::new("failures");
    let attachment = dir.file("gone.txt", b"soon gone\n");
    let attachment = attachment.to_string_lossy().into_owned();
    if matches!(case.peer, Peer::VanishingAttachment) {
        args.extend(["--attach", attachment.as_str()]);
    }
    let mut scenario = Scenario::new(case.tls, &args);
    if case.login {
        scenario = scenario.with_login();
    }
    let mut replace = vec![(dir.path().display().to_string(), "DIR")];
    match &case.peer {
        Peer::Server(change) => {
            let scenario = scenario.server(*change);
            let server = scenario.start_server();
            let addr = if case.args.contains(&"--plain-port") {
                server.addr()
            } else if case.args.contains(&"--tls-port") {
                server.tls_addr().unwrap_or_else(|| server.addr())
            } else if case.tls == "implicit" {
                server.tls_addr().unwrap_or_else(|| server.addr())
            } else {
                server.addr()
            };
            let trust = (!case.args.contains(&"--no-ca")).then(|| server.ca_pem());
            let mut job = job_at(&scenario, addr, trust).unwrap_or_else(|f| panic!("{f}"));
            if case.args.contains(&"--wrong-name") {
                job.tls_name = "wrong.example".into();
            }
            replace.push((job.message.expected_len().to_string(), "SIZE"));
            let run = run_job(client, &job, Some(&server));
            let sessions = server.sessions();
            let handshakes = sessions
                .iter()
                .flat_map(|session| session.transcript.events())
                .filter(|event| matches!(event, Event::TlsEstablished { .. }))
                .count();
            Ran {
                connected: !sessions.is_empty(),
                handshakes,
                run,
                replace,
            }
        }
        Peer::Script(script) => {
            let server = Scripted::start(script());
            let seen: Arc<Seen> = server.seen();
            let job = job_at(&scenario, server.addr(), None).unwrap_or_else(|f| panic!("{f}"));
            let run = run_job(client, &job, None);
            drop(server);
            Ran {
                connected: seen.connected.load(Ordering::SeqCst),
                handshakes: usize::from(seen.handshake.load(Ordering::SeqCst)),
                run,
                replace,
            }
        }
        Peer::ClosedPort => {
            let addr = closed_port();
            replace.push((addr.to_string(), "127.0.0.1:PORT"));
            let job = job_at(&scenario, addr, None).unwrap_or_else(|f| panic!("{f}"));
            Ran {
                run: run_job(client, &job, None),
                connected: false,
                handshakes: 0,
                replace,
            }
        }
        Peer::UnresolvableHost => {
            let host = format!("{}.invalid", "x".repeat(64));
            let mut job = job_at(&scenario, closed_port(), None).unwrap_or_else(|f| panic!("{f}"));
            job.endpoint = cli::Endpoint::remote(&host, 25);
            replace.push((host, "HOST"));
            Ran {
                run: run_job(client, &job, None),
                connected: false,
                handshakes: 0,
                replace,
            }
        }
        Peer::VanishingAttachment => {
            let server = scenario.start_server();
            let job = job_at(&scenario, server.addr(), None).unwrap_or_else(|f| panic!("{f}"));
            std::fs::remove_file(&attachment).unwrap_or_else(|e| panic!("{e}"));
            let run = run_job(client, &job, Some(&server));
            Ran {
                connected: !server.sessions().is_empty(),
                handshakes: 0,
                run,
                replace,
            }
        }
    }
}

/// A loopback port nothing listens on (bound, then closed).
fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
}

/// The exit code and the sentence the user reads (for a sent message with a warning, the
/// warning).
fn said(ran: &Ran) -> (Exit, String) {
    let mut sentence = match &ran.run.result {
        Ok(sent) => sent
            .warnings
            .iter()
            .map(|warning| format!("warning: {warning}"))
            .collect::<Vec<_>>()
            .join("; "),
        Err(failure) => failure.to_string(),
    };
    // rustls names the clock in an expired certificate's error. First, so that the
    // replacements below (the message size among them) cannot match inside those numbers.
    for (before, placeholder) in [("verification time ", "NOW"), ("after 1577836800 (", "AGO")] {
        if let Some(at) = sentence.find(before) {
            let start = at + before.len();
            let digits = sentence[start..]
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
            sentence.replace_range(start..start + digits, placeholder);
        }
    }
    for (from, to) in &ran.replace {
        sentence = sentence.replace(from.as_str(), to);
    }
    (ran.run.exit(), sentence)
}

/// Each `--` event must stand for something that happened: a connection the server saw, TLS
/// the server completed, a close after a connection.
fn assert_truthful(name: &str, client: &str, ran: &Ran) {
    let events = ran.run.transcript.events();
    let connected = events
        .iter()
        .filter(|event| matches!(event, Event::Connected { .. }))
        .count();
    let tls = events
        .iter()
        .filter(|event| matches!(event, Event::TlsEstablished { .. }))
        .count();
    let closed = events
        .iter()
        .filter(|event| matches!(event, Event::Closed))
        .count();
    let text = &ran.run.text;
    assert!(
        connected <= usize::from(ran.connected),
        "{name}, {client}: `connected` without a connection:\n{text}"
    );
    assert!(
        tls <= ran.handshakes,
        "{name}, {client}: `TLS established` without a completed handshake:\n{text}"
    );
    assert!(
        closed <= connected,
        "{name}, {client}: `connection closed` without a connection:\n{text}"
    );
}

#[test]
fn both_clients_fail_alike() {
    let cases = cases();
    // Each case has its own servers, so they can all run at once.
    let runs: Vec<(Ran, Ran)> = std::thread::scope(|scope| {
        let handles: Vec<_> = cases
            .iter()
            .map(|case| {
                scope.spawn(move || (attempt(Client::RAW, case), attempt(Client::Lib, case)))
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap_or_else(|_| panic!("a case panicked")))
            .collect()
    });
    let mut table = String::from(
        "| failure | exit | both clients say | where lib-client (lettre) differs |\n|---|---|---|---|\n",
    );
    let mut problems = Vec::new();
    for (case, (raw, lib)) in cases.iter().zip(&runs) {
        assert_truthful(case.name, "raw-client", raw);
        assert_truthful(case.name, "lib-client", lib);
        let mut expect = |who: &str, ran: &Ran, exit: Exit, sentence: &str| {
            let (got_exit, got) = said(ran);
            if (got_exit, got.as_str()) != (exit, sentence) {
                problems.push(format!(
                    "{}: {who}: got {} {got:?}\n    want {} {sentence:?}",
                    case.name,
                    got_exit.code(),
                    exit.code(),
                ));
            }
        };
        expect("raw-client", raw, case.exit, case.says);
        let differs = match case.lib {
            Lib::Same => {
                expect("lib-client", lib, case.exit, case.says);
                String::new()
            }
            Lib::NoQuit => {
                expect("lib-client", lib, case.exit, case.says);
                let quit = |ran: &Ran| ran.run.text.contains("C: QUIT\n");
                if !quit(raw) || quit(lib) {
                    problems.push(format!(
                        "{}: expected QUIT from raw-client only:\n{}\n{}",
                        case.name, raw.run.text, lib.run.text
                    ));
                }
                "no QUIT: lettre drops the connection after this refusal".to_owned()
            }
            Lib::Says(exit, sentence, why) => {
                expect("lib-client", lib, exit, sentence);
                if sentence.is_empty() {
                    format!("{} ({exit:?}) — {why}", exit.code())
                } else {
                    format!("{} ({exit:?}): {sentence} — {why}", exit.code())
                }
            }
        };
        table.push_str(&format!(
            "| {} | {} ({:?}) | {} | {} |\n",
            case.name,
            case.exit.code(),
            case.exit,
            case.says.replace('|', "\\|"),
            differs.replace('|', "\\|"),
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    workspace_tests::generated_block(
        "docs/failures.md",
        "failure-matrix",
        &table,
        "UPDATE_FAILURE_DOCS",
    );
}
