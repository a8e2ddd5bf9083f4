//! Istio's standard request metrics (`istio_requests_total`,
//! `istio_request_duration_milliseconds`, `istio_request_bytes`,
//! `istio_response_bytes`) in Prometheus text format.
//!
//! Cost model: an [`Edge`] is one (reporter, source, destination, service)
//! label set, rendered to text once when it is first seen (for outbound
//! endpoints: when the config is compiled) and interned so counters survive
//! config swaps. Per request the proxy takes a read lock on the edge's short
//! list of (response code, flags) series and bumps atomics; nothing global
//! is locked and nothing is allocated once a series exists.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::identity::{UNKNOWN, Workload, service_name_namespace};

/// Istio's default buckets for `istio_request_duration_milliseconds`.
pub const DURATION_BUCKETS_MS: [f64; 18] = [
    1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

/// Istio's default buckets for the byte-size histograms (1 B to 1 GB, ×10).
pub const SIZE_BUCKETS: [f64; 10] = [
    1.0,
    10.0,
    100.0,
    1000.0,
    10000.0,
    100000.0,
    1000000.0,
    10000000.0,
    100000000.0,
    1000000000.0,
];

/// Which side of the connection reports, as Istio's `reporter` label says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reporter {
    /// The client side: outbound sidecars and gateways.
    Source,
    /// The server side: inbound sidecars.
    Destination,
}

impl Reporter {
    pub fn as_str(self) -> &'static str {
        match self {
            Reporter::Source => "source",
            Reporter::Destination => "destination",
        }
    }
}

/// Envoy's response flags, as Istio's `response_flags` label carries them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResponseFlags {
    None,
    /// No healthy upstream (no endpoint for the cluster).
    NoHealthyUpstream,
    /// No route configured for the request.
    NoRoute,
    /// No cluster (the route names a subset no DestinationRule defines).
    NoCluster,
    /// Upstream connection failure.
    UpstreamConnectionFailure,
    /// Upstream request timeout.
    UpstreamRequestTimeout,
    /// Retry limit exceeded.
    UpstreamRetryLimitExceeded,
    /// Fault injection aborted the request.
    FaultInjected,
    /// Fault injection delayed the request.
    DelayInjected,
    /// The downstream closed before the response completed.
    DownstreamConnectionTermination,
    /// The upstream reset the stream.
    UpstreamReset,
}

impl ResponseFlags {
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseFlags::None => "-",
            ResponseFlags::NoHealthyUpstream => "UH",
            ResponseFlags::NoRoute => "NR",
            ResponseFlags::NoCluster => "NC",
            ResponseFlags::UpstreamConnectionFailure => "UF",
            ResponseFlags::UpstreamRequestTimeout => "UT",
            ResponseFlags::UpstreamRetryLimitExceeded => "URX",
            ResponseFlags::FaultInjected => "FI",
            ResponseFlags::DelayInjected => "DI",
            ResponseFlags::DownstreamConnectionTermination => "DC",
            ResponseFlags::UpstreamReset => "UR",
        }
    }
}

/// What an [`Edge`] is built from: both ends and the service between them.
pub struct EdgeSpec<'a> {
    pub reporter: Reporter,
    pub source: &'a Workload,
    pub destination: &'a Workload,
    /// FQDN, or `unknown`.
    pub destination_service: &'a str,
    /// `mutual_tls` or `none` as the destination saw the connection;
    /// `unknown` when the source reports (as Istio does).
    pub security_policy: &'a str,
}

