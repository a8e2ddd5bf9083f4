//! `GET /api/audit?user=&kind=&namespace=&limit=`: who changed which
//! resource when, newest first, from the control plane's audit log. Every
//! write through the console is recorded under the logged-in user.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use loupe_control::{AuditEntry, AuditFilter};
use loupe_model::Kind;
use serde::Deserialize;

use crate::AppState;
use crate::error::ApiError;

/// Entries answered when `limit` is not given, and at most.
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

pub fn router() -> Router<AppState> {
    Router::new().route("/audit", get(audit))
}

#[derive(Deserialize)]
struct AuditQuery {
    user: Option<String>,
    kind: Option<String>,
    namespace: Option<String>,
    limit: Option<i64>,
}

async fn audit(
    State(state): State<AppState>,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    let Query(q) = query?;
    let given = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
    let kind = given(q.kind)
        .map(|k| {
            Kind::parse(&k).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "{k:?} is not a kind Loupe stores: use one of {}",
                    Kind::ALL.map(Kind::as_str).join(", ")
                ))
            })
        })
        .transpose()?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let filter = AuditFilter {
        actor: given(q.user),
        kind,
        namespace: given(q.namespace),
        limit,
    };
    Ok(Json(state.store.audit(&filter).await?))
}
