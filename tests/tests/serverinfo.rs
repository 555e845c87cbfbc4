//! `--serverinfo` from both binaries, against test servers started here with a certificate
//! chain of their own (so the fingerprint can be checked against its DER) and against the
//! embedded default: the greeting, the capabilities explained, the TLS session and chain,
//! the JSON document, and that nothing is ever sent.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use serde_json::Value;
use test_server::{Config, Server};
use workspace_tests::{TempDir, binary, certs};

const CLIENTS: [&str; 2] = ["raw-client", "lib-client"];

/// A test server with its own CA-signed certificate for 127.0.0.1, one user (so AUTH is
/// offered once TLS is up) and an implicit TLS listener.
struct Target {
    server: Server,
    ca_file: PathBuf,
    /// The SHA-256 of the server's certificate DER, colon-hex, worked out here with ring.
    fingerprint: String,
    dir: TempDir,
}

fn start(change: impl FnOnce(&mut Config)) -> Target {
    let dir = TempDir::new("serverinfo");
    let certificate = certs::generate(false);
    let mut config = Config {
        store: Some(dir.path().join("store")),
        users: vec![("alice".to_owned(), "s3cret-Pa55".to_owned())],
        tls_listen: Some(([127, 0, 0, 1], 0).into()),
        certificate: Some((certificate.chain_pem.clone(), certificate.key_pem.clone())),
        ..Config::default()
    };
    change(&mut config);
    let server = Server::start(config).expect("the test server starts");
    let ca_file = dir.file("ca.pem", certificate.ca_pem.as_bytes());
    let leaf = CertificateDer::pem_slice_iter(certificate.chain_pem.as_bytes())
        .next()
        .expect("the chain has a certificate")
        .expect("the chain is PEM");
    let digest = ring::digest::digest(&ring::digest::SHA256, leaf.as_ref());
    let hex: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    Target {
        server,
        ca_file,
        fingerprint: hex.join(":"),
        dir,
    }
}

/// What one run printed and how it ended.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Standard output as one JSON document (not JSON Lines: the whole of it).
    fn document(&self) -> Value {
        match serde_json::from_str(&self.stdout) {
            Ok(value) => value,
            Err(error) => panic!("stdout is not one JSON document ({error}):\n{self:?}"),
        }
    }
}

impl Target {
    /// `client --serverinfo` at the plaintext (STARTTLS) port with the CA trusted, then
    /// `args`.
    fn run(&self, client: &str, args: &[&str]) -> Run {
        let server = self.server.addr().to_string();
        let ca = self.ca_file.to_string_lossy().into_owned();
        let mut all = vec!["--server", &server, "--ca-file", &ca];
        all.extend_from_slice(args);
        self.run_bare(client, &all)
    }

    /// `client --serverinfo` with a fixed EHLO name and exactly `args` besides.
    fn run_bare(&self, client: &str, args: &[&str]) -> Run {
        run(client, args, &self.dir)
    }

    /// Nothing was sent in any of the `runs` connections: no AUTH or MAIL command reached
    /// the server, and it stored nothing.
    fn assert_nothing_sent(&self, client: &str, runs: usize) {
        let sessions = self.server.wait_for_sessions(runs, Duration::from_secs(10));
        assert_eq!(sessions.len(), runs, "{client}");
        assert!(
            self.server.messages().is_empty(),
            "{client}: the server stored a message"
        );
        for session in sessions {
            let received = String::from_utf8_lossy(&session.transcript.client_bytes()).into_owned();
            assert!(!received.contains("MAIL FROM"), "{client}: {received}");
            assert!(!received.contains("AUTH"), "{client}: {received}");
        }
    }
}

fn run(client: &str, args: &[&str], dir: &TempDir) -> Run {
    let mut command = Command::new(binary(client));
    command
        .args([
            "--serverinfo",
            "--helo-name",
            "client.example",
            "--timeout",
            "10s",
        ])
        .args(args);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SMTP_") {
            command.env_remove(name);
        }
    }
    // No account file of the user's is ever read.
    command.env("XDG_CONFIG_HOME", dir.path().join("config"));
    let output = command.output().expect("the client runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn assert_contains(run: &Run, expected: &str, client: &str) {
    assert!(
        run.stdout.contains(expected),
        "{client}: missing {expected:?} in\n{}\nstderr: {}",
        run.stdout,
        run.stderr
    );
}

