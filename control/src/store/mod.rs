//! The config store of local mode: Istio resources in Postgres, every change
//! a new revision (YAML, Kubernetes JSON, author, time) and an audit-log line.
//!
//! Every write goes through one path (`ConfigStore::write`): in one
//! transaction, holding the config write lock, it reads the current config,
//! applies the change to a copy, validates the WHOLE resulting config with
//! `loupe_model::analyze`, and either writes all the new revisions (and
//! `NOTIFY loupe_config`) or nothing. A change is refused only for errors it
//! introduces: an error already in the stored config (say, after the model
//! grew stricter) does not block unrelated edits.

mod error;
mod rows;
mod types;

use std::collections::{BTreeMap, HashSet};

use loupe_model::{Diagnostic, Kind, Resource, ResourceKey, Severity};
use serde_json::Value;
use sqlx::PgPool;

pub use error::StoreError;
pub use rows::NOTIFY_CHANNEL;
pub use types::{
    Applied, AuditEntry, AuditFilter, Authors, Newest, Outcome, Revision, StoredResource,
};

/// The message of every revision a mirror writes ([`ConfigStore::mirror`]).
pub const MIRROR_MESSAGE: &str = "mirror";

/// A change to make in one write.
enum Change {
    Put(Box<Resource>),
    /// `must_exist`: deleting an absent resource is `NotFound` (otherwise `Unchanged`).
    Delete {
        key: ResourceKey,
        must_exist: bool,
    },
}

/// What a write validates.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Check {
    /// The whole resulting config: errors the change introduces refuse it.
    Whole,
    /// Nothing more: each resource was validated alone by the caller, and the
    /// config's source of truth is elsewhere ([`ConfigStore::mirror`]).
    Alone,
}

/// Whether a write is kept (or only checked, for a dry run).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Commit {
    Yes,
    No,
}

/// The config store. Cheap to clone (it holds a pool).
#[derive(Clone, Debug)]
pub struct ConfigStore {
    pool: PgPool,
}

impl ConfigStore {
    /// A store over an already migrated database (see `loupe_db::connect`).
    pub fn new(pool: PgPool) -> Self {
        ConfigStore { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies every Istio resource of a (multi-document) YAML or JSON text,
    /// like `kubectl apply -f`. `source` names the text in diagnostics (a
    /// file name). All-or-nothing: on any parse or validation error nothing
    /// is written and the error lists the diagnostics. Documents of other
    /// kinds (Service, Deployment, …) are skipped by the parser.
    pub async fn apply(
        &self,
        source: &str,
        yaml: &str,
        author: &str,
    ) -> Result<Vec<Applied>, StoreError> {
        self.apply_all(&[(source, yaml)], author).await
    }

    /// [`ConfigStore::apply`] of several texts (`(source, text)` pairs) as
    /// one all-or-nothing change, as `loupe apply -f a.yaml -f b.yaml` does.
    pub async fn apply_all(
        &self,
        texts: &[(&str, &str)],
        author: &str,
    ) -> Result<Vec<Applied>, StoreError> {
        self.apply_texts(texts, author, Commit::Yes).await
    }

    /// What [`ConfigStore::apply_all`] would do — the same validation, the
    /// same outcomes and revision numbers — writing nothing (`--dry-run`).
    pub async fn dry_run(
        &self,
        texts: &[(&str, &str)],
        author: &str,
    ) -> Result<Vec<Applied>, StoreError> {
        self.apply_texts(texts, author, Commit::No).await
    }

    async fn apply_texts(
        &self,
        texts: &[(&str, &str)],
        author: &str,
        commit: Commit,
    ) -> Result<Vec<Applied>, StoreError> {
        let mut diagnostics = Vec::new();
        let mut resources = Vec::new();
        let mut seen = HashSet::new();
        for (source, text) in texts {
            let parsed = loupe_model::parse_documents(source, text);
            diagnostics.extend(parsed.diagnostics);
            for r in parsed.resources {
                let key = r.key();
                if !seen.insert(key.clone()) {
                    diagnostics.push(Diagnostic {
                        severity: Severity::Error,
                        resource: key.to_string(),
                        path: "metadata.name".into(),
                        message: format!("{key} is given twice ({source}); keep one"),
                    });
                }
                resources.push(r);
            }
        }
        refuse_on_errors(&diagnostics)?;
        let sources: Vec<&str> = texts.iter().map(|(s, _)| *s).collect();
        let changes = resources
            .into_iter()
            .map(|r| Change::Put(Box::new(r)))
            .collect();
        let message = format!("apply {}", sources.join(", "));
        self.write(changes, author, &message, commit).await
    }

    /// Replaces one resource with `body` (YAML or JSON of exactly that
    /// resource), as the console's `PUT /api/config/{kind}/{ns}/{name}` does.
    pub async fn put(
        &self,
        key: &ResourceKey,
        body: &str,
        author: &str,
    ) -> Result<Applied, StoreError> {
        let parsed = loupe_model::parse_documents(&key.to_string(), body);
        refuse_on_errors(&parsed.diagnostics)?;
        let mut resources = parsed.resources;
        if resources.len() != 1 {
            return Err(StoreError::invalid(
                key.to_string(),
                "",
                format!(
                    "the body must hold exactly one Istio resource, it holds {}",
                    resources.len()
                ),
            ));
        }
        let resource = resources.remove(0);
        let found = resource.key();
        if &found != key {
            return Err(StoreError::KeyMismatch {
                expected: key.clone(),
                found,
            });
        }
        let applied = self
            .write(
                vec![Change::Put(Box::new(resource))],
                author,
                "put",
                Commit::Yes,
            )
            .await?;
        Ok(single(applied, key))
    }

    /// Deletes a resource (a deletion revision). Refused when the config
    /// without it is invalid (e.g. a VirtualService still routes to the
    /// subsets of the DestinationRule being deleted).
    pub async fn delete(&self, key: &ResourceKey, author: &str) -> Result<Applied, StoreError> {
        let change = Change::Delete {
            key: key.clone(),
            must_exist: true,
        };
        let applied = self
            .write(vec![change], author, "delete", Commit::Yes)
            .await?;
        Ok(single(applied, key))
    }

    /// Writes a new revision with the content of `revision` (validated like
    /// any change). Rolling back to a deletion revision deletes the resource.
    pub async fn rollback(
        &self,
        key: &ResourceKey,
        revision: i32,
        author: &str,
    ) -> Result<Applied, StoreError> {
        let mut conn = self.conn().await?;
        let row = rows::revision_of(&mut conn, key, revision)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                key: key.clone(),
                revision: Some(revision),
            })?;
        drop(conn);
        let change = if row.deleted {
            Change::Delete {
                key: key.clone(),
                must_exist: false,
            }
        } else {
            let resource = row.resource().ok_or_else(|| {
                StoreError::invalid(
                    key.to_string(),
                    "",
                    format!("revision {revision} no longer parses with this version of Loupe"),
                )
            })?;
            Change::Put(Box::new(resource))
        };
        let message = format!("rollback to revision {revision}");
        let applied = self
            .write(vec![change], author, &message, Commit::Yes)
            .await?;
        Ok(single(applied, key))
    }

