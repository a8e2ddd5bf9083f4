//! The validating webhook over real HTTPS: an Istio object in an
//! AdmissionReview is refused with loupe-model's own diagnostics when it has
//! errors (a bad regex, a negative weight, a schema error), allowed with
//! `response.warnings` when it has only warnings (weights summing to 90, an
//! unknown field), allowed as is when clean, and DELETEs and kinds Loupe does
//! not model pass.

mod support;

use loupe_model::analyze::Severity;
use loupe_model::{analyze, parse_documents};
use serde_json::{Value, json};
use support::{Webhook, review, start};

fn virtual_service(http: Value) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "reviews", "namespace": "bookinfo", "uid": "9c2e", "generation": 1},
        "spec": {"hosts": ["reviews"], "http": http}
    })
}

async fn send(webhook: &Webhook, uid: &str, object: Value) -> Value {
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let kind = object["kind"].as_str().unwrap_or("").to_string();
    let group_version = object["apiVersion"].as_str().unwrap().to_string();
    let (group, version) = group_version.split_once('/').unwrap();
    let resource = format!("{}s", kind.to_lowercase());
    let body = webhook
        .post(
            "/validate",
            &review(
                uid,
                (group, version, &kind),
                &resource,
                "bookinfo",
                &name,
                "CREATE",
                object,
            ),
        )
        .await;
    assert_eq!(body["response"]["uid"], uid);
    body["response"].clone()
}

/// What `loupe analyze` says about the object, by severity.
fn model_says(object: &Value, severity: Severity) -> Vec<String> {
    let parsed = parse_documents("test", &object.to_string());
    let mut all = parsed.diagnostics;
    all.extend(analyze(&parsed.resources));
    all.into_iter()
        .filter(|d| d.severity == severity)
        .map(|d| d.message)
        .collect()
}

#[tokio::test]
async fn an_invalid_virtual_service_is_refused_with_the_models_message() {
    let webhook = start().await;
    let bad_regex = virtual_service(json!([{
        "match": [{"uri": {"regex": "/api/(v1"}}],
        "route": [{"destination": {"host": "reviews"}}]
    }]));
    let negative = virtual_service(json!([{
        "route": [
            {"destination": {"host": "reviews"}, "weight": 110},
            {"destination": {"host": "ratings"}, "weight": -10}
        ]
    }]));
    for (uid, object) in [("uid-regex", bad_regex), ("uid-weight", negative)] {
        let errors = model_says(&object, Severity::Error);
        assert!(!errors.is_empty(), "{uid}: the model finds an error");
        let response = send(&webhook, uid, object).await;
        assert_eq!(response["allowed"], false, "{uid}");
        let message = response["status"]["message"].as_str().unwrap();
        assert_eq!(response["status"]["code"], 400);
        assert!(
            message.contains("VirtualService reviews is invalid"),
            "{message}"
        );
        for error in errors {
            assert!(
                message.contains(&error),
                "{uid}: {message:?} lacks the model's {error:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_schema_error_is_refused() {
    let webhook = start().await;
    let mut object = virtual_service(json!([]));
    object["spec"]["hosts"] = json!("reviews");
    let response = send(&webhook, "uid-schema", object).await;
    assert_eq!(response["allowed"], false);
    let message = response["status"]["message"].as_str().unwrap();
    assert!(message.contains("does not match the schema"), "{message}");
}

#[tokio::test]
async fn a_valid_virtual_service_is_allowed() {
    let webhook = start().await;
    let object = virtual_service(json!([{
        "match": [{"uri": {"prefix": "/api/v1"}}],
        "route": [
            {"destination": {"host": "reviews", "subset": "v1"}, "weight": 75},
            {"destination": {"host": "reviews", "subset": "v2"}, "weight": 25}
        ],
        "timeout": "2s"
    }]));
    let response = send(&webhook, "uid-ok", object).await;
    assert_eq!(response["allowed"], true, "{response}");
    // The subsets' DestinationRule may come later (kubectl apply order):
    // judged alone, the missing reference is a warning, not a refusal.
    let warnings: Vec<String> = serde_json::from_value(response["warnings"].clone()).unwrap();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings.iter().all(|w| w.contains("no DestinationRule")),
        "{warnings:?}"
    );

    let plain = virtual_service(json!([{"route": [{"destination": {"host": "reviews"}}]}]));
    let response = send(&webhook, "uid-plain", plain).await;
    assert_eq!(response["allowed"], true);
    assert!(response.get("warnings").is_none(), "{response}");
}

#[tokio::test]
async fn warnings_are_returned_and_the_object_allowed() {
    let webhook = start().await;
    let mut object = virtual_service(json!([{
        "route": [
            {"destination": {"host": "reviews"}, "weight": 50},
            {"destination": {"host": "ratings"}, "weight": 40}
        ]
    }]));
    object["spec"]["exportToo"] = json!(["."]);
    let expected = model_says(&object, Severity::Warning);
    let response = send(&webhook, "uid-warn", object).await;
    assert_eq!(response["allowed"], true);
    let warnings: Vec<String> = serde_json::from_value(response["warnings"].clone()).unwrap();
    assert!(
        warnings.iter().any(|w| w.contains("weights sum to 90")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("exportToo")),
        "{warnings:?}"
    );
    for message in expected {
        assert!(warnings.iter().any(|w| w.contains(&message)), "{message}");
    }
}

#[tokio::test]
async fn other_kinds_and_deletes_pass() {
    let webhook = start().await;
    let sidecar = json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "Sidecar",
        "metadata": {"name": "default", "namespace": "bookinfo"},
        "spec": {"egress": [{"hosts": ["./*"]}]}
    });
    assert_eq!(
        send(&webhook, "uid-sidecar", sidecar).await["allowed"],
        true
    );
    let delete = review(
        "uid-delete",
        ("networking.istio.io", "v1", "VirtualService"),
        "virtualservices",
        "bookinfo",
        "reviews",
        "DELETE",
        Value::Null,
    );
    let body = webhook.post("/validate", &delete).await;
    assert_eq!(body["response"]["allowed"], true);
}
