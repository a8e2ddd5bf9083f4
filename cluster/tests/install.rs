//! `loupe install` and `loupe dashboard` against the stand-in API server of
//! `loupe-kube-stand-in` (no Kubernetes API server runs on this machine;
//! kube-rs, its server-side apply requests, its WebSocket port-forward and
//! the HTTP server behind it are real): every object of the install is
//! applied under field manager `loupe` and waited for; an Istio install or
//! a missing external database Secret stops it before anything is written;
//! the dashboard reaches the running console pod.

use std::time::Duration;

use loupe_cluster::dashboard;
use loupe_cluster::install::{InstallError, InstallOptions, Progress, install};
use loupe_k8s::manifest::{Profile, Settings, generate};
use loupe_kube_stand_in::ApiServer;
use serde_json::{Value, json};

const DEPLOYMENTS: &str = "apis/apps/v1/deployments";
const STATEFUL_SETS: &str = "apis/apps/v1/statefulsets";

/// The stand-in's collection of a manifest object.
fn collection(object: &Value) -> String {
    let api_version = object["apiVersion"].as_str().expect("apiVersion");
    let prefix = if api_version.contains('/') {
        format!("apis/{api_version}")
    } else {
        format!("api/{api_version}")
    };
    let kind = object["kind"].as_str().expect("kind").to_ascii_lowercase();
    format!("{prefix}/{kind}s")
}

fn name_of(object: &Value) -> (&str, &str) {
    (
        object["metadata"]["namespace"].as_str().unwrap_or(""),
        object["metadata"]["name"].as_str().expect("a name"),
    )
}

/// What the Deployment and StatefulSet controllers would do: mark every
/// replica of the latest generation updated and ready.
fn roll_out(api: &ApiServer) {
    for collection in [DEPLOYMENTS, STATEFUL_SETS] {
        for mut object in api.list(collection) {
            let replicas = object["spec"]["replicas"].as_i64().unwrap_or(1);
            let generation = object["metadata"]["generation"].clone();
            if object["status"]["observedGeneration"] == generation {
                continue;
            }
            object["status"] = json!({
                "observedGeneration": generation,
                "replicas": replicas, "updatedReplicas": replicas, "readyReplicas": replicas,
            });
            api.put(collection, object);
        }
    }
}

fn patches(api: &ApiServer) -> Vec<String> {
    api.requests()
        .into_iter()
        .filter(|r| r.starts_with("PATCH "))
        .collect()
}

fn options(wait: Option<Duration>) -> InstallOptions {
    InstallOptions { force: false, wait }
}

#[tokio::test]
async fn install_applies_every_object_with_server_side_apply_and_waits_for_the_rollout() {
    let api = ApiServer::start().await;
    let controllers = {
        let api = api.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                roll_out(&api);
            }
        })
    };
    let settings = Settings::for_profile(Profile::Demo);
    let mut seen = Vec::new();
    install(
        api.client(),
        &settings,
        &options(Some(Duration::from_secs(30))),
        &mut |p| seen.push(p),
    )
    .await
    .expect("the install");

    let objects = generate(&settings);
    for object in &objects {
        let (ns, name) = name_of(object);
        let stored = api
            .get(&collection(object), ns, name)
            .unwrap_or_else(|| panic!("{} {ns}/{name} was not applied", object["kind"]));
        assert_eq!(stored["metadata"]["labels"], object["metadata"]["labels"]);
        if object.get("spec").is_some() {
            assert_eq!(stored["spec"], object["spec"], "{name}: spec as generated");
        }
    }
    let applied = patches(&api);
    assert_eq!(applied.len(), objects.len(), "one apply per object");
    assert!(
        applied
            .iter()
            .all(|r| r.contains("fieldManager=loupe") && !r.contains("force=true")),
        "server-side apply by field manager loupe, not forced: {applied:?}"
    );
    for object in objects
        .iter()
        .filter(|o| matches!(o["kind"].as_str(), Some("Deployment" | "StatefulSet")))
    {
        let (ns, name) = name_of(object);
        let ready = Progress::Ready(
            object["kind"].as_str().unwrap().into(),
            format!("{ns}/{name}"),
        );
        assert!(seen.contains(&ready), "{ready:?} reported: {seen:?}");
    }

    // Again: it converges, nothing new, nothing refused (its own CRDs are
    // not "an Istio install").
    install(
        api.client(),
        &settings,
        &options(Some(Duration::from_secs(30))),
        &mut |_| {},
    )
    .await
    .expect("a second install over the first");
    assert_eq!(patches(&api).len(), 2 * objects.len());
    controllers.abort();
}

