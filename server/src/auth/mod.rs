//! Who calls the console API and what they may do: local users with roles
//! (`viewer` reads, `editor` also changes config, `admin` also manages
//! users), browser sessions with CSRF tokens, and API tokens for the CLI
//! and automation — Grafana's and Kiali's model.
//!
//! Every `/api` request passes [`guard::guard`] before its handler:
//! 1. the route says what it needs ([`guard::access`]): nothing (login,
//!    logout, health), read, edit or admin;
//! 2. the caller is identified — `Authorization: Bearer TOKEN` (an API token;
//!    a bad one is refused, never ignored), else the session cookie, else,
//!    for reads only and only when the console runs with
//!    `--anonymous-viewer`, the anonymous viewer; no one → 401;
//! 3. the role must reach what the route needs → else 403;
//! 4. a write made with a session cookie must come from the console's own
//!    origin (`Origin`, else `Referer`, equal to `Host`) and carry the
//!    session's CSRF token in `X-CSRF-Token` → else 403. Bearer tokens are
//!    not sent by browsers on their own, so they need neither.
//!
//! Handlers then take the caller as a [`Principal`] and record its user as
//! the author of what they change.

mod admin;
pub mod guard;
mod login;
mod origin;
pub mod password;
pub mod secret;
mod throttle;
pub mod users;

use std::time::Duration;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use guard::Principal;
pub use throttle::LoginThrottle;
pub use users::{Session, User, UserError, Users};

use crate::AppState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "loupe_session";
/// The header a session's writes carry the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

pub use loupe_api::auth::Role;

/// How the console authenticates (`loupe console` flags).
#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// Reads without credentials, as the anonymous viewer (Kiali's
    /// `anonymous` strategy, read-only); writes still need a login.
    pub anonymous_viewer: bool,
    /// Mark the session cookie `Secure` (the console is reached over TLS,
    /// e.g. behind a TLS-terminating ingress).
    pub secure_cookies: bool,
    /// How long a login lasts.
    pub session_ttl: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            anonymous_viewer: false,
            secure_cookies: false,
            session_ttl: Duration::from_secs(12 * 3600),
        }
    }
}

/// `POST /login`, `POST /logout`, `GET /whoami`, `GET|POST /users` (admins).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login::login))
        .routes(routes!(login::logout))
        .routes(routes!(login::whoami))
        .routes(routes!(admin::list, admin::add))
        .routes(routes!(admin::remove))
}
