//! What most likely went wrong, and what to do, for the refusals people actually meet.

/// Advice for a negative reply: its code, enhanced code (if any) and text.
pub(crate) fn for_reply(code: u16, enhanced: Option<&str>, text: &str) -> Option<&'static str> {
    let text = text.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|word| text.contains(word));
    Some(match (code, enhanced.unwrap_or("")) {
        (530, _) if has(&["starttls", "tls"]) => {
            "the server wants TLS before this command: use --tls starttls (or implicit on port 465)"
        }
        (530, _) => {
            "the server wants a login before it takes mail: give --user (and a password source)"
        }
        (535, _) if has(&["application-specific", "app password", "gmail", "google"]) => {
            "Gmail refused the password: with 2-Step Verification on, make an app password and use it, or log in with OAuth 2.0"
        }
        (535, "5.7.139") | (535, "5.7.3")
            if has(&[
                "basic authentication",
                "smtpclientauthentication",
                "disabled for the tenant",
            ]) =>
        {
            "Microsoft 365 refused Basic authentication: SMTP AUTH is off for the tenant or the mailbox; log in with OAuth 2.0, or have an administrator enable SMTP AUTH"
        }
        (550, "5.7.30") | (550, "5.7.139") | (535, "5.7.30")
            if has(&[
                "basic authentication",
                "client submission",
                "smtpclientauthentication",
            ]) =>
        {
            "Microsoft 365 turned Basic authentication for SMTP AUTH off: use OAuth 2.0 (XOAUTH2), or have the tenant enable SMTP AUTH for this mailbox"
        }
        (535, _) => {
            "the user name or password is wrong; for Gmail use an app password (it needs 2-Step Verification), for Microsoft 365 check that SMTP AUTH is enabled"
        }
        (534, _) => {
            "the server wants a stronger way to log in than this mechanism: Gmail says this when the account needs an app password or OAuth 2.0"
        }
        (538, _) => "this login mechanism needs TLS first: use --tls starttls or implicit",
        (454, _) if has(&["tls"]) => "the server cannot do TLS now: try again later",
        (454, _) => "the server cannot check credentials now: try again later",
        (550, "5.7.1") | (554, "5.7.1") if has(&["relay"]) => {
            "relaying denied: this server delivers only for its own users or domains; log in (--user) or use your own provider's submission server"
        }
        (550, "5.7.1") | (554, "5.7.1") => {
            "refused by the server's policy (often spam filtering or a sender that is not allowed)"
        }
        (550, "5.1.1") | (550, "5.1.0") => "no such recipient at that server: check the address",
        (553, _) => {
            "the server does not accept this address (often: the sender is not one you may use)"
        }
        (452, _) | (552, "5.5.3") => {
            "too many recipients, or too little storage: send to fewer at once"
        }
        (552, _) | (554, "5.3.4") => {
            "the message is too big for this server: send less, or look at the SIZE its EHLO reply announced"
        }
        (554, "5.5.1") if has(&["no valid recipients"]) => {
            "no recipient was accepted, so there is nothing to deliver"
        }
        (421, _) => "the server is closing the connection: try again later",
        (450, _) | (451, _) if has(&["greylist", "grey-list", "graylist"]) => {
            "greylisting: a first refusal that a real mail server retries after a few minutes"
        }
        (451, "4.7.0") | (451, "4.7.1") | (450, "4.7.1") => {
            "a temporary policy refusal (greylisting or rate limiting): a real mail server retries later"
        }
        (503, _) => "a command came out of order: the dialogue skipped a step the server expects",
        (500, _) | (502, _) => "the server does not know this command",
        (501, _) | (555, _) => "the server did not accept the command's arguments or parameters",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusals_people_meet() {
        let cases: &[(u16, &str, &str, &str)] = &[
            (530, "5.7.0", "Must issue a STARTTLS command first", "TLS"),
            (530, "5.7.0", "Authentication required", "--user"),
            (
                535,
                "5.7.8",
                "Username and Password not accepted",
                "app password",
            ),
            (
                534,
                "5.7.9",
                "Application-specific password required",
                "stronger",
            ),
            (
                535,
                "5.7.139",
                "Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant",
                "Microsoft 365",
            ),
            (
                550,
                "5.7.30",
                "Basic authentication is not supported for Client Submission",
                "OAuth 2.0",
            ),
            (554, "5.7.1", "Relaying denied", "relaying denied"),
            (
                552,
                "5.3.4",
                "Message size exceeds fixed maximum message size",
                "too big",
            ),
            (421, "4.3.2", "Service shutting down", "closing"),
            (451, "4.7.1", "Greylisted, try again", "greylisting"),
        ];
        for (code, enhanced, text, needle) in cases {
            let advice = for_reply(*code, Some(enhanced), text).unwrap_or_default();
            assert!(
                advice.contains(needle),
                "{code} {enhanced} {text}: {advice}"
            );
        }
        assert!(for_reply(250, None, "ok").is_none());
    }
}
