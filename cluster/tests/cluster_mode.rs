//! Cluster mode end to end, against the stand-in API server of
//! the `loupe-kube-stand-in` crate (no Kubernetes API server runs on this machine;
//! kube-rs itself, Postgres, the control plane, TLS and the push stream are
//! real): Istio objects from a watch reach a connected proxy — the invalid
//! one never, and it gets `status.validationMessages` and an Event; the
//! registry comes from Services, EndpointSlices and Pods; a proxy
//! authenticates with its pod's token through TokenReview and cannot claim
//! another service account; the root certificate is published in every
//! namespace; the Lease makes this replica the leader.

use std::time::Duration;

use loupe_control::ControlPlane;
use loupe_kube_stand_in::ApiServer;
use loupe_push::discovery_client::DiscoveryClient;
use loupe_push::proxy_message::Message;
use loupe_push::{Hello, ProxyMessage, Snapshot};
use serde_json::{Value, json};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

const VS: &str = "apis/networking.istio.io/v1/virtualservices";
const PODS: &str = "api/v1/pods";
const NAMESPACES: &str = "api/v1/namespaces";
const CONFIG_MAPS: &str = "api/v1/configmaps";
const EVENTS: &str = "apis/events.k8s.io/v1/events";
const LEASES: &str = "apis/coordination.k8s.io/v1/leases";

fn virtual_service(name: &str, weights: (i64, i64)) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": name, "namespace": "default",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
            "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "networking.istio.io/v1"}]},
        "spec": {"hosts": ["reviews"], "http": [{"route": [
            {"destination": {"host": "reviews"}, "weight": weights.0},
            {"destination": {"host": "ratings"}, "weight": weights.1}
        ]}]}
    })
}

fn reviews_pod(uid: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "reviews-v1-7d9f", "namespace": "default", "uid": uid,
            "labels": {"app": "reviews", "version": "v1"},
            "annotations": {"sidecar.istio.io/status": "{\"initContainers\":[\"istio-init\"],\"containers\":[\"istio-proxy\"]}"}},
        "spec": {"serviceAccountName": "bookinfo-reviews",
            "containers": [{"name": "reviews", "image": "reviews:v1"}, {"name": "istio-proxy", "image": "loupe-proxy"}]},
        "status": {"phase": "Running", "podIP": "10.244.1.7",
            "conditions": [{"type": "Ready", "status": "True"}]}
    })
}

fn seed(api: &ApiServer) {
    for ns in ["default", "istio-system", "kube-system"] {
        api.put(
            NAMESPACES,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        );
    }
    api.put(
        "api/v1/services",
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "reviews", "namespace": "default"},
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.12.5", "clusterIPs": ["10.96.12.5"],
                "selector": {"app": "reviews"},
                "ports": [{"name": "http", "port": 9080, "targetPort": 9080, "protocol": "TCP"}]}
        }),
    );
    api.put(
        "apis/discovery.k8s.io/v1/endpointslices",
        json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "reviews-x7k2p", "namespace": "default",
                "labels": {"kubernetes.io/service-name": "reviews", "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 9080, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["10.244.1.7"],
                "conditions": {"ready": true, "serving": true, "terminating": false},
                "nodeName": "node-1",
                "targetRef": {"kind": "Pod", "namespace": "default", "name": "reviews-v1-7d9f", "uid": "pod-uid-1"}}]
        }),
    );
    api.put(PODS, reviews_pod("pod-uid-1"));
    // The pod's projected token, and a token of the same pod's previous life.
    let review = |sa: &str, uid: &str| {
        json!({
            "authenticated": true,
            "audiences": ["istio-ca"],
            "user": {
                "username": format!("system:serviceaccount:default:{sa}"),
                "uid": "sa-uid",
                "groups": ["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"],
                "extra": {
                    "authentication.kubernetes.io/pod-name": ["reviews-v1-7d9f"],
                    "authentication.kubernetes.io/pod-uid": [uid]
                }
            }
        })
    };
    api.token("reviews-token", review("bookinfo-reviews", "pod-uid-1"));
    api.token("old-pod-token", review("bookinfo-reviews", "pod-uid-0"));
    api.token(
        "unbound-token",
        json!({"authenticated": true, "audiences": ["istio-ca"],
        "user": {"username": "system:serviceaccount:default:bookinfo-reviews"}}),
    );
}

