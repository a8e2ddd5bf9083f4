//! A real webhook server on 127.0.0.1 over TLS, and a client that reaches it
//! by the control plane's Service name and trusts only its CA — as the API
//! server does with the `caBundle`.

use std::net::SocketAddr;
use std::sync::Arc;

use loupe_k8s::inject::InjectSettings;
use loupe_k8s::manifest::{Profile, Settings};
use loupe_k8s::webhook::{ServingCert, WebhookState, router, serve, service_dns_names};
use serde_json::{Value, json};

pub struct Webhook {
    pub client: reqwest::Client,
    pub base: String,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

pub async fn start() -> Webhook {
    let names = service_dns_names();
    let cert = ServingCert::generate(&names).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let state = WebhookState {
        inject: Arc::new(InjectSettings::from_install(&Settings::for_profile(
            Profile::Demo,
        ))),
        on_admitted: None,
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let tls = cert.server_config().unwrap();
    tokio::spawn(serve(listener, tls, router(state), async {
        let _ = rx.await;
    }));
    let host = "loupe-control.istio-system.svc";
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(cert.ca_pem.as_bytes()).unwrap()])
        .resolve(host, addr)
        .build()
        .unwrap();
    Webhook {
        client,
        base: format!("https://{host}:{}", addr.port()),
        _shutdown: tx,
    }
}

impl Webhook {
    /// POSTs `review` to `path`; the AdmissionReview answered.
    pub async fn post(&self, path: &str, review: &Value) -> Value {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .json(review)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(body["kind"], "AdmissionReview");
        body
    }
}

/// An AdmissionReview as the Kubernetes API reference documents it
/// ("Webhook request and response"), for a CREATE of `object`.
pub fn review(
    uid: &str,
    kind: (&str, &str, &str),
    resource: &str,
    namespace: &str,
    name: &str,
    operation: &str,
    object: Value,
) -> Value {
    let (group, version, kind) = kind;
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "requestKind": {"group": group, "version": version, "kind": kind},
            "requestResource": {"group": group, "version": version, "resource": resource},
            "name": name,
            "namespace": namespace,
            "operation": operation,
            "userInfo": {
                "username": "admin",
                "uid": "014fbff9a07c",
                "groups": ["system:authenticated", "my-admin-group"],
                "extra": {"some-key": ["some-value1", "some-value2"]}
            },
            "object": object,
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        }
    })
}
