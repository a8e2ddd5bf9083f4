//! Follows the cluster's Services, EndpointSlices and Pods (reflectors over
//! every namespace) and hands their translation ([`crate::registry`]) to the
//! publisher after each change, once all three have been listed — so a
//! starting control plane never pushes a partial endpoint set.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use loupe_control::snapshot::Publisher;
use tokio::sync::Notify;

/// How long changes are gathered before one translation.
const SETTLE: Duration = Duration::from_millis(100);

/// Reflectors of one kind of object.
fn reflect<K>(client: &kube::Client, listed: Arc<AtomicBool>, changed: Arc<Notify>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let api: Api<K> = Api::all(client.clone());
    let stream = reflector::reflector(
        writer,
        watcher(api, watcher::Config::default()).default_backoff(),
    );
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::Init) | Ok(watcher::Event::InitApply(_)) => {}
                Ok(watcher::Event::InitDone) => {
                    listed.store(true, Ordering::Release);
                    changed.notify_one();
                }
                Ok(_) => changed.notify_one(),
                Err(error) => {
                    tracing::warn!(kind = K::kind(&()).as_ref(), %error, "watching the registry failed; retrying");
                }
            }
        }
    });
    reader
}

/// Keeps the publisher's platform registry in step with the cluster, until
/// the task is dropped.
pub async fn follow(client: kube::Client, publisher: Arc<Publisher>) {
    let changed = Arc::new(Notify::new());
    let flags: [Arc<AtomicBool>; 3] = Default::default();
    let services: Store<Service> = reflect(&client, flags[0].clone(), changed.clone());
    let slices: Store<EndpointSlice> = reflect(&client, flags[1].clone(), changed.clone());
    let pods: Store<Pod> = reflect(&client, flags[2].clone(), changed.clone());
    loop {
        changed.notified().await;
        tokio::time::sleep(SETTLE).await;
        if !flags.iter().all(|f| f.load(Ordering::Acquire)) {
            continue;
        }
        let resources =
            crate::registry::platform_resources(&owned(&services), &owned(&slices), &owned(&pods));
        tracing::debug!(resources = resources.len(), "cluster registry changed");
        publisher.set_platform(resources);
    }
}

fn owned<K: kube::Resource<DynamicType = ()> + Clone + 'static>(store: &Store<K>) -> Vec<K> {
    store.state().iter().map(|o| K::clone(o)).collect()
}