/// The capability of the document's list with this keyword.
fn capability<'a>(document: &'a Value, keyword: &str) -> &'a Value {
    document["capabilities"]
        .as_array()
        .and_then(|list| list.iter().find(|c| c["keyword"] == keyword))
        .unwrap_or_else(|| panic!("no {keyword} capability in {document:#}"))
}

#[test]
fn text_describes_greeting_capabilities_tls_and_the_chain() {
    for client in CLIENTS {
        let target = start(|_| {});
        let run = target.run(client, &[]);
        assert_eq!(run.code, 0, "{client}: {run:?}");
        for expected in [
            "Greeting: 220 localhost ESMTP test-server ready\n",
            "EHLO:     250 localhost greets client.example\n",
            "TLS (STARTTLS, RFC 3207)\n",
            "Capabilities after TLS (the ones that count, RFC 3207 §4.2):\n",
            "the server accepts messages up to 35 MiB (36700160 octets) (RFC 1870 §4)",
            "  AUTH PLAIN LOGIN  ",
            "the server offers SASL login with PLAIN (user name and password in one base64 message, RFC 4616), LOGIN (",
            "  PIPELINING  ",
            "  8BITMIME  ",
            "  SMTPUTF8  ",
            "  ENHANCEDSTATUSCODES  replies carry a class.subject.detail code",
            "Offered only before TLS: STARTTLS\n",
            "Offered only after TLS: REQUIRETLS, AUTH\n",
            "  certificate:   verified: in date, names 127.0.0.1, and its chain leads to a root in webpki-roots (Mozilla's list) or the --ca-file certificates\n",
            "  chain as the server sent it, 2 certificates:\n",
            "      issuer:      CN=edge-case CA\n",
            "      names:       localhost, 127.0.0.1\n",
            "  [2] subject:     CN=edge-case CA\n",
        ] {
            assert_contains(&run, expected, client);
        }
        assert_contains(
            &run,
            &format!("      SHA-256:     {}\n", target.fingerprint),
            client,
        );
        // The description replaces the transcript.
        assert!(
            !run.stdout
                .lines()
                .any(|line| line.starts_with("C: ") || line.starts_with("S: ")),
            "{client}: {}",
            run.stdout
        );
        // Nothing to report about a stored message.
        assert!(!run.stderr.contains("stored"), "{client}: {}", run.stderr);
        target.assert_nothing_sent(client, 1);
        let sessions = target.server.sessions();
        let received = String::from_utf8_lossy(&sessions[0].after_tls.client_bytes()).into_owned();
        assert_eq!(received, "EHLO client.example\r\nQUIT\r\n", "{client}");
    }
}

#[test]
fn raw_client_shows_version_and_cipher_and_its_fingerprint_pins() {
    let target = start(|_| {});
    let run = target.run("raw-client", &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("  version:       TLS 1.3\n")
            || run.stdout.contains("  version:       TLS 1.2\n"),
        "{}",
        run.stdout
    );
    let cipher = run
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("  cipher suite:  "))
        .expect("a cipher suite line");
    assert!(cipher.starts_with("TLS"), "{cipher}");
    // The printed fingerprint, as a user would copy it.
    let printed = run
        .stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("SHA-256:"))
        .map(str::trim)
        .expect("a fingerprint line");
    assert_eq!(printed, target.fingerprint);
    // Pinned to it, without the CA: the certificate is accepted, and the description says why.
    let server = target.server.addr().to_string();
    let pinned = target.run_bare(
        "raw-client",
        &["--server", &server, "--pin-sha256", printed],
    );
    assert_eq!(pinned.code, 0, "{pinned:?}");
    assert!(
        pinned
            .stdout
            .contains("  certificate:   pinned: its SHA-256 fingerprint is the --pin-sha256 one"),
        "{}",
        pinned.stdout
    );
    // Another pin is refused, naming the real fingerprint (exit 78).
    let other = "00:".repeat(31) + "00";
    let refused = target.run_bare("raw-client", &["--server", &server, "--pin-sha256", &other]);
    assert_eq!(refused.code, 78, "{refused:?}");
    assert!(
        refused.stderr.contains(&target.fingerprint),
        "{}",
        refused.stderr
    );
}

