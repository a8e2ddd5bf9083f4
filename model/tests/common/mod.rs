//! Helpers shared by the security tests: YAML → resources (through the
//! real parser), JSON → request.

#![allow(dead_code)]

use loupe_model::analyze::Severity;
use loupe_model::resource::Resource;
use loupe_model::{Request, parse_documents};

/// Parses a multi-document YAML text; the test YAML must have no errors.
pub fn resources(yaml: &str) -> Vec<Resource> {
    let parsed = parse_documents("test.yaml", yaml);
    let errors: Vec<_> = parsed
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    assert!(errors.is_empty(), "test YAML has errors: {errors:?}");
    parsed.resources
}

pub fn request(json: &str) -> Request {
    serde_json::from_str(json).expect("test request JSON parses")
}
