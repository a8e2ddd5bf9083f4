//! `loupe dashboard`: the console through a port-forward, as `istioctl
//! dashboard kiali` opens Kiali. A local listener; each connection it
//! accepts is forwarded, over the API server's `portforward` subresource,
//! to the console's port on a running console pod, looked up again for
//! each connection so that a restarted pod is followed.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use loupe_k8s::manifest::{CONSOLE_PORT, CONSOLE_SERVICE};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error(
        "no running pod of the console (label app={CONSOLE_SERVICE}) in namespace {namespace}: is Loupe installed (`loupe install`)? See `kubectl -n {namespace} get pods -l app={CONSOLE_SERVICE}`"
    )]
    NoPod { namespace: String },
    #[error("listing the console's pods in {namespace}: {source}")]
    List {
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error("port-forward to pod {namespace}/{pod} port {CONSOLE_PORT}: {source}")]
    Forward {
        namespace: String,
        pod: String,
        #[source]
        source: kube::Error,
    },
}

/// A running pod of the console in `namespace`, the newest first.
pub async fn console_pod(client: &kube::Client, namespace: &str) -> Result<String, DashboardError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let list = pods
        .list(&ListParams::default().labels(&format!("app={CONSOLE_SERVICE}")))
        .await
        .map_err(|source| DashboardError::List {
            namespace: namespace.into(),
            source,
        })?;
    let mut running: Vec<&Pod> = list
        .items
        .iter()
        .filter(|p| {
            // The label is checked here too: not every API server honours
            // a selector the same way, and this must not pick another pod.
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("app"))
                .is_some_and(|v| v == CONSOLE_SERVICE)
                && p.metadata.deletion_timestamp.is_none()
                && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
        })
        .collect();
    running.sort_by(|a, b| {
        b.metadata
            .creation_timestamp
            .cmp(&a.metadata.creation_timestamp)
    });
    running
        .first()
        .and_then(|p| p.metadata.name.clone())
        .ok_or_else(|| DashboardError::NoPod {
            namespace: namespace.into(),
        })
}

/// Serves `listener` until the task is dropped: every connection is
/// forwarded to the console. A connection that cannot be forwarded is
/// closed and its error logged; the listener goes on.
pub async fn serve(client: kube::Client, namespace: String, listener: TcpListener) {
    loop {
        let Ok((local, _)) = listener.accept().await else {
            continue;
        };
        let client = client.clone();
        let namespace = namespace.clone();
        tokio::spawn(async move {
            if let Err(err) = forward(&client, &namespace, local).await {
                tracing::warn!(%err, "dashboard connection not forwarded");
            }
        });
    }
}

async fn forward(
    client: &kube::Client,
    namespace: &str,
    mut local: TcpStream,
) -> Result<(), DashboardError> {
    let pod = console_pod(client, namespace).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let failed = |source| DashboardError::Forward {
        namespace: namespace.into(),
        pod: pod.clone(),
        source,
    };
    let mut forwarder = pods
        .portforward(&pod, &[CONSOLE_PORT])
        .await
        .map_err(failed)?;
    let Some(mut remote) = forwarder.take_stream(CONSOLE_PORT) else {
        return Ok(());
    };
    // Either side closing ends the connection.
    let _ = tokio::io::copy_bidirectional(&mut local, &mut remote).await;
    drop(remote);
    forwarder.abort();
    Ok(())
}
