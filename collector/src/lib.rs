//! `loupe-collector` receives the mesh's telemetry and stores it in
//! Postgres: OTLP traces over gRPC (4317) and HTTP with protobuf or JSON
//! (4318) from any OpenTelemetry SDK ([`otlp`]), Istio metrics scraped from
//! every connected proxy and turned into per-interval edge rollups
//! ([`scrape`]), both written in batches with `COPY` ([`writer`]), and the
//! daily partitions and retention of those tables ([`partitions`]). Its own
//! counters are on `GET /metrics` of the OTLP/HTTP port ([`metrics`]).
//! It owns no schema (that is `loupe-db`'s) and no queries of the console.
//!
//! # What the rows mean (for readers of the tables)
//!
//! - `spans`: one row per OTLP span. Ids are lowercase hex; `parent_span_id`
//!   is NULL for a root; `service` is the resource's `service.name`
//!   ("unknown" if absent; cut at 256 bytes); `operation` the span name; `kind` and
//!   `status_code` are OTLP's numbers (`status_code` 2 = error);
//!   `duration_us` = end − start. `attributes` is one flat JSON object of
//!   the span's own attributes plus `otel.status_description` and
//!   `otel.events` when present; `resource_id` and `scope_id` name its
//!   resource's and scope's rows of `span_resources` (see [`otlp::span_row`]).
//! - `span_resources`: one row per distinct resource (its attributes as
//!   `resource.<key>`) and per distinct instrumentation scope
//!   (`otel.scope.name`, `otel.scope.version`), stored once however many
//!   spans share it. The view `spans_with_resource` is `spans` with both
//!   merged into `attributes` (the one flat object of Loupe before 0006;
//!   older rows have both ids NULL and everything inline).
//! - `trace_summaries`: one row per trace, updated with every batch:
//!   root = the span without a parent, start = earliest start, end = latest
//!   end, `span_count`/`error_count` = spans/error spans stored so far,
//!   `services` = sorted distinct services.
//! - `edge_rollups`: one row per (scrape round `ts`, proxy, edge label set
//!   incl. `reporter` and `response_code`) with traffic in the interval of
//!   `interval_s` seconds ending at `ts`: `requests` (delta of
//!   `istio_requests_total`), `duration_sum_ms` (delta of the histogram's
//!   `_sum`), and per-bucket (non-cumulative) request counts with upper
//!   bounds `bucket_bounds_ms` (`Infinity` last). Rows with no traffic are
//!   not written. Both ends of a call report it (`reporter` = `source` or
//!   `destination`, as in Istio): pick one reporter per query. The request
//!   rate of an edge over a window W is `sum(requests) / W` over the rows
//!   with `ts` in the window; see [`scrape::delta`] for resets and baselines.
//! - `telemetry_drops`: spans (or rollup rows) refused or lost, per
//!   `reason`: `queue_full_refused_for_retry` / `shutting_down_refused_for_retry`
//!   (refused with the protocol's retry signal — the sender may resend
//!   them), `invalid_span` (no valid ids or start time; reported in OTLP's
//!   `partial_success`), `too_many_in_request` (the request was refused
//!   whole), `refused_by_database` (the one row Postgres refused once its
//!   batch was split down to it), `write_failed` (Postgres stayed unreachable
//!   while shutting down). Not spans but counted alike: `span_attributes` /
//!   `over_count_limit` (attributes and events past 128 dropped) and
//!   `attribute_values` / `truncated_over_length_limit` (strings cut at 4 KiB).
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod error;
pub mod listen;
pub mod metrics;
pub mod otlp;
pub mod partitions;
pub mod scrape;
pub mod writer;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use error::CollectorError;
pub use otlp::span_row::SpanRow;
pub use scrape::Scraper;
pub use scrape::delta::{EDGE_LABELS, EdgeRollup};

use otlp::Ingest;
use writer::drops::DropRecorder;

