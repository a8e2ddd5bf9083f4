//! The config store of cluster mode: Istio's own CRDs, watched with kube-rs
//! reflectors (one per kind Loupe models, read at `v1`; the API server serves
//! every version of an object at every version), mirrored into the
//! Postgres config store, from which every replica's publisher pushes.
//!
//! Each object is validated alone, as the validating webhook judges it
//! ([`loupe_k8s::validate`]): an object with errors is never pushed — its
//! last valid version, if it had one, stays in force — and is reported on
//! the object, as istiod reports analysis: `status.validationMessages`
//! (Istio's `AnalysisMessageBase` shape, with the generation they describe)
//! and a Kubernetes Event (`Warning`, reason `Invalid`). Warnings are
//! written to the status too. A valid object is a revision in the store
//! when it changed, so history, diff and rollback work as in local mode; a
//! deleted object is a deletion revision. Its author is the Kubernetes user
//! the validating webhook saw write that spec ([`crate::authors`]), else
//! `kubernetes`.
//!
//! Console edits go the other way: the store is where the console writes,
//! and a revision there that no mirror wrote (`loupe apply`, the console's
//! editors, a rollback) is written back to its object with server-side
//! apply (field manager `loupe`), or the object deleted — so the
//! Kubernetes API stays the one source of truth and the edit is not
//! reverted. For that, after a kind's first full pass, a pass only mirrors
//! the objects whose `resourceVersion` changed and those deleted since the
//! last pass; other stored resources are left alone until written back.
//!
//! A kind's objects are mirrored only once its watcher has listed them all:
//! a kind whose CRD is missing (or that the control plane may not list)
//! leaves what the store holds of it untouched, and says so in the log.
//!
//! Only the leader (see [`crate::leader`]) writes, to the store and to the
//! objects' status; every replica watches, so that a new leader starts warm.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use loupe_control::{Authors, ConfigStore, MIRROR_MESSAGE};
use loupe_k8s::crd::{ValidationMessage, ValidationMessageType};
use loupe_k8s::validate::{Verdict, describe, validate};
use loupe_model::{Kind, Resource, ResourceKey};
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

/// The author of the revisions the mirror writes.
pub const AUTHOR: &str = "kubernetes";
/// Istio's message for an object that fails validation.
pub const SCHEMA_ERROR: (&str, &str) = ("IST0106", "SchemaValidationError");
/// The type name of a warning Loupe's analysis reports on an object.
pub const ANALYSIS_WARNING: &str = "LoupeAnalysisWarning";
/// How long changes are gathered before one mirror pass.
const SETTLE: Duration = Duration::from_millis(100);
/// How often the store is checked for edits to write back.
const WRITE_BACK_EVERY: Duration = Duration::from_secs(1);

/// Per kind fully mirrored since this replica became leader: the
/// `resourceVersion` of each object it mirrored last.
type Mirrored = HashMap<Kind, HashMap<ResourceKey, String>>;

/// One watched kind: its API resource and what its watcher has seen.
struct Watched {
    kind: Kind,
    api: ApiResource,
    store: Store<DynamicObject>,
    /// Set once the watcher has listed every object (and after each relist).
    listed: Arc<AtomicBool>,
}

/// The API resources of the Istio kinds loupe-model models, at `v1`.
pub fn istio_kinds() -> Vec<(Kind, ApiResource)> {
    loupe_k8s::crd::crds()
        .into_iter()
        .filter_map(|crd| {
            let kind = Kind::from_kind_field(&crd.spec.names.kind)?;
            let group = crd.spec.group.clone();
            Some((
                kind,
                ApiResource {
                    api_version: format!("{group}/v1"),
                    group,
                    version: "v1".into(),
                    kind: crd.spec.names.kind.clone(),
                    plural: crd.spec.names.plural.clone(),
                },
            ))
        })
        .collect()
}

/// The mirror: watchers of every Istio kind and the task that writes.
pub struct ConfigMirror {
    client: kube::Client,
    store: ConfigStore,
    recorder: Recorder,
    watched: Vec<Watched>,
    changed: Arc<Notify>,
    /// Invalid objects already announced by an Event: (uid, generation).
    announced: std::sync::Mutex<HashSet<(String, i64)>>,
    mirrored: std::sync::Mutex<Mirrored>,
    /// The store version and kinds of the last write-back with nothing
    /// left to write: unchanged since, there is nothing to read.
    written_back: std::sync::Mutex<Option<(i64, usize)>>,
}

