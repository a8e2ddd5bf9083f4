//! `loupe-server` is the console's HTTP server: the JSON API the frontend
//! (and scripts) use — the service graph built from the collector's metric
//! rollups ([`graph`]), trace search over the collector's spans
//! ([`traces`]), Istio config read and written through the control plane's
//! store ([`config`], [`canary`]), live change notifications over SSE
//! ([`events`]) — and the built frontend's static files.
//!
//! It owns no schema and no config logic: tables belong to `loupe-db`'s
//! migrations, validation and revisions to `loupe-control`'s `ConfigStore`.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod error;
pub mod events;
pub mod graph;
pub mod health;
pub mod params;
mod serve;
mod state;
pub mod traces;

use std::path::Path;

use axum::Router;
use axum::routing::any;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub use serve::{Options, ServerError, serve};
pub use state::AppState;

/// The API under `/api`, without static files.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .merge(health::router())
        .merge(graph::router())
        .merge(traces::router())
        .merge(events::router())
        .fallback(any(api_not_found));
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
