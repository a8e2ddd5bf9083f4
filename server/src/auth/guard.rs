//! The middleware in front of every `/api` route, and the [`Principal`]
//! extractor handlers take (see the module doc of [`crate::auth`] for the
//! order of the checks).

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::origin::check_same_origin;
use super::secret::same_secret;
use super::{CSRF_HEADER, Role, SESSION_COOKIE, UserError};
use crate::AppState;
use crate::error::ApiError;

/// Who is calling, once the guard let the request through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user: String,
    pub role: Role,
    pub via: Via,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Via {
    /// The session cookie of a browser login, with that session's CSRF token.
    Session { csrf_token: String },
    /// `Authorization: Bearer` with an API token.
    Token,
    /// No credentials, on a console run with `--anonymous-viewer`.
    Anonymous,
}

/// The user name the anonymous viewer reads as.
pub const ANONYMOUS: &str = "anonymous";

/// What a route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Login, logout, health: anyone.
    Public,
    Role(Role),
}

/// The access a request needs, from its method and its path under `/api`.
pub fn access(method: &Method, path: &str) -> Access {
    let path = path.strip_prefix("/api").unwrap_or(path);
    let under = |prefix: &str| {
        path == prefix
            || path
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    match (method, path) {
        (&Method::POST, "/login" | "/logout") | (&Method::GET | &Method::HEAD, "/health") => {
            Access::Public
        }
        _ if under("/users") => Access::Role(Role::Admin),
        _ if is_read(method) => Access::Role(Role::Viewer),
        _ if under("/config") || under("/canary") => Access::Role(Role::Editor),
        _ => Access::Role(Role::Admin),
    }
}

fn is_read(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

pub async fn guard(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    match admit(&state, &mut req).await {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

async fn admit(state: &AppState, req: &mut Request) -> Result<(), ApiError> {
    let needed = match access(req.method(), req.uri().path()) {
        Access::Public => return Ok(()),
        Access::Role(role) => role,
    };
    let principal = match identify(state, req.headers()).await? {
        Some(p) => p,
        None if needed == Role::Viewer && state.auth.anonymous_viewer => Principal {
            user: ANONYMOUS.to_string(),
            role: Role::Viewer,
            via: Via::Anonymous,
        },
        None => {
            return Err(ApiError::Unauthorized(
                "not logged in: log in (POST /api/login) or send `Authorization: Bearer TOKEN` \
                 (a token from `loupe user token NAME`)"
                    .into(),
            ));
        }
    };
    if principal.role < needed {
        return Err(ApiError::Forbidden(format!(
            "{} ({}) may not {} {}: that needs the {needed} role",
            principal.user,
            principal.role,
            req.method(),
            req.uri().path()
        )));
    }
    if !is_read(req.method())
        && let Via::Session { csrf_token } = &principal.via
    {
        check_same_origin(req.headers()).map_err(ApiError::Forbidden)?;
        let sent = req
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !same_secret(sent, csrf_token) {
            return Err(ApiError::Forbidden(
                "missing or wrong X-CSRF-Token header: send the csrf_token that \
                 POST /api/login or GET /api/whoami answered"
                    .into(),
            ));
        }
    }
    req.extensions_mut().insert(principal);
    Ok(())
}

/// The caller's credentials: a bearer token (a wrong one is an error, not
/// anonymity), else a live session cookie, else none.
async fn identify(state: &AppState, headers: &HeaderMap) -> Result<Option<Principal>, ApiError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or_else(|| {
                ApiError::Unauthorized("the Authorization header is not `Bearer TOKEN`".into())
            })?;
        let user = state.users.bearer(token).await?.ok_or_else(|| {
            ApiError::Unauthorized("unknown API token (revoked, or never issued)".into())
        })?;
        return Ok(Some(Principal {
            user: user.name,
            role: user.role,
            via: Via::Token,
        }));
    }
    let Some(token) = session_cookie(headers) else {
        return Ok(None);
    };
    Ok(state
        .users
        .session(token)
        .await?
        .map(|(user, csrf_token)| Principal {
            user: user.name,
            role: user.role,
            via: Via::Session { csrf_token },
        }))
}

/// The session token from the `Cookie` header(s).
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError::Unauthorized("not logged in".into()))
    }
}

impl From<UserError> for ApiError {
    fn from(e: UserError) -> Self {
        match e {
            e @ (UserError::BadName(_) | UserError::WeakPassword) => {
                ApiError::BadRequest(e.to_string())
            }
            e @ UserError::Exists(_) => ApiError::Conflict(e.to_string()),
            e @ UserError::NoSuchUser(_) => ApiError::NotFound(e.to_string()),
            UserError::Hash(message) => ApiError::Internal {
                context: "hashing a password",
                source: message.into(),
            },
            UserError::Database { action, source } => ApiError::from_sqlx(action, source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_need_what_their_method_and_path_say() {
        let r = |m: Method, p: &str| access(&m, p);
        assert_eq!(r(Method::POST, "/login"), Access::Public);
        assert_eq!(r(Method::GET, "/api/health"), Access::Public);
        assert_eq!(r(Method::GET, "/graph"), Access::Role(Role::Viewer));
        assert_eq!(r(Method::GET, "/whoami"), Access::Role(Role::Viewer));
        assert_eq!(
            r(Method::PUT, "/config/vs/default/reviews"),
            Access::Role(Role::Editor)
        );
        assert_eq!(r(Method::POST, "/config"), Access::Role(Role::Editor));
        assert_eq!(
            r(Method::PUT, "/canary/default/reviews"),
            Access::Role(Role::Editor)
        );
        assert_eq!(r(Method::POST, "/configx"), Access::Role(Role::Admin));
        assert_eq!(r(Method::GET, "/users"), Access::Role(Role::Admin));
        assert_eq!(r(Method::DELETE, "/anything"), Access::Role(Role::Admin));
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; loupe_session=abc ; b=2".parse().unwrap(),
        );
        assert_eq!(session_cookie(&h), Some("abc"));
        h.insert(header::COOKIE, "loupe_sessionx=abc".parse().unwrap());
        assert_eq!(session_cookie(&h), None);
    }
}
