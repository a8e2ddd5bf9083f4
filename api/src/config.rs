//! `/api/config`: Istio resources as the control plane's store keeps them,
//! their revisions, and what a write did.

use chrono::{DateTime, Utc};
use loupe_model::Kind;
use serde::{Deserialize, Serialize};

/// The media types a config body may have.
pub const ACCEPTED_TYPES: [&str; 4] = [
    "application/yaml",
    "application/x-yaml",
    "text/yaml",
    "application/json",
];

/// Query of `GET /api/config`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct ListQuery {
    /// Only this kind (`VirtualService`, `vs`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// Query of `POST /api/config`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct ApplyQuery {
    /// Where the text came from (file names), recorded with the revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Validate and answer what would be written, writing nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
}

/// Query of `POST /api/config/{kind}/{namespace}/{name}/rollback`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct RollbackQuery {
    /// The revision whose content becomes current again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

/// A resource's current revision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Resource {
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "VirtualService"))]
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    pub revision: i32,
    /// The text as it was written.
    pub yaml: String,
    /// The same resource as Kubernetes JSON.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub object: serde_json::Value,
    pub author: String,
    pub created_at: DateTime<Utc>,
}

/// `GET /api/config/{kind}/{namespace}/{name}`: the resource and its revisions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResourceWithHistory {
    #[serde(flatten)]
    pub resource: Resource,
    /// Newest first.
    pub revisions: Vec<Revision>,
}

/// One stored revision of a resource.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// What a write did to one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Configured => "configured",
            Outcome::Unchanged => "unchanged",
            Outcome::Deleted => "deleted",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The answer to a write, per resource written (`POST` answers a list).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Applied {
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "VirtualService"))]
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    pub revision: i32,
    pub outcome: Outcome,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_with_history_is_flat_on_the_wire_and_reads_back() {
        let at: DateTime<Utc> = "2026-12-02T04:00:00Z".parse().unwrap();
        let detail = ResourceWithHistory {
            resource: Resource {
                kind: Kind::VirtualService,
                namespace: "default".into(),
                name: "reviews".into(),
                revision: 3,
                yaml: "kind: VirtualService".into(),
                object: serde_json::json!({"kind": "VirtualService"}),
                author: "admin".into(),
                created_at: at,
            },
            revisions: vec![Revision {
                revision: 3,
                yaml: "kind: VirtualService".into(),
                author: "admin".into(),
                created_at: at,
                deleted: false,
                message: "put".into(),
            }],
        };
        let wire = serde_json::to_value(&detail).unwrap();
        assert_eq!(wire["kind"], "VirtualService");
        assert_eq!(wire["revision"], 3);
        assert_eq!(wire["created_at"], "2026-12-02T04:00:00Z");
        assert_eq!(wire["revisions"][0]["message"], "put");
        let back: ResourceWithHistory = serde_json::from_value(wire).unwrap();
        assert_eq!(back, detail);
    }

    #[test]
    fn outcomes_are_lowercase_words() {
        let applied: Applied = serde_json::from_str(
            r#"{"kind":"DestinationRule","namespace":"default","name":"reviews","revision":1,"outcome":"unchanged"}"#,
        )
        .unwrap();
        assert_eq!(applied.outcome, Outcome::Unchanged);
        assert_eq!(applied.outcome.to_string(), "unchanged");
    }
}
