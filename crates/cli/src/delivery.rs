//! The MAIL and RCPT parameters both clients add after SMTPUTF8 and BODY: SIZE (RFC 1870),
//! DSN (RFC 3461) and REQUIRETLS (RFC 8689) — worked out here once, from what the server
//! offers, so both clients send the same bytes and refuse the same way.

use message::Address;

use crate::{Failure, TlsMode, Verify, Warning};

/// `--dsn-notify`, `--dsn-ret`, `--dsn-envid`: what to ask of the servers on the way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dsn {
    /// `NEVER`, or some of `SUCCESS,FAILURE,DELAY` (RFC 3461 §4.1).
    pub notify: Option<String>,
    /// `FULL` or `HDRS` (§4.3).
    pub ret: Option<&'static str>,
    /// The envelope id, printable ASCII; xtext-encoded on the wire (§4.4).
    pub envid: Option<String>,
}

/// The delivery options of a job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// DSN parameters, if any were asked for.
    pub dsn: Option<Dsn>,
    /// `--dsn-optional`: without DSN offered, send without them and warn.
    pub dsn_optional: bool,
    /// `--require-tls`.
    pub require_tls: bool,
    /// `--declare-size`.
    pub declare_size: bool,
}

/// One ESMTP parameter: its keyword and its value before xtext encoding (RFC 3461 §4),
/// which lettre does itself and raw-client with [`Parameter::encoded`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    /// E.g. `NOTIFY`.
    pub keyword: &'static str,
    /// E.g. `SUCCESS,FAILURE`; `None` for a keyword alone (`REQUIRETLS`).
    pub value: Option<String>,
}

impl Parameter {
    fn new(keyword: &'static str, value: impl Into<String>) -> Parameter {
        Parameter {
            keyword,
            value: Some(value.into()),
        }
    }

    /// `KEYWORD=xtext(value)`, or the keyword alone.
    pub fn encoded(&self) -> String {
        match &self.value {
            Some(value) => format!("{}={}", self.keyword, xtext(value)),
            None => self.keyword.to_owned(),
        }
    }
}

/// What to add to MAIL and to each RCPT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parameters {
    /// After SMTPUTF8 and BODY, in this order: SIZE, RET, ENVID, REQUIRETLS.
    pub mail: Vec<Parameter>,
    /// One list per envelope recipient: NOTIFY, ORCPT.
    pub rcpt: Vec<Vec<Parameter>>,
    /// A warning for standard error (DSN not offered, with `--dsn-optional`).
    pub warning: Option<Warning>,
}

impl Delivery {
    /// The parameters for a message of `size` octets to `recipients`, given the EHLO
    /// keywords the server offered (`offers`, case-insensitive).
    pub fn parameters(
        &self,
        offers: &dyn Fn(&str) -> bool,
        size: u64,
        recipients: &[Address],
    ) -> Result<Parameters, Failure> {
        let mut out = Parameters {
            rcpt: vec![Vec::new(); recipients.len()],
            ..Parameters::default()
        };
        if self.declare_size {
            // RFC 1870 §6: only to a server that offers SIZE.
            if offers("SIZE") {
                out.mail.push(Parameter::new("SIZE", size.to_string()));
            }
        }
        if let Some(dsn) = &self.dsn {
            if offers("DSN") {
                if let Some(ret) = dsn.ret {
                    out.mail.push(Parameter::new("RET", ret));
                }
                if let Some(envid) = &dsn.envid {
                    out.mail.push(Parameter::new("ENVID", envid.clone()));
                }
                for (parameters, address) in out.rcpt.iter_mut().zip(recipients) {
                    if let Some(notify) = &dsn.notify {
                        parameters.push(Parameter::new("NOTIFY", notify.clone()));
                    }
                    // RFC 3461 §4.2: the address as given, for the notification to quote;
                    // an internationalized one would need RFC 6533's utf-8 type.
                    if address.is_ascii() {
                        parameters.push(Parameter::new("ORCPT", format!("rfc822;{address}")));
                    }
                }
            } else if self.dsn_optional {
                out.warning = Some(Warning::DsnNotOffered);
            } else {
                return Err(Failure::MissingExtension {
                    extension: "DSN",
                    why: "--dsn-notify, --dsn-ret or --dsn-envid asks for delivery status notifications",
                });
            }
        }
        if self.require_tls {
            if !offers("REQUIRETLS") {
                return Err(Failure::RequireTls {
                    why: "the server does not offer REQUIRETLS (RFC 8689)",
                });
            }
            out.mail.push(Parameter {
                keyword: "REQUIRETLS",
                value: None,
            });
        }
        Ok(out)
    }

