//! PeerAuthentication resolution, table-driven, from Istio's
//! PeerAuthentication reference: workload > namespace > mesh, UNSET
//! inherits, portLevelMtls per port, PERMISSIVE by default.

mod common;

use std::collections::BTreeMap;

use loupe_model::peer_auth::{MtlsMode, effective_mtls_mode, resolve};

const MESH_STRICT: &str = "kind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec:\n  mtls: {mode: STRICT}\n";
const FOO_PERMISSIVE: &str = "kind: PeerAuthentication\nmetadata: {name: default, namespace: foo}\nspec:\n  mtls: {mode: PERMISSIVE}\n";
const FOO_UNSET: &str = "kind: PeerAuthentication\nmetadata: {name: default, namespace: foo}\nspec:\n  mtls: {mode: UNSET}\n";
/// The reference's example: finance is STRICT, but port 8080 is DISABLE.
const FINANCE: &str = "kind: PeerAuthentication\nmetadata: {name: finance, namespace: foo}\nspec:\n  selector:\n    matchLabels: {app: finance}\n  mtls: {mode: STRICT}\n  portLevelMtls:\n    8080: {mode: DISABLE}\n";
/// Workload policy that only sets one port; the rest inherits.
const FINANCE_PORT_ONLY: &str = "kind: PeerAuthentication\nmetadata: {name: finance, namespace: foo}\nspec:\n  selector:\n    matchLabels: {app: finance}\n  portLevelMtls:\n    8080: {mode: DISABLE}\n    9090: {mode: UNSET}\n";

struct Case {
    name: &'static str,
    policies: &'static [&'static str],
    namespace: &'static str,
    app: &'static str,
    port: u16,
    mode: MtlsMode,
    policy: Option<&'static str>,
}

const CASES: &[Case] = &[
    Case {
        name: "nothing configured: PERMISSIVE",
        policies: &[],
        namespace: "foo",
        app: "finance",
        port: 80,
        mode: MtlsMode::Permissive,
        policy: None,
    },
    Case {
        name: "mesh-wide STRICT applies everywhere",
        policies: &[MESH_STRICT],
        namespace: "bar",
        app: "x",
        port: 80,
        mode: MtlsMode::Strict,
        policy: Some("istio-system/default"),
    },
    Case {
        name: "namespace PERMISSIVE overrides mesh STRICT",
        policies: &[MESH_STRICT, FOO_PERMISSIVE],
        namespace: "foo",
        app: "x",
        port: 80,
        mode: MtlsMode::Permissive,
        policy: Some("foo/default"),
    },
    Case {
        name: "namespace UNSET inherits mesh STRICT",
        policies: &[MESH_STRICT, FOO_UNSET],
        namespace: "foo",
        app: "x",
        port: 80,
        mode: MtlsMode::Strict,
        policy: Some("istio-system/default"),
    },
    Case {
        name: "workload STRICT overrides namespace PERMISSIVE",
        policies: &[FOO_PERMISSIVE, FINANCE],
        namespace: "foo",
        app: "finance",
        port: 80,
        mode: MtlsMode::Strict,
        policy: Some("foo/finance"),
    },
    Case {
        name: "portLevelMtls DISABLE on 8080",
        policies: &[FOO_PERMISSIVE, FINANCE],
        namespace: "foo",
        app: "finance",
        port: 8080,
        mode: MtlsMode::Disable,
        policy: Some("foo/finance"),
    },
    Case {
        name: "workload selector does not match another app",
        policies: &[FOO_PERMISSIVE, FINANCE],
        namespace: "foo",
        app: "ledger",
        port: 8080,
        mode: MtlsMode::Permissive,
        policy: Some("foo/default"),
    },
    Case {
        name: "workload policy in another namespace does not apply",
        policies: &[MESH_STRICT, FINANCE],
        namespace: "bar",
        app: "finance",
        port: 8080,
        mode: MtlsMode::Strict,
        policy: Some("istio-system/default"),
    },
    Case {
        name: "workload policy without mtls inherits on other ports",
        policies: &[MESH_STRICT, FINANCE_PORT_ONLY],
        namespace: "foo",
        app: "finance",
        port: 80,
        mode: MtlsMode::Strict,
        policy: Some("istio-system/default"),
    },
    Case {
        name: "port-level UNSET inherits",
        policies: &[MESH_STRICT, FINANCE_PORT_ONLY],
        namespace: "foo",
        app: "finance",
        port: 9090,
        mode: MtlsMode::Strict,
        policy: Some("istio-system/default"),
    },
    Case {
        name: "port-level DISABLE with an inherited STRICT",
        policies: &[MESH_STRICT, FINANCE_PORT_ONLY],
        namespace: "foo",
        app: "finance",
        port: 8080,
        mode: MtlsMode::Disable,
        policy: Some("foo/finance"),
    },
];

#[test]
fn effective_modes_follow_istio() {
    let mut failures = Vec::new();
    for case in CASES {
        let resources = common::resources(&case.policies.join("---\n"));
        let labels = BTreeMap::from([("app".to_string(), case.app.to_string())]);
        let got = resolve(
            &resources,
            "istio-system",
            case.namespace,
            &labels,
            case.port,
        );
        if got.mode != case.mode || got.policy.as_deref() != case.policy {
            failures.push(format!(
                "{}: expected {:?} by {:?}, got {:?} by {:?}",
                case.name, case.mode, case.policy, got.mode, got.policy
            ));
        }
        let mode = effective_mtls_mode(
            &resources,
            "istio-system",
            case.namespace,
            &labels,
            case.port,
        );
        assert_eq!(mode, got.mode, "{}", case.name);
    }
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn mode_values_are_case_sensitive() {
    let bad = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: x}\nspec:\n  mtls: {mode: strict}\n";
    let parsed = loupe_model::parse_documents("pa.yaml", bad);
    assert!(parsed.resources.is_empty());
    let error = parsed
        .diagnostics
        .iter()
        .find(|d| d.severity == loupe_model::Severity::Error)
        .expect("lower-case `strict` is a schema error, as in Istio");
    assert_eq!(error.resource, "PeerAuthentication/default/x");
    assert!(error.message.contains("STRICT"), "{}", error.message);
}
