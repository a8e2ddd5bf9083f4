//! Every object `loupe manifest generate` prints parses back into its
//! `k8s-openapi` type with no unknown field, and re-serializes to exactly
//! what was printed (nothing dropped, nothing renamed). The CRDs' schemas are
//! structural (what the API server requires, checked here since no API
//! server runs), carry Istio's names, versions and printer columns, and
//! admit the demo's Istio YAML without pruning any field of it.

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use loupe_k8s::manifest::{Profile, Settings, generate};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn strict<T: DeserializeOwned + Serialize>(doc: &Value) -> Result<(), String> {
    let mut unknown = Vec::new();
    let typed: T = serde_ignored::deserialize(doc.clone(), |path| unknown.push(path.to_string()))
        .map_err(|e| format!("does not parse: {e}"))?;
    if !unknown.is_empty() {
        return Err(format!("unknown fields: {unknown:?}"));
    }
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    if &back != doc {
        return Err("re-serialized object differs from the printed one".into());
    }
    Ok(())
}

fn check(doc: &Value) -> Result<(), String> {
    let kind = doc["kind"].as_str().unwrap_or_default();
    match kind {
        "Namespace" => strict::<Namespace>(doc),
        "CustomResourceDefinition" => strict::<CustomResourceDefinition>(doc),
        "ServiceAccount" => strict::<ServiceAccount>(doc),
        "ClusterRole" => strict::<ClusterRole>(doc),
        "ClusterRoleBinding" => strict::<ClusterRoleBinding>(doc),
        "Role" => strict::<Role>(doc),
        "RoleBinding" => strict::<RoleBinding>(doc),
        "Secret" => strict::<Secret>(doc),
        "Service" => strict::<Service>(doc),
        "StatefulSet" => strict::<StatefulSet>(doc),
        "Deployment" => strict::<Deployment>(doc),
        "MutatingWebhookConfiguration" => strict::<MutatingWebhookConfiguration>(doc),
        "ValidatingWebhookConfiguration" => strict::<ValidatingWebhookConfiguration>(doc),
        other => Err(format!(
            "kind {other:?} is not checked by this test; add it"
        )),
    }
}

fn all_profiles() -> Vec<(String, Vec<Value>)> {
    let mut out = Vec::new();
    for profile in Profile::ALL {
        out.push((
            profile.to_string(),
            generate(&Settings::for_profile(profile)),
        ));
    }
    let external = Settings::from_sets(&["profile=demo", "database=external"]).unwrap();
    out.push(("demo+external".into(), generate(&external)));
    out
}