    /// Makes the stored resources of `kinds` what a source of truth holds
    /// (cluster mode: the Istio objects in the Kubernetes API), in one
    /// transaction: each of `desired` is put (unchanged ones write nothing),
    /// and each stored resource of those kinds that is neither desired nor
    /// in `keep` is deleted. The caller validated each resource alone; the
    /// whole config is not judged again, because the source already holds
    /// it (what is wrong between objects is reported on the objects instead).
    pub async fn mirror(
        &self,
        kinds: &[Kind],
        desired: Vec<Resource>,
        keep: &HashSet<ResourceKey>,
        authors: Authors<'_>,
    ) -> Result<Vec<Applied>, StoreError> {
        let wanted: HashSet<ResourceKey> = desired.iter().map(Resource::key).collect();
        let mut deletes = Vec::new();
        for stored in self.list(None).await? {
            if kinds.contains(&stored.key.kind)
                && !wanted.contains(&stored.key)
                && !keep.contains(&stored.key)
            {
                deletes.push(stored.key);
            }
        }
        self.mirror_changes(desired, deletes, authors).await
    }

    /// What changed at the source of truth since the last mirror, in one
    /// transaction: `puts` (unchanged ones write nothing) and `deletes`
    /// (absent ones write nothing); every other stored resource is left as
    /// it is — a console edit not yet written back to the source included.
    pub async fn mirror_changes(
        &self,
        puts: Vec<Resource>,
        deletes: Vec<ResourceKey>,
        authors: Authors<'_>,
    ) -> Result<Vec<Applied>, StoreError> {
        let mut changes: Vec<Change> = deletes
            .into_iter()
            .map(|key| Change::Delete {
                key,
                must_exist: false,
            })
            .collect();
        changes.extend(puts.into_iter().map(|r| Change::Put(Box::new(r))));
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        self.write_checked(changes, authors, MIRROR_MESSAGE, Commit::Yes, Check::Alone)
            .await
    }

