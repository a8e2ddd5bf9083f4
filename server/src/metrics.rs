//! `GET /api/metrics?entity=workload|app|service|edge&namespace=&name=&range=&step=`:
//! the stored rollups of one entity as a series over time — request rate,
//! requests per response code, 5xx share and latency quantiles per step
//! (Kiali's metrics tabs). Rows are read once for the range (the
//! `edge_rollups_ts` index) and bucketed here by the time they were
//! scraped, so each step sums the scrape intervals that ended in it.
//!
//! The rollups hold what the collector keeps of `istio_requests_total` and
//! `istio_request_duration_milliseconds`; response flags and
//! request/response bytes are not stored, so they are not here.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use chrono::{DateTime, Utc};
use loupe_api::error::ErrorBody;
use loupe_api::metrics::{Direction, Entity, Metrics, MetricsPoint, MetricsQuery, Reporter};
use sqlx::{Postgres, QueryBuilder};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;
use crate::graph::histogram::Histogram;
use crate::params;

const DEFAULT_RANGE: Duration = Duration::from_secs(600);
/// Points per series at most: a chart has no use for more.
const MAX_POINTS: u64 = 1000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// What to read, checked.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Selection {
    entity: Entity,
    namespace: String,
    name: String,
    source: Option<(String, String)>,
    direction: Direction,
    reporter: Reporter,
    range: Duration,
    step: Duration,
}

fn required(name: &str, v: &str) -> Result<String, ApiError> {
    let v = v.trim();
    if v.is_empty() {
        return Err(ApiError::bad_request(format!("{name} is required")));
    }
    Ok(v.to_string())
}

impl Selection {
    pub(crate) fn parse(q: MetricsQuery) -> Result<Selection, ApiError> {
        let entity = match q.entity.trim() {
            "workload" => Entity::Workload,
            "app" => Entity::App,
            "service" => Entity::Service,
            "edge" => Entity::Edge,
            other => {
                return Err(ApiError::bad_request(format!(
                    "entity={other:?}: use workload, app, service or edge"
                )));
            }
        };
        let given = |v: Option<String>| v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let direction = match given(q.direction).as_deref() {
            None | Some("inbound") => Direction::Inbound,
            Some("outbound") if matches!(entity, Entity::Workload | Entity::App) => {
                Direction::Outbound
            }
            Some("outbound") => {
                return Err(ApiError::bad_request(
                    "direction=outbound is for workloads and apps; a service or an edge has one direction",
                ));
            }
            Some(d) => {
                return Err(ApiError::bad_request(format!(
                    "direction={d:?}: use inbound or outbound"
                )));
            }
        };
        let source = match entity {
            Entity::Edge => Some((
                required(
                    "source_namespace",
                    &given(q.source_namespace).unwrap_or_default(),
                )?,
                required("source_name", &given(q.source_name).unwrap_or_default())?,
            )),
            _ => None,
        };
        let reporter = match given(q.reporter).as_deref() {
            Some("source") => Reporter::Source,
            Some("destination") => Reporter::Destination,
            None => match (entity, direction) {
                (Entity::Edge, _) | (_, Direction::Outbound) => Reporter::Source,
                _ => Reporter::Destination,
            },
            Some(r) => {
                return Err(ApiError::bad_request(format!(
                    "reporter={r:?}: use source or destination"
                )));
            }
        };
        let range = match given(q.range) {
            Some(r) => params::window("range", &r)?,
            None => DEFAULT_RANGE,
        };
        let step = match given(q.step) {
            Some(s) => params::window("step", &s)?,
            None => Duration::from_secs((range.as_secs() / 60).max(1)),
        };
        if step > range {
            return Err(ApiError::bad_request(format!(
                "step={}s is longer than range={}s",
                step.as_secs(),
                range.as_secs()
            )));
        }
        if range.as_secs().div_ceil(step.as_secs()) > MAX_POINTS {
            return Err(ApiError::bad_request(format!(
                "range/step would be more than {MAX_POINTS} points: take a longer step"
            )));
        }
        Ok(Selection {
            entity,
            namespace: required("namespace", &q.namespace)?,
            name: required("name", &q.name)?,
            source,
            direction,
            reporter,
            range,
            step,
        })
    }

    fn points(&self) -> usize {
        self.range.as_secs().div_ceil(self.step.as_secs()) as usize
    }
}

