//! DSN's MAIL and RCPT parameters (RFC 3461), REQUIRETLS (RFC 8689) and where the
//! envelope JSON keeps them.

use test_server::{Config, StoredEnvelope, Voice};

use crate::support::{Client, default_server, start};

#[test]
fn dsn_parameters_are_checked_and_recorded() {
    let server = default_server();
    let mut c = Client::connect(server.addr());
    let ehlo = c.cmd("EHLO me");
    assert!(ehlo.contains("\n250-DSN\n"), "{ehlo}");
    c.expect(
        "MAIL FROM:<a@example.com> RET=HDRS ENVID=QQ314159+2B1 SIZE=10",
        "250 2.1.0",
    );
    c.expect(
        "RCPT TO:<b@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@example.com",
        "250 2.1.5",
    );
    c.expect("RCPT TO:<c@example.com>", "250 2.1.5");
    c.expect("RCPT TO:<d@example.com> notify=never", "250 2.1.5");
    assert!(c.data(b"x\r\n.\r\n").starts_with("250 "));
    let envelope = &server.messages()[0].envelope;
    assert_eq!(
        envelope.mail_parameters,
        ["RET=HDRS", "ENVID=QQ314159+2B1", "SIZE=10"]
    );
    assert_eq!(
        envelope.recipients,
        ["b@example.com", "c@example.com", "d@example.com"]
    );
    assert_eq!(
        envelope.rcpt_parameters,
        vec![
            vec![
                "NOTIFY=SUCCESS,FAILURE".to_owned(),
                "ORCPT=rfc822;b@example.com".to_owned()
            ],
            vec![],
            vec!["notify=never".to_owned()],
        ]
    );
    // The .json has every member, and reads back as the envelope.
    let json = std::fs::read_to_string(server.store_dir().join("000001.json")).expect("json");
    let value: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    for member in [
        "from",
        "recipients",
        "mail_parameters",
        "rcpt_parameters",
        "auth_user",
        "tls",
        "peer",
        "helo",
        "bdat",
        "chunk_sizes",
        "binarymime",
    ] {
        assert!(value.get(member).is_some(), "{member} missing in {json}");
    }
    assert_eq!(value["rcpt_parameters"][0][1], "ORCPT=rfc822;b@example.com");
    assert_eq!(value["bdat"], false);
    let parsed: StoredEnvelope = serde_json::from_str(&json).expect("an envelope");
    assert_eq!(&parsed, envelope);
}

#[test]
fn malformed_dsn_parameters_get_501() {
    let server = default_server();
    let mut c = Client::connect(server.addr());
    c.expect("EHLO me", "250-");
    for (line, reply) in [
        (
            "MAIL FROM:<a@example.com> RET=ALL",
            "501 5.5.4 RET must be FULL or HDRS",
        ),
        (
            "MAIL FROM:<a@example.com> RET",
            "501 5.5.4 RET must be FULL or HDRS",
        ),
        (
            "MAIL FROM:<a@example.com> ENVID=a+2b",
            "501 5.5.4 ENVID must be xtext of at most 100 characters (RFC 3461 4.4)",
        ),
        (
            "MAIL FROM:<a@example.com> ENVID=caf\u{e9}",
            "501 5.5.4 ENVID must be xtext of at most 100 characters (RFC 3461 4.4)",
        ),
        (
            &format!("MAIL FROM:<a@example.com> ENVID={}", "x".repeat(101)),
            "501 5.5.4 ENVID must be xtext of at most 100 characters (RFC 3461 4.4)",
        ),
        (
            "MAIL FROM:<a@example.com> RET=FULL RET=HDRS",
            "501 5.5.4 MAIL parameter RET is given twice",
        ),
        (
            "MAIL FROM:<a@example.com> REQUIRETLS=yes",
            "501 5.5.4 REQUIRETLS takes no value",
        ),
    ] {
        assert_eq!(c.cmd(line), reply, "{line}");
    }
    c.expect("MAIL FROM:<a@example.com> RET=full", "250 ");
    for (line, reply) in [
        (
            "RCPT TO:<b@example.com> NOTIFY=NEVER,SUCCESS",
            "501 5.5.4 NEVER must stand alone in NOTIFY",
        ),
        (
            "RCPT TO:<b@example.com> NOTIFY=SOMETIMES",
            "501 5.5.4 NOTIFY must be NEVER, or a list of SUCCESS, FAILURE and DELAY",
        ),
        (
            "RCPT TO:<b@example.com> NOTIFY=DELAY,DELAY",
            "501 5.5.4 NOTIFY lists a value twice",
        ),
        (
            "RCPT TO:<b@example.com> NOTIFY",
            "501 5.5.4 NOTIFY must be NEVER, or a list of SUCCESS, FAILURE and DELAY",
        ),
        (
            "RCPT TO:<b@example.com> ORCPT=b@example.com",
            "501 5.5.4 ORCPT must be an address type, \";\" and the address in xtext",
        ),
        (
            "RCPT TO:<b@example.com> ORCPT=rfc822;a+b@example.com",
            "501 5.5.4 the ORCPT address must be xtext (RFC 3461 4), \"+\" and two hex digits \
             for \"+\", \"=\" and bytes outside ! to ~",
        ),
        (
            "RCPT TO:<b@example.com> NOTIFY=NEVER NOTIFY=NEVER",
            "501 5.5.4 RCPT parameter NOTIFY is given twice",
        ),
        (
            "RCPT TO:<b@example.com> RRVS=2014-04-03T23:01:00Z",
            "555 5.5.4 RCPT parameter RRVS not recognized",
        ),
    ] {
        assert_eq!(c.cmd(line), reply, "{line}");
    }
    // A refused RCPT added no recipient.
    assert_eq!(c.cmd("DATA"), "554 5.5.1 No valid recipients");
}

