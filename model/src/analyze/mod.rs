//! Validation of a set of resources: schema errors and cross-resource
//! references, each as a [`Diagnostic`] naming the resource and YAML path.

use serde::{Deserialize, Serialize};

use crate::resource::Resource;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding. `resource` is `Kind/namespace/name` (or the file name when
/// the file did not parse); `path` is the YAML path (`spec.http[0].route[1].weight`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub resource: String,
    pub path: String,
    pub message: String,
}

mod networking;
mod security;

/// Every diagnostic for a set of resources taken together (parse-time
/// diagnostics come from [`crate::parse_documents`]).
pub fn analyze(resources: &[Resource]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    networking::check(resources, &mut out);
    security::check(resources, &mut out);
    out
}

/// True when any diagnostic is an error (the control plane refuses such config).
pub fn has_errors(diagnostics: &[Diagnostic]) -> bool {
    diagnostics.iter().any(|d| d.severity == Severity::Error)
}
