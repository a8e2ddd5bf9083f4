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
        ProxyContext {
            this,
            store,
            metrics,
            client,
            spans,
            credentials,
            source,
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
