//! XOAUTH2, OAUTHBEARER (RFC 7628) and SCRAM-SHA-256 (RFC 5802, RFC 7677) over STARTTLS and
//! implicit TLS: every success and error path, the offered list, the SCRAM faults and what
//! the stored transcripts keep of the secrets. The SCRAM client is computed here with ring,
//! independently of the server's code.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::{digest, hmac, pbkdf2};
use test_server::{Config, Faults, Server};

use crate::support::{Client, Harness, b64, start};

const USER: &str = "alice@example.com";
const PASSWORD: &str = "pencil-s3cret";
const TOKEN: &str = "ya29.a0AfH6SMBx-valid-token";

/// A server with one password user and one token, both transports, and `list` offered.
fn server_with(list: Option<&[&str]>, faults: Faults) -> Harness {
    start(Config {
        tls_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        users: vec![(USER.into(), PASSWORD.into())],
        oauth2_tokens: vec![(USER.into(), TOKEN.into())],
        auth_mechanisms: list.map(|names| names.iter().map(|n| (*n).to_owned()).collect()),
        faults,
        ..Config::default()
    })
}

fn every_mechanism() -> Harness {
    server_with(
        Some(&["PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER", "SCRAM-SHA-256"]),
        Faults::default(),
    )
}

/// The two ways to TLS: STARTTLS on the plaintext listener, and the implicit TLS listener.
#[derive(Debug, Clone, Copy)]
enum Transport {
    StartTls,
    Implicit,
}

const TRANSPORTS: [Transport; 2] = [Transport::StartTls, Transport::Implicit];

/// Connects over `transport` and sends EHLO (after TLS); returns the client and the EHLO
/// reply.
fn connect(server: &Server, transport: Transport) -> (Client, String) {
    let mut c = match transport {
        Transport::StartTls => {
            let mut c = Client::connect(server.addr());
            c.expect("EHLO me", "250-");
            c.starttls(server.ca_pem())
        }
        Transport::Implicit => {
            let addr = server.tls_addr().expect("implicit TLS listener");
            Client::connect_tls(addr, server.ca_pem(), "localhost")
        }
    };
    let ehlo = c.expect("EHLO me", "250-");
    (c, ehlo)
}

fn decode(text: &str) -> String {
    let bytes = STANDARD
        .decode(text)
        .unwrap_or_else(|e| panic!("{text:?}: {e}"));
    String::from_utf8(bytes).expect("UTF-8")
}

/// The JSON of a `334` error status.
fn status(reply: &str) -> serde_json::Value {
    let encoded = reply
        .strip_prefix("334 ")
        .unwrap_or_else(|| panic!("a 334 challenge, got {reply:?}"));
    serde_json::from_str(&decode(encoded)).expect("JSON status")
}

fn xoauth2(user: &str, token: &str) -> String {
    b64(format!("user={user}\x01auth=Bearer {token}\x01\x01").as_bytes())
}

fn oauthbearer(user: &str, token: &str) -> String {
    b64(
        format!("n,a={user},\x01host=localhost\x01port=587\x01auth=Bearer {token}\x01\x01")
            .as_bytes(),
    )
}

const INVALID: &str = "535 5.7.8 Authentication credentials invalid";
const OK: &str = "235 2.7.0 Authentication successful";
const CANCELLED: &str = "501 5.7.0 Authentication cancelled";

/// After a successful AUTH: a message goes through, stored with the user.
fn send_one(c: &mut Client) {
    let reply = c.send_message(USER, &["b@example.com"], b"Subject: s\r\n\r\nbody\r\n.\r\n");
    assert!(reply.starts_with("250 "), "{reply}");
    c.expect("QUIT", "221");
}

