//! The SASL mechanisms' messages, server side, as pure functions over bytes: their names,
//! the XOAUTH2 and OAUTHBEARER (RFC 7628) client responses and error statuses, and the
//! SCRAM-SHA-256 messages and keys (RFC 5802, RFC 7677). No I/O: `session.rs` runs the
//! exchanges.
//!
//! Written from the RFCs, independently of the clients' code, so that each checks the other.

use std::num::NonZeroU32;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::{digest, hmac, pbkdf2};

/// A SASL mechanism this server knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mechanism {
    /// RFC 4616.
    Plain,
    /// The `Username:` / `Password:` exchange (draft-murchison-sasl-login).
    Login,
    /// Google's and Microsoft's OAuth 2.0 format (not an RFC).
    Xoauth2,
    /// RFC 7628.
    OauthBearer,
    /// RFC 5802 with SHA-256 (RFC 7677), without channel binding.
    ScramSha256,
}

impl Mechanism {
    /// Every mechanism, in the order error messages list them.
    pub(crate) const ALL: [Mechanism; 5] = [
        Mechanism::Plain,
        Mechanism::Login,
        Mechanism::Xoauth2,
        Mechanism::OauthBearer,
        Mechanism::ScramSha256,
    ];

    /// The name as EHLO offers it and AUTH names it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::Xoauth2 => "XOAUTH2",
            Mechanism::OauthBearer => "OAUTHBEARER",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
        }
    }

    /// The mechanism of a name, compared case-insensitively (RFC 4954 §4: mechanism names
    /// are case-insensitive).
    pub(crate) fn from_name(name: &str) -> Option<Mechanism> {
        Self::ALL
            .into_iter()
            .find(|mechanism| mechanism.name().eq_ignore_ascii_case(name.trim()))
    }

    /// `PLAIN, LOGIN, XOAUTH2, OAUTHBEARER, SCRAM-SHA-256`, for error messages.
    pub(crate) fn valid_names() -> String {
        let names: Vec<&str> = Self::ALL.iter().map(|m| m.name()).collect();
        names.join(", ")
    }
}

/// The OAuth 2.0 scope the error statuses name: Gmail's, the one most users meet.
const SCOPE: &str = "https://mail.google.com/";

/// The base64 of the JSON status a failed XOAUTH2 exchange gets in its `334` (Google's
/// format: the HTTP status, the schemes, the scope).
pub(crate) fn xoauth2_error() -> String {
    BASE64.encode(format!(
        r#"{{"status":"401","schemes":"Bearer","scope":"{SCOPE}"}}"#
    ))
}

/// The base64 of the JSON status a failed OAUTHBEARER exchange gets in its `334` (RFC 7628
/// §3.2.2: `status`, `scope`, `openid-configuration`), naming `hostname`'s discovery
/// document.
pub(crate) fn oauthbearer_error(hostname: &str) -> String {
    let discovery = format!("https://{hostname}/.well-known/openid-configuration");
    // serde_json writes the string with its escapes, whatever the host name holds.
    let discovery = serde_json::to_string(&discovery).unwrap_or_else(|_| "\"\"".to_owned());
    BASE64.encode(format!(
        r#"{{"status":"invalid_token","scope":"{SCOPE}","openid-configuration":{discovery}}}"#
    ))
}

/// An OAuth 2.0 client response: who, and the bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bearer {
    /// The user the client names; OAUTHBEARER may leave it out (`n,,`).
    pub(crate) user: Option<String>,
    pub(crate) token: String,
}

/// The `\x01`-separated `key=value` pairs that end in `\x01\x01`, shared by XOAUTH2 and
/// OAUTHBEARER (RFC 7628 §3.1: `kvpair = key "=" value kvsep`, then a final `kvsep`).
fn key_values(text: &str) -> Result<Vec<(&str, &str)>, &'static str> {
    let pairs = text
        .strip_suffix("\x01\x01")
        .ok_or("it must end with two \\x01 (^A^A)")?;
    pairs
        .split('\x01')
        .map(|pair| {
            let (key, value) = pair
                .split_once('=')
                .ok_or("every field must be key=value, each followed by \\x01")?;
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err("a field name must be letters only");
            }
            Ok((key, value))
        })
        .collect()
}

