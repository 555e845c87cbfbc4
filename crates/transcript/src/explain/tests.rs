//! The explainer on whole dialogues: every line gets its note, in context.

use super::*;

fn explained(text: &str) -> Vec<(String, Explained)> {
    let lines = parse_text(text);
    let shown: Vec<String> = text.lines().map(str::to_owned).collect();
    shown.into_iter().zip(explain(&lines)).collect()
}

fn notes_of(text: &str, line: &str) -> String {
    explained(text)
        .into_iter()
        .find(|(shown, _)| shown == line)
        .map(|(_, e)| {
            e.notes
                .iter()
                .map(Note::line)
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .unwrap_or_else(|| panic!("no line {line:?}"))
}

const DIALOGUE: &str = "\
-- connected to mx.example:587
S: 220 mx.example ESMTP ready
C: EHLO client.example
S: 250-mx.example greets client.example
S: 250-PIPELINING
S: 250-SIZE 36700160
S: 250-8BITMIME
S: 250 STARTTLS
C: STARTTLS
S: 220 2.0.0 Ready to start TLS
-- TLS established
C: EHLO client.example
S: 250-mx.example greets client.example
S: 250 AUTH PLAIN LOGIN
C: AUTH LOGIN
S: 334 VXNlcm5hbWU6
C: <redacted>
S: 334 UGFzc3dvcmQ6
C: <redacted>
S: 235 2.7.0 Authentication successful
C: MAIL FROM:<alice@example.com> BODY=8BITMIME
S: 250 2.1.0 Ok
C: RCPT TO:<bob@example.org>
S: 550 5.1.1 Mailbox unavailable
C: RCPT TO:<carol@example.org>
S: 250 2.1.5 Ok
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
C: Date: Mon, 23 Nov 2026 12:00:00 +0000
C: From: Alice <alice@example.com>
C: Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=
C: MIME-Version: 1.0
C: Content-Type: multipart/mixed;
C:  boundary=\"b1\"
C: 
C: --b1
C: Content-Type: text/plain; charset=utf-8
C: Content-Transfer-Encoding: quoted-printable
C: 
C: Hello Bob,
C: ..a line that began with a dot
C: bye
C: --b1
C: Content-Type: application/pdf
C: Content-Transfer-Encoding: base64
C: 
C: JVBERi0xLjQK
C: JVBERi0xLjQK
C: --b1--
C: .
S: 250 2.0.0 Ok: queued as 000001
C: QUIT
S: 221 2.0.0 Bye
-- connection closed
";

#[test]
fn every_line_of_a_dialogue_is_explained() {
    for (line, explained) in explained(DIALOGUE) {
        assert!(
            !explained.notes.is_empty() || explained.in_block,
            "no note for {line:?}"
        );
    }
}

#[test]
fn lines_are_explained_in_context() {
    let cases = [
        ("S: 220 mx.example ESMTP ready", "the greeting"),
        (
            "S: 250-PIPELINING",
            "PIPELINING: the client may send several commands",
        ),
        ("S: 250-SIZE 36700160", "up to 35 MiB"),
        (
            "S: 220 2.0.0 Ready to start TLS",
            "the handshake comes next",
        ),
        ("-- TLS established", "after STARTTLS is done"),
        ("S: 334 VXNlcm5hbWU6", "base64 for `Username:`"),
        ("S: 334 UGFzc3dvcmQ6", "base64 for `Password:`"),
        (
            "S: 235 2.7.0 Authentication successful",
            "answers the client's LOGIN answer: logged in",
        ),
        (
            "C: MAIL FROM:<alice@example.com> BODY=8BITMIME",
            "BODY=8BITMIME: the message contains 8-bit bytes (RFC 6152 §3)",
        ),
        (
            "S: 550 5.1.1 Mailbox unavailable",
            "5.1.1: a permanent failure",
        ),
        (
            "S: 550 5.1.1 Mailbox unavailable",
            "what to do: no such recipient",
        ),
        (
            "S: 550 5.1.1 Mailbox unavailable",
            "answers RCPT TO: refused",
        ),
        (
            "S: 354 End data with <CR><LF>.<CR><LF>",
            "send the message now",
        ),
        (
            "C: Date: Mon, 23 Nov 2026 12:00:00 +0000",
            "RFC 5322 §3.6.1",
        ),
        ("C: Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=", "encoded word"),
        ("C:  boundary=\"b1\"", "folded"),
        ("C: --b1", "a new MIME part begins"),
        (
            "C: Hello Bob,",
            "this line and the 2 after it: the body, text/plain, quoted-printable text",
        ),
        (
            "C: ..a line that began with a dot",
            "so the client added a second one",
        ),
        (
            "C: JVBERi0xLjQK",
            "the body, application/pdf, base64-encoded content (RFC 2045 §6.8)",
        ),
        ("C: --b1--", "the closing boundary"),
        ("C: .", "a line of a single dot ends the message data"),
        (
            "S: 250 2.0.0 Ok: queued as 000001",
            "the message is accepted",
        ),
        ("S: 221 2.0.0 Bye", "the server closes the connection"),
    ];
    for (line, needle) in cases {
        let notes = notes_of(DIALOGUE, line);
        assert!(notes.contains(needle), "{line}: {notes}");
    }
    let ehlo_again = explained(DIALOGUE)
        .into_iter()
        .filter(|(line, _)| line == "C: EHLO client.example")
        .map(|(_, e)| e.notes.iter().map(Note::line).collect::<String>())
        .collect::<Vec<_>>();
    assert!(!ehlo_again[0].contains("RFC 3207 §4.2"));
    assert!(ehlo_again[1].contains("RFC 3207 §4.2"), "{}", ehlo_again[1]);
    // The second base64 line is in the block the first one's note covers.
    let base64: Vec<Explained> = explained(DIALOGUE)
        .into_iter()
        .filter(|(line, _)| line == "C: JVBERi0xLjQK")
        .map(|(_, e)| e)
        .collect();
    assert!(base64[1].in_block && base64[1].notes.is_empty());
}

#[test]
fn a_pipelined_group_says_why_it_could_go_together() {
    let text = "\
S: 220 mx ESMTP
C: EHLO c
S: 250-mx
S: 250 PIPELINING
-- pipelining (RFC 2920): AUTH PLAIN, MAIL, 1 RCPT and DATA in one write
C: AUTH PLAIN <redacted>
C: MAIL FROM:<a@b>
C: RCPT TO:<c@d>
C: DATA
S: 235 2.7.0 ok
S: 250 ok
S: 250 ok
S: 354 go
C: hi
C: .
C: QUIT
S: 250 queued
S: 221 bye
";
    assert!(notes_of(text, "C: MAIL FROM:<a@b>").contains("RFC 4954 §4; RFC 2920 §3.1"));
    assert!(notes_of(text, "C: RCPT TO:<c@d>").contains("sent before the reply to MAIL FROM"));
    assert!(notes_of(text, "C: DATA").contains("DATA may end a group"));
    assert!(notes_of(text, "C: QUIT").contains("QUIT may end a pipelined group"));
    assert!(notes_of(text, "S: 235 2.7.0 ok").contains("answers AUTH PLAIN"));
    assert!(notes_of(text, "S: 354 go").contains("answers DATA"));
    assert!(notes_of(text, "S: 250 queued").contains("the message is accepted"));
    assert!(notes_of(text, "S: 221 bye").contains("answers QUIT"));
}

#[test]
fn unknown_things_are_named_as_unknown() {
    let text = "S: 220 mx\nC: FROB x\nS: 259 odd\nS: hello\n";
    assert!(notes_of(text, "C: FROB x").contains("does not know"));
    assert!(notes_of(text, "S: 259 odd").contains("not one of the codes RFC 5321 lists"));
    assert!(notes_of(text, "S: hello").contains("not an SMTP reply"));
}

#[test]
fn the_certificate_is_named_with_how_it_was_trusted() {
    let mut certificate = Certificate {
        subject: "CN=smtp.example.com".into(),
        issuer: "CN=Example CA, O=Example".into(),
        names: ["a", "b", "c", "d", "e", "f"].map(String::from).to_vec(),
        not_after: "2027-03-09".into(),
        checked: Checked::Verified {
            name: "smtp.example.com".into(),
            roots: "webpki-roots (Mozilla's list)".into(),
        },
    };
    let notes = |certificate: &Certificate| {
        let lines = [Line::Tls(None, Some(certificate))];
        explain(&lines)[0]
            .notes
            .iter()
            .map(Note::line)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        notes(&certificate)[1..],
        [
            "the server's certificate: CN=smtp.example.com (for a, b, c, d and 2 more), issued by CN=Example CA, O=Example, valid until 2027-03-09 (RFC 5280 §4.1)",
            "verified: it is in date, names smtp.example.com, and its chain leads to a root in webpki-roots (Mozilla's list) (RFC 5280 §6; RFC 6125 §6)",
        ]
    );
    certificate.names.clear();
    certificate.checked = Checked::Pinned;
    let pinned = notes(&certificate);
    assert!(
        pinned[1].contains("(for no alternative names)"),
        "{pinned:?}"
    );
    assert_eq!(
        pinned[2],
        "accepted because its SHA-256 fingerprint is the --pin-sha256 one; its issuer, names and dates were not checked"
    );
    certificate.checked = Checked::Insecure;
    assert!(notes(&certificate)[2].starts_with("NOT verified (--insecure): any certificate"));
    // A stored transcript knows nothing of the certificate, and says nothing about it.
    assert_eq!(
        notes_of("-- TLS established", "-- TLS established")
            .matches(" | ")
            .count(),
        0
    );
}

#[test]
fn a_hand_typed_dialogue_has_its_mistakes_named() {
    let typed = "\
S: 220 mx.example ESMTP ready
C: EHLO student.example
S: 250 mx.example
C: MAIL FROM: <demo@example.com>
S: 250 2.1.0 Ok
C: RCPT TO:friend@example.org
S: 501 5.5.4 Syntax error: expected RCPT TO:<address>
C: RCPT TO:<friend@example.org>
S: 250 2.1.5 Ok
C: DATA
S: 354 go ahead
C: Subject: typed
C: 
C: .not doubled
C: ..doubled
C: .
S: 250 2.0.0 Ok
";
    let space = notes_of(typed, "C: MAIL FROM: <demo@example.com>");
    assert!(
        space.contains("the space after the colon is not in the syntax"),
        "{space}"
    );
    assert!(!space.contains("inside <>"), "{space}");
    let bare = notes_of(typed, "C: RCPT TO:friend@example.org");
    assert!(bare.contains("must be written inside <>"), "{bare}");
    assert!(!notes_of(typed, "C: RCPT TO:<friend@example.org>").contains("<>;"));
    let single = notes_of(typed, "C: .not doubled");
    assert!(
        single.contains("not doubled: the server removes it, so the message holds \"not doubled\""),
        "{single}"
    );
    assert!(notes_of(typed, "C: ..doubled").contains("so the client added a second one"));
    let end = notes_of(typed, "C: ");
    assert!(end.contains("ends without Date: and From:, which"), "{end}");
    let dated = typed.replace(
        "C: Subject: typed\n",
        "C: Date: Tue, 1 Dec 2026 12:00:00 +0000\n",
    );
    let end = notes_of(&dated, "C: ");
    assert!(end.contains("ends without From:, which"), "{end}");
}

#[test]
fn advice_reads_the_whole_reply() {
    // Gmail names itself only on the last line of its 535.
    let gmail = "\
C: AUTH PLAIN <redacted>
S: 535-5.7.8 Username and Password not accepted. For more information, go to
S: 535 5.7.8  https://support.google.com/mail/?p=BadCredentials x - gsmtp
";
    let first = notes_of(
        gmail,
        "S: 535-5.7.8 Username and Password not accepted. For more information, go to",
    );
    assert!(
        first.contains("what to do: Gmail refused the password"),
        "{first}"
    );
    let last = notes_of(
        gmail,
        "S: 535 5.7.8  https://support.google.com/mail/?p=BadCredentials x - gsmtp",
    );
    assert!(!last.contains("what to do"), "{last}");
}

#[test]
fn odd_sasl_lines_are_named_for_what_they_are() {
    let odd = "\
C: AUTH
S: 501 5.5.4 Syntax error
C: AUTH XOAUTH2 <redacted>
S: 334 eyJzdGF0dXMiOiI0MDEifQ==
C: 
S: 535 5.7.8 Bad credentials
C: AUTH LOGIN
S: 334 VXNlcm5hbWU6
C: *
S: 501 5.7.0 Cancelled
";
    assert!(notes_of(odd, "C: AUTH").contains("AUTH needs the name of a mechanism"));
    assert!(notes_of(odd, "S: 501 5.5.4 Syntax error").contains("answers AUTH: refused"));
    let empty = notes_of(odd, "C: ");
    assert!(
        empty.contains("an empty answer to the XOAUTH2 challenge"),
        "{empty}"
    );
    assert!(!empty.contains("credentials"), "{empty}");
    assert!(notes_of(odd, "C: *").contains("the client cancels the login"));
}

#[test]
fn the_interactive_shells_notes_are_named() {
    let typed = "\
-- AUTH as demo with the embedded test server's demo password
C: AUTH PLAIN <redacted>
S: 235 2.7.0 Authentication successful
C: MAIL FROM:<a@example.com>
S: 250 2.1.0 Ok
C: RCPT TO:<b@example.org>
S: 250 2.1.5 Ok
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
C: Subject: hi
C: 
C: ..hidden
-- dot-stuffed: the line begins with \".\", so the shell sent a second \".\" before it
C: .
S: 250 2.0.0 Ok: queued as 000001
";
    let login = notes_of(
        typed,
        "-- AUTH as demo with the embedded test server's demo password",
    );
    assert!(login.contains("filled in the login"), "{login}");
    let stuffed = notes_of(
        typed,
        "-- dot-stuffed: the line begins with \".\", so the shell sent a second \".\" before it",
    );
    assert!(stuffed.contains("(RFC 5321 §4.5.2)"), "{stuffed}");
    // The note sits inside the message data without ending it.
    assert!(notes_of(typed, "C: .").contains("ends the message data"));
    assert!(
        notes_of(typed, "S: 250 2.0.0 Ok: queued as 000001").contains("the message is accepted")
    );
}

#[test]
fn oauth_and_scram_challenges_are_read_as_their_mechanisms_steps() {
    // base64 of {"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}
    let refused = "\
C: AUTH XOAUTH2 <redacted>
S: 334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==
C: 
S: 535 5.7.8 Authentication credentials invalid
";
    let status = notes_of(
        refused,
        "S: 334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==",
    );
    assert!(status.contains("the token is refused"), "{status}");
    assert!(status.contains("\"status\":\"401\""), "{status}");
    assert!(status.contains("(RFC 7628 §3.2.2)"), "{status}");
    // RFC 7677's example: server-first, then server-final.
    let scram = "\
C: AUTH SCRAM-SHA-256 <redacted>
S: 334 cj1yT3ByTkdmd0ViZVJXZ2JORWtxTyVodllEcFdVYTJSYVRDQWZ1eEZJbGopaE5sRiRrMCxzPVcyMlphSjBTTlk3c29Fc1VFamI2Z1E9PSxpPTQwOTY=
C: <redacted>
S: 334 dj02cnJpVFJCaTIzV3BSUi93dHVwK21NaFVaVW4vZEI1bkxUSlJzamw5NUc0PQ==
C: 
S: 235 2.7.0 Authentication successful
";
    let first = notes_of(
        scram,
        "S: 334 cj1yT3ByTkdmd0ViZVJXZ2JORWtxTyVodllEcFdVYTJSYVRDQWZ1eEZJbGopaE5sRiRrMCxzPVcyMlphSjBTTlk3c29Fc1VFamI2Z1E9PSxpPTQwOTY=",
    );
    assert!(first.contains("the server-first message"), "{first}");
    assert!(first.contains("i=4096"), "{first}");
    let last = notes_of(
        scram,
        "S: 334 dj02cnJpVFJCaTIzV3BSUi93dHVwK21NaFVaVW4vZEI1bkxUSlJzamw5NUc0PQ==",
    );
    assert!(last.contains("the server's signature"), "{last}");
}
