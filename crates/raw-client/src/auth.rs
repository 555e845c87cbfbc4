//! The SASL mechanisms (RFC 4422) as SMTP AUTH carries them (RFC 4954 §4): the first
//! command, and the answer to each `334` challenge. Pure functions; the dialogue in
//! [`crate::session`] sends what they return.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use cli::{AuthChoice, Credentials, Failure, Violation};

use crate::command::{Command, Extensions};
use crate::reply::Reply;

mod scram;

/// A mechanism this client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mechanism {
    /// RFC 4616: one message, `authzid NUL authcid NUL password`, sent as the initial
    /// response, so it completes in one round trip.
    Plain,
    /// The LOGIN mechanism (draft-murchison-sasl-login): the server asks for the user name,
    /// then the password, each in a `334` challenge.
    Login,
    /// Google's and Microsoft's OAuth 2.0 mechanism: `user=U ^A auth=Bearer T ^A ^A`.
    Xoauth2,
    /// RFC 7628: the same bearer token behind a GS2 header, with the host and port.
    Oauthbearer,
    /// RFC 5802 with SHA-256 (RFC 7677): a proof of the password, never the password.
    ScramSha256,
}

impl Mechanism {
    /// lettre's choice, so the default dialogues match: PLAIN when offered, else LOGIN.
    pub(crate) fn choose(extensions: &Extensions) -> Option<Mechanism> {
        if extensions.offers_auth("PLAIN") {
            Some(Mechanism::Plain)
        } else if extensions.offers_auth("LOGIN") {
            Some(Mechanism::Login)
        } else {
            None
        }
    }

    /// `--auth`'s choice.
    pub(crate) fn from_choice(choice: AuthChoice) -> Mechanism {
        match choice {
            AuthChoice::Plain => Mechanism::Plain,
            AuthChoice::Login => Mechanism::Login,
            AuthChoice::Xoauth2 => Mechanism::Xoauth2,
            AuthChoice::Oauthbearer => Mechanism::Oauthbearer,
            AuthChoice::ScramSha256 => Mechanism::ScramSha256,
        }
    }

    /// The mechanism's name in EHLO and AUTH.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::Xoauth2 => "XOAUTH2",
            Mechanism::Oauthbearer => "OAUTHBEARER",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
        }
    }

    /// The name in the AUTH command and in errors: `AUTH PLAIN`.
    pub(crate) fn command_name(self) -> &'static str {
        match self {
            Mechanism::Plain => "AUTH PLAIN",
            Mechanism::Login => "AUTH LOGIN",
            Mechanism::Xoauth2 => "AUTH XOAUTH2",
            Mechanism::Oauthbearer => "AUTH OAUTHBEARER",
            Mechanism::ScramSha256 => "AUTH SCRAM-SHA-256",
        }
    }

    /// Whether AUTH may lead a pipelined group (RFC 4954 §4): only with an initial response
    /// for a mechanism that finishes in one round trip without a security layer.
    pub(crate) fn completes_in_one_round_trip(self) -> bool {
        self == Mechanism::Plain
    }

    /// The AUTH command line: `AUTH PLAIN <base64("" NUL user NUL password)>` (RFC 4616 §2),
    /// or `AUTH LOGIN`. (The other mechanisms start through [`Exchange::start`].)
    pub(crate) fn start(self, credentials: &Credentials) -> Result<Vec<u8>, Failure> {
        Ok(Exchange::start(self, credentials, "", 0)?.1)
    }

    /// The answer to challenge number `step` of PLAIN or LOGIN, which need no memory of
    /// earlier steps (the shell's use).
    pub(crate) fn respond(self, credentials: &Credentials, step: u8) -> Result<Vec<u8>, Failure> {
        let mut exchange = Exchange {
            mechanism: self,
            step,
            scram: None,
            oauth_error: None,
        };
        exchange.respond(credentials, "")
    }

    fn protocol(self, violation: Violation) -> Failure {
        Failure::Protocol {
            after: self.command_name().to_owned(),
            violation,
        }
    }
}

/// One AUTH exchange in progress: the mechanism, how many challenges were answered, and
/// what the mechanism must remember between steps.
#[derive(Debug, Clone)]
pub(crate) struct Exchange {
    pub(crate) mechanism: Mechanism,
    step: u8,
    scram: Option<scram::Client>,
    /// The error status an OAuth 2.0 server sent in its `334` (RFC 7628 §3.2.2), decoded.
    oauth_error: Option<String>,
}

impl Exchange {
    /// The first command of the exchange, and the exchange. `host` and `port` are what
    /// OAUTHBEARER names (RFC 7628 §3.1).
    pub(crate) fn start(
        mechanism: Mechanism,
        credentials: &Credentials,
        host: &str,
        port: u16,
    ) -> Result<(Exchange, Vec<u8>), Failure> {
        let (user, secret) = (&credentials.user, &credentials.password);
        let mut exchange = Exchange {
            mechanism,
            step: 0,
            scram: None,
            oauth_error: None,
        };
        let initial = match mechanism {
            Mechanism::Plain => Some(format!("\0{user}\0{secret}")),
            Mechanism::Login => None,
            Mechanism::Xoauth2 => Some(format!("user={user}\x01auth=Bearer {secret}\x01\x01")),
            Mechanism::Oauthbearer => Some(format!(
                "n,a={},\x01host={host}\x01port={port}\x01auth=Bearer {secret}\x01\x01",
                scram::sasl_name(user)
            )),
            Mechanism::ScramSha256 => {
                let client = scram::Client::new(user, secret)?;
                let first = client.client_first();
                exchange.scram = Some(client);
                Some(first)
            }
        };
        let response = initial.map(|message| BASE64.encode(message));
        let line = Command::Auth {
            mechanism: mechanism.name(),
            initial_response: response.as_deref(),
        }
        .encode()?;
        Ok((exchange, line))
    }

