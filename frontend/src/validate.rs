//! In-browser validation of an edited resource with `loupe-model`: the
//! control plane's own parser and analyzer, so what the editor accepts is
//! what the server accepts.
//!
//! The edit is analyzed together with every other stored resource, since
//! many problems are cross-resource (a route to a subset no DestinationRule
//! defines). Findings on other resources are shown only when the edit caused
//! them, so pre-existing problems elsewhere do not block this save.

use loupe_model::{Diagnostic, Kind, Resource, Severity, analyze, parse_documents};

pub fn validate_edit(
    kind: &str,
    namespace: &str,
    name: &str,
    text: &str,
    stored: &[loupe_api::config::Resource],
) -> Vec<Diagnostic> {
    let key = format!(
        "{}/{namespace}/{name}",
        Kind::parse(kind).map(|k| k.as_str()).unwrap_or(kind)
    );
    let error = |path: &str, message: String| Diagnostic {
        severity: Severity::Error,
        resource: key.clone(),
        path: path.to_string(),
        message,
    };
    if text.trim().is_empty() {
        return vec![error(
            "",
            "the YAML is empty; write the whole resource (apiVersion, kind, metadata, spec)".into(),
        )];
    }
    let parsed = parse_documents("editor", text);
    let mut out = parsed.diagnostics;
    match parsed.resources.as_slice() {
        [] if out.is_empty() => out.push(error("", "no Istio resource found in the YAML".into())),
        [] => {}
        [r] if r.key().to_string() != key => out.push(error(
            "metadata",
            format!("this editor saves {key}; the YAML describes {} (rename by applying a new resource instead)", r.key()),
        )),
        [_] => {}
        more => out.push(error("", format!("the editor holds one resource; found {} documents", more.len()))),
    }
    if loupe_model::analyze::has_errors(&out) || parsed.resources.len() != 1 {
        return out;
    }

    let others: Vec<Resource> = stored
        .iter()
        .flat_map(|e| parse_documents("stored", &e.yaml).resources)
        .filter(|r| r.key().to_string() != key)
        .collect();
    let before = {
        let mut all = others.clone();
        all.extend(
            stored
                .iter()
                .flat_map(|e| parse_documents("stored", &e.yaml).resources)
                .filter(|r| r.key().to_string() == key),
        );
        analyze(&all)
    };
    let mut after_set = others;
    after_set.extend(parsed.resources);
    for d in analyze(&after_set) {
        if d.resource == key || !before.contains(&d) {
            out.push(d);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DR: &str = "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
";

    fn vs(weights: (u32, u32), subset2: &str) -> String {
        format!(
            "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews, namespace: default}}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {{host: reviews, subset: v1}}
      weight: {}
    - destination: {{host: reviews, subset: {subset2}}}
      weight: {}
",
            weights.0, weights.1
        )
    }

    fn stored(yaml: &str) -> loupe_api::config::Resource {
        let parsed = parse_documents("stored", yaml).resources;
        let key = parsed[0].key();
        loupe_api::config::Resource {
            kind: key.kind,
            namespace: key.namespace,
            name: key.name,
            revision: 1,
            yaml: yaml.to_string(),
            object: serde_json::Value::Null,
            author: "test".into(),
            created_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    fn errors(d: &[Diagnostic]) -> Vec<&Diagnostic> {
        d.iter().filter(|d| d.severity == Severity::Error).collect()
    }

    #[test]
    fn a_valid_edit_has_no_errors() {
        let d = validate_edit(
            "VirtualService",
            "default",
            "reviews",
            &vs((50, 50), "v2"),
            &[stored(DR)],
        );
        assert!(errors(&d).is_empty(), "{d:?}");
    }

    #[test]
    fn broken_yaml_is_an_error() {
        let d = validate_edit(
            "VirtualService",
            "default",
            "reviews",
            "kind: VirtualService\nmetadata: {name: [",
            &[],
        );
        assert!(!errors(&d).is_empty(), "{d:?}");
    }

    #[test]
    fn cross_resource_problems_are_found_with_the_stored_config() {
        // A route to a subset the stored DestinationRule does not define.
        let d = validate_edit(
            "VirtualService",
            "default",
            "reviews",
            &vs((50, 50), "v9"),
            &[stored(DR)],
        );
        assert!(errors(&d).iter().any(|d| d.message.contains("v9")), "{d:?}");
    }

    #[test]
    fn the_editor_saves_only_its_own_resource() {
        let d = validate_edit(
            "VirtualService",
            "default",
            "ratings",
            &vs((50, 50), "v2"),
            &[stored(DR)],
        );
        assert!(errors(&d).iter().any(|d| d.path == "metadata"), "{d:?}");
        let d = validate_edit("VirtualService", "default", "reviews", "", &[]);
        assert_eq!(errors(&d).len(), 1);
    }

    #[test]
    fn problems_elsewhere_that_predate_the_edit_do_not_block_it() {
        // The stored VS already routes to a missing subset; editing the DR
        // (without making it worse) must not show that as the DR's problem.
        let broken_vs = vs((50, 50), "v9");
        let d = validate_edit(
            "DestinationRule",
            "default",
            "reviews",
            DR,
            &[stored(&broken_vs), stored(DR)],
        );
        assert!(errors(&d).is_empty(), "{d:?}");
    }
}