/// The token of an `auth=Bearer TOKEN` value (RFC 6750 §2.1: the scheme is
/// case-insensitive, one space, then the token).
fn bearer_token(value: &str) -> Result<String, &'static str> {
    let (scheme, token) = value
        .split_once(' ')
        .ok_or("auth= must be \"Bearer\", a space and the token")?;
    if !scheme.eq_ignore_ascii_case("Bearer") {
        return Err("auth= must use the Bearer scheme");
    }
    if token.is_empty() || token.contains([' ', '\t', '\r', '\n']) {
        return Err("the bearer token is empty or holds white space");
    }
    Ok(token.to_owned())
}

/// The field `key` of `pairs`, which must appear once.
fn field<'a>(pairs: &[(&str, &'a str)], key: &str) -> Result<Option<&'a str>, &'static str> {
    let mut found = pairs.iter().filter(|(k, _)| *k == key).map(|(_, v)| *v);
    match (found.next(), found.next()) {
        (_, Some(_)) => Err("a field is given twice"),
        (value, None) => Ok(value),
    }
}

/// XOAUTH2's client response: `user=` USER `\x01auth=Bearer ` TOKEN `\x01\x01` (Google's
/// "XOAUTH2 mechanism" page; Microsoft uses the same format).
pub(crate) fn xoauth2(message: &[u8]) -> Result<Bearer, &'static str> {
    let text = std::str::from_utf8(message).map_err(|_| "it is not UTF-8")?;
    let pairs = key_values(text)?;
    let user = field(&pairs, "user")?.ok_or("there is no user= field")?;
    let auth = field(&pairs, "auth")?.ok_or("there is no auth=Bearer field")?;
    if user.is_empty() {
        return Err("user= is empty");
    }
    Ok(Bearer {
        user: Some(user.to_owned()),
        token: bearer_token(auth)?,
    })
}

/// OAUTHBEARER's client response (RFC 7628 §3.1): a GS2 header `n,a=USER,` (or `n,,`),
/// `\x01`, then `key=value\x01` pairs (`host`, `port`, `auth=Bearer TOKEN`, others ignored)
/// and a final `\x01`.
pub(crate) fn oauthbearer(message: &[u8]) -> Result<Bearer, &'static str> {
    let text = std::str::from_utf8(message).map_err(|_| "it is not UTF-8")?;
    if text.starts_with("user=") {
        return Err(
            "this is the XOAUTH2 format; OAUTHBEARER starts with a GS2 header such as n,a=USER,",
        );
    }
    let (header, rest) = text
        .split_once('\x01')
        .ok_or("the GS2 header must be followed by \\x01")?;
    let (flag, authzid) = gs2_header(header)?;
    if flag == ChannelBinding::Required {
        return Err("channel binding (p=) is not supported by OAUTHBEARER");
    }
    // The header's \x01 is the first kvsep; with no pairs, only the final one is left.
    let pairs = match rest {
        "\x01" => Vec::new(),
        _ => key_values(rest)?,
    };
    let auth = field(&pairs, "auth")?.ok_or("there is no auth=Bearer field")?;
    // host and port are optional (RFC 7628 §3.1 "SHOULD"); a port must be a number.
    if let Some(port) = field(&pairs, "port")?
        && port.parse::<u16>().is_err()
    {
        return Err("port= is not a port number");
    }
    Ok(Bearer {
        user: authzid,
        token: bearer_token(auth)?,
    })
}

/// What the GS2 channel-binding flag says (RFC 5801 §4, RFC 5802 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChannelBinding {
    /// `n`: the client does not support channel binding.
    No,
    /// `y`: the client supports it but thinks the server does not.
    NotOffered,
    /// `p=NAME`: the client requires it.
    Required,
}

