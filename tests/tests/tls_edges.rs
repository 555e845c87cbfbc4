//! TLS edge cases: an expired certificate, a server that only speaks TLS 1.1, and
//! capabilities that change across STARTTLS.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cli::Exit;
use workspace_tests::certs::{generate, server_config};
use workspace_tests::scripted::{Scripted, Step};
use workspace_tests::{Client, Scenario, TempDir, job_at, run_job};

#[test]
fn expired_certificate_is_refused() {
    let certificate = generate(true);
    let scenario = Scenario::new("starttls", &[]).with_login().server(|c| {
        c.certificate = Some((certificate.chain_pem.clone(), certificate.key_pem.clone()));
    });
    let server = scenario.start_server();
    let mut job = workspace_tests::job(&scenario, &server).expect("job");
    job.verify.ca_pem = Some(certificate.ca_pem.as_bytes().to_vec());
    let run = run_job(Client::RAW, &job, Some(&server));
    let failure = run.result.expect_err("refused");
    assert_eq!(failure.exit(), Exit::Config);
    assert!(failure.to_string().contains("expired"), "{failure}",);
    assert!(run.stored.is_empty());
}

/// The minimum is TLS 1.2: an `openssl s_server` limited to TLS 1.1 is refused (exit 78).
#[test]
fn tls_1_1_is_refused() {
    let certificate = generate(false);
    let dir = TempDir::new("tls11");
    let cert = dir.file("chain.pem", certificate.chain_pem.as_bytes());
    let key = dir.file("key.pem", certificate.key_pem.as_bytes());
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        probe.local_addr().expect("addr").port()
    };
    let mut server = Command::new("openssl")
        .args([
            "s_server",
            "-quiet",
            "-tls1_1",
            "-cipher",
            "DEFAULT:@SECLEVEL=0",
        ])
        .args(["-accept", &format!("127.0.0.1:{port}")])
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl is on every machine here");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(10) {
            let _ = server.kill();
            let _ = server.wait();
            panic!("openssl s_server did not start");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let scenario = Scenario::new("implicit", &[]);
    let job = job_at(
        &scenario,
        ([127, 0, 0, 1], port).into(),
        Some(&certificate.ca_pem),
    )
    .expect("job");
    let run = run_job(Client::RAW, &job, None);
    let _ = server.kill();
    let _ = server.wait();
    let failure = run.result.expect_err("refused");
    assert_eq!(failure.exit(), Exit::Config, "{failure}");
    assert!(
        failure.to_string().starts_with("the TLS handshake failed")
            && failure.to_string().contains("TLS 1.2 or 1.3"),
        "{failure}",
    );
}

/// RFC 3207 §4.2: what the server offered before TLS (AUTH PLAIN) is forgotten; only the
/// post-TLS EHLO reply (AUTH LOGIN only) counts.
#[test]
fn capabilities_learned_before_tls_are_not_reused() {
    let certificate = generate(false);
    let script = vec![
        Step::Send(b"220 mx.example ESMTP\r\n".to_vec()),
        Step::Read,
        Step::Send(
            b"250-mx.example\r\n250-AUTH PLAIN\r\n250-SMTPUTF8\r\n250 STARTTLS\r\n".to_vec(),
        ),
        Step::Read,
        Step::Send(b"220 go ahead\r\n".to_vec()),
        Step::StartTls(server_config(&certificate)),
        Step::Read,
        Step::Send(b"250-mx.example\r\n250 AUTH LOGIN\r\n".to_vec()),
        Step::Read,
        Step::Send(b"421 4.3.2 that is all we wanted to know\r\n".to_vec()),
        Step::Close,
    ];
    let server = Scripted::start(script);
    let scenario = Scenario::new("starttls", &[]).with_login();
    let job = job_at(&scenario, server.addr(), Some(&certificate.ca_pem)).expect("job");
    let run = run_job(Client::RAW, &job, None);
    assert_eq!(run.exit(), Exit::TempFail, "{}", run.text);
    let received = String::from_utf8_lossy(&server.received()).into_owned();
    assert!(
        received.ends_with("EHLO client.example\r\nAUTH LOGIN\r\n"),
        "{received:?}"
    );
    assert!(!received.contains("AUTH PLAIN"));
}
