//! Shared by the integration tests: a private Postgres per test, the app
//! over it, requests through `oneshot`, and rows written as the collector
//! writes them.
#![allow(dead_code)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use loupe_db::{PgPool, PrivatePostgres};
use loupe_server::AppState;
use serde_json::Value;
use tower::ServiceExt;

pub struct Harness {
    pub pool: PgPool,
    pub state: AppState,
    /// An admin's API token, which [`Harness::send`] sends unless the
    /// request carries credentials of its own.
    pub token: String,
    // Last: dropped after the pool, stopping the server.
    pub pg: PrivatePostgres,
}

impl Harness {
    pub async fn start() -> Harness {
        let pg = tokio::task::spawn_blocking(PrivatePostgres::start_temporary)
            .await
            .expect("join")
            .expect("start a private Postgres (apt-get install -y postgresql)");
        let pool = loupe_db::connect(&pg.url(), 8)
            .await
            .expect("connect and migrate");
        let state = AppState::new(pool.clone());
        let users = loupe_server::auth::Users::new(pool.clone());
        users
            .add("tester", loupe_server::auth::Role::Admin, "tester-password")
            .await
            .expect("add the test admin");
        let token = users
            .issue_token("tester", "tests")
            .await
            .expect("issue a token");
        Harness {
            pool,
            state,
            token,
            pg,
        }
    }

    pub fn app(&self) -> Router {
        loupe_server::app(self.state.clone())
    }

    pub async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.send(Request::get(uri).body(Body::empty()).expect("request"))
            .await
    }

    /// Sends `req` as the test admin (bearer token) unless it carries an
    /// `Authorization` or `Cookie` header already.
    pub async fn send(&self, mut req: Request<Body>) -> (StatusCode, Value) {
        let headers = req.headers_mut();
        if !headers.contains_key("authorization") && !headers.contains_key("cookie") {
            let bearer = format!("Bearer {}", self.token);
            headers.insert("authorization", bearer.parse().expect("header"));
        }
        self.send_raw(req).await
    }

    /// Sends `req` exactly as it is.
    pub async fn send_raw(&self, req: Request<Body>) -> (StatusCode, Value) {
        let resp = self.app().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let json = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, json)
    }
}

/// One `edge_rollups` row, `ago` seconds old. Workloads are `APP-VERSION`.
#[derive(Clone)]
pub struct Row {
    pub ago_s: f64,
    pub reporter: &'static str,
    pub src: (&'static str, &'static str),
    pub dst: (&'static str, &'static str),
    pub code: &'static str,
    pub mtls: bool,
    pub requests: i64,
    /// Cumulative counts for [`BOUNDS`], as Prometheus `le` buckets are.
    pub buckets: [i64; 7],
}

pub const BOUNDS: [f64; 7] = [1.0, 5.0, 10.0, 25.0, 50.0, 100.0, f64::INFINITY];

impl Row {
    pub fn new(
        src: (&'static str, &'static str),
        dst: (&'static str, &'static str),
        code: &'static str,
        requests: i64,
    ) -> Row {
        // By default every request takes (5, 10] ms.
        Row {
            ago_s: 10.0,
            reporter: "source",
            src,
            dst,
            code,
            mtls: true,
            requests,
            buckets: [0, 0, requests, requests, requests, requests, requests],
        }
    }
}

pub async fn insert(pool: &PgPool, rows: &[Row]) {
    for r in rows {
        let workload = |(app, version): (&str, &str)| {
            if app == "unknown" {
                "unknown".to_string()
            } else {
                format!("{app}-{version}")
            }
        };
        sqlx::query(
            "INSERT INTO edge_rollups (ts, interval_s, reporter,
                source_workload, source_workload_namespace, source_app, source_version,
                destination_workload, destination_workload_namespace, destination_app, destination_version,
                destination_service, response_code, connection_security_policy,
                requests, duration_sum_ms, bucket_bounds_ms, bucket_counts)
             VALUES (now() - make_interval(secs => $1), 5, $2, $3, 'default', $4, $5,
                     $6, 'default', $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(r.ago_s)
        .bind(r.reporter)
        .bind(workload(r.src))
        .bind(r.src.0)
        .bind(r.src.1)
        .bind(workload(r.dst))
        .bind(r.dst.0)
        .bind(r.dst.1)
        .bind(format!("{}.default.svc.cluster.local", r.dst.0))
        .bind(r.code)
        // Only the destination knows the connection's security (Istio).
        .bind(match (r.reporter, r.mtls) {
            ("source", _) => "unknown",
            (_, true) => "mutual_tls",
            (_, false) => "none",
        })
        .bind(r.requests)
        .bind(7.5 * r.requests as f64)
        .bind(BOUNDS.to_vec())
        .bind(r.buckets.to_vec())
        .execute(pool)
        .await
        .expect("insert edge_rollups row");
    }
}