/// lettre 0.11 keeps its rustls connection private: lib-client names what it cannot know.
#[test]
fn lib_client_says_the_version_and_cipher_are_not_known_to_lettre() {
    let target = start(|_| {});
    let run = target.run("lib-client", &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_contains(&run, "  version:       not known to lettre (", "lib-client");
    assert_contains(&run, "  cipher suite:  not known to lettre (", "lib-client");
    let json = target.run("lib-client", &["--transcript-format", "json"]);
    assert_eq!(json.code, 0, "{json:?}");
    let tls = &json.document()["tls"];
    assert_eq!(tls["version"], Value::Null, "{tls:#}");
    assert_eq!(tls["cipher"], Value::Null, "{tls:#}");
    let unknown = tls["unknown"].as_str().expect("a reason");
    assert!(unknown.starts_with("not known to lettre"), "{unknown}");
    // The chain lettre hands out is the same as raw-client's.
    assert_eq!(tls["chain"][0]["sha256"], target.fingerprint.as_str());
    // lettre cannot pin, so neither can lib-client (exit 64, before connecting).
    let server = target.server.addr().to_string();
    let pinned = target.run_bare(
        "lib-client",
        &["--server", &server, "--pin-sha256", &target.fingerprint],
    );
    assert_eq!(pinned.code, 64, "{pinned:?}");
    assert!(pinned.stderr.contains("--pin-sha256"), "{}", pinned.stderr);
    assert_eq!(
        target.server.connections(),
        2,
        "lib-client connected to pin"
    );
}

#[test]
fn json_is_one_document_with_the_same_facts() {
    for client in CLIENTS {
        let target = start(|_| {});
        let result_file = target.dir.path().join(format!("{client}-result.json"));
        let result_path = result_file.to_string_lossy().into_owned();
        let run = target.run(
            client,
            &["--transcript-format", "json", "--result-file", &result_path],
        );
        assert_eq!(run.code, 0, "{client}: {run:?}");
        let document = run.document();
        assert_eq!(document["kind"], "serverinfo", "{client}");
        assert_eq!(document["tls_mode"], "starttls", "{client}");
        assert_eq!(document["greeting"]["code"], 220, "{client}");
        assert_eq!(
            document["greeting"]["lines"][0], "localhost ESMTP test-server ready",
            "{client}"
        );
        let size = capability(&document, "SIZE");
        assert_eq!(
            size["parameters"],
            serde_json::json!(["36700160"]),
            "{client}"
        );
        assert_eq!(
            size["meaning"], "the server accepts messages up to 35 MiB (36700160 octets)",
            "{client}"
        );
        assert_eq!(size["rfc"], "RFC 1870 §4", "{client}");
        assert_eq!(size["known"], true, "{client}");
        let auth = capability(&document, "AUTH");
        assert_eq!(
            auth["parameters"],
            serde_json::json!(["PLAIN", "LOGIN"]),
            "{client}"
        );
        let before = &document["before_tls"];
        assert_eq!(
            before["only_before_tls"],
            serde_json::json!(["STARTTLS"]),
            "{client}"
        );
        assert_eq!(
            before["only_after_tls"],
            serde_json::json!(["REQUIRETLS", "AUTH"]),
            "{client}"
        );
        let tls = &document["tls"];
        assert_eq!(tls["certificate_check"]["how"], "verified", "{client}");
        assert_eq!(tls["certificate_check"]["name"], "127.0.0.1", "{client}");
        let chain = tls["chain"].as_array().expect("a chain");
        assert_eq!(chain.len(), 2, "{client}");
        assert_eq!(chain[0]["sha256"], target.fingerprint.as_str(), "{client}");
        assert_eq!(
            chain[0]["names"],
            serde_json::json!(["localhost", "127.0.0.1"])
        );
        assert_eq!(chain[1]["subject"], "CN=edge-case CA", "{client}");
        if client == "raw-client" {
            assert!(
                tls["version"]
                    .as_str()
                    .is_some_and(|v| v.starts_with("TLS 1."))
            );
            assert!(tls["cipher"].as_str().is_some_and(|c| c.starts_with("TLS")));
            assert_eq!(tls["unknown"], Value::Null);
        }
        // The one document is the output; the outcome goes to --result-file only.
        assert!(
            !run.stdout.contains("\"outcome\""),
            "{client}: {}",
            run.stdout
        );
        let outcome: Value = serde_json::from_str(
            &std::fs::read_to_string(&result_file).expect("the result file is written"),
        )
        .expect("the outcome is JSON");
        assert_eq!(outcome["status"], "described", "{client}");
        assert_eq!(outcome["exit"], 0, "{client}");
        target.assert_nothing_sent(client, 1);
    }
}

#[test]
fn tls_none_shows_no_tls_section() {
    for client in CLIENTS {
        let target = start(|config| config.users.clear());
        let run = target.run(client, &["--tls", "none"]);
        assert_eq!(run.code, 0, "{client}: {run:?}");
        assert_contains(&run, "(no TLS: --tls none, nothing is encrypted)", client);
        assert_contains(&run, "Capabilities:\n", client);
        assert_contains(
            &run,
            "  STARTTLS             the server can switch this connection to TLS (RFC 3207)\n",
            client,
        );
        for absent in [
            "TLS (STARTTLS",
            "TLS (implicit",
            "version:",
            "cipher",
            "certificate",
            "SHA-256",
            "before TLS",
        ] {
            assert!(
                !run.stdout.contains(absent),
                "{client}: {absent:?} in\n{}",
                run.stdout
            );
        }
        let json = target.run(client, &["--tls", "none", "--transcript-format", "json"]);
        assert_eq!(json.code, 0, "{client}: {json:?}");
        let document = json.document();
        assert_eq!(document["tls"], Value::Null, "{client}");
        assert_eq!(document["before_tls"], Value::Null, "{client}");
        assert_eq!(document["tls_mode"], "none", "{client}");
        assert_eq!(capability(&document, "STARTTLS")["known"], true);
        target.assert_nothing_sent(client, 2);
    }
}

#[test]
fn implicit_tls_has_one_ehlo_and_its_tls_section() {
    for client in CLIENTS {
        let target = start(|_| {});
        let tls_addr = target.server.tls_addr().expect("an implicit TLS listener");
        let server = tls_addr.to_string();
        let ca = target.ca_file.to_string_lossy().into_owned();
        let run = target.run_bare(
            client,
            &["--server", &server, "--ca-file", &ca, "--tls", "implicit"],
        );
        assert_eq!(run.code, 0, "{client}: {run:?}");
        assert_contains(&run, "TLS (implicit TLS, RFC 8314 §3)\n", client);
        assert_contains(&run, "Capabilities (over TLS):\n", client);
        assert_contains(&run, "  AUTH PLAIN LOGIN  ", client);
        assert_contains(
            &run,
            &format!("SHA-256:     {}", target.fingerprint),
            client,
        );
        assert!(
            !run.stdout.contains("before TLS"),
            "{client}: {}",
            run.stdout
        );
        assert!(
            !run.stdout.contains("  STARTTLS "),
            "{client}: {}",
            run.stdout
        );
        target.assert_nothing_sent(client, 1);
    }
}

#[test]
fn the_embedded_default_is_described_too() {
    let dir = TempDir::new("serverinfo-embedded");
    for client in CLIENTS {
        let run = run(client, &[], &dir);
        assert_eq!(run.code, 0, "{client}: {run:?}");
        for expected in [
            "Server:   the embedded test server\n",
            "Greeting: 220 localhost ESMTP test-server ready\n",
            "or the embedded server's own CA\n",
            "  [1] subject:     CN=localhost\n",
            "the server accepts messages up to 35 MiB (36700160 octets)",
            "Offered only before TLS: STARTTLS\n",
        ] {
            assert_contains(&run, expected, client);
        }
        // Nothing was sent, so there is no stored message to name.
        assert!(!run.stderr.contains("stored"), "{client}: {}", run.stderr);
    }
}

/// A failure is the usual sentence and exit code: STARTTLS required but not offered (78).
#[test]
fn a_failure_is_the_usual_sentence_and_exit_code() {
    for client in CLIENTS {
        let target = start(|config| config.faults.no_starttls = true);
        let run = target.run(client, &[]);
        assert_eq!(run.code, 78, "{client}: {run:?}");
        assert!(run.stderr.contains("STARTTLS"), "{client}: {}", run.stderr);
        // The transcript shows how far it got, as for any failed run.
        assert!(
            run.stdout.contains("C: EHLO client.example"),
            "{client}: {}",
            run.stdout
        );
        assert!(
            !run.stdout.contains("Capabilities"),
            "{client}: {}",
            run.stdout
        );
        target.assert_nothing_sent(client, 1);
    }
}
