//! The server's TLS identity: a CA and a `localhost` certificate generated at start-up
//! (or a given chain and key), and the rustls configuration built from them.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::crypto::ring;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::Error;

/// The rustls configuration and the PEM a client must trust to accept it.
pub(crate) struct Identity {
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) ca_pem: String,
}

/// Builds the identity from the given `(chain PEM, key PEM)`, or generates one.
pub(crate) fn identity(given: Option<&(String, String)>) -> Result<Identity, Error> {
    let (chain_pem, key_pem, ca_pem) = match given {
        Some((chain, key)) => (chain.clone(), key.clone(), chain.clone()),
        None => generate()?,
    };
    let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Certificate(format!("cannot read the certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(Error::Certificate(
            "the certificate chain PEM holds no certificate".to_owned(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| Error::Certificate(format!("cannot read the private key: {e}")))?;
    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Certificate(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| Error::Certificate(e.to_string()))?;
    Ok(Identity {
        config: Arc::new(config),
        ca_pem,
    })
}

/// Generates a CA ("test-server CA") and a leaf for `localhost`, `127.0.0.1` and `::1`
/// signed by it; returns (leaf + CA chain PEM, leaf key PEM, CA PEM).
///
/// A separate CA, rather than one self-signed leaf, because webpki (rustls) refuses a
/// self-signed end-entity certificate used as its own trust anchor in some setups, and
/// because it is how real deployments look.
fn generate() -> Result<(String, String, String), Error> {
    let err = |e: rcgen::Error| Error::Certificate(e.to_string());
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "test-server CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(err)?).map_err(err)?;

    let mut leaf_params = CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])
    .map_err(err)?;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf_params.is_ca = IsCa::ExplicitNoCa;
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().map_err(err)?;
    let leaf = leaf_params.signed_by(&leaf_key, &ca).map_err(err)?;

    let ca_pem = ca.pem();
    let chain = format!("{}{}", leaf.pem(), ca_pem);
    Ok((chain, leaf_key.serialize_pem(), ca_pem))
}
