//! What the config store answers with.

use std::fmt;

use chrono::{DateTime, Utc};
use loupe_model::ResourceKey;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a write did to one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// First revision (or first after a deletion).
    Created,
    /// A new revision with different content.
    Configured,
    /// Same content as the current revision: nothing written.
    Unchanged,
    /// A deletion revision was written.
    Deleted,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Created => "created",
            Outcome::Configured => "configured",
            Outcome::Unchanged => "unchanged",
            Outcome::Deleted => "deleted",
        })
    }
}

/// The result of a write for one resource: its (new or current) revision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Applied {
    pub key: ResourceKey,
    pub revision: i32,
    pub outcome: Outcome,
}

/// The current revision of a resource.
#[derive(Clone, Debug, Serialize)]
pub struct StoredResource {
    pub key: ResourceKey,
    pub revision: i32,
    /// The resource as YAML (`loupe_model::to_yaml`).
    pub yaml: String,
    /// The resource as its Kubernetes JSON object.
    pub object: Value,
    pub author: String,
    pub created_at: DateTime<Utc>,
}

/// The newest revision of a resource, deletions included (what cluster
/// mode compares with the Kubernetes API to write console edits back).
#[derive(Clone, Debug)]
pub struct Newest {
    pub key: ResourceKey,
    pub revision: i32,
    /// The resource as its Kubernetes JSON object (before its deletion,
    /// for a deletion revision).
    pub object: Value,
    pub deleted: bool,
    pub author: String,
    /// Why it was written ([`super::MIRROR_MESSAGE`] for a mirror's write).
    pub message: String,
}

/// Who wrote the changes of one write: one author for all, or one per
/// resource with a fallback (a mirror knows each object's author).
#[derive(Clone, Copy, Debug)]
pub enum Authors<'a> {
    One(&'a str),
    Each {
        of: &'a std::collections::HashMap<ResourceKey, String>,
        otherwise: &'a str,
    },
}

impl Authors<'_> {
    pub fn of(&self, key: &ResourceKey) -> &str {
        match self {
            Authors::One(author) => author,
            Authors::Each { of, otherwise } => of.get(key).map(String::as_str).unwrap_or(otherwise),
        }
    }
}

/// One entry of a resource's history.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Revision {
    pub revision: i32,
    pub yaml: String,
    pub author: String,
    pub created_at: DateTime<Utc>,
    /// True for the revision that deleted the resource (its YAML is the
    /// content it had before).
    pub deleted: bool,
    /// Why it was written: `apply FILE`, `put`, `rollback to revision N`, `delete`.
    pub message: String,
}

/// One line of the audit log.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub actor: String,
    /// `created`, `configured` or `deleted`.
    pub action: String,
    /// `Kind/namespace/name`.
    pub resource: String,
    /// The revision the change wrote.
    pub revision: Option<i32>,
}

/// Which audit-log entries to read; `None` does not filter.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Who made the change (a console user, or `loupe apply --author`).
    pub actor: Option<String>,
    pub kind: Option<loupe_model::Kind>,
    pub namespace: Option<String>,
    pub limit: i64,
}
