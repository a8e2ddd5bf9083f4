//! `GET /api/health`: the console is up and can reach its database. The
//! check is bounded ([`CHECK_TIMEOUT`]): a Postgres that hangs (stopped,
//! partitioned) is as unreachable as one that refuses connections, and the
//! console's degraded banner must say so within seconds, not after the
//! pool's acquire timeout.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use loupe_api::mesh::{DatabaseStatus, ServerHealth, ServiceStatus};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// How long the database may take to answer `SELECT 1`.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health))
}

/// Whether the console is up and reaches its database (no credentials needed).
#[utoipa::path(get, path = "/health", tag = "mesh", security(()),
    responses((status = 200, body = ServerHealth), (status = 503, body = ServerHealth)))]
async fn health(State(state): State<AppState>) -> (StatusCode, Json<ServerHealth>) {
    let check = tokio::time::timeout(CHECK_TIMEOUT, sqlx::query("SELECT 1").execute(&state.pool));
    match check.await {
        Ok(Ok(_)) => (
            StatusCode::OK,
            Json(ServerHealth {
                status: ServiceStatus::Ok,
                database: DatabaseStatus::Ok,
            }),
        ),
        outcome => {
            let error = match outcome {
                Ok(Err(e)) => e.to_string(),
                _ => format!("no answer within {CHECK_TIMEOUT:?}"),
            };
            tracing::warn!(%error, "health check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(ServerHealth {
                    status: ServiceStatus::Unavailable,
                    database: DatabaseStatus::Unreachable,
                }),
            )
        }
    }
}
