//! The injection webhook over real HTTPS, fed AdmissionReviews of pods as the
//! API server sends them (a ReplicaSet's pod with the service-account volume
//! already added, pods with init containers, labels and annotations, host
//! network). Every answered JSONPatch is applied to the original pod with the
//! `json-patch` crate, and the result must parse as a k8s-openapi Pod with no
//! unknown field and carry the sidecar, the init container first, the
//! volumes and the status annotation.

mod support;

use base64::Engine as _;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};
use support::{Webhook, review, start};

/// A pod of Deployment `reviews-v1` as it reaches the webhook: named by
/// `generateName`, the service-account token volume already mounted.
fn pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "reviews-v1-7d8f9c6b5-",
            "namespace": "bookinfo",
            "labels": {"app": "reviews", "version": "v1", "pod-template-hash": "7d8f9c6b5"},
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "reviews-v1-7d8f9c6b5",
                "uid": "0b2a6c1e-1f0e-4c47-9e5b-7c0f3c2f5a11", "controller": true, "blockOwnerDeletion": true
            }]
        },
        "spec": {
            "serviceAccountName": "bookinfo-reviews",
            "containers": [{
                "name": "reviews",
                "image": "docker.io/istio/examples-bookinfo-reviews-v1:1.20.2",
                "ports": [{"containerPort": 9080, "protocol": "TCP"}],
                "volumeMounts": [{
                    "name": "kube-api-access-x7k2p",
                    "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                    "readOnly": true
                }]
            }],
            "volumes": [{
                "name": "kube-api-access-x7k2p",
                "projected": {"defaultMode": 420, "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}
                ]}
            }],
            "restartPolicy": "Always",
            "dnsPolicy": "ClusterFirst"
        }
    })
}

fn pod_review(uid: &str, pod: Value) -> Value {
    review(
        uid,
        ("", "v1", "Pod"),
        "pods",
        "bookinfo",
        "",
        "CREATE",
        pod,
    )
}

/// Sends the pod; the response, and the pod with the patch applied (the
/// pod unchanged when there is no patch).
async fn send(webhook: &Webhook, uid: &str, original: &Value) -> (Value, Value) {
    let body = webhook
        .post("/inject", &pod_review(uid, original.clone()))
        .await;
    let response = body["response"].clone();
    assert_eq!(response["uid"], uid, "the uid is echoed");
    let mut patched = original.clone();
    if let Some(patch) = response["patch"].as_str() {
        assert_eq!(response["patchType"], "JSONPatch");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(patch)
            .unwrap();
        let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
        json_patch::patch(&mut patched, &patch).expect("the patch applies to the original pod");
    }
    (response, patched)
}

/// The patched pod as a typed Pod, refusing unknown fields.
fn typed(pod: &Value) -> Pod {
    let mut unknown = Vec::new();
    let typed: Pod =
        serde_ignored::deserialize(pod.clone(), |p| unknown.push(p.to_string())).unwrap();
    assert!(
        unknown.is_empty(),
        "unknown fields in the patched pod: {unknown:?}"
    );
    typed
}

fn names(list: &Option<Vec<k8s_openapi::api::core::v1::Container>>) -> Vec<String> {
    list.iter().flatten().map(|c| c.name.clone()).collect()
}

