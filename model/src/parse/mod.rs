//! Multi-document YAML (or JSON) → [`Resource`]s, and back.
//!
//! Two passes over the text: the first reads every document as a plain YAML
//! value (syntax errors, with line numbers, stop the file there; `kind` and
//! `apiVersion` decide whether the document is ours); the second deserializes
//! the documents that are ours straight from the text into their typed
//! struct, so schema errors carry both the YAML path and the line. Unknown
//! fields are collected with `serde_ignored` and reported as warnings.
//! `kind: List` objects and top-level sequences are read item by item.
//!
//! Before either, [`guard`] reads the text as YAML events and admits only
//! what is cheap to expand: no anchors or aliases, a capped size and number
//! of documents.

use serde::Deserialize;
use serde_yaml_ng::Value;

use crate::analyze::{Diagnostic, Severity};
use crate::meta::DEFAULT_NAMESPACE;
use crate::resource::{Kind, ParsedFile, Resource};

mod guard;
pub use guard::{MAX_DOCUMENTS, MAX_INPUT_BYTES};

/// Metadata fields the API server fills in; reading them back from
/// `kubectl get -o yaml` output is normal, so they are not reported.
const SERVER_METADATA: &[&str] = &[
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "ownerReferences",
    "finalizers",
    "generateName",
    "selfLink",
];

pub fn parse_documents(source: &str, text: &str) -> ParsedFile {
    let mut out = ParsedFile::default();
    let admitted = guard::admit(source, text);
    let mut values = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(text).take(admitted.documents) {
        match Value::deserialize(document) {
            Ok(value) => values.push(value),
            Err(err) => {
                out.diagnostics
                    .push(syntax_error(source, values.len(), &err));
                // The parser cannot resynchronise after a syntax error.
                break;
            }
        }
    }

    // Second pass: only as many documents as the first pass read.
    let documents = serde_yaml_ng::Deserializer::from_str(text).take(values.len());
    for (index, (value, document)) in values.iter().zip(documents).enumerate() {
        match value {
            Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    let at = format!("document {} item {i}", index + 1);
                    parse_value(source, &at, item, &mut out);
                }
            }
            Value::Mapping(_) if value.get("kind").and_then(Value::as_str) == Some("List") => {
                let items = value.get("items").and_then(Value::as_sequence);
                for (i, item) in items.into_iter().flatten().enumerate() {
                    let at = format!("document {} items[{i}]", index + 1);
                    parse_value(source, &at, item, &mut out);
                }
            }
            Value::Mapping(_) => {
                if let Some(target) = Target::of(source, value, &mut out.diagnostics) {
                    let result = deserialize_ignoring(&target, document, |_| None);
                    finish(target, result, &mut out);
                }
            }
            // Empty documents (`---` twice) and bare scalars are not resources.
            _ => {}
        }
    }
    out.diagnostics.extend(admitted.refused);
    out
}

/// One item of a list, read from its value (paths, but no line numbers).
fn parse_value(source: &str, at: &str, value: &Value, out: &mut ParsedFile) {
    if let Some(target) = Target::of(source, value, &mut out.diagnostics) {
        let result = deserialize_ignoring(&target, value.clone(), |_| Some(at.to_string()));
        finish(target, result, out);
    }
}

/// A document that is one of our kinds, named for diagnostics.
struct Target {
    kind: Kind,
    /// `Kind/namespace/name`, or the file when the name is missing.
    resource: String,
}

