//! `loupe-server` is the console's HTTP server: the JSON API the frontend
//! (and scripts) use — the service graph built from the collector's metric
//! rollups ([`graph`]), trace search over the collector's spans
//! ([`traces`]), Istio config read and written through the control plane's
//! store ([`config`], [`canary`]), live change notifications over SSE
//! ([`events`]) — and the built frontend's static files.
//!
//! It owns no schema and no config logic: tables belong to `loupe-db`'s
//! migrations, validation and revisions to `loupe-control`'s `ConfigStore`.
//! It does own who may call it ([`auth`]): console users, sessions, API
//! tokens (see `docs/console-auth.md`).
//!
//! # API
//! Every route but login, logout and health needs credentials — the session
//! cookie of `POST /api/login` or `Authorization: Bearer TOKEN` (`loupe user
//! token NAME`) — else 401; reads need the viewer role, config and canary
//! writes the editor role, anything else admin, else 403. A write made with
//! the session cookie also needs `X-CSRF-Token` and an `Origin` (or
//! `Referer`) equal to `Host`, else 403. Bodies are limited (1 MiB by
//! default, 413) and every request has a deadline (30 s by default, 408).
//! - `POST /api/login` with `{"user","password"}` → `{"user","role","csrf_token"}`
//!   and the `loupe_session` cookie (`HttpOnly; SameSite=Strict; Path=/`);
//!   a failure is 401 `invalid user or password` (slowed; 429 after repeated
//!   failures); `POST /api/logout` → 204; `GET /api/whoami` → `{"user","role","csrf_token"?}`.
//! - `GET /api/users` → `[{"name","role"}]`; `POST /api/users` with
//!   `{"name","role","password"}` → 201 (admins only; 409 if taken).
//! - `GET /api/audit?user=&kind=&namespace=&limit=` →
//!   `[{"at","actor","action","resource","revision"}]`, newest first.
//! - `GET /api/graph?type=versioned-app|app|workload|service&window=60s` →
//!   `{"type","window_s","nodes":[{"id","node_type","namespace","app","version","workload","workloads","service"?,"health","rps_in","rps_out","error_rate"}],
//!   "edges":[{"source","target","protocol","rps","error_rate","p50_ms","p95_ms","p99_ms","mtls","requests","responses"}]}`.
//!   Ids: `NS/app/version`, `NS/app`, `NS/workload`, `NS/service` (service
//!   graph) or `svc:NS/service` (a service no workload answered for), `unknown`
//!   (callers outside the mesh). `error_rate` is the 5xx share and `mtls` the
//!   share of requests over mutual TLS, both 0..1; `health` is
//!   `healthy|degraded|failure`.
//! - `GET /api/metrics?entity=workload|app|service|edge&namespace=&name=&direction=&reporter=&range=10m&step=10s`
//!   → `{"entity","namespace","name","direction","reporter","start","end","step_s","points":[{"at",
//!   "request_rate","error_rate","responses","p50_ms","p95_ms","p99_ms"}]}` (see [`metrics`]).
//! - `GET /api/traces?service=&operation=&tags=k:v&min_duration_ms=&max_duration_ms=&start=&end=&lookback=&limit=&sort=`
//!   `&source_workload=&source_app=&source_namespace=&destination_workload=&destination_service=&destination_namespace=`
//!   → `[{"trace_id","root_service","root_operation","start","duration_ms","span_count","error_count","services"}]`,
//!   newest first or by `sort` (`longest_first`, …); the `source_*`/`destination_*` parameters keep
//!   the traces that crossed that graph edge (see [`traces`]);
//!   `GET /api/traces/{trace_id}` → `{"trace_id","spans":[{"span_id","parent_span_id","service","operation","kind","start","duration_ms","status_code","attributes"}]}`.
//! - `GET|POST /api/config`, `GET|PUT|DELETE /api/config/{kind}/{namespace}/{name}`,
//!   `GET …/history`, `POST …/rollback?revision=N` (see [`config`]); bodies are YAML or JSON
//!   by `Content-Type` (`application/yaml`, `application/x-yaml`,
//!   `text/yaml`, `application/json`; anything else 415); `GET /api/canary`,
//!   `PUT /api/canary/{namespace}/{name}` (see [`canary`]).
//! - `GET /api/proxy-status` → `{"config_revision","synced","connected","proxies":[{"namespace","workload",
//!   "service_account","address","gateway","connected","acked_revision","nacked_revision","nack_error",
//!   "last_seen","sync":"SYNCED|STALE|NACKED|DISCONNECTED"}]}` (see [`proxy_status`]).
//! - `GET /api/components` → `{"supervised","parts":[{"name","pid","running","restarts","started_at",
//!   "last_exit","last_exit_at"}]}`: `loupe demo`'s parts and their restarts (see [`components`]).
//! - `GET /api/events` (SSE: `graph`, `config`), `GET /api/health`.
//! - `GET /api/openapi.json`: all of the above as an OpenAPI 3.1 document,
//!   built from the same place as the router ([`api_routes`]); the JSON
//!   types are `loupe-api`'s, shared with the frontend and the CLI.
//!
//! Errors are `{"error": "..."}` (plus `"diagnostics"` on 422) with 400 for
//! bad input, 401, 403, 404, 409, 413, 415, 422 for refused config, 429,
//! 503 without a database.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod audit;
pub mod auth;
pub mod canary;
pub mod components;
pub mod config;
pub mod error;
pub mod events;
pub mod graph;
pub mod health;
pub mod metrics;
pub mod openapi;
pub mod params;
#[cfg(test)]
mod plans;
pub mod proxy_status;
mod serve;
mod state;
pub mod tls;
pub mod traces;

use std::path::Path;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::any;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use error::ApiError;
pub use serve::{HEADER_READ_TIMEOUT, Options, ServerError, serve, serve_until};
pub use state::{AppState, Limits};

/// Every route under `/api` with its documentation, from one place: each
/// module's `router()` registers its handlers with utoipa-axum's `routes!`,
/// which adds a route and its `#[utoipa::path]` together, so the router and
/// `/api/openapi.json` ([`openapi`]) cannot disagree.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(auth::router())
        .merge(health::router())
        .merge(proxy_status::router())
        .merge(components::router())
        .merge(graph::router())
        .merge(metrics::router())
        .merge(traces::router())
        .merge(events::router())
        .merge(config::router())
        .merge(canary::router())
        .merge(audit::router())
        .merge(openapi::router())
}

/// The API under `/api`, without static files. Every route is behind the
/// auth guard ([`auth`]), a body limit and a timeout ([`Limits`]).
pub fn app(state: AppState) -> Router {
    let limits = state.limits;
    let (api, _) = api_routes().split_for_parts();
    let api = api
        .fallback(any(api_not_found))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::guard::guard,
        ))
        // Outermost: an oversized body or a slow client is refused before
        // any credential is looked up.
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
        .layer(RequestBodyTimeoutLayer::new(limits.request_timeout))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ));
    Router::new()
        .nest("/api", api)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The API plus the built frontend from `static_dir`: unknown paths outside
/// `/api` get `index.html`, so client-side routes (`/graph`, `/traces/abc`)
/// survive a reload.
pub fn app_with_static(state: AppState, static_dir: &Path) -> Router {
    let index = static_dir.join("index.html");
    let files = ServeDir::new(static_dir).fallback(ServeFile::new(index));
    app(state).fallback_service(files)
}

async fn api_not_found(axum::extract::OriginalUri(uri): axum::extract::OriginalUri) -> ApiError {
    ApiError::NotFound(format!("no API endpoint at {}", uri.path()))
}