/// A GS2 header without its final `,` (`n,a=USER` or `n,`): the flag and the unescaped
/// authorization identity, if any.
fn gs2_header(header: &str) -> Result<(ChannelBinding, Option<String>), &'static str> {
    let header = header
        .strip_suffix(',')
        .ok_or("the GS2 header must end with \",\"")?;
    let (flag, authzid) = header
        .split_once(',')
        .ok_or("the GS2 header must be a flag, \",\", an optional a=USER and \",\"")?;
    let flag = match flag {
        "n" => ChannelBinding::No,
        "y" => ChannelBinding::NotOffered,
        _ if flag.starts_with("p=") => ChannelBinding::Required,
        _ => return Err("the GS2 header must start with n, y or p="),
    };
    let authzid = match authzid {
        "" => None,
        _ => {
            let name = authzid
                .strip_prefix("a=")
                .ok_or("the authorization identity must be written a=USER")?;
            Some(unescape_saslname(name)?)
        }
    };
    Ok((flag, authzid))
}

/// RFC 5802 §5.1 (and RFC 5801 §4): `=2C` is `,` and `=3D` is `=`; any other `=` is an
/// error the server must fail on.
fn unescape_saslname(name: &str) -> Result<String, &'static str> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3);
        match escape {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err("a user name may hold \"=\" only as =2C or =3D"),
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    if out.is_empty() {
        return Err("the user name is empty");
    }
    Ok(out)
}

/// SCRAM's client-first message (RFC 5802 §7):
/// `gs2-header client-first-message-bare`, with the bare part `n=USER,r=NONCE[,ext]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientFirst {
    /// The GS2 header as sent, with its final `,`: `c=` of the client-final message must
    /// be its base64.
    pub(crate) gs2_header: String,
    /// The authorization identity (`a=`), unescaped.
    pub(crate) authzid: Option<String>,
    /// The user name (`n=`), unescaped.
    pub(crate) user: String,
    /// The client nonce (`r=`).
    pub(crate) nonce: String,
    /// `client-first-message-bare`, the first part of the AuthMessage.
    pub(crate) bare: String,
}

impl ClientFirst {
    pub(crate) fn parse(message: &[u8]) -> Result<ClientFirst, &'static str> {
        let text = std::str::from_utf8(message).map_err(|_| "it is not UTF-8")?;
        let mut commas = text.match_indices(',').map(|(at, _)| at);
        let (Some(_), Some(second)) = (commas.next(), commas.next()) else {
            return Err("the client-first message must start with a GS2 header such as \"n,,\"");
        };
        let (header, bare) = text.split_at(second + 1);
        let (flag, authzid) = gs2_header(header)?;
        if flag == ChannelBinding::Required {
            return Err(
                "channel binding (p=) needs SCRAM-SHA-256-PLUS, which this server does not offer",
            );
        }
        let mut attributes = bare.split(',');
        let user = match attributes.next() {
            Some(m) if m.starts_with("m=") => {
                return Err("the mandatory extension m= is not supported");
            }
            Some(n) => n.strip_prefix("n=").ok_or(
                "the client-first message must name the user with n= after the GS2 header",
            )?,
            None => return Err("there is no n= user name"),
        };
        let user = unescape_saslname(user)?;
        let nonce = attributes
            .next()
            .and_then(|r| r.strip_prefix("r="))
            .ok_or("the user name must be followed by the client nonce r=")?;
        if !printable_nonce(nonce) {
            return Err("the client nonce r= must be printable ASCII without \",\" and not empty");
        }
        Ok(ClientFirst {
            gs2_header: header.to_owned(),
            authzid,
            user,
            nonce: nonce.to_owned(),
            bare: bare.to_owned(),
        })
    }
}