impl Target {
    fn of(source: &str, value: &Value, diagnostics: &mut Vec<Diagnostic>) -> Option<Target> {
        let kind_field = value.get("kind")?.as_str()?;
        let Some(kind) = Kind::from_kind_field(kind_field) else {
            not_implemented(source, value, kind_field, diagnostics);
            return None;
        };
        let metadata = value.get("metadata");
        let name = metadata.and_then(|m| m.get("name")).and_then(Value::as_str);
        let namespace = metadata
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .unwrap_or(DEFAULT_NAMESPACE);
        let resource = match name {
            Some(name) if !name.is_empty() => format!("{kind}/{namespace}/{name}"),
            _ => source.to_string(),
        };
        match value.get("apiVersion").and_then(Value::as_str) {
            None => diagnostics.push(Diagnostic {
                severity: Severity::Warning,
                resource: resource.clone(),
                path: "apiVersion".into(),
                message: format!(
                    "{kind} has no apiVersion; read as {}. Add `apiVersion: {}`.",
                    kind.default_api_version(),
                    kind.default_api_version()
                ),
            }),
            Some(api_version) => {
                let (group, version) = api_version.split_once('/').unwrap_or((api_version, ""));
                if group != kind.group() {
                    // Another API's kind of the same name (e.g. the Kubernetes
                    // Gateway API's `gateway.networking.k8s.io` Gateway).
                    return None;
                }
                if !kind.versions().contains(&version) {
                    diagnostics.push(Diagnostic {
                        severity: Severity::Warning,
                        resource: resource.clone(),
                        path: "apiVersion".into(),
                        message: format!(
                            "`{api_version}` is not a version Istio serves for {kind} ({}); \
                             read as {}. Use one of those versions.",
                            kind.versions().join(", "),
                            kind.default_api_version()
                        ),
                    });
                }
            }
        }
        if name.is_none_or(str::is_empty) {
            diagnostics.push(Diagnostic {
                severity: Severity::Error,
                resource: resource.clone(),
                path: "metadata.name".into(),
                message: format!("{kind} has no metadata.name; every Istio resource needs a name."),
            });
            return None;
        }
        Some(Target { kind, resource })
    }
}

/// A document of an Istio API group (`Sidecar`, `EnvoyFilter`, …) that
/// Loupe has no type for is ignored, and said so: nothing enforces it.
/// Kubernetes' own kinds (Service, Deployment, …) are skipped silently.
fn not_implemented(source: &str, value: &Value, kind: &str, diagnostics: &mut Vec<Diagnostic>) {
    let Some(api_version) = value.get("apiVersion").and_then(Value::as_str) else {
        return;
    };
    let group = api_version.split_once('/').map_or(api_version, |(g, _)| g);
    if !group.ends_with(".istio.io") {
        return;
    }
    let name = value
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let namespace = value
        .get("metadata")
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_NAMESPACE);
    diagnostics.push(Diagnostic {
        severity: Severity::Warning,
        resource: if name.is_empty() {
            source.to_string()
        } else {
            format!("{kind}/{namespace}/{name}")
        },
        path: "kind".into(),
        message: format!(
            "{kind} ({api_version}) is an Istio kind Loupe does not implement: the document is \
             ignored and nothing enforces it. Loupe understands {}.",
            Kind::ALL.map(Kind::as_str).join(", ")
        ),
    });
}

type Deserialized = (Result<Resource, String>, Vec<String>);

/// Deserializes `de` as `target.kind`, collecting ignored (unknown) field
/// paths. `prefix` turns a path into where it is in the file for list items.
fn deserialize_ignoring<'de, D>(
    target: &Target,
    de: D,
    prefix: impl Fn(&str) -> Option<String>,
) -> Deserialized
where
    D: serde::Deserializer<'de>,
    D::Error: std::fmt::Display,
{
    let mut unknown = Vec::new();
    let mut record = |path: serde_ignored::Path<'_>| {
        let path = yaml_path(&path);
        if !is_expected_extra(&path) {
            unknown.push(path);
        }
    };
    macro_rules! typed {
        ($variant:ident) => {
            serde_ignored::deserialize(de, &mut record)
                .map(Resource::$variant)
                .map_err(|e| e.to_string())
        };
    }
    let result = match target.kind {
        Kind::Gateway => typed!(Gateway),
        Kind::VirtualService => typed!(VirtualService),
        Kind::DestinationRule => typed!(DestinationRule),
        Kind::ServiceEntry => typed!(ServiceEntry),
        Kind::WorkloadEntry => typed!(WorkloadEntry),
        Kind::PeerAuthentication => typed!(PeerAuthentication),
        Kind::RequestAuthentication => typed!(RequestAuthentication),
        Kind::AuthorizationPolicy => typed!(AuthorizationPolicy),
        Kind::Telemetry => typed!(Telemetry),
    };
    let result = result.map_err(|e| match prefix("") {
        Some(at) => format!("{at}: {e}"),
        None => e,
    });
    (result, unknown)
}