/// One rollup row, as much of it as a series needs.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub(crate) struct Sample {
    pub ts: DateTime<Utc>,
    pub response_code: String,
    pub requests: i64,
    pub bucket_bounds_ms: Vec<f64>,
    pub bucket_counts: Vec<i64>,
}

pub(crate) fn samples_query(s: &Selection, start: DateTime<Utc>) -> QueryBuilder<Postgres> {
    let mut q = QueryBuilder::new(
        "SELECT ts, response_code, requests, bucket_bounds_ms, bucket_counts
           FROM edge_rollups WHERE ts > ",
    );
    q.push_bind(start)
        .push(" AND reporter = ")
        .push_bind(s.reporter.as_str());
    let (ns_col, name_col) = match (s.entity, s.direction) {
        (Entity::Workload | Entity::Edge, Direction::Inbound) => {
            ("destination_workload_namespace", "destination_workload")
        }
        (Entity::Workload, Direction::Outbound) => ("source_workload_namespace", "source_workload"),
        (Entity::App, Direction::Inbound) => ("destination_workload_namespace", "destination_app"),
        (Entity::App, Direction::Outbound) => ("source_workload_namespace", "source_app"),
        (Entity::Service, _) => ("", ""),
        (Entity::Edge, Direction::Outbound) => unreachable!("refused by Selection::parse"),
    };
    if s.entity == Entity::Service {
        // `destination_service` is the host as called: FQDN, `name.ns`, or
        // the short name (then in the destination workload's namespace).
        let fqdn = format!("{}.{}.svc.cluster.local", s.name, s.namespace);
        let short = format!("{}.{}", s.name, s.namespace);
        q.push(" AND (destination_service = ")
            .push_bind(fqdn)
            .push(" OR destination_service = ")
            .push_bind(short)
            .push(" OR (destination_service = ")
            .push_bind(s.name.clone())
            .push(" AND destination_workload_namespace = ")
            .push_bind(s.namespace.clone())
            .push("))");
    } else {
        q.push(format_args!(" AND {ns_col} = "))
            .push_bind(s.namespace.clone())
            .push(format_args!(" AND {name_col} = "))
            .push_bind(s.name.clone());
    }
    if let Some((ns, name)) = &s.source {
        q.push(" AND source_workload_namespace = ")
            .push_bind(ns.clone())
            .push(" AND source_workload = ")
            .push_bind(name.clone());
    }
    q
}

/// Buckets `samples` into `n` steps of `step` from `start`: pure, tested
/// without a database.
pub(crate) fn series(
    samples: &[Sample],
    start: DateTime<Utc>,
    step: Duration,
    n: usize,
) -> Vec<MetricsPoint> {
    #[derive(Default)]
    struct Acc {
        requests: u64,
        errors: u64,
        codes: BTreeMap<String, u64>,
        histogram: Histogram,
    }
    let step_ms = step.as_millis().max(1) as i64;
    let mut acc: Vec<Acc> = (0..n).map(|_| Acc::default()).collect();
    for s in samples {
        let offset = (s.ts - start).num_milliseconds();
        if offset <= 0 {
            continue;
        }
        // A scrape at a step's end belongs to that step.
        let i = ((offset - 1) / step_ms) as usize;
        let Some(a) = acc.get_mut(i) else { continue };
        let requests = s.requests.max(0) as u64;
        a.requests += requests;
        if s.response_code.starts_with('5') {
            a.errors += requests;
        }
        *a.codes.entry(s.response_code.clone()).or_default() += requests;
        a.histogram.merge(&Histogram::from_row(
            &s.bucket_bounds_ms,
            &s.bucket_counts,
            requests,
        ));
    }
    let step_s = step.as_secs_f64();
    acc.into_iter()
        .enumerate()
        .map(|(i, a)| {
            let quantile = |q| a.histogram.quantile(q).filter(|_| a.requests > 0);
            MetricsPoint {
                at: start + chrono::Duration::milliseconds(i as i64 * step_ms),
                request_rate: a.requests as f64 / step_s,
                error_rate: if a.requests > 0 {
                    a.errors as f64 / a.requests as f64
                } else {
                    0.0
                },
                responses: a
                    .codes
                    .iter()
                    .map(|(c, n)| (c.clone(), *n as f64 / step_s))
                    .collect(),
                p50_ms: quantile(0.50),
                p95_ms: quantile(0.95),
                p99_ms: quantile(0.99),
            }
        })
        .collect()
}

