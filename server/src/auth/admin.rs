//! User management for admins: `GET /api/users` lists the users and their
//! roles, `POST /api/users` with `{"name","role","password"}` adds one
//! (409 if the name is taken), `DELETE /api/users/{name}` removes one with
//! its sessions and API tokens. The guard lets only admins through.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use loupe_api::auth::NewUser;
use loupe_api::error::ErrorBody;

use super::{Principal, User};
use crate::AppState;
use crate::error::ApiError;

/// The console's users and their roles (admins).
#[utoipa::path(get, path = "/users", tag = "auth",
    responses((status = 200, body = Vec<User>), (status = 403, body = ErrorBody)))]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<User>>, ApiError> {
    Ok(Json(state.users.list().await?))
}

/// Adds a user (admins; 409 if the name is taken).
#[utoipa::path(post, path = "/users", tag = "auth", request_body = NewUser,
    responses((status = 201, body = User), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn add(
    State(state): State<AppState>,
    admin: Principal,
    body: Result<Json<NewUser>, JsonRejection>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let Json(new) = body?;
    let user = state.users.add(&new.name, new.role, &new.password).await?;
    tracing::info!(admin = %admin.user, user = %user.name, role = %user.role, "console user added through the API");
    Ok((StatusCode::CREATED, Json(user)))
}

/// Removes a user and revokes their sessions and API tokens (admins; an
/// admin cannot remove themselves, so the console always keeps one).
#[utoipa::path(delete, path = "/users/{name}", tag = "auth",
    params(("name" = String, Path, description = "the user to remove")),
    responses((status = 204, description = "removed"), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove(
    State(state): State<AppState>,
    admin: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if name == admin.user {
        return Err(ApiError::Conflict(format!(
            "{name} cannot remove themselves; another admin can"
        )));
    }
    if !state.users.remove(&name).await? {
        return Err(ApiError::NotFound(format!(
            "there is no user named {name:?}"
        )));
    }
    tracing::info!(admin = %admin.user, user = %name, "console user removed through the API");
    Ok(StatusCode::NO_CONTENT)
}
