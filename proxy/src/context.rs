//! What every listener of one proxy shares: who the proxy is, the current
//! config, the telemetry sinks and the upstream client.

use std::sync::Arc;

use loupe_model::request::Source;

use crate::config::ConfigStore;
use crate::identity::Workload;
use crate::telemetry::export::SpanSink;
use crate::telemetry::metrics::{EdgeSpec, Metrics, Reporter};
use crate::tls::CredentialStore;
use crate::transport::{self, UpstreamClient};

pub struct ProxyContext {
    pub this: Workload,
    pub store: Arc<ConfigStore>,
    pub metrics: Arc<Metrics>,
    pub spans: SpanSink,
    /// This workload's certificate (mesh mTLS), when it has an identity.
    pub credentials: Arc<CredentialStore>,
    pub client: UpstreamClient,
    /// HTTP/2 on every hop, for gRPC (see [`ProxyContext::client_for`]).
    pub grpc_client: UpstreamClient,
    /// HTTP/1.1 on every hop, for protocol upgrades (WebSocket).
    pub upgrade_client: UpstreamClient,
    /// The `source` of every request this proxy routes, built once.
    pub source: Source,
}

impl ProxyContext {
    pub fn new(
        this: Workload,
        store: Arc<ConfigStore>,
        metrics: Arc<Metrics>,
        spans: SpanSink,
        credentials: Arc<CredentialStore>,
    ) -> ProxyContext {
        let source = Source {
            principal: Some(this.principal()),
            namespace: Some(this.namespace.to_string()),
            ip: None,
            labels: this.labels.clone(),
        };
        let client = transport::client(credentials.clone(), store.clone());
        let grpc_client = transport::h2_client(credentials.clone(), store.clone());
        let upgrade_client = transport::http1_client(credentials.clone(), store.clone());
        ProxyContext {
            this,
            store,
            metrics,
            client,
            grpc_client,
            upgrade_client,
            spans,
            credentials,
            source,
        }
    }

    /// The client for a request with `headers`: gRPC goes over HTTP/2
    /// (h2c to plaintext upstreams), upgrades (WebSocket) over HTTP/1.1,
    /// everything else as [`transport::client`].
    pub fn client_for(&self, headers: &http::HeaderMap) -> &UpstreamClient {
        if crate::http::is_grpc(headers) {
            &self.grpc_client
        } else if crate::http::upgrade_of(headers).is_some() {
            &self.upgrade_client
        } else {
            &self.client
        }
    }

    /// The outbound edge to a host the mesh does not know (or before any
    /// config): `destination_service="unknown"`, as Istio labels requests
    /// that matched no route — never the Host itself, which is whatever the
    /// client sent (one series per distinct Host would grow without bound).
    pub fn unknown_service_edge(&self) -> Arc<crate::telemetry::metrics::Edge> {
        self.metrics.edge(&EdgeSpec {
            reporter: Reporter::Source,
            source: &self.this,
            destination: &Workload::unknown(),
            destination_service: crate::identity::UNKNOWN,
            security_policy: "unknown",
        })
    }
}