/// Gmail offers no DSN, so its parameters are not recognized there.
#[test]
fn dsn_only_where_offered() {
    let server = start(Config {
        voice: Voice::Gmail,
        ..Config::default()
    });
    let mut c = Client::connect(server.addr());
    let ehlo = c.cmd("EHLO me");
    assert!(
        !ehlo.contains("DSN") && !ehlo.contains("REQUIRETLS"),
        "{ehlo}"
    );
    for (line, reply) in [
        (
            "MAIL FROM:<a@example.com> RET=HDRS",
            "555 5.5.4 MAIL parameter RET not recognized",
        ),
        (
            "MAIL FROM:<a@example.com> REQUIRETLS",
            "555 5.5.4 MAIL parameter REQUIRETLS not recognized",
        ),
        (
            "MAIL FROM:<a@example.com> BODY=BINARYMIME",
            "555 5.5.4 BODY=BINARYMIME is not offered here",
        ),
    ] {
        assert_eq!(c.cmd(line), reply, "{line}");
    }
    c.expect("MAIL FROM:<a@example.com>", "250 ");
    assert_eq!(
        c.cmd("RCPT TO:<b@example.com> NOTIFY=NEVER"),
        "555 5.5.4 RCPT parameter NOTIFY not recognized"
    );
}

/// RFC 8689 §2: REQUIRETLS is for TLS sessions only, so it is offered after STARTTLS and
/// refused with 530 5.7.10 before.
#[test]
fn requiretls_needs_tls() {
    let server = default_server();
    let mut c = Client::connect(server.addr());
    let ehlo = c.cmd("EHLO me");
    assert!(!ehlo.contains("REQUIRETLS"), "{ehlo}");
    assert_eq!(
        c.cmd("MAIL FROM:<a@example.com> REQUIRETLS"),
        "530 5.7.10 REQUIRETLS needs a TLS session: send STARTTLS first (RFC 8689 2)"
    );
    let mut c = c.starttls(server.ca_pem());
    let ehlo = c.cmd("EHLO me");
    assert!(ehlo.ends_with("\n250-DSN\n250 REQUIRETLS"), "{ehlo}");
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    c.expect("MAIL FROM:<a@example.com> REQUIRETLS", "250 2.1.0");
    c.expect("RCPT TO:<b@example.com>", "250 ");
    assert!(c.data(b"x\r\n.\r\n").starts_with("250 "));
    let envelope = &server.messages()[0].envelope;
    assert_eq!(envelope.mail_parameters, ["REQUIRETLS"]);
    assert!(envelope.tls);
}
