//! The SQL of the config store and the rows it reads. A resource's current
//! state is its newest revision in `config_revisions`; a deletion is a
//! revision with `deleted = true`.

use chrono::{DateTime, Utc};
use loupe_model::{Kind, Resource, ResourceKey};
use serde_json::Value;
use sqlx::PgConnection;

use super::StoreError;
use super::types::AuditFilter;

/// Serializes every writer of the config (one transaction at a time holds
/// it), so revision numbers are assigned without races.
const CONFIG_WRITE_LOCK: i64 = 0x6c6f_7570_6563_6667; // "loupecfg"

/// The channel `NOTIFY`ed after each committed change; the payload is the
/// new config version.
pub const NOTIFY_CHANNEL: &str = "loupe_config";

/// The newest revision of one resource.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct LatestRow {
    pub id: i64,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub revision: i32,
    pub yaml: String,
    pub object: Value,
    pub deleted: bool,
    pub author: String,
    pub message: String,
    pub created_at: DateTime<Utc>,
}

impl LatestRow {
    pub fn key(&self) -> Option<ResourceKey> {
        Some(ResourceKey {
            kind: kind_from_db(&self.kind)?,
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        })
    }

    /// The stored resource parsed back with the model. `None` (and a log
    /// line) when a stored revision no longer parses, so one bad row cannot
    /// stop the rest of the config from being served.
    pub fn resource(&self) -> Option<Resource> {
        let source = format!(
            "{}/{}/{} revision {}",
            self.kind, self.namespace, self.name, self.revision
        );
        let parsed = loupe_model::parse_documents(&source, &self.yaml);
        let mut resources = parsed.resources.into_iter();
        match (resources.next(), resources.next()) {
            (Some(r), None) if !loupe_model::analyze::has_errors(&parsed.diagnostics) => Some(r),
            _ => {
                tracing::error!(resource = %source, diagnostics = ?parsed.diagnostics, "stored revision no longer parses; skipped");
                None
            }
        }
    }
}

/// `Kind::as_str` back to a kind (exact spelling, as the store writes it).
pub(crate) fn kind_from_db(s: &str) -> Option<Kind> {
    Kind::ALL.into_iter().find(|k| k.as_str() == s)
}

const LATEST: &str = "SELECT DISTINCT ON (kind, namespace, name)
        id, kind, namespace, name, revision, yaml, object, deleted, author, message, created_at
    FROM config_revisions
    WHERE ($1::text IS NULL OR kind = $1)
    ORDER BY kind, namespace, name, revision DESC";

/// The newest revision of every resource (deleted ones included), of one
/// kind or all.
pub(crate) async fn latest(
    conn: &mut PgConnection,
    kind: Option<Kind>,
) -> Result<Vec<LatestRow>, StoreError> {
    sqlx::query_as::<_, LatestRow>(LATEST)
        .bind(kind.map(Kind::as_str))
        .fetch_all(conn)
        .await
        .map_err(StoreError::db("reading the current config"))
}

pub(crate) async fn latest_of(
    conn: &mut PgConnection,
    key: &ResourceKey,
) -> Result<Option<LatestRow>, StoreError> {
    sqlx::query_as::<_, LatestRow>(
        "SELECT id, kind, namespace, name, revision, yaml, object, deleted, author, message, created_at
         FROM config_revisions WHERE kind = $1 AND namespace = $2 AND name = $3
         ORDER BY revision DESC LIMIT 1",
    )
    .bind(key.kind.as_str())
    .bind(&key.namespace)
    .bind(&key.name)
    .fetch_optional(conn)
    .await
    .map_err(StoreError::db("reading a resource"))
}

