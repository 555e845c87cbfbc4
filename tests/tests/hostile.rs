//! The hostile-server harness: every attack from docs/security.md against both clients.
//!
//! raw-client must end each attack with the expected exit code, within its timeout, and —
//! for the STARTTLS attacks — without ever sending AUTH or MAIL. lib-client (lettre 0.11.23)
//! is shown as it is. The table in docs/security.md is generated here: the test fails when
//! the file is stale; run `UPDATE_SECURITY_DOCS=1 cargo test -p workspace-tests --test hostile`
//! to rewrite it.

use std::time::Duration;

use cli::Exit;
use test_server::Config;
use workspace_tests::scripted::{Scripted, Step};
use workspace_tests::{Client, ClientRun, Scenario, job_at, run, run_job};

/// The client timeout in these tests; every attack must end well within twice this.
const TIMEOUT: &str = "1s";

/// How the attacker is set up.
enum Attacker {
    /// A scripted server.
    Script(Vec<Step>),
    /// Our test server with a fault.
    Faulty(fn(&mut Config)),
}

struct Attack {
    name: &'static str,
    /// TLS mode the client uses.
    tls: &'static str,
    login: bool,
    attacker: fn() -> Attacker,
    expected: Exit,
    /// The STARTTLS attacks: AUTH and MAIL must never be sent.
    stripping: bool,
    reference: &'static str,
}

fn send(text: &str) -> Step {
    Step::Send(text.as_bytes().to_vec())
}

const EHLO_STARTTLS: &str = "250-mx.example\r\n250-PIPELINING\r\n250 STARTTLS\r\n";
const EHLO_PLAIN: &str = "250-mx.example\r\n250 8BITMIME\r\n";