#[test]
fn tokens_add_xoauth2_and_oauthbearer_to_the_offer_and_require_auth() {
    let tokens_only = start(Config {
        oauth2_tokens: vec![(USER.into(), TOKEN.into())],
        ..Config::default()
    });
    let mut c = Client::connect(tokens_only.addr());
    let ehlo = c.cmd("EHLO me");
    assert!(!ehlo.contains("AUTH"), "not before TLS: {ehlo}");
    assert_eq!(
        c.cmd("MAIL FROM:<a@example.com>"),
        "530 5.7.0 Must issue a STARTTLS command first"
    );
    let mut c = c.starttls(tokens_only.ca_pem());
    let ehlo = c.cmd("EHLO me");
    assert!(ehlo.ends_with("\n250 AUTH XOAUTH2 OAUTHBEARER"), "{ehlo}");
    assert_eq!(
        c.cmd("MAIL FROM:<a@example.com>"),
        "530 5.7.0 Authentication required"
    );
    // Without password users, PLAIN and LOGIN are not offered, so not accepted.
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {}", b64(b"\0alice\0x"))),
        "504 5.5.4 Unrecognized authentication type"
    );
    assert_eq!(c.cmd(&format!("AUTH XOAUTH2 {}", xoauth2(USER, TOKEN))), OK);
    send_one(&mut c);

    let both = server_with(None, Faults::default());
    let (_, ehlo) = connect(&both, Transport::Implicit);
    assert!(
        ehlo.ends_with("\n250 AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER"),
        "{ehlo}"
    );
    // SCRAM-SHA-256 is offered only when listed.
    let (mut c, _) = connect(&both, Transport::StartTls);
    assert_eq!(
        c.cmd("AUTH SCRAM-SHA-256"),
        "504 5.5.4 Unrecognized authentication type"
    );
}

#[test]
fn auth_mechanisms_are_offered_and_accepted_exactly_as_listed() {
    let server = server_with(Some(&["scram-sha-256", "LOGIN"]), Faults::default());
    for transport in TRANSPORTS {
        let (mut c, ehlo) = connect(&server, transport);
        assert!(ehlo.ends_with("\n250 AUTH SCRAM-SHA-256 LOGIN"), "{ehlo}");
        for refused in [
            format!(
                "AUTH PLAIN {}",
                b64(format!("\0{USER}\0{PASSWORD}").as_bytes())
            ),
            format!("AUTH XOAUTH2 {}", xoauth2(USER, TOKEN)),
            format!("AUTH OAUTHBEARER {}", oauthbearer(USER, TOKEN)),
        ] {
            assert_eq!(
                c.cmd(&refused),
                "504 5.5.4 Unrecognized authentication type"
            );
        }
        assert_eq!(c.cmd("AUTH login"), "334 VXNlcm5hbWU6");
        assert_eq!(c.cmd(&b64(USER.as_bytes())), "334 UGFzc3dvcmQ6");
        assert_eq!(c.cmd(&b64(PASSWORD.as_bytes())), OK);
    }
    let reversed = server_with(
        Some(&["OAUTHBEARER", "PLAIN", "XOAUTH2"]),
        Faults::default(),
    );
    let (_, ehlo) = connect(&reversed, Transport::StartTls);
    assert!(
        ehlo.ends_with("\n250 AUTH OAUTHBEARER PLAIN XOAUTH2"),
        "{ehlo}"
    );
}

#[test]
fn xoauth2_accepts_a_valid_token_as_initial_response_or_after_334() {
    let server = every_mechanism();
    for transport in TRANSPORTS {
        let (mut c, _) = connect(&server, transport);
        assert_eq!(c.cmd(&format!("AUTH XOAUTH2 {}", xoauth2(USER, TOKEN))), OK);
        assert_eq!(
            c.cmd(&format!("AUTH XOAUTH2 {}", xoauth2(USER, TOKEN))),
            "503 5.5.1 Already authenticated"
        );
        send_one(&mut c);
        let (mut c, _) = connect(&server, transport);
        assert_eq!(c.cmd("AUTH XOAUTH2"), "334 ");
        assert_eq!(c.cmd(&xoauth2(USER, TOKEN)), OK);
        send_one(&mut c);
    }
    let messages = server.messages();
    assert_eq!(messages.len(), 4);
    assert!(
        messages
            .iter()
            .all(|m| m.envelope.auth_user.as_deref() == Some(USER))
    );
}