/// Where the collector listens and what it keeps.
#[derive(Debug, Clone)]
pub struct Options {
    pub database_url: String,
    pub otlp_grpc: SocketAddr,
    pub otlp_http: SocketAddr,
    pub scrape_interval: Duration,
    /// Days of spans and rollups kept besides today.
    pub retention_days: u32,
}

impl Options {
    /// The defaults: OTLP's standard ports on loopback, a 5 s scrape, 7 days kept.
    pub fn new(database_url: impl Into<String>) -> Self {
        Options {
            database_url: database_url.into(),
            otlp_grpc: SocketAddr::from(([127, 0, 0, 1], 4317)),
            otlp_http: SocketAddr::from(([127, 0, 0, 1], 4318)),
            scrape_interval: Duration::from_secs(5),
            retention_days: 7,
        }
    }
}

/// Knobs for batching and memory; the defaults suit a demo-sized mesh.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// Spans held in memory (queued or being written) before senders are told to retry.
    pub queue_capacity: usize,
    /// Bytes of spans held in memory (queued or being written) before
    /// senders are told to retry: the bound that holds whatever the spans hold.
    pub queue_capacity_bytes: usize,
    /// Attributes, events and string lengths kept per span; spans per request.
    pub span_limits: otlp::span_row::SpanLimits,
    /// Spans per COPY.
    pub batch_size: usize,
    /// Concurrent writer tasks (each with its own connection).
    pub writers: usize,
    /// How long a batch waits to fill up (senders wait for their batch's
    /// commit, so this is also the least time an export takes).
    pub batch_timeout: Duration,
    /// How long an export waits for its spans to be committed before the
    /// sender is told to retry.
    pub ack_timeout: Duration,
    /// The largest OTLP request accepted (gRPC message or HTTP body), after
    /// decompression: a gzip body that inflates past it is refused.
    pub max_request_bytes: usize,
    /// Connections, concurrent requests and header deadlines of each OTLP listener.
    pub listener_limits: listen::ListenerLimits,
    /// How often drop counts are written to `telemetry_drops`.
    pub drop_flush_interval: Duration,
    /// How often partitions are created ahead and retention is applied.
    pub maintenance_interval: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            queue_capacity: 100_000,
            queue_capacity_bytes: 128 * 1024 * 1024,
            span_limits: otlp::span_row::SpanLimits::default(),
            batch_size: 1_000,
            writers: 2,
            batch_timeout: Duration::from_millis(50),
            ack_timeout: Duration::from_secs(10),
            max_request_bytes: 8 * 1024 * 1024,
            listener_limits: listen::ListenerLimits::default(),
            drop_flush_interval: Duration::from_secs(1),
            maintenance_interval: Duration::from_secs(3600),
        }
    }
}

/// A running collector.
pub struct Collector {
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    stop_receivers: watch::Sender<bool>,
    stop_writer: watch::Sender<bool>,
    receivers: Vec<JoinHandle<Result<(), CollectorError>>>,
    background: Vec<JoinHandle<()>>,
    writers: Vec<JoinHandle<()>>,
    drops: DropRecorder,
    pool: sqlx::PgPool,
}