    /// The newest revision of every resource of `kinds`, deletions included.
    pub async fn newest(&self, kinds: &[Kind]) -> Result<Vec<Newest>, StoreError> {
        let mut conn = self.conn().await?;
        let rows = rows::latest(&mut conn, None).await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let key = row.key()?;
                kinds.contains(&key.kind).then_some(Newest {
                    key,
                    revision: row.revision,
                    object: row.object,
                    deleted: row.deleted,
                    author: row.author,
                    message: row.message,
                })
            })
            .collect())
    }

    /// The current (not deleted) resources, of one kind or all, sorted by
    /// kind, namespace, name.
    pub async fn list(&self, kind: Option<Kind>) -> Result<Vec<StoredResource>, StoreError> {
        let mut conn = self.conn().await?;
        let rows = rows::latest(&mut conn, kind).await?;
        Ok(rows.into_iter().filter_map(stored).collect())
    }

    /// The current revision of one resource; `None` if absent or deleted.
    pub async fn get(&self, key: &ResourceKey) -> Result<Option<StoredResource>, StoreError> {
        let mut conn = self.conn().await?;
        Ok(rows::latest_of(&mut conn, key).await?.and_then(stored))
    }

    /// Every revision of a resource, newest first (deletions included).
    /// `NotFound` if the resource never existed.
    pub async fn history(&self, key: &ResourceKey) -> Result<Vec<Revision>, StoreError> {
        let mut conn = self.conn().await?;
        let rows = rows::history(&mut conn, key).await?;
        if rows.is_empty() {
            return Err(StoreError::NotFound {
                key: key.clone(),
                revision: None,
            });
        }
        Ok(rows
            .into_iter()
            .map(|r| Revision {
                revision: r.revision,
                yaml: r.yaml,
                author: r.author,
                created_at: r.created_at,
                deleted: r.deleted,
                message: r.message,
            })
            .collect())
    }

    /// The whole current config and its version: the id of the newest
    /// revision, which only grows (every change, deletions included, adds a
    /// row).
    pub async fn current_resources(&self) -> Result<(i64, Vec<Resource>), StoreError> {
        let mut conn = self.conn().await?;
        let rows = rows::latest(&mut conn, None).await?;
        let version = rows.iter().map(|r| r.id).max().unwrap_or(0);
        let resources = rows
            .iter()
            .filter(|r| !r.deleted)
            .filter_map(rows::LatestRow::resource)
            .collect();
        Ok((version, resources))
    }

    /// Just the config version (cheap; see [`ConfigStore::current_resources`]).
    pub async fn version(&self) -> Result<i64, StoreError> {
        let mut conn = self.conn().await?;
        rows::version(&mut conn).await
    }

    /// The newest `limit` audit-log entries, newest first: who changed what.
    pub async fn audit_log(&self, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        self.audit(&AuditFilter {
            limit,
            ..AuditFilter::default()
        })
        .await
    }

    /// The newest audit-log entries that match `filter`, newest first.
    pub async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let mut conn = self.conn().await?;
        let rows = rows::audit_log(&mut conn, filter).await?;
        Ok(rows
            .into_iter()
            .map(|r| AuditEntry {
                at: r.at,
                actor: r.actor,
                action: r.action,
                resource: r.resource,
                revision: r.revision,
            })
            .collect())
    }

    async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, StoreError> {
        self.pool
            .acquire()
            .await
            .map_err(StoreError::db("connecting to the database"))
    }

    /// The one write path (see the module comment).
    async fn write(
        &self,
        changes: Vec<Change>,
        author: &str,
        message: &str,
        commit: Commit,
    ) -> Result<Vec<Applied>, StoreError> {
        self.write_checked(changes, Authors::One(author), message, commit, Check::Whole)
            .await
    }

    async fn write_checked(
        &self,
        changes: Vec<Change>,
        authors: Authors<'_>,
        message: &str,
        commit: Commit,
        check: Check,
    ) -> Result<Vec<Applied>, StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::db("starting a transaction"))?;
        rows::lock_for_write(&mut tx).await?;
        let latest: BTreeMap<ResourceKey, rows::LatestRow> = rows::latest(&mut tx, None)
            .await?
            .into_iter()
            .filter_map(|r| Some((r.key()?, r)))
            .collect();
        let current: BTreeMap<ResourceKey, Resource> = latest
            .iter()
            .filter(|(_, row)| !row.deleted)
            .filter_map(|(k, row)| Some((k.clone(), row.resource()?)))
            .collect();

        let mut next = current.clone();
        for change in &changes {
            match change {
                Change::Put(r) => {
                    next.insert(r.key(), (**r).clone());
                }
                Change::Delete { key, must_exist } => {
                    if next.remove(key).is_none() && *must_exist {
                        return Err(StoreError::NotFound {
                            key: key.clone(),
                            revision: None,
                        });
                    }
                }
            }
        }
        let introduced = match check {
            Check::Whole => introduced_errors(&current, &next),
            Check::Alone => Vec::new(),
        };
        if !introduced.is_empty() {
            return Err(StoreError::Invalid {
                diagnostics: introduced,
            });
        }

        let mut applied = Vec::with_capacity(changes.len());
        let mut newest_id = None;
        for change in &changes {
            let (key, row) = match change {
                Change::Put(r) => {
                    let key = r.key();
                    let row = latest.get(&key);
                    (key, row)
                }
                Change::Delete { key, .. } => (key.clone(), latest.get(key)),
            };
            let previous = row.map(|r| r.revision).unwrap_or(0);
            let live = row.filter(|r| !r.deleted);
            let (outcome, yaml, object, deleted) = match (change, live) {
                (Change::Put(r), live) => {
                    let object = kube_object(r)?;
                    match live {
                        Some(row) if row.object == object => {
                            (Outcome::Unchanged, None, object, false)
                        }
                        Some(_) => (
                            Outcome::Configured,
                            Some(loupe_model::to_yaml(std::slice::from_ref(r))),
                            object,
                            false,
                        ),
                        None => (
                            Outcome::Created,
                            Some(loupe_model::to_yaml(std::slice::from_ref(r))),
                            object,
                            false,
                        ),
                    }
                }
                (Change::Delete { .. }, Some(row)) => (
                    Outcome::Deleted,
                    Some(row.yaml.clone()),
                    row.object.clone(),
                    true,
                ),
                (Change::Delete { .. }, None) => (Outcome::Unchanged, None, Value::Null, true),
            };
            let Some(yaml) = yaml else {
                applied.push(Applied {
                    key,
                    revision: previous,
                    outcome,
                });
                continue;
            };
            let revision = previous + 1;
            let author = authors.of(&key);
            if commit == Commit::No {
                applied.push(Applied {
                    key,
                    revision,
                    outcome,
                });
                continue;
            }
            let id = rows::insert(
                &mut tx,
                rows::NewRevision {
                    key: &key,
                    revision,
                    yaml: &yaml,
                    object: &object,
                    deleted,
                    author,
                    message,
                },
                &outcome.to_string(),
            )
            .await?;
            newest_id = Some(id);
            tracing::info!(resource = %key, revision, %outcome, author, message, "config revision written");
            applied.push(Applied {
                key,
                revision,
                outcome,
            });
        }
        if commit == Commit::No {
            // Dropping the transaction rolls it back and releases the lock.
            return Ok(applied);
        }
        if let Some(version) = newest_id {
            rows::notify(&mut tx, version).await?;
        }
        tx.commit()
            .await
            .map_err(StoreError::db("committing the change"))?;
        Ok(applied)
    }
}

