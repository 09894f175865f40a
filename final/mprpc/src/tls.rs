//! TLS for the framed format, with rustls (through tokio-rustls): the
//! provider's certificate and key, the CA its callers verify it against,
//! and optional client certificates (mutual TLS). Configured by `[tls]`
//! ([`TlsConfig`]).
//!
//! TLS wraps the whole connection, preamble included: after the handshake
//! the bytes inside are exactly the framed format of [`crate::frame`]. The
//! course's format has no TLS (its C++ programs speak plaintext), so a TLS
//! port serves framed callers only.
//!
//! rustls runs here with its `ring` backend, which builds with a C compiler
//! alone; a fresh clone needs no cmake.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::config::TlsConfig;
use crate::error::Error;

/// The crypto backend, explicit so that no process-wide default is needed.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads every certificate in a PEM file; fails on none.
fn certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| Error::Config(format!("{what} {}: {e}", path.display())))?
        .collect();
    let certs = certs.map_err(|e| Error::Config(format!("{what} {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::Config(format!(
            "{what} {}: no PEM certificate in it",
            path.display()
        )));
    }
    Ok(certs)
}

/// Reads the private key of a PEM file.
fn key(path: &Path, what: &str) -> Result<PrivateKeyDer<'static>, Error> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        Error::Config(format!(
            "{what} {}: no usable private key: {e}",
            path.display()
        ))
    })
}

/// A root store of the CA certificates in `path`.
fn roots(path: &Path, what: &str) -> Result<Arc<RootCertStore>, Error> {
    let mut store = RootCertStore::empty();
    for cert in certs(path, what)? {
        store
            .add(cert)
            .map_err(|e| Error::Config(format!("{what} {}: {e}", path.display())))?;
    }
    Ok(Arc::new(store))
}

/// Maps a rustls configuration error.
fn config_err(what: &str, e: rustls::Error) -> Error {
    Error::Config(format!("{what}: {e}"))
}

// ANCHOR: acceptor
/// The provider's acceptor, if `[tls] cert` is set. With `client_ca`,
/// callers must present a certificate signed by it.
pub(crate) fn acceptor(cfg: &TlsConfig) -> Result<Option<TlsAcceptor>, Error> {
    let (Some(cert), Some(key_path)) = (&cfg.cert, &cfg.key) else {
        return Ok(None);
    };
    let chain = certs(cert, "tls.cert")?;
    let key = key(key_path, "tls.key")?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| config_err("tls", e))?;
    let builder = match &cfg.client_ca {
        Some(ca) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(
                roots(ca, "tls.client_ca")?,
                provider(),
            )
            .build()
            .map_err(|e| Error::Config(format!("tls.client_ca: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| config_err("tls.cert and tls.key", e))?;
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}
// ANCHOR_END: acceptor

/// What a caller needs to open TLS connections.
#[derive(Clone)]
pub(crate) struct TlsClient {
    /// The rustls connector (CA, optional client certificate).
    pub(crate) connector: TlsConnector,
    /// `tls.server_name`, if set: verified instead of the address's host.
    pub(crate) server_name: Option<ServerName<'static>>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl TlsClient {
    /// The name to verify for a provider at `addr` ("host:port").
    pub(crate) fn name_for(&self, addr: &str) -> Result<ServerName<'static>, String> {
        if let Some(name) = &self.server_name {
            return Ok(name.clone());
        }
        let host = match addr.rsplit_once(':') {
            Some((host, _port)) => host.trim_start_matches('[').trim_end_matches(']'),
            None => addr,
        };
        ServerName::try_from(host.to_string())
            .map_err(|e| format!("{host:?} is not a name TLS can verify: {e}"))
    }
}

// ANCHOR: connector
/// The caller's connector, if `[tls] ca` is set.
pub(crate) fn connector(cfg: &TlsConfig) -> Result<Option<TlsClient>, Error> {
    let Some(ca) = &cfg.ca else {
        return Ok(None);
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| config_err("tls", e))?
        .with_root_certificates(roots(ca, "tls.ca")?);
    let config = match (&cfg.client_cert, &cfg.client_key) {
        (Some(cert), Some(key_path)) => builder
            .with_client_auth_cert(
                certs(cert, "tls.client_cert")?,
                key(key_path, "tls.client_key")?,
            )
            .map_err(|e| config_err("tls.client_cert and tls.client_key", e))?,
        _ => builder.with_no_client_auth(),
    };
    let server_name = match &cfg.server_name {
        Some(name) => Some(
            ServerName::try_from(name.clone())
                .map_err(|e| Error::Config(format!("tls.server_name {name:?}: {e}")))?,
        ),
        None => None,
    };
    Ok(Some(TlsClient {
        connector: TlsConnector::from(Arc::new(config)),
        server_name,
    }))
}
// ANCHOR_END: connector
