//! The push stream (`loupe.push.v1.Discovery/Stream`): an authenticated
//! proxy says `Hello` (which must describe the workload its credential is
//! bound to, see [`crate::authn::claims`]), is registered as a workload,
//! receives the current snapshot at once and
//! every later one, and answers each with `Ack` or `Nack`. When the stream
//! ends (the proxy went away, or the control plane shuts down) the workload
//! leaves the registry and its endpoints leave the next snapshot.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use loupe_push::discovery_server::Discovery;
use loupe_push::proxy_message::Message;
use loupe_push::{ProxyMessage, Snapshot};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::authn::{self, Authenticator, claims};
use crate::registry::{ConnectionId, Registry, Workload};
use crate::snapshot::{Published, Publisher};

/// How long a new stream may take to say Hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a new workload's stream waits for the debounced push that
/// lists it (see [`crate::debounce`]) before it starts with what there is.
const FIRST_PUSH_WAIT: Duration = Duration::from_secs(11);

/// The `Discovery` service. Clone-cheap; one per server.
#[derive(Clone)]
pub struct PushService {
    authenticator: Arc<dyn Authenticator>,
    registry: Arc<Registry>,
    publisher: Arc<Publisher>,
    shutdown: watch::Receiver<bool>,
}

impl PushService {
    /// `shutdown` turning `true` ends every open stream (so a graceful server
    /// shutdown does not wait on them forever).
    pub fn new(
        authenticator: Arc<dyn Authenticator>,
        registry: Arc<Registry>,
        publisher: Arc<Publisher>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        PushService {
            authenticator,
            registry,
            publisher,
            shutdown,
        }
    }
}

type SnapshotStream = Pin<Box<dyn Stream<Item = Result<Snapshot, Status>> + Send>>;

#[tonic::async_trait]
impl Discovery for PushService {
    type StreamStream = SnapshotStream;

    async fn stream(
        &self,
        request: Request<Streaming<ProxyMessage>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        let peer = request.remote_addr();
        let who = authn::authenticate(self.authenticator.as_ref(), &request).await?;
        let mut inbound = request.into_inner();
        let hello = match tokio::time::timeout(HELLO_TIMEOUT, inbound.message()).await {
            Err(_) => {
                return Err(Status::deadline_exceeded(format!(
                    "no Hello within {HELLO_TIMEOUT:?}: a proxy must introduce itself first"
                )));
            }
            Ok(Err(status)) => return Err(status),
            Ok(Ok(None)) => {
                return Err(Status::cancelled("stream closed before Hello"));
            }
            Ok(Ok(Some(ProxyMessage {
                message: Some(Message::Hello(hello)),
            }))) => hello,
            Ok(Ok(Some(other))) => {
                return Err(Status::invalid_argument(format!(
                    "the first message must be Hello, got {}",
                    message_name(&other)
                )));
            }
        };
        // Sizes first (nothing more is read from a huge Hello), then shape,
        // then whether the credential backs every claim.
        let refuse = |mismatch: claims::Mismatch| {
            tracing::warn!(%who, ?peer, %mismatch, "Hello refused");
            Status::permission_denied(mismatch.to_string())
        };
        claims::check_sizes(&hello).map_err(refuse)?;
        if let Err(e) = Workload::check_shape(&hello) {
            return Err(Status::invalid_argument(e.to_string()));
        }
        claims::check_identity(&hello, &who).map_err(refuse)?;
        let declared = self
            .publisher
            .declared_now(&who.namespace, &who.workload_entry)
            .await
            .map_err(|error| {
                tracing::warn!(%error, "cannot read the config to check a Hello");
                Status::unavailable("cannot read the config now; retry")
            })?
            .ok_or_else(|| {
                tracing::warn!(%who, ?peer, "Hello refused: no such WorkloadEntry");
                Status::failed_precondition(format!(
                    "the credential is for {who}, which is not in the config store: apply it first"
                ))
            })?;
        claims::check_declared(&hello, &declared).map_err(refuse)?;
        let workload =
            Workload::from_hello(hello).map_err(|e| Status::invalid_argument(e.to_string()))?;
        tracing::debug!(workload = %workload.name, ?peer, "Hello");

        let namespace = workload.namespace.clone();
        let (id, changed) = self.registry.connect(workload).await;
        let mut snapshots = self.publisher.subscribe();
        // A workload not listed yet asks for a (debounced) push and waits
        // for it, so its first snapshot already lists it among the
        // endpoints. Proxies reconnecting within their grace (a restarted
        // control plane's whole mesh) change nothing and push nothing.
        if changed {
            snapshots.borrow_and_update();
            self.publisher.publish_soon();
            let _ = tokio::time::timeout(FIRST_PUSH_WAIT, snapshots.changed()).await;
        }

        let (tx, rx) = mpsc::channel(4);
        let conn = StreamTask {
            id,
            namespace,
            registry: self.registry.clone(),
            publisher: self.publisher.clone(),
            snapshots,
            inbound,
            tx,
            shutdown: self.shutdown.clone(),
        };
        tokio::spawn(conn.run());
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// One proxy's stream: sends snapshots out, reads ACK/NACK in.
struct StreamTask {
    id: ConnectionId,
    /// The proxy's namespace: what it sees of the config.
    namespace: String,
    registry: Arc<Registry>,
    publisher: Arc<Publisher>,
    snapshots: watch::Receiver<Arc<Published>>,
    inbound: Streaming<ProxyMessage>,
    tx: mpsc::Sender<Result<Snapshot, Status>>,
    shutdown: watch::Receiver<bool>,
}

impl StreamTask {
    async fn run(mut self) {
        let first = self.snapshots.borrow_and_update().clone();
        if self
            .tx
            .send(Ok(first.for_namespace(&self.namespace)))
            .await
            .is_ok()
        {
            self.serve().await;
        }
        // Everyone else's endpoints change now, or when the grace runs out.
        if self.registry.disconnect(self.id).await {
            self.publisher.publish_soon();
        }
    }

    async fn serve(&mut self) {
        if *self.shutdown.borrow() {
            return;
        }
        loop {
            tokio::select! {
                _ = self.shutdown.changed() => return,
                _ = self.tx.closed() => return,
                changed = self.snapshots.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let published = self.snapshots.borrow_and_update().clone();
                    if self.tx.send(Ok(published.for_namespace(&self.namespace))).await.is_err() {
                        return;
                    }
                }
                message = self.inbound.message() => match message {
                    Ok(Some(ProxyMessage { message: Some(Message::Ack(ack)) })) => {
                        self.registry.ack(self.id, ack.version).await;
                    }
                    Ok(Some(ProxyMessage { message: Some(Message::Nack(nack)) })) => {
                        self.registry.nack(self.id, nack.version, &nack.error).await;
                    }
                    Ok(Some(other)) => {
                        tracing::warn!(message = message_name(&other), "unexpected message on a push stream; ignored");
                    }
                    Ok(None) => return,
                    Err(status) => {
                        tracing::debug!(%status, "push stream broke");
                        return;
                    }
                },
            }
        }
    }
}

fn message_name(m: &ProxyMessage) -> &'static str {
    match m.message {
        Some(Message::Hello(_)) => "Hello",
        Some(Message::Ack(_)) => "Ack",
        Some(Message::Nack(_)) => "Nack",
        None => "an empty message",
    }
}
