//! Opening upstream connections: TCP (with `TCP_NODELAY`), optional TLS (verified by default);
//! for HTTP/2 (and HTTP/1.1 upgrades) a hyper handshake follows, whose connection task runs on
//! the calling worker's runtime, so a worker's upstream connections never cross threads.

use std::sync::Arc;
use std::time::Duration;

use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tollgate_model::Protocol;
use tollgate_plugin_api::ProxyBody;

use crate::io::Io;
use crate::{Target, UpstreamError};

/// Everything that shapes upstream connections; equal settings let a new snapshot keep the
/// pool (and its warm connections).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientSettings {
    /// Protocol towards the targets.
    pub protocol: Protocol,
    /// TCP+TLS connect timeout.
    pub connect_timeout: Duration,
    /// Idle connections kept per target and worker.
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

/// A hyper request sender on one upstream connection.
#[derive(Debug)]
pub(crate) enum Sender {
    Http1(http1::SendRequest<ProxyBody>),
    Http2(http2::SendRequest<ProxyBody>),
}

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// TCP connect failed (refused, unreachable, DNS).
    #[error("connect to {target}: {source}")]
    Tcp {
        /// `host:port`.
        target: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// TCP + TLS + handshake took longer than the connect timeout.
    #[error("connect to {0}: timed out")]
    Timeout(String),
    /// The TLS handshake failed (e.g. certificate not trusted).
    #[error("TLS handshake with {target}: {source}")]
    Tls {
        /// `host:port`.
        target: String,
        /// The error.
        source: std::io::Error,
    },
    /// The HTTP handshake failed.
    #[error("HTTP handshake with {target}: {source}")]
    Http {
        /// `host:port`.
        target: String,
        /// The error.
        source: hyper::Error,
    },
}

/// Opens connections for one service.
#[derive(Clone)]
pub(crate) struct Connector {
    protocol: Protocol,
    connect_timeout: Duration,
    tls: tokio_rustls::TlsConnector,
    sni: Option<ServerName<'static>>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("protocol", &self.protocol)
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

impl Connector {
    pub(crate) fn new(settings: &ClientSettings) -> Result<Self, UpstreamError> {
        let mut tls = tls_config(settings)?;
        tls.alpn_protocols = match settings.protocol {
            Protocol::Http1 => vec![b"http/1.1".to_vec()],
            Protocol::Http2 => vec![b"h2".to_vec()],
        };
        let sni = match &settings.sni {
            Some(name) => Some(
                ServerName::try_from(name.clone())
                    .map_err(|e| UpstreamError::Tls(format!("invalid sni {name:?}: {e}")))?,
            ),
            None => None,
        };
        Ok(Self {
            protocol: settings.protocol,
            connect_timeout: settings.connect_timeout,
            tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
            sni,
        })
    }

    /// Opens a connection to `target` (TCP, then TLS for `https`) within the connect timeout.
    pub(crate) async fn connect(&self, target: &Target) -> Result<Io, ConnectError> {
        let authority = target.authority.as_str();
        tokio::time::timeout(self.connect_timeout, self.connect_inner(target))
            .await
            .unwrap_or_else(|_| Err(ConnectError::Timeout(authority.to_owned())))
    }

    /// Opens a connection to `target` driven by hyper (HTTP/2, or HTTP/1.1 for a protocol
    /// upgrade) and spawns its connection task on the current runtime.
    pub(crate) async fn connect_hyper(&self, target: &Target) -> Result<Sender, ConnectError> {
        let authority = target.authority.as_str();
        let connect = async {
            let io = self.connect_inner(target).await?;
            self.handshake(TokioIo::new(io), authority).await
        };
        tokio::time::timeout(self.connect_timeout, connect)
            .await
            .unwrap_or_else(|_| Err(ConnectError::Timeout(authority.to_owned())))
    }

    async fn connect_inner(&self, target: &Target) -> Result<Io, ConnectError> {
        let authority = target.authority.as_str();
        let tcp = TcpStream::connect(authority)
            .await
            .map_err(|source| ConnectError::Tcp {
                target: authority.to_owned(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        if target.scheme != http::uri::Scheme::HTTPS {
            return Ok(Io::Plain(tcp));
        }
        let name = match &self.sni {
            Some(n) => n.clone(),
            None => ServerName::try_from(target.host.clone()).map_err(|e| ConnectError::Tls {
                target: authority.to_owned(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
            })?,
        };
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|source| ConnectError::Tls {
                target: authority.to_owned(),
                source,
            })?;
        Ok(Io::Tls(Box::new(tls)))
    }

    async fn handshake(&self, io: TokioIo<Io>, authority: &str) -> Result<Sender, ConnectError> {
        let http_err = |source| ConnectError::Http {
            target: authority.to_owned(),
            source,
        };
        match self.protocol {
            Protocol::Http1 => {
                let (sender, conn) = http1::Builder::new()
                    .handshake(io)
                    .await
                    .map_err(http_err)?;
                tokio::spawn(async move {
                    if let Err(e) = conn.with_upgrades().await {
                        tracing::debug!(error = %e, "upstream connection ended with an error");
                    }
                });
                Ok(Sender::Http1(sender))
            }
            Protocol::Http2 => {
                let (sender, conn) = http2::Builder::new(TokioExecutor::new())
                    .timer(TokioTimer::new())
                    .adaptive_window(true)
                    .keep_alive_interval(Duration::from_secs(30))
                    .keep_alive_timeout(Duration::from_secs(10))
                    .handshake(io)
                    .await
                    .map_err(http_err)?;
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "upstream HTTP/2 connection ended with an error");
                    }
                });
                Ok(Sender::Http2(sender))
            }
        }
    }

    /// The protocol towards the targets.
    pub(crate) fn protocol(&self) -> Protocol {
        self.protocol
    }
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
                        reason: e.to_string(),
                    })?;
                    roots.add(cert).map_err(|e| UpstreamError::CaFile {
                        reason: e.to_string(),
                    })?;
                }
                if roots.is_empty() {
                    return Err(UpstreamError::CaFile {
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
