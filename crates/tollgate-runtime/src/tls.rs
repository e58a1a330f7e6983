//! Downstream TLS: certificates loaded from files and chosen by SNI.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tollgate_model::{Certificate, TlsConfig, TlsVersion};

/// The TLS server configuration of a snapshot.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// rustls configuration with the SNI resolver; ALPN `h2`, `http/1.1`.
    pub server_config: Arc<rustls::ServerConfig>,
}

impl TlsSettings {
    /// Loads every certificate (reading the files now) and builds the server configuration.
    /// Errors are `(index of the certificate, message)`.
    pub fn load(config: &TlsConfig) -> Result<Option<Self>, (usize, String)> {
        if config.certificates.is_empty() {
            return Ok(None);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut resolver = SniResolver::default();
        for (i, cert) in config.certificates.iter().enumerate() {
            let (key, names) = load_one(cert, &provider).map_err(|e| (i, e))?;
            let key = Arc::new(key);
            for name in names {
                let name = name.to_ascii_lowercase();
                match name.strip_prefix("*.") {
                    Some(suffix) => {
                        resolver
                            .wildcard
                            .entry(suffix.to_owned())
                            .or_insert(key.clone());
                    }
                    None => {
                        resolver.exact.entry(name).or_insert(key.clone());
                    }
                }
            }
            if resolver.default.is_none() {
                resolver.default = Some(key);
            }
        }
        let versions: &[&rustls::SupportedProtocolVersion] = match config.min_version {
            TlsVersion::V1_2 => &[&rustls::version::TLS13, &rustls::version::TLS12],
            TlsVersion::V1_3 => &[&rustls::version::TLS13],
        };
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .map_err(|e| (0, e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver));
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Some(Self {
            server_config: Arc::new(server),
        }))
    }
}

fn load_one(
    cert: &Certificate,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<(CertifiedKey, Vec<String>), String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert.cert)
        .map_err(|e| format!("cannot read certificate file {:?}: {e}", cert.cert))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot parse certificate file {:?}: {e}", cert.cert))?;
    let Some(leaf) = chain.first() else {
        return Err(format!("no certificate in {:?}", cert.cert));
    };
    let key = PrivateKeyDer::from_pem_file(&cert.key)
        .map_err(|e| format!("cannot read private key file {:?}: {e}", cert.key))?;
    let names = if cert.hosts.is_empty() {
        names_in(leaf)?
    } else {
        cert.hosts.clone()
    };
    let certified = CertifiedKey::from_der(chain, key, provider).map_err(|e| {
        format!(
            "certificate {:?} and key {:?} do not fit: {e}",
            cert.cert, cert.key
        )
    })?;
    Ok((certified, names))
}

fn names_in(leaf: &CertificateDer<'_>) -> Result<Vec<String>, String> {
    use x509_parser::prelude::*;
    let (_, parsed) = X509Certificate::from_der(leaf.as_ref())
        .map_err(|e| format!("cannot parse the leaf certificate: {e}"))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = parsed.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::DNSName(dns) = name {
                names.push((*dns).to_owned());
            }
        }
    }
    if names.is_empty() {
        for cn in parsed.subject().iter_common_name() {
            if let Ok(cn) = cn.as_str() {
                names.push(cn.to_owned());
            }
        }
    }
    Ok(names)
}

/// Picks a certificate by SNI: exact name, then wildcard (one label), then the first
/// certificate configured.
#[derive(Debug, Default)]
struct SniResolver {
    exact: HashMap<String, Arc<CertifiedKey>>,
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Option<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = hello.server_name() {
            let name = name.to_ascii_lowercase();
            if let Some(key) = self.exact.get(&name) {
                return Some(key.clone());
            }
            if let Some((_, parent)) = name.split_once('.')
                && let Some(key) = self.wildcard.get(parent)
            {
                return Some(key.clone());
            }
        }
        self.default.clone()
    }
}