impl ConfigMirror {
    /// Starts a watcher per Istio kind (tasks that end with the runtime).
    pub fn start(client: kube::Client, store: ConfigStore, reporter: Reporter) -> Arc<Self> {
        let changed = Arc::new(Notify::new());
        let watched = istio_kinds()
            .into_iter()
            .map(|(kind, api)| {
                let writer = reflector::store::Writer::<DynamicObject>::new(api.clone());
                let reader = writer.as_reader();
                let listed = Arc::new(AtomicBool::new(false));
                let objects: Api<DynamicObject> = Api::all_with(client.clone(), &api);
                let stream = watcher(objects, watcher::Config::default()).default_backoff();
                tokio::spawn(follow(
                    reflector::reflector(writer, stream),
                    kind,
                    listed.clone(),
                    changed.clone(),
                ));
                Watched {
                    kind,
                    api,
                    store: reader,
                    listed,
                }
            })
            .collect();
        Arc::new(ConfigMirror {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            store,
            watched,
            changed,
            announced: Default::default(),
            mirrored: Default::default(),
            written_back: Default::default(),
        })
    }

    /// While `leader` is true: mirrors after every change, and writes the
    /// store's edits back every [`WRITE_BACK_EVERY`], until the task is
    /// dropped. Leadership lost, the next one starts with full passes.
    pub async fn run(self: Arc<Self>, mut leader: watch::Receiver<bool>) {
        let mut mirror = true;
        loop {
            if *leader.borrow_and_update() {
                let passed = if mirror {
                    self.mirror_once().await
                } else {
                    Ok(())
                };
                if let Err(error) = passed {
                    tracing::warn!(%error, "mirroring the Istio objects failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                if let Err(error) = self.write_back_once().await {
                    tracing::warn!(%error, "reading the store's edits to write back failed; retrying");
                }
                mirror = tokio::select! {
                    _ = self.changed.notified() => true,
                    _ = leader.changed() => true,
                    _ = tokio::time::sleep(WRITE_BACK_EVERY) => false,
                };
            } else {
                self.lock_mirrored().clear();
                if let Ok(mut w) = self.written_back.lock() {
                    *w = None;
                }
                if leader.changed().await.is_err() {
                    return;
                }
                mirror = true;
            }
            tokio::time::sleep(SETTLE).await;
        }
    }

    fn lock_mirrored(&self) -> std::sync::MutexGuard<'_, Mirrored> {
        // The map holds no invariant a panicking holder could break.
        self.mirrored.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One pass over every listed kind: its objects validated; a kind seen
    /// for the first time mirrored whole, a known one by what changed since
    /// the last pass; the verdicts reported on the objects.
    pub async fn mirror_once(&self) -> Result<(), loupe_control::StoreError> {
        let previous = self.lock_mirrored().clone();
        let mut full = (Vec::new(), Vec::new(), HashSet::new());
        let (mut puts, mut deletes) = (Vec::new(), Vec::new());
        let mut seen = Mirrored::new();
        let mut verdicts = Vec::new();
        // The spec of each object written, to find who wrote it.
        let mut specs = Vec::new();
        for watched in &self.watched {
            if !watched.listed.load(Ordering::Acquire) {
                continue;
            }
            let before = previous.get(&watched.kind);
            let now = seen.entry(watched.kind).or_default();
            for object in watched.store.state() {
                let Some(key) = key_of(watched.kind, &object) else {
                    continue;
                };
                let version = object.metadata.resource_version.clone().unwrap_or_default();
                let clean = config_object(&watched.api, &object);
                let verdict = validate(&clean);
                let resource = if verdict.allowed() {
                    parse(&key, &clean)
                } else {
                    None
                };
                let spec = || (key.clone(), clean["spec"].clone());
                match (before, resource) {
                    (None, Some(resource)) => {
                        specs.push(spec());
                        full.1.push(resource)
                    }
                    (None, None) => {
                        full.2.insert(key.clone());
                    }
                    // An invalid change keeps the last valid version.
                    (Some(before), Some(resource)) if before.get(&key) != Some(&version) => {
                        specs.push(spec());
                        puts.push(resource)
                    }
                    (Some(_), _) => {}
                }
                now.insert(key, version);
                verdicts.push((watched, object, verdict));
            }
            match before {
                None => full.0.push(watched.kind),
                Some(before) => {
                    deletes.extend(before.keys().filter(|k| !now.contains_key(*k)).cloned())
                }
            }
        }
        if seen.is_empty() {
            return Ok(());
        }
        let written_by = self.authors_of(specs).await;
        let authors = Authors::Each {
            of: &written_by,
            otherwise: AUTHOR,
        };
        let (kinds, desired, keep) = full;
        let mut applied = Vec::new();
        if !kinds.is_empty() {
            applied.extend(self.store.mirror(&kinds, desired, &keep, authors).await?);
        }
        applied.extend(self.store.mirror_changes(puts, deletes, authors).await?);
        self.lock_mirrored().extend(seen);
        for a in applied
            .iter()
            .filter(|a| a.outcome != loupe_control::Outcome::Unchanged)
        {
            tracing::info!(resource = %a.key, revision = a.revision, outcome = %a.outcome, "Istio object mirrored");
        }
        for (watched, object, verdict) in verdicts {
            self.report(watched, &object, &verdict).await;
        }
        Ok(())
    }

    /// Who wrote each of `specs`, as the validating webhook recorded it;
    /// nobody known (and a log line) when the records cannot be read.
    async fn authors_of(&self, specs: Vec<(ResourceKey, Value)>) -> HashMap<ResourceKey, String> {
        if specs.is_empty() {
            return HashMap::new();
        }
        let admissions = match crate::authors::Admissions::load(self.store.pool()).await {
            Ok(a) => a,
            Err(error) => {
                tracing::warn!(%error, "cannot read who wrote the Istio objects; their revisions say `kubernetes`");
                return HashMap::new();
            }
        };
        specs
            .into_iter()
            .filter_map(|(key, spec)| {
                let author = admissions.author(&key, &spec)?.to_string();
                Some((key, author))
            })
            .collect()
    }

    /// Writes back every store revision no mirror wrote whose object the
    /// Kubernetes API does not hold as the store does: server-side apply
    /// (forced: the edit is the newest intent), or a delete. Only kinds
    /// already mirrored whole are looked at, so that nothing the API never
    /// held is written to it from an old store. A write refused by the API
    /// is logged and tried again at the next pass.
    pub async fn write_back_once(&self) -> Result<(), loupe_control::StoreError> {
        let kinds: Vec<Kind> = self.lock_mirrored().keys().copied().collect();
        if kinds.is_empty() {
            return Ok(());
        }
        let version = (self.store.version().await?, kinds.len());
        let last = self.written_back.lock().ok().and_then(|w| *w);
        if last == Some(version) {
            return Ok(());
        }
        let mut all_written = true;
        for newest in self.store.newest(&kinds).await? {
            if newest.message == MIRROR_MESSAGE {
                continue;
            }
            let Some(watched) = self.watched.iter().find(|w| w.kind == newest.key.kind) else {
                continue;
            };
            let key = &newest.key;
            let current = watched.store.state().into_iter().find(|o| {
                o.metadata.namespace.as_deref() == Some(key.namespace.as_str())
                    && o.metadata.name.as_deref() == Some(key.name.as_str())
            });
            let api: Api<DynamicObject> =
                Api::namespaced_with(self.client.clone(), &key.namespace, &watched.api);
            let result = match (newest.deleted, current) {
                (true, None) => continue,
                (true, Some(_)) => api
                    .delete(&key.name, &DeleteParams::default())
                    .await
                    .map(|_| "deleted"),
                (false, current) => {
                    let held = current.and_then(|o| comparable(&watched.api, key, &o));
                    let wanted = serde_json::from_value::<DynamicObject>(newest.object.clone())
                        .ok()
                        .and_then(|o| comparable(&watched.api, key, &o));
                    if held.is_some() && held == wanted {
                        continue;
                    }
                    let mut body = newest.object.clone();
                    body["apiVersion"] = json!(watched.api.api_version);
                    body["kind"] = json!(watched.api.kind);
                    api.patch(
                        &key.name,
                        &PatchParams::apply(crate::FIELD_MANAGER).force(),
                        &Patch::Apply(&body),
                    )
                    .await
                    .map(|_| "applied")
                }
            };
            match result {
                Ok(done) => {
                    tracing::info!(resource = %key, revision = newest.revision, author = newest.author, done, "store edit written back to the Kubernetes API")
                }
                Err(error) => {
                    all_written = false;
                    tracing::warn!(resource = %key, revision = newest.revision, %error, "cannot write a store edit back to the Kubernetes API; retrying")
                }
            }
        }
        if all_written && let Ok(mut w) = self.written_back.lock() {
            *w = Some(version);
        }
        Ok(())
    }

    /// Writes the verdict into the object's status when it differs from
    /// what is there, and announces a new invalid generation by an Event.
    async fn report(&self, watched: &Watched, object: &DynamicObject, verdict: &Verdict) {
        let messages = validation_messages(verdict);
        let current: Vec<ValidationMessage> = object
            .data
            .pointer("/status/validationMessages")
            .cloned()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        let (Some(namespace), Some(name)) = (&object.metadata.namespace, &object.metadata.name)
        else {
            return;
        };
        if current != messages {
            let api: Api<DynamicObject> =
                Api::namespaced_with(self.client.clone(), namespace, &watched.api);
            let patch = json!({
                "apiVersion": watched.api.api_version,
                "kind": watched.api.kind,
                "status": {
                    "validationMessages": messages,
                    "observedGeneration": object.metadata.generation,
                },
            });
            if let Err(error) = api
                .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                tracing::warn!(%error, object = %format!("{}/{namespace}/{name}", watched.api.kind), "cannot write status.validationMessages");
            }
        }
        if verdict.allowed() {
            return;
        }
        let generation = object.metadata.generation.unwrap_or(0);
        let uid = object.metadata.uid.clone().unwrap_or_default();
        let first_time = self
            .announced
            .lock()
            .map(|mut seen| seen.insert((uid, generation)))
            .unwrap_or(false);
        if !first_time {
            return;
        }
        let note = verdict
            .errors
            .iter()
            .map(describe)
            .collect::<Vec<_>>()
            .join("; ");
        tracing::warn!(object = %format!("{}/{namespace}/{name}", watched.api.kind), %note, "invalid Istio object not pushed");
        let event = Event {
            type_: EventType::Warning,
            reason: "Invalid".into(),
            note: Some(truncate(
                &format!("not pushed to proxies: {note}"),
                MAX_EVENT_NOTE,
            )),
            action: "Validate".into(),
            secondary: None,
        };
        let reference = kube::Resource::object_ref(object, &watched.api);
        if let Err(error) = self.recorder.publish(&event, &reference).await {
            tracing::warn!(%error, "cannot publish the Event of an invalid object");
        }
    }
}