#[tokio::test]
async fn a_pod_gets_the_sidecar_and_the_capture_init_container() {
    let webhook = start().await;
    let (response, patched) = send(&webhook, "uid-plain", &pod()).await;
    assert_eq!(response["allowed"], true);
    let pod = typed(&patched);
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!(
        names(&Some(spec.containers.clone())),
        ["reviews", "istio-proxy"]
    );
    assert_eq!(names(&spec.init_containers), ["istio-init"]);

    let init = &spec.init_containers.as_ref().unwrap()[0];
    assert_eq!(
        init.image.as_deref(),
        Some("docker.io/loupe/loupe-proxy:0.1.0")
    );
    assert_eq!(
        init.command.as_deref(),
        Some(&["loupe-proxy".to_string()][..])
    );
    assert_eq!(
        init.args.as_deref().unwrap(),
        [
            "iptables",
            "-p",
            "15001",
            "-z",
            "15006",
            "-u",
            "1337",
            "-m",
            "REDIRECT",
            "-i",
            "*",
            "-x",
            "",
            "-b",
            "*",
            "-d",
            "15090,15021,15020"
        ]
    );
    let init_sc = init.security_context.as_ref().unwrap();
    assert_eq!(init_sc.run_as_user, Some(0));
    assert_eq!(init_sc.run_as_non_root, Some(false));
    let caps = init_sc.capabilities.as_ref().unwrap().add.clone().unwrap();
    assert_eq!(caps, ["NET_ADMIN", "NET_RAW"]);

    let proxy = &spec.containers[1];
    let args = proxy.args.clone().unwrap().join(" ");
    assert_eq!(
        args,
        "--capture --workload $(POD_NAME) --namespace $(POD_NAMESPACE) --service-account $(SERVICE_ACCOUNT) \
         --control https://loupe-control.istio-system.svc:15012 --ca-root /var/run/secrets/istio/root-cert.pem \
         --token-file /var/run/secrets/tokens/istio-token"
    );
    let env: Vec<(String, Option<String>)> = proxy
        .env
        .iter()
        .flatten()
        .map(|e| {
            let field = e
                .value_from
                .as_ref()
                .and_then(|v| v.field_ref.as_ref())
                .map(|f| f.field_path.clone());
            (e.name.clone(), field.or(e.value.clone()))
        })
        .collect();
    assert!(env.contains(&("POD_NAME".into(), Some("metadata.name".into()))));
    assert!(env.contains(&("POD_NAMESPACE".into(), Some("metadata.namespace".into()))));
    assert!(env.contains(&(
        "SERVICE_ACCOUNT".into(),
        Some("spec.serviceAccountName".into())
    )));
    assert!(env.contains(&(
        "LOUPE_PROXY_LABELS".into(),
        Some("app=reviews,pod-template-hash=7d8f9c6b5,version=v1".into())
    )));
    let sc = proxy.security_context.as_ref().unwrap();
    assert_eq!(
        (sc.run_as_user, sc.run_as_group, sc.run_as_non_root),
        (Some(1337), Some(1337), Some(true))
    );
    let ready = proxy
        .readiness_probe
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap();
    assert_eq!(ready.path.as_deref(), Some("/healthz/ready"));
    assert_eq!(
        ready.port,
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(15021)
    );
    assert!(
        proxy.lifecycle.as_ref().unwrap().pre_stop.is_some(),
        "a preStop delays the proxy's stop"
    );
    let ports: Vec<(Option<String>, i32)> = proxy
        .ports
        .iter()
        .flatten()
        .map(|p| (p.name.clone(), p.container_port))
        .collect();
    assert_eq!(
        ports,
        [
            (Some("http-envoy-prom".into()), 15090),
            (Some("status-port".into()), 15021)
        ]
    );
    let mounts: Vec<&str> = proxy
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| m.mount_path.as_str())
        .collect();
    assert_eq!(
        mounts,
        ["/var/run/secrets/tokens", "/var/run/secrets/istio"]
    );

    // The pod's own volume kept, Istio's two appended.
    let volumes = spec.volumes.as_ref().unwrap();
    let volume_names: Vec<&str> = volumes.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        volume_names,
        ["kube-api-access-x7k2p", "istio-token", "istiod-ca-cert"]
    );
    let token = volumes[1]
        .projected
        .as_ref()
        .unwrap()
        .sources
        .as_ref()
        .unwrap()[0]
        .service_account_token
        .as_ref()
        .unwrap();
    assert_eq!(token.audience.as_deref(), Some("istio-ca"));
    assert_eq!(token.path, "istio-token");
    assert_eq!(
        volumes[2].config_map.as_ref().unwrap().name,
        "istio-ca-root-cert"
    );

    let annotations = pod.metadata.annotations.as_ref().unwrap();
    let status: Value = serde_json::from_str(&annotations["sidecar.istio.io/status"]).unwrap();
    assert_eq!(status["containers"], json!(["istio-proxy"]));
    assert_eq!(status["initContainers"], json!(["istio-init"]));
    assert_eq!(
        annotations["kubectl.kubernetes.io/default-container"],
        "reviews"
    );
    let labels = pod.metadata.labels.as_ref().unwrap();
    assert_eq!(labels["security.istio.io/tlsMode"], "istio");
    assert_eq!(labels["service.istio.io/canonical-name"], "reviews");
    assert_eq!(labels["service.istio.io/canonical-revision"], "v1");
    assert_eq!(labels["app"], "reviews", "the pod's labels are kept");

    // Re-sent (a reinvocation, or the same pod twice): nothing more.
    let (again, unchanged) = send(&webhook, "uid-again", &patched).await;
    assert_eq!(again["allowed"], true);
    assert!(again.get("patch").is_none());
    assert_eq!(unchanged, patched);
}

