//! SCRAM-SHA-256 (RFC 5802, RFC 7677), client side, by hand: the client proves it knows
//! the password without sending it, and the server proves it knows the password too.
//!
//! ```text
//! C: n,,n=USER,r=CNONCE                          client-first (gs2 header "n,,": no channel binding)
//! S: r=CNONCE+SNONCE,s=SALT,i=ITERATIONS         server-first
//! C: c=biws,r=CNONCE+SNONCE,p=PROOF              client-final ("biws" is base64 of "n,,")
//! S: v=SERVER-SIGNATURE                          server-final, which the client must check
//! ```
//!
//! SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, i); ClientKey = HMAC(SaltedPassword,
//! "Client Key"); StoredKey = SHA-256(ClientKey); AuthMessage = client-first-bare "," server-first
//! "," client-final-without-proof; PROOF = ClientKey XOR HMAC(StoredKey, AuthMessage);
//! SERVER-SIGNATURE = HMAC(HMAC(SaltedPassword, "Server Key"), AuthMessage). `ring` does the
//! HMAC, PBKDF2, SHA-256 and the random nonce.

use std::num::NonZeroU32;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use cli::{Failure, Violation};
use ring::rand::SecureRandom as _;
use ring::{digest, hmac, pbkdf2};

/// More iterations than this would make the client compute for too long on a server's say-so.
const MAX_ITERATIONS: u32 = 10_000_000;

/// The client's side of one exchange.
#[derive(Clone)]
pub(crate) struct Client {
    password: String,
    client_first_bare: String,
    nonce: String,
    /// The signature the server must send, once the client-final is computed.
    expected_server_signature: Option<Vec<u8>>,
    proven: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("scram::Client")
            .field("client_first_bare", &self.client_first_bare)
            .field("proven", &self.proven)
            .finish_non_exhaustive()
    }
}

