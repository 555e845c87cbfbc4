//! The SASL mechanisms (RFC 4422) as SMTP AUTH carries them (RFC 4954 §4): the first
//! command, and the answer to each `334` challenge. Pure functions; the dialogue in
//! [`crate::session`] sends what they return.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use cli::{Credentials, Failure, Violation};

use crate::command::{Command, Extensions};

/// A mechanism this client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mechanism {
    /// RFC 4616: one message, `authzid NUL authcid NUL password`, sent as the initial
    /// response, so it completes in one round trip.
    Plain,
    /// The LOGIN mechanism (draft-murchison-sasl-login): the server asks for the user name,
    /// then the password, each in a `334` challenge.
    Login,
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

    /// The name in the AUTH command and in errors: `AUTH PLAIN`.
    pub(crate) fn command_name(self) -> &'static str {
        match self {
            Mechanism::Plain => "AUTH PLAIN",
            Mechanism::Login => "AUTH LOGIN",
        }
    }

    /// Whether AUTH may lead a pipelined group (RFC 4954 §4): only with an initial response
    /// for a mechanism that finishes in one round trip without a security layer.
    pub(crate) fn completes_in_one_round_trip(self) -> bool {
        self == Mechanism::Plain
    }

    /// The AUTH command line: `AUTH PLAIN <base64("" NUL user NUL password)>` (RFC 4616 §2),
    /// or `AUTH LOGIN`.
    pub(crate) fn start(self, credentials: &Credentials) -> Result<Vec<u8>, Failure> {
        match self {
            Mechanism::Plain => {
                let message = format!("\0{}\0{}", credentials.user, credentials.password);
                let response = BASE64.encode(message);
                Command::Auth {
                    mechanism: "PLAIN",
                    initial_response: Some(&response),
                }
                .encode()
            }
            Mechanism::Login => Command::Auth {
                mechanism: "LOGIN",
                initial_response: None,
            }
            .encode(),
        }
    }

    /// The answer to challenge number `step` (0 for the first `334`). A challenge the
    /// mechanism has no answer for is the server's protocol error: a server cannot keep the
    /// client in an endless `334` loop.
    pub(crate) fn respond(self, credentials: &Credentials, step: u8) -> Result<Vec<u8>, Failure> {
        let secret = match (self, step) {
            (Mechanism::Login, 0) => &credentials.user,
            (Mechanism::Login, 1) => &credentials.password,
            (Mechanism::Login, _) => return Err(self.protocol(Violation::TooManyChallenges)),
            (Mechanism::Plain, _) => return Err(self.protocol(Violation::UnexpectedChallenge)),
        };
        Command::AuthResponse(&BASE64.encode(secret)).encode()
    }

    fn protocol(self, violation: Violation) -> Failure {
        Failure::Protocol {
            after: self.command_name().to_owned(),
            violation,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Credentials {
        Credentials {
            user: "alice".into(),
            password: "hunter2".into(),
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
