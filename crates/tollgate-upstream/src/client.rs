//! HTTP clients towards upstreams, one per service and worker.

use std::sync::Arc;
use std::time::Duration;

use hyper_rustls::{FixedServerNameResolver, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tollgate_model::Protocol;
use tollgate_plugin_api::ProxyBody;

use crate::UpstreamError;

/// The client type the proxy forwards with.
pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, ProxyBody>;

/// Everything that shapes a client; equal settings can share connection pools across snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientSettings {
    /// Protocol towards the targets.
    pub protocol: Protocol,
    /// TCP+TLS connect timeout.
    pub connect_timeout: Duration,
    /// Idle connections kept per target.
    pub max_idle_per_target: usize,
    /// Idle connection lifetime.
    pub idle_timeout: Duration,
    /// PEM bytes of trusted CAs (instead of the web roots).
    pub ca_pem: Option<Vec<u8>>,
    /// SNI (and verified name) override.
    pub sni: Option<String>,
    /// Skip certificate verification.
    pub insecure_skip_verify: bool,
}

/// Builds one client (with its own connection pool) for these settings.
pub fn build_client(settings: &ClientSettings) -> Result<UpstreamClient, UpstreamError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(settings.connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));

    let tls = tls_config(settings)?;
    let builder = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http();
    let builder = match &settings.sni {
        Some(name) => {
            let name = ServerName::try_from(name.clone())
                .map_err(|e| UpstreamError::Tls(format!("invalid sni {name:?}: {e}")))?;
            builder.with_server_name_resolver(FixedServerNameResolver::new(name))
        }
        None => builder,
    };
    let connector = match settings.protocol {
        Protocol::Http1 => builder.enable_http1().wrap_connector(http),
        Protocol::Http2 => builder.enable_http2().wrap_connector(http),
    };

    let mut client = Client::builder(TokioExecutor::new());
    client
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .pool_idle_timeout(settings.idle_timeout)
        .pool_max_idle_per_host(settings.max_idle_per_target)
        .set_host(false)
        .retry_canceled_requests(true);
    if settings.protocol == Protocol::Http2 {
        client
            .http2_only(true)
            .http2_adaptive_window(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .http2_keep_alive_timeout(Duration::from_secs(10));
    }
    Ok(client.build(connector))
}

fn tls_config(settings: &ClientSettings) -> Result<rustls::ClientConfig, UpstreamError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| UpstreamError::Tls(e.to_string()))?;
    let config = if settings.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        match &settings.ca_pem {
            Some(pem) => {
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|e| UpstreamError::CaFile {
                        path: "(ca)".into(),
                        reason: e.to_string(),
                    })?;
                    roots.add(cert).map_err(|e| UpstreamError::CaFile {
                        path: "(ca)".into(),
                        reason: e.to_string(),
                    })?;
                }
                if roots.is_empty() {
                    return Err(UpstreamError::CaFile {
                        path: "(ca)".into(),
                        reason: "no certificate found in the file".into(),
                    });
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(config)
}

/// Verifier for `insecure_skip_verify: true`: accepts any certificate, still checks signatures
/// so the handshake is well-formed.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
