//! `GET /api/health`: the console is up and can reach its database.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use loupe_api::mesh::{DatabaseStatus, ServerHealth, ServiceStatus};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health))
}

/// Whether the console is up and reaches its database (no credentials needed).
#[utoipa::path(get, path = "/health", tag = "mesh", security(()),
    responses((status = 200, body = ServerHealth), (status = 503, body = ServerHealth)))]
async fn health(State(state): State<AppState>) -> (StatusCode, Json<ServerHealth>) {
    match sqlx::query("SELECT 1").execute(&state.pool).await {
        Ok(_) => (
            StatusCode::OK,
            Json(ServerHealth {
                status: ServiceStatus::Ok,
                database: DatabaseStatus::Ok,
            }),
        ),
        Err(error) => {
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