fn finish(target: Target, (result, unknown): Deserialized, out: &mut ParsedFile) {
    for path in unknown {
        out.diagnostics.push(Diagnostic {
            severity: Severity::Warning,
            resource: target.resource.clone(),
            message: format!(
                "unknown field `{path}`: {} has no such field, so it is ignored. \
                 Check its spelling (Istio fields are camelCase) and indentation.",
                target.kind
            ),
            path,
        });
    }
    match result {
        Ok(resource) => out.resources.push(resource),
        Err(message) => out.diagnostics.push(schema_error(&target, &message)),
    }
}

/// Fields every Kubernetes object may carry that the typed structs need not
/// model: `kind` (the dispatch key), `apiVersion` (for kinds whose struct
/// does not keep it), `status`, and server-filled metadata.
fn is_expected_extra(path: &str) -> bool {
    match path.split_once('.') {
        None => matches!(path, "kind" | "apiVersion" | "status"),
        Some(("metadata", rest)) => {
            let field = rest.split(['.', '[']).next().unwrap_or(rest);
            SERVER_METADATA.contains(&field)
        }
        Some(("status", _)) => true,
        Some(_) => false,
    }
}

/// `spec.http[0].rout`, the way Istio and kubectl print paths.
fn yaml_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", yaml_path(parent)),
        Path::Map { parent, key } => {
            let parent = yaml_path(parent);
            if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => yaml_path(parent),
    }
}

fn syntax_error(source: &str, documents_read: usize, err: &serde_yaml_ng::Error) -> Diagnostic {
    let place = match err.location() {
        Some(l) => format!("line {} column {}", l.line(), l.column()),
        None => format!("document {}", documents_read + 1),
    };
    let text = err.to_string();
    let detail = strip_location(&text);
    Diagnostic {
        severity: Severity::Error,
        resource: source.to_string(),
        path: String::new(),
        message: format!(
            "YAML syntax error at {place}: {detail}. Fix the YAML there \
             (indentation, a missing `:` or an unclosed quote are the usual causes); \
             documents after it were not read."
        ),
    }
}

/// A schema error from serde_yaml: `spec.http[0].timeout: invalid type: … at line 7 column 14`.
fn schema_error(target: &Target, message: &str) -> Diagnostic {
    let (path, detail) = split_path(message);
    let hint = if detail.contains("unknown variant") {
        " Istio's enum values are case-sensitive: use one of the listed values exactly."
    } else {
        " Fix the value to match Istio's schema for this field."
    };
    Diagnostic {
        severity: Severity::Error,
        resource: target.resource.clone(),
        path: path.to_string(),
        message: format!("{} does not match the schema: {detail}.{hint}", target.kind),
    }
}

/// Splits serde_yaml's `path: message` (the path has no spaces).
fn split_path(message: &str) -> (&str, &str) {
    match message.split_once(": ") {
        Some((path, rest)) if !path.is_empty() && !path.contains(' ') => (path, rest),
        _ => ("", message),
    }
}

fn strip_location(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    }
}

pub fn to_yaml(resources: &[Resource]) -> String {
    let mut out = String::new();
    for resource in resources {
        if !out.is_empty() {
            out.push_str("---\n");
        }
        // Serializing plain data to YAML cannot fail; an error would be a bug
        // in a Serialize impl, shown in place rather than lost.
        match serde_yaml_ng::to_string(resource) {
            Ok(text) => out.push_str(&text),
            Err(err) => out.push_str(&format!("# cannot print {}: {err}\n", resource.key())),
        }
    }
    out
}
