//! The admission webhooks' HTTPS server: `POST /inject` answers a Pod's
//! AdmissionReview (v1) with [`crate::inject`]'s JSONPatch, `POST /validate`
//! an Istio object's with [`crate::validate`]'s verdict.
//!
//! The API server only calls webhooks over TLS, trusting the `caBundle` of
//! the webhook configuration. The control plane makes its own serving
//! certificate at start ([`ServingCert::generate`]) and patches its CA into
//! both configurations ([`ca_bundle_patch`]), as istiod does.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use json_patch::{Patch, PatchOperation, ReplaceOperation};
use k8s_openapi::api::core::v1::Pod;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;

use crate::inject::{InjectSettings, Injection, inject};
use crate::manifest::{CONTROL_SERVICE, NAMESPACE};
use crate::validate::{describe, validate};

/// What the handlers share.
#[derive(Clone, Debug)]
pub struct WebhookState {
    pub inject: Arc<InjectSettings>,
    /// Told of every Istio object the validating webhook admits on create
    /// or update, with who wrote it (cluster mode records the author).
    pub on_admitted: Option<OnAdmitted>,
}

/// An Istio object the validating webhook admitted, and who wrote it
/// (`AdmissionReview.request.userInfo.username`).
#[derive(Clone, Debug, PartialEq)]
pub struct Admitted {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub spec: serde_json::Value,
    pub username: String,
}

/// The callback behind [`WebhookState::on_admitted`]: the answer waits for
/// its future (so that what it records is there before the API server
/// stores the object), which must bound its own time.
#[derive(Clone)]
pub struct OnAdmitted(pub Arc<dyn Fn(Admitted) -> Recording + Send + Sync>);

/// What [`OnAdmitted`] returns: the recording, awaited before the answer.
pub type Recording = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

impl std::fmt::Debug for OnAdmitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnAdmitted(..)")
    }
}

/// `POST /inject`, `POST /validate`, and `GET /healthz/ready`.
pub fn router(state: WebhookState) -> Router {
    Router::new()
        .route("/inject", post(inject_handler))
        .route("/validate", post(validate_handler))
        .route("/healthz/ready", get(|| async { "ok" }))
        .with_state(state)
}

