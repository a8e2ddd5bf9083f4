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
//! (author `kubernetes`) when it changed, so history, diff and rollback work
//! as in local mode; a deleted object is a deletion revision.
//!
//! A kind's objects are mirrored only once its watcher has listed them all:
//! a kind whose CRD is missing (or that the control plane may not list)
//! leaves what the store holds of it untouched, and says so in the log.
//!
//! Only the leader (see [`crate::leader`]) writes, to the store and to the
//! objects' status; every replica watches, so that a new leader starts warm.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use loupe_control::ConfigStore;
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
        })
    }

    /// Mirrors after every change while `leader` is true, until the task is dropped.
    pub async fn run(self: Arc<Self>, mut leader: watch::Receiver<bool>) {
        loop {
            if *leader.borrow_and_update() {
                if let Err(error) = self.mirror_once().await {
                    tracing::warn!(%error, "mirroring the Istio objects failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                tokio::select! {
                    _ = self.changed.notified() => {}
                    _ = leader.changed() => {}
                }
            } else if leader.changed().await.is_err() {
                return;
            }
            tokio::time::sleep(SETTLE).await;
        }
    }

    /// One pass: every listed kind's objects validated, the valid ones
    /// written, the verdicts reported on the objects.
    pub async fn mirror_once(&self) -> Result<(), loupe_control::StoreError> {
        let mut kinds = Vec::new();
        let mut desired = Vec::new();
        let mut keep = HashSet::new();
        let mut verdicts = Vec::new();
        for watched in &self.watched {
            if !watched.listed.load(Ordering::Acquire) {
                continue;
            }
            kinds.push(watched.kind);
            for object in watched.store.state() {
                let Some(key) = key_of(watched.kind, &object) else {
                    continue;
                };
                let clean = config_object(&watched.api, &object);
                let verdict = validate(&clean);
                if verdict.allowed()
                    && let Some(resource) = parse(&key, &clean)
                {
                    desired.push(resource);
                } else {
                    keep.insert(key);
                }
                verdicts.push((watched, object, verdict));
            }
        }
        if kinds.is_empty() {
            return Ok(());
        }
        let applied = self.store.mirror(&kinds, desired, &keep, AUTHOR).await?;
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