#[test]
fn every_object_parses_back_into_its_k8s_openapi_type_with_no_unknown_field() {
    let mut failures = Vec::new();
    for (profile, docs) in all_profiles() {
        for doc in &docs {
            if let Err(e) = check(doc) {
                let name = doc["metadata"]["name"].as_str().unwrap_or("?");
                failures.push(format!("{profile}: {} {name}: {e}", doc["kind"]));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn the_printed_yaml_is_the_generated_objects() {
    let settings = Settings::for_profile(Profile::Demo);
    let text = loupe_k8s::manifest::render(&settings);
    let parsed: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect();
    assert_eq!(parsed, generate(&settings));
}

#[test]
fn profiles_differ_where_they_should() {
    let demo = generate(&Settings::for_profile(Profile::Demo));
    let default = generate(&Settings::for_profile(Profile::Default));
    let has = |docs: &[Value], kind: &str, name: &str| {
        docs.iter()
            .any(|d| d["kind"] == kind && d["metadata"]["name"] == name)
    };
    assert!(has(&demo, "StatefulSet", "loupe-postgres"));
    assert!(has(&demo, "Secret", "loupe-database"));
    assert!(!has(&default, "StatefulSet", "loupe-postgres"));
    // External database: the user's Secret, never one of ours.
    assert!(!has(&default, "Secret", "loupe-database"));
    let deployment = |docs: &[Value], name: &str| {
        docs.iter()
            .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(deployment(&default, "loupe-control")["spec"]["replicas"], 2);
    let env =
        &deployment(&default, "loupe-console")["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(
        env[0]["valueFrom"]["secretKeyRef"]["name"],
        "loupe-database"
    );
    let gateway = default
        .iter()
        .find(|d| d["kind"] == "Service" && d["metadata"]["name"] == "istio-ingressgateway")
        .unwrap();
    assert_eq!(gateway["spec"]["type"], "LoadBalancer");
    assert_eq!(gateway["spec"]["selector"]["istio"], "ingressgateway");
    assert_eq!(
        Settings::from_sets(&["profile=nope"])
            .unwrap_err()
            .to_string(),
        "`--set profile=nope`: expected demo, default"
    );
    assert!(Settings::from_sets(&["colour=blue"]).is_err());
}

/// Istio's names, short names, versions and printer columns.
#[test]
fn crds_have_istios_names_versions_and_columns() {
    let crds = loupe_k8s::crd::crds();
    let find = |name: &str| {
        crds.iter()
            .find(|c| c.metadata.name.as_deref() == Some(name))
            .unwrap()
    };
    let expected = [
        ("gateways.networking.istio.io", "Gateway", Some("gw"), 3),
        (
            "virtualservices.networking.istio.io",
            "VirtualService",
            Some("vs"),
            3,
        ),
        (
            "destinationrules.networking.istio.io",
            "DestinationRule",
            Some("dr"),
            3,
        ),
        (
            "serviceentries.networking.istio.io",
            "ServiceEntry",
            Some("se"),
            3,
        ),
        (
            "workloadentries.networking.istio.io",
            "WorkloadEntry",
            Some("we"),
            3,
        ),
        ("sidecars.networking.istio.io", "Sidecar", None, 3),
        (
            "peerauthentications.security.istio.io",
            "PeerAuthentication",
            Some("pa"),
            2,
        ),
        (
            "requestauthentications.security.istio.io",
            "RequestAuthentication",
            Some("ra"),
            2,
        ),
        (
            "authorizationpolicies.security.istio.io",
            "AuthorizationPolicy",
            Some("ap"),
            2,
        ),
        (
            "telemetries.telemetry.istio.io",
            "Telemetry",
            Some("telemetry"),
            2,
        ),
    ];
    assert_eq!(crds.len(), expected.len());
    for (name, kind, short, versions) in expected {
        let crd = find(name);
        assert_eq!(crd.spec.names.kind, kind);
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(
            crd.spec.names.short_names.as_deref().unwrap_or_default(),
            short.map(|s| vec![s.to_string()]).unwrap_or_default()
        );
        assert_eq!(crd.spec.versions.len(), versions, "{name}");
        let stored: Vec<_> = crd
            .spec
            .versions
            .iter()
            .filter(|v| v.storage)
            .map(|v| v.name.as_str())
            .collect();
        assert_eq!(stored, ["v1"], "{name}");
        assert!(crd.spec.versions.iter().all(|v| v.served));
        assert!(
            crd.spec
                .versions
                .iter()
                .all(|v| v.subresources.as_ref().is_some_and(|s| s.status.is_some()))
        );
    }
    let columns = |name: &str| -> Vec<(String, String)> {
        find(name).spec.versions[0]
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| (c.name.clone(), c.json_path.clone()))
            .collect()
    };
    let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        columns("virtualservices.networking.istio.io"),
        pairs(&[
            ("Gateways", ".spec.gateways"),
            ("Hosts", ".spec.hosts"),
            ("Age", ".metadata.creationTimestamp")
        ])
    );
    assert_eq!(
        columns("destinationrules.networking.istio.io"),
        pairs(&[
            ("Host", ".spec.host"),
            ("Age", ".metadata.creationTimestamp")
        ])
    );
    assert_eq!(
        columns("serviceentries.networking.istio.io"),
        pairs(&[
            ("Hosts", ".spec.hosts"),
            ("Location", ".spec.location"),
            ("Resolution", ".spec.resolution"),
            ("Age", ".metadata.creationTimestamp")
        ])
    );
    assert_eq!(
        columns("workloadentries.networking.istio.io"),
        pairs(&[
            ("Age", ".metadata.creationTimestamp"),
            ("Address", ".spec.address")
        ])
    );
    assert_eq!(
        columns("peerauthentications.security.istio.io"),
        pairs(&[
            ("Mode", ".spec.mtls.mode"),
            ("Age", ".metadata.creationTimestamp")
        ])
    );
    assert_eq!(
        columns("authorizationpolicies.security.istio.io"),
        pairs(&[
            ("Action", ".spec.action"),
            ("Age", ".metadata.creationTimestamp")
        ])
    );
    assert!(columns("gateways.networking.istio.io").is_empty());
}

/// The API server's rules for a structural schema (apiextensions' "Specifying
/// a structural schema"): every node has a type unless it preserves unknown
/// fields or is int-or-string; no `$ref`; `properties` and
/// `additionalProperties` not together; inside `oneOf`/`anyOf`/`allOf`/`not`
/// no type, default, description, nullable or additionalProperties. And no
/// `default` anywhere (see the crd module).
fn structural(path: &str, schema: &Value, errors: &mut Vec<String>) {
    let Some(obj) = schema.as_object() else {
        errors.push(format!("{path}: not an object"));
        return;
    };
    let free = obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
        || obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    if !obj.contains_key("type") && !free {
        errors.push(format!("{path}: no type"));
    }
    for forbidden in ["$ref", "default", "definitions", "$schema"] {
        if obj.contains_key(forbidden) {
            errors.push(format!("{path}: has {forbidden}"));
        }
    }
    if obj.contains_key("properties") && obj.contains_key("additionalProperties") {
        errors.push(format!("{path}: properties with additionalProperties"));
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            structural(&format!("{path}.{k}"), v, errors);
        }
    }
    if let Some(items) = obj.get("items") {
        structural(&format!("{path}[]"), items, errors);
    }
    if let Some(extra) = obj.get("additionalProperties").filter(|v| v.is_object()) {
        structural(&format!("{path}{{}}"), extra, errors);
    }
    for junction in ["oneOf", "anyOf", "allOf"] {
        for (i, branch) in obj
            .get(junction)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            junction_branch(&format!("{path}.{junction}[{i}]"), branch, errors);
        }
    }
    if let Some(not) = obj.get("not") {
        junction_branch(&format!("{path}.not"), not, errors);
    }
}

fn junction_branch(path: &str, schema: &Value, errors: &mut Vec<String>) {
    let Some(obj) = schema.as_object() else {
        return;
    };
    for forbidden in [
        "type",
        "default",
        "description",
        "nullable",
        "additionalProperties",
    ] {
        if obj.contains_key(forbidden) {
            errors.push(format!("{path}: {forbidden} inside a logical junction"));
        }
    }
    for v in obj
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|p| p.values())
    {
        junction_branch(path, v, errors);
    }
}

