//! AUTH beyond PLAIN and LOGIN, both clients against test-server (whose mechanisms were
//! written without the clients' code): XOAUTH2, OAUTHBEARER and SCRAM-SHA-256 over STARTTLS
//! and implicit TLS, their error paths, `--auth` refusals, and secrets that never show.

use test_server::{Config, Faults};
use transcript::RenderOptions;
use workspace_tests::{Client, Scenario, run};

const TOKEN: &str = "ya29.lab-token-77";
const PASSWORD: &str = "s3cret-Pa55";

/// A server offering all five mechanisms, alice's password and token.
fn all_mechanisms(config: &mut Config) {
    config.oauth2_tokens = vec![("alice".into(), TOKEN.into())];
    config.auth_mechanisms = Some(
        ["SCRAM-SHA-256", "XOAUTH2", "OAUTHBEARER", "PLAIN", "LOGIN"]
            .map(String::from)
            .to_vec(),
    );
}

/// The options that log alice in with `mechanism`, the secret coming from a command.
fn login(tls: &str, mechanism: &str, secret: &str) -> Scenario {
    let source = if matches!(mechanism, "XOAUTH2" | "OAUTHBEARER") {
        "--oauth2-token-command"
    } else {
        "--password-command"
    };
    let command = format!("echo {secret}");
    Scenario::new(
        tls,
        &["--user", "alice", "--auth", mechanism, source, &command],
    )
    .server(all_mechanisms)
}

#[test]
fn raw_client_logs_in_with_every_mechanism_over_both_kinds_of_tls() {
    for tls in ["starttls", "implicit"] {
        for mechanism in ["PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER", "SCRAM-SHA-256"] {
            let secret = if mechanism.starts_with('X') || mechanism.starts_with('O') {
                TOKEN
            } else {
                PASSWORD
            };
            let run = run(Client::RAW, &login(tls, mechanism, secret));
            let what = format!("{mechanism} over {tls}");
            assert!(run.result.is_ok(), "{what}: {:?}\n{}", run.result, run.text);
            assert_eq!(run.stored.len(), 1, "{what}");
            assert_eq!(
                run.stored[0].envelope.auth_user.as_deref(),
                Some("alice"),
                "{what}"
            );
            assert!(
                run.text.contains(&format!("C: AUTH {mechanism}")),
                "{what}:\n{}",
                run.text
            );
            // Neither the secret nor anything derived from it is shown, on either side,
            // in any form: text, JSON, with --explain's notes.
            let explained = RenderOptions {
                explain: true,
                ..RenderOptions::default()
            };
            let forms = [
                run.text.clone(),
                run.server_text(),
                run.transcript.render_json(RenderOptions::default()),
                run.transcript.render_text(explained),
                run.transcript.render_json(explained),
            ];
            for text in &forms {
                assert!(!text.contains(secret), "{what}: the secret shows:\n{text}");
                assert!(!text.contains("p="), "{what}: a SCRAM proof shows:\n{text}");
                let encoded =
                    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, secret);
                assert!(!text.contains(&encoded), "{what}: the base64 secret shows");
            }
        }
    }
}

#[test]
fn a_refused_oauth_token_gets_the_rfc_7628_exchange_and_its_status_in_the_sentence() {
    for (mechanism, status) in [
        (
            "XOAUTH2",
            "status 401, scope https://mail.google.com/, schemes Bearer",
        ),
        (
            "OAUTHBEARER",
            "status invalid_token, scope https://mail.google.com/",
        ),
    ] {
        let run = run(Client::RAW, &login("starttls", mechanism, "expired-token"));
        let failure = run.result.as_ref().expect_err("refused");
        assert_eq!(failure.exit().code(), 77, "{mechanism}");
        let sentence = failure.to_string();
        assert!(sentence.contains(status), "{mechanism}: {sentence}");
        assert!(
            sentence.starts_with("the server refused the OAuth 2.0 token"),
            "{sentence}"
        );
        // The client answered the status (an empty line, or ^A for OAUTHBEARER) and the
        // server ended with 535: the 334 and the 535 are both in the dialogue.
        let server = run.server_text();
        assert!(server.contains("S: 334 ey"), "{mechanism}:\n{server}");
        assert!(server.contains("S: 535 5.7.8"), "{mechanism}:\n{server}");
        assert!(
            !server.contains("MAIL FROM"),
            "{mechanism}: nothing after a refusal"
        );
    }
}

