//! `loupe authz check`, run as the built binary: the JSON contract
//! (`{"decision":…,"policy":…}`), the text explanation, and exit codes
//! (0 answered, 1 bad input, 2 usage).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const POLICIES: &str = r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: httpbin
  namespace: foo
spec:
  selector:
    matchLabels:
      app: httpbin
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/sleep"]
    to:
    - operation:
        methods: ["GET"]
        paths: ["/info*"]
---
apiVersion: v1
kind: Service
metadata:
  name: httpbin
  namespace: foo
spec:
  ports:
  - port: 8000
"#;

const MESH_DENY: &str = r#"
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata:
  name: deny-admin
  namespace: istio-system
spec:
  action: DENY
  rules:
  - to:
    - operation:
        paths: ["/admin*"]
"#;

fn request(principal: Option<&str>, method: &str, path: &str) -> String {
    let source = match principal {
        Some(p) => format!(r#"{{"principal":"{p}","ip":"10.0.0.5"}}"#),
        None => r#"{"ip":"10.0.0.5"}"#.to_string(),
    };
    format!(
        r#"{{"source":{source},"destination":{{"namespace":"foo","labels":{{"app":"httpbin"}},"port":8000}},"request":{{"method":"{method}","path":"{path}","host":"httpbin.foo.svc.cluster.local","headers":{{"x-user":"jason"}}}}}}"#
    )
}

struct Scratch(tempfile::TempDir);

impl Scratch {
    fn new() -> Scratch {
        Scratch(tempfile::tempdir().expect("temp dir"))
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, text).expect("write scratch file");
        path
    }
}

fn loupe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loupe"))
        .args(args)
        .output()
        .expect("run loupe")
}

