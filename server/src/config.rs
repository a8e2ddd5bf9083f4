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

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use loupe_api::config::{
    self as json, ACCEPTED_TYPES, ApplyQuery, ListQuery, ResourceWithHistory, RollbackQuery,
};
use loupe_api::error::ErrorBody;
use loupe_model::{Kind, ResourceKey};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use loupe_control::store::{
    Applied, ConfigStore, Outcome, Revision, StoreError, StoredResource,
};

use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, apply))
        .routes(routes!(show, put, delete))
        .routes(routes!(history))
        .routes(routes!(rollback))
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

/// The API's view of a stored resource.
pub fn resource_json(r: StoredResource) -> json::Resource {
    json::Resource {
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

pub fn revision_json(r: Revision) -> json::Revision {
    json::Revision {
        revision: r.revision,
        yaml: r.yaml,
        author: r.author,
        created_at: r.created_at,
        deleted: r.deleted,
        message: r.message,
    }
}

pub fn outcome_json(o: Outcome) -> json::Outcome {
    match o {
        Outcome::Created => json::Outcome::Created,
        Outcome::Configured => json::Outcome::Configured,
        Outcome::Unchanged => json::Outcome::Unchanged,
        Outcome::Deleted => json::Outcome::Deleted,
    }
}

pub fn applied_json(a: Applied) -> json::Applied {
    json::Applied {
        kind: a.key.kind,
        namespace: a.key.namespace,
        name: a.key.name,
        revision: a.revision,
        outcome: outcome_json(a.outcome),
    }
}

/// The path of one resource, for the OpenAPI document.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
struct ResourcePath {
    /// `VirtualService`, `vs`, `DestinationRule`, … (see `loupe_model::Kind`).
    kind: String,
    namespace: String,
    name: String,
}

/// Current resources, all kinds or one.
#[utoipa::path(get, path = "/config", tag = "config", params(ListQuery),
    responses((status = 200, body = Vec<json::Resource>), (status = 400, body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Vec<json::Resource>>, ApiError> {
    let Query(q) = query?;
    let kind = match q.kind.as_deref() {
        None | Some("") => None,
        Some(k) => Some(parse_kind(k)?),
    };
    let resources = state.store.list(kind).await?;
    Ok(Json(resources.into_iter().map(resource_json).collect()))
}

/// One resource and its revisions, newest first.
#[utoipa::path(get, path = "/config/{kind}/{namespace}/{name}", tag = "config", params(ResourcePath),
    responses((status = 200, body = ResourceWithHistory), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
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
        resource: resource_json(resource),
        revisions: revisions.into_iter().map(revision_json).collect(),
    }))
}

/// A resource's revisions, newest first (deleted resources too).
#[utoipa::path(get, path = "/config/{kind}/{namespace}/{name}/history", tag = "config", params(ResourcePath),
    responses((status = 200, body = Vec<json::Revision>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn history(
    State(state): State<AppState>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Result<Json<Vec<json::Revision>>, ApiError> {
    let key = key(&kind, &namespace, &name)?;
    let revisions = state.store.history(&key).await?;
    Ok(Json(revisions.into_iter().map(revision_json).collect()))
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

/// Replaces a resource with the body (YAML or JSON), validated like `loupe apply`.
#[utoipa::path(put, path = "/config/{kind}/{namespace}/{name}", tag = "config", params(ResourcePath),
    request_body(content = String, content_type = "application/yaml", description = "the resource, YAML or JSON"),
    responses((status = 200, body = json::Applied), (status = 400, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put(
    State(state): State<AppState>,
    principal: Principal,
    Path((kind, namespace, name)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<json::Applied>, ApiError> {
    let key = key(&kind, &namespace, &name)?;
    let text = body_text(&headers, &body)?;
    let applied = state.store.put(&key, text, &principal.user).await?;
    Ok(Json(applied_json(applied)))
}

/// Applies a multi-document YAML/JSON body in one transaction (or, with
/// `dry_run=true`, says what it would write).
#[utoipa::path(post, path = "/config", tag = "config", params(ApplyQuery),
    request_body(content = String, content_type = "application/yaml", description = "one or more resources, YAML or JSON"),
    responses((status = 200, body = Vec<json::Applied>), (status = 400, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn apply(
    State(state): State<AppState>,
    principal: Principal,
    query: Result<Query<ApplyQuery>, QueryRejection>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Vec<json::Applied>>, ApiError> {
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
    Ok(Json(applied.into_iter().map(applied_json).collect()))
}

/// Deletes a resource (a deletion revision: its history stays).
#[utoipa::path(delete, path = "/config/{kind}/{namespace}/{name}", tag = "config", params(ResourcePath),
    responses((status = 200, body = json::Applied), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Result<Json<json::Applied>, ApiError> {
    let key = key(&kind, &namespace, &name)?;
    Ok(Json(applied_json(
        state.store.delete(&key, &principal.user).await?,
    )))
}

/// Makes an earlier revision's content current again, as a new revision.
#[utoipa::path(post, path = "/config/{kind}/{namespace}/{name}/rollback", tag = "config",
    params(ResourcePath, RollbackQuery),
    responses((status = 200, body = json::Applied), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn rollback(
    State(state): State<AppState>,
    principal: Principal,
    Path((kind, namespace, name)): Path<(String, String, String)>,
    query: Result<Query<RollbackQuery>, QueryRejection>,
) -> Result<Json<json::Applied>, ApiError> {
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
    Ok(Json(applied_json(
        state
            .store
            .rollback(&key, revision, &principal.user)
            .await?,
    )))
}
