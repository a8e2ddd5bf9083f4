//! `GET /api/components`: the mesh's own parts and how they are doing, as
//! `kubectl get pods` shows RESTARTS. When `loupe demo` runs the console it
//! passes its supervisor's record (`loupe console --components-file`): per
//! part its pid, whether it runs or waits out its restart backoff, how often
//! it was restarted, and its last exit and when. Without a record (a console
//! run on its own): `{"supervised": false, "parts": []}`.
//!
//! The record is written by the supervisor ([`Components::write`], whole
//! file replaced atomically) and read here on every request.

use std::path::{Path, PathBuf};

use axum::Json;
use axum::extract::State;
use loupe_api::error::ErrorBody;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(components))
}

pub use loupe_api::mesh::{Components, Part};

/// Writes the record to `path` whole (a temporary file renamed over it),
/// so a reader never sees half of it.
pub fn write(record: &Components, path: &Path) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(record)?)?;
    std::fs::rename(&tmp, path)
}

/// The record at `path`; none written yet reads as no parts.
pub fn read(path: &Path) -> Result<Components, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| format!("{} is not a components record: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Components {
            supervised: true,
            parts: Vec::new(),
        }),
        Err(e) => Err(format!("reading {}: {e}", path.display())),
    }
}

/// Where the supervisor's record is, if the console was told.
#[derive(Clone, Debug, Default)]
pub struct ComponentsFile(pub Option<PathBuf>);

/// `loupe demo`'s supervised parts and their restarts.
#[utoipa::path(get, path = "/components", tag = "mesh",
    responses((status = 200, body = Components), (status = 400, body = ErrorBody)))]
async fn components(State(state): State<AppState>) -> Result<Json<Components>, ApiError> {
    let Some(path) = state.components_file.0.clone() else {
        return Ok(Json(Components::default()));
    };
    let record = tokio::task::spawn_blocking(move || read(&path))
        .await
        .map_err(|e| ApiError::bad_request(format!("reading the components record: {e}")))?;
    record.map(Json).map_err(ApiError::bad_request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_a_missing_one_has_no_parts() {
        let dir = tempfile_dir();
        let path = dir.join("parts.json");
        assert_eq!(read(&path).unwrap().parts, vec![]);
        let record = Components {
            supervised: true,
            parts: vec![Part {
                name: "control".into(),
                pid: Some(42),
                running: true,
                restarts: 1,
                started_at: chrono::Utc::now(),
                last_exit: Some("signal: 9 (SIGKILL)".into()),
                last_exit_at: Some(chrono::Utc::now()),
            }],
        };
        write(&record, &path).unwrap();
        assert_eq!(read(&path).unwrap(), record);
        std::fs::write(&path, "{").unwrap();
        assert!(read(&path).unwrap_err().contains("not a components record"));
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("loupe-components-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
