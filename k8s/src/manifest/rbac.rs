//! ServiceAccounts and what each part may do with the API server.
//!
//! - `loupe-control` watches Istio's kinds and writes their `status`, reads
//!   the registry (Services, EndpointSlices, Pods, Namespaces), checks proxy
//!   tokens (TokenReview), writes `istio-ca-root-cert` ConfigMaps in every
//!   namespace, records Events, patches the webhooks' caBundle, and, in
//!   `istio-system`, holds its Lease and its CA Secret.
//! - `loupe-console` edits Istio's kinds (server-side apply) and reads the
//!   registry for the graph.
//! - `loupe-collector` lists Pods to find the proxies it scrapes.
//! - The ingress gateway needs nothing of the API server.

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};

use super::{NAMESPACE, json, meta};
use crate::crd;

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &[
    "get", "list", "watch", "create", "update", "patch", "delete",
];

/// The ingress gateway's ServiceAccount, named as Istio names it.
pub(crate) const GATEWAY_SERVICE_ACCOUNT: &str = "istio-ingressgateway-service-account";

pub(super) fn objects(out: &mut Vec<serde_json::Value>) {
    for name in [
        "loupe-control",
        "loupe-collector",
        "loupe-console",
        GATEWAY_SERVICE_ACCOUNT,
    ] {
        out.push(json(&ServiceAccount {
            metadata: meta(name, Some(NAMESPACE), &[]),
            ..Default::default()
        }));
    }

    let istio_groups = [
        "networking.istio.io",
        "security.istio.io",
        "telemetry.istio.io",
    ];
    let istio_kinds: Vec<String> = crd::crds()
        .iter()
        .map(|c| c.spec.names.plural.clone())
        .collect();
    let istio_status: Vec<String> = istio_kinds.iter().map(|p| format!("{p}/status")).collect();
    let istio_kinds: Vec<&str> = istio_kinds.iter().map(String::as_str).collect();
    let istio_status: Vec<&str> = istio_status.iter().map(String::as_str).collect();

    cluster_role(
        out,
        "loupe-control",
        vec![
            // Written too: console edits go back to their objects.
            rule(&istio_groups, &istio_kinds, WRITE),
            rule(&istio_groups, &istio_status, &["get", "update", "patch"]),
            rule(&[""], &["services", "pods", "namespaces", "nodes"], READ),
            rule(&["discovery.k8s.io"], &["endpointslices"], READ),
            rule(&["authentication.k8s.io"], &["tokenreviews"], &["create"]),
            rule(
                &[""],
                &["configmaps"],
                &["get", "list", "watch", "create", "update", "patch"],
            ),
            rule(
                &["", "events.k8s.io"],
                &["events"],
                &["create", "update", "patch"],
            ),
            rule(
                &["admissionregistration.k8s.io"],
                &[
                    "mutatingwebhookconfigurations",
                    "validatingwebhookconfigurations",
                ],
                &["get", "list", "watch", "update", "patch"],
            ),
            rule(
                &["apiextensions.k8s.io"],
                &["customresourcedefinitions"],
                READ,
            ),
        ],
    );
    namespaced_role(
        out,
        "loupe-control",
        vec![
            rule(&["coordination.k8s.io"], &["leases"], WRITE),
            // The CA, plugged in as Istio's `cacerts` or generated on first start.
            rule(
                &[""],
                &["secrets"],
                &["get", "list", "watch", "create", "update", "patch"],
            ),
        ],
    );
    cluster_role(
        out,
        "loupe-console",
        vec![
            // The console writes the store; loupe-control writes the objects.
            rule(&istio_groups, &istio_kinds, READ),
            rule(&[""], &["services", "pods", "namespaces"], READ),
            rule(&["discovery.k8s.io"], &["endpointslices"], READ),
        ],
    );
    cluster_role(out, "loupe-collector", vec![rule(&[""], &["pods"], READ)]);
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    let strings = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    PolicyRule {
        api_groups: Some(strings(groups)),
        resources: Some(strings(resources)),
        verbs: strings(verbs),
        ..Default::default()
    }
}

fn subject(name: &str) -> Vec<Subject> {
    vec![Subject {
        kind: "ServiceAccount".into(),
        name: name.into(),
        namespace: Some(NAMESPACE.into()),
        ..Default::default()
    }]
}

fn cluster_role(out: &mut Vec<serde_json::Value>, name: &str, rules: Vec<PolicyRule>) {
    out.push(json(&ClusterRole {
        metadata: meta(name, None, &[]),
        rules: Some(rules),
        ..Default::default()
    }));
    out.push(json(&ClusterRoleBinding {
        metadata: meta(name, None, &[]),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: name.into(),
        },
        subjects: Some(subject(name)),
    }));
}

fn namespaced_role(out: &mut Vec<serde_json::Value>, name: &str, rules: Vec<PolicyRule>) {
    out.push(json(&Role {
        metadata: meta(name, Some(NAMESPACE), &[]),
        rules: Some(rules),
    }));
    out.push(json(&RoleBinding {
        metadata: meta(name, Some(NAMESPACE), &[]),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: name.into(),
        },
        subjects: Some(subject(name)),
    }));
}
