//! User management for admins: `GET /api/users` lists the users and their
//! roles, `POST /api/users` with `{"name","role","password"}` adds one
//! (409 if the name is taken). The guard lets only admins through.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use serde::Deserialize;

use super::{Principal, Role, User};
use crate::AppState;
use crate::error::ApiError;

#[derive(Deserialize)]
pub struct NewUser {
    pub name: String,
    pub role: Role,
    pub password: String,
}

pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<User>>, ApiError> {
    Ok(Json(state.users.list().await?))
}

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