#[test]
fn xoauth2_error_path_status_then_535() {
    let server = every_mechanism();
    for transport in TRANSPORTS {
        let (mut c, _) = connect(&server, transport);
        // A wrong token, and the right token for another user.
        for (user, token) in [(USER, "expired"), ("bob@example.com", TOKEN)] {
            let reply = c.cmd(&format!("AUTH XOAUTH2 {}", xoauth2(user, token)));
            let json = status(&reply);
            assert_eq!(
                json,
                serde_json::json!({
                    "status": "401",
                    "schemes": "Bearer",
                    "scope": "https://mail.google.com/"
                })
            );
            assert_eq!(
                decode(&reply[4..]),
                r#"{"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}"#
            );
            assert_eq!(c.cmd(""), INVALID);
        }
        // Anything else after the status is read too, then 535; "*" cancels.
        let reply = c.cmd(&format!("AUTH XOAUTH2 {}", xoauth2(USER, "nope")));
        assert!(reply.starts_with("334 "), "{reply}");
        assert_eq!(c.cmd(&b64(b"something")), INVALID);
        c.expect(&format!("AUTH XOAUTH2 {}", xoauth2(USER, "nope")), "334 ");
        assert_eq!(c.cmd("*"), CANCELLED);
        // After the empty 334 the error path is the same.
        assert_eq!(c.cmd("AUTH XOAUTH2"), "334 ");
        c.expect(&xoauth2(USER, "nope"), "334 eyJ");
        assert_eq!(c.cmd(""), INVALID);
        assert_eq!(
            c.cmd("MAIL FROM:<a@example.com>"),
            "530 5.7.0 Authentication required"
        );
        // Still able to authenticate after all that.
        assert_eq!(c.cmd(&format!("AUTH XOAUTH2 {}", xoauth2(USER, TOKEN))), OK);
    }
}

#[test]
fn xoauth2_malformed_responses_and_cancel() {
    let server = every_mechanism();
    let (mut c, _) = connect(&server, Transport::StartTls);
    for (payload, why) in [
        (
            format!("user={USER}\x01auth=Bearer {TOKEN}\x01"),
            "it must end with two \\x01 (^A^A)",
        ),
        (
            format!("user={USER}\x01\x01"),
            "there is no auth=Bearer field",
        ),
        (
            format!("user={USER}\x01auth=Basic {TOKEN}\x01\x01"),
            "auth= must use the Bearer scheme",
        ),
        (
            format!("\0{USER}\0{PASSWORD}"),
            "it must end with two \\x01 (^A^A)",
        ),
    ] {
        assert_eq!(
            c.cmd(&format!("AUTH XOAUTH2 {}", b64(payload.as_bytes()))),
            format!("501 5.5.2 Malformed XOAUTH2 response: {why}")
        );
    }
    assert_eq!(
        c.cmd("AUTH XOAUTH2 !!!"),
        "501 5.5.2 Cannot decode base64 response"
    );
    assert_eq!(c.cmd("AUTH XOAUTH2"), "334 ");
    assert_eq!(c.cmd("*"), CANCELLED);
    assert_eq!(c.cmd(&format!("AUTH XOAUTH2 {}", xoauth2(USER, TOKEN))), OK);
}

#[test]
fn oauthbearer_accepts_a_valid_token() {
    let server = every_mechanism();
    for transport in TRANSPORTS {
        let (mut c, _) = connect(&server, transport);
        assert_eq!(
            c.cmd(&format!("AUTH OAUTHBEARER {}", oauthbearer(USER, TOKEN))),
            OK
        );
        send_one(&mut c);
        // After an empty 334, without host and port, with an escaped user name.
        let (mut c, _) = connect(&server, transport);
        assert_eq!(c.cmd("AUTH OAUTHBEARER"), "334 ");
        let minimal = format!("n,a={USER},\x01auth=Bearer {TOKEN}\x01\x01");
        assert_eq!(c.cmd(&b64(minimal.as_bytes())), OK);
        send_one(&mut c);
    }
    let escaped = start(Config {
        oauth2_tokens: vec![("a,b=c".into(), TOKEN.into())],
        ..Config::default()
    });
    let mut c = Client::connect(escaped.addr());
    c.expect("EHLO me", "250");
    let mut c = c.starttls(escaped.ca_pem());
    c.expect("EHLO me", "250");
    assert_eq!(
        c.cmd(&format!(
            "AUTH OAUTHBEARER {}",
            oauthbearer("a=2Cb=3Dc", TOKEN)
        )),
        OK
    );
    send_one(&mut c);
    assert_eq!(
        escaped.messages()[0].envelope.auth_user.as_deref(),
        Some("a,b=c")
    );
}

