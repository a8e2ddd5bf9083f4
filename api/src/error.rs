//! The body of every error answer: `{"error": "..."}`, plus the
//! diagnostics on 422 (refused config).

use loupe_model::Diagnostic;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// What was wrong, said so the caller can fix it.
    pub error: String,
    /// On 422: each problem, the resource and YAML path it is at.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<DiagnosticSchema>))]
    pub diagnostics: Vec<Diagnostic>,
}

/// The schema of `loupe_model::Diagnostic`, for the OpenAPI document only.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(as = Diagnostic)]
#[allow(dead_code)]
pub struct DiagnosticSchema {
    /// `error` or `warning`.
    severity: String,
    /// `Kind/namespace/name`, or the file when it did not parse.
    resource: String,
    /// The YAML path, e.g. `spec.http[0].route[1].weight`.
    path: String,
    message: String,
}
