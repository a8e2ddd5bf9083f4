//! What can go wrong writing or reading the config store, each with what to fix.

use loupe_model::{Diagnostic, ResourceKey};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The config did not parse or validate; nothing was written.
    #[error("config refused, nothing was written:{}", list(diagnostics))]
    Invalid { diagnostics: Vec<Diagnostic> },

    /// A `put` whose body names a different resource than the request.
    #[error(
        "the body describes {found} but the request is for {expected}: make kind, metadata.namespace and metadata.name match"
    )]
    KeyMismatch {
        expected: ResourceKey,
        found: ResourceKey,
    },

    /// The resource (or the asked-for revision of it) is not in the store.
    #[error("{}", not_found(key, *revision))]
    NotFound {
        key: ResourceKey,
        revision: Option<i32>,
    },

    /// Another writer committed a revision of the same resource at the same
    /// time (only possible if something writes around this store).
    #[error("another change to {key} was committed at the same time; apply again")]
    Conflict { key: String },

    #[error("config store: {action} failed (is Postgres up? see DATABASE_URL)")]
    Database {
        action: &'static str,
        #[source]
        source: sqlx::Error,
    },
}

impl StoreError {
    pub(crate) fn db(action: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |source| StoreError::Database { action, source }
    }

    /// A refusal with one error diagnostic about `resource`.
    pub(crate) fn invalid(resource: String, path: &str, message: String) -> StoreError {
        StoreError::Invalid {
            diagnostics: vec![Diagnostic {
                severity: loupe_model::Severity::Error,
                resource,
                path: path.to_string(),
                message,
            }],
        }
    }
}

fn list(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| {
            if d.path.is_empty() {
                format!("\n  {}: {}", d.resource, d.message)
            } else {
                format!("\n  {} {}: {}", d.resource, d.path, d.message)
            }
        })
        .collect()
}

fn not_found(key: &ResourceKey, revision: Option<i32>) -> String {
    match revision {
        None => format!("{key} is not in the config store (list what is with `loupe get`)"),
        Some(r) => format!("{key} has no revision {r} (list them with `loupe history {key}`)"),
    }
}