#[tokio::test]
async fn existing_init_containers_are_kept_after_istio_init() {
    let webhook = start().await;
    let mut original = pod();
    original["spec"]["initContainers"] = json!([
        {"name": "migrate", "image": "busybox:1.36", "command": ["sh", "-c", "true"]},
        {"name": "warm-cache", "image": "busybox:1.36"}
    ]);
    // A pod with neither volumes nor annotations: both are added whole.
    original["spec"].as_object_mut().unwrap().remove("volumes");
    original["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("volumeMounts");
    let (response, patched) = send(&webhook, "uid-init", &original).await;
    assert_eq!(response["allowed"], true);
    let pod = typed(&patched);
    let spec = pod.spec.unwrap();
    assert_eq!(
        names(&spec.init_containers),
        ["istio-init", "migrate", "warm-cache"]
    );
    let volumes: Vec<String> = spec.volumes.unwrap().into_iter().map(|v| v.name).collect();
    assert_eq!(volumes, ["istio-token", "istiod-ca-cert"]);
}

#[tokio::test]
async fn opted_out_and_host_network_pods_are_left_alone() {
    let webhook = start().await;
    let mut by_label = pod();
    by_label["metadata"]["labels"]["sidecar.istio.io/inject"] = json!("false");
    let mut by_annotation = pod();
    by_annotation["metadata"]["annotations"] = json!({"sidecar.istio.io/inject": "false"});
    let mut host_network = pod();
    host_network["spec"]["hostNetwork"] = json!(true);
    for (uid, original) in [
        ("uid-label", by_label),
        ("uid-annotation", by_annotation),
        ("uid-host", host_network),
    ] {
        let (response, patched) = send(&webhook, uid, &original).await;
        assert_eq!(response["allowed"], true, "{uid}");
        assert!(response.get("patch").is_none(), "{uid}: no patch");
        assert_eq!(patched, original, "{uid}");
    }
}

#[tokio::test]
async fn traffic_annotations_become_istio_iptables_flags() {
    let webhook = start().await;
    let mut original = pod();
    original["metadata"]["annotations"] = json!({
        "traffic.sidecar.istio.io/includeOutboundIPRanges": "10.0.0.0/8, 172.16.0.0/12",
        "traffic.sidecar.istio.io/excludeOutboundIPRanges": "10.96.0.1/32",
        "traffic.sidecar.istio.io/includeInboundPorts": "9080",
        "traffic.sidecar.istio.io/excludeInboundPorts": "9443,15021",
        "traffic.sidecar.istio.io/excludeOutboundPorts": "5432",
        "traffic.sidecar.istio.io/includeOutboundPorts": "443",
        "team": "reviews"
    });
    let (_, patched) = send(&webhook, "uid-traffic", &original).await;
    let pod = typed(&patched);
    let init = &pod.spec.as_ref().unwrap().init_containers.as_ref().unwrap()[0];
    assert_eq!(
        init.args.as_deref().unwrap(),
        [
            "iptables",
            "-p",
            "15001",
            "-z",
            "15006",
            "-u",
            "1337",
            "-m",
            "REDIRECT",
            "-i",
            "10.0.0.0/8,172.16.0.0/12",
            "-x",
            "10.96.0.1/32",
            "-b",
            "9080",
            "-d",
            "15090,15021,15020,9443",
            "-o",
            "5432",
            "-q",
            "443"
        ]
    );
    // The pod's annotations are kept; Istio's are added beside them.
    let annotations = pod.metadata.annotations.unwrap();
    assert_eq!(annotations["team"], "reviews");
    assert!(annotations.contains_key("sidecar.istio.io/status"));
}

#[tokio::test]
async fn a_malformed_traffic_annotation_refuses_the_pod() {
    let webhook = start().await;
    let mut original = pod();
    original["metadata"]["annotations"] =
        json!({"traffic.sidecar.istio.io/excludeOutboundIPRanges": "10.0.0.0/33"});
    let (response, _) = send(&webhook, "uid-bad", &original).await;
    assert_eq!(response["allowed"], false);
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("excludeOutboundIPRanges") && message.contains("10.0.0.0/33"),
        "{message}"
    );
}

#[tokio::test]
async fn a_body_that_is_not_an_admission_review_is_answered_not_crashed() {
    let webhook = start().await;
    let body = webhook.post("/inject", &json!({"hello": "world"})).await;
    assert_eq!(body["response"]["allowed"], false);
    assert!(
        body["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("not an AdmissionReview")
    );
}