fn check_json(policies: &[&Path], request: &Path) -> (serde_json::Value, Output) {
    let mut args = vec!["authz", "check", "--output", "json"];
    for p in policies {
        args.extend(["-f", p.to_str().expect("utf-8 path")]);
    }
    args.extend(["--request", request.to_str().expect("utf-8 path")]);
    let out = loupe(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    (json, out)
}

#[test]
fn json_allow_by_the_matching_policy() {
    let s = Scratch::new();
    let policies = s.file("p.yaml", POLICIES);
    let req = s.file(
        "r.json",
        &request(Some("cluster.local/ns/default/sa/sleep"), "GET", "/info/a"),
    );
    let (json, _) = check_json(&[&policies], &req);
    assert_eq!(
        json,
        serde_json::json!({"decision": "ALLOW", "policy": "foo/httpbin"})
    );
}

#[test]
fn json_default_deny_has_a_null_policy() {
    let s = Scratch::new();
    let policies = s.file("p.yaml", POLICIES);
    let req = s.file(
        "r.json",
        &request(Some("cluster.local/ns/default/sa/sleep"), "POST", "/info"),
    );
    let (json, _) = check_json(&[&policies], &req);
    assert_eq!(
        json,
        serde_json::json!({"decision": "DENY", "policy": null})
    );
}

#[test]
fn plaintext_cannot_match_principals() {
    let s = Scratch::new();
    let policies = s.file("p.yaml", POLICIES);
    let req = s.file("r.json", &request(None, "GET", "/info"));
    let (json, _) = check_json(&[&policies], &req);
    assert_eq!(
        json,
        serde_json::json!({"decision": "DENY", "policy": null})
    );
}

#[test]
fn several_files_and_a_mesh_wide_deny() {
    let s = Scratch::new();
    let policies = s.file("p.yaml", POLICIES);
    let mesh = s.file("mesh.yaml", MESH_DENY);
    let req = s.file(
        "r.json",
        &request(Some("cluster.local/ns/default/sa/sleep"), "GET", "/admin"),
    );
    let (json, _) = check_json(&[&policies, &mesh], &req);
    assert_eq!(
        json,
        serde_json::json!({"decision": "DENY", "policy": "istio-system/deny-admin"})
    );
}

#[test]
fn no_policies_allow_by_default() {
    let s = Scratch::new();
    let empty = s.file(
        "svc.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n",
    );
    let req = s.file("r.json", &request(None, "DELETE", "/"));
    let (json, out) = check_json(&[&empty], &req);
    assert_eq!(
        json,
        serde_json::json!({"decision": "ALLOW", "policy": null})
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no AuthorizationPolicy"));
}

#[test]
fn text_output_says_which_rule_decided() {
    let s = Scratch::new();
    let policies = s.file("p.yaml", POLICIES);
    let req = s.file(
        "r.json",
        &request(Some("cluster.local/ns/default/sa/sleep"), "GET", "/info"),
    );
    let out = loupe(&[
        "authz",
        "check",
        "-f",
        policies.to_str().expect("utf-8"),
        "--request",
        req.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("decision: ALLOW"), "{text}");
    assert!(text.contains("foo/httpbin"), "{text}");
    assert!(text.contains("spec.rules[0]"), "{text}");

    let req = s.file(
        "r2.json",
        &request(Some("cluster.local/ns/default/sa/sleep"), "PUT", "/info"),
    );
    let out = loupe(&[
        "authz",
        "check",
        "-f",
        policies.to_str().expect("utf-8"),
        "--request",
        req.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(0), "a DENY is still an answer");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("decision: DENY"), "{text}");
    assert!(text.contains("denied by default"), "{text}");
}

#[test]
fn bad_policy_file_exits_1_naming_the_file_and_path() {
    let s = Scratch::new();
    let bad = s.file(
        "bad.yaml",
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p, namespace: foo}\nspec:\n  action: allow\n",
    );
    let req = s.file("r.json", &request(None, "GET", "/"));
    let out = loupe(&[
        "authz",
        "check",
        "-f",
        bad.to_str().expect("utf-8"),
        "--request",
        req.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yaml"), "{err}");
    assert!(err.contains("spec.action"), "{err}");
    assert!(err.contains("ALLOW"), "{err}");
}

#[test]
fn yaml_syntax_error_exits_1() {
    let s = Scratch::new();
    let bad = s.file(
        "broken.yaml",
        "kind: AuthorizationPolicy\nmetadata: {name: p\n  spec: [\n",
    );
    let req = s.file("r.json", &request(None, "GET", "/"));
    let out = loupe(&[
        "authz",
        "check",
        "-f",
        bad.to_str().expect("utf-8"),
        "--request",
        req.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken.yaml"));
}

#[test]
fn bad_request_exits_1_with_the_fix() {
    let s = Scratch::new();
    let policies = s.file("p.yaml", POLICIES);
    // A misspelt field is answered (as if absent) with a warning naming it.
    let typo = s.file("typo.json", r#"{"source":{"principle":"x"}}"#);
    let out = loupe(&[
        "authz",
        "check",
        "-f",
        policies.to_str().expect("utf-8"),
        "--request",
        typo.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field `source.principle`"));
    for (name, text, expect) in [
        ("notjson.json", "source: x", "not valid JSON"),
        (
            "type.json",
            r#"{"destination":{"port":"http"}}"#,
            "type.json",
        ),
    ] {
        let req = s.file(name, text);
        let out = loupe(&[
            "authz",
            "check",
            "-f",
            policies.to_str().expect("utf-8"),
            "--request",
            req.to_str().expect("utf-8"),
        ]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{name}: {err}");
    }
    let out = loupe(&[
        "authz",
        "check",
        "-f",
        "/nonexistent/p.yaml",
        "--request",
        "/nonexistent/r.json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/p.yaml"));
}

#[test]
fn unknown_request_fields_are_warned_about_not_fatal() {
    let s = Scratch::new();
    let policies = s.file("p.yaml", POLICIES);
    let req = s.file(
        "typo.json",
        r#"{"source":{"principle":"cluster.local/ns/default/sa/sleep"},"destination":{"namespace":"foo","labels":{"app":"httpbin"}},"request":{"method":"GET","path":"/info"}}"#,
    );
    let (json, out) = check_json(&[&policies], &req);
    // Without the (misspelt) principal the request is plaintext: denied.
    assert_eq!(
        json,
        serde_json::json!({"decision": "DENY", "policy": null})
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown field `source.principle`"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(
        loupe(&["authz", "check", "--request", "r.json"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        loupe(&["authz", "check", "-f", "p.yaml"]).status.code(),
        Some(2)
    );
    assert_eq!(
        loupe(&[
            "authz",
            "check",
            "-f",
            "p.yaml",
            "--request",
            "r.json",
            "--output",
            "xml"
        ])
        .status
        .code(),
        Some(2)
    );
}

const REQUIRE_JWT: &str = r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: require-jwt
  namespace: foo
spec:
  selector:
    matchLabels:
      app: httpbin
  action: ALLOW
  rules:
  - from:
    - source:
        requestPrincipals: ["https://accounts.google.com/*"]
    when:
    - key: request.auth.claims[groups]
      values: ["dev"]
"#;

fn jwt_request(claims: &str) -> String {
    format!(
        r#"{{"destination":{{"namespace":"foo","labels":{{"app":"httpbin"}}}},"request":{{"method":"GET","path":"/","auth":{{"claims":{claims}}}}}}}"#
    )
}

#[test]
fn jwt_claims_in_the_request_decide_request_principals_and_claims() {
    let s = Scratch::new();
    let policies = s.file("p.yaml", REQUIRE_JWT);
    let dev = s.file(
        "dev.json",
        &jwt_request(
            r#"{"iss":"https://accounts.google.com","sub":"alice","groups":["dev","ops"]}"#,
        ),
    );
    let (json, _) = check_json(&[&policies], &dev);
    assert_eq!(
        json,
        serde_json::json!({"decision": "ALLOW", "policy": "foo/require-jwt"})
    );
    let other = s.file(
        "other.json",
        &jwt_request(r#"{"iss":"https://accounts.google.com","sub":"bob","groups":"ops"}"#),
    );
    let (json, _) = check_json(&[&policies], &other);
    assert_eq!(json["decision"], "DENY");
    // Without a JWT there is no request principal.
    let none = s.file("none.json", &request(None, "GET", "/"));
    let (json, _) = check_json(&[&policies], &none);
    assert_eq!(json["decision"], "DENY");

    let out = loupe(&[
        "authz",
        "check",
        "-f",
        policies.to_str().expect("utf-8"),
        "--request",
        dev.to_str().expect("utf-8"),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("with JWT https://accounts.google.com/alice"),
        "{text}"
    );
}

#[test]
fn misspelt_auth_fields_are_warned_about() {
    let s = Scratch::new();
    let policies = s.file("p.yaml", REQUIRE_JWT);
    let req = s.file(
        "typo.json",
        r#"{"destination":{"namespace":"foo","labels":{"app":"httpbin"}},"request":{"method":"GET","auth":{"claim":{"iss":"x","sub":"y"}}}}"#,
    );
    let (json, out) = check_json(&[&policies], &req);
    // The misspelt claims are absent: a JWT without a principal.
    assert_eq!(json["decision"], "DENY");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown field `request.auth.claim`"), "{err}");
}