struct Running {
    api: ApiServer,
    addr: std::net::SocketAddr,
    root: String,
    store: loupe_control::ConfigStore,
    _cluster: loupe_cluster::Cluster,
    _ca: tempfile::TempDir,
    _pg: loupe_db::PrivatePostgres,
}

async fn start() -> Running {
    let api = ApiServer::start().await;
    seed(&api);
    let pg = loupe_db::PrivatePostgres::start_temporary().expect("a private Postgres");
    let pool = loupe_db::connect(&pg.url(), 8).await.expect("connect");
    let ca = tempfile::tempdir().expect("CA dir");
    let control = ControlPlane::start_with_grace(
        pool,
        &loupe_control::ca::CaOptions::new(ca.path()),
        Duration::ZERO,
    )
    .await
    .expect("control plane");
    let client = api.client();
    let leader =
        loupe_cluster::leader::elect(client.clone(), "istio-system", "loupe-control-0".into());
    let reporter = kube::runtime::events::Reporter {
        controller: "loupe-control".into(),
        instance: Some("loupe-control-0".into()),
    };
    let (control, cluster) = loupe_cluster::attach(client, control, leader, reporter);
    let root = std::fs::read_to_string(control.ca().root_cert_path()).expect("root");
    let store = control.store().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(control.serve(listener, std::future::pending()));
    Running {
        api,
        addr,
        root,
        store,
        _cluster: cluster,
        _ca: ca,
        _pg: pg,
    }
}

impl Running {
    async fn open(
        &self,
        token: &str,
        hello: Hello,
    ) -> Result<tonic::Streaming<Snapshot>, tonic::Status> {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.root))
            .domain_name("localhost");
        let channel = Channel::from_shared(format!("https://{}", self.addr))
            .expect("uri")
            .tls_config(tls)
            .expect("tls")
            .connect()
            .await
            .expect("connect");
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.send(ProxyMessage {
            message: Some(Message::Hello(hello)),
        })
        .await
        .expect("queue hello");
        // Kept open for the stream's life.
        std::mem::forget(tx);
        let mut request = tonic::Request::new(ReceiverStream::new(rx));
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("ascii"),
        );
        let mut stream = DiscoveryClient::new(channel)
            .stream(request)
            .await?
            .into_inner();
        // A refusal after the Hello arrives as the stream's first message.
        match tokio::time::timeout(Duration::from_secs(10), stream.message()).await {
            Ok(Err(status)) => Err(status),
            Ok(Ok(Some(first))) => {
                FIRST.with(|f| *f.borrow_mut() = Some(first));
                Ok(stream)
            }
            Ok(Ok(None)) => Err(tonic::Status::aborted("stream closed")),
            Err(_) => Err(tonic::Status::deadline_exceeded(
                "no first snapshot in 10 s",
            )),
        }
    }
}

thread_local! {
    static FIRST: std::cell::RefCell<Option<Snapshot>> = const { std::cell::RefCell::new(None) };
}

