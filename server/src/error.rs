//! The one error type of the HTTP API. Bad input becomes a 4xx whose message
//! says what was wrong; internal failures are logged with their cause and
//! answered with a generic 500, so database details never reach the browser.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use loupe_api::error::ErrorBody;
use loupe_model::Diagnostic;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A query parameter, path segment or body the client must fix.
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// No (valid) credentials: log in, or send `Authorization: Bearer TOKEN`.
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated, but the role or the request's origin does not allow it.
    #[error("{0}")]
    Forbidden(String),
    /// The body's `Content-Type` is not one the endpoint reads.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The body is over the console's limit (`loupe console --max-body`).
    #[error("the request body is too large")]
    PayloadTooLarge,
    /// Too many failed logins; `retry_after_s` says when to try again.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after_s: u64 },
    /// Well-formed but refused config: the diagnostics say where and why.
    #[error("{message}")]
    Invalid {
        message: String,
        diagnostics: Vec<Diagnostic>,
    },
    /// The request conflicts with the stored state (concurrent change, constraint).
    #[error("{0}")]
    Conflict(String),
    /// A capped resource is full (e.g. event streams); retrying later may work.
    #[error("{0}")]
    Busy(String),
    /// The database is unreachable; retrying later may work.
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// Anything else: logged with `context`, shown as a bare 500.
    #[error("{context}: {source}")]
    Internal {
        context: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest(message.into())
    }

    pub fn internal(context: &'static str) -> impl FnOnce(sqlx::Error) -> ApiError {
        move |source| ApiError::from_sqlx(context, source)
    }

    /// Maps a database error: constraint violations are the client's
    /// conflict (409), a lost connection is 503, the rest is a 500.
    pub fn from_sqlx(context: &'static str, source: sqlx::Error) -> Self {
        match &source {
            sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("23")) => {
                ApiError::Conflict(format!("{context}: the change conflicts with stored data"))
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                ApiError::Unavailable(source)
            }
            _ => ApiError::Internal {
                context,
                source: Box::new(source),
            },
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unavailable(_) | ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = match &self {
            ApiError::TooManyRequests { retry_after_s, .. } => Some(*retry_after_s),
            _ => None,
        };
        let shown = match &self {
            ApiError::Unavailable(source) => {
                tracing::warn!(error = %source, "database unavailable");
                "the database is unavailable, try again shortly".to_string()
            }
            ApiError::Internal { context, source } => {
                tracing::error!(context, error = %source, "request failed");
                "internal error (see the console server's log)".to_string()
            }
            other => other.to_string(),
        };
        let diagnostics = match self {
            ApiError::Invalid { diagnostics, .. } => diagnostics,
            _ => Vec::new(),
        };
        let body = ErrorBody {
            error: shown,
            diagnostics,
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(retry_after_s) = retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(retry_after_s),
            );
        }
        response
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(r: axum::extract::rejection::QueryRejection) -> Self {
        ApiError::BadRequest(format!("bad query string: {}", r.body_text()))
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(r: axum::extract::rejection::JsonRejection) -> Self {
        use axum::extract::rejection::JsonRejection;
        match r {
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType(
                "this endpoint reads JSON: send `Content-Type: application/json`".into(),
            ),
            r if r.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            r => ApiError::BadRequest(format!("bad JSON body: {}", r.body_text())),
        }
    }
}
