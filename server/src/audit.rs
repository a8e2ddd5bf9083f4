//! `GET /api/audit?user=&kind=&namespace=&limit=`: who changed which
//! resource when, newest first, from the control plane's audit log. Every
//! write through the console is recorded under the logged-in user.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use loupe_api::audit::{AuditEntry, AuditQuery};
use loupe_api::error::ErrorBody;
use loupe_control::AuditFilter;
use loupe_model::Kind;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;

/// Entries answered when `limit` is not given, and at most.
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(audit))
}

/// Who changed which resource when, newest first.
#[utoipa::path(get, path = "/audit", tag = "config", params(AuditQuery),
    responses((status = 200, body = Vec<AuditEntry>), (status = 400, body = ErrorBody)))]
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
    let entries = state.store.audit(&filter).await?;
    Ok(Json(
        entries
            .into_iter()
            .map(|e| AuditEntry {
                at: e.at,
                actor: e.actor,
                action: e.action,
                resource: e.resource,
                revision: e.revision,
            })
            .collect(),
    ))
}