    /// The answer to a `334` challenge whose text (base64) is `challenge`. A challenge the
    /// mechanism has no answer for is the server's protocol error: a server cannot keep the
    /// client in an endless `334` loop.
    pub(crate) fn respond(
        &mut self,
        credentials: &Credentials,
        challenge: &str,
    ) -> Result<Vec<u8>, Failure> {
        let step = self.step;
        self.step = self.step.saturating_add(1);
        let mechanism = self.mechanism;
        let answer = match (mechanism, step) {
            (Mechanism::Login, 0) => BASE64.encode(&credentials.user),
            (Mechanism::Login, 1) => BASE64.encode(&credentials.password),
            (Mechanism::Login, _) => return Err(mechanism.protocol(Violation::TooManyChallenges)),
            (Mechanism::Plain, _) => return Err(mechanism.protocol(Violation::UnexpectedChallenge)),
            // RFC 7628 §3.2.3: the error status comes in a 334; the client answers (an
            // empty line for XOAUTH2, a lone ^A for OAUTHBEARER) and the server then fails.
            (Mechanism::Xoauth2 | Mechanism::Oauthbearer, 0) => {
                self.oauth_error = Some(oauth_status(challenge));
                match mechanism {
                    Mechanism::Xoauth2 => String::new(),
                    _ => BASE64.encode("\x01"),
                }
            }
            (Mechanism::Xoauth2 | Mechanism::Oauthbearer, _) => {
                return Err(mechanism.protocol(Violation::TooManyChallenges));
            }
            (Mechanism::ScramSha256, _) => {
                let decoded = BASE64
                    .decode(challenge.trim())
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .ok_or_else(|| scram_violation("its challenge is not base64 text"))?;
                let client = self
                    .scram
                    .as_mut()
                    .ok_or_else(|| Failure::Internal("SCRAM without its state".into()))?;
                match step {
                    0 => BASE64.encode(client.client_final(&decoded)?),
                    1 => {
                        client.verify_server_final(&decoded)?;
                        String::new()
                    }
                    _ => return Err(mechanism.protocol(Violation::TooManyChallenges)),
                }
            }
        };
        Command::AuthResponse(&answer).encode()
    }

    /// The final reply: `235` is success (for SCRAM only once the server has proved it
    /// knows the password); a 5xx is a refused password or token.
    pub(crate) fn finish(&self, reply: Reply) -> Result<(), Failure> {
        if reply.code == 235
            && let Some(client) = &self.scram
            && !client.server_proven()
        {
            return Err(Failure::ServerUnproven {
                why: "it accepted the login without sending its server signature".into(),
            });
        }
        match (self.mechanism, reply.code) {
            (Mechanism::Xoauth2 | Mechanism::Oauthbearer, 500..=599) => {
                Err(Failure::TokenRejected {
                    status: self
                        .oauth_error
                        .as_ref()
                        .map(|status| format!(" ({status})"))
                        .unwrap_or_default(),
                    reply: reply.into(),
                })
            }
            _ => crate::session::auth_result(reply, self.mechanism),
        }
    }
}

fn scram_violation(why: &str) -> Failure {
    Mechanism::ScramSha256.protocol(Violation::Sasl(why.to_owned()))
}

/// The JSON error status of an OAuth 2.0 `334` (RFC 7628 §3.2.2), as a short phrase:
/// `status 401, scope https://mail.google.com/`; what does not decode is said so.
fn oauth_status(challenge: &str) -> String {
    let json = BASE64
        .decode(challenge.trim())
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok());
    let Some(serde_json::Value::Object(fields)) = json else {
        return "its error status did not decode as base64 JSON".to_owned();
    };
    let mut parts = Vec::new();
    for key in ["status", "scope", "schemes"] {
        if let Some(value) = fields.get(key).and_then(serde_json::Value::as_str) {
            parts.push(format!("{key} {value}"));
        }
    }
    if parts.is_empty() {
        "an error status without a status field".to_owned()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Credentials {
        Credentials {
            user: "alice".into(),
            password: "hunter2".into(),
            mechanism: None,
        }
    }

    #[test]
    fn plain_sends_everything_at_once() {
        let line = Mechanism::Plain.start(&alice()).expect("encodes");
        // base64("\0alice\0hunter2")
        assert_eq!(line, b"AUTH PLAIN AGFsaWNlAGh1bnRlcjI=\r\n");
        assert!(matches!(
            Mechanism::Plain.respond(&alice(), 0),
            Err(Failure::Protocol {
                violation: Violation::UnexpectedChallenge,
                ..
            })
        ));
    }

    #[test]
    fn login_answers_two_challenges_then_refuses_a_third() {
        let mechanism = Mechanism::Login;
        assert_eq!(
            mechanism.start(&alice()).expect("encodes"),
            b"AUTH LOGIN\r\n"
        );
        assert_eq!(
            mechanism.respond(&alice(), 0).expect("user"),
            b"YWxpY2U=\r\n"
        );
        assert_eq!(
            mechanism.respond(&alice(), 1).expect("password"),
            b"aHVudGVyMg==\r\n"
        );
        let third = mechanism.respond(&alice(), 2).expect_err("no third answer");
        assert_eq!(
            third.to_string(),
            "the server broke the SMTP protocol after AUTH LOGIN: it asked for more than a user name and a password"
        );
    }
}
