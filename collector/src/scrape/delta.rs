//! Counters → per-interval deltas.
//!
//! For every proxy (target) and every series (full label set) of
//! `istio_requests_total` and `istio_request_duration_milliseconds`
//! (`_bucket`/`_sum`/`_count`), the last value seen is kept in memory. Each
//! scrape then yields, per series:
//! - growth → the difference;
//! - a value below the last one → a counter reset (proxy restart): the new
//!   value is the delta (all of it happened since the reset);
//! - a series seen for the first time → the baseline, *not* emitted, when
//!   the proxy itself was first seen in the collector's first scrape round:
//!   its counters hold history from before the collector started, and
//!   emitting them would show a spike at every collector restart (Kiali
//!   users expect none). A series that appears later on a known proxy, or on
//!   a proxy first seen after that first round (a new workload), started
//!   from zero since the last scrape, so its whole value is emitted.
//!
//! Series deltas are then summed per edge: the twelve Istio labels of
//! [`EDGE_LABELS`] (a missing label is "unknown"), so extra labels a proxy
//! adds do not split edges.

use std::collections::HashMap;

use super::text::{Sample, Scrape};
use chrono::{DateTime, Utc};

pub const REQUESTS_TOTAL: &str = "istio_requests_total";
pub const DURATION: &str = "istio_request_duration_milliseconds";

/// The labels that identify an edge, in `edge_rollups` column order.
pub const EDGE_LABELS: [&str; 12] = [
    "reporter",
    "source_workload",
    "source_workload_namespace",
    "source_app",
    "source_version",
    "destination_workload",
    "destination_workload_namespace",
    "destination_app",
    "destination_version",
    "destination_service",
    "response_code",
    "connection_security_policy",
];

pub type EdgeKey = [String; 12];

/// One `edge_rollups` row.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeRollup {
    pub ts: DateTime<Utc>,
    pub interval_s: f32,
    pub edge: EdgeKey,
    pub requests: i64,
    pub duration_sum_ms: f64,
    /// Upper bounds (`le`) of the buckets, ascending, `+Inf` last.
    pub bucket_bounds_ms: Vec<f64>,
    /// Requests per bucket in the interval (not cumulative).
    pub bucket_counts: Vec<i64>,
}

impl EdgeRollup {
    pub fn label(&self, name: &str) -> &str {
        EDGE_LABELS
            .iter()
            .position(|l| *l == name)
            .map_or("", |i| self.edge[i].as_str())
    }
}

/// A series: every label, sorted by name.
type SeriesId = Vec<(String, String)>;

#[derive(Debug, Clone, Default, PartialEq)]
struct Histogram {
    sum: f64,
    count: f64,
    /// (le, cumulative count), ascending by le.
    buckets: Vec<(f64, f64)>,
}

#[derive(Default)]
struct TargetState {
    last_scrape: Option<DateTime<Utc>>,
    requests: HashMap<SeriesId, f64>,
    durations: HashMap<SeriesId, Histogram>,
    last_listed: Option<DateTime<Utc>>,
}

/// The delta state of every target.
#[derive(Default)]
pub struct Deltas {
    targets: HashMap<String, TargetState>,
    first_round_done: bool,
}

impl Deltas {
    /// Marks the end of a scrape round: targets first seen from now on are new proxies.
    pub fn end_round(&mut self) {
        self.first_round_done = true;
    }

    /// Forgets targets not listed for `max_age` (their series would otherwise
    /// stay in memory forever). A target that only failed a scrape keeps its state.
    pub fn listed(&mut self, target: &str, now: DateTime<Utc>) {
        self.targets
            .entry(target.to_string())
            .or_default()
            .last_listed = Some(now);
    }

    pub fn forget_unlisted(&mut self, now: DateTime<Utc>, max_age: chrono::Duration) {
        self.targets
            .retain(|_, t| t.last_listed.is_some_and(|at| now - at <= max_age));
    }