#[test]
fn oauthbearer_error_path_rfc_7628() {
    let server = every_mechanism();
    let expected = serde_json::json!({
        "status": "invalid_token",
        "scope": "https://mail.google.com/",
        "openid-configuration": "https://localhost/.well-known/openid-configuration"
    });
    for transport in TRANSPORTS {
        let (mut c, _) = connect(&server, transport);
        let no_user = b64(format!("n,,\x01auth=Bearer {TOKEN}\x01\x01").as_bytes());
        for response in [
            oauthbearer(USER, "revoked"),
            oauthbearer("bob@example.com", TOKEN),
            no_user,
        ] {
            let reply = c.cmd(&format!("AUTH OAUTHBEARER {response}"));
            assert_eq!(status(&reply), expected, "{reply}");
            // RFC 7628 §3.2.3: the client answers with a single %x01.
            assert_eq!(c.cmd("AQ=="), INVALID);
        }
        assert_eq!(
            decode(&c.cmd(&format!("AUTH OAUTHBEARER {}", oauthbearer(USER, "x")))[4..]),
            r#"{"status":"invalid_token","scope":"https://mail.google.com/","openid-configuration":"https://localhost/.well-known/openid-configuration"}"#
        );
        // Anything else is read as the answer too.
        assert_eq!(c.cmd(""), INVALID);
        c.expect(
            &format!("AUTH OAUTHBEARER {}", oauthbearer(USER, "x")),
            "334 ",
        );
        assert_eq!(c.cmd("*"), CANCELLED);
        assert_eq!(
            c.cmd(&format!("AUTH OAUTHBEARER {}", oauthbearer(USER, TOKEN))),
            OK
        );
    }
}

#[test]
fn oauthbearer_malformed_responses() {
    let server = every_mechanism();
    let (mut c, _) = connect(&server, Transport::Implicit);
    for (payload, why) in [
        (
            format!("n,a={USER},auth=Bearer {TOKEN}\x01\x01"),
            "the GS2 header must end with \",\"",
        ),
        (
            format!("n,a={USER},\x01host=localhost\x01\x01"),
            "there is no auth=Bearer field",
        ),
        (
            format!("p=tls-unique,a={USER},\x01auth=Bearer {TOKEN}\x01\x01"),
            "channel binding (p=) is not supported by OAUTHBEARER",
        ),
        (
            format!("user={USER}\x01auth=Bearer {TOKEN}\x01\x01"),
            "this is the XOAUTH2 format; OAUTHBEARER starts with a GS2 header such as n,a=USER,",
        ),
        (
            format!("n,a={USER},"),
            "the GS2 header must be followed by \\x01",
        ),
    ] {
        assert_eq!(
            c.cmd(&format!("AUTH OAUTHBEARER {}", b64(payload.as_bytes()))),
            format!("501 5.5.2 Malformed OAUTHBEARER response: {why}")
        );
    }
    assert_eq!(c.cmd("AUTH OAUTHBEARER"), "334 ");
    assert_eq!(c.cmd("*"), CANCELLED);
}

#[test]
fn reject_auth_sends_tokens_down_the_error_path_and_fails_scram() {
    let server = server_with(
        Some(&["XOAUTH2", "OAUTHBEARER", "SCRAM-SHA-256"]),
        Faults {
            reject_auth: true,
            ..Faults::default()
        },
    );
    let (mut c, _) = connect(&server, Transport::StartTls);
    c.expect(&format!("AUTH XOAUTH2 {}", xoauth2(USER, TOKEN)), "334 eyJ");
    assert_eq!(c.cmd(""), INVALID);
    c.expect(
        &format!("AUTH OAUTHBEARER {}", oauthbearer(USER, TOKEN)),
        "334 eyJ",
    );
    assert_eq!(c.cmd("AQ=="), INVALID);
    // A right SCRAM proof, refused all the same.
    let (first, bare) = scram_start(&mut c, USER, "n0nce", true);
    let exchange = scram(PASSWORD, &bare, &first, "biws");
    assert_eq!(c.cmd(&b64(exchange.client_final.as_bytes())), INVALID);
}

// SCRAM-SHA-256, computed here from RFC 5802 §3 with ring.

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
        .as_ref()
        .to_vec()
}

/// What a SCRAM client learns from the server-first message.
struct ServerFirst {
    text: String,
    nonce: String,
    salt: Vec<u8>,
    iterations: u32,
}

