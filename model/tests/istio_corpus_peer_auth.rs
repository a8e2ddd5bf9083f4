//! An examiner's corpus of PeerAuthentication resolution, from istio.io's
//! PeerAuthentication reference and the "Mutual TLS migration" task:
//! workload > namespace > mesh (root namespace), UNSET inherits,
//! portLevelMtls only on workload policies, PERMISSIVE by default.

use std::collections::BTreeMap;

use loupe_model::parse_documents;
use loupe_model::peer_auth::{MtlsMode, resolve};

const CONFIG: &str = r#"
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: legacy}
spec:
  mtls: {mode: PERMISSIVE}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: inherit}
spec:
  mtls: {mode: UNSET}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: finance, namespace: foo}
spec:
  selector: {matchLabels: {app: finance}}
  mtls: {mode: STRICT}
  portLevelMtls:
    8080: {mode: DISABLE}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: only-ports, namespace: legacy}
spec:
  selector: {matchLabels: {app: metrics}}
  portLevelMtls:
    9090: {mode: DISABLE}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: plain, namespace: foo}
spec:
  selector: {matchLabels: {app: plain}}
  mtls: {mode: DISABLE}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: root-selector, namespace: istio-system}
spec:
  selector: {matchLabels: {app: gateway}}
  mtls: {mode: DISABLE}
"#;

const NO_MESH_POLICY: &str = r#"
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ns, namespace: foo}
spec:
  mtls: {mode: STRICT}
  portLevelMtls:
    8080: {mode: DISABLE}
"#;

fn mode(config: &str, namespace: &str, app: &str, port: u16) -> (MtlsMode, Option<String>) {
    let parsed = parse_documents("corpus.yaml", config);
    let labels: BTreeMap<String, String> = [("app".to_string(), app.to_string())].into();
    let r = resolve(&parsed.resources, "istio-system", namespace, &labels, port);
    (r.mode, r.policy)
}

/// (name, config, namespace, app label, port, mode, deciding policy).
type Case = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    u16,
    MtlsMode,
    Option<&'static str>,
);

#[test]
fn peer_authentication_resolves_as_istio_does() {
    use MtlsMode::*;
    let cases: [Case; 11] = [
        (
            "mesh-wide STRICT applies",
            CONFIG,
            "foo",
            "web",
            80,
            Strict,
            Some("istio-system/default"),
        ),
        (
            "namespace overrides mesh",
            CONFIG,
            "legacy",
            "web",
            80,
            Permissive,
            Some("legacy/default"),
        ),
        (
            "namespace UNSET inherits mesh",
            CONFIG,
            "inherit",
            "web",
            80,
            Strict,
            Some("istio-system/default"),
        ),
        (
            "workload port-level DISABLE",
            CONFIG,
            "foo",
            "finance",
            8080,
            Disable,
            Some("foo/finance"),
        ),
        (
            "workload mode on other ports",
            CONFIG,
            "foo",
            "finance",
            9080,
            Strict,
            Some("foo/finance"),
        ),
        (
            "workload DISABLE beats mesh STRICT",
            CONFIG,
            "foo",
            "plain",
            80,
            Disable,
            Some("foo/plain"),
        ),
        (
            "workload without mtls: port listed",
            CONFIG,
            "legacy",
            "metrics",
            9090,
            Disable,
            Some("legacy/only-ports"),
        ),
        (
            "workload without mtls: other port inherits namespace",
            CONFIG,
            "legacy",
            "metrics",
            80,
            Permissive,
            Some("legacy/default"),
        ),
        (
            "selector is namespace-scoped",
            CONFIG,
            "bar",
            "finance",
            8080,
            Strict,
            Some("istio-system/default"),
        ),
        (
            "root-namespace selector only selects root-namespace workloads",
            CONFIG,
            "foo",
            "gateway",
            80,
            Strict,
            Some("istio-system/default"),
        ),
        (
            "portLevelMtls ignored without selector",
            NO_MESH_POLICY,
            "foo",
            "web",
            8080,
            Strict,
            Some("foo/ns"),
        ),
    ];
    let mut failures = Vec::new();
    for (name, config, ns, app, port, want, policy) in cases {
        let got = mode(config, ns, app, port);
        let want = (want, policy.map(str::to_string));
        if got != want {
            failures.push(format!("{name}: got {got:?}, want {want:?}"));
        }
    }
    assert_eq!(
        mode("", "foo", "web", 80),
        (Permissive, None),
        "no policy: PERMISSIVE"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
