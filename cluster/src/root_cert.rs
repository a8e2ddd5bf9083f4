//! Publishes the mesh's trust bundle in every namespace as Istio does: a
//! ConfigMap `istio-ca-root-cert` with key `root-cert.pem` (the injected
//! sidecar mounts it to trust the control plane and its peers). Written
//! with server-side apply (field manager `loupe`) when a namespace appears
//! and whenever the bundle changes (a rotated root: both roots while the
//! rotation lasts). Kubernetes' own namespaces are left alone, as istiod
//! leaves them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ObjectMeta, Patch, PatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use loupe_control::ca::CertificateAuthority;
use tokio::sync::{Notify, watch};

/// Istio's ConfigMap name and key.
pub const CONFIG_MAP: &str = "istio-ca-root-cert";
pub const ROOT_CERT_KEY: &str = "root-cert.pem";
/// Namespaces that get no ConfigMap.
pub const SYSTEM_NAMESPACES: &[&str] = &["kube-system", "kube-public", "kube-node-lease"];
/// How often the bundle is compared with what was written.
const BUNDLE_CHECK: Duration = Duration::from_secs(5);

/// The ConfigMap for `namespace` holding `bundle`.
pub fn config_map(namespace: &str, bundle: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(CONFIG_MAP.into()),
            namespace: Some(namespace.into()),
            labels: Some(BTreeMap::from([(
                "istio.io/config".to_string(),
                "true".to_string(),
            )])),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            ROOT_CERT_KEY.to_string(),
            bundle.to_string(),
        )])),
        ..Default::default()
    }
}

/// Writes the ConfigMap into every namespace while `leader` is true, until
/// the task is dropped.
pub async fn publish(
    client: kube::Client,
    ca: Arc<CertificateAuthority>,
    mut leader: watch::Receiver<bool>,
) {
    let changed = Arc::new(Notify::new());
    let (namespaces, writer) = reflector::store::<Namespace>();
    let stream = reflector::reflector(
        writer,
        watcher(Api::all(client.clone()), watcher::Config::default()).default_backoff(),
    );
    let wake = changed.clone();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::Apply(_) | watcher::Event::InitDone) => wake.notify_one(),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "watching namespaces failed; retrying"),
            }
        }
    });
    // What each namespace was last given.
    let mut written: BTreeMap<String, String> = BTreeMap::new();
    loop {
        tokio::select! {
            _ = changed.notified() => {}
            _ = tokio::time::sleep(BUNDLE_CHECK) => {}
            _ = leader.changed() => written.clear(),
        }
        if !*leader.borrow() {
            continue;
        }
        let bundle = ca.trust_bundle().to_pem();
        sync(&client, &namespaces, &bundle, &mut written).await;
    }
}

async fn sync(
    client: &kube::Client,
    namespaces: &Store<Namespace>,
    bundle: &str,
    written: &mut BTreeMap<String, String>,
) {
    for namespace in namespaces.state() {
        let Some(name) = namespace.metadata.name.clone() else {
            continue;
        };
        let terminating = namespace.metadata.deletion_timestamp.is_some();
        if terminating
            || SYSTEM_NAMESPACES.contains(&name.as_str())
            || written.get(&name).map(String::as_str) == Some(bundle)
        {
            continue;
        }
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), &name);
        let params = PatchParams::apply(crate::FIELD_MANAGER).force();
        match api
            .patch(
                CONFIG_MAP,
                &params,
                &Patch::Apply(config_map(&name, bundle)),
            )
            .await
        {
            Ok(_) => {
                tracing::info!(namespace = %name, "istio-ca-root-cert written");
                written.insert(name, bundle.to_string());
            }
            Err(error) => {
                tracing::warn!(namespace = %name, %error, "cannot write istio-ca-root-cert")
            }
        }
    }
}