fn server_first(reply: &str) -> ServerFirst {
    let encoded = reply
        .strip_prefix("334 ")
        .unwrap_or_else(|| panic!("server-first in a 334, got {reply:?}"));
    let text = decode(encoded);
    let fields: Vec<&str> = text.split(',').collect();
    assert_eq!(fields.len(), 3, "{text}");
    let field = |i: usize, key: &str| {
        fields[i]
            .strip_prefix(key)
            .unwrap_or_else(|| panic!("{key} in {text}"))
            .to_owned()
    };
    ServerFirst {
        nonce: field(0, "r="),
        salt: STANDARD.decode(field(1, "s=")).expect("salt in base64"),
        iterations: field(2, "i=").parse().expect("iteration count"),
        text: text.clone(),
    }
}

/// A client's side of one exchange: the client-final message and the server signature
/// it must then get.
struct Scram {
    client_final: String,
    server_signature: Vec<u8>,
}

fn scram(password: &str, client_first_bare: &str, first: &ServerFirst, cbind: &str) -> Scram {
    let mut salted = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        NonZeroU32::new(first.iterations).expect("i > 0"),
        &first.salt,
        password.as_bytes(),
        &mut salted,
    );
    let client_key = hmac_sha256(&salted, b"Client Key");
    let stored_key = digest::digest(&digest::SHA256, &client_key);
    let without_proof = format!("c={cbind},r={}", first.nonce);
    let auth_message = format!("{client_first_bare},{},{without_proof}", first.text);
    let signature = hmac_sha256(stored_key.as_ref(), auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(k, s)| k ^ s)
        .collect();
    let server_key = hmac_sha256(&salted, b"Server Key");
    Scram {
        client_final: format!("{without_proof},p={}", STANDARD.encode(proof)),
        server_signature: hmac_sha256(&server_key, auth_message.as_bytes()),
    }
}

/// Starts a SCRAM exchange for `user` with `nonce` (as the initial response or after an
/// empty 334); returns the server-first message and the client-first-bare.
fn scram_start(c: &mut Client, user: &str, nonce: &str, initial: bool) -> (ServerFirst, String) {
    let bare = format!("n={user},r={nonce}");
    let client_first = b64(format!("n,,{bare}").as_bytes());
    let reply = if initial {
        c.cmd(&format!("AUTH SCRAM-SHA-256 {client_first}"))
    } else {
        assert_eq!(c.cmd("AUTH SCRAM-SHA-256"), "334 ");
        c.cmd(&client_first)
    };
    (server_first(&reply), bare)
}

#[test]
fn scram_sha_256_succeeds_and_proves_the_server_knows_the_password() {
    let server = every_mechanism();
    let mut salts = Vec::new();
    let mut nonces = Vec::new();
    for transport in TRANSPORTS {
        for initial in [true, false] {
            let (mut c, _) = connect(&server, transport);
            let nonce = "fyko+d2lbbFgONRv9qkxdawL";
            let (first, bare) = scram_start(&mut c, USER, nonce, initial);
            assert!(first.nonce.starts_with(nonce), "{}", first.text);
            assert!(first.nonce.len() > nonce.len(), "a server nonce is added");
            assert_eq!(first.iterations, 4096);
            assert_eq!(first.salt.len(), 16);
            let exchange = scram(PASSWORD, &bare, &first, "biws");
            let reply = c.cmd(&b64(exchange.client_final.as_bytes()));
            let server_final = decode(reply.strip_prefix("334 ").expect("server-final in a 334"));
            assert_eq!(
                server_final,
                format!("v={}", STANDARD.encode(&exchange.server_signature))
            );
            assert_eq!(c.cmd(""), OK);
            send_one(&mut c);
            salts.push(first.salt);
            nonces.push(first.nonce);
        }
    }
    // One salt per server run; a fresh nonce per exchange.
    assert!(salts.windows(2).all(|w| w[0] == w[1]), "one salt per run");
    nonces.sort();
    nonces.dedup();
    assert_eq!(nonces.len(), 4, "a fresh server nonce each time");
    assert!(
        server
            .messages()
            .iter()
            .all(|m| m.envelope.auth_user.as_deref() == Some(USER))
    );
    let other = every_mechanism();
    let (mut c, _) = connect(&other, Transport::StartTls);
    let (first, _) = scram_start(&mut c, USER, "abc", true);
    assert_ne!(first.salt, salts[0], "another run, another salt");
}