/// The AdmissionReview answering `response`, with `patch` as the base64
/// string the API reference documents (kube serializes the bytes as a JSON
/// array of numbers).
fn answer(response: AdmissionResponse) -> Response {
    let patch = response.patch.clone();
    let mut review = match serde_json::to_value(response.into_review()) {
        Ok(v) => v,
        Err(e) => return (http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    if let Some(patch) = patch {
        review["response"]["patch"] =
            serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(patch));
    }
    axum::Json(review).into_response()
}

/// The request of an AdmissionReview body; what is wrong with it otherwise
/// (answered as an invalid AdmissionReview: the API server shows
/// `status.message` to the user).
fn read<T>(body: &[u8]) -> Result<AdmissionRequest<T>, String>
where
    T: kube::core::Resource + serde::de::DeserializeOwned,
{
    let review: AdmissionReview<T> = serde_json::from_slice(body)
        .map_err(|e| format!("the body is not an AdmissionReview: {e}"))?;
    review
        .try_into()
        .map_err(|_| "the AdmissionReview has no request".to_string())
}

async fn inject_handler(State(state): State<WebhookState>, body: Bytes) -> Response {
    let request: AdmissionRequest<Pod> = match read(&body) {
        Ok(r) => r,
        Err(problem) => return answer(AdmissionResponse::invalid(problem)),
    };
    let response = AdmissionResponse::from(&request);
    let Some(pod) = request.object.as_ref() else {
        return answer(response);
    };
    let namespace = request
        .namespace
        .as_deref()
        .or(pod.metadata.namespace.as_deref())
        .unwrap_or("default");
    match inject(pod, namespace, &state.inject) {
        Ok(Injection::Skip(reason)) => {
            tracing::debug!(namespace, name = %request.name, reason, "not injected");
            answer(response)
        }
        Ok(Injection::Patch(patch)) => match response.clone().with_patch(patch) {
            Ok(with_patch) => answer(with_patch),
            Err(err) => answer(response.deny(format!("cannot encode the patch: {err}"))),
        },
        Err(err) => answer(deny(response, format!("sidecar injection refused: {err}"))),
    }
}

async fn validate_handler(State(state): State<WebhookState>, body: Bytes) -> Response {
    let request: AdmissionRequest<DynamicObject> = match read(&body) {
        Ok(r) => r,
        Err(problem) => return answer(AdmissionResponse::invalid(problem)),
    };
    let mut response = AdmissionResponse::from(&request);
    let Some(object) = request.object.as_ref() else {
        return answer(response);
    };
    let object = match serde_json::to_value(object) {
        Ok(o) => o,
        Err(e) => return answer(response.deny(format!("cannot read the object: {e}"))),
    };
    let verdict = validate(&object);
    if !verdict.warnings.is_empty() {
        response.warnings = Some(verdict.warnings.iter().map(describe).collect());
    }
    if verdict.allowed() {
        let written = matches!(
            request.operation,
            kube::core::admission::Operation::Create | kube::core::admission::Operation::Update
        );
        if let (Some(hook), true, Some(username)) =
            (&state.on_admitted, written, &request.user_info.username)
        {
            (hook.0)(Admitted {
                kind: request.kind.kind.clone(),
                namespace: request.namespace.clone().unwrap_or_default(),
                name: request.name.clone(),
                spec: object.get("spec").cloned().unwrap_or_default(),
                username: username.clone(),
            })
            .await;
        }
        return answer(response);
    }
    let kind = object
        .get("kind")
        .and_then(|k| k.as_str())
        .unwrap_or("object");
    let lines: Vec<String> = verdict.errors.iter().map(describe).collect();
    let message = format!(
        "admission webhook \"validation.istio.io\" denied the request: {kind} {} is invalid: {}",
        request.name,
        lines.join("; ")
    );
    tracing::info!(kind, namespace = ?request.namespace, name = %request.name, errors = lines.len(), "refused");
    answer(deny(response, message))
}

fn deny(response: AdmissionResponse, message: String) -> AdmissionResponse {
    let mut response = response.deny(message);
    response.result.code = 400;
    response.result.reason = "BadRequest".into();
    response
}

/// The names the API server calls the control plane's Service by.
pub fn service_dns_names() -> Vec<String> {
    let base = format!("{CONTROL_SERVICE}.{NAMESPACE}");
    vec![
        CONTROL_SERVICE.to_string(),
        base.clone(),
        format!("{base}.svc"),
        format!("{base}.svc.cluster.local"),
    ]
}

/// A webhook serving certificate and the CA that signed it (the `caBundle`).
#[derive(Clone, Debug)]
pub struct ServingCert {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot make the webhook certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("the webhook certificate is unusable: {0}")]
    Config(String),
}

impl ServingCert {
    /// A fresh CA and a leaf for `dns_names` signed by it.
    pub fn generate(dns_names: &[String]) -> Result<ServingCert, TlsError> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "loupe-control webhook CA");
        let ca = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(dns_names.to_vec())?;
        params.distinguished_name.push(
            DnType::CommonName,
            dns_names.first().map(String::as_str).unwrap_or("loupe"),
        );
        let cert = params.signed_by(&key, &issuer)?;
        Ok(ServingCert {
            ca_pem: ca.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// rustls' server configuration for this certificate (h2 and http/1.1).
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let bad = |e: &dyn std::fmt::Display| TlsError::Config(e.to_string());
        let certs = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(&e))?;
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).map_err(|e| bad(&e))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(&e))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| bad(&e))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// The JSONPatch that sets every webhook's `caBundle` in a webhook
/// configuration (as JSON) to `ca_pem`.
pub fn ca_bundle_patch(configuration: &serde_json::Value, ca_pem: &str) -> Patch {
    let bundle = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let count = configuration
        .get("webhooks")
        .and_then(serde_json::Value::as_array)
        .map_or(0, Vec::len);
    Patch(
        (0..count)
            .map(|i| {
                PatchOperation::Replace(ReplaceOperation {
                    path: jsonptr::PointerBuf::from_tokens([
                        "webhooks".to_string(),
                        i.to_string(),
                        "clientConfig".into(),
                        "caBundle".into(),
                    ]),
                    value: serde_json::Value::String(bundle.clone()),
                })
            })
            .collect(),
    )
}

/// Serves `app` over TLS on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    app: Router,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let builder = auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = &mut shutdown => return Ok(()),
        };
        let acceptor = acceptor.clone();
        let builder = builder.clone();
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let handshake =
                tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(stream));
            let tls = match handshake.await {
                Ok(Ok(tls)) => tls,
                Ok(Err(err)) => {
                    tracing::debug!(%peer, %err, "webhook TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            if let Err(err) = builder.serve_connection(TokioIo::new(tls), service).await {
                tracing::debug!(%peer, %err, "webhook connection ended");
            }
        });
    }
}
