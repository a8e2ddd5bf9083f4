//! `loupe install`: the objects `loupe manifest generate` prints, applied
//! with server-side apply under field manager `loupe` (so running it again
//! converges, and `kubectl` shows who owns each field), as `istioctl
//! install` applies its manifests.
//!
//! Before anything is written it checks what would make the install wrong:
//! an Istio control plane already in the cluster (Loupe reads the same CRDs
//! and would take over their schemas and the injection of new pods), or,
//! with `--set database=external`, a missing `loupe-database` Secret. Then
//! it applies every object in order and waits until the Deployments and
//! StatefulSets are ready.

use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::core::ApiResource;
use loupe_k8s::manifest::{DATABASE_SECRET, Database, NAMESPACE, Settings, generate};
use serde_json::Value;

/// How an install goes.
#[derive(Clone, Debug)]
pub struct InstallOptions {
    /// Install beside an Istio control plane, taking over the objects both
    /// write (server-side apply with `force`).
    pub force: bool,
    /// How long to wait for the Deployments and StatefulSets to be ready;
    /// `None` returns once everything is applied.
    pub wait: Option<Duration>,
}

/// What an install reports as it goes, for the command to print.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// `kind`, `namespace/name` (or `name`) applied.
    Applied(String, String),
    /// A Deployment or StatefulSet is ready.
    Ready(String, String),
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(
        "an Istio control plane is already installed: {}. Loupe reads the same CRDs and would take over their schemas and the injection of new pods. Remove it first (`istioctl uninstall --purge -y`), or run `loupe install --force` to install beside it and take these objects over; nothing was written",
        .0.join(", ")
    )]
    IstioPresent(Vec<String>),
    #[error(
        "`--set database=external` reads Postgres' address from Secret {NAMESPACE}/{DATABASE_SECRET} (key DATABASE_URL), which {0}. Create it first: `kubectl create namespace {NAMESPACE}; kubectl -n {NAMESPACE} create secret generic {DATABASE_SECRET} --from-literal=DATABASE_URL=postgres://USER:PASSWORD@HOST:5432/loupe`; nothing was written"
    )]
    DatabaseSecret(&'static str),
    #[error(
        "{kind} {name}: {source} ({applied} of {total} objects were applied; `loupe install` can be run again once this is fixed)"
    )]
    Apply {
        kind: String,
        name: String,
        applied: usize,
        total: usize,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("{object}: the manifest object has no {field}")]
    Malformed { object: String, field: &'static str },
    #[error("checking the cluster before installing: {0}")]
    Check(#[source] Box<kube::Error>),
    #[error(
        "everything was applied, but after {:?} these are not ready: {}. See `kubectl -n {NAMESPACE} get pods` and `kubectl -n {NAMESPACE} describe` them",
        .waited,
        .pending.join(", ")
    )]
    NotReady {
        waited: Duration,
        pending: Vec<String>,
    },
}

fn check(err: kube::Error) -> InstallError {
    InstallError::Check(Box::new(err))
}

/// Installs Loupe as `settings` describe it: checks, applies, waits.
pub async fn install(
    client: kube::Client,
    settings: &Settings,
    options: &InstallOptions,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<(), InstallError> {
    if !options.force {
        let found = istio_present(&client).await?;
        if !found.is_empty() {
            return Err(InstallError::IstioPresent(found));
        }
    }
    if settings.database == Database::External {
        check_database_secret(&client).await?;
    }
    let objects = generate(settings);
    let mut params = PatchParams::apply(crate::FIELD_MANAGER);
    if options.force {
        params = params.force();
    }
    let total = objects.len();
    let mut workloads = Vec::new();
    for (applied, object) in objects.iter().enumerate() {
        let target = Target::of(object)?;
        target
            .api(&client)
            .patch(&target.name, &params, &Patch::Apply(object))
            .await
            .map_err(|source| InstallError::Apply {
                kind: target.gvk.kind.clone(),
                name: target.display(),
                applied,
                total,
                source: Box::new(source),
            })?;
        progress(Progress::Applied(target.gvk.kind.clone(), target.display()));
        if matches!(target.gvk.kind.as_str(), "Deployment" | "StatefulSet") {
            workloads.push(target);
        }
    }
    if let Some(wait) = options.wait {
        wait_ready(&client, workloads, wait, progress).await?;
    }
    Ok(())
}

/// What an Istio install leaves in a cluster, as far as Loupe would collide
/// with it: istiod, its webhooks, and Istio's CRDs not applied by Loupe.
pub async fn istio_present(client: &kube::Client) -> Result<Vec<String>, InstallError> {
    let mut found = Vec::new();
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), NAMESPACE);
    if deployments
        .get_opt("istiod")
        .await
        .map_err(check)?
        .is_some()
    {
        found.push(format!("Deployment {NAMESPACE}/istiod"));
    }
    let mutating: Api<k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration> =
        Api::all(client.clone());
    if mutating
        .get_opt("istio-sidecar-injector")
        .await
        .map_err(check)?
        .is_some()
    {
        found.push("MutatingWebhookConfiguration istio-sidecar-injector".into());
    }
    let validating: Api<
        k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration,
    > = Api::all(client.clone());
    for name in ["istio-validator-istio-system", "istiod-default-validator"] {
        if validating.get_opt(name).await.map_err(check)?.is_some() {
            found.push(format!("ValidatingWebhookConfiguration {name}"));
        }
    }
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    if let Some(crd) = crds
        .get_opt("virtualservices.networking.istio.io")
        .await
        .map_err(check)?
    {
        let ours = crd
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("app.kubernetes.io/part-of"))
            .is_some_and(|v| v == "loupe");
        if !ours {
            found.push(
                "CustomResourceDefinition virtualservices.networking.istio.io (not installed by Loupe)"
                    .into(),
            );
        }
    }
    Ok(found)
}

