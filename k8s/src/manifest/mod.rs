//! `loupe manifest generate`: everything a cluster needs, as typed
//! `k8s-openapi` objects, printed as multi-document YAML.
//!
//! The objects come in the order `kubectl apply -f` needs them: the
//! namespace, the CRDs, RBAC, the database, the control plane, collector and
//! console, the ingress gateway, then the webhook configurations (last, so
//! that nothing above is admitted through a webhook whose server is not up).
//!
//! The webhooks' `caBundle` is empty in the output: the control plane
//! generates the webhook serving certificate at start and patches its CA into
//! `loupe-sidecar-injector` and `loupe-validator` itself, as istiod does. That
//! keeps the rendered manifests deterministic (the committed files under
//! `deploy/kubernetes/` are byte-for-byte what this prints).

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::Namespace;
use serde::Serialize;

mod database;
mod rbac;
mod webhooks;
mod workloads;

pub use webhooks::{INJECTOR_NAME, VALIDATOR_NAME, mutating_webhook, validating_webhook};
pub(crate) use workloads::{field_env, http_probe};

/// The namespace every part of Loupe runs in, Istio's.
pub const NAMESPACE: &str = "istio-system";
/// The control plane's Service (push stream and webhooks).
pub const CONTROL_SERVICE: &str = "loupe-control";
/// Where proxies connect: gRPC over TLS.
pub const PUSH_PORT: u16 = 15012;
/// The webhooks' HTTPS port inside the control plane's pod.
pub const WEBHOOK_PORT: u16 = 15017;
/// The Service port the API server calls the webhooks on (istiod's `https-webhook`).
pub const WEBHOOK_SERVICE_PORT: u16 = 443;
/// The Secret (key `DATABASE_URL`) every part reads Postgres' address from.
pub const DATABASE_SECRET: &str = "loupe-database";
/// The console's Deployment and Service (pods labelled `app=loupe-console`).
pub const CONSOLE_SERVICE: &str = "loupe-console";
/// The console's HTTP port, in the pod and on its Service.
pub const CONSOLE_PORT: u16 = 20001;

/// An install's flavour, Istio's `--set profile=…`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// One replica of everything and Postgres in the cluster: try it out.
    Demo,
    /// Two control-plane replicas and an external Postgres.
    Default,
}

impl Profile {
    pub const ALL: [Profile; 2] = [Profile::Demo, Profile::Default];

    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Demo => "demo",
            Profile::Default => "default",
        }
    }
}

/// Where Postgres is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Database {
    /// A StatefulSet with a PVC, and the `loupe-database` Secret pointing at it.
    Internal,
    /// The user creates Secret `loupe-database` with key `DATABASE_URL`.
    External,
}

/// What `--set key=value` can change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub profile: Profile,
    pub database: Database,
    /// Image registry and repository prefix (`HUB/loupe:TAG`, `HUB/loupe-proxy:TAG`).
    pub hub: String,
    pub tag: String,
    pub control_replicas: i32,
}

impl Settings {
    pub fn for_profile(profile: Profile) -> Settings {
        let (database, control_replicas) = match profile {
            Profile::Demo => (Database::Internal, 1),
            Profile::Default => (Database::External, 2),
        };
        Settings {
            profile,
            database,
            hub: "docker.io/loupe".into(),
            tag: env!("CARGO_PKG_VERSION").into(),
            control_replicas,
        }
    }

