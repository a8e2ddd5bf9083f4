//! The two webhook configurations, shaped as Istio's.
//!
//! `loupe-sidecar-injector` has two entries, as Istio's injector for the
//! default revision has: namespaces labelled `istio-injection=enabled`, and
//! namespaces labelled `istio.io/rev=default` without `istio-injection`.
//! Both skip pods labelled `sidecar.istio.io/inject=false`.
//! `loupe-validator` checks every object of Istio's two groups on create and
//! update. Both call `loupe-control` on its `https-webhook` port; their
//! `caBundle` is empty here and patched by the control plane at start.

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, ServiceReference,
    ValidatingWebhook, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use super::{CONTROL_SERVICE, NAMESPACE, WEBHOOK_SERVICE_PORT, meta};
use crate::inject::{INJECT_LABEL, INJECTION_NAMESPACE_LABEL, REVISION, REVISION_LABEL};

pub const INJECTOR_NAME: &str = "loupe-sidecar-injector";
pub const VALIDATOR_NAME: &str = "loupe-validator";

fn client_config(path: &str) -> WebhookClientConfig {
    WebhookClientConfig {
        service: Some(ServiceReference {
            name: CONTROL_SERVICE.into(),
            namespace: NAMESPACE.into(),
            path: Some(path.into()),
            port: Some(WEBHOOK_SERVICE_PORT.into()),
        }),
        ca_bundle: Some(ByteString(Vec::new())),
        url: None,
    }
}

fn requirement(key: &str, operator: &str, values: &[&str]) -> LabelSelectorRequirement {
    LabelSelectorRequirement {
        key: key.into(),
        operator: operator.into(),
        values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
    }
}

fn selector(requirements: Vec<LabelSelectorRequirement>) -> LabelSelector {
    LabelSelector {
        match_expressions: Some(requirements),
        match_labels: None,
    }
}

fn rule(
    operations: &[&str],
    groups: &[&str],
    versions: &[&str],
    resources: &[&str],
) -> RuleWithOperations {
    let strings = |s: &[&str]| Some(s.iter().map(|x| x.to_string()).collect());
    RuleWithOperations {
        operations: strings(operations),
        api_groups: strings(groups),
        api_versions: strings(versions),
        resources: strings(resources),
        scope: None,
    }
}

fn injector(name: &str, namespace_selector: LabelSelector) -> MutatingWebhook {
    MutatingWebhook {
        name: name.into(),
        admission_review_versions: vec!["v1".into()],
        client_config: client_config("/inject"),
        failure_policy: Some("Fail".into()),
        reinvocation_policy: Some("Never".into()),
        side_effects: "None".into(),
        timeout_seconds: Some(10),
        rules: Some(vec![rule(&["CREATE"], &[""], &["v1"], &["pods"])]),
        namespace_selector: Some(namespace_selector),
        object_selector: Some(selector(vec![requirement(
            INJECT_LABEL,
            "NotIn",
            &["false"],
        )])),
        match_policy: None,
        match_conditions: None,
    }
}

/// `loupe-sidecar-injector`.
pub fn mutating_webhook() -> MutatingWebhookConfiguration {
    MutatingWebhookConfiguration {
        metadata: meta(INJECTOR_NAME, None, &[("app", "sidecar-injector")]),
        webhooks: Some(vec![
            injector(
                "namespace.sidecar-injector.istio.io",
                selector(vec![requirement(
                    INJECTION_NAMESPACE_LABEL,
                    "In",
                    &["enabled"],
                )]),
            ),
            injector(
                "rev.namespace.sidecar-injector.istio.io",
                selector(vec![
                    requirement(REVISION_LABEL, "In", &[REVISION]),
                    requirement(INJECTION_NAMESPACE_LABEL, "DoesNotExist", &[]),
                ]),
            ),
        ]),
    }
}

/// `loupe-validator`.
pub fn validating_webhook() -> ValidatingWebhookConfiguration {
    ValidatingWebhookConfiguration {
        metadata: meta(VALIDATOR_NAME, None, &[("app", "istiod")]),
        webhooks: Some(vec![ValidatingWebhook {
            name: "validation.istio.io".into(),
            admission_review_versions: vec!["v1".into()],
            client_config: client_config("/validate"),
            failure_policy: Some("Fail".into()),
            side_effects: "None".into(),
            timeout_seconds: Some(10),
            rules: Some(vec![rule(
                &["CREATE", "UPDATE"],
                &[
                    "networking.istio.io",
                    "security.istio.io",
                    "telemetry.istio.io",
                ],
                &["*"],
                &["*"],
            )]),
            match_policy: None,
            match_conditions: None,
            namespace_selector: None,
            object_selector: None,
        }]),
    }
}