#[test]
fn scram_escaped_names_gs2_y_and_authzid() {
    let server = start(Config {
        users: vec![("a,b=c".into(), PASSWORD.into())],
        auth_mechanisms: Some(vec!["SCRAM-SHA-256".into()]),
        ..Config::default()
    });
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250");
    let mut c = c.starttls(server.ca_pem());
    let ehlo = c.cmd("EHLO me");
    assert!(ehlo.ends_with("\n250 AUTH SCRAM-SHA-256"), "{ehlo}");
    // gs2 "y" (the client could bind but thinks the server cannot), with a=: c= carries it.
    let bare = "n=a=2Cb=3Dc,r=nonce123";
    let header = "y,a=a=2Cb=3Dc,";
    let reply = c.cmd(&format!(
        "AUTH SCRAM-SHA-256 {}",
        b64(format!("{header}{bare}").as_bytes())
    ));
    let first = server_first(&reply);
    let exchange = scram(PASSWORD, bare, &first, &b64(header.as_bytes()));
    let reply = c.cmd(&b64(exchange.client_final.as_bytes()));
    assert!(reply.starts_with("334 "), "{reply}");
    assert_eq!(c.cmd("="), OK, "\"=\" is an empty response too");
    send_one(&mut c);
    assert_eq!(
        server.messages()[0].envelope.auth_user.as_deref(),
        Some("a,b=c")
    );
}

#[test]
fn scram_failures_wrong_password_unknown_user_and_protocol_errors() {
    let server = every_mechanism();
    for transport in TRANSPORTS {
        let (mut c, _) = connect(&server, transport);
        // A wrong password and an unknown user both end in 535 after the whole exchange.
        for (user, password) in [(USER, "wrong"), ("mallory@example.com", PASSWORD)] {
            let (first, bare) = scram_start(&mut c, user, "n0nce", true);
            let exchange = scram(password, &bare, &first, "biws");
            assert_eq!(c.cmd(&b64(exchange.client_final.as_bytes())), INVALID);
        }
        // c= that is not the GS2 header, r= that is not the server's nonce.
        let (first, bare) = scram_start(&mut c, USER, "n0nce", true);
        let exchange = scram(PASSWORD, &bare, &first, &b64(b"y,,"));
        assert_eq!(
            c.cmd(&b64(exchange.client_final.as_bytes())),
            "501 5.5.2 Malformed SCRAM-SHA-256 response: c= must be the base64 of the GS2 \
             header of the client-first message"
        );
        let (mut first, bare) = scram_start(&mut c, USER, "n0nce", true);
        first.nonce.push('x');
        let exchange = scram(PASSWORD, &bare, &first, "biws");
        assert_eq!(
            c.cmd(&b64(exchange.client_final.as_bytes())),
            "501 5.5.2 Malformed SCRAM-SHA-256 response: r= must be the nonce of the \
             server-first message"
        );
        // Malformed client-first messages.
        for (message, why) in [
            (
                "p=tls-server-end-point,,n=u,r=abc",
                "channel binding (p=) needs SCRAM-SHA-256-PLUS, which this server does not offer",
            ),
            (
                "n,,r=abc",
                "the client-first message must name the user with n= after the GS2 header",
            ),
            (
                "n,,n=a=b,r=abc",
                "a user name may hold \"=\" only as =2C or =3D",
            ),
            (
                "n,,n=u",
                "the user name must be followed by the client nonce r=",
            ),
        ] {
            assert_eq!(
                c.cmd(&format!("AUTH SCRAM-SHA-256 {}", b64(message.as_bytes()))),
                format!("501 5.5.2 Malformed SCRAM-SHA-256 response: {why}")
            );
        }
        // A malformed client-final message.
        scram_start(&mut c, USER, "n0nce", true);
        assert_eq!(
            c.cmd(&b64(b"c=biws,r=n0nce")),
            "501 5.5.2 Malformed SCRAM-SHA-256 response: the client-final message must end \
             with the proof p="
        );
        // Something other than an empty line after the server signature.
        let (first, bare) = scram_start(&mut c, USER, "n0nce", true);
        let exchange = scram(PASSWORD, &bare, &first, "biws");
        c.expect(&b64(exchange.client_final.as_bytes()), "334 ");
        assert_eq!(
            c.cmd(&b64(b"v=ok")),
            "501 5.5.2 Malformed SCRAM-SHA-256 response: after the server signature (v=) the \
             client sends an empty line"
        );
        assert_eq!(
            c.cmd("MAIL FROM:<a@example.com>"),
            "530 5.7.0 Authentication required"
        );
    }
}