fn reviews_hello(service_account: &str) -> Hello {
    Hello {
        workload: "reviews-v1-7d9f".into(),
        namespace: "default".into(),
        service_account: service_account.into(),
        labels: [("app", "reviews"), ("version", "v1")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    }
}

fn has_vs(s: &Snapshot, name: &str) -> bool {
    s.resources
        .iter()
        .any(|r| r.kind == "VirtualService" && r.name == name)
}

fn endpoints(s: &Snapshot, host: &str) -> Vec<String> {
    s.services
        .iter()
        .filter(|svc| svc.host == host)
        .flat_map(|svc| svc.endpoints.iter().map(|e| e.address.clone()))
        .collect()
}

/// The next snapshot satisfying `pred`, the first one included.
async fn until(
    stream: &mut tonic::Streaming<Snapshot>,
    what: &str,
    pred: impl Fn(&Snapshot) -> bool,
) -> Snapshot {
    if let Some(first) = FIRST.with(|f| f.borrow_mut().take())
        && pred(&first)
    {
        return first;
    }
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let s = stream
                .message()
                .await
                .expect("stream healthy")
                .expect("stream open");
            if pred(&s) {
                return s;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no snapshot with {what} within 20 s"))
}

async fn eventually(what: &str, f: impl Fn() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not happen within 20 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_stream_reaches_proxies_valid_objects_only_and_reports_the_invalid_one() {
    let cp = start().await;
    cp.api.put(VS, virtual_service("reviews-split", (80, 20)));
    cp.api
        .put(VS, virtual_service("reviews-broken", (110, -10)));

    let mut stream = cp
        .open("reviews-token", reviews_hello("bookinfo-reviews"))
        .await
        .expect("the pod's own token and identity are accepted");
    let snapshot = until(
        &mut stream,
        "the valid VirtualService and the pod as endpoint",
        |s| {
            has_vs(s, "reviews-split")
                && endpoints(s, "reviews.default.svc.cluster.local") == ["10.244.1.7:9080"]
        },
    )
    .await;
    assert!(
        !has_vs(&snapshot, "reviews-broken"),
        "the invalid VirtualService is never pushed"
    );
    let identity = &snapshot
        .services
        .iter()
        .find(|s| s.host == "reviews.default.svc.cluster.local")
        .expect("the reviews Service")
        .endpoints[0]
        .identity;
    assert_eq!(
        identity,
        "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"
    );

    // The invalid object carries Istio's status and a Warning Event.
    eventually("status.validationMessages on reviews-broken", || {
        cp.api
            .get(VS, "default", "reviews-broken")
            .and_then(|o| o.pointer("/status/validationMessages/0").cloned())
            .is_some_and(|m| {
                m["level"] == "ERROR"
                    && m["type"]["code"] == "IST0106"
                    && m["description"]
                        .as_str()
                        .is_some_and(|d| d.contains("weight"))
            })
    })
    .await;
    let broken = cp.api.get(VS, "default", "reviews-broken").unwrap();
    assert_eq!(broken["status"]["observedGeneration"], 1);
    let valid = cp.api.get(VS, "default", "reviews-split").unwrap();
    assert!(
        valid.pointer("/status/validationMessages").is_none(),
        "nothing to report on a valid object: {valid}"
    );
    eventually("a Warning Event about reviews-broken", || {
        cp.api.list(EVENTS).iter().any(|e| {
            e["type"] == "Warning"
                && e["reason"] == "Invalid"
                && e["regarding"]["name"] == "reviews-broken"
                && e["regarding"]["kind"] == "VirtualService"
        })
    })
    .await;

    // The valid one is a revision by `kubernetes`, with the user's metadata only.
    let key = loupe_model::ResourceKey {
        kind: loupe_model::Kind::VirtualService,
        namespace: "default".into(),
        name: "reviews-split".into(),
    };
    let stored = cp
        .store
        .get(&key)
        .await
        .unwrap()
        .expect("mirrored into the store");
    assert_eq!(stored.author, "kubernetes");
    assert!(stored.object["metadata"].get("managedFields").is_none());
    assert!(
        stored.object["metadata"].get("annotations").is_none(),
        "kubectl's last-applied copy is not config"
    );

    // A fixed object is pushed and its messages cleared; a deleted one leaves.
    cp.api.put(VS, virtual_service("reviews-broken", (50, 50)));
    until(&mut stream, "the fixed VirtualService", |s| {
        has_vs(s, "reviews-broken")
    })
    .await;
    eventually("validationMessages cleared", || {
        cp.api
            .get(VS, "default", "reviews-broken")
            .is_some_and(|o| o.pointer("/status/validationMessages/0").is_none())
    })
    .await;
    // Broken again: the last valid version stays in force.
    cp.api
        .put(VS, virtual_service("reviews-broken", (110, -10)));
    cp.api.delete(VS, "default", "reviews-split");
    let s = until(&mut stream, "reviews-split deleted", |s| {
        !has_vs(s, "reviews-split")
    })
    .await;
    assert!(
        has_vs(&s, "reviews-broken"),
        "an object made invalid keeps its last valid version"
    );
    let history = cp.store.history(&key).await.unwrap();
    assert!(
        history.len() >= 2,
        "creation and deletion revisions: {history:?}"
    );
}

/// A VirtualService as a console user writes it (YAML, no server fields).
fn console_yaml(name: &str, host: &str, weights: (i64, i64)) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  hosts: [{host}]\n  http:\n  - route:\n    - destination: {{host: reviews}}\n      weight: {}\n    - destination: {{host: ratings}}\n      weight: {}\n",
        weights.0, weights.1
    )
}

fn weights(object: &Value) -> Option<(i64, i64)> {
    let route = object.pointer("/spec/http/0/route")?;
    Some((route[0]["weight"].as_i64()?, route[1]["weight"].as_i64()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_edits_are_written_back_to_the_kubernetes_api_not_reverted() {
    let cp = start().await;
    cp.api.put(VS, virtual_service("reviews-split", (80, 20)));
    let key = |name: &str| loupe_model::ResourceKey {
        kind: loupe_model::Kind::VirtualService,
        namespace: "default".into(),
        name: name.into(),
    };
    let store = cp.store.clone();
    let stored = |name: &'static str| {
        let store = store.clone();
        async move { store.get(&key(name)).await.expect("the store answers") }
    };
    for _ in 0..200 {
        if stored("reviews-split").await.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(stored("reviews-split").await.is_some(), "mirrored first");

    // A console edit (as `PUT /api/config/...` writes it) reaches the object.
    cp.store
        .put(
            &key("reviews-split"),
            &console_yaml("reviews-split", "reviews", (30, 70)),
            "alice",
        )
        .await
        .expect("the console's edit");
    eventually("the edit applied to the VirtualService", || {
        cp.api
            .get(VS, "default", "reviews-split")
            .and_then(|o| weights(&o))
            == Some((30, 70))
    })
    .await;
    assert!(
        cp.api.requests().iter().any(|r| r.starts_with(
            "PATCH /apis/networking.istio.io/v1/namespaces/default/virtualservices/reviews-split?"
        ) && r.contains("fieldManager=loupe")
            && r.contains("force=true")),
        "server-side apply by field manager loupe: {:?}",
        cp.api.requests()
    );
    // The mirror saw its own edit come back: nothing reverted, no new revision.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let now = stored("reviews-split").await.expect("still there");
    assert_eq!(weights(&now.object), Some((30, 70)), "not reverted");
    assert_eq!(now.author, "alice");
    assert_eq!(
        cp.store.history(&key("reviews-split")).await.unwrap().len(),
        2,
        "the mirror's revision and the console's, nothing more"
    );

    // Created in the console: created in the cluster. Deleted: deleted.
    cp.store
        .put(
            &key("reviews-new"),
            &console_yaml("reviews-new", "details", (50, 50)),
            "alice",
        )
        .await
        .expect("a new VirtualService");
    eventually("the new VirtualService in the cluster", || {
        cp.api.get(VS, "default", "reviews-new").is_some()
    })
    .await;
    cp.store
        .delete(&key("reviews-split"), "alice")
        .await
        .expect("the console's delete");
    eventually("the VirtualService deleted in the cluster", || {
        cp.api.get(VS, "default", "reviews-split").is_none()
    })
    .await;

    // A later kubectl change is mirrored as before.
    cp.api.put(VS, virtual_service("reviews-new", (10, 90)));
    let mut mirrored = None;
    for _ in 0..200 {
        mirrored = stored("reviews-new").await;
        if mirrored.as_ref().and_then(|m| weights(&m.object)) == Some((10, 90)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mirrored = mirrored.expect("reviews-new");
    assert_eq!(weights(&mirrored.object), Some((10, 90)));
    assert_eq!(mirrored.author, "kubernetes");
}

/// The AdmissionReview the API server sends the validating webhook when
/// `username` creates `object`.
fn admission_review(username: &str, object: &Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "5b1e7d0c",
            "kind": {"group": "networking.istio.io", "version": "v1", "kind": "VirtualService"},
            "resource": {"group": "networking.istio.io", "version": "v1", "resource": "virtualservices"},
            "name": object["metadata"]["name"], "namespace": "default",
            "operation": "CREATE",
            "userInfo": {"username": username, "groups": ["system:authenticated"]},
            "object": object, "oldObject": null, "dryRun": false,
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revisions_carry_the_kubernetes_user_the_validating_webhook_saw() {
    let cp = start().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = std::sync::Arc::new(
        loupe_control::ca::CertificateAuthority::open(&loupe_control::ca::CaOptions::new(
            dir.path(),
        ))
        .unwrap(),
    );
    let (_lead, leader) = tokio::sync::watch::channel(false);
    let webhooks = loupe_cluster::webhooks::start(
        cp.api.client(),
        ca.clone(),
        "127.0.0.1:0".parse().unwrap(),
        leader,
        Some(loupe_cluster::authors::recorder(cp.store.pool().clone())),
    )
    .await
    .expect("webhooks start");
    let host = "loupe-control.istio-system.svc";
    let https = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(ca.trust_bundle().to_pem().as_bytes()).unwrap(),
        )
        .resolve(host, webhooks.addr)
        .build()
        .unwrap();

    // kubectl as alice: the API server asks the webhook, then stores the object.
    let object = virtual_service("reviews-split", (60, 40));
    let answer: Value = https
        .post(format!("https://{host}:{}/validate", webhooks.addr.port()))
        .json(&admission_review("alice@example.com", &object))
        .send()
        .await
        .expect("the webhook answers")
        .json()
        .await
        .expect("an AdmissionReview");
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    cp.api.put(VS, object);

    let key = loupe_model::ResourceKey {
        kind: loupe_model::Kind::VirtualService,
        namespace: "default".into(),
        name: "reviews-split".into(),
    };
    let mut author = String::new();
    for _ in 0..200 {
        if let Some(stored) = cp.store.get(&key).await.unwrap() {
            author = stored.author;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        author, "alice@example.com",
        "the revision names who wrote it"
    );

    // A change no webhook saw (its spec was never admitted) is `kubernetes`'s.
    cp.api.put(VS, virtual_service("reviews-split", (10, 90)));
    for _ in 0..200 {
        let stored = cp.store.get(&key).await.unwrap().expect("stored");
        if weights(&stored.object) == Some((10, 90)) {
            author = stored.author;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(author, "kubernetes");
    let history = cp.store.history(&key).await.unwrap();
    assert_eq!(
        history
            .iter()
            .map(|r| r.author.as_str())
            .collect::<Vec<_>>(),
        ["kubernetes", "alice@example.com"],
        "newest first"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_review_backed_hello_for_another_service_account_is_refused() {
    let cp = start().await;
    let refused = cp
        .open("reviews-token", reviews_hello("bookinfo-productpage"))
        .await
        .expect_err("the pod runs as bookinfo-reviews");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    assert!(
        refused.message().contains("bookinfo-productpage"),
        "{}",
        refused.message()
    );

    let mut other_pod = reviews_hello("bookinfo-reviews");
    other_pod.workload = "ratings-v1-55c4".into();
    let refused = cp
        .open("reviews-token", other_pod)
        .await
        .expect_err("the token is bound to pod reviews-v1-7d9f");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");

    for (token, why) in [
        ("old-pod-token", "replaced"),
        ("unbound-token", "not bound to a pod"),
        ("forged-token", "rejects the token"),
    ] {
        let refused = cp
            .open(token, reviews_hello("bookinfo-reviews"))
            .await
            .expect_err(token);
        assert_eq!(
            refused.code(),
            tonic::Code::Unauthenticated,
            "{token}: {refused:?}"
        );
        assert!(
            refused.message().contains(why),
            "{token}: {}",
            refused.message()
        );
    }
    assert!(
        cp.api
            .requests()
            .iter()
            .any(|r| r.starts_with("POST /apis/authentication.k8s.io/v1/tokenreviews")),
        "the API server was asked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_root_certificate_is_published_in_each_namespace_and_the_lease_is_held() {
    let cp = start().await;
    for ns in ["default", "istio-system"] {
        eventually(&format!("istio-ca-root-cert in {ns}"), || {
            cp.api
                .get(CONFIG_MAPS, ns, "istio-ca-root-cert")
                .is_some_and(|cm| cm["data"]["root-cert.pem"] == cp.root.as_str())
        })
        .await;
    }
    assert!(
        cp.api
            .get(CONFIG_MAPS, "kube-system", "istio-ca-root-cert")
            .is_none()
    );
    // A namespace created later gets one too.
    cp.api.put(
        NAMESPACES,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bookinfo"}}),
    );
    eventually("istio-ca-root-cert in a new namespace", || {
        cp.api
            .get(CONFIG_MAPS, "bookinfo", "istio-ca-root-cert")
            .is_some()
    })
    .await;
    let lease = cp
        .api
        .get(LEASES, "istio-system", "loupe-control")
        .expect("the Lease");
    assert_eq!(lease["spec"]["holderIdentity"], "loupe-control-0");
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 15);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_signs_with_the_one_root_kept_in_a_secret() {
    use loupe_cluster::ca_secret;
    let api = ApiServer::start().await;
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let opts = |dir: &tempfile::TempDir| loupe_control::ca::CaOptions::new(dir.path());
    // The first replica generates the root and stores it; the second takes it.
    let first = ca_secret::sync(api.client(), "istio-system", &opts(&a))
        .await
        .unwrap();
    let second = ca_secret::sync(api.client(), "istio-system", &opts(&b))
        .await
        .unwrap();
    assert_eq!((first, second), ("istio-ca-secret", "istio-ca-secret"));
    let root = |dir: &tempfile::TempDir| {
        std::fs::read_to_string(dir.path().join("root-cert.pem")).unwrap()
    };
    assert_eq!(root(&a), root(&b));
    let ca = loupe_control::ca::CertificateAuthority::open(&opts(&b)).expect("the copy opens");
    assert_eq!(ca.trust_bundle().to_pem().trim(), root(&a).trim());
    let secret = api
        .get("api/v1/secrets", "istio-system", "istio-ca-secret")
        .expect("stored");
    assert_eq!(secret["type"], "istio.io/ca-root");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(b.path().join("ca-key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the copied key is private");

    // A plugged-in `cacerts` wins; one without its key is refused by name.
    api.put(
        "api/v1/secrets",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "cacerts", "namespace": "istio-system"},
            "data": {"ca-cert.pem": "Y2VydA=="}}),
    );
    let err = ca_secret::sync(api.client(), "istio-system", &opts(&b))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("cacerts has no ca-key.pem"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_writes_its_webhook_ca_into_both_configurations() {
    let api = ApiServer::start().await;
    let mutating = serde_json::to_value(loupe_k8s::manifest::mutating_webhook()).unwrap();
    let validating = serde_json::to_value(loupe_k8s::manifest::validating_webhook()).unwrap();
    let (m, v) = (
        "apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
        "apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
    );
    api.put(m, mutating.clone());
    api.put(v, validating.clone());
    let (lead, leader) = tokio::sync::watch::channel(false);
    let dir = tempfile::tempdir().unwrap();
    let ca = std::sync::Arc::new(
        loupe_control::ca::CertificateAuthority::open(&loupe_control::ca::CaOptions::new(
            dir.path(),
        ))
        .unwrap(),
    );
    let webhooks = loupe_cluster::webhooks::start(
        api.client(),
        ca.clone(),
        "127.0.0.1:0".parse().unwrap(),
        leader,
        None,
    )
    .await
    .expect("webhooks start");
    let bundle = |collection: &str, config: &Value| {
        let name = config["metadata"]["name"].as_str().unwrap();
        api.get(collection, "", name).map(|c| {
            c["webhooks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| {
                    w["clientConfig"]["caBundle"]
                        .as_str()
                        .unwrap_or("")
                        .to_string()
                })
                .collect::<Vec<_>>()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        bundle(m, &mutating).unwrap().iter().all(String::is_empty),
        "a follower writes nothing"
    );
    lead.send_replace(true);
    use base64::Engine;
    let expected = base64::engine::general_purpose::STANDARD.encode(ca.trust_bundle().to_pem());
    eventually(
        "the mesh's trust bundle in every webhook of both configurations",
        || {
            [(m, &mutating), (v, &validating)]
                .iter()
                .all(|(c, config)| {
                    bundle(c, config)
                        .is_some_and(|b| !b.is_empty() && b.iter().all(|x| *x == expected))
                })
        },
    )
    .await;

    // The API server reaches the webhooks by the Service's name, trusting that bundle.
    let host = "loupe-control.istio-system.svc";
    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(ca.trust_bundle().to_pem().as_bytes()).unwrap(),
        )
        .resolve(host, webhooks.addr)
        .build()
        .unwrap();
    let ready = client
        .get(format!(
            "https://{host}:{}/healthz/ready",
            webhooks.addr.port()
        ))
        .send()
        .await
        .expect("a TLS connection the mesh root vouches for");
    assert!(ready.status().is_success());
}
