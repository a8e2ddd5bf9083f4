//! The admission webhooks in cluster mode: `loupe-k8s`'s injection and
//! validation handlers served over HTTPS with a serving certificate from
//! the mesh CA (naming the control plane's Service, renewed at half-life),
//! and the mesh's trust bundle written into the `caBundle` of the
//! MutatingWebhookConfiguration and ValidatingWebhookConfiguration the
//! install created — by the leader, whenever it becomes leader and whenever
//! the bundle changes. Every replica shares the CA ([`crate::ca_secret`]),
//! so the API server trusts whichever replica it reaches.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use kube::api::{Api, Patch, PatchParams};
use loupe_control::ca::CertificateAuthority;
use loupe_k8s::inject::InjectSettings;
use loupe_k8s::manifest::{Profile, Settings, mutating_webhook, validating_webhook};
use loupe_k8s::webhook::{OnAdmitted, WebhookState, ca_bundle_patch, router, service_dns_names};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::ClusterError;

/// The running webhook server and its caBundle writer; dropping it stops both.
pub struct Webhooks {
    /// Where the webhooks listen.
    pub addr: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Webhooks {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Serves the webhooks on `addr` and keeps their `caBundle` current;
/// `on_admitted` is told who wrote each admitted Istio object.
pub async fn start(
    client: kube::Client,
    ca: Arc<CertificateAuthority>,
    addr: SocketAddr,
    leader: watch::Receiver<bool>,
    on_admitted: Option<OnAdmitted>,
) -> Result<Webhooks, ClusterError> {
    let mut tls =
        (*loupe_control::tls::server_config(ca.clone(), Vec::new(), service_dns_names())?).clone();
    // The API server's client speaks HTTP/2 or HTTP/1.1.
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let tls = Arc::new(tls);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ClusterError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| ClusterError::Bind { addr, source })?;
    let state = WebhookState {
        inject: Arc::new(InjectSettings::from_install(&Settings::for_profile(
            Profile::Default,
        ))),
        on_admitted,
    };
    let server = tokio::spawn(async move {
        if let Err(error) =
            loupe_k8s::webhook::serve(listener, tls, router(state), std::future::pending()).await
        {
            tracing::error!(%error, "the webhook server stopped");
        }
    });
    let bundle = tokio::spawn(keep_ca_bundle(client, ca, leader));
    Ok(Webhooks {
        addr,
        tasks: vec![server, bundle],
    })
}

/// How often the trust bundle is compared with what was written.
const BUNDLE_CHECK: Duration = Duration::from_secs(5);

/// Writes the trust bundle into both configurations while leading.
async fn keep_ca_bundle(
    client: kube::Client,
    ca: Arc<CertificateAuthority>,
    mut leader: watch::Receiver<bool>,
) {
    let mut written: Option<String> = None;
    loop {
        tokio::select! {
            changed = leader.changed() => {
                if changed.is_err() {
                    return;
                }
                written = None;
            }
            _ = tokio::time::sleep(BUNDLE_CHECK) => {}
        }
        let bundle = ca.trust_bundle().to_pem();
        if !*leader.borrow() || written.as_ref() == Some(&bundle) {
            continue;
        }
        match write_ca_bundle(&client, &bundle).await {
            Ok(()) => written = Some(bundle),
            Err(error) => tracing::warn!(%error, "cannot write the webhooks' caBundle; retrying"),
        }
    }
}

async fn write_ca_bundle(client: &kube::Client, ca_pem: &str) -> Result<(), kube::Error> {
    let mutating: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let name = mutating_webhook().metadata.name.unwrap_or_default();
    if let Some(config) = mutating.get_opt(&name).await? {
        patch_ca_bundle(&mutating, &name, &config, ca_pem).await?;
    }
    let validating: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let name = validating_webhook().metadata.name.unwrap_or_default();
    if let Some(config) = validating.get_opt(&name).await? {
        patch_ca_bundle(&validating, &name, &config, ca_pem).await?;
    }
    Ok(())
}

/// Sets every webhook's `caBundle` of one configuration (a JSONPatch, see
/// [`loupe_k8s::webhook::ca_bundle_patch`]).
async fn patch_ca_bundle<K>(
    api: &Api<K>,
    name: &str,
    config: &K,
    ca_pem: &str,
) -> Result<(), kube::Error>
where
    K: Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let current = serde_json::to_value(config).map_err(kube::Error::SerdeError)?;
    let patch = ca_bundle_patch(&current, ca_pem);
    api.patch(name, &PatchParams::default(), &Patch::<()>::Json(patch))
        .await?;
    tracing::info!(configuration = name, "webhook caBundle written");
    Ok(())
}