impl EdgeSpec<'_> {
    fn render(&self) -> String {
        self.render_for("http")
    }

    /// The labels with `request_protocol` set (`http`, `tcp`).
    pub(crate) fn render_for(&self, request_protocol: &str) -> String {
        let (svc_name, svc_ns) = if self.destination_service == UNKNOWN {
            (UNKNOWN, UNKNOWN)
        } else {
            service_name_namespace(self.destination_service)
        };
        let pairs: [(&str, &str); 22] = [
            ("reporter", self.reporter.as_str()),
            // Istio's cluster id when none is configured.
            ("source_cluster", "Kubernetes"),
            ("destination_cluster", "Kubernetes"),
            ("source_workload", &self.source.name),
            ("source_workload_namespace", &self.source.namespace),
            ("source_principal", &principal_label(self.source)),
            ("source_app", self.source.app()),
            ("source_version", self.source.version()),
            ("source_canonical_service", self.source.canonical_service()),
            (
                "source_canonical_revision",
                self.source.canonical_revision(),
            ),
            ("destination_workload", &self.destination.name),
            (
                "destination_workload_namespace",
                &self.destination.namespace,
            ),
            ("destination_principal", &principal_label(self.destination)),
            ("destination_app", self.destination.app()),
            ("destination_version", self.destination.version()),
            ("destination_service", self.destination_service),
            ("destination_service_name", svc_name),
            ("destination_service_namespace", svc_ns),
            (
                "destination_canonical_service",
                self.destination.canonical_service(),
            ),
            (
                "destination_canonical_revision",
                self.destination.canonical_revision(),
            ),
            ("request_protocol", request_protocol),
            ("connection_security_policy", self.security_policy),
        ];
        let mut out = String::with_capacity(1024);
        for (i, (k, v)) in pairs.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            escape_label_value(&mut out, v);
            out.push('"');
        }
        out
    }
}

fn principal_label(w: &Workload) -> String {
    if w.service_account.is_empty() {
        UNKNOWN.to_string()
    } else {
        format!("spiffe://{}", w.principal())
    }
}