impl Collector {
    /// Connects (and migrates), creates today's and tomorrow's partitions,
    /// binds both OTLP listeners and starts the writer, scraper and maintenance.
    pub async fn start(options: Options, tuning: Tuning) -> Result<Self, CollectorError> {
        // Writers, scraper, drop flusher, maintenance.
        let connections = tuning.writers.max(1) as u32 + 3;
        let pool = loupe_db::connect(&options.database_url, connections).await?;
        let today = chrono::Utc::now().date_naive();
        partitions::ensure_ahead(&pool, today).await?;
        if let Err(error) = partitions::apply_retention(&pool, today, options.retention_days).await
        {
            tracing::warn!(%error, "retention failed; will retry at the next maintenance");
        }

        let grpc_listener = bind("gRPC", options.otlp_grpc).await?;
        let http_listener = bind("HTTP", options.otlp_http).await?;
        let grpc_addr = local_addr("gRPC", &grpc_listener, options.otlp_grpc)?;
        let http_addr = local_addr("HTTP", &http_listener, options.otlp_http)?;

        let drops = DropRecorder::default();
        let (queue, queue_rx) = writer::queue::span_queue(writer::queue::Occupancy {
            spans: tuning.queue_capacity,
            bytes: tuning.queue_capacity_bytes,
        });
        let ingest = Ingest {
            queue,
            drops: drops.clone(),
            limits: tuning.span_limits,
            ack_timeout: tuning.ack_timeout,
        };
        let (stop_receivers, stop_rx) = watch::channel(false);
        let (stop_writer, writer_stop_rx) = watch::channel(false);

        let queue_rx = std::sync::Arc::new(queue_rx);
        let batch = writer::spans::BatchConfig {
            batch_size: tuning.batch_size,
            batch_timeout: tuning.batch_timeout,
        };
        let writers = (0..tuning.writers.max(1))
            .map(|_| {
                tokio::spawn(writer::spans::run(
                    pool.clone(),
                    queue_rx.clone(),
                    drops.clone(),
                    batch,
                    writer_stop_rx.clone(),
                ))
            })
            .collect();

        let limits = tuning.listener_limits;
        let grpc = {
            let mut stop = stop_rx.clone();
            let service = otlp::grpc::OtlpGrpc::server(ingest.clone(), tuning.max_request_bytes);
            tokio::spawn(async move {
                tonic::transport::Server::builder()
                    .layer(tower::limit::ConcurrencyLimitLayer::new(
                        limits.max_concurrent_requests,
                    ))
                    .max_concurrent_streams(limits.max_concurrent_streams)
                    .http2_max_header_list_size(limits.max_header_list_bytes)
                    .http2_keepalive_interval(Some(Duration::from_secs(30)))
                    .http2_keepalive_timeout(Some(Duration::from_secs(10)))
                    .max_connection_age(limits.max_connection_age)
                    .max_connection_age_grace(Duration::from_secs(30))
                    .timeout(Duration::from_secs(30))
                    .add_service(service)
                    .serve_with_incoming_shutdown(
                        listen::incoming(grpc_listener, limits.max_connections),
                        async move {
                            let _ = stop.wait_for(|s| *s).await;
                        },
                    )
                    .await
                    .map_err(|e| CollectorError::Serve {
                        protocol: "gRPC",
                        message: e.to_string(),
                    })
            })
        };
        let http = {
            let stop = stop_rx.clone();
            let app = otlp::http::router(
                ingest.clone(),
                tuning.max_request_bytes,
                limits.body_read_timeout,
            )
            .merge(metrics::router(&drops, ingest.queue.clone()));
            tokio::spawn(async move {
                listen::serve_http(http_listener, app, limits, stop).await;
                Ok(())
            })
        };
        drop(ingest);

        let mut scraper = Scraper::new(pool.clone(), options.scrape_interval, drops.clone())?;
        // The first round runs before start() returns: it sets the baseline
        // of every proxy already there, so what follows is well defined.
        match scraper.scrape_round().await {
            Ok(report) => tracing::info!(
                targets = report.targets,
                failed = report.failed,
                "first scrape round done"
            ),
            Err(error) => tracing::warn!(%error, "first scrape round failed"),
        }
        let background = vec![
            tokio::spawn(scraper.run(stop_rx.clone())),
            tokio::spawn(flush_drops(
                pool.clone(),
                drops.clone(),
                tuning.drop_flush_interval,
                stop_rx.clone(),
            )),
            tokio::spawn(maintain(
                pool.clone(),
                options.retention_days,
                tuning.maintenance_interval,
                stop_rx,
            )),
        ];
        tracing::info!(otlp_grpc = %grpc_addr, otlp_http = %http_addr,
            scrape_interval_ms = options.scrape_interval.as_millis() as u64, "collector started");
        Ok(Collector {
            grpc_addr,
            http_addr,
            stop_receivers,
            stop_writer,
            receivers: vec![grpc, http],
            background,
            writers,
            drops,
            pool,
        })
    }

