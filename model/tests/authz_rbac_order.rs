//! Which policy is named when several of one action match: Envoy's RBAC
//! filter tries policies in the order of their names, which Istio writes
//! as `ns[NS]-policy[NAME]-rule[N]`, with the workload's namespace and the
//! root namespace in one filter. Also: dry-run policies are never enforced.

use loupe_model::authz::{Authorizer, Decision};
use loupe_model::{Request, parse_documents};

fn deny(ns: &str, name: &str) -> String {
    format!(
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  action: DENY\n  rules:\n  - {{}}\n---\n"
    )
}

fn decide(yaml: &str, namespace: &str) -> (Decision, Option<String>) {
    let parsed = parse_documents("policies.yaml", yaml);
    let request: Request = serde_json::from_str(&format!(
        r#"{{"destination":{{"namespace":"{namespace}","labels":{{"app":"x"}},"port":80}},
            "request":{{"method":"GET","path":"/","host":"x"}}}}"#
    ))
    .expect("request JSON");
    let d = Authorizer::new(&parsed.resources, "istio-system").authorize(&request);
    (d.decision, d.policy)
}

#[test]
fn root_namespace_policy_comes_first_for_namespaces_after_it() {
    let yaml = deny("prod", "local") + &deny("istio-system", "mesh");
    assert_eq!(
        decide(&yaml, "prod"),
        (Decision::Deny, Some("istio-system/mesh".into()))
    );
    let yaml = deny("foo", "local") + &deny("istio-system", "mesh");
    assert_eq!(
        decide(&yaml, "foo"),
        (Decision::Deny, Some("foo/local".into()))
    );
}

#[test]
fn names_order_as_envoy_rbac_keys() {
    // `policy[deny-a]` sorts before `policy[deny]` (`-` < `]`).
    let yaml = deny("foo", "deny") + &deny("foo", "deny-a");
    assert_eq!(
        decide(&yaml, "foo"),
        (Decision::Deny, Some("foo/deny-a".into()))
    );
}

#[test]
fn dry_run_values_follow_go_parse_bool() {
    for (value, enforced) in [
        ("true", false),
        ("True", false),
        ("1", false),
        ("false", true),
        ("yes", true),
    ] {
        let yaml = format!(
            "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: d\n  namespace: foo\n  annotations: {{istio.io/dry-run: \"{value}\"}}\nspec:\n  action: DENY\n  rules:\n  - {{}}\n"
        );
        let want = if enforced {
            (Decision::Deny, Some("foo/d".to_string()))
        } else {
            (Decision::Allow, None)
        };
        assert_eq!(decide(&yaml, "foo"), want, "istio.io/dry-run: {value}");
    }
}