pub(crate) async fn revision_of(
    conn: &mut PgConnection,
    key: &ResourceKey,
    revision: i32,
) -> Result<Option<LatestRow>, StoreError> {
    sqlx::query_as::<_, LatestRow>(
        "SELECT id, kind, namespace, name, revision, yaml, object, deleted, author, message, created_at
         FROM config_revisions WHERE kind = $1 AND namespace = $2 AND name = $3 AND revision = $4",
    )
    .bind(key.kind.as_str())
    .bind(&key.namespace)
    .bind(&key.name)
    .bind(revision)
    .fetch_optional(conn)
    .await
    .map_err(StoreError::db("reading a revision"))
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct HistoryRow {
    pub revision: i32,
    pub yaml: String,
    pub author: String,
    pub created_at: DateTime<Utc>,
    pub deleted: bool,
    pub message: String,
}

pub(crate) async fn history(
    conn: &mut PgConnection,
    key: &ResourceKey,
) -> Result<Vec<HistoryRow>, StoreError> {
    sqlx::query_as::<_, HistoryRow>(
        "SELECT revision, yaml, author, created_at, deleted, message
         FROM config_revisions WHERE kind = $1 AND namespace = $2 AND name = $3
         ORDER BY revision DESC",
    )
    .bind(key.kind.as_str())
    .bind(&key.namespace)
    .bind(&key.name)
    .fetch_all(conn)
    .await
    .map_err(StoreError::db("reading history"))
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct AuditRow {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub resource: String,
    pub revision: Option<i32>,
}

pub(crate) async fn audit_log(
    conn: &mut PgConnection,
    filter: &AuditFilter,
) -> Result<Vec<AuditRow>, StoreError> {
    // `resource` is `Kind/namespace/name` (ResourceKey's Display).
    sqlx::query_as::<_, AuditRow>(
        "SELECT a.at, a.actor, a.action, a.resource, r.revision
         FROM audit_log a LEFT JOIN config_revisions r ON r.id = a.revision_id
         WHERE ($2::text IS NULL OR a.actor = $2)
           AND ($3::text IS NULL OR split_part(a.resource, '/', 1) = $3)
           AND ($4::text IS NULL OR split_part(a.resource, '/', 2) = $4)
         ORDER BY a.id DESC LIMIT $1",
    )
    .bind(filter.limit.max(0))
    .bind(filter.actor.as_deref())
    .bind(filter.kind.map(|k| k.as_str()))
    .bind(filter.namespace.as_deref())
    .fetch_all(conn)
    .await
    .map_err(StoreError::db("reading the audit log"))
}

/// The config version: the id of the newest revision (0 for an empty store).
pub(crate) async fn version(conn: &mut PgConnection) -> Result<i64, StoreError> {
    sqlx::query_scalar::<_, i64>("SELECT COALESCE(max(id), 0) FROM config_revisions")
        .fetch_one(conn)
        .await
        .map_err(StoreError::db("reading the config version"))
}

/// Waits for (and, until the transaction ends, holds) the config write lock.
pub(crate) async fn lock_for_write(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(CONFIG_WRITE_LOCK)
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(StoreError::db("locking the config for writing"))
}

/// One new revision row.
pub(crate) struct NewRevision<'a> {
    pub key: &'a ResourceKey,
    pub revision: i32,
    pub yaml: &'a str,
    pub object: &'a Value,
    pub deleted: bool,
    pub author: &'a str,
    pub message: &'a str,
}

/// Inserts a revision and its audit-log line; returns the revision's id.
pub(crate) async fn insert(
    conn: &mut PgConnection,
    rev: NewRevision<'_>,
    action: &str,
) -> Result<i64, StoreError> {
    let id = sqlx::query_scalar::<_, i64>(
        "INSERT INTO config_revisions (kind, namespace, name, revision, yaml, object, deleted, author, message)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(rev.key.kind.as_str())
    .bind(&rev.key.namespace)
    .bind(&rev.key.name)
    .bind(rev.revision)
    .bind(rev.yaml)
    .bind(rev.object)
    .bind(rev.deleted)
    .bind(rev.author)
    .bind(rev.message)
    .fetch_one(&mut *conn)
    .await
    .map_err(|source| match &source {
        sqlx::Error::Database(e) if e.code().as_deref() == Some("23505") => StoreError::Conflict {
            key: rev.key.to_string(),
        },
        _ => StoreError::Database {
            action: "writing a revision",
            source,
        },
    })?;
    sqlx::query(
        "INSERT INTO audit_log (actor, action, resource, revision_id, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(rev.author)
    .bind(action)
    .bind(rev.key.to_string())
    .bind(id)
    .bind(serde_json::json!({ "revision": rev.revision, "message": rev.message }))
    .execute(conn)
    .await
    .map_err(StoreError::db("writing the audit log"))?;
    Ok(id)
}

/// Wakes every listener (the pushers) once the transaction commits.
pub(crate) async fn notify(conn: &mut PgConnection, version: i64) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(NOTIFY_CHANNEL)
        .bind(version.to_string())
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(StoreError::db("notifying the control plane"))
}