    /// The deltas of one successful scrape of `target` at `now`.
    /// `default_interval` is used for a proxy's first scrape.
    pub fn observe(
        &mut self,
        target: &str,
        scrape: &Scrape,
        now: DateTime<Utc>,
        default_interval: std::time::Duration,
    ) -> Vec<EdgeRollup> {
        let first_round_done = self.first_round_done;
        let state = self.targets.entry(target.to_string()).or_default();
        let known_target = state.last_scrape.is_some();
        let emit_new_series = known_target || first_round_done;
        let interval_s = state
            .last_scrape
            .map_or(default_interval.as_secs_f32(), |last| {
                (now - last).num_milliseconds() as f32 / 1000.0
            });
        state.last_scrape = Some(now);

        let (requests, durations) = series_of(scrape);
        let mut edges: HashMap<EdgeKey, EdgeRollup> = HashMap::new();
        for (id, value) in requests {
            let delta = match state.requests.get(&id) {
                Some(prev) if value >= *prev => value - prev,
                Some(_) => value,
                None if emit_new_series => value,
                None => 0.0,
            };
            state.requests.insert(id.clone(), value);
            if delta > 0.0 {
                edge(&mut edges, &id, now, interval_s).requests += delta.round() as i64;
            }
        }
        for (id, hist) in durations {
            let delta = match state.durations.get(&id) {
                Some(prev) => histogram_delta(prev, &hist),
                None if emit_new_series => hist.clone(),
                None => Histogram::default(),
            };
            state.durations.insert(id.clone(), hist);
            if delta.count > 0.0 || delta.sum > 0.0 {
                let rollup = edge(&mut edges, &id, now, interval_s);
                rollup.duration_sum_ms += delta.sum;
                add_buckets(rollup, &delta.buckets);
            }
        }
        let mut rows: Vec<EdgeRollup> = edges
            .into_values()
            .filter(|r| {
                r.requests > 0 || r.duration_sum_ms > 0.0 || r.bucket_counts.iter().any(|c| *c > 0)
            })
            .collect();
        rows.sort_by(|a, b| a.edge.cmp(&b.edge));
        rows
    }
}

fn edge<'a>(
    edges: &'a mut HashMap<EdgeKey, EdgeRollup>,
    id: &SeriesId,
    ts: DateTime<Utc>,
    interval_s: f32,
) -> &'a mut EdgeRollup {
    let key = edge_key(id);
    edges.entry(key.clone()).or_insert_with(|| EdgeRollup {
        ts,
        interval_s,
        edge: key,
        requests: 0,
        duration_sum_ms: 0.0,
        bucket_bounds_ms: Vec::new(),
        bucket_counts: Vec::new(),
    })
}

/// The change from `prev` to `now`; a decrease anywhere, or a changed bucket
/// layout, is a reset and the delta is `now` itself.
fn histogram_delta(prev: &Histogram, now: &Histogram) -> Histogram {
    let same_layout = prev.buckets.len() == now.buckets.len()
        && prev
            .buckets
            .iter()
            .zip(&now.buckets)
            .all(|(a, b)| a.0 == b.0);
    let decreased = now.count < prev.count
        || now.sum < prev.sum
        || !same_layout
        || prev
            .buckets
            .iter()
            .zip(&now.buckets)
            .any(|(a, b)| b.1 < a.1);
    if decreased {
        return now.clone();
    }
    Histogram {
        sum: now.sum - prev.sum,
        count: now.count - prev.count,
        buckets: prev
            .buckets
            .iter()
            .zip(&now.buckets)
            .map(|(a, b)| (b.0, b.1 - a.1))
            .collect(),
    }
}

/// Adds cumulative bucket deltas to `rollup` as per-bucket (non-cumulative) counts.
fn add_buckets(rollup: &mut EdgeRollup, cumulative: &[(f64, f64)]) {
    let mut below = 0.0;
    for &(le, cum) in cumulative {
        let count = (cum - below).max(0.0).round() as i64;
        below = cum;
        match rollup.bucket_bounds_ms.iter().position(|b| *b == le) {
            Some(i) => rollup.bucket_counts[i] += count,
            None => {
                let at = rollup
                    .bucket_bounds_ms
                    .iter()
                    .position(|b| *b > le)
                    .unwrap_or(rollup.bucket_bounds_ms.len());
                rollup.bucket_bounds_ms.insert(at, le);
                rollup.bucket_counts.insert(at, count);
            }
        }
    }
}

fn series_id(sample: &Sample) -> SeriesId {
    let mut id: SeriesId = sample
        .labels
        .iter()
        .filter(|(k, _)| k.as_str() != "le")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    id.sort();
    id
}

fn edge_key(id: &SeriesId) -> EdgeKey {
    EDGE_LABELS.map(|name| {
        id.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
            .unwrap_or("unknown")
            .to_string()
    })
}

type HistogramSeries = Vec<(SeriesId, Histogram)>;