#[test]
fn crd_schemas_are_structural_and_have_no_defaults() {
    let mut errors = Vec::new();
    for crd in loupe_k8s::crd::crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        for version in &crd.spec.versions {
            let schema =
                serde_json::to_value(&version.schema.as_ref().unwrap().open_api_v3_schema).unwrap();
            structural(&format!("{name}/{}", version.name), &schema, &mut errors);
            // spec is loupe-model's type, not an opaque object (Sidecar excepted).
            let spec = &schema["properties"]["spec"];
            if crd.spec.names.kind != "Sidecar" {
                assert!(
                    spec["properties"].is_object(),
                    "{name}: spec has no properties"
                );
            } else {
                assert_eq!(spec["x-kubernetes-preserve-unknown-fields"], true);
            }
            assert_eq!(
                schema["properties"]["status"]["x-kubernetes-preserve-unknown-fields"], true,
                "{name}"
            );
        }
    }
    assert!(errors.is_empty(), "{errors:#?}");
}

/// A value checked against an OpenAPI schema the way the API server prunes
/// and type-checks: every field the schema does not know would be dropped.
fn admits(path: &str, schema: &Value, value: &Value, errors: &mut Vec<String>) {
    if schema["x-kubernetes-preserve-unknown-fields"] == true && schema.get("properties").is_none()
    {
        return;
    }
    if value.is_null() {
        if schema["nullable"] != true {
            errors.push(format!("{path}: null where the schema is not nullable"));
        }
        return;
    }
    let ok = match schema["type"].as_str() {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        _ => true,
    };
    if !ok {
        errors.push(format!("{path}: {value} is not {}", schema["type"]));
        return;
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        errors.push(format!("{path}: {value} not in {allowed:?}"));
    }
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let sub = match schema["properties"].get(k) {
                    Some(s) => s,
                    None if schema["additionalProperties"].is_object() => {
                        &schema["additionalProperties"]
                    }
                    None if schema["x-kubernetes-preserve-unknown-fields"] == true => continue,
                    None => {
                        errors.push(format!("{path}.{k}: pruned (not in the schema)"));
                        continue;
                    }
                };
                admits(&format!("{path}.{k}"), sub, v, errors);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                admits(&format!("{path}[{i}]"), &schema["items"], v, errors);
            }
        }
        _ => {}
    }
}

