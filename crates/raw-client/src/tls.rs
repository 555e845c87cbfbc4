//! The rustls client configuration: web PKI roots plus `--ca-file`, TLS 1.2 or 1.3 only,
//! the ring provider, and `--insecure` as an explicit, visible choice.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, ring};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore,
    SignatureScheme,
};

use cli::Failure;
use cli::Verify;

/// Builds the client configuration for one run.
pub(crate) fn client_config(verify: &Verify) -> Result<Arc<ClientConfig>, Failure> {
    let (ca_pem, insecure) = (verify.ca_pem.as_deref(), verify.insecure);
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| Failure::TlsSetup(e.to_string()))?;
    let acceptance = match (verify.pin_sha256, insecure) {
        (Some(pin), _) => Some(Acceptance::Pinned(pin)),
        (None, true) => Some(Acceptance::Anything),
        (None, false) => None,
    };
    let config = if let Some(acceptance) = acceptance {
        let verifier = Override {
            acceptance,
            algorithms: provider.signature_verification_algorithms,
        };
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(pem) = ca_pem {
            let mut added = 0;
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert
                    .map_err(|e| Failure::TlsSetup(format!("the CA file is not valid PEM: {e}")))?;
                roots.add(cert).map_err(|e| {
                    Failure::TlsSetup(format!("the CA file holds an unusable certificate: {e}"))
                })?;
                added += 1;
            }
            if added == 0 {
                return Err(Failure::TlsSetup(
                    "the CA file holds no PEM certificate".into(),
                ));
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// The name the certificate must carry: a DNS name or an IP address.
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, Failure> {
    ServerName::try_from(host.to_owned())
        .map_err(|_| Failure::TlsSetup(format!("{host:?} is not a valid TLS server name")))
}

/// What to accept instead of a certificate the web PKI (plus `--ca-file`) vouches for.
#[derive(Debug)]
enum Acceptance {
    /// `--pin-sha256`: exactly the certificate with this SHA-256 fingerprint (msmtp's
    /// `tls_fingerprint`); its CA and names then do not matter.
    Pinned([u8; 32]),
    /// `--insecure`: any certificate.
    Anything,
}

/// The certificate check for `--pin-sha256` and `--insecure`. The handshake signatures are
/// still verified, so the connection is at least encrypted to whoever holds the key.
#[derive(Debug)]
struct Override {
    acceptance: Acceptance,
    algorithms: WebPkiSupportedAlgorithms,
}

/// The fingerprint did not match; it holds the certificate's real fingerprint.
#[derive(Debug)]
pub(crate) struct PinMismatch(pub(crate) String);

impl std::fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "its SHA-256 fingerprint is {}, not the one given with --pin-sha256",
            self.0
        )
    }
}

impl std::error::Error for PinMismatch {}

impl ServerCertVerifier for Override {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Acceptance::Pinned(pin) = &self.acceptance else {
            return Ok(ServerCertVerified::assertion());
        };
        let digest = ::ring::digest::digest(&::ring::digest::SHA256, end_entity);
        if digest.as_ref() == pin {
            return Ok(ServerCertVerified::assertion());
        }
        let hex: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
        Err(rustls::Error::InvalidCertificate(CertificateError::Other(
            OtherError(Arc::new(PinMismatch(hex.join(":")))),
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
