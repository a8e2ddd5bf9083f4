//! `GET /api/proxy-status`: what `istioctl proxy-status` shows, per proxy
//! the control plane has seen — connected or not, the config revision it
//! applied (ACKed) and whether that is the newest, the one it refused
//! (NACKed) and why, when it was last heard from. After a change, "applied
//! by N of M proxies" is the count of `SYNCED` among the connected ones.
//!
//! A snapshot's version is `config_revision * 1_000_000 + n` (see
//! `loupe_control::snapshot`), so the revision a proxy runs is its ACKed
//! version divided by a million.

use axum::Json;
use axum::extract::State;
use loupe_api::error::ErrorBody;
use loupe_control::registry::{WorkloadStatus, workload_statuses};
use loupe_control::snapshot::VERSIONS_PER_CONFIG;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(proxy_status))
}

/// A proxy's sync state, as istioctl names them.
pub use loupe_api::mesh::{ProxyStatus, ProxyStatusList, Sync};

fn revision(version: Option<i64>) -> Option<i64> {
    version.map(|v| v / VERSIONS_PER_CONFIG as i64)
}

/// One proxy's row, judged against the newest `config_revision`.
pub fn status(w: WorkloadStatus, config_revision: i64) -> ProxyStatus {
    let acked = revision(w.acked_version);
    let nacked = revision(w.nacked_version);
    let sync = if !w.connected {
        Sync::Disconnected
    } else if acked.is_some_and(|r| r >= config_revision) {
        Sync::Synced
    } else if nacked.is_some_and(|r| r >= config_revision) {
        Sync::Nacked
    } else {
        Sync::Stale
    };
    ProxyStatus {
        namespace: w.namespace,
        workload: w.name,
        service_account: w.service_account,
        address: w.inbound_address,
        gateway: w.gateway,
        connected: w.connected,
        acked_revision: acked,
        nacked_revision: nacked,
        nack_error: w.nack_error,
        last_seen: w.last_seen,
        sync,
    }
}

/// Every proxy the control plane has seen and the config revision it runs.
#[utoipa::path(get, path = "/proxy-status", tag = "mesh",
    responses((status = 200, body = ProxyStatusList), (status = 503, body = ErrorBody)))]
async fn proxy_status(State(state): State<AppState>) -> Result<Json<ProxyStatusList>, ApiError> {
    let config_revision = state.store.version().await?;
    let rows = workload_statuses(&state.pool)
        .await
        .map_err(ApiError::internal("reading the proxies status"))?;
    let proxies: Vec<ProxyStatus> = rows
        .into_iter()
        .map(|w| status(w, config_revision))
        .collect();
    Ok(Json(ProxyStatusList {
        config_revision,
        synced: proxies.iter().filter(|p| p.sync == Sync::Synced).count(),
        connected: proxies.iter().filter(|p| p.connected).count(),
        proxies,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(connected: bool, acked: Option<i64>, nacked: Option<i64>) -> WorkloadStatus {
        WorkloadStatus {
            namespace: "default".into(),
            name: "reviews-v1".into(),
            service_account: "bookinfo-reviews".into(),
            inbound_address: "127.0.0.1:1".into(),
            metrics_address: "127.0.0.1:2".into(),
            services: vec!["reviews".into()],
            gateway: false,
            connected,
            acked_version: acked,
            nacked_version: nacked,
            nack_error: nacked.map(|_| "bad".into()),
            last_seen: chrono::Utc::now(),
        }
    }

    #[test]
    fn sync_is_judged_against_the_newest_revision() {
        let m = VERSIONS_PER_CONFIG as i64;
        assert_eq!(
            status(row(true, Some(7 * m + 3), None), 7).sync,
            Sync::Synced
        );
        assert_eq!(
            status(row(true, Some(7 * m + 3), None), 7).acked_revision,
            Some(7)
        );
        assert_eq!(status(row(true, Some(6 * m), None), 7).sync, Sync::Stale);
        assert_eq!(status(row(true, None, None), 7).sync, Sync::Stale);
        assert_eq!(
            status(row(true, Some(6 * m), Some(7 * m)), 7).sync,
            Sync::Nacked
        );
        assert_eq!(
            status(row(false, Some(7 * m), None), 7).sync,
            Sync::Disconnected
        );
    }
}
