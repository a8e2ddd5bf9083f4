//! The snapshot every proxy receives, rebuilt whenever the config or the
//! registry changes (endpoints: the declared ones, see [`crate::declared`],
//! whose proxies are connected or within their grace, see [`crate::registry`]), and published on a `watch` channel that each push
//! stream follows (a slow proxy simply skips to the newest snapshot). Each
//! proxy gets the part of it that applies to its namespace (see [`crate::scope`]).
//!
//! Versions: `version = max(previous + 1, config_version * 1_000_000)`, where
//! `config_version` is the id of the newest config revision. So a version
//! only grows within a control plane's life, a config change always shows as
//! a jump to a new million, and `version / 1_000_000` tells which config
//! revision a proxy runs (while fewer than a million registry changes happen
//! between two config changes). A restarted control plane starts again at
//! `config_version * 1_000_000`; proxies take the first snapshot of every new
//! stream as is.

use std::sync::{Arc, Mutex};

use loupe_model::Resource;
use loupe_push::Snapshot;
use tokio::sync::watch;

use crate::authn::claims::Declared;
use crate::debounce::PushRequests;
use crate::declared::Declarations;
use crate::registry::Registry;
use crate::scope::Scope;
use crate::store::{ConfigStore, StoreError, kube_object};

/// Snapshot versions per config version (see the module comment).
pub const VERSIONS_PER_CONFIG: u64 = 1_000_000;

struct Config {
    version: i64,
    /// The config's own resources, as loaded.
    loaded: Arc<Vec<Resource>>,
    /// The platform's registry as Istio resources (see [`Publisher::set_platform`]).
    platform: Arc<Vec<Resource>>,
    resources: Vec<loupe_push::Resource>,
    scopes: Vec<Scope>,
    declarations: Arc<Declarations>,
    /// Fetched JWKS by `jwksUri`.
    jwks: Arc<std::collections::HashMap<String, String>>,
}

/// What the publisher sends to every stream: the whole mesh's snapshot and
/// who sees each resource.
#[derive(Debug, Default)]
pub struct Published {
    /// Every resource and every service.
    pub snapshot: Snapshot,
    /// Parallel to `snapshot.resources`.
    scopes: Vec<Scope>,
}

impl Published {
    /// The snapshot a proxy in `namespace` receives: the resources visible
    /// there, and every service's endpoints.
    pub fn for_namespace(&self, namespace: &str) -> Snapshot {
        Snapshot {
            version: self.snapshot.version,
            resources: self
                .snapshot
                .resources
                .iter()
                .zip(&self.scopes)
                .filter(|(_, scope)| scope.includes(namespace))
                .map(|(r, _)| r.clone())
                .collect(),
            services: self.snapshot.services.clone(),
            mesh: self.snapshot.mesh.clone(),
            jwks: self.snapshot.jwks.clone(),
        }
    }
}

pub struct Publisher {
    store: ConfigStore,
    registry: Arc<Registry>,
    mesh: loupe_push::MeshSettings,
    config: Mutex<Config>,
    sender: watch::Sender<Arc<Published>>,
    jwks: crate::jwks::JwksFetcher,
    requests: Arc<PushRequests>,
    /// Counts [`Publisher::set_platform`] calls, for [`Publisher::declared_now`].
    platform_updates: watch::Sender<u64>,
    /// How long [`Publisher::declared_now`] waits for the platform to list a
    /// workload it does not know yet (zero without a platform).
    platform_wait: Mutex<std::time::Duration>,
}

impl Publisher {
    /// A publisher with an empty first snapshot; call [`Publisher::refresh_config`] to load.
    pub fn new(
        store: ConfigStore,
        registry: Arc<Registry>,
        mesh: loupe_push::MeshSettings,
    ) -> Self {
        let (sender, _) = watch::channel(Arc::new(Published::default()));
        Publisher {
            store,
            registry,
            mesh,
            config: Mutex::new(Config {
                version: -1,
                loaded: Arc::default(),
                platform: Arc::default(),
                resources: Vec::new(),
                scopes: Vec::new(),
                declarations: Arc::default(),
                jwks: Arc::default(),
            }),
            sender,
            jwks: Default::default(),
            requests: Arc::default(),
            platform_updates: watch::channel(0).0,
            platform_wait: Mutex::new(std::time::Duration::ZERO),
        }
    }