/// One entity's traffic over time, a point per step.
#[utoipa::path(get, path = "/metrics", tag = "metrics", params(MetricsQuery),
    responses((status = 200, body = Metrics), (status = 400, body = ErrorBody)))]
async fn metrics(
    State(state): State<AppState>,
    query: Result<Query<MetricsQuery>, QueryRejection>,
) -> Result<Json<Metrics>, ApiError> {
    let Query(q) = query?;
    let s = Selection::parse(q)?;
    let end = Utc::now();
    let step =
        chrono::Duration::from_std(s.step).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let n = s.points();
    let start = end - step * n as i32;
    let samples = samples_query(&s, start)
        .build_query_as::<Sample>()
        .fetch_all(&state.pool)
        .await
        .map_err(ApiError::internal("reading edge_rollups for metrics"))?;
    let points = series(&samples, start, s.step, n);
    Ok(Json(Metrics {
        entity: s.entity,
        namespace: s.namespace,
        name: s.name,
        direction: s.direction,
        reporter: s.reporter,
        start,
        end,
        step_s: s.step.as_secs_f64(),
        points,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(entity: &str) -> MetricsQuery {
        MetricsQuery {
            entity: entity.into(),
            namespace: "default".into(),
            name: "reviews-v1".into(),
            ..MetricsQuery::default()
        }
    }

    #[test]
    fn defaults_and_refusals() {
        let s = Selection::parse(q("workload")).unwrap();
        assert_eq!(
            (s.direction, s.reporter),
            (Direction::Inbound, Reporter::Destination)
        );
        assert_eq!(
            (s.range.as_secs(), s.step.as_secs(), s.points()),
            (600, 10, 60)
        );
        let out = Selection::parse(MetricsQuery {
            direction: Some("outbound".into()),
            ..q("app")
        })
        .unwrap();
        assert_eq!(out.reporter, Reporter::Source);
        for (bad, says) in [
            (q("pod"), "entity"),
            (q("edge"), "source_namespace"),
            (
                MetricsQuery {
                    name: " ".into(),
                    ..q("app")
                },
                "name is required",
            ),
            (
                MetricsQuery {
                    direction: Some("outbound".into()),
                    ..q("service")
                },
                "outbound",
            ),
            (
                MetricsQuery {
                    range: Some("1m".into()),
                    step: Some("2m".into()),
                    ..q("app")
                },
                "longer",
            ),
            (
                MetricsQuery {
                    range: Some("7d".into()),
                    step: Some("1s".into()),
                    ..q("app")
                },
                "points",
            ),
        ] {
            match Selection::parse(bad) {
                Err(ApiError::BadRequest(m)) => assert!(m.contains(says), "{m}"),
                other => panic!("expected 400 ({says}), got {other:?}"),
            }
        }
    }

    fn sample(at: DateTime<Utc>, code: &str, requests: i64, le10: i64) -> Sample {
        // Cumulative buckets: `le10` requests at most 10 ms, the rest ≤ 100 ms.
        Sample {
            ts: at,
            response_code: code.into(),
            requests,
            bucket_bounds_ms: vec![10.0, 100.0],
            bucket_counts: vec![le10, requests],
        }
    }

    #[test]
    fn samples_fall_in_the_step_they_were_scraped_in() {
        let start: DateTime<Utc> = "2026-12-02T04:00:00Z".parse().unwrap();
        let s = chrono::Duration::seconds;
        let samples = [
            sample(start + s(5), "200", 90, 90),
            sample(start + s(10), "503", 10, 10), // at the first step's end
            sample(start + s(15), "200", 20, 0),
            sample(start - s(1), "200", 1000, 0), // before the range
            sample(start + s(40), "200", 1000, 0), // after it
        ];
        let points = series(&samples, start, Duration::from_secs(10), 3);
        assert_eq!(points.len(), 3);
        assert_eq!(points[0].at, start);
        assert_eq!(points[0].request_rate, 10.0);
        assert_eq!(points[0].error_rate, 0.1);
        assert_eq!(points[0].responses["503"], 1.0);
        assert!(points[0].p50_ms.unwrap() <= 10.0);
        assert_eq!(points[1].request_rate, 2.0);
        assert!(points[1].p50_ms.unwrap() > 10.0, "{:?}", points[1].p50_ms);
        assert_eq!(points[2].request_rate, 0.0);
        assert_eq!(points[2].p99_ms, None);
        assert!(points[2].responses.is_empty());
    }
}
