//! Validation of one Istio object as the API server sends it, with
//! loupe-model's parser and analyzer — the same code as `loupe analyze` and
//! the console — for the validating webhook.
//!
//! The object is judged alone, as istiod's `validation.istio.io` judges it:
//! references to other objects (a Gateway, a subset) may be created in any
//! order, so what `analyze` says about them is at most a warning here.

use loupe_model::analyze::{Diagnostic, Severity};
use loupe_model::{Kind, analyze, parse_documents};

/// What the webhook answers for one object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verdict {
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

impl Verdict {
    pub fn allowed(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Validates `object` (the AdmissionRequest's `object`). Objects of kinds
/// loupe-model does not model (`Sidecar`, …) are allowed as they are.
pub fn validate(object: &serde_json::Value) -> Verdict {
    let kind = object.get("kind").and_then(serde_json::Value::as_str);
    if kind.and_then(Kind::from_kind_field).is_none() {
        return Verdict::default();
    }
    // JSON is YAML: the parser reads it as `loupe analyze` reads a file.
    let text = object.to_string();
    let parsed = parse_documents("admission request", &text);
    let mut diagnostics = parsed.diagnostics;
    diagnostics.extend(analyze(&parsed.resources));
    for d in &mut diagnostics {
        if d.severity == Severity::Error && is_reference(d) {
            d.severity = Severity::Warning;
        }
    }
    let (errors, warnings) = diagnostics
        .into_iter()
        .partition(|d| d.severity == Severity::Error);
    Verdict { errors, warnings }
}

/// Findings about another object, which may simply not be created yet: a
/// route's subset that no DestinationRule (of those `analyze` was given —
/// here, none) defines. Every other error `analyze` reports about one object
/// is about the object itself.
fn is_reference(d: &Diagnostic) -> bool {
    d.path.ends_with(".destination.subset") || d.path.ends_with(".mirror.subset")
}

/// One line per diagnostic: `spec.http[0].route: message`.
pub fn describe(diagnostic: &Diagnostic) -> String {
    if diagnostic.path.is_empty() {
        diagnostic.message.clone()
    } else {
        format!("{}: {}", diagnostic.path, diagnostic.message)
    }
}
