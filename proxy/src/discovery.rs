//! The control-plane client: one `Discovery.Stream` to `--control`. The
//! proxy says who it is (`Hello`), then compiles every `Snapshot` it
//! receives, swaps it in and ACKs it — or NACKs it with the reason and keeps
//! the last good config. When the control plane goes away the proxy keeps
//! serving with what it has and reconnects with capped exponential backoff.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use loupe_push::discovery_client::DiscoveryClient;
use loupe_push::proxy_message::Message;
use loupe_push::{Ack, Hello, Nack, ProxyMessage};
use rand::Rng;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::config::{ConfigStore, compile};
use crate::control::{ControlError, ControlPlane};
use crate::identity::Workload;
use crate::telemetry::metrics::Metrics;

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error("control plane stream failed: {0}")]
    Stream(#[from] tonic::Status),
    #[error("control plane closed the stream")]
    Closed,
}

pub struct Discovery {
    pub control: ControlPlane,
    pub hello: Hello,
    pub this: Workload,
    pub store: Arc<ConfigStore>,
    pub metrics: Arc<Metrics>,
}

impl Discovery {
    /// Runs forever: connect, stream, reconnect.
    pub async fn run(self) {
        let mut backoff = BACKOFF_MIN;
        loop {
            let mut applied = false;
            match self.session(&mut applied).await {
                Ok(()) => tracing::info!(control = %self.control.url, "control plane stream ended"),
                Err(error) => {
                    tracing::warn!(control = %self.control.url, %error, "control plane unavailable; serving the last good config")
                }
            }
            if applied {
                backoff = BACKOFF_MIN;
            }
            let jitter = rand::rng().random_range(0..=backoff.as_millis() as u64 / 2);
            tokio::time::sleep(backoff + Duration::from_millis(jitter)).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    async fn session(&self, applied: &mut bool) -> Result<(), DiscoveryError> {
        let channel = self.control.connect().await?;
        let (tx, rx) = mpsc::channel(16);
        // The channel has room, so the first message never waits.
        let _ = tx
            .send(ProxyMessage {
                message: Some(Message::Hello(self.hello.clone())),
            })
            .await;
        let mut snapshots = DiscoveryClient::new(channel)
            .max_decoding_message_size(loupe_push::MAX_SNAPSHOT_SIZE)
            .stream(self.control.request(ReceiverStream::new(rx)))
            .await?
            .into_inner();
        tracing::info!(control = %self.control.url, workload = %self.hello.workload, "connected to the control plane");
        while let Some(snapshot) = snapshots.message().await? {
            let version = snapshot.version;
            let reply = match compile(&snapshot, &self.this, &self.metrics) {
                Ok(config) => {
                    self.store.store(config);
                    *applied = true;
                    self.metrics.config_version.store(version, Relaxed);
                    self.metrics.config_acks.fetch_add(1, Relaxed);
                    tracing::info!(
                        version,
                        resources = snapshot.resources.len(),
                        services = snapshot.services.len(),
                        "snapshot applied"
                    );
                    Message::Ack(Ack { version })
                }
                Err(error) => {
                    self.metrics.config_nacks.fetch_add(1, Relaxed);
                    tracing::warn!(version, %error, "snapshot refused; keeping the last good config");
                    Message::Nack(Nack {
                        version,
                        error: error.to_string(),
                    })
                }
            };
            if tx
                .send(ProxyMessage {
                    message: Some(reply),
                })
                .await
                .is_err()
            {
                return Err(DiscoveryError::Closed);
            }
        }
        Err(DiscoveryError::Closed)
    }
}
