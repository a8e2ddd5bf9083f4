//! Authorization decisions, table-driven, from the examples and rules of
//! Istio's AuthorizationPolicy reference and "Authorization policy" concept
//! pages (istio.io).

mod common;

use loupe_model::authz::{Authorizer, Decision};

struct Case {
    name: &'static str,
    policies: &'static str,
    request: &'static str,
    decision: Decision,
    policy: Option<&'static str>,
}

const ALLOW: Decision = Decision::Allow;
const DENY: Decision = Decision::Deny;

/// mTLS from `sleep` in `default` to `httpbin` in `foo`.
const SLEEP_GET_INFO: &str = r#"{
  "source": {"principal": "cluster.local/ns/default/sa/sleep", "ip": "10.0.0.5"},
  "destination": {"namespace": "foo", "labels": {"app": "httpbin", "version": "v1"}, "port": 8000},
  "request": {"method": "GET", "path": "/info/x?y=1", "host": "httpbin.foo.svc.cluster.local",
              "headers": {"version": "v1"}}
}"#;

/// The same call in plaintext: no principal, no namespace.
const PLAINTEXT_GET_INFO: &str = r#"{
  "source": {"ip": "10.0.0.5"},
  "destination": {"namespace": "foo", "labels": {"app": "httpbin"}, "port": 8000},
  "request": {"method": "GET", "path": "/info", "host": "httpbin.foo.svc.cluster.local"}
}"#;

/// mTLS from namespace `dev`, POST.
const DEV_POST: &str = r#"{
  "source": {"principal": "cluster.local/ns/dev/sa/tool", "ip": "192.168.1.7"},
  "destination": {"namespace": "foo", "labels": {"app": "httpbin"}, "port": 8000},
  "request": {"method": "POST", "path": "/data", "host": "httpbin.foo.svc.cluster.local"}
}"#;

const HTTPBIN: &str = r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: httpbin, namespace: foo}
spec:
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/sleep"]
    - source:
        namespaces: ["test"]
    to:
    - operation:
        methods: ["GET"]
        paths: ["/info*"]
    - operation:
        methods: ["POST"]
        paths: ["/data"]
"#;