async fn check_database_secret(client: &kube::Client) -> Result<(), InstallError> {
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), NAMESPACE);
    match secrets.get_opt(DATABASE_SECRET).await.map_err(check)? {
        None => Err(InstallError::DatabaseSecret("does not exist")),
        Some(secret) => {
            let has_key = secret
                .data
                .as_ref()
                .is_some_and(|d| d.contains_key("DATABASE_URL"))
                || secret
                    .string_data
                    .as_ref()
                    .is_some_and(|d| d.contains_key("DATABASE_URL"));
            if has_key {
                Ok(())
            } else {
                Err(InstallError::DatabaseSecret("has no key DATABASE_URL"))
            }
        }
    }
}

/// Polls the applied Deployments and StatefulSets until each is ready: its
/// controller has seen the latest spec and every replica is updated and ready.
async fn wait_ready(
    client: &kube::Client,
    mut pending: Vec<Target>,
    wait: Duration,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<(), InstallError> {
    let started = Instant::now();
    loop {
        let mut still = Vec::new();
        for target in pending {
            // A read that fails now is retried until the deadline.
            let ready = match target.api(client).get_opt(&target.name).await {
                Ok(Some(object)) => is_ready(&serde_json::to_value(&object).unwrap_or_default()),
                _ => false,
            };
            if ready {
                progress(Progress::Ready(target.gvk.kind.clone(), target.display()));
            } else {
                still.push(target);
            }
        }
        if still.is_empty() {
            return Ok(());
        }
        if started.elapsed() >= wait {
            return Err(InstallError::NotReady {
                waited: wait,
                pending: still
                    .iter()
                    .map(|t| format!("{} {}", t.gvk.kind, t.display()))
                    .collect(),
            });
        }
        pending = still;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Ready as `kubectl rollout status` judges a Deployment or StatefulSet.
fn is_ready(object: &Value) -> bool {
    let wanted = object["spec"]["replicas"].as_i64().unwrap_or(1);
    let status = &object["status"];
    let generation = object["metadata"]["generation"].as_i64().unwrap_or(0);
    let observed = status["observedGeneration"].as_i64().unwrap_or(-1);
    let count = |field: &str| status[field].as_i64().unwrap_or(0);
    observed >= generation && count("updatedReplicas") >= wanted && count("readyReplicas") >= wanted
}

/// Where one manifest object goes.
struct Target {
    gvk: GroupVersionKind,
    namespace: Option<String>,
    name: String,
}

impl Target {
    fn of(object: &Value) -> Result<Target, InstallError> {
        let malformed = |field| InstallError::Malformed {
            object: object["metadata"]["name"]
                .as_str()
                .unwrap_or("(unnamed)")
                .into(),
            field,
        };
        let api_version = object["apiVersion"]
            .as_str()
            .ok_or_else(|| malformed("apiVersion"))?;
        let kind = object["kind"].as_str().ok_or_else(|| malformed("kind"))?;
        let name = object["metadata"]["name"]
            .as_str()
            .ok_or_else(|| malformed("metadata.name"))?;
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        Ok(Target {
            gvk: GroupVersionKind::gvk(group, version, kind),
            namespace: object["metadata"]["namespace"].as_str().map(str::to_string),
            name: name.into(),
        })
    }

    fn api(&self, client: &kube::Client) -> Api<DynamicObject> {
        // Every kind of the install pluralizes regularly
        // (customresourcedefinitions, clusterrolebindings, statefulsets).
        let plural = format!("{}s", self.gvk.kind.to_ascii_lowercase());
        let resource = ApiResource::from_gvk_with_plural(&self.gvk, &plural);
        match &self.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
            None => Api::all_with(client.clone(), &resource),
        }
    }

    fn display(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ready_needs_the_latest_generation_and_every_replica_ready() {
        let mut d = json!({
            "metadata": {"generation": 2},
            "spec": {"replicas": 2},
            "status": {"observedGeneration": 2, "updatedReplicas": 2, "readyReplicas": 2},
        });
        assert!(is_ready(&d));
        d["status"]["observedGeneration"] = json!(1);
        assert!(!is_ready(&d), "an old generation's replicas do not count");
        d["status"]["observedGeneration"] = json!(2);
        d["status"]["readyReplicas"] = json!(1);
        assert!(!is_ready(&d));
        assert!(!is_ready(
            &json!({"metadata": {"generation": 1}, "spec": {}})
        ));
    }

    #[test]
    fn every_object_of_the_install_has_a_target_with_a_regular_plural() {
        for settings in [
            Settings::for_profile(loupe_k8s::manifest::Profile::Demo),
            Settings::for_profile(loupe_k8s::manifest::Profile::Default),
        ] {
            for object in generate(&settings) {
                let target = Target::of(&object).expect("a target");
                let plural = format!("{}s", target.gvk.kind.to_ascii_lowercase());
                assert!(
                    [
                        "namespaces",
                        "customresourcedefinitions",
                        "serviceaccounts",
                        "clusterroles",
                        "clusterrolebindings",
                        "roles",
                        "rolebindings",
                        "secrets",
                        "services",
                        "deployments",
                        "statefulsets",
                        "mutatingwebhookconfigurations",
                        "validatingwebhookconfigurations",
                    ]
                    .contains(&plural.as_str()),
                    "{plural}: add its plural to Target::api"
                );
            }
        }
    }
}