    /// Follow the current snapshot and every later one.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Published>> {
        self.sender.subscribe()
    }

    pub fn current(&self) -> Arc<Published> {
        self.sender.borrow().clone()
    }

    /// The config version of the current snapshot (`-1` before the first load).
    pub fn config_version(&self) -> i64 {
        self.lock().version
    }

    /// The declared workload `namespace/name` (its WorkloadEntry) in the
    /// current config.
    pub fn declared(&self, namespace: &str, name: &str) -> Option<Declared> {
        self.lock().declarations.workload(namespace, name).cloned()
    }

    /// [`Publisher::declared`], reloading the config first when the entry is
    /// not in the one loaded (it may have been applied a moment ago, its
    /// notification still on the way).
    pub async fn declared_now(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Declared>, StoreError> {
        let mut updates = self.platform_updates.subscribe();
        if let Some(found) = self.declared(namespace, name) {
            return Ok(Some(found));
        }
        self.refresh_config().await?;
        let wait = *self.platform_wait.lock().unwrap_or_else(|e| e.into_inner());
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(found) = self.declared(namespace, name) {
                return Ok(Some(found));
            }
            // A platform's watch may not have seen a brand-new workload yet.
            match tokio::time::timeout_at(deadline, updates.changed()).await {
                Ok(Ok(())) => continue,
                _ => return Ok(None),
            }
        }
    }

    /// Has [`Publisher::declared_now`] wait up to `wait` for the platform's
    /// registry to list a workload it does not know (a pod whose proxy
    /// connects before the pod's watch event arrives).
    pub fn wait_for_platform(&self, wait: std::time::Duration) {
        *self.platform_wait.lock().unwrap_or_else(|e| e.into_inner()) = wait;
    }

    /// Reloads the config if the store has a newer version, and publishes.
    /// Returns whether a new snapshot was published.
    pub async fn refresh_config(&self) -> Result<bool, StoreError> {
        let known = self.config_version();
        if self.store.version().await? == known {
            return Ok(false);
        }
        let (version, loaded) = self.store.current_resources().await?;
        let jwks = Arc::new(self.jwks.for_resources(&loaded).await);
        let (resources, scopes) = to_push(&loaded);
        {
            let mut config = self.lock();
            // Two refreshes may race: never go back to an older config.
            if version <= config.version {
                return Ok(false);
            }
            let platform = config.platform.clone();
            let declarations = self.declare(&loaded, &platform);
            *config = Config {
                version,
                loaded: Arc::new(loaded),
                platform,
                resources,
                scopes,
                declarations,
                jwks,
            };
        }
        tracing::info!(config_version = version, "config changed");
        self.publish();
        Ok(true)
    }

    /// Replaces the platform's registry: workloads and services that a
    /// platform knows (cluster mode: Pods, Services and EndpointSlices),
    /// given in Istio's shapes — a WorkloadEntry per workload, a
    /// ServiceEntry per service — as Istio's own service registry models
    /// Kubernetes. They join the config's declarations (who a credential may
    /// speak for, every service's endpoints) but are not config: they are
    /// neither stored nor pushed as resources. Publishes at once.
    pub fn set_platform(&self, platform: Vec<Resource>) {
        {
            let mut config = self.lock();
            let platform = Arc::new(platform);
            config.declarations = self.declare(&config.loaded, &platform);
            config.platform = platform;
        }
        self.platform_updates.send_modify(|n| *n += 1);
        self.publish();
    }

    fn declare(&self, loaded: &[Resource], platform: &[Resource]) -> Arc<Declarations> {
        let all: Vec<Resource> = loaded.iter().chain(platform).cloned().collect();
        Arc::new(Declarations::from_resources(&all, &self.mesh.trust_domain))
    }

    /// Asks for a debounced push (see [`crate::debounce`]): registry changes.
    pub fn publish_soon(&self) {
        self.requests.ask();
    }

    /// Where [`Publisher::publish_soon`]'s asks go, for [`crate::debounce::run`].
    pub fn push_requests(&self) -> Arc<PushRequests> {
        self.requests.clone()
    }

    /// Builds and publishes a snapshot of the current config and registry now.
    pub fn publish(&self) -> u64 {
        // The config lock is held while publishing so versions go out in order.
        let config = self.lock();
        let config_base = u64::try_from(config.version.max(0)).unwrap_or(0) * VERSIONS_PER_CONFIG;
        let version = (self.sender.borrow().snapshot.version + 1).max(config_base);
        let snapshot = Snapshot {
            version,
            resources: config.resources.clone(),
            services: config.declarations.services(&self.registry.live_entries()),
            mesh: Some(self.mesh.clone()),
            jwks: (*config.jwks).clone(),
        };
        tracing::debug!(
            version,
            resources = snapshot.resources.len(),
            services = snapshot.services.len(),
            "snapshot published"
        );
        self.sender.send_replace(Arc::new(Published {
            snapshot,
            scopes: config.scopes.clone(),
        }));
        version
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Config> {
        self.config.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Resources as the push protocol carries them (the Kubernetes object as
/// JSON), and their scopes.
fn to_push(resources: &[Resource]) -> (Vec<loupe_push::Resource>, Vec<Scope>) {
    resources
        .iter()
        .filter_map(|r| {
            let key = r.key();
            match kube_object(r) {
                Ok(object) => Some((
                    loupe_push::Resource {
                        kind: key.kind.as_str().to_string(),
                        namespace: key.namespace,
                        name: key.name,
                        json: object.to_string(),
                    },
                    Scope::of(r),
                )),
                Err(error) => {
                    tracing::error!(resource = %key, %error, "resource left out of the snapshot");
                    None
                }
            }
        })
        .unzip()
}