/// RFC 5802 §5.1: `=` and `,` in a user name are written `=3D` and `=2C`.
pub(crate) fn sasl_name(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

fn violation(why: impl Into<String>) -> Failure {
    Failure::Protocol {
        after: "AUTH SCRAM-SHA-256".to_owned(),
        violation: Violation::Sasl(why.into()),
    }
}

impl Client {
    /// A fresh exchange with a random nonce.
    pub(crate) fn new(user: &str, password: &str) -> Result<Client, Failure> {
        let mut random = [0u8; 18];
        ring::rand::SystemRandom::new()
            .fill(&mut random)
            .map_err(|_| Failure::Internal("no randomness for the SCRAM nonce".into()))?;
        Client::with_nonce(user, password, &BASE64.encode(random))
    }

    /// An exchange with a given nonce (tests replay RFC 7677's example).
    pub(crate) fn with_nonce(user: &str, password: &str, nonce: &str) -> Result<Client, Failure> {
        let prepared = |text: &str, what: &str| {
            stringprep::saslprep(text)
                .map(|prepared| prepared.into_owned())
                .map_err(|_| Failure::AuthChoice {
                    why: format!(
                        "the {what} holds characters SCRAM cannot use (RFC 4013 SASLprep); use another mechanism with --auth"
                    ),
                })
        };
        let user = prepared(user, "user name")?;
        Ok(Client {
            password: prepared(password, "password")?,
            client_first_bare: format!("n={},r={nonce}", sasl_name(&user)),
            nonce: nonce.to_owned(),
            expected_server_signature: None,
            proven: false,
        })
    }

    /// The client-first message: the GS2 header (no channel binding) and the bare part.
    pub(crate) fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare)
    }

    /// The client-final message for the server-first message `server_first`, with the proof.
    pub(crate) fn client_final(&mut self, server_first: &str) -> Result<String, Failure> {
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for attribute in server_first.split(',') {
            match attribute.split_once('=') {
                Some(("r", value)) => nonce = Some(value),
                Some(("s", value)) => salt = Some(value),
                Some(("i", value)) => iterations = Some(value),
                Some(("m", _)) => {
                    return Err(violation(
                        "its SCRAM message asks for an extension (m=) this client does not know",
                    ));
                }
                Some(("e", value)) => {
                    return Err(violation(format!(
                        "it ended SCRAM with the error {value:?}"
                    )));
                }
                _ => {}
            }
        }
        let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
            return Err(violation(
                "its SCRAM server-first message lacks r=, s= or i=",
            ));
        };
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(violation(
                "its SCRAM nonce does not extend the one this client sent",
            ));
        }
        let salt = BASE64
            .decode(salt)
            .map_err(|_| violation("its SCRAM salt is not base64"))?;
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| violation("its SCRAM iteration count is not a number"))?;
        let iterations = NonZeroU32::new(iterations)
            .filter(|i| i.get() <= MAX_ITERATIONS)
            .ok_or_else(|| {
                violation(format!(
                    "its SCRAM iteration count {iterations} is outside 1 to {MAX_ITERATIONS}"
                ))
            })?;
        let mut salted = [0u8; 32];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            iterations,
            &salt,
            self.password.as_bytes(),
            &mut salted,
        );
        let salted_key = hmac::Key::new(hmac::HMAC_SHA256, &salted);
        let client_key = hmac::sign(&salted_key, b"Client Key");
        let stored_key = digest::digest(&digest::SHA256, client_key.as_ref());
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let client_signature = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, stored_key.as_ref()),
            auth_message.as_bytes(),
        );
        let proof: Vec<u8> = client_key
            .as_ref()
            .iter()
            .zip(client_signature.as_ref())
            .map(|(key, signature)| key ^ signature)
            .collect();
        let server_key = hmac::sign(&salted_key, b"Server Key");
        let server_signature = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, server_key.as_ref()),
            auth_message.as_bytes(),
        );
        self.expected_server_signature = Some(server_signature.as_ref().to_vec());
        Ok(format!("{without_proof},p={}", BASE64.encode(proof)))
    }

    /// Checks the server-final message: `v=` must be the signature only a server that
    /// knows the password can compute (RFC 5802 §5).
    pub(crate) fn verify_server_final(&mut self, server_final: &str) -> Result<(), Failure> {
        if let Some(error) = server_final.strip_prefix("e=") {
            return Err(Failure::ServerUnproven {
                why: format!("it ended SCRAM with the error {error:?} instead of its signature"),
            });
        }
        let Some(signature) = server_final
            .split(',')
            .find_map(|attribute| attribute.strip_prefix("v="))
        else {
            return Err(Failure::ServerUnproven {
                why: "its last SCRAM message has no server signature (v=)".into(),
            });
        };
        let given = BASE64.decode(signature).unwrap_or_default();
        let expected = self
            .expected_server_signature
            .as_deref()
            .unwrap_or_default();
        // Both sides of this comparison are the client's to know: no timing to hide.
        if expected.is_empty() || given != expected {
            return Err(Failure::ServerUnproven {
                why: "its SCRAM server signature is wrong".into(),
            });
        }
        self.proven = true;
        Ok(())
    }

    /// Whether the server has proved it knows the password.
    pub(crate) fn server_proven(&self) -> bool {
        self.proven
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 §3: the example exchange, user "user", password "pencil".
    #[test]
    fn the_rfc_7677_example_gives_its_proof_and_accepts_its_signature() {
        let mut client =
            Client::with_nonce("user", "pencil", "rOprNGfwEbeRWgbNEkqO").expect("ascii");
        assert_eq!(client.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        assert_eq!(
            client.client_final(server_first).expect("computes"),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert!(!client.server_proven());
        client
            .verify_server_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .expect("the right signature");
        assert!(client.server_proven());
    }

    #[test]
    fn a_wrong_signature_or_nonce_is_refused() {
        let mut client = Client::with_nonce("user", "pencil", "abc").expect("ascii");
        let bad_nonce = client.client_final("r=xyz123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
        assert!(bad_nonce.is_err_and(|f| f.exit().code() == 76));
        client
            .client_final("r=abc123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
            .expect("computes");
        let wrong = client
            .verify_server_final("v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
            .expect_err("wrong signature");
        assert_eq!(wrong.exit().code(), 77);
        assert!(
            wrong.to_string().contains("server signature is wrong"),
            "{wrong}"
        );
        let huge = Client::with_nonce("user", "pencil", "abc")
            .expect("ascii")
            .client_final("r=abc1,s=AAAA,i=4000000000");
        assert!(huge.is_err_and(|f| f.to_string().contains("iteration count")));
    }

    #[test]
    fn names_are_escaped() {
        assert_eq!(sasl_name("a=b,c"), "a=3Db=2Cc");
    }
}