/// RFC 5802 §7: `printable = %x21-2B / %x2D-7E` (no `,`), at least one.
fn printable_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// SCRAM's client-final message (RFC 5802 §7): `c=CHANNEL-BINDING,r=NONCE[,ext],p=PROOF`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientFinal {
    /// What `c=` decodes to: for a client without channel binding, the GS2 header.
    pub(crate) channel_binding: Vec<u8>,
    /// `r=`: the client's and the server's nonce.
    pub(crate) nonce: String,
    /// `client-final-message-without-proof`, the last part of the AuthMessage.
    pub(crate) without_proof: String,
    /// `p=`, decoded: 32 bytes.
    pub(crate) proof: Vec<u8>,
}

impl ClientFinal {
    pub(crate) fn parse(message: &[u8]) -> Result<ClientFinal, &'static str> {
        let text = std::str::from_utf8(message).map_err(|_| "it is not UTF-8")?;
        let (without_proof, proof) = text
            .rsplit_once(',')
            .ok_or("the client-final message must be c=...,r=...,p=...")?;
        let proof = proof
            .strip_prefix("p=")
            .ok_or("the client-final message must end with the proof p=")?;
        let proof = BASE64
            .decode(proof)
            .map_err(|_| "the proof p= is not base64")?;
        if proof.len() != digest::SHA256_OUTPUT_LEN {
            return Err("the proof p= must be 32 bytes (a SHA-256 HMAC)");
        }
        let mut attributes = without_proof.split(',');
        let channel_binding = attributes
            .next()
            .and_then(|c| c.strip_prefix("c="))
            .ok_or("the client-final message must start with c=")?;
        let channel_binding = BASE64
            .decode(channel_binding)
            .map_err(|_| "c= is not base64")?;
        let nonce = attributes
            .next()
            .and_then(|r| r.strip_prefix("r="))
            .ok_or("c= must be followed by the nonce r=")?;
        Ok(ClientFinal {
            channel_binding,
            nonce: nonce.to_owned(),
            without_proof: without_proof.to_owned(),
            proof,
        })
    }
}

/// The server-first message: `r=NONCE,s=SALT,i=ITERATIONS`.
pub(crate) fn server_first(nonce: &str, salt: &[u8], iterations: NonZeroU32) -> String {
    format!("r={nonce},s={},i={iterations}", BASE64.encode(salt))
}

/// The AuthMessage both sides sign (RFC 5802 §3).
pub(crate) fn auth_message(
    client_first_bare: &str,
    server_first: &str,
    final_without_proof: &str,
) -> String {
    format!("{client_first_bare},{server_first},{final_without_proof}")
}

/// What the server knows of a password for one exchange: `SaltedPassword`.
pub(crate) struct SaltedPassword([u8; digest::SHA256_OUTPUT_LEN]);

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; digest::SHA256_OUTPUT_LEN] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
    let mut out = [0; digest::SHA256_OUTPUT_LEN];
    out.copy_from_slice(tag.as_ref());
    out
}

impl SaltedPassword {
    /// `SaltedPassword = Hi(password, salt, i)`, PBKDF2 with HMAC-SHA-256 (RFC 5802 §3).
    /// The password is used as given: SASLprep is not applied.
    pub(crate) fn new(password: &[u8], salt: &[u8], iterations: NonZeroU32) -> Self {
        let mut out = [0; digest::SHA256_OUTPUT_LEN];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            iterations,
            salt,
            password,
            &mut out,
        );
        SaltedPassword(out)
    }

    fn client_key(&self) -> [u8; digest::SHA256_OUTPUT_LEN] {
        hmac_sha256(&self.0, b"Client Key")
    }

    /// `ClientProof = ClientKey XOR HMAC(H(ClientKey), AuthMessage)`: what a client that
    /// knows the password sends.
    pub(crate) fn client_proof(&self, auth_message: &str) -> [u8; digest::SHA256_OUTPUT_LEN] {
        let client_key = self.client_key();
        let stored_key = digest::digest(&digest::SHA256, &client_key);
        let signature = hmac_sha256(stored_key.as_ref(), auth_message.as_bytes());
        let mut proof = client_key;
        for (byte, mask) in proof.iter_mut().zip(signature) {
            *byte ^= mask;
        }
        proof
    }

    /// Whether `proof` is the client proof of this password for `auth_message`.
    pub(crate) fn verify(&self, auth_message: &str, proof: &[u8]) -> bool {
        // Recompute and compare whole: a test server has no timing attacker to fear, but
        // the comparison is still of the full 32 bytes.
        self.client_proof(auth_message).as_slice() == proof
    }

    /// `ServerSignature = HMAC(HMAC(SaltedPassword, "Server Key"), AuthMessage)`, sent as
    /// `v=` so the client can check the server knows the password too.
    pub(crate) fn server_signature(&self, auth_message: &str) -> [u8; digest::SHA256_OUTPUT_LEN] {
        let server_key = hmac_sha256(&self.0, b"Server Key");
        hmac_sha256(&server_key, auth_message.as_bytes())
    }
}