fn attacks() -> Vec<Attack> {
    vec![
        Attack {
            name: "STARTTLS not offered (stripping)",
            tls: "starttls",
            login: true,
            attacker: || Attacker::Faulty(|c| c.faults.no_starttls = true),
            expected: Exit::Config,
            stripping: true,
            reference: "RFC 3207 §4; Poddebniak et al. 2021",
        },
        Attack {
            name: "STARTTLS answered 454",
            tls: "starttls",
            login: true,
            attacker: || {
                Attacker::Script(vec![
                    send("220 mx.example ESMTP\r\n"),
                    Step::Read,
                    send(EHLO_STARTTLS),
                    Step::Read,
                    send("454 4.7.0 TLS not available\r\n"),
                    Step::Read,
                    send("221 bye\r\n"),
                ])
            },
            expected: Exit::Config,
            stripping: true,
            reference: "RFC 3207 §4",
        },
        Attack {
            name: "STARTTLS answered 502",
            tls: "starttls",
            login: true,
            attacker: || {
                Attacker::Script(vec![
                    send("220 mx.example ESMTP\r\n"),
                    Step::Read,
                    send(EHLO_STARTTLS),
                    Step::Read,
                    send("502 5.5.1 not implemented\r\n"),
                    Step::Read,
                    send("221 bye\r\n"),
                ])
            },
            expected: Exit::Config,
            stripping: true,
            reference: "RFC 3207 §4",
        },
        Attack {
            name: "TLS handshake fails after 220",
            tls: "starttls",
            login: true,
            attacker: || {
                Attacker::Script(vec![
                    send("220 mx.example ESMTP\r\n"),
                    Step::Read,
                    send(EHLO_STARTTLS),
                    Step::Read,
                    send("220 go ahead\r\n"),
                    Step::Stall(Duration::from_millis(200)),
                    send("this is not TLS\r\n"),
                    Step::Close,
                ])
            },
            expected: Exit::Config,
            stripping: true,
            reference: "RFC 3207 §4.1",
        },
        Attack {
            name: "EHLO rejected (550) while TLS is required",
            tls: "starttls",
            login: true,
            attacker: || {
                Attacker::Script(vec![
                    send("220 mx.example ESMTP\r\n"),
                    Step::Read,
                    send("550 5.7.1 no EHLO for you\r\n"),
                    Step::Read,
                    send("250 hello\r\n"),
                    Step::Read,
                    send("250 ok\r\n"),
                ])
            },
            expected: Exit::Config,
            stripping: true,
            reference: "emailjs-smtp-client #20",
        },
        Attack {
            name: "EHLO unknown (502) while TLS is required: no HELO fallback",
            tls: "starttls",
            login: true,
            attacker: || {
                Attacker::Script(vec![
                    send("220 mx.example ESMTP\r\n"),
                    Step::Read,
                    send("502 5.5.1 unknown\r\n"),
                    Step::Read,
                    send("250 hello\r\n"),
                    Step::Read,
                    send("250 ok\r\n"),
                ])
            },
            expected: Exit::Config,
            stripping: true,
            reference: "RFC 5321 §4.1.1.1, RFC 3207",
        },
        Attack {
            name: "Response injection after the STARTTLS 220",
            tls: "starttls",
            login: true,
            attacker: || {
                Attacker::Faulty(|c| {
                    c.faults.inject_after_starttls =
                        Some(b"250-evil\r\n250 AUTH LOGIN\r\n".to_vec());
                })
            },
            expected: Exit::Protocol,
            stripping: true,
            reference: "RFC 3207 §4.2; CVE-2021-22947",
        },
        Attack {
            name: "Endless multiline reply",
            tls: "none",
            login: false,
            attacker: || {
                Attacker::Script(vec![Step::Repeat(
                    b"220-spam spam spam\r\n".to_vec(),
                    100_000,
                )])
            },
            expected: Exit::Protocol,
            stripping: false,
            reference: "RFC 5321 §4.2",
        },
        Attack {
            name: "Reply line over the limit",
            tls: "none",
            login: false,
            attacker: || {
                let mut line = b"220 ".to_vec();
                line.extend(std::iter::repeat_n(b'x', 100_000));
                line.extend_from_slice(b"\r\n");
                Attacker::Script(vec![Step::Send(line)])
            },
            expected: Exit::Protocol,
            stripping: false,
            reference: "RFC 5321 §4.5.3.1.5",
        },
        Attack {
            name: "Endless 334 challenges",
            tls: "none",
            login: true,
            attacker: || {
                Attacker::Script(vec![
                    send("220 mx.example ESMTP\r\n"),
                    Step::Read,
                    send("250-mx.example\r\n250 AUTH LOGIN\r\n"),
                    Step::Read,
                    Step::Challenges(20),
                ])
            },
            expected: Exit::Protocol,
            stripping: false,
            reference: "RFC 4954 §4",
        },
        Attack {
            name: "421 instead of the greeting",
            tls: "none",
            login: false,
            attacker: || Attacker::Script(vec![send("421 4.3.2 shutting down\r\n"), Step::Close]),
            expected: Exit::TempFail,
            stripping: false,
            reference: "RFC 5321 §3.8",
        },
        Attack {
            name: "421 after EHLO",
            tls: "none",
            login: false,
            attacker: || {
                Attacker::Script(vec![
                    send("220 mx.example ESMTP\r\n"),
                    Step::Read,
                    send("421 4.3.2 shutting down\r\n"),
                    Step::Close,
                ])
            },
            expected: Exit::TempFail,
            stripping: false,
            reference: "RFC 5321 §3.8",
        },
        Attack {
            name: "421 after MAIL",
            tls: "none",
            login: false,
            attacker: || {
                Attacker::Script(vec![
                    send("220 mx.example ESMTP\r\n"),
                    Step::Read,
                    send(EHLO_PLAIN),
                    Step::Read,
                    send("421 4.3.2 shutting down\r\n"),
                    Step::Close,
                ])
            },
            expected: Exit::TempFail,
            stripping: false,
            reference: "RFC 5321 §3.8",
        },
        Attack {
            name: "421 after the end of data",
            tls: "none",
            login: false,
            attacker: || {
                Attacker::Script(vec![
                    send("220 mx.example ESMTP\r\n"),
                    Step::Read,
                    send(EHLO_PLAIN),
                    Step::Read,
                    send("250 ok\r\n"),
                    Step::Read,
                    send("250 ok\r\n"),
                    Step::Read,
                    send("354 go\r\n"),
                    Step::ReadData,
                    send("421 4.3.2 shutting down\r\n"),
                    Step::Close,
                ])
            },
            expected: Exit::TempFail,
            stripping: false,
            reference: "RFC 5321 §3.8",
        },
        Attack {
            name: "Server stalls after connect",
            tls: "none",
            login: false,
            attacker: || Attacker::Script(vec![Step::Stall(Duration::from_secs(4))]),
            expected: Exit::TempFail,
            stripping: false,
            reference: "RFC 5321 §4.5.3.2",
        },
        Attack {
            name: "Server stalls mid-reply",
            tls: "none",
            login: false,
            attacker: || {
                Attacker::Script(vec![
                    send("220-mx.example\r\n"),
                    Step::Stall(Duration::from_secs(4)),
                ])
            },
            expected: Exit::TempFail,
            stripping: false,
            reference: "RFC 5321 §4.5.3.2",
        },
        Attack {
            name: "Server trickles a reply byte by byte",
            tls: "none",
            login: false,
            attacker: || {
                Attacker::Script(vec![Step::Trickle(
                    b"220 mx.example ESMTP\r\n".to_vec(),
                    Duration::from_millis(200),
                )])
            },
            expected: Exit::TempFail,
            stripping: false,
            reference: "RFC 5321 §4.5.3.2 (slowloris)",
        },
        Attack {
            name: "Connection closed mid-reply",
            tls: "none",
            login: false,
            attacker: || Attacker::Script(vec![send("220-mx.example\r\n"), Step::Close]),
            expected: Exit::TempFail,
            stripping: false,
            reference: "RFC 5321 §4.2",
        },
        Attack {
            name: "Reply line ending in a bare LF",
            tls: "none",
            login: false,
            attacker: || {
                Attacker::Script(vec![
                    send("220 mx.example\n"),
                    Step::Stall(Duration::from_secs(3)),
                ])
            },
            expected: Exit::Protocol,
            stripping: false,
            reference: "RFC 5321 §2.3.8, §4.2",
        },
        Attack {
            name: "Reply code out of range (999)",
            tls: "none",
            login: false,
            attacker: || Attacker::Script(vec![send("999 what\r\n"), Step::Read]),
            expected: Exit::Protocol,
            stripping: false,
            reference: "RFC 5321 §4.2",
        },
        Attack {
            name: "EHLO line of only spaces",
            tls: "none",
            login: false,
            attacker: || {
                Attacker::Script(vec![
                    send("220 mx.example ESMTP\r\n"),
                    Step::Read,
                    send("250-mx.example\r\n250-   \r\n250 8BITMIME\r\n"),
                    Step::Read,
                    send("250 ok\r\n"),
                    Step::Read,
                    send("250 ok\r\n"),
                    Step::Read,
                    send("354 go\r\n"),
                    Step::ReadData,
                    send("250 queued\r\n"),
                    Step::Read,
                    send("221 bye\r\n"),
                ])
            },
            expected: Exit::Sent,
            stripping: false,
            reference: "lettre-wire.md §5 (lettre panics)",
        },
    ]
}

