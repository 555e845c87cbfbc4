//! The embedded default: with no `--server`, a client sends to a test server it starts
//! on a free loopback port for this run only.

use crate::{Credentials, Exit, Failure, Job, Server, TlsMode};

/// The demo account of the embedded server.
pub const DEMO_USER: &str = "demo";
/// The demo account's password (only ever valid on the embedded server).
pub const DEMO_PASSWORD: &str = "demo-password";

/// Starts the embedded test server for a job with no `--server`, and points the job at it:
/// its address, its freshly generated certificate as the only extra root, and the demo
/// credentials unless the user gave others. Returns `None` for a job with a real server.
/// The server stops when the returned handle is dropped.
pub fn start_embedded(job: &mut Job) -> Result<Option<test_server::Server>, Failure> {
    if job.server != Server::Embedded {
        return Ok(None);
    }
    let config = test_server::Config {
        tls_listen: (job.tls == TlsMode::Implicit).then(|| ([127, 0, 0, 1], 0).into()),
        users: vec![(DEMO_USER.to_owned(), DEMO_PASSWORD.to_owned())],
        auth_without_tls: job.tls == TlsMode::None && job.allow_plaintext_auth,
        ..test_server::Config::default()
    };
    let server = test_server::Server::start(config).map_err(|e| {
        Failure::new(
            Exit::Software,
            format!("could not start the embedded test server: {e}"),
        )
    })?;
    job.embedded_addr = match job.tls {
        TlsMode::Implicit => server.tls_addr(),
        TlsMode::None | TlsMode::StartTls => Some(server.addr()),
    };
    job.verify.ca_pem = Some(server.ca_pem().as_bytes().to_vec());
    if job.credentials.is_none() && (job.tls != TlsMode::None || job.allow_plaintext_auth) {
        job.credentials = Some(Credentials {
            user: DEMO_USER.to_owned(),
            password: DEMO_PASSWORD.to_owned(),
        });
    }
    Ok(Some(server))
}
