//! Wakes the publisher when the config changes: `LISTEN loupe_config` (every
//! committed write `NOTIFY`s it), plus a periodic version check as a safety
//! net for notifications lost while the listening connection was down.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::watch;

use crate::snapshot::Publisher;
use crate::store::NOTIFY_CHANNEL;

/// How often the version is checked without a notification.
pub const RECHECK_INTERVAL: Duration = Duration::from_secs(2);

/// Starts listening (so no change committed after this returns is missed)
/// and returns the task that follows changes until `shutdown` turns true.
pub async fn start(
    pool: &PgPool,
    publisher: Arc<Publisher>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(NOTIFY_CHANNEL).await?;
    Ok(tokio::spawn(async move {
        loop {
            let woke = tokio::select! {
                _ = shutdown.changed() => break,
                n = tokio::time::timeout(RECHECK_INTERVAL, listener.recv()) => n,
            };
            match woke {
                Ok(Ok(notification)) => {
                    tracing::debug!(payload = notification.payload(), "config notification");
                }
                Ok(Err(error)) => {
                    // recv() reconnects on its next call; don't spin meanwhile.
                    tracing::warn!(%error, "listening for config changes failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(_elapsed) => {}
            }
            if let Err(error) = publisher.refresh_config().await {
                tracing::warn!(%error, "reloading the config failed; proxies keep the last snapshot");
            }
        }
    }))
}