#[test]
fn scram_cancel_at_every_step() {
    let server = every_mechanism();
    let (mut c, _) = connect(&server, Transport::StartTls);
    assert_eq!(c.cmd("AUTH SCRAM-SHA-256"), "334 ");
    assert_eq!(c.cmd("*"), CANCELLED);
    scram_start(&mut c, USER, "n0nce", true);
    assert_eq!(c.cmd("*"), CANCELLED);
    let (first, bare) = scram_start(&mut c, USER, "n0nce", false);
    let exchange = scram(PASSWORD, &bare, &first, "biws");
    c.expect(&b64(exchange.client_final.as_bytes()), "334 ");
    assert_eq!(c.cmd("*"), CANCELLED);
    // Cancelled after a valid proof: not authenticated.
    assert_eq!(
        c.cmd("MAIL FROM:<a@example.com>"),
        "530 5.7.0 Authentication required"
    );
    let (first, bare) = scram_start(&mut c, USER, "n0nce", true);
    let exchange = scram(PASSWORD, &bare, &first, "biws");
    c.expect(&b64(exchange.client_final.as_bytes()), "334 ");
    assert_eq!(c.cmd(""), OK);
}

#[test]
fn scram_iterations_are_configurable() {
    for iterations in [1, 10_000] {
        let server = start(Config {
            users: vec![(USER.into(), PASSWORD.into())],
            auth_mechanisms: Some(vec!["SCRAM-SHA-256".into()]),
            scram_iterations: iterations,
            auth_without_tls: true,
            ..Config::default()
        });
        let mut c = Client::connect(server.addr());
        let ehlo = c.cmd("EHLO me");
        assert!(ehlo.ends_with("\n250 AUTH SCRAM-SHA-256"), "{ehlo}");
        let (first, bare) = scram_start(&mut c, USER, "abc", true);
        assert_eq!(first.iterations, iterations);
        let exchange = scram(PASSWORD, &bare, &first, "biws");
        c.expect(&b64(exchange.client_final.as_bytes()), "334 ");
        assert_eq!(c.cmd(""), OK);
    }
}

#[test]
fn scram_bad_server_signature_fault() {
    let mut faults = Faults::default();
    faults.add("scram-bad-server-signature").expect("fault");
    let server = server_with(Some(&["SCRAM-SHA-256"]), faults);
    for transport in TRANSPORTS {
        let (mut c, _) = connect(&server, transport);
        let (first, bare) = scram_start(&mut c, USER, "n0nce", true);
        let exchange = scram(PASSWORD, &bare, &first, "biws");
        let reply = c.cmd(&b64(exchange.client_final.as_bytes()));
        let server_final = decode(reply.strip_prefix("334 ").expect("334"));
        let signature = STANDARD
            .decode(server_final.strip_prefix("v=").expect("v="))
            .expect("base64 signature");
        assert_eq!(signature.len(), 32);
        assert_ne!(
            signature, exchange.server_signature,
            "the signature is wrong"
        );
        // A client that checks v= cancels; one that does not is let in.
        assert_eq!(c.cmd("*"), CANCELLED);
        let (first, bare) = scram_start(&mut c, USER, "n0nce", true);
        let exchange = scram(PASSWORD, &bare, &first, "biws");
        c.expect(&b64(exchange.client_final.as_bytes()), "334 ");
        assert_eq!(c.cmd(""), OK);
    }
    let sessions = server.wait_for_sessions(2, Duration::from_secs(10));
    let text = sessions[0].transcript.render_text(Default::default());
    assert!(
        text.contains("-- sending a wrong server signature (fault scram-bad-server-signature)\n"),
        "{text}"
    );
}

#[test]
fn scram_bad_server_first_fault() {
    let mut faults = Faults::default();
    faults.add("scram-bad-server-first").expect("fault");
    let server = server_with(Some(&["SCRAM-SHA-256", "PLAIN"]), faults);
    for transport in TRANSPORTS {
        let (mut c, _) = connect(&server, transport);
        let nonce = "fyko+d2lbbFgONRv9qkxdawL";
        let (first, _) = scram_start(&mut c, USER, nonce, true);
        assert!(!first.nonce.starts_with(nonce), "{}", first.text);
        assert!(!first.nonce.is_empty());
        // The client must abort.
        assert_eq!(c.cmd("*"), CANCELLED);
        // PLAIN is unaffected.
        assert_eq!(
            c.cmd(&format!(
                "AUTH PLAIN {}",
                b64(format!("\0{USER}\0{PASSWORD}").as_bytes())
            )),
            OK
        );
    }
}

