//! PostgreSQL change notifications: every commit notifies [`NOTIFY_CHANNEL`] with the new
//! revision; a node listening on it reads the change at once instead of at its next poll.
//!
//! Notifications are not queued for a listener that is not connected, so every (re)connection
//! is followed by a full re-read of the store: a notification lost while the connection was
//! down delays nothing. The periodic poll of [`crate::Feed::watch`] covers the case where the
//! connection dies silently.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;

use crate::db::CONNECT_TIMEOUT;
use crate::{Feed, NOTIFY_CHANNEL, StoreError};

/// Listens for change notifications until the task is aborted, reconnecting with backoff.
pub(crate) async fn run(feed: Arc<Feed>) {
    let mut failures = 0_u32;
    loop {
        let connected = listen(&feed, &mut failures).await;
        feed.set_listening(false);
        if connected {
            tracing::warn!(
                store = feed.store().display_url(),
                "lost the change-notification connection; reconnecting"
            );
        }
        failures = failures.saturating_add(1);
        tokio::time::sleep(backoff(failures)).await;
    }
}

/// One listening session; returns whether it got as far as listening.
async fn listen(feed: &Arc<Feed>, failures: &mut u32) -> bool {
    let mut listener = match connect(feed).await {
        Ok(listener) => listener,
        Err(e) => {
            if *failures == 0 {
                tracing::warn!(store = feed.store().display_url(), error = %e, "cannot listen for store changes");
            }
            return false;
        }
    };
    *failures = 0;
    feed.set_listening(true);
    tracing::debug!(
        store = feed.store().display_url(),
        channel = NOTIFY_CHANNEL,
        "listening for store changes"
    );
    // Whatever was committed while nobody listened.
    if let Err(e) = feed.resync().await {
        tracing::warn!(store = feed.store().display_url(), error = %e, "cannot re-read the store after connecting");
    }
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                let revision = notification.payload().parse::<i64>().unwrap_or(i64::MAX);
                feed.notified();
                // This node's own commits are published by the committer.
                if revision > feed.current().revision
                    && !feed.store().committed_here(revision).await
                    && let Err(e) = feed.refresh().await
                {
                    tracing::warn!(store = feed.store().display_url(), error = %e, "cannot read a notified change; the poll will retry");
                }
            }
            Ok(None) => return true,
            Err(e) => {
                tracing::debug!(error = %e, "change-notification connection failed");
                return true;
            }
        }
    }
}

async fn connect(feed: &Feed) -> Result<PgListener, StoreError> {
    let url = feed.store().secret_url();
    let display = || feed.store().display_url().to_owned();
    let attempt = async {
        let mut listener = PgListener::connect(url).await?;
        // Report a lost connection at once (we reconnect, with backoff, and resync) instead
        // of blocking in a reconnection while the server is down.
        listener.eager_reconnect(false);
        listener.listen(NOTIFY_CHANNEL).await?;
        Ok::<_, sqlx::Error>(listener)
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
        Ok(Ok(listener)) => Ok(listener),
        Ok(Err(source)) => Err(StoreError::Connect {
            url: display(),
            source,
        }),
        Err(_) => Err(StoreError::Timeout(CONNECT_TIMEOUT)),
    }
}

/// 250 ms, doubling, at most 30 s.
fn backoff(failures: u32) -> Duration {
    (Duration::from_millis(250) * 2_u32.saturating_pow(failures.min(7)))
        .min(Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_thirty_seconds() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(40), Duration::from_secs(30));
    }
}
