//! User management for admins: `GET /api/users` lists the users and their
//! roles, `POST /api/users` with `{"name","role","password"}` adds one
//! (409 if the name is taken). The guard lets only admins through.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
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
