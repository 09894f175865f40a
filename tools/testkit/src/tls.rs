//! Certificates made at test time (rcgen): a CA, a provider certificate for
//! `127.0.0.1` and `localhost`, a client certificate for mutual TLS, and a
//! second, unrelated CA — written as PEM files into a temporary directory,
//! the way a deployment hands them to `[tls]`.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// PEM files of a throw-away public key infrastructure. The directory and
/// everything in it is deleted when this is dropped.
#[derive(Debug)]
pub struct TestPki {
    /// Holds the files.
    dir: tempfile::TempDir,
}

impl TestPki {
    /// Makes every file: `ca.pem`, `provider.pem` + `provider.key` (signed
    /// by the CA, for 127.0.0.1 and localhost), `client.pem` + `client.key`
    /// (signed by the CA, for client authentication), `other-ca.pem` (a CA
    /// that signed nothing here).
    pub fn new() -> Result<TestPki, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let err = |e: rcgen::Error| format!("rcgen: {e}");
        let ca = ca("mprpc test CA").map_err(err)?;
        let other = ca_params("unrelated CA")
            .and_then(|p| p.self_signed(&KeyPair::generate()?))
            .map_err(err)?;
        let pki = TestPki { dir };
        let mut provider =
            CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).map_err(err)?;
        provider
            .distinguished_name
            .push(DnType::CommonName, "mprpc test provider");
        provider.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let provider_key = KeyPair::generate().map_err(err)?;
        let provider_cert = provider.signed_by(&provider_key, &ca).map_err(err)?;
        let mut client = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        client
            .distinguished_name
            .push(DnType::CommonName, "mprpc test caller");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_key = KeyPair::generate().map_err(err)?;
        let client_cert = client.signed_by(&client_key, &ca).map_err(err)?;
        for (name, pem) in [
            ("ca.pem", ca.pem()),
            ("other-ca.pem", other.pem()),
            ("provider.pem", provider_cert.pem()),
            ("provider.key", provider_key.serialize_pem()),
            ("client.pem", client_cert.pem()),
            ("client.key", client_key.serialize_pem()),
        ] {
            std::fs::write(pki.path(name), pem).map_err(|e| format!("writing {name}: {e}"))?;
        }
        Ok(pki)
    }

    /// The path of one of the files named in [`TestPki::new`].
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Parameters of a CA certificate named `name`.
fn ca_params(name: &str) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(params)
}

/// A self-signed CA that can sign certificates.
fn ca(name: &str) -> Result<CertifiedIssuer<'static, KeyPair>, rcgen::Error> {
    CertifiedIssuer::self_signed(ca_params(name)?, KeyPair::generate()?)
}
