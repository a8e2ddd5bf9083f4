//! In-browser validation of an edited resource with `loupe-model`: the
//! control plane's own parser and analyzer, so what the editor accepts is
//! what the server accepts.
//!
//! The edit is analyzed together with every other stored resource, since
//! many problems are cross-resource (a route to a subset no DestinationRule
//! defines). Findings on other resources are shown only when the edit caused
//! them, so pre-existing problems elsewhere do not block this save.

use loupe_model::{Diagnostic, Kind, Resource, Severity, analyze, parse_documents};

use crate::api::ConfigEntry;

pub fn validate_edit(kind: &str, namespace: &str, name: &str, text: &str, stored: &[ConfigEntry]) -> Vec<Diagnostic> {
    let key = format!("{}/{namespace}/{name}", Kind::parse(kind).map(|k| k.as_str()).unwrap_or(kind));
    let error = |path: &str, message: String| Diagnostic {
        severity: Severity::Error,
        resource: key.clone(),
        path: path.to_string(),
        message,
    };
    if text.trim().is_empty() {
        return vec![error("", "the YAML is empty; write the whole resource (apiVersion, kind, metadata, spec)".into())];
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
        .flat_map(|e| parse_documents("stored", &e.yaml_text()).resources)
        .filter(|r| r.key().to_string() != key)
        .collect();
    let before = {
        let mut all = others.clone();
        all.extend(stored.iter().flat_map(|e| parse_documents("stored", &e.yaml_text()).resources).filter(|r| r.key().to_string() == key));
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