#[tokio::test]
async fn an_istio_install_is_refused_before_anything_is_written_unless_forced() {
    let api = ApiServer::start().await;
    api.put(
        DEPLOYMENTS,
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "istiod", "namespace": "istio-system", "labels": {"app": "istiod"}},
            "spec": {"replicas": 1}}),
    );
    api.put(
        "apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "virtualservices.networking.istio.io", "labels": {"app": "istio-pilot"}},
            "spec": {"group": "networking.istio.io"}}),
    );
    let settings = Settings::for_profile(Profile::Demo);
    let err = install(api.client(), &settings, &options(None), &mut |_| {})
        .await
        .expect_err("Istio is there");
    let message = err.to_string();
    assert!(matches!(err, InstallError::IstioPresent(_)), "{message}");
    assert!(
        message.contains("Deployment istio-system/istiod")
            && message.contains("virtualservices.networking.istio.io")
            && message.contains("--force")
            && message.contains("nothing was written"),
        "{message}"
    );
    assert!(patches(&api).is_empty(), "nothing applied");

    let forced = InstallOptions {
        force: true,
        wait: None,
    };
    install(api.client(), &settings, &forced, &mut |_| {})
        .await
        .expect("a forced install");
    let applied = patches(&api);
    assert_eq!(applied.len(), generate(&settings).len());
    assert!(
        applied.iter().all(|r| r.contains("force=true")),
        "{applied:?}"
    );
}

#[tokio::test]
async fn an_external_database_needs_its_secret_first() {
    let api = ApiServer::start().await;
    let settings = Settings::from_sets(&["profile=default"]).expect("settings");
    let err = install(api.client(), &settings, &options(None), &mut |_| {})
        .await
        .expect_err("no Secret");
    let message = err.to_string();
    assert!(
        message.contains("istio-system/loupe-database")
            && message.contains("kubectl -n istio-system create secret generic loupe-database"),
        "{message}"
    );
    assert!(patches(&api).is_empty(), "nothing applied");

    api.put(
        "api/v1/secrets",
        json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "loupe-database", "namespace": "istio-system"},
            "data": {"DATABASE_URL": "cG9zdGdyZXM6Ly9kYi9sb3VwZQ=="}}),
    );
    install(api.client(), &settings, &options(None), &mut |_| {})
        .await
        .expect("an install with the Secret");
    assert!(
        api.get(DEPLOYMENTS, "istio-system", "loupe-control")
            .is_some()
    );
    assert!(
        api.get(STATEFUL_SETS, "istio-system", "loupe-postgres")
            .is_none(),
        "no Postgres of its own"
    );
}

#[tokio::test]
async fn workloads_that_never_get_ready_are_named_when_the_wait_ends() {
    let api = ApiServer::start().await;
    let settings = Settings::for_profile(Profile::Demo);
    let err = install(
        api.client(),
        &settings,
        &options(Some(Duration::from_secs(1))),
        &mut |_| {},
    )
    .await
    .expect_err("no controller rolls anything out");
    let message = err.to_string();
    assert!(matches!(err, InstallError::NotReady { .. }), "{message}");
    assert!(
        message.contains("Deployment istio-system/loupe-control")
            && message.contains("StatefulSet istio-system/loupe-postgres")
            && message.contains("kubectl -n istio-system get pods"),
        "{message}"
    );
}

#[tokio::test]
async fn the_dashboard_forwards_each_connection_to_the_running_console_pod() {
    let api = ApiServer::start().await;
    assert!(
        dashboard::console_pod(&api.client(), "istio-system")
            .await
            .expect_err("no console yet")
            .to_string()
            .contains("loupe install"),
    );

    // The console: a real HTTP server on loopback, behind the pod's port.
    let console = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let console_addr = console.local_addr().expect("addr");
    tokio::spawn(async move {
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "Loupe console" }));
        let _ = axum::serve(console, app).await;
    });
    let pod = |name: &str, phase: &str, created: &str| {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "istio-system",
                "labels": {"app": "loupe-console"}, "creationTimestamp": created},
            "status": {"phase": phase}})
    };
    api.put(
        "api/v1/pods",
        pod("loupe-console-old", "Failed", "2026-12-01T00:00:00Z"),
    );
    api.put(
        "api/v1/pods",
        pod("loupe-console-7c9d", "Running", "2026-12-02T00:00:00Z"),
    );
    api.put(
        "api/v1/pods",
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "loupe-control-1", "namespace": "istio-system", "labels": {"app": "loupe-control"}},
            "status": {"phase": "Running"}}),
    );
    api.forward("istio-system", "loupe-console-7c9d", 20001, console_addr);
    assert_eq!(
        dashboard::console_pod(&api.client(), "istio-system")
            .await
            .expect("the running console pod"),
        "loupe-console-7c9d"
    );

    let local = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/", local.local_addr().expect("addr"));
    tokio::spawn(dashboard::serve(api.client(), "istio-system".into(), local));
    for _ in 0..2 {
        // A fresh connection each time: each is its own port-forward.
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .expect("client");
        let body = http
            .get(&url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("through the port-forward")
            .text()
            .await
            .expect("body");
        assert_eq!(body, "Loupe console");
    }
    let forwards = api
        .requests()
        .iter()
        .filter(|r| r.contains("/pods/loupe-console-7c9d/portforward?ports=20001"))
        .count();
    assert_eq!(forwards, 2, "one port-forward per connection");
}
