//! `POST /api/login`, `POST /api/logout`, `GET /api/whoami`.

use std::net::SocketAddr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use loupe_api::auth::{LoginRequest, WhoAmI};
use loupe_api::error::ErrorBody;

use super::SESSION_COOKIE;
use super::guard::{Principal, Via, session_cookie};
use super::origin::check_same_origin;
use super::throttle::FAILURE_DELAY;
use crate::AppState;
use crate::error::ApiError;

/// The one answer to a wrong user, a wrong password, or both.
const INVALID: &str = "invalid user or password";

/// Opens a browser session: the `loupe_session` cookie and the CSRF token.
#[utoipa::path(post, path = "/login", tag = "auth", security(()), request_body = LoginRequest,
    responses((status = 200, body = WhoAmI, description = "and `Set-Cookie: loupe_session=…`"),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    client: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body?;
    // Another site must not log a visitor in under its own account.
    if headers.contains_key(header::ORIGIN) {
        check_same_origin(&headers).map_err(ApiError::Forbidden)?;
    }
    let client = client.map(|Extension(ConnectInfo(addr))| addr.ip());
    if let Some(retry_after_s) = state.login_throttle.locked(&req.user, client) {
        return Err(ApiError::TooManyRequests {
            message: format!("too many failed logins; try again in {retry_after_s} s"),
            retry_after_s,
        });
    }
    let Some(user) = state.users.verify(&req.user, &req.password).await? else {
        state.login_throttle.failed(&req.user, client);
        tracing::warn!(user = %req.user, ?client, "failed console login");
        tokio::time::sleep(FAILURE_DELAY).await;
        return Err(ApiError::Unauthorized(INVALID.into()));
    };
    state.login_throttle.succeeded(&user.name, client);
    let ttl = state.auth.session_ttl;
    let session = state.users.open_session(&user.name, ttl).await?;
    tracing::info!(user = %user.name, role = %user.role, "console login");
    let cookie = format!(
        "{SESSION_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        session.token,
        ttl.as_secs(),
        if state.auth.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    );
    let body = WhoAmI {
        user: user.name,
        role: user.role,
        csrf_token: Some(session.csrf_token),
    };
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

/// Closes the session of the cookie, if any.
#[utoipa::path(post, path = "/logout", tag = "auth", security(()),
    responses((status = 204, description = "logged out; the cookie is cleared")))]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(token) = session_cookie(&headers) {
        state.users.close_session(token).await?;
    }
    let cookie = format!(
        "{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
        if state.auth.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    );
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

/// Who the credentials are.
#[utoipa::path(get, path = "/whoami", tag = "auth",
    responses((status = 200, body = WhoAmI), (status = 401, body = ErrorBody)))]
pub async fn whoami(principal: Principal) -> Json<WhoAmI> {
    let csrf_token = match principal.via {
        Via::Session { csrf_token } => Some(csrf_token),
        Via::Token | Via::Anonymous => None,
    };
    Json(WhoAmI {
        user: principal.user,
        role: principal.role,
        csrf_token,
    })
}
