//! Which namespaces and pods the generated `loupe-sidecar-injector` sends to
//! the webhook, evaluated as the API server evaluates its selectors: only
//! namespaces labelled `istio-injection=enabled` (or, for the revision entry,
//! `istio.io/rev=default` without `istio-injection`), never a pod labelled
//! `sidecar.istio.io/inject=false`. And the control plane's caBundle patch
//! fills every webhook of both configurations.

use std::collections::BTreeMap;

use base64::Engine as _;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use loupe_k8s::manifest::{Profile, Settings, generate};
use loupe_k8s::selector::selects;
use loupe_k8s::webhook::{ServingCert, ca_bundle_patch, service_dns_names};
use serde_json::Value;

fn rendered(kind: &str) -> Value {
    generate(&Settings::for_profile(Profile::Demo))
        .into_iter()
        .find(|d| d["kind"] == kind)
        .unwrap()
}

fn injector() -> MutatingWebhookConfiguration {
    serde_json::from_value(rendered("MutatingWebhookConfiguration")).unwrap()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The webhook entries that select a namespace with `ns` labels.
fn entries_for(ns: &[(&str, &str)]) -> Vec<String> {
    injector()
        .webhooks
        .unwrap()
        .into_iter()
        .filter(|w| selects(w.namespace_selector.as_ref(), &labels(ns)))
        .map(|w| w.name)
        .collect()
}

#[test]
fn the_namespace_selector_selects_istio_injection_enabled_only() {
    let config = injector();
    let first = &config.webhooks.as_ref().unwrap()[0];
    let enabled = labels(&[
        ("istio-injection", "enabled"),
        ("kubernetes.io/metadata.name", "bookinfo"),
    ]);
    assert!(selects(first.namespace_selector.as_ref(), &enabled));
    for other in [
        labels(&[]),
        labels(&[("istio-injection", "disabled")]),
        labels(&[("istio-injection", "true")]),
        labels(&[("kubernetes.io/metadata.name", "default")]),
        labels(&[("istio.io/rev", "default")]),
    ] {
        assert!(
            !selects(first.namespace_selector.as_ref(), &other),
            "{other:?}"
        );
    }

    // Across both entries: one entry per injectable namespace, none otherwise.
    assert_eq!(
        entries_for(&[("istio-injection", "enabled")]),
        ["namespace.sidecar-injector.istio.io"]
    );
    assert_eq!(
        entries_for(&[("istio.io/rev", "default")]),
        ["rev.namespace.sidecar-injector.istio.io"]
    );
    assert_eq!(
        entries_for(&[("istio-injection", "enabled"), ("istio.io/rev", "default")]),
        ["namespace.sidecar-injector.istio.io"],
        "a namespace with both labels is injected once"
    );
    assert!(entries_for(&[]).is_empty());
    assert!(entries_for(&[("istio-injection", "disabled")]).is_empty());
    assert!(entries_for(&[("istio.io/rev", "canary")]).is_empty());
    assert!(entries_for(&[("kubernetes.io/metadata.name", "kube-system")]).is_empty());
}

#[test]
fn the_object_selector_skips_pods_that_opt_out() {
    for webhook in injector().webhooks.unwrap() {
        let selector = webhook.object_selector.as_ref();
        assert!(selects(selector, &labels(&[("app", "reviews")])));
        assert!(selects(
            selector,
            &labels(&[("sidecar.istio.io/inject", "true")])
        ));
        assert!(!selects(
            selector,
            &labels(&[("sidecar.istio.io/inject", "false")])
        ));
        assert_eq!(
            webhook
                .client_config
                .service
                .as_ref()
                .unwrap()
                .path
                .as_deref(),
            Some("/inject")
        );
        let rules = webhook.rules.unwrap();
        assert_eq!(
            rules[0].resources.as_deref(),
            Some(&["pods".to_string()][..])
        );
        assert_eq!(
            rules[0].operations.as_deref(),
            Some(&["CREATE".to_string()][..])
        );
    }
}

#[test]
fn the_control_planes_ca_bundle_patch_fills_both_configurations() {
    let cert = ServingCert::generate(&service_dns_names()).unwrap();
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        let mut config = rendered(kind);
        let count = config["webhooks"].as_array().unwrap().len();
        for webhook in config["webhooks"].as_array().unwrap() {
            assert_eq!(
                webhook["clientConfig"]["caBundle"], "",
                "{kind}: empty until patched"
            );
        }
        let patch = ca_bundle_patch(&config, &cert.ca_pem);
        json_patch::patch(&mut config, &patch).unwrap();
        for webhook in config["webhooks"].as_array().unwrap() {
            let bundle = webhook["clientConfig"]["caBundle"].as_str().unwrap();
            let pem = base64::engine::general_purpose::STANDARD
                .decode(bundle)
                .unwrap();
            assert_eq!(String::from_utf8(pem).unwrap(), cert.ca_pem);
        }
        assert!(count >= 1);
        if kind == "ValidatingWebhookConfiguration" {
            let typed: ValidatingWebhookConfiguration = serde_json::from_value(config).unwrap();
            let webhook = &typed.webhooks.unwrap()[0];
            assert_eq!(
                webhook
                    .client_config
                    .service
                    .as_ref()
                    .unwrap()
                    .path
                    .as_deref(),
                Some("/validate")
            );
            assert_eq!(
                webhook.client_config.ca_bundle.as_ref().unwrap().0,
                cert.ca_pem.as_bytes()
            );
        }
    }
}