const CASES: &[Case] = &[
    Case {
        name: "no policy at all: allowed by default",
        policies: "",
        request: SLEEP_GET_INFO,
        decision: ALLOW,
        policy: None,
    },
    Case {
        name: "allow-nothing (spec: {}) selects the namespace and denies",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: allow-nothing, namespace: foo}\nspec: {}\n",
        request: SLEEP_GET_INFO,
        decision: DENY,
        policy: None,
    },
    Case {
        name: "allow-all (rules: [{}]) allows",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: allow-all, namespace: foo}\nspec:\n  rules: [{}]\n",
        request: PLAINTEXT_GET_INFO,
        decision: ALLOW,
        policy: Some("foo/allow-all"),
    },
    Case {
        name: "deny-all (DENY, rules: [{}]) denies",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: deny-all, namespace: foo}\nspec:\n  action: DENY\n  rules: [{}]\n",
        request: SLEEP_GET_INFO,
        decision: DENY,
        policy: Some("foo/deny-all"),
    },
    Case {
        name: "DENY without rules matches nothing",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: d, namespace: foo}\nspec:\n  action: DENY\n",
        request: SLEEP_GET_INFO,
        decision: ALLOW,
        policy: None,
    },
    Case {
        name: "reference example: principal sleep, GET /info* allowed",
        policies: HTTPBIN,
        request: SLEEP_GET_INFO,
        decision: ALLOW,
        policy: Some("foo/httpbin"),
    },
    Case {
        name: "reference example: other namespace POST /data is denied by default",
        policies: HTTPBIN,
        request: DEV_POST,
        decision: DENY,
        policy: None,
    },
    Case {
        name: "reference example: plaintext cannot match principals or namespaces",
        policies: HTTPBIN,
        request: PLAINTEXT_GET_INFO,
        decision: DENY,
        policy: None,
    },
    Case {
        name: "policy in another namespace does not apply",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: allow-nothing, namespace: bar}\nspec: {}\n",
        request: SLEEP_GET_INFO,
        decision: ALLOW,
        policy: None,
    },
    Case {
        name: "missing metadata.namespace means default",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: deny-all}\nspec:\n  action: DENY\n  rules: [{}]\n",
        request: r#"{"destination": {"labels": {"app": "x"}}, "request": {"method": "GET", "path": "/"}}"#,
        decision: DENY,
        policy: Some("default/deny-all"),
    },
    Case {
        name: "selector that does not match the workload: policy does not apply",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: p, namespace: foo}\nspec:\n  selector:\n    matchLabels: {app: productpage}\n",
        request: SLEEP_GET_INFO,
        decision: ALLOW,
        policy: None,
    },
    Case {
        name: "selector matching the workload: allow-nothing applies",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: p, namespace: foo}\nspec:\n  selector:\n    matchLabels: {app: httpbin, version: v1}\n",
        request: SLEEP_GET_INFO,
        decision: DENY,
        policy: None,
    },
    Case {
        name: "reference example: DENY POST from namespace dev",
        policies: r#"
kind: AuthorizationPolicy
metadata: {name: httpbin-deny, namespace: foo}
spec:
  action: DENY
  rules:
  - from:
    - source:
        namespaces: ["dev"]
    to:
    - operation:
        methods: ["POST"]
"#,
        request: DEV_POST,
        decision: DENY,
        policy: Some("foo/httpbin-deny"),
    },
    Case {
        name: "DENY takes precedence over a matching ALLOW",
        policies: r#"
kind: AuthorizationPolicy
metadata: {name: allow-all, namespace: foo}
spec:
  rules: [{}]
---
kind: AuthorizationPolicy
metadata: {name: deny-post, namespace: foo}
spec:
  action: DENY
  rules:
  - to:
    - operation: {methods: ["POST"]}
"#,
        request: DEV_POST,
        decision: DENY,
        policy: Some("foo/deny-post"),
    },
    Case {
        name: "non-matching DENY falls through to the matching ALLOW",
        policies: r#"
kind: AuthorizationPolicy
metadata: {name: allow-all, namespace: foo}
spec:
  rules: [{}]
---
kind: AuthorizationPolicy
metadata: {name: deny-post, namespace: foo}
spec:
  action: DENY
  rules:
  - to:
    - operation: {methods: ["POST"]}
"#,
        request: SLEEP_GET_INFO,
        decision: ALLOW,
        policy: Some("foo/allow-all"),
    },
    Case {
        name: "reference example: DENY requests not from namespace foo (plaintext has no namespace)",
        policies: r#"
kind: AuthorizationPolicy
metadata: {name: deny-other-ns, namespace: foo}
spec:
  action: DENY
  rules:
  - from:
    - source:
        notNamespaces: ["foo"]
"#,
        request: PLAINTEXT_GET_INFO,
        decision: DENY,
        policy: Some("foo/deny-other-ns"),
    },
    Case {
        name: "DENY plaintext with notPrincipals: [\"*\"]",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: require-mtls, namespace: foo}\nspec:\n  action: DENY\n  rules:\n  - from:\n    - source: {notPrincipals: [\"*\"]}\n",
        request: PLAINTEXT_GET_INFO,
        decision: DENY,
        policy: Some("foo/require-mtls"),
    },
    Case {
        name: "notPrincipals: [\"*\"] does not match an mTLS request",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: require-mtls, namespace: foo}\nspec:\n  action: DENY\n  rules:\n  - from:\n    - source: {notPrincipals: [\"*\"]}\n",
        request: SLEEP_GET_INFO,
        decision: ALLOW,
        policy: None,
    },
    Case {
        name: "principals: [\"*\"] requires an identity: plaintext denied",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: any-identity, namespace: foo}\nspec:\n  rules:\n  - from:\n    - source: {principals: [\"*\"]}\n",
        request: PLAINTEXT_GET_INFO,
        decision: DENY,
        policy: None,
    },
    Case {
        name: "principals: [\"*\"] matches any mTLS identity",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: any-identity, namespace: foo}\nspec:\n  rules:\n  - from:\n    - source: {principals: [\"*\"]}\n",
        request: DEV_POST,
        decision: ALLOW,
        policy: Some("foo/any-identity"),
    },
    Case {
        name: "principal suffix match (*/sa/sleep)",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: p, namespace: foo}\nspec:\n  rules:\n  - from:\n    - source: {principals: [\"*/sa/sleep\"]}\n",
        request: SLEEP_GET_INFO,
        decision: ALLOW,
        policy: Some("foo/p"),
    },
    Case {
        name: "path prefix match ignores the query string",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: p, namespace: foo}\nspec:\n  rules:\n  - to:\n    - operation: {paths: [\"/info/x\"]}\n",
        request: SLEEP_GET_INFO,
        decision: ALLOW,
        policy: Some("foo/p"),
    },
    Case {
        name: "notPaths: everything but /info* is allowed; /info is denied",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: p, namespace: foo}\nspec:\n  rules:\n  - to:\n    - operation: {methods: [\"GET\"], notPaths: [\"/info*\"]}\n",
        request: SLEEP_GET_INFO,
        decision: DENY,
        policy: None,
    },
    Case {
        name: "path template {*} matches one segment",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: p, namespace: foo}\nspec:\n  rules:\n  - to:\n    - operation: {paths: [\"/info/{*}\"]}\n",
        request: SLEEP_GET_INFO,
        decision: ALLOW,
        policy: Some("foo/p"),
    },
    Case {
        name: "hosts match case-insensitively, suffix form",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: p, namespace: foo}\nspec:\n  rules:\n  - to:\n    - operation: {hosts: [\"*.FOO.svc.cluster.local\"]}\n",
        request: SLEEP_GET_INFO,
        decision: ALLOW,
        policy: Some("foo/p"),
    },
    Case {
        name: "hosts: a host without the port does not match a Host with a port",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: p, namespace: foo}\nspec:\n  rules:\n  - to:\n    - operation: {hosts: [\"httpbin\"]}\n",
        request: r#"{"destination": {"namespace": "foo"}, "request": {"host": "httpbin:8000"}}"#,
        decision: DENY,
        policy: None,
    },
    Case {
        name: "ports and notPorts",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: p, namespace: foo}\nspec:\n  rules:\n  - to:\n    - operation: {ports: [\"8000\", \"9000\"], notPorts: [\"9000\"]}\n",
        request: SLEEP_GET_INFO,
        decision: ALLOW,
        policy: Some("foo/p"),
    },
    Case {
        name: "without destination.port, the port of the Host header is the destination port",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: p, namespace: foo}\nspec:\n  rules:\n  - to:\n    - operation: {ports: [\"9080\"]}\n",
        request: r#"{"destination": {"namespace": "foo"}, "request": {"host": "reviews:9080"}}"#,
        decision: ALLOW,
        policy: Some("foo/p"),
    },
    Case {
        name: "methods are OR within the field, AND across fields",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: p, namespace: foo}\nspec:\n  rules:\n  - to:\n    - operation: {methods: [\"PUT\", \"POST\"], paths: [\"/info*\"]}\n",
        request: DEV_POST,
        decision: DENY,
        policy: None,
    },
    Case {
        name: "reference example: when request.headers[version] in [v1, v2]",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: p, namespace: foo}\nspec:\n  rules:\n  - when:\n    - key: request.headers[version]\n      values: [\"v1\", \"v2\"]\n",
        request: SLEEP_GET_INFO,
        decision: ALLOW,
        policy: Some("foo/p"),
    },
    Case {
        name: "when on an absent header does not match",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: p, namespace: foo}\nspec:\n  rules:\n  - when:\n    - key: request.headers[version]\n      values: [\"*\"]\n",
        request: DEV_POST,
        decision: DENY,
        policy: None,
    },
    Case {
        name: "when notValues: a v1 header is excluded",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: p, namespace: foo}\nspec:\n  rules:\n  - when:\n    - key: request.headers[Version]\n      notValues: [\"v1\"]\n",
        request: SLEEP_GET_INFO,
        decision: DENY,
        policy: None,
    },
    Case {
        name: "when source.ip in a CIDR, and destination.port",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: p, namespace: foo}\nspec:\n  rules:\n  - when:\n    - key: source.ip\n      values: [\"10.0.0.0/16\"]\n    - key: destination.port\n      values: [\"8000\"]\n",
        request: SLEEP_GET_INFO,
        decision: ALLOW,
        policy: Some("foo/p"),
    },
    Case {
        name: "when source.namespace comes from the principal",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: p, namespace: foo}\nspec:\n  rules:\n  - when:\n    - key: source.namespace\n      values: [\"dev\"]\n",
        request: DEV_POST,
        decision: ALLOW,
        policy: Some("foo/p"),
    },
    Case {
        name: "when request.auth.claims: no JWT, no match",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: p, namespace: foo}\nspec:\n  rules:\n  - when:\n    - key: request.auth.claims[iss]\n      values: [\"https://accounts.google.com\"]\n",
        request: SLEEP_GET_INFO,
        decision: DENY,
        policy: None,
    },
    Case {
        name: "unknown when key never matches",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: p, namespace: foo}\nspec:\n  action: DENY\n  rules:\n  - when:\n    - key: request.bogus\n      notValues: [\"x\"]\n",
        request: SLEEP_GET_INFO,
        decision: ALLOW,
        policy: None,
    },
    Case {
        name: "ipBlocks and notIpBlocks",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: p, namespace: foo}\nspec:\n  action: DENY\n  rules:\n  - from:\n    - source: {ipBlocks: [\"192.168.0.0/16\"], notIpBlocks: [\"192.168.1.7\"]}\n",
        request: DEV_POST,
        decision: ALLOW,
        policy: None,
    },
    Case {
        name: "remoteIpBlocks use the peer address without trusted proxies",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: p, namespace: foo}\nspec:\n  action: DENY\n  rules:\n  - from:\n    - source: {remoteIpBlocks: [\"192.168.1.0/24\"]}\n",
        request: DEV_POST,
        decision: DENY,
        policy: Some("foo/p"),
    },
    Case {
        name: "root namespace policy applies mesh-wide",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: mesh-deny-post, namespace: istio-system}\nspec:\n  action: DENY\n  rules:\n  - to:\n    - operation: {methods: [\"POST\"]}\n",
        request: DEV_POST,
        decision: DENY,
        policy: Some("istio-system/mesh-deny-post"),
    },
    Case {
        name: "root namespace selector still applies to labels",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: mesh-deny, namespace: istio-system}\nspec:\n  action: DENY\n  selector:\n    matchLabels: {app: ratings}\n  rules: [{}]\n",
        request: DEV_POST,
        decision: ALLOW,
        policy: None,
    },
    Case {
        name: "root namespace ALLOW-nothing makes every workload default-deny",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: allow-nothing, namespace: istio-system}\nspec: {}\n---\nkind: AuthorizationPolicy\nmetadata: {name: allow-get, namespace: foo}\nspec:\n  rules:\n  - to:\n    - operation: {methods: [\"GET\"]}\n",
        request: DEV_POST,
        decision: DENY,
        policy: None,
    },
    Case {
        name: "a namespace ALLOW matches even under a mesh allow-nothing",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: allow-nothing, namespace: istio-system}\nspec: {}\n---\nkind: AuthorizationPolicy\nmetadata: {name: allow-get, namespace: foo}\nspec:\n  rules:\n  - to:\n    - operation: {methods: [\"GET\"]}\n",
        request: SLEEP_GET_INFO,
        decision: ALLOW,
        policy: Some("foo/allow-get"),
    },
    Case {
        name: "AUDIT never changes the decision (alone)",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: audit, namespace: foo}\nspec:\n  action: AUDIT\n  rules: [{}]\n",
        request: SLEEP_GET_INFO,
        decision: ALLOW,
        policy: None,
    },
    Case {
        name: "AUDIT never changes the decision (with allow-nothing)",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: audit, namespace: foo}\nspec:\n  action: AUDIT\n  rules: [{}]\n---\nkind: AuthorizationPolicy\nmetadata: {name: allow-nothing, namespace: foo}\nspec: {}\n",
        request: SLEEP_GET_INFO,
        decision: DENY,
        policy: None,
    },
    Case {
        name: "matching CUSTOM denies (no external authorizer), before ALLOW",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: ext, namespace: foo}\nspec:\n  action: CUSTOM\n  provider: {name: my-ext-authz}\n  rules:\n  - to:\n    - operation: {paths: [\"/admin*\"]}\n---\nkind: AuthorizationPolicy\nmetadata: {name: allow-all, namespace: foo}\nspec:\n  rules: [{}]\n",
        request: r#"{"destination": {"namespace": "foo"}, "request": {"method": "GET", "path": "/admin/users"}}"#,
        decision: DENY,
        policy: Some("foo/ext"),
    },
    Case {
        name: "non-matching CUSTOM has no effect",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: ext, namespace: foo}\nspec:\n  action: CUSTOM\n  provider: {name: my-ext-authz}\n  rules:\n  - to:\n    - operation: {paths: [\"/admin*\"]}\n---\nkind: AuthorizationPolicy\nmetadata: {name: allow-all, namespace: foo}\nspec:\n  rules: [{}]\n",
        request: SLEEP_GET_INFO,
        decision: ALLOW,
        policy: Some("foo/allow-all"),
    },
    Case {
        name: "several ALLOW policies, none matching: default deny",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: a, namespace: foo}\nspec:\n  rules:\n  - to:\n    - operation: {methods: [\"DELETE\"]}\n---\nkind: AuthorizationPolicy\nmetadata: {name: b, namespace: foo}\nspec:\n  rules:\n  - from:\n    - source: {namespaces: [\"prod\"]}\n",
        request: DEV_POST,
        decision: DENY,
        policy: None,
    },
    Case {
        name: "rules are OR: the second rule matches",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: a, namespace: foo}\nspec:\n  rules:\n  - to:\n    - operation: {methods: [\"DELETE\"]}\n  - from:\n    - source: {namespaces: [\"dev\"]}\n",
        request: DEV_POST,
        decision: ALLOW,
        policy: Some("foo/a"),
    },
    Case {
        name: "from AND to: source matches but operation does not",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: a, namespace: foo}\nspec:\n  rules:\n  - from:\n    - source: {namespaces: [\"dev\"]}\n    to:\n    - operation: {methods: [\"GET\"]}\n",
        request: DEV_POST,
        decision: DENY,
        policy: None,
    },
    Case {
        name: "targetRef policies do not attach to sidecars",
        policies: "kind: AuthorizationPolicy\nmetadata: {name: gw, namespace: foo}\nspec:\n  targetRefs:\n  - {kind: Gateway, group: gateway.networking.k8s.io, name: ingress}\n",
        request: SLEEP_GET_INFO,
        decision: ALLOW,
        policy: None,
    },
];

#[test]
fn authorization_decisions_follow_istio() {
    let mut failures = Vec::new();
    for case in CASES {
        let authorizer = Authorizer::new(&common::resources(case.policies), "istio-system");
        let got = authorizer.authorize(&common::request(case.request));
        if got.decision != case.decision || got.policy.as_deref() != case.policy {
            failures.push(format!(
                "{}: expected {:?} {:?}, got {:?} {:?} ({})",
                case.name, case.decision, case.policy, got.decision, got.policy, got.reason
            ));
        }
        assert!(!got.reason.is_empty(), "{}: a reason is given", case.name);
    }
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn root_namespace_is_configurable() {
    let policies = common::resources(
        "kind: AuthorizationPolicy\nmetadata: {name: deny-all, namespace: mesh-root}\nspec:\n  action: DENY\n  rules: [{}]\n",
    );
    let request = common::request(SLEEP_GET_INFO);
    let default_root = Authorizer::new(&policies, "istio-system").authorize(&request);
    assert_eq!(default_root.decision, ALLOW);
    let custom_root = Authorizer::new(&policies, "mesh-root").authorize(&request);
    assert_eq!(custom_root.decision, DENY);
    assert_eq!(custom_root.policy.as_deref(), Some("mesh-root/deny-all"));
}

#[test]
fn reasons_name_the_rule_or_the_default() {
    let policies = common::resources(HTTPBIN);
    let authorizer = Authorizer::new(&policies, "istio-system");
    let allowed = authorizer.authorize(&common::request(SLEEP_GET_INFO));
    assert!(allowed.reason.contains("foo/httpbin"), "{}", allowed.reason);
    assert!(
        allowed.reason.contains("spec.rules[0]"),
        "{}",
        allowed.reason
    );
    let denied = authorizer.authorize(&common::request(DEV_POST));
    assert!(denied.reason.contains("no rule"), "{}", denied.reason);
    assert!(denied.reason.contains("foo/httpbin"), "{}", denied.reason);
}

#[test]
fn json_output_shape() {
    let authorizer = Authorizer::new(&common::resources(HTTPBIN), "istio-system");
    let json = serde_json::to_string(&authorizer.authorize(&common::request(SLEEP_GET_INFO)))
        .expect("serializes");
    assert_eq!(json, r#"{"decision":"ALLOW","policy":"foo/httpbin"}"#);
    let json = serde_json::to_string(&authorizer.authorize(&common::request(DEV_POST)))
        .expect("serializes");
    assert_eq!(json, r#"{"decision":"DENY","policy":null}"#);
}

/// Rules indexed by source namespace and rules that are not are still tried
/// in order, so the reported rule is the first that matches.
#[test]
fn first_matching_rule_is_reported_across_indexed_and_unindexed_rules() {
    let policies = common::resources(
        r#"
kind: AuthorizationPolicy
metadata: {name: mixed, namespace: foo}
spec:
  rules:
  - from:
    - source: {namespaces: ["dev"]}
    to:
    - operation: {methods: ["GET"]}
  - to:
    - operation: {methods: ["POST"]}
  - from:
    - source: {principals: ["cluster.local/ns/dev/*"]}
  - from:
    - source: {principals: ["cluster.local/ns/de*"]}
"#,
    );
    let authorizer = Authorizer::new(&policies, "istio-system");
    let decision = authorizer.authorize(&common::request(DEV_POST));
    assert_eq!(decision.decision, ALLOW);
    assert!(
        decision.reason.contains("spec.rules[1]"),
        "{}",
        decision.reason
    );

    let dev_put = DEV_POST.replace("POST", "PUT");
    let decision = authorizer.authorize(&common::request(&dev_put));
    assert!(
        decision.reason.contains("spec.rules[2]"),
        "{}",
        decision.reason
    );

    // `cluster.local/ns/de*` does not pin the namespace: it must not be indexed under one.
    let devops_put = dev_put.replace("ns/dev/", "ns/devops/");
    let decision = authorizer.authorize(&common::request(&devops_put));
    assert_eq!(decision.decision, ALLOW);
    assert!(
        decision.reason.contains("spec.rules[3]"),
        "{}",
        decision.reason
    );

    let prod_put = dev_put.replace("ns/dev/", "ns/prod/");
    assert_eq!(
        authorizer.authorize(&common::request(&prod_put)).decision,
        DENY
    );
}