struct Outcome {
    exit: Exit,
    sent_auth_or_mail: bool,
    late: bool,
}

fn attack(client: Client, attack: &Attack) -> Outcome {
    let mut extra = vec!["--timeout", TIMEOUT];
    if attack.tls == "none" && attack.login {
        extra.push("--allow-plaintext-auth");
    }
    let mut scenario = Scenario::new(attack.tls, &extra);
    if attack.login {
        scenario = scenario.with_login();
    }
    let (run, received): (ClientRun, Vec<u8>) = match (attack.attacker)() {
        Attacker::Faulty(change) => {
            let run = run(client, &scenario.server(change));
            let received = run
                .session
                .as_ref()
                .map(|s| s.transcript.client_bytes())
                .unwrap_or_default();
            (run, received)
        }
        Attacker::Script(script) => {
            let server = Scripted::start(script);
            let job = match job_at(&scenario, server.addr(), None) {
                Ok(job) => job,
                Err(failure) => panic!("{}: {failure}", attack.name),
            };
            let run = run_job(client, &job, None);
            (run, server.received())
        }
    };
    let received = String::from_utf8_lossy(&received).into_owned();
    Outcome {
        exit: run.exit(),
        sent_auth_or_mail: received.contains("AUTH ") || received.contains("MAIL FROM"),
        late: run.elapsed > Duration::from_secs(2),
    }
}

