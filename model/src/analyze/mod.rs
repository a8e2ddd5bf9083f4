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
mod telemetry;

/// Collects diagnostics for one resource.
struct Report<'a> {
    resource: String,
    out: &'a mut Vec<Diagnostic>,
}

impl Report<'_> {
    fn push(&mut self, severity: Severity, path: impl Into<String>, message: impl Into<String>) {
        self.out.push(Diagnostic {
            severity,
            resource: self.resource.clone(),
            path: path.into(),
            message: message.into(),
        });
    }
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Error, path, message);
    }
    fn warning(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Warning, path, message);
    }
}

/// Every diagnostic for a set of resources taken together (parse-time
/// diagnostics come from [`crate::parse_documents`]).
pub fn analyze(resources: &[Resource]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    duplicates(resources, &mut out);
    networking::check(resources, &mut out);
    security::check(resources, &mut out);
    telemetry::check(resources, &mut out);
    out
}

/// The same `Kind/namespace/name` twice: `kubectl apply` keeps only the last.
fn duplicates(resources: &[Resource], out: &mut Vec<Diagnostic>) {
    let mut seen = std::collections::HashSet::new();
    for r in resources {
        let key = r.key();
        if !seen.insert(key.clone()) {
            out.push(Diagnostic {
                severity: Severity::Warning,
                resource: key.to_string(),
                path: "metadata.name".into(),
                message: format!(
                    "{key} is defined more than once; applying the files keeps only the last \
                     definition. Remove or rename the other one"
                ),
            });
        }
    }
}

/// True when any diagnostic is an error (the control plane refuses such config).
pub fn has_errors(diagnostics: &[Diagnostic]) -> bool {
    diagnostics.iter().any(|d| d.severity == Severity::Error)
}