    /// Settings from `--set` values, `profile=` first wherever it is given
    /// (the profile supplies defaults; every other key overrides them).
    pub fn from_sets<S: AsRef<str>>(sets: &[S]) -> Result<Settings, SetError> {
        let mut pairs = Vec::new();
        for set in sets {
            let set = set.as_ref();
            let (key, value) = set
                .split_once('=')
                .ok_or_else(|| SetError::Syntax(set.to_string()))?;
            pairs.push((key.trim(), value.trim()));
        }
        let profile = match pairs.iter().rev().find(|(k, _)| *k == "profile") {
            None => Profile::Default,
            Some((_, v)) => Profile::ALL
                .into_iter()
                .find(|p| p.as_str() == *v)
                .ok_or_else(|| SetError::Value {
                    key: "profile".into(),
                    value: v.to_string(),
                    expected: "demo, default",
                })?,
        };
        let mut settings = Settings::for_profile(profile);
        for (key, value) in pairs {
            let bad = |expected| SetError::Value {
                key: key.to_string(),
                value: value.to_string(),
                expected,
            };
            match key {
                "profile" => {}
                "database" => {
                    settings.database = match value {
                        "internal" => Database::Internal,
                        "external" => Database::External,
                        _ => return Err(bad("internal, external")),
                    }
                }
                "hub" if !value.is_empty() => settings.hub = value.trim_end_matches('/').into(),
                "tag" if !value.is_empty() => settings.tag = value.into(),
                "hub" | "tag" => return Err(bad("a non-empty string")),
                "controlReplicas" => {
                    settings.control_replicas = value
                        .parse()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| bad("a whole number ≥ 1"))?
                }
                _ => return Err(SetError::Key(key.to_string())),
            }
        }
        Ok(settings)
    }

    /// The image of `loupe` (control plane, collector, console).
    pub fn loupe_image(&self) -> String {
        format!("{}/loupe:{}", self.hub, self.tag)
    }

    /// The image of `loupe-proxy` (sidecars and the ingress gateway).
    pub fn proxy_image(&self) -> String {
        format!("{}/loupe-proxy:{}", self.hub, self.tag)
    }
}

/// A `--set` that cannot be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SetError {
    #[error("`--set {0}` is not KEY=VALUE")]
    Syntax(String),
    #[error(
        "`--set {0}=…`: no such setting; the settings are profile, database, hub, tag, controlReplicas"
    )]
    Key(String),
    #[error("`--set {key}={value}`: expected {expected}")]
    Value {
        key: String,
        value: String,
        expected: &'static str,
    },
}

/// Every object of an install, each as the JSON its typed `k8s-openapi`
/// object serializes to (with `apiVersion` and `kind`), in apply order.
pub fn generate(settings: &Settings) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    out.push(json(&namespace()));
    // The CRDs carry the install's label too: it is how `loupe install`
    // tells its own CRDs from an Istio install's.
    out.extend(crate::crd::crds().into_iter().map(|mut crd| {
        crd.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(PART_OF.0.into(), PART_OF.1.into());
        json(&crd)
    }));
    rbac::objects(&mut out);
    database::objects(settings, &mut out);
    workloads::objects(settings, &mut out);
    out.push(json(&mutating_webhook()));
    out.push(json(&validating_webhook()));
    out
}

/// [`generate`] as multi-document YAML, with a header naming the command.
pub fn render(settings: &Settings) -> String {
    let mut out = format!(
        "# Loupe {version}, profile {profile}: generated by `loupe manifest generate --set profile={profile}{database}`.\n\
         # Do not edit; regenerate. The webhooks' caBundle is filled in by loupe-control at start.\n",
        version = env!("CARGO_PKG_VERSION"),
        profile = settings.profile.as_str(),
        database = match (settings.profile, settings.database) {
            (Profile::Demo, Database::External) => " --set database=external",
            (Profile::Default, Database::Internal) => " --set database=internal",
            _ => "",
        },
    );
    for object in generate(settings) {
        out.push_str("---\n");
        // Plain JSON values always serialize.
        out.push_str(&serde_yaml_ng::to_string(&object).unwrap_or_default());
    }
    out
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn json<T: Serialize>(object: &T) -> serde_json::Value {
    // k8s-openapi's types serialize to JSON without fail.
    serde_json::to_value(object).unwrap_or_default()
}

fn namespace() -> Namespace {
    Namespace {
        metadata: meta("istio-system", None, &[]),
        ..Default::default()
    }
}

/// Labels every object of the install carries.
const PART_OF: (&str, &str) = ("app.kubernetes.io/part-of", "loupe");

pub(crate) fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(crate) fn meta(
    name: &str,
    namespace: Option<&str>,
    extra_labels: &[(&str, &str)],
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
    let mut all = labels(extra_labels);
    all.insert(PART_OF.0.into(), PART_OF.1.into());
    k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        name: Some(name.into()),
        namespace: namespace.map(str::to_string),
        labels: Some(all),
        ..Default::default()
    }
}