#[test]
fn tokens_and_proofs_never_reach_the_stored_transcripts() {
    let server = every_mechanism();
    let mut secrets = vec![
        TOKEN.to_owned(),
        PASSWORD.to_owned(),
        xoauth2(USER, TOKEN),
        oauthbearer(USER, TOKEN),
        xoauth2(USER, "wrong-token-123"),
        "wrong-token-123".to_owned(),
    ];
    // XOAUTH2 and OAUTHBEARER, valid and not, on one connection each.
    let (mut c, _) = connect(&server, Transport::StartTls);
    c.expect(
        &format!("AUTH XOAUTH2 {}", xoauth2(USER, "wrong-token-123")),
        "334 ",
    );
    c.expect("", "535 ");
    c.expect("AUTH XOAUTH2", "334 ");
    c.expect(&xoauth2(USER, TOKEN), "235 ");
    send_one(&mut c);
    let (mut c, _) = connect(&server, Transport::Implicit);
    c.expect(
        &format!("AUTH OAUTHBEARER {}", oauthbearer(USER, TOKEN)),
        "235 ",
    );
    send_one(&mut c);
    // SCRAM: the client-final message with its proof.
    let (mut c, _) = connect(&server, Transport::StartTls);
    let (first, bare) = scram_start(&mut c, USER, "n0nce", false);
    let exchange = scram(PASSWORD, &bare, &first, "biws");
    let proof = exchange
        .client_final
        .rsplit_once("p=")
        .map(|(_, proof)| proof.to_owned())
        .expect("p=");
    secrets.extend([proof, b64(exchange.client_final.as_bytes())]);
    c.expect(&b64(exchange.client_final.as_bytes()), "334 ");
    c.expect("", "235 ");
    send_one(&mut c);

    let sessions = server.wait_for_sessions(3, Duration::from_secs(10));
    let mut texts: Vec<String> = server
        .messages()
        .iter()
        .map(|m| {
            std::fs::read_to_string(m.path.with_extension("transcript"))
                .expect("message transcript")
        })
        .collect();
    for session in &sessions {
        let path = session
            .transcript_file
            .as_ref()
            .expect("session transcript saved");
        texts.push(std::fs::read_to_string(path).expect("session transcript"));
        texts.push(session.transcript.render_text(Default::default()));
    }
    assert_eq!(texts.len(), 9);
    for text in &texts {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "{secret} in:\n{text}");
        }
        assert!(
            text.contains("C: <redacted>\n") || text.contains(" <redacted>\n"),
            "{text}"
        );
    }
    let scram_text = &texts[2];
    assert!(
        scram_text.contains("C: AUTH SCRAM-SHA-256\n"),
        "{scram_text}"
    );
    assert_eq!(
        scram_text.matches("C: <redacted>\n").count(),
        3,
        "{scram_text}"
    );
}

#[test]
fn the_binary_refuses_what_cannot_work_with_exit_64() {
    for (args, sentence) in [
        (
            &[
                "--user",
                "a",
                "--password",
                "b",
                "--auth-mechanisms",
                "PLAIN,CRAM-MD5",
            ][..],
            "test-server: unknown AUTH mechanism \"CRAM-MD5\"; use one of PLAIN, LOGIN, \
             XOAUTH2, OAUTHBEARER, SCRAM-SHA-256\n",
        ),
        (
            &["--oauth2-token", "secret-without-user"],
            "test-server: --oauth2-token needs USER:TOKEN, a user name, a colon and the token\n",
        ),
        (
            &["--user", "a", "--password", "b", "--scram-iterations", "0"],
            "test-server: the SCRAM iteration count must be at least 1 (RFC 7677 recommends \
             4096 or more)\n",
        ),
        (
            &[
                "--user",
                "a",
                "--password",
                "b",
                "--fault",
                "scram-bad-server-first",
            ],
            "test-server: the fault scram-bad-server-first needs SCRAM-SHA-256 among the AUTH \
             mechanisms (--auth-mechanisms SCRAM-SHA-256,...), or it would change nothing\n",
        ),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_test-server"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .expect("test-server runs");
        assert_eq!(output.status.code(), Some(64), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            sentence,
            "{args:?}"
        );
        assert!(
            !String::from_utf8_lossy(&output.stderr).contains("secret-without-user"),
            "the token is never repeated"
        );
    }
}