/// The resource as its Kubernetes JSON object (what proxies receive and the
/// `object` column holds).
pub fn kube_object(resource: &Resource) -> Result<Value, StoreError> {
    serde_json::to_value(resource).map_err(|e| {
        StoreError::invalid(
            resource.key().to_string(),
            "",
            format!("cannot be written as JSON: {e}"),
        )
    })
}

fn refuse_on_errors(diagnostics: &[Diagnostic]) -> Result<(), StoreError> {
    if loupe_model::analyze::has_errors(diagnostics) {
        return Err(StoreError::Invalid {
            diagnostics: diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .cloned()
                .collect(),
        });
    }
    Ok(())
}

/// Errors of the config after the change that the config before it did not have.
fn introduced_errors(
    before: &BTreeMap<ResourceKey, Resource>,
    after: &BTreeMap<ResourceKey, Resource>,
) -> Vec<Diagnostic> {
    let errors = |config: &BTreeMap<ResourceKey, Resource>| -> Vec<Diagnostic> {
        let resources: Vec<Resource> = config.values().cloned().collect();
        loupe_model::analyze(&resources)
            .into_iter()
            .filter(|d| d.severity == Severity::Error)
            .collect()
    };
    let old = errors(before);
    errors(after)
        .into_iter()
        .filter(|d| !old.contains(d))
        .collect()
}

fn stored(row: rows::LatestRow) -> Option<StoredResource> {
    if row.deleted {
        return None;
    }
    Some(StoredResource {
        key: row.key()?,
        revision: row.revision,
        yaml: row.yaml,
        object: row.object,
        author: row.author,
        created_at: row.created_at,
    })
}

/// The one `Applied` of a single-resource write.
fn single(mut applied: Vec<Applied>, key: &ResourceKey) -> Applied {
    applied.pop().unwrap_or_else(|| Applied {
        key: key.clone(),
        revision: 0,
        outcome: Outcome::Unchanged,
    })
}