#[test]
fn scram_refuses_a_server_that_cannot_prove_it_knows_the_password() {
    let faked = login("starttls", "SCRAM-SHA-256", PASSWORD).server(|config| {
        config.faults = Faults {
            scram_bad_server_signature: true,
            ..Faults::default()
        };
    });
    let run = run(Client::RAW, &faked);
    let failure = run.result.as_ref().expect_err("unproven");
    assert_eq!(failure.exit().code(), 77);
    assert_eq!(
        failure.to_string(),
        "the server did not prove that it knows the password (its SCRAM server signature is wrong): it may not be the server you meant, so nothing more was sent"
    );
    assert!(
        !run.server_text().contains("MAIL FROM"),
        "{}",
        run.server_text()
    );
    assert!(run.stored.is_empty());

    let malformed = login("starttls", "SCRAM-SHA-256", PASSWORD).server(|config| {
        config.faults = Faults {
            scram_bad_server_first: true,
            ..Faults::default()
        };
    });
    let run = run_raw(&malformed);
    let failure = run.result.as_ref().expect_err("malformed");
    assert_eq!(failure.exit().code(), 76, "{failure}");
    assert!(failure.to_string().contains("nonce"), "{failure}");
}

fn run_raw(scenario: &Scenario) -> workspace_tests::ClientRun {
    run(Client::RAW, scenario)
}

#[test]
fn a_wrong_scram_password_is_refused_after_the_whole_exchange() {
    let run = run_raw(&login("implicit", "SCRAM-SHA-256", "not-the-password"));
    let failure = run.result.as_ref().expect_err("refused");
    assert_eq!(failure.exit().code(), 77);
    assert!(failure.to_string().contains("535 5.7.8"), "{failure}");
    assert!(!run.text.contains("not-the-password"));
}

#[test]
fn a_mechanism_the_server_does_not_offer_is_named_with_what_it_offers() {
    for client in [Client::RAW, Client::Lib] {
        let scenario = Scenario::new(
            "starttls",
            &[
                "--user",
                "alice",
                "--auth",
                "LOGIN",
                "--password-command",
                "echo x",
            ],
        )
        .server(|config| config.auth_mechanisms = Some(vec!["PLAIN".into()]));
        let run = run(client, &scenario);
        let failure = run.result.as_ref().expect_err("not offered");
        assert_eq!(failure.exit().code(), 77, "{client:?}");
        assert_eq!(
            failure.to_string(),
            "the server does not offer AUTH LOGIN; it offers: PLAIN (choose one with --auth)",
            "{client:?}"
        );
    }
}

#[test]
fn xoauth2_is_the_same_dialogue_from_both_clients() {
    let scenario = login("starttls", "XOAUTH2", TOKEN);
    let raw = run(Client::RAW, &scenario);
    let lib = run(Client::Lib, &scenario);
    assert!(raw.result.is_ok(), "{:?}", raw.result);
    assert!(lib.result.is_ok(), "{:?}", lib.result);
    assert_eq!(raw.server_received(), lib.server_received());
    assert_eq!(raw.stored[0].data, lib.stored[0].data);
    // A token alone implies XOAUTH2, for both.
    let implied = Scenario::new(
        "starttls",
        &[
            "--user",
            "alice",
            "--oauth2-token-command",
            &format!("echo {TOKEN}"),
        ],
    )
    .server(all_mechanisms);
    for client in [Client::RAW, Client::Lib] {
        let run = run(client, &implied);
        assert!(
            run.text.contains("C: AUTH XOAUTH2 <redacted>"),
            "{client:?}:\n{}",
            run.text
        );
    }
}

