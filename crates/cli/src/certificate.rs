//! The server's certificate in a few words, for the `--explain` notes of the TLS line: whom
//! it names, who issued it, until when, and how this run decided to trust it.

use std::net::IpAddr;

use transcript::{Certificate, Checked};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer as _, X509Certificate};

use crate::Job;

/// The server's end-entity certificate (DER) as [`transcript::Certificate`], trusted as
/// `checked` says; `None` when it does not parse (the TLS library accepted it, so this only
/// loses the explanation).
pub fn describe_certificate(der: &[u8], checked: Checked) -> Option<Certificate> {
    let (_, parsed) = X509Certificate::from_der(der).ok()?;
    let names = names(&parsed);
    let not_after = parsed.validity().not_after.to_datetime();
    Some(Certificate {
        subject: parsed.subject().to_string(),
        issuer: parsed.issuer().to_string(),
        names,
        not_after: format!(
            "{:04}-{:02}-{:02}",
            not_after.year(),
            u8::from(not_after.month()),
            not_after.day()
        ),
        checked,
    })
}

impl Job {
    /// How this run trusts a certificate: the options decide, before any connection.
    pub fn certificate_checked(&self) -> Checked {
        if self.verify.pin_sha256.is_some() {
            return Checked::Pinned;
        }
        if self.verify.insecure {
            return Checked::Insecure;
        }
        let mozilla = "webpki-roots (Mozilla's list)";
        let roots = match &self.verify.ca_pem {
            None => mozilla.to_owned(),
            Some(_) if self.embedded => {
                format!("{mozilla} or the embedded server's own CA")
            }
            Some(_) => format!("{mozilla} or the --ca-file certificates"),
        };
        Checked::Verified {
            name: self.tls_name.clone(),
            roots,
        }
    }
}

/// The DNS names and IP addresses of the certificate's subject alternative name extension.
pub(crate) fn names(parsed: &X509Certificate<'_>) -> Vec<String> {
    match parsed.subject_alternative_name() {
        Ok(Some(extension)) => extension
            .value
            .general_names
            .iter()
            .filter_map(general_name)
            .collect(),
        _ => Vec::new(),
    }
}

/// A DNS name or an IP address of the subject alternative name extension (RFC 5280 §4.2.1.6).
fn general_name(name: &GeneralName<'_>) -> Option<String> {
    match name {
        GeneralName::DNSName(dns) => Some((*dns).to_owned()),
        GeneralName::IPAddress(bytes) => {
            let ip = match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
                16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
                _ => None,
            };
            ip.map(|ip| ip.to_string())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::{Endpoint, Options, Plan, Verify};

    #[derive(clap::Parser)]
    struct Arguments {
        #[command(flatten)]
        options: Options,
    }

    fn job(verify: Verify, embedded: bool) -> Job {
        let arguments = Arguments::try_parse_from([
            "client",
            "--server",
            "mail.example.com",
            "--from",
            "a@example.com",
            "--to",
            "b@example.org",
        ])
        .expect("valid options");
        let plan = Plan::from_options(&arguments.options, &mut |_| {}).expect("a plan");
        let mut job = plan.into_job(Endpoint::remote("mail.example.com", 587));
        job.verify = verify;
        job.embedded = embedded;
        job
    }

    #[test]
    fn how_the_certificate_was_trusted_follows_the_options() {
        let verified = |roots: &str| Checked::Verified {
            name: "mail.example.com".into(),
            roots: roots.into(),
        };
        assert_eq!(
            job(Verify::default(), false).certificate_checked(),
            verified("webpki-roots (Mozilla's list)")
        );
        let ca = Verify {
            ca_pem: Some(b"PEM".to_vec()),
            ..Verify::default()
        };
        assert_eq!(
            job(ca.clone(), false).certificate_checked(),
            verified("webpki-roots (Mozilla's list) or the --ca-file certificates")
        );
        assert_eq!(
            job(ca, true).certificate_checked(),
            verified("webpki-roots (Mozilla's list) or the embedded server's own CA")
        );
        let insecure = Verify {
            insecure: true,
            ..Verify::default()
        };
        assert_eq!(
            job(insecure, false).certificate_checked(),
            Checked::Insecure
        );
        let pinned = Verify {
            pin_sha256: Some([0; 32]),
            insecure: true,
            ..Verify::default()
        };
        assert_eq!(job(pinned, false).certificate_checked(), Checked::Pinned);
    }

    #[test]
    fn a_certificate_is_summed_up_by_its_names_issuer_and_expiry() {
        let mut params = rcgen::CertificateParams::new(vec![
            "mail.example.com".to_owned(),
            "192.0.2.25".to_owned(),
            "2001:db8::25".to_owned(),
        ])
        .expect("names");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "mail.example.com");
        params.not_after = rcgen::date_time_ymd(2027, 3, 9);
        let key = rcgen::KeyPair::generate().expect("a key");
        let certificate = params.self_signed(&key).expect("a certificate");
        let job = job(Verify::default(), false);
        let summary =
            describe_certificate(certificate.der(), job.certificate_checked()).expect("it parses");
        assert_eq!(summary.subject, "CN=mail.example.com");
        assert_eq!(summary.issuer, "CN=mail.example.com");
        assert_eq!(
            summary.names,
            ["mail.example.com", "192.0.2.25", "2001:db8::25"]
        );
        assert_eq!(summary.not_after, "2027-03-09");
        assert_eq!(summary.checked, job.certificate_checked());
    }

    #[test]
    fn garbage_is_no_certificate() {
        assert_eq!(describe_certificate(b"not DER", Checked::Insecure), None);
        assert_eq!(describe_certificate(&[], Checked::Insecure), None);
    }
}