/// The request counters and duration histograms of a scrape, per series.
/// `# TYPE` lines are not needed: buckets are the `_bucket` samples with an
/// `le` label.
fn series_of(scrape: &Scrape) -> (Vec<(SeriesId, f64)>, HistogramSeries) {
    let bucket = format!("{DURATION}_bucket");
    let sum = format!("{DURATION}_sum");
    let count = format!("{DURATION}_count");
    let mut requests = Vec::new();
    let mut hists: HashMap<SeriesId, Histogram> = HashMap::new();
    for sample in &scrape.samples {
        let name = sample.metric.as_str();
        let v = sample.value;
        if name == REQUESTS_TOTAL {
            requests.push((series_id(sample), v));
        } else if name == DURATION || name == bucket {
            let le = sample.label("le").and_then(super::text::parse_float);
            if let Some(le) = le {
                hists
                    .entry(series_id(sample))
                    .or_default()
                    .buckets
                    .push((le, v));
            }
        } else if name == sum || name == count {
            let hist = hists.entry(series_id(sample)).or_default();
            if name == sum {
                hist.sum = v;
            } else {
                hist.count = v;
            }
        }
    }
    let hists = hists
        .into_iter()
        .map(|(id, mut h)| {
            h.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            (id, h)
        })
        .collect();
    (requests, hists)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LABELS: &str = r#"reporter="destination",source_workload="productpage-v1",source_workload_namespace="default",source_app="productpage",source_version="v1",destination_workload="reviews-v1",destination_workload_namespace="default",destination_app="reviews",destination_version="v1",destination_service="reviews.default.svc.cluster.local",response_code="200",connection_security_policy="none""#;

    fn text(requests: u64, sum: f64, b10: u64, b100: u64, extra: &str) -> Scrape {
        let body = format!(
            "# TYPE istio_requests_total counter\n\
             istio_requests_total{{{LABELS}}} {requests}\n\
             {extra}\
             # TYPE istio_request_duration_milliseconds histogram\n\
             istio_request_duration_milliseconds_bucket{{{LABELS},le=\"10\"}} {b10}\n\
             istio_request_duration_milliseconds_bucket{{{LABELS},le=\"100\"}} {b100}\n\
             istio_request_duration_milliseconds_bucket{{{LABELS},le=\"+Inf\"}} {requests}\n\
             istio_request_duration_milliseconds_sum{{{LABELS}}} {sum}\n\
             istio_request_duration_milliseconds_count{{{LABELS}}} {requests}\n"
        );
        Scrape::parse(&body).unwrap()
    }

    const IV: std::time::Duration = std::time::Duration::from_secs(5);

    #[test]
    fn baseline_then_growth_then_reset() {
        let mut d = Deltas::default();
        let t0 = Utc::now();
        assert!(
            d.observe("p", &text(10, 50.0, 5, 9, ""), t0, IV).is_empty(),
            "first scrape is the baseline"
        );
        d.end_round();
        let rows = d.observe(
            "p",
            &text(15, 80.0, 7, 13, ""),
            t0 + chrono::Duration::seconds(5),
            IV,
        );
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(r.requests, 5);
        assert_eq!(r.duration_sum_ms, 30.0);
        assert_eq!(r.bucket_bounds_ms, vec![10.0, 100.0, f64::INFINITY]);
        assert_eq!(r.bucket_counts, vec![2, 2, 1], "non-cumulative per bucket");
        assert_eq!(r.interval_s, 5.0);
        assert_eq!(r.label("destination_workload"), "reviews-v1");
        // Proxy restarted: counters start over.
        let rows = d.observe(
            "p",
            &text(3, 12.0, 2, 3, ""),
            t0 + chrono::Duration::seconds(10),
            IV,
        );
        assert_eq!(rows[0].requests, 3);
        assert_eq!(rows[0].bucket_counts, vec![2, 1, 0]);
        // No traffic: no row.
        let rows = d.observe(
            "p",
            &text(3, 12.0, 2, 3, ""),
            t0 + chrono::Duration::seconds(15),
            IV,
        );
        assert!(rows.is_empty());
    }

    #[test]
    fn new_series_on_known_proxy_and_new_proxy_count_in_full() {
        let mut d = Deltas::default();
        let t0 = Utc::now();
        d.observe("p", &text(10, 50.0, 5, 9, ""), t0, IV);
        d.end_round();
        let extra =
            "istio_requests_total{reporter=\"source\",destination_workload=\"ratings-v1\"} 4\n";
        let rows = d.observe(
            "p",
            &text(10, 50.0, 5, 9, extra),
            t0 + chrono::Duration::seconds(5),
            IV,
        );
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].requests, 4);
        assert_eq!(rows[0].label("destination_workload"), "ratings-v1");
        assert_eq!(
            rows[0].label("source_app"),
            "unknown",
            "missing labels become unknown"
        );
        let rows = d.observe(
            "q",
            &text(7, 70.0, 1, 7, ""),
            t0 + chrono::Duration::seconds(5),
            IV,
        );
        assert_eq!(
            rows[0].requests, 7,
            "a proxy that appeared after start counts from zero"
        );
        assert_eq!(rows[0].interval_s, 5.0);
    }
}
