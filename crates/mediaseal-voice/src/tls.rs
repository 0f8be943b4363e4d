//! TLS for SIP: rustls on the aws-lc-rs provider (the workspace's only crypto provider).
//!
//! - Inbound (port 5061): one certificate chain and key from PEM files, no client
//!   certificates. SIP phones rarely send SNI (kamailio#1574), so one certificate (typically
//!   a wildcard for `*.<domain suffix>`) serves every domain; the domain is decided from the
//!   Request-URI after the handshake.
//! - Outbound (`<Sip>sip:…;secure=true</Sip>`): the peer's certificate is verified against
//!   `--sip-ca` when given, else the operating system's roots through `rustls-native-certs`
//!   (Debian's `ca-certificates`: updated by the distribution, extended by administrators with
//!   `update-ca-certificates`, and what the workspace's reqwest already trusts). The name
//!   checked is the `<Sip>` URI's host: a DNS name, or an IP address (then the certificate
//!   needs an IP SAN).

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why TLS could not be set up. Paths are named; file contents never are.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read or holds no certificate.
    #[error("cannot read certificates from {path}: {reason}")]
    Certificates {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The key file could not be read or holds no private key.
    #[error("cannot read a private key from {path}: {reason}")]
    Key {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// rustls refused the configuration (key does not match the certificate…).
    #[error("TLS configuration refused: {0}")]
    Config(#[from] rustls::Error),
    /// No trust anchors: neither `--sip-ca` nor any system root could be loaded.
    #[error("no trust anchors for outbound SIP TLS: give --sip-ca or install ca-certificates")]
    NoRoots,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Makes aws-lc-rs the process-wide rustls provider if none is set (reqwest's
/// `…-no-provider` feature needs one).
pub fn install_default_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |reason: String| TlsError::Certificates {
        path: path.display().to_string(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no CERTIFICATE block".to_owned()));
    }
    Ok(certs)
}

/// The inbound TLS configuration.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = certificates(cert)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.display().to_string(),
        reason: e.to_string(),
    })?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(Arc::new(config))
}

/// The outbound TLS configuration: roots from `ca` (PEM) or the system.
pub fn client_config(ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    match ca {
        Some(path) => {
            for c in certificates(path)? {
                roots.add(c).map_err(|e| TlsError::Certificates {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
            }
        }
        None => {
            let loaded = rustls_native_certs::load_native_certs();
            for c in loaded.certs {
                // Some system stores carry certificates rustls cannot parse; skip those.
                let _ = roots.add(c);
            }
        }
    }
    if roots.is_empty() {
        return Err(TlsError::NoRoots);
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
