//! The listener's TLS: the operator's PEM certificate chain and private key, TLS 1.2 and 1.3
//! with rustls' safe defaults (ring as the crypto provider), no client certificates.

use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::{SecurityError, TlsConfig};

pub(crate) fn acceptor(config: &TlsConfig) -> Result<tokio_rustls::TlsAcceptor, SecurityError> {
    let err = |what: &str, path: &std::path::Path, e: &dyn std::fmt::Display| {
        SecurityError::Tls(format!("{what} {}: {e}", path.display()))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&config.cert_chain_pem)
        .map_err(|e| err("reading the certificate chain", &config.cert_chain_pem, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| err("parsing the certificate chain", &config.cert_chain_pem, &e))?;
    if certs.is_empty() {
        return Err(err(
            "reading the certificate chain",
            &config.cert_chain_pem,
            &"no CERTIFICATE block in the file",
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&config.key_pem)
        .map_err(|e| err("reading the private key", &config.key_pem, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SecurityError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            SecurityError::Tls(format!(
                "the key {} does not go with the certificate {}: {e}",
                config.key_pem.display(),
                config.cert_chain_pem.display()
            ))
        })?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(server)))
}