/// The server-final message of a successful exchange: `v=` and the signature in base64.
pub(crate) fn server_final(signature: &[u8]) -> String {
    format!("v={}", BASE64.encode(signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iterations(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
    }

    #[test]
    fn mechanism_names_parse_case_insensitively() {
        for mechanism in Mechanism::ALL {
            assert_eq!(Mechanism::from_name(mechanism.name()), Some(mechanism));
            let lower = mechanism.name().to_ascii_lowercase();
            assert_eq!(Mechanism::from_name(&lower), Some(mechanism));
        }
        assert_eq!(Mechanism::from_name("CRAM-MD5"), None);
        assert_eq!(
            Mechanism::valid_names(),
            "PLAIN, LOGIN, XOAUTH2, OAUTHBEARER, SCRAM-SHA-256"
        );
    }

    #[test]
    fn xoauth2_responses() {
        let ok = xoauth2(b"user=alice@example.com\x01auth=Bearer ya29.token\x01\x01");
        assert_eq!(
            ok,
            Ok(Bearer {
                user: Some("alice@example.com".into()),
                token: "ya29.token".into()
            })
        );
        // Field order does not matter; the scheme is case-insensitive.
        let swapped = xoauth2(b"auth=bearer t\x01user=u\x01\x01");
        assert_eq!(swapped.map(|b| b.token), Ok("t".to_owned()));
        for (message, why) in [
            (
                &b"user=u\x01auth=Bearer t\x01"[..],
                "it must end with two \\x01 (^A^A)",
            ),
            (b"user=u\x01\x01", "there is no auth=Bearer field"),
            (b"auth=Bearer t\x01\x01", "there is no user= field"),
            (
                b"user=u\x01auth=Basic t\x01\x01",
                "auth= must use the Bearer scheme",
            ),
            (
                b"user=u\x01auth=Bearer\x01\x01",
                "auth= must be \"Bearer\", a space and the token",
            ),
            (
                b"user=u\x01auth=Bearer \x01\x01",
                "the bearer token is empty or holds white space",
            ),
            (b"user=\x01auth=Bearer t\x01\x01", "user= is empty"),
            (
                b"user=u\x01user=v\x01auth=Bearer t\x01\x01",
                "a field is given twice",
            ),
            (b"\0alice\0s3cret", "it must end with two \\x01 (^A^A)"),
            (b"\xff\x01\x01", "it is not UTF-8"),
        ] {
            assert_eq!(xoauth2(message), Err(why), "{message:?}");
        }
    }

    #[test]
    fn oauthbearer_responses() {
        // RFC 7628 §4.1's example, in SMTP form.
        let example = b"n,a=user@example.com,\x01host=server.example.com\x01port=587\x01\
                        auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01";
        assert_eq!(
            oauthbearer(example),
            Ok(Bearer {
                user: Some("user@example.com".into()),
                token: "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==".into()
            })
        );
        assert_eq!(
            oauthbearer(b"n,,\x01auth=Bearer t\x01\x01"),
            Ok(Bearer {
                user: None,
                token: "t".into()
            })
        );
        assert_eq!(
            oauthbearer(b"y,a=a=3Db=2Cc,\x01auth=Bearer t\x01\x01").map(|b| b.user),
            Ok(Some("a=b,c".to_owned()))
        );
        for (message, why) in [
            (&b"n,a=u,\x01\x01"[..], "there is no auth=Bearer field"),
            (
                b"n,a=u,auth=Bearer t\x01\x01",
                "the GS2 header must end with \",\"",
            ),
            (b"n,a=u,", "the GS2 header must be followed by \\x01"),
            (
                b"n,a=u,\x01auth=Bearer t\x01",
                "it must end with two \\x01 (^A^A)",
            ),
            (
                b"x,,\x01auth=Bearer t\x01\x01",
                "the GS2 header must start with n, y or p=",
            ),
            (
                b"p=tls-unique,,\x01auth=Bearer t\x01\x01",
                "channel binding (p=) is not supported by OAUTHBEARER",
            ),
            (
                b"n,u,\x01auth=Bearer t\x01\x01",
                "the authorization identity must be written a=USER",
            ),
            (
                b"n,a=u=2,\x01auth=Bearer t\x01\x01",
                "a user name may hold \"=\" only as =2C or =3D",
            ),
            (
                b"n,a=u,\x01port=x\x01auth=Bearer t\x01\x01",
                "port= is not a port number",
            ),
            (
                b"user=u\x01auth=Bearer t\x01\x01",
                "this is the XOAUTH2 format; OAUTHBEARER starts with a GS2 header such as n,a=USER,",
            ),
            (
                b"n,a=u,\x01auth\x01\x01",
                "every field must be key=value, each followed by \\x01",
            ),
            (
                b"n,a=u,\x01h-st=x\x01auth=Bearer t\x01\x01",
                "a field name must be letters only",
            ),
        ] {
            assert_eq!(oauthbearer(message), Err(why), "{message:?}");
        }
    }

    #[test]
    fn error_statuses_are_json() {
        let decode = |b64: String| String::from_utf8(BASE64.decode(b64).unwrap_or_default());
        assert_eq!(
            decode(xoauth2_error()).as_deref(),
            Ok(r#"{"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}"#)
        );
        let status = decode(oauthbearer_error("mx.example.com")).unwrap_or_default();
        assert_eq!(
            status,
            r#"{"status":"invalid_token","scope":"https://mail.google.com/","openid-configuration":"https://mx.example.com/.well-known/openid-configuration"}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&status).unwrap_or_default();
        assert_eq!(parsed["status"], "invalid_token");
        let odd = decode(oauthbearer_error("a\"b")).unwrap_or_default();
        let parsed: serde_json::Value = serde_json::from_str(&odd).unwrap_or_default();
        assert_eq!(
            parsed["openid-configuration"],
            "https://a\"b/.well-known/openid-configuration"
        );
    }

    #[test]
    fn client_first_messages() {
        let first = ClientFirst::parse(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        assert_eq!(
            first,
            Ok(ClientFirst {
                gs2_header: "n,,".into(),
                authzid: None,
                user: "user".into(),
                nonce: "rOprNGfwEbeRWgbNEkqO".into(),
                bare: "n=user,r=rOprNGfwEbeRWgbNEkqO".into(),
            })
        );
        let escaped = ClientFirst::parse(b"y,a=x=2Cy,n=x=2Cy=3D,r=abc,e=ignored");
        let escaped = escaped.unwrap_or_else(|why| panic!("{why}"));
        assert_eq!(escaped.gs2_header, "y,a=x=2Cy,");
        assert_eq!(escaped.authzid.as_deref(), Some("x,y"));
        assert_eq!(escaped.user, "x,y=");
        assert_eq!(escaped.bare, "n=x=2Cy=3D,r=abc,e=ignored");
        for (message, why) in [
            (
                &b"x,,n=user,r=abc"[..],
                "the GS2 header must start with n, y or p=",
            ),
            (
                b"n=user,r=abc",
                "the client-first message must start with a GS2 header such as \"n,,\"",
            ),
            (
                b"n,,r=abc",
                "the client-first message must name the user with n= after the GS2 header",
            ),
            (
                b"n,,n=user",
                "the user name must be followed by the client nonce r=",
            ),
            (
                b"n,,n=user,r=",
                "the client nonce r= must be printable ASCII without \",\" and not empty",
            ),
            (b"n,,n=,r=abc", "the user name is empty"),
            (
                b"n,,n=a=b,r=abc",
                "a user name may hold \"=\" only as =2C or =3D",
            ),
            (
                b"n,,m=x,n=user,r=abc",
                "the mandatory extension m= is not supported",
            ),
            (
                b"p=tls-unique,,n=user,r=abc",
                "channel binding (p=) needs SCRAM-SHA-256-PLUS, which this server does not offer",
            ),
            (
                b"n",
                "the client-first message must start with a GS2 header such as \"n,,\"",
            ),
            (
                b"",
                "the client-first message must start with a GS2 header such as \"n,,\"",
            ),
        ] {
            assert_eq!(ClientFirst::parse(message), Err(why), "{message:?}");
        }
    }

    #[test]
    fn client_final_messages() {
        let proof = BASE64.encode([7u8; 32]);
        let message = format!("c=biws,r=abcdef,p={proof}");
        let parsed = ClientFinal::parse(message.as_bytes()).unwrap_or_else(|why| panic!("{why}"));
        assert_eq!(parsed.channel_binding, b"n,,");
        assert_eq!(parsed.nonce, "abcdef");
        assert_eq!(parsed.without_proof, "c=biws,r=abcdef");
        assert_eq!(parsed.proof, [7u8; 32]);
        let short = BASE64.encode([7u8; 20]);
        for (message, why) in [
            (
                "c=biws,r=abc".to_owned(),
                "the client-final message must end with the proof p=",
            ),
            (
                format!("c=biws,r=abc,p={short}"),
                "the proof p= must be 32 bytes (a SHA-256 HMAC)",
            ),
            ("c=biws,r=abc,p=!!".to_owned(), "the proof p= is not base64"),
            (
                format!("r=abc,p={proof}"),
                "the client-final message must start with c=",
            ),
            (
                format!("c=biws,p={proof}"),
                "c= must be followed by the nonce r=",
            ),
            (format!("c=!,r=abc,p={proof}"), "c= is not base64"),
            (
                "".to_owned(),
                "the client-final message must be c=...,r=...,p=...",
            ),
        ] {
            assert_eq!(
                ClientFinal::parse(message.as_bytes()),
                Err(why),
                "{message}"
            );
        }
    }

    /// RFC 7677 §3: the SCRAM-SHA-256 exchange of user "user", password "pencil".
    #[test]
    fn rfc_7677_test_vector() {
        let client_first = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                            s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let client_final = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                            p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        let server_final = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

        let first = ClientFirst::parse(client_first).unwrap_or_else(|why| panic!("{why}"));
        let salt = BASE64
            .decode("W22ZaJ0SNY7soEsUEjb6gQ==")
            .unwrap_or_default();
        let nonce = format!("{}%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", first.nonce);
        assert_eq!(
            super::server_first(&nonce, &salt, iterations(4096)),
            server_first
        );

        let last =
            ClientFinal::parse(client_final.as_bytes()).unwrap_or_else(|why| panic!("{why}"));
        assert_eq!(last.channel_binding, first.gs2_header.as_bytes());
        assert_eq!(last.nonce, nonce);
        let message = auth_message(&first.bare, server_first, &last.without_proof);
        let salted = SaltedPassword::new(b"pencil", &salt, iterations(4096));
        assert_eq!(
            BASE64.encode(salted.client_proof(&message)),
            "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert!(salted.verify(&message, &last.proof));
        let mut wrong = last.proof.clone();
        wrong[0] ^= 1;
        assert!(!salted.verify(&message, &wrong));
        let other = SaltedPassword::new(b"pencil!", &salt, iterations(4096));
        assert!(!other.verify(&message, &last.proof));
        assert_eq!(
            super::server_final(&salted.server_signature(&message)),
            server_final
        );
    }
}
