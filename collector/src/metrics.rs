//! The collector's own metrics, as OpenMetrics text on `GET /metrics` of
//! the OTLP/HTTP listener: what it dropped, truncated or refused
//! (`loupe_collector_telemetry_dropped_total{signal,reason}`, the same
//! counts as `telemetry_drops`, since the start) and what its span queue
//! holds (`loupe_collector_span_queue_spans`, `…_bytes`).

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::Arc;

use crate::writer::drops::DropRecorder;
use crate::writer::queue::SpanQueue;

#[derive(Clone)]
struct Metrics {
    registry: Arc<Registry>,
    queue: SpanQueue,
    queue_spans: Gauge,
    queue_bytes: Gauge,
}

/// `GET /metrics`.
pub fn router(drops: &DropRecorder, queue: SpanQueue) -> Router {
    let mut registry = Registry::with_prefix("loupe_collector");
    registry.register(
        "telemetry_dropped",
        "Spans, rollup rows, attributes and values dropped, cut or refused, by signal and reason",
        drops.totals(),
    );
    let queue_spans = Gauge::default();
    let queue_bytes = Gauge::default();
    registry.register(
        "span_queue_spans",
        "Spans queued or being written",
        queue_spans.clone(),
    );
    registry.register(
        "span_queue_bytes",
        "Bytes of spans queued or being written",
        queue_bytes.clone(),
    );
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(Metrics {
            registry: Arc::new(registry),
            queue,
            queue_spans,
            queue_bytes,
        })
}

async fn metrics(State(m): State<Metrics>) -> impl IntoResponse {
    let queued = m.queue.queued();
    m.queue_spans.set(queued.spans as i64);
    m.queue_bytes.set(queued.bytes as i64);
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &m.registry);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
}