/// An Event's note is at most 1 kB.
const MAX_EVENT_NOTE: usize = 1024;

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max - 3;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// Drives one kind's reflector: marks it listed, wakes the mirror.
async fn follow(
    stream: impl futures::Stream<Item = Result<watcher::Event<DynamicObject>, watcher::Error>>,
    kind: Kind,
    listed: Arc<AtomicBool>,
    changed: Arc<Notify>,
) {
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
                tracing::warn!(kind = kind.as_str(), %error, "watching Istio objects failed (is the CRD installed, may the control plane list it?); the store keeps what it has of this kind");
            }
        }
    }
}

fn key_of(kind: Kind, object: &DynamicObject) -> Option<ResourceKey> {
    Some(ResourceKey {
        kind,
        namespace: object.metadata.namespace.clone()?,
        name: object.metadata.name.clone()?,
    })
}

/// The object as config: apiVersion, kind, the metadata a user writes
/// (name, namespace, labels, annotations) and the spec — not the status,
/// nor what the API server adds.
fn config_object(api: &ApiResource, object: &DynamicObject) -> Value {
    let meta = &object.metadata;
    let mut metadata = serde_json::Map::new();
    metadata.insert("name".into(), json!(meta.name));
    metadata.insert("namespace".into(), json!(meta.namespace));
    for (field, value) in [("labels", &meta.labels), ("annotations", &meta.annotations)] {
        if let Some(map) = value {
            let kept: BTreeMap<&String, &String> = map
                .iter()
                .filter(|(k, _)| k.as_str() != LAST_APPLIED)
                .collect();
            if !kept.is_empty() {
                metadata.insert(field.into(), json!(kept));
            }
        }
    }
    json!({
        "apiVersion": api.api_version,
        "kind": api.kind,
        "metadata": metadata,
        "spec": object.data.get("spec").cloned().unwrap_or_else(|| json!({})),
    })
}

