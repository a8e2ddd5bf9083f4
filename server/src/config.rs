//! Istio config over HTTP, read and written through the control plane's
//! [`ConfigStore`] — the one place that validates (`loupe-model`) and
//! versions config — so the console can never store what `loupe apply`
//! would refuse. This file is the whole boundary with `loupe-control`.
//!
//! - `GET    /api/config?kind=K` — current resources
//! - `POST   /api/config?source=FILE&dry_run=true` — apply a multi-document YAML/JSON body
//! - `GET    /api/config/{kind}/{namespace}/{name}` — the resource and its revisions
//! - `PUT    /api/config/{kind}/{namespace}/{name}` — replace it (YAML or JSON body)
//! - `DELETE /api/config/{kind}/{namespace}/{name}`
//! - `GET    /api/config/{kind}/{namespace}/{name}/history` — its revisions, newest first (deleted resources too)
//! - `POST   /api/config/{kind}/{namespace}/{name}/rollback?revision=N`

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use loupe_model::{Kind, ResourceKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use loupe_control::store::{Applied, ConfigStore, Revision, StoreError, StoredResource};

use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;

/// The body types a write reads (`Content-Type`, parameters ignored).
pub const ACCEPTED_TYPES: [&str; 4] = [
    "application/yaml",
    "application/x-yaml",
    "text/yaml",
    "application/json",
];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/config", get(list).post(apply))
        .route(
            "/config/{kind}/{namespace}/{name}",
            get(show).put(put).delete(delete),
        )
        .route("/config/{kind}/{namespace}/{name}/history", get(history))
        .route("/config/{kind}/{namespace}/{name}/rollback", post(rollback))
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid { diagnostics } => ApiError::Invalid {
                message: format!(
                    "config refused, nothing was written: {}",
                    diagnostics
                        .iter()
                        .filter(|d| d.severity == loupe_model::Severity::Error)
                        .map(|d| format!("{} {}: {}", d.resource, d.path, d.message))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                diagnostics,
            },
            e @ StoreError::KeyMismatch { .. } => ApiError::BadRequest(e.to_string()),
            e @ StoreError::NotFound { .. } => ApiError::NotFound(e.to_string()),
            e @ StoreError::Conflict { .. } => ApiError::Conflict(e.to_string()),
            StoreError::Database { action, source } => ApiError::from_sqlx(action, source),
        }
    }
}

/// `{kind}/{namespace}/{name}` from the path; the kind as Istio spells it,
/// its plural (`virtualservices`) or kubectl's short name (`vs`).
pub fn key(kind: &str, namespace: &str, name: &str) -> Result<ResourceKey, ApiError> {
    let kind = parse_kind(kind)?;
    if namespace.is_empty() || name.is_empty() {
        return Err(ApiError::bad_request(
            "namespace and name must not be empty",
        ));
    }
    Ok(ResourceKey {
        kind,
        namespace: namespace.to_string(),
        name: name.to_string(),
    })
}

fn parse_kind(kind: &str) -> Result<Kind, ApiError> {
    Kind::parse(kind).ok_or_else(|| {
        ApiError::bad_request(format!(
            "{kind:?} is not a kind Loupe stores: use one of {}",
            Kind::ALL.map(Kind::as_str).join(", ")
        ))
    })
}

/// One current resource, flat, as the console lists it.
#[derive(Debug, Serialize)]
pub struct ResourceJson {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    pub revision: i32,
    pub yaml: String,
    pub object: Value,
    pub author: String,
    pub created_at: DateTime<Utc>,
}

impl From<StoredResource> for ResourceJson {
    fn from(r: StoredResource) -> Self {
        ResourceJson {
            kind: r.key.kind,
            namespace: r.key.namespace,
            name: r.key.name,
            revision: r.revision,
            yaml: r.yaml,
            object: r.object,
            author: r.author,
            created_at: r.created_at,
        }
    }
}

/// What a write did: the resource's new (or unchanged) revision.
#[derive(Debug, Serialize)]
pub struct AppliedJson {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    pub revision: i32,
    /// `created`, `configured`, `unchanged` or `deleted`.
    pub outcome: String,
}

impl From<Applied> for AppliedJson {
    fn from(a: Applied) -> Self {
        AppliedJson {
            kind: a.key.kind,
            namespace: a.key.namespace,
            name: a.key.name,
            revision: a.revision,
            outcome: a.outcome.to_string(),
        }
    }
}

