//! The embedded default: with no `--server`, a client binary sends to a test server it starts
//! on a free loopback port for this run only, and removes the server's store at exit unless
//! `--keep`.

use std::path::PathBuf;

use crate::{Credentials, DEMO_PASSWORD, DEMO_USER, Endpoint, Failure, Job, Plan, TlsMode};

/// The embedded test server of one run. Dropping it stops the server, which without `--keep`
/// removes its store directory.
#[derive(Debug)]
pub struct Embedded {
    server: test_server::Server,
    store: PathBuf,
    keep: bool,
}

/// Starts the embedded test server for a plan with no `--server` and returns the job pointed
/// at it: its address, its freshly generated certificate as the only extra root, and the demo
/// credentials unless the user gave others.
///
/// With `--tls none` the server asks for no login (so the plaintext dialogue works as it is),
/// unless `--allow-plaintext-auth` asks to see AUTH over plaintext too.
pub fn start(mut plan: Plan) -> Result<(Job, Embedded), Failure> {
    let plaintext = plan.tls == TlsMode::None;
    let login = !plaintext || plan.allow_plaintext_auth || plan.credentials.is_some();
    let config = test_server::Config {
        tls_listen: (plan.tls == TlsMode::Implicit).then(|| ([127, 0, 0, 1], 0).into()),
        users: if login {
            vec![(DEMO_USER.to_owned(), DEMO_PASSWORD.to_owned())]
        } else {
            Vec::new()
        },
        auth_without_tls: plaintext && plan.allow_plaintext_auth,
        remove_store_on_drop: !plan.keep,
        ..test_server::Config::default()
    };
    let server = test_server::Server::start(config).map_err(|e| Failure::EmbeddedStart {
        reason: e.to_string(),
    })?;
    let addr = match plan.tls {
        TlsMode::Implicit => server.tls_addr(),
        TlsMode::None | TlsMode::StartTls => Some(server.addr()),
    };
    let embedded = Embedded {
        store: server.store_dir().to_path_buf(),
        keep: plan.keep,
        server,
    };
    let Some(addr) = addr else {
        return Err(Failure::Internal(
            "the embedded test server has no implicit TLS listener".into(),
        ));
    };
    plan.verify.ca_pem = Some(embedded.server.ca_pem().as_bytes().to_vec());
    if plan.credentials.is_none() && login {
        plan.credentials = Some(Credentials {
            user: DEMO_USER.to_owned(),
            password: DEMO_PASSWORD.to_owned(),
            mechanism: None,
        });
    }
    Ok((plan.into_job(Endpoint::embedded(addr)), embedded))
}

impl Embedded {
    /// After a successful send: one line saying where the message went (its path with
    /// `--keep`), or the failure if the server stored nothing.
    pub fn report(&self) -> Result<String, Failure> {
        let sessions = self
            .server
            .wait_for_sessions(1, std::time::Duration::from_secs(5));
        let id = sessions
            .iter()
            .flat_map(|session| &session.message_ids)
            .next()
            .ok_or(Failure::EmbeddedStoredNothing)?;
        Ok(if self.keep {
            format!(
                "the embedded test server stored the message as {}",
                self.store.join(format!("{id}.eml")).display()
            )
        } else {
            format!(
                "the embedded test server stored the message as {id}; its store is removed at exit (add --keep to keep it)"
            )
        })
    }

    /// After a dialogue typed by hand (`raw-client --interactive`), which may have sent any
    /// number of messages: one line saying what the server stored, or `None` for nothing.
    pub fn report_stored(&self) -> Option<String> {
        let sessions = self
            .server
            .wait_for_sessions(1, std::time::Duration::from_secs(5));
        let ids: Vec<&str> = sessions
            .iter()
            .flat_map(|session| &session.message_ids)
            .map(String::as_str)
            .collect();
        let (first, rest) = ids.split_first()?;
        let stored = if rest.is_empty() {
            format!("the embedded test server stored the message as {first}")
        } else {
            format!(
                "the embedded test server stored {} messages, {}",
                ids.len(),
                ids.join(", ")
            )
        };
        Some(if self.keep {
            format!("{stored}, in {}", self.store.display())
        } else {
            format!("{stored}; its store is removed at exit (add --keep to keep it)")
        })
    }

    /// With `--keep`: where the store stays, for the user to look at.
    pub fn kept_store(&self) -> Option<&std::path::Path> {
        self.keep.then_some(self.store.as_path())
    }
}