fn escape_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A fixed-bucket Prometheus histogram made of atomics.
struct Histogram {
    bounds: &'static [f64],
    buckets: Box<[AtomicU64]>,
    /// Sum in thousandths of the unit, so it stays an integer atomic.
    sum_milli: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_milli: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    fn observe(&self, value: f64) {
        // Buckets are stored non-cumulative; rendering sums them up.
        if let Some(i) = self.bounds.iter().position(|b| value <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.sum_milli.fetch_add((value * 1000.0) as u64, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (bound, bucket) in self.bounds.iter().zip(self.buckets.iter()) {
            cumulative += bucket.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let sum = self.sum_milli.load(Relaxed) as f64 / 1000.0;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// Picks one of a series' histograms when rendering.
type HistogramOf = fn(&Series) -> &Histogram;

/// The counters of one edge for one (response code, flags).
struct Series {
    code: u16,
    grpc: Option<u16>,
    flags: ResponseFlags,
    requests: AtomicU64,
    duration: Histogram,
    request_bytes: Histogram,
    response_bytes: Histogram,
}

/// One label set without the per-response labels, rendered once.
pub struct Edge {
    labels: String,
    series: RwLock<Vec<Arc<Series>>>,
}

/// One finished request, as the metrics see it.
#[derive(Clone, Copy, Debug)]
pub struct Observation {
    pub code: u16,
    pub flags: ResponseFlags,
    /// Only gRPC responses carry one; Istio leaves the label empty for HTTP.
    pub grpc_status: Option<u16>,
    pub duration: Duration,
    pub request_bytes: u64,
    pub response_bytes: u64,
}

impl Edge {
    pub fn record(&self, o: &Observation) {
        let series = self.series_for(o.code, o.flags, o.grpc_status);
        series.requests.fetch_add(1, Relaxed);
        series.duration.observe(o.duration.as_secs_f64() * 1000.0);
        series.request_bytes.observe(o.request_bytes as f64);
        series.response_bytes.observe(o.response_bytes as f64);
    }

    fn series_for(&self, code: u16, flags: ResponseFlags, grpc: Option<u16>) -> Arc<Series> {
        let same = |s: &&Arc<Series>| s.code == code && s.flags == flags && s.grpc == grpc;
        {
            let list = self.series.read().unwrap_or_else(|e| e.into_inner());
            if let Some(s) = list.iter().find(same) {
                return s.clone();
            }
        }
        let mut list = self.series.write().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = list.iter().find(same) {
            return s.clone();
        }
        let s = Arc::new(Series {
            code,
            flags,
            grpc,
            requests: AtomicU64::new(0),
            duration: Histogram::new(&DURATION_BUCKETS_MS),
            request_bytes: Histogram::new(&SIZE_BUCKETS),
            response_bytes: Histogram::new(&SIZE_BUCKETS),
        });
        list.push(s.clone());
        s
    }
}

/// Every edge this proxy has seen, plus the proxy's own counters.
/// The most edges (distinct label sets of `istio_requests_total` before the
/// response code) a proxy keeps: a proxy talks to a few hundred services at
/// most, while a client sending arbitrary Host or peer headers could
/// otherwise grow the metrics (and every scrape) without bound. Past it,
/// new edges are counted into one overflow edge whose labels are all
/// `unknown` (`loupe_proxy_metric_edges_overflow_total` says how often).
pub const MAX_EDGES: usize = 2_000;

#[derive(Default)]
pub struct Metrics {
    /// Interned by rendered labels; locked only when an edge is created and
    /// when Prometheus scrapes.
    edges: Mutex<HashMap<String, Arc<Edge>>>,
    /// Inbound edges by the caller's peer-metadata header, so the request
    /// path looks them up without rendering labels.
    inbound: RwLock<HashMap<Box<str>, Arc<Edge>>>,
    pub spans_dropped: AtomicU64,
    pub spans_exported: AtomicU64,
    pub span_export_failures: AtomicU64,
    pub config_version: AtomicU64,
    pub config_acks: AtomicU64,
    pub config_nacks: AtomicU64,
    /// Security resources of the current config that did not compile and
    /// fail closed (see `config::fail_closed`).
    pub security_failed_closed: AtomicU64,
    /// Plaintext connections closed because PeerAuthentication is STRICT.
    pub plaintext_refused: AtomicU64,
    /// Inbound TLS handshakes that failed (no or untrusted client
    /// certificate, no SPIFFE ID, timeout).
    pub tls_handshake_failures: AtomicU64,
    /// Connections closed on arrival because a listener was at its cap.
    pub connections_over_limit: AtomicU64,
    /// Requests counted into the overflow edge (see [`MAX_EDGES`]).
    pub edges_overflow: AtomicU64,
    /// Mirror copies not sent because too many were outstanding.
    pub mirrors_skipped: AtomicU64,
    /// Mirror copies outstanding now.
    pub mirrors_in_flight: AtomicU64,
    /// Istio's TCP metrics, per edge.
    pub tcp: super::tcp::TcpMetrics,
    /// Captured connections to no service, passed through or refused.
    pub passthrough: AtomicU64,
    pub blackholed: AtomicU64,
}

impl Metrics {
    /// The interned edge for `spec` (created on first use).
    pub fn edge(&self, spec: &EdgeSpec<'_>) -> Arc<Edge> {
        let mut labels = spec.render();
        let mut edges = self.edges.lock().unwrap_or_else(|e| e.into_inner());
        if edges.len() >= MAX_EDGES && !edges.contains_key(&labels) {
            self.edges_overflow.fetch_add(1, Relaxed);
            let unknown = Workload::unknown();
            labels = EdgeSpec {
                reporter: spec.reporter,
                source: &unknown,
                destination: &unknown,
                destination_service: UNKNOWN,
                security_policy: UNKNOWN,
            }
            .render();
        }
        edges
            .entry(labels)
            .or_insert_with_key(|labels| {
                Arc::new(Edge {
                    labels: labels.clone(),
                    series: RwLock::new(Vec::new()),
                })
            })
            .clone()
    }

    /// The inbound edge for a caller identified by `key` (its peer header),
    /// built with `spec` only the first time the key is seen.
    pub fn inbound_edge(
        &self,
        key: &str,
        spec: impl FnOnce() -> (Workload, String),
        this: &Workload,
        security_policy: &str,
    ) -> Arc<Edge> {
        if let Some(e) = self
            .inbound
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
        {
            return e.clone();
        }
        let (source, service) = spec();
        let edge = self.edge(&EdgeSpec {
            reporter: Reporter::Destination,
            source: &source,
            destination: this,
            destination_service: &service,
            security_policy,
        });
        let mut inbound = self.inbound.write().unwrap_or_else(|e| e.into_inner());
        // Keys are what callers send: bounded like the edges themselves.
        if inbound.len() < MAX_EDGES {
            inbound.insert(key.into(), edge.clone());
        }
        edge
    }

    /// The Prometheus text exposition of everything.
    pub fn render(&self) -> String {
        let edges: Vec<Arc<Edge>> = self
            .edges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        let mut series: Vec<(Arc<Edge>, Arc<Series>)> = Vec::new();
        for e in &edges {
            for s in e.series.read().unwrap_or_else(|e| e.into_inner()).iter() {
                series.push((e.clone(), s.clone()));
            }
        }
        let labels_of = |e: &Edge, s: &Series| {
            let grpc = s.grpc.map(|g| g.to_string()).unwrap_or_default();
            format!(
                "{},grpc_response_status=\"{grpc}\",response_code=\"{}\",response_flags=\"{}\"",
                e.labels,
                s.code,
                s.flags.as_str()
            )
        };
        let mut out = String::with_capacity(4096 + series.len() * 8192);
        out.push_str("# HELP istio_requests_total Total requests.\n");
        out.push_str("# TYPE istio_requests_total counter\n");
        for (e, s) in &series {
            let _ = writeln!(
                out,
                "istio_requests_total{{{}}} {}",
                labels_of(e, s),
                s.requests.load(Relaxed)
            );
        }
        let histograms: [(&str, &str, HistogramOf); 3] = [
            (
                "istio_request_duration_milliseconds",
                "Request duration in milliseconds.",
                |s| &s.duration,
            ),
            ("istio_request_bytes", "Request body sizes in bytes.", |s| {
                &s.request_bytes
            }),
            (
                "istio_response_bytes",
                "Response body sizes in bytes.",
                |s| &s.response_bytes,
            ),
        ];
        for (name, help, pick) in histograms {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
            for (e, s) in &series {
                pick(s).render(&mut out, name, &labels_of(e, s));
            }
        }
        self.tcp.render(&mut out);
        let own: [(&str, &str, &str, &AtomicU64); 15] = [
            (
                "loupe_proxy_passthrough_connections_total",
                "counter",
                "Captured connections to no service of the mesh, passed through (PassthroughCluster).",
                &self.passthrough,
            ),
            (
                "loupe_proxy_blackhole_connections_total",
                "counter",
                "Captured connections to no service of the mesh, refused under REGISTRY_ONLY (BlackHoleCluster).",
                &self.blackholed,
            ),
            (
                "loupe_proxy_inbound_plaintext_refused_total",
                "counter",
                "Plaintext connections closed because PeerAuthentication is STRICT.",
                &self.plaintext_refused,
            ),
            (
                "loupe_proxy_inbound_tls_handshake_failures_total",
                "counter",
                "Inbound mTLS handshakes that failed.",
                &self.tls_handshake_failures,
            ),
            (
                "loupe_proxy_connections_over_limit_total",
                "counter",
                "Connections closed on arrival because the listener was at --max-connections.",
                &self.connections_over_limit,
            ),
            (
                "loupe_proxy_metric_edges_overflow_total",
                "counter",
                "New metric edges folded into the all-unknown overflow edge (past MAX_EDGES).",
                &self.edges_overflow,
            ),
            (
                "loupe_proxy_mirrors_skipped_total",
                "counter",
                "Mirrored copies skipped because 1,000 were already outstanding.",
                &self.mirrors_skipped,
            ),
            (
                "loupe_proxy_mirrors_in_flight",
                "gauge",
                "Mirrored copies outstanding (each abandoned after 15 s).",
                &self.mirrors_in_flight,
            ),
            (
                "loupe_proxy_spans_dropped_total",
                "counter",
                "Spans dropped because the export queue was full.",
                &self.spans_dropped,
            ),
            (
                "loupe_proxy_spans_exported_total",
                "counter",
                "Spans accepted by the OTLP collector.",
                &self.spans_exported,
            ),
            (
                "loupe_proxy_span_export_failures_total",
                "counter",
                "OTLP export calls that failed (their spans are dropped).",
                &self.span_export_failures,
            ),
            (
                "loupe_proxy_config_version",
                "gauge",
                "Version of the last applied control-plane snapshot.",
                &self.config_version,
            ),
            (
                "loupe_proxy_config_acks_total",
                "counter",
                "Snapshots applied and ACKed.",
                &self.config_acks,
            ),
            (
                "loupe_proxy_config_nacks_total",
                "counter",
                "Snapshots refused and NACKed.",
                &self.config_nacks,
            ),
            (
                "loupe_proxy_security_resources_failed_closed",
                "gauge",
                "Security resources of the current config that did not compile and fail closed (deny / STRICT).",
                &self.security_failed_closed,
            ),
        ];
        for (name, kind, help, value) in own {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
                value.load(Relaxed)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn workload(name: &str, app: &str, version: &str) -> Workload {
        let mut labels = BTreeMap::new();
        labels.insert("app".to_string(), app.to_string());
        labels.insert("version".to_string(), version.to_string());
        Workload::new(name, "default", &format!("bookinfo-{app}"), labels)
    }

    #[test]
    fn past_the_cap_new_edges_fold_into_one_unknown_edge() {
        let m = Metrics::default();
        let src = workload("productpage-v1", "productpage", "v1");
        let dst = workload("reviews-v2", "reviews", "v2");
        let edge_to = |service: &str| {
            m.edge(&EdgeSpec {
                reporter: Reporter::Destination,
                source: &src,
                destination: &dst,
                destination_service: service,
                security_policy: "mutual_tls",
            })
        };
        for i in 0..MAX_EDGES + 10 {
            edge_to(&format!("s{i}.default.svc.cluster.local"));
        }
        let edges = m.edges.lock().unwrap().len();
        assert_eq!(edges, MAX_EDGES + 1, "the cap plus the overflow edge");
        assert_eq!(m.edges_overflow.load(Relaxed), 10);
        let overflow = edge_to("one-more.default.svc.cluster.local");
        assert!(overflow.labels.contains("destination_service=\"unknown\""));
        assert!(overflow.labels.contains("source_workload=\"unknown\""));
        // Edges made before the cap are still their own.
        let early = edge_to("s0.default.svc.cluster.local");
        assert!(early.labels.contains("s0.default"));
    }

    #[test]
    fn edges_are_interned_and_rendered_with_istio_labels() {
        let m = Metrics::default();
        let src = workload("productpage-v1", "productpage", "v1");
        let dst = workload("reviews-v2", "reviews", "v2");
        let spec = EdgeSpec {
            reporter: Reporter::Source,
            source: &src,
            destination: &dst,
            destination_service: "reviews.default.svc.cluster.local",
            security_policy: "unknown",
        };
        let a = m.edge(&spec);
        let b = m.edge(&spec);
        assert!(Arc::ptr_eq(&a, &b));
        for _ in 0..3 {
            a.record(&Observation {
                code: 200,
                flags: ResponseFlags::None,
                grpc_status: None,
                duration: Duration::from_millis(7),
                request_bytes: 0,
                response_bytes: 120,
            });
        }
        let text = m.render();
        let line = text
            .lines()
            .find(|l| l.starts_with("istio_requests_total{"))
            .expect("a requests_total series");
        for label in [
            "reporter=\"source\"",
            "source_workload=\"productpage-v1\"",
            "source_app=\"productpage\"",
            "destination_workload=\"reviews-v2\"",
            "destination_version=\"v2\"",
            "destination_service=\"reviews.default.svc.cluster.local\"",
            "destination_service_name=\"reviews\"",
            "source_principal=\"spiffe://cluster.local/ns/default/sa/bookinfo-productpage\"",
            "response_code=\"200\"",
            "response_flags=\"-\"",
            "grpc_response_status=\"\"",
            "connection_security_policy=\"unknown\"",
        ] {
            assert!(line.contains(label), "{label} missing in {line}");
        }
        assert!(line.ends_with(" 3"), "{line}");
        assert!(
            text.contains("le=\"10\"} 3"),
            "7ms falls in the 10ms bucket"
        );
        assert!(text.contains("le=\"5\"} 0"));
        assert!(text.contains("istio_request_duration_milliseconds_count{"));
    }
}
