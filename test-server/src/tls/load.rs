//! Reading `--tls-cert` and `--tls-key` into a rustls server configuration.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, InconsistentKeys, ServerConfig};

/// Why the certificate and key cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Only one of the two flags was given.
    #[error("--tls-cert and --tls-key go together: {0} is missing")]
    Incomplete(&'static str),
    /// A file could not be read.
    #[error("cannot read the {what} file {}: {source}", .path.display())]
    Read {
        /// `certificate` or `key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A file is not valid PEM.
    #[error("the {what} file {} is not valid PEM: {source}", .path.display())]
    Pem {
        /// `certificate` or `key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What the PEM reader said.
        source: pem::Error,
    },
    /// The certificate file holds no `CERTIFICATE` block.
    #[error("the certificate file {} holds no certificate (a PEM `BEGIN CERTIFICATE` block)", .0.display())]
    NoCertificate(PathBuf),
    /// The key file holds no private key block.
    #[error("the key file {} holds no private key (a PEM `BEGIN PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block)", .0.display())]
    NoKey(PathBuf),
    /// The key is not the certificate's.
    #[error("the key in {} does not match the certificate in {}", .key.display(), .cert.display())]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// rustls refused the certificate or key (an unsupported key type, a malformed one).
    #[error("the certificate or key cannot be used: {0}")]
    Rejected(rustls::Error),
}

/// The server configuration for `cert` and `key` (both or neither); `None` without them.
pub fn from_flags(
    cert: Option<&Path>,
    key: Option<&Path>,
) -> Result<Option<Arc<ServerConfig>>, TlsError> {
    match (cert, key) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(TlsError::Incomplete("--tls-key")),
        (None, Some(_)) => Err(TlsError::Incomplete("--tls-cert")),
        (Some(cert), Some(key)) => server_config(cert, key).map(Some),
    }
}

/// Loads a PEM certificate chain and its private key; offers `h2` and `http/1.1` (ALPN).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = certificates(cert)?;
    let private = private_key(key)?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Rejected)?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch) => TlsError::Mismatch {
                cert: cert.to_owned(),
                key: key.to_owned(),
            },
            other => TlsError::Rejected(other),
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read("certificate", path)?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            what: "certificate",
            path: path.to_owned(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(path.to_owned()));
    }
    Ok(chain)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read("key", path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|source| match source {
        pem::Error::NoItemsFound => TlsError::NoKey(path.to_owned()),
        source => TlsError::Pem {
            what: "key",
            path: path.to_owned(),
            source,
        },
    })
}