fn cell(outcome: &Outcome, attack: &Attack) -> String {
    let mut text = format!("{} ({:?})", outcome.exit.code(), outcome.exit);
    if attack.stripping && outcome.sent_auth_or_mail {
        text.push_str(", sent AUTH/MAIL");
    }
    if outcome.late {
        text.push_str(", after the timeout");
    }
    text
}

#[test]
fn hostile_servers() {
    let mut table = String::from(
        "| attack | expected | raw-client | lib-client (lettre 0.11.23) | reference |\n|---|---|---|---|---|\n",
    );
    let rows = attacks();
    // Each attack has its own servers, so they can all run at once.
    let outcomes: Vec<(Outcome, Outcome)> = std::thread::scope(|scope| {
        let handles: Vec<_> = rows
            .iter()
            .map(|row| scope.spawn(move || (attack(Client::RAW, row), attack(Client::Lib, row))))
            .collect();
        handles
            .into_iter()
            .map(|handle| match handle.join() {
                Ok(pair) => pair,
                Err(_) => panic!("an attack thread panicked"),
            })
            .collect()
    });
    for (attack_row, (raw, lib)) in rows.iter().zip(outcomes) {
        assert_eq!(
            raw.exit, attack_row.expected,
            "raw-client, {}",
            attack_row.name
        );
        assert!(
            !raw.late,
            "raw-client, {}: not within the timeout",
            attack_row.name
        );
        if attack_row.stripping {
            assert!(
                !raw.sent_auth_or_mail,
                "raw-client, {}: sent AUTH or MAIL",
                attack_row.name
            );
        }
        table.push_str(&format!(
            "| {} | {} ({:?}) | {} | {} | {} |\n",
            attack_row.name,
            attack_row.expected.code(),
            attack_row.expected,
            cell(&raw, attack_row),
            cell(&lib, attack_row),
            attack_row.reference,
        ));
    }
    workspace_tests::generated_block(
        "docs/security.md",
        "attack-table",
        &table,
        "UPDATE_SECURITY_DOCS",
    );
}

/// A temporary AUTH failure (454, RFC 4954 §6) is exit 75 for both clients, and neither error
/// sentence repeats the AUTH PLAIN initial response (found by interop against Postfix).
#[test]
fn auth_454_error_sentences_carry_no_secret() {
    use base64::Engine as _;
    let payload = base64::engine::general_purpose::STANDARD.encode("\0alice\0s3cret-Pa55");
    for client in [Client::RAW, Client::Lib] {
        let server = Scripted::start(vec![
            send("220 mx.example ESMTP\r\n"),
            Step::Read,
            send("250-mx.example\r\n250 AUTH PLAIN LOGIN\r\n"),
            Step::Read,
            send("454 4.7.0 Temporary authentication failure\r\n"),
            Step::Read,
            send("221 bye\r\n"),
        ]);
        let scenario = Scenario::new("none", &["--allow-plaintext-auth"]).with_login();
        let job = job_at(&scenario, server.addr(), None).expect("job");
        let run = run_job(client, &job, None);
        let failure = run.result.expect_err("AUTH failed");
        assert_eq!(failure.exit(), Exit::TempFail, "{client:?}: {failure}",);
        assert_eq!(
            failure.to_string(),
            "the server rejected AUTH PLAIN with \"454 4.7.0 Temporary authentication failure\""
        );
        assert!(!failure.to_string().contains(&payload));
        assert!(!run.text.contains(&payload), "{client:?} transcript");
        assert!(
            String::from_utf8_lossy(&server.received()).contains(&payload),
            "it was sent"
        );
    }
}