/// The object as the store would hold it, without `apiVersion` (every
/// served version is the same object; the store keeps the one it was
/// written at): both sides of a write-back cleaned the same way.
fn comparable(api: &ApiResource, key: &ResourceKey, object: &DynamicObject) -> Option<Value> {
    let resource = parse(key, &config_object(api, object))?;
    let mut object = loupe_control::store::kube_object(&resource).ok()?;
    object.as_object_mut()?.remove("apiVersion");
    Some(object)
}

/// kubectl's copy of what was applied: not config.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

fn parse(key: &ResourceKey, object: &Value) -> Option<Resource> {
    let parsed = loupe_model::parse_documents(&key.to_string(), &object.to_string());
    parsed.resources.into_iter().find(|r| &r.key() == key)
}

/// The verdict as `status.validationMessages`: errors, then warnings.
pub fn validation_messages(verdict: &Verdict) -> Vec<ValidationMessage> {
    let error_type = ValidationMessageType {
        code: Some(SCHEMA_ERROR.0.into()),
        name: Some(SCHEMA_ERROR.1.into()),
    };
    let warning_type = ValidationMessageType {
        code: None,
        name: Some(ANALYSIS_WARNING.into()),
    };
    verdict
        .errors
        .iter()
        .map(|d| (d, "ERROR", &error_type))
        .chain(
            verdict
                .warnings
                .iter()
                .map(|d| (d, "WARNING", &warning_type)),
        )
        .map(|(d, level, type_)| ValidationMessage {
            type_: Some(type_.clone()),
            level: level.into(),
            description: Some(describe(d)),
        })
        .collect()
}
