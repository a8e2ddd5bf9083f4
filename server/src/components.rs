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

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::ApiError;

pub fn router() -> Router<AppState> {
    Router::new().route("/components", get(components))
}

/// One supervised process.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Part {
    pub name: String,
    /// Its process while it runs.
    pub pid: Option<u32>,
    pub running: bool,
    /// Restarts so far (0: still its first run).
    pub restarts: u32,
    /// When its current (or last) run started.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// How its last run ended (`signal: 9 (SIGKILL)`, `exit status: 1`).
    pub last_exit: Option<String>,
    pub last_exit_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Components {
    /// Whether a supervisor (`loupe demo`) reports its parts.
    pub supervised: bool,
    pub parts: Vec<Part>,
}

impl Components {
    /// Writes the record to `path` whole (a temporary file renamed over it),
    /// so a reader never sees half of it.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
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
}

/// Where the supervisor's record is, if the console was told.
#[derive(Clone, Debug, Default)]
pub struct ComponentsFile(pub Option<PathBuf>);

async fn components(State(state): State<AppState>) -> Result<Json<Components>, ApiError> {
    let Some(path) = state.components_file.0.clone() else {
        return Ok(Json(Components::default()));
    };
    let read = tokio::task::spawn_blocking(move || Components::read(&path))
        .await
        .map_err(|e| ApiError::bad_request(format!("reading the components record: {e}")))?;
    read.map(Json).map_err(ApiError::bad_request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_a_missing_one_has_no_parts() {
        let dir = tempfile_dir();
        let path = dir.join("parts.json");
        assert_eq!(Components::read(&path).unwrap().parts, vec![]);
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
        record.write(&path).unwrap();
        assert_eq!(Components::read(&path).unwrap(), record);
        std::fs::write(&path, "{").unwrap();
        assert!(
            Components::read(&path)
                .unwrap_err()
                .contains("not a components record")
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("loupe-components-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