    /// RFC 8689 §4.1: REQUIRETLS only over TLS whose certificate was verified.
    pub fn check_tls(&self, tls: TlsMode, verify: &Verify) -> Result<(), Failure> {
        if !self.require_tls {
            return Ok(());
        }
        let why = match (tls, verify.insecure) {
            (TlsMode::None, _) => "--require-tls needs TLS: drop --tls none",
            (_, true) => "--require-tls needs a verified certificate: drop --insecure",
            _ => return Ok(()),
        };
        Err(Failure::RequireTls { why })
    }
}

/// RFC 3461 §4: xtext — `+`, `=`, and octets outside `!`..`~` as `+XX`.
pub fn xtext(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (b'!'..=b'~').contains(&byte) && byte != b'+' && byte != b'=' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("+{byte:02X}"));
        }
    }
    out
}

/// `--dsn-envid`: printable ASCII, at most 100 characters (RFC 3461 §4.4).
pub(crate) fn check_envid(text: &str) -> Result<String, Failure> {
    let ok = !text.is_empty() && text.len() <= 100 && text.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(text.to_owned())
    } else {
        Err(Failure::Combination {
            why: format!(
                "--dsn-envid {:?} is not valid: give 1 to 100 printable ASCII characters without spaces (RFC 3461 §4.4)",
                crate::failure::one_line(text)
            ),
        })
    }
}

/// `--dsn-notify`: `never`, or a comma list of `success`, `failure`, `delay` (each once).
pub(crate) fn parse_notify(text: &str) -> Result<String, Failure> {
    let bad = || Failure::Combination {
        why: format!(
            "--dsn-notify {text:?} is not valid: give never, or a comma list of success, failure and delay"
        ),
    };
    let words: Vec<String> = text
        .split(',')
        .map(|word| word.trim().to_ascii_uppercase())
        .collect();
    if words == ["NEVER"] {
        return Ok("NEVER".to_owned());
    }
    let mut seen = Vec::new();
    for word in words {
        if !matches!(word.as_str(), "SUCCESS" | "FAILURE" | "DELAY") || seen.contains(&word) {
            return Err(bad());
        }
        seen.push(word);
    }
    Ok(seen.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(text: &str) -> Address {
        Address::parse(text).expect("valid")
    }

    #[test]
    fn xtext_encodes_plus_equals_and_the_rest() {
        assert_eq!(xtext("a+b=c@example.org"), "a+2Bb+3Dc@example.org");
        assert_eq!(xtext("id 1"), "id+201");
    }

    #[test]
    fn notify_lists() {
        assert_eq!(parse_notify("never").ok().as_deref(), Some("NEVER"));
        assert_eq!(
            parse_notify("success, failure").ok().as_deref(),
            Some("SUCCESS,FAILURE")
        );
        for bad in ["never,success", "sometimes", "", "delay,delay"] {
            assert!(parse_notify(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parameters_follow_what_is_offered() {
        let delivery = Delivery {
            dsn: Some(Dsn {
                notify: Some("SUCCESS,FAILURE".into()),
                ret: Some("HDRS"),
                envid: Some("QQ+1".into()),
            }),
            require_tls: true,
            declare_size: true,
            ..Delivery::default()
        };
        let recipients = [address("b+x@example.org"), address("jörg@example.org")];
        let encoded = |list: &[Parameter]| list.iter().map(Parameter::encoded).collect::<Vec<_>>();
        let all = |_: &str| true;
        let parameters = delivery
            .parameters(&all, 1234, &recipients)
            .expect("offered");
        assert_eq!(
            encoded(&parameters.mail),
            ["SIZE=1234", "RET=HDRS", "ENVID=QQ+2B1", "REQUIRETLS"]
        );
        assert_eq!(
            encoded(&parameters.rcpt[0]),
            ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;b+2Bx@example.org"]
        );
        assert_eq!(encoded(&parameters.rcpt[1]), ["NOTIFY=SUCCESS,FAILURE"]);
        let no_dsn = |keyword: &str| keyword != "DSN";
        let failure = delivery
            .parameters(&no_dsn, 1, &recipients)
            .expect_err("DSN not offered");
        assert_eq!(failure.exit(), crate::Exit::Unavailable);
        let optional = Delivery {
            dsn_optional: true,
            ..delivery.clone()
        };
        let parameters = optional.parameters(&no_dsn, 1, &recipients).expect("ok");
        assert_eq!(parameters.warning, Some(Warning::DsnNotOffered));
        assert_eq!(encoded(&parameters.mail), ["SIZE=1", "REQUIRETLS"]);
        let no_requiretls = |keyword: &str| keyword != "REQUIRETLS";
        let failure = delivery
            .parameters(&no_requiretls, 1, &recipients)
            .expect_err("REQUIRETLS not offered");
        assert_eq!(failure.exit(), crate::Exit::Config);
    }
}