    /// The bound OTLP/gRPC address (useful when started on port 0).
    pub fn otlp_grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    pub fn otlp_http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Resolves when an OTLP receiver stops on its own (it should not): the
    /// error it stopped with.
    pub async fn receiver_failure(&mut self) -> CollectorError {
        if self.receivers.is_empty() {
            return std::future::pending().await;
        }
        let (result, index, _) = futures::future::select_all(self.receivers.iter_mut()).await;
        self.receivers.remove(index);
        match result {
            Ok(Err(error)) => error,
            Ok(Ok(())) => CollectorError::Serve {
                protocol: "gRPC/HTTP",
                message: "a receiver stopped unexpectedly".into(),
            },
            Err(join) => CollectorError::Serve {
                protocol: "gRPC/HTTP",
                message: join.to_string(),
            },
        }
    }

    /// Stops accepting, writes every queued span, records the last drop counts.
    pub async fn shutdown(self) -> Result<(), CollectorError> {
        let _ = self.stop_receivers.send(true);
        // At once, not after the receivers: in-flight exports wait for the
        // commit of their spans, which the draining writer gives them; the
        // closed queue refuses (with the retry signal) what comes later.
        let _ = self.stop_writer.send(true);
        let mut first_error = None;
        for receiver in self.receivers {
            // In-flight exports get a bounded time to finish.
            match tokio::time::timeout(Duration::from_secs(10), receiver).await {
                Ok(Ok(Err(e))) => {
                    first_error.get_or_insert(e);
                }
                Ok(_) => {}
                Err(_) => tracing::warn!("an OTLP receiver did not stop within 10s"),
            }
        }
        for writer in self.writers {
            let _ = writer.await;
        }
        tracing::info!("span queue drained");
        for task in self.background {
            let _ = task.await;
        }
        if let Err(error) = self.drops.flush(&self.pool).await {
            tracing::error!(%error, "could not record the last telemetry drop counts");
        }
        tracing::info!("collector stopped");
        first_error.map_or(Ok(()), Err)
    }
}

/// Runs the collector until ctrl-c or SIGTERM, then shuts down gracefully
/// (queued spans are written before it returns).
pub async fn serve(options: Options) -> Result<(), CollectorError> {
    let mut collector = Collector::start(options, Tuning::default()).await?;
    let outcome = tokio::select! {
        signal = termination() => signal,
        failure = collector.receiver_failure() => Err(failure),
    };
    if let Err(error) = &outcome {
        tracing::error!(%error, "stopping the collector");
    }
    tracing::info!("shutting down: flushing queued telemetry");
    let result = collector.shutdown().await;
    outcome.and(result)
}

async fn termination() -> Result<(), CollectorError> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|source| CollectorError::Signal {
            signal: "SIGTERM",
            source,
        })?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.map_err(|source| CollectorError::Signal { signal: "SIGINT", source }),
        _ = term.recv() => Ok(()),
    }
}

async fn bind(protocol: &'static str, addr: SocketAddr) -> Result<TcpListener, CollectorError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| CollectorError::Bind {
            protocol,
            addr,
            source,
        })
}

fn local_addr(
    protocol: &'static str,
    listener: &TcpListener,
    addr: SocketAddr,
) -> Result<SocketAddr, CollectorError> {
    listener
        .local_addr()
        .map_err(|source| CollectorError::Bind {
            protocol,
            addr,
            source,
        })
}

async fn flush_drops(
    pool: sqlx::PgPool,
    drops: DropRecorder,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        if let Err(error) = drops.flush(&pool).await {
            tracing::warn!(%error, "recording telemetry drops failed; will retry");
        }
    }
}

async fn maintain(
    pool: sqlx::PgPool,
    retention_days: u32,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await; // the first tick is immediate; start() already did this work
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        let today = chrono::Utc::now().date_naive();
        if let Err(error) = partitions::ensure_ahead(&pool, today).await {
            tracing::warn!(%error, "creating partitions ahead failed; rows go to the default partition meanwhile");
        }
        if let Err(error) = partitions::apply_retention(&pool, today, retention_days).await {
            tracing::warn!(%error, "retention failed");
        }
    }
}
