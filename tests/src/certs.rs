//! Certificates for TLS edge cases: a CA and a leaf for localhost/127.0.0.1, optionally
//! expired, and rustls server configurations built from them.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, date_time_ymd,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A CA and a leaf it signed.
#[derive(Debug, Clone)]
pub struct TestCertificate {
    /// The CA certificate, to trust.
    pub ca_pem: String,
    /// The leaf followed by the CA.
    pub chain_pem: String,
    /// The leaf's private key.
    pub key_pem: String,
}

/// Generates a CA and a leaf for `localhost` and `127.0.0.1`; `expired` makes the leaf's
/// validity end in 2020.
pub fn generate(expired: bool) -> TestCertificate {
    let fail = |e: rcgen::Error| -> ! { panic!("rcgen: {e}") };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| fail(e));
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "edge-case CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap_or_else(|e| fail(e));
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap_or_else(|e| fail(e));
    let mut leaf_params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap_or_else(|e| fail(e));
    leaf_params.is_ca = IsCa::ExplicitNoCa;
    if expired {
        leaf_params.not_before = date_time_ymd(2019, 1, 1);
        leaf_params.not_after = date_time_ymd(2020, 1, 1);
    }
    let leaf_key = KeyPair::generate().unwrap_or_else(|e| fail(e));
    let leaf = leaf_params
        .signed_by(&leaf_key, &ca)
        .unwrap_or_else(|e| fail(e));
    TestCertificate {
        ca_pem: ca.pem(),
        chain_pem: format!("{}{}", leaf.pem(), ca.pem()),
        key_pem: leaf_key.serialize_pem(),
    }
}

/// A rustls server configuration (ring provider) for the certificate.
pub fn server_config(certificate: &TestCertificate) -> Arc<rustls::ServerConfig> {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(certificate.chain_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("chain: {e}"));
    let key = PrivateKeyDer::from_pem_slice(certificate.key_pem.as_bytes())
        .unwrap_or_else(|e| panic!("key: {e}"));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .and_then(|builder| builder.with_no_client_auth().with_single_cert(chain, key))
    .unwrap_or_else(|e| panic!("server config: {e}"));
    Arc::new(config)
}