/// The named difference: lettre 0.11 has XOAUTH2 only.
#[test]
fn lib_client_says_lettre_has_no_oauthbearer_or_scram() {
    for (mechanism, secret) in [("OAUTHBEARER", TOKEN), ("SCRAM-SHA-256", PASSWORD)] {
        let run = run(Client::Lib, &login("starttls", mechanism, secret));
        let failure = run.result.as_ref().expect_err("lettre cannot");
        assert_eq!(failure.exit().code(), 64);
        assert_eq!(
            failure.to_string(),
            format!(
                "lib-client cannot authenticate with {mechanism}: lettre 0.11 has no API for --auth {mechanism}; use raw-client"
            )
        );
    }
}

#[test]
fn secret_sources_that_cannot_give_a_secret_are_clear_errors() {
    let server = Scenario::new("starttls", &[]).start_server();
    let job = |extra: &[&str]| {
        workspace_tests::job(&Scenario::new("starttls", extra), &server).map(|_| ())
    };
    let failing = job(&[
        "--user",
        "alice",
        "--password-command",
        "echo locked >&2; exit 1",
    ])
    .expect_err("fails");
    assert_eq!(failing.exit().code(), 77);
    assert!(failing.to_string().contains("it said: locked"), "{failing}");
    let unset = job(&[
        "--user",
        "alice",
        "--oauth2-token-env",
        "SMTP_WORKBENCH_NO_SUCH_VAR",
    ])
    .expect_err("unset");
    assert_eq!(
        unset.to_string(),
        "the environment variable SMTP_WORKBENCH_NO_SUCH_VAR named by --oauth2-token-env is not set"
    );
    let two = job(&[
        "--user",
        "alice",
        "--password-command",
        "echo a",
        "--oauth2-token-command",
        "echo b",
    ])
    .expect_err("two sources");
    assert_eq!(
        two.to_string(),
        "--password-command and --oauth2-token-command were all given: give one source for the password or token"
    );
    assert_eq!(two.exit().code(), 64);
    let mismatch = job(&[
        "--user",
        "alice",
        "--auth",
        "SCRAM-SHA-256",
        "--oauth2-token-command",
        "echo b",
    ])
    .expect_err("a token for a password mechanism");
    assert!(
        mismatch
            .to_string()
            .starts_with("--auth SCRAM-SHA-256 takes a password"),
        "{mismatch}"
    );
}

#[test]
fn an_account_file_logs_in_with_its_secret_source() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = workspace_tests::TempDir::new("accounts");
    let file = dir.file(
        "accounts.toml",
        format!(
            "[accounts.lab]\nuser = \"alice\"\nauth = \"SCRAM-SHA-256\"\npassword_command = \"echo {PASSWORD}\"\n"
        )
        .as_bytes(),
    );
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let file = file.display().to_string();
    let scenario =
        Scenario::new("starttls", &["--account", "lab", "--config", &file]).server(all_mechanisms);
    let run = run_raw(&scenario);
    assert!(run.result.is_ok(), "{:?}", run.result);
    assert!(
        run.text.contains("C: AUTH SCRAM-SHA-256 <redacted>"),
        "{}",
        run.text
    );
    assert_eq!(run.stored[0].envelope.auth_user.as_deref(), Some("alice"));
}

/// The named difference on XOAUTH2's error path: lettre 0.11 does not answer the server's
/// 334 status (RFC 7628 §3.2.3); what lib-client reports instead, asserted.
#[test]
fn lib_client_on_a_refused_xoauth2_token() {
    let lib = run(Client::Lib, &login("starttls", "XOAUTH2", "expired-token"));
    let failure = lib.result.as_ref().expect_err("refused");
    assert_eq!(failure.exit().code(), 77, "{failure}");
    let sentence = failure.to_string();
    assert!(
        sentence.starts_with("the server refused the OAuth 2.0 token: it answered \"334 eyJ"),
        "{sentence}"
    );
    // The difference itself: lettre closes the connection at the 334 where raw-client
    // answers it and reads the 535.
    let server = lib.server_text();
    assert!(
        server.contains("-- the client closed the connection during AUTH"),
        "{server}"
    );
    assert!(!server.contains("S: 535"), "{server}");
    let raw = run_raw(&login("starttls", "XOAUTH2", "expired-token"));
    assert!(raw.server_text().contains("S: 535 5.7.8"));
}
