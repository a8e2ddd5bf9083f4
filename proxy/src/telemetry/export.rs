//! The OTLP/gRPC span exporter: a background task fed by a bounded queue.
//! The request path only `try_send`s; a full queue drops the span and counts
//! it (`loupe_proxy_spans_dropped_total`), so a slow or absent collector
//! never slows traffic. Batches go out every second or every 512 spans.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use tokio::sync::mpsc;
use tonic::transport::{Channel, Endpoint};

use super::metrics::Metrics;
use super::span::FinishedSpan;

const QUEUE: usize = 4096;
const BATCH: usize = 512;
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Where the request path sends finished spans. Cheap to clone.
#[derive(Clone)]
pub struct SpanSink {
    tx: Option<mpsc::Sender<FinishedSpan>>,
    metrics: Arc<Metrics>,
}

impl SpanSink {
    /// A sink that records nothing (no `--otlp` given).
    pub fn disabled(metrics: Arc<Metrics>) -> SpanSink {
        SpanSink { tx: None, metrics }
    }

    /// Whether spans are worth building at all.
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    pub fn submit(&self, span: FinishedSpan) {
        if let Some(tx) = &self.tx
            && tx.try_send(span).is_err()
        {
            self.metrics.spans_dropped.fetch_add(1, Relaxed);
        }
    }
}

/// Starts the exporter task for the collector at `url`
/// (`http://127.0.0.1:4317`). `resource` are the resource attributes
/// (`service.name`, …); `common` go on every span. The task ends, after a
/// last export, when every clone of the sink is gone.
pub fn spawn(
    url: &str,
    resource: Vec<KeyValue>,
    common: Vec<KeyValue>,
    metrics: Arc<Metrics>,
) -> Result<(SpanSink, tokio::task::JoinHandle<()>), tonic::transport::Error> {
    let channel = Endpoint::from_shared(url.to_string())?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .connect_lazy();
    let (tx, rx) = mpsc::channel(QUEUE);
    let exporter = Exporter {
        client: TraceServiceClient::new(channel),
        resource: Resource {
            attributes: resource,
            ..Default::default()
        },
        common,
        metrics: metrics.clone(),
        url: url.to_string(),
    };
    let task = tokio::spawn(exporter.run(rx));
    Ok((
        SpanSink {
            tx: Some(tx),
            metrics,
        },
        task,
    ))
}

struct Exporter {
    client: TraceServiceClient<Channel>,
    resource: Resource,
    common: Vec<KeyValue>,
    metrics: Arc<Metrics>,
    url: String,
}

impl Exporter {
    async fn run(mut self, mut rx: mpsc::Receiver<FinishedSpan>) {
        let mut batch = Vec::with_capacity(BATCH);
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                span = rx.recv() => match span {
                    Some(span) => {
                        batch.push(span);
                        if batch.len() >= BATCH {
                            self.export(&mut batch).await;
                        }
                    }
                    None => {
                        self.export(&mut batch).await;
                        return;
                    }
                },
                _ = tick.tick() => self.export(&mut batch).await,
            }
        }
    }

    async fn export(&mut self, batch: &mut Vec<FinishedSpan>) {
        if batch.is_empty() {
            return;
        }
        let n = batch.len() as u64;
        let spans = batch.drain(..).map(|s| s.to_otlp(&self.common)).collect();
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(self.resource.clone()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "loupe-proxy".to_string(),
                        version: env!("CARGO_PKG_VERSION").to_string(),
                        ..Default::default()
                    }),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        match self.client.export(request).await {
            Ok(_) => {
                self.metrics.spans_exported.fetch_add(n, Relaxed);
            }
            Err(status) => {
                let failures = self.metrics.span_export_failures.fetch_add(1, Relaxed);
                // Log the first failure and then every 60th, not every second.
                if failures.is_multiple_of(60) {
                    tracing::warn!(collector = %self.url, spans = n, error = %status.message(), "span export failed; spans dropped");
                }
            }
        }
    }
}
