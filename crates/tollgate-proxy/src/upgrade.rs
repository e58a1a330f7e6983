//! Upgraded connections (WebSocket): once both sides switched protocols, bytes are copied both
//! ways until either side closes.

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

/// Tunnels a client connection taken over from the HTTP server (bytes it had read already
/// in front) to the upstream's upgraded connection.
pub(crate) fn tunnel<C>(client: C, upstream: OnUpgrade)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        match upstream.await {
            Ok(upstream) => {
                let mut client = client;
                let mut upstream = TokioIo::new(upstream);
                if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                    tracing::debug!(error = %e, "upgraded connection ended with an error");
                }
            }
            Err(e) => tracing::debug!(error = %e, "upstream protocol upgrade failed"),
        }
    });
}
