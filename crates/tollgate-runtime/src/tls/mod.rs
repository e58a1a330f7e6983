//! Downstream TLS: certificates chosen by SNI.
//!
//! Two sources feed one resolver: node-local certificate *files* (`tls.certificates`, read
//! when the configuration is compiled) and named certificates with inline PEM
//! (`certificates`, in store mode decrypted from the store). Each chain is checked against
//! its private key here (validation cannot: it needs the crypto provider); errors carry the
//! field path and never quote a key. A certificate outside its validity period is served
//! with a warning in the logs (see `tollgate_model`'s certificate validation for why it is
//! not refused here).

mod resolver;

use std::sync::Arc;

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tollgate_model::{
    Certificate, CertificateFile, Config, Diagnostic, FieldPath, Timestamp, TlsVersion,
    parse_certificate_chain, unfold_pem,
};

use self::resolver::SniResolver;

/// The TLS server configuration of a snapshot.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// rustls configuration with the SNI resolver; ALPN `h2`, `http/1.1`.
    pub server_config: Arc<rustls::ServerConfig>,
}

impl TlsSettings {
    /// Loads every certificate (reading the files of `tls.certificates` now) and builds the
    /// server configuration; `None` without certificates. Files come first: the first file
    /// (else the first named certificate) answers clients whose SNI matches no name, and a
    /// name claimed by a file and a named certificate is served by the file.
    pub fn load(config: &Config) -> Result<Option<Self>, Vec<Diagnostic>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let Some(resolver) = resolver_for(config, &provider)? else {
            return Ok(None);
        };
        let versions: &[&rustls::SupportedProtocolVersion] = match config.tls.min_version {
            TlsVersion::V1_2 => &[&rustls::version::TLS13, &rustls::version::TLS12],
            TlsVersion::V1_3 => &[&rustls::version::TLS13],
        };
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .map_err(|e| {
                vec![Diagnostic::new(
                    FieldPath::root().key("tls").key("min_version"),
                    e.to_string(),
                )]
            })?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver));
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Some(Self {
            server_config: Arc::new(server),
        }))
    }
}

/// The resolver of every certificate of `config`; `None` without certificates.
fn resolver_for(
    config: &Config,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<Option<SniResolver>, Vec<Diagnostic>> {
    if config.tls.certificates.is_empty() && config.certificates.is_empty() {
        return Ok(None);
    }
    let mut resolver = SniResolver::default();
    let mut errors = Vec::new();
    let files = FieldPath::root().key("tls").key("certificates");
    for (i, file) in config.tls.certificates.iter().enumerate() {
        match load_file(file, provider) {
            Ok((key, names)) => resolver.add(key, names),
            Err(message) => errors.push(Diagnostic::new(files.index(i), message)),
        }
    }
    let named = FieldPath::root().key("certificates");
    let now = Timestamp::now();
    for (i, cert) in config.certificates.iter().enumerate() {
        match load_inline(cert, &named.index(i), provider, now) {
            Ok((key, names)) => resolver.add(key, names),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(Some(resolver))
    } else {
        Err(errors)
    }
}

fn load_file(
    cert: &CertificateFile,
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

/// A named certificate with inline PEM. Messages never quote the key.
fn load_inline(
    cert: &Certificate,
    at: &FieldPath,
    provider: &rustls::crypto::CryptoProvider,
    now: Timestamp,
) -> Result<(CertifiedKey, Vec<String>), Diagnostic> {
    let chain =
        parse_certificate_chain(&cert.cert).map_err(|e| Diagnostic::new(at.key("cert"), e))?;
    let Some(pem) = &cert.key else {
        return Err(Diagnostic::new(
            at.key("key_encrypted"),
            "an encrypted key can only be used by the store that encrypted it: in a configuration file give `key` (PEM text)",
        ));
    };
    let key = PrivateKeyDer::from_pem_slice(unfold_pem(pem).as_bytes()).map_err(|e| {
        let reason = match e {
            rustls_pki_types::pem::Error::NoItemsFound => "no private key block found",
            _ => "the PEM text cannot be read",
        };
        Diagnostic::new(at.key("key"), format!("not a usable private key: {reason}"))
    })?;
    let der: Vec<CertificateDer<'static>> =
        chain.der.into_iter().map(CertificateDer::from).collect();
    let certified = CertifiedKey::from_der(der, key, provider).map_err(|e| {
        let reason = match e {
            rustls::Error::InconsistentKeys(_) => {
                "does not match the certificate (the leaf's public key belongs to another key)"
                    .to_owned()
            }
            other => format!("cannot be used: {other}"),
        };
        Diagnostic::new(at.key("key"), reason)
    })?;
    if let Some(problem) = chain.leaf.validity_problem(now) {
        tracing::warn!(
            certificate = %cert.name,
            not_before = %chain.leaf.not_before,
            not_after = %chain.leaf.not_after,
            "{problem}; serving it anyway: clients will refuse it"
        );
    }
    let names = if cert.hosts.is_empty() {
        chain.leaf.default_hosts()
    } else {
        cert.hosts.clone()
    };
    Ok((certified, names))
}

#[cfg(test)]
mod tests;