#[test]
fn the_demos_istio_yaml_is_admitted_by_the_crds_without_pruning() {
    let crds = loupe_k8s::crd::crds();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/demo");
    let mut checked = 0;
    let mut errors = Vec::new();
    for file in ["bookinfo.yaml", "security.yaml"] {
        let text = std::fs::read_to_string(format!("{root}/{file}")).unwrap();
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let value: Value = serde::Deserialize::deserialize(doc).unwrap();
            let Some((group, version)) =
                value["apiVersion"].as_str().and_then(|a| a.split_once('/'))
            else {
                continue;
            };
            let Some(crd) = crds
                .iter()
                .find(|c| c.spec.group == group && c.spec.names.kind == value["kind"])
            else {
                continue;
            };
            let v = crd
                .spec
                .versions
                .iter()
                .find(|v| v.name == version)
                .unwrap();
            let schema =
                serde_json::to_value(&v.schema.as_ref().unwrap().open_api_v3_schema).unwrap();
            let name = format!("{file}: {}/{}", value["kind"], value["metadata"]["name"]);
            admits(
                &name,
                &schema["properties"]["spec"],
                &value["spec"],
                &mut errors,
            );
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} Istio objects in the demo");
    assert!(errors.is_empty(), "{errors:#?}");
}

/// Typed custom resources: the demo's VirtualServices read as
/// `VirtualServiceCrd`, whose spec is loupe-model's.
#[test]
fn custom_resources_read_as_typed_objects() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/demo/bookinfo.yaml"
    ))
    .unwrap();
    let mut n = 0;
    for doc in serde_yaml_ng::Deserializer::from_str(&text) {
        let value: Value = serde::Deserialize::deserialize(doc).unwrap();
        if value["kind"] == "VirtualService" {
            let vs: loupe_k8s::crd::VirtualServiceCrd =
                serde_json::from_value(value.clone()).unwrap();
            assert!(!vs.spec.0.hosts.is_empty());
            n += 1;
        }
    }
    assert!(n > 0);
}

/// The check above would see a misspelt field.
#[test]
fn the_check_reports_unknown_fields() {
    let doc = serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "x"}, "spec": {"clusterIp": "None"}
    });
    let err = check(&doc).unwrap_err();
    assert!(
        err.contains("unknown fields") && err.contains("clusterIp"),
        "{err}"
    );
}

/// `kubectl apply` (client-side) stores each object in the
/// `last-applied-configuration` annotation, which the API server caps at
/// 256 KiB: every object, the largest CRD included, must fit.
#[test]
fn every_object_fits_kubectl_applys_annotation_limit() {
    for (profile, docs) in all_profiles() {
        for doc in docs {
            let size = serde_json::to_vec(&doc).unwrap().len();
            assert!(
                size < 256 * 1024,
                "{profile}: {} is {size} bytes",
                doc["metadata"]["name"]
            );
        }
    }
}