#[derive(Deserialize)]
struct ListQuery {
    kind: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Vec<ResourceJson>>, ApiError> {
    let Query(q) = query?;
    let kind = match q.kind.as_deref() {
        None | Some("") => None,
        Some(k) => Some(parse_kind(k)?),
    };
    let resources = state.store.list(kind).await?;
    Ok(Json(
        resources.into_iter().map(ResourceJson::from).collect(),
    ))
}

#[derive(Serialize)]
struct ResourceWithHistory {
    #[serde(flatten)]
    resource: ResourceJson,
    /// Newest first, deletions included.
    revisions: Vec<Revision>,
}

async fn show(
    State(state): State<AppState>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Result<Json<ResourceWithHistory>, ApiError> {
    let key = key(&kind, &namespace, &name)?;
    let resource = state.store.get(&key).await?.ok_or_else(|| {
        ApiError::NotFound(format!(
            "{key} is not in the config store (deleted resources keep their history: roll back to restore)"
        ))
    })?;
    let revisions = state.store.history(&key).await?;
    Ok(Json(ResourceWithHistory {
        resource: resource.into(),
        revisions,
    }))
}

async fn history(
    State(state): State<AppState>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Result<Json<Vec<Revision>>, ApiError> {
    let key = key(&kind, &namespace, &name)?;
    Ok(Json(state.store.history(&key).await?))
}

/// The body as text, YAML or JSON (JSON is YAML), when its `Content-Type`
/// says it is one of [`ACCEPTED_TYPES`]: a `text/plain` or form body, which a
/// cross-site page can send without asking, is never read as config.
fn body_text<'b>(headers: &HeaderMap, body: &'b axum::body::Bytes) -> Result<&'b str, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if !ACCEPTED_TYPES
        .iter()
        .any(|t| t.eq_ignore_ascii_case(essence))
    {
        return Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type {content_type:?} is not read here: send the config as one of {}",
            ACCEPTED_TYPES.join(", ")
        )));
    }
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not UTF-8 text: {e}")))?;
    if text.trim().is_empty() {
        return Err(ApiError::bad_request(
            "the body is empty: send the resource as YAML or JSON",
        ));
    }
    Ok(text)
}

async fn put(
    State(state): State<AppState>,
    principal: Principal,
    Path((kind, namespace, name)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<AppliedJson>, ApiError> {
    let key = key(&kind, &namespace, &name)?;
    let text = body_text(&headers, &body)?;
    let applied = state.store.put(&key, text, &principal.user).await?;
    Ok(Json(applied.into()))
}

async fn apply(
    State(state): State<AppState>,
    principal: Principal,
    query: Result<Query<ApplyQuery>, QueryRejection>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Vec<AppliedJson>>, ApiError> {
    let Query(q) = query?;
    let text = body_text(&headers, &body)?;
    let source = q
        .source
        .as_deref()
        .filter(|s| !s.is_empty())
        .unwrap_or("console");
    let texts = [(source, text)];
    let applied = if q.dry_run.unwrap_or(false) {
        state.store.dry_run(&texts, &principal.user).await?
    } else {
        state.store.apply_all(&texts, &principal.user).await?
    };
    Ok(Json(applied.into_iter().map(AppliedJson::from).collect()))
}

async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Result<Json<AppliedJson>, ApiError> {
    let key = key(&kind, &namespace, &name)?;
    Ok(Json(
        state.store.delete(&key, &principal.user).await?.into(),
    ))
}

#[derive(Deserialize)]
struct ApplyQuery {
    /// What the body is called in diagnostics and the revision message (a file name).
    source: Option<String>,
    /// Validate and answer what would change, writing nothing.
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
struct RollbackQuery {
    revision: Option<String>,
}

async fn rollback(
    State(state): State<AppState>,
    principal: Principal,
    Path((kind, namespace, name)): Path<(String, String, String)>,
    query: Result<Query<RollbackQuery>, QueryRejection>,
) -> Result<Json<AppliedJson>, ApiError> {
    let key = key(&kind, &namespace, &name)?;
    let Query(q) = query?;
    let revision = q
        .revision
        .as_deref()
        .and_then(|r| r.trim().parse::<i32>().ok())
        .filter(|r| *r > 0)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "rollback needs ?revision=N with N a revision of {key} (see GET /api/config/{}/{}/{})",
                key.kind, key.namespace, key.name
            ))
        })?;
    Ok(Json(
        state
            .store
            .rollback(&key, revision, &principal.user)
            .await?
            .into(),
    ))
}
