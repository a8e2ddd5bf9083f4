//! An examiner's corpus of the security side of `loupe analyze`, from what
//! Istio's validation rejects (AuthorizationPolicy and PeerAuthentication
//! reference, istiod's webhook) and the checks issue 2 names (invalid HTTP
//! method, portLevelMtls without a selector, DestinationRule TLS against a
//! STRICT or DISABLE PeerAuthentication). Run as the built binary with
//! `--output json`; each case names the (severity, resource, path) it
//! expects, and the exit code (1 with any error, 0 otherwise).

use std::process::Command;

use serde_json::Value;

const AP: &str = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n";
const PA: &str = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n";

struct Case {
    name: &'static str,
    yaml: String,
    /// (resource, path) of expected errors; empty: no error at all.
    errors: &'static [(&'static str, &'static str)],
}

fn ap(meta: &str, spec: &str) -> String {
    format!("{AP}metadata: {meta}\nspec:\n{spec}\n")
}

fn cases() -> Vec<Case> {
    let x = "{name: x, namespace: foo}";
    let get_rule = "  rules:\n  - to:\n    - operation: {methods: [\"GET\"]}";
    vec![
        Case {
            name: "lower-case method",
            yaml: ap(
                x,
                "  rules:\n  - to:\n    - operation: {methods: [\"get\"]}",
            ),
            errors: &[(
                "AuthorizationPolicy/foo/x",
                "spec.rules[0].to[0].operation.methods[0]",
            )],
        },
        Case {
            name: "unknown method in notMethods",
            yaml: ap(
                x,
                "  rules:\n  - to:\n    - operation: {notMethods: [\"FETCH\"]}",
            ),
            errors: &[(
                "AuthorizationPolicy/foo/x",
                "spec.rules[0].to[0].operation.notMethods[0]",
            )],
        },
        Case {
            name: "valid methods, allow-nothing and deny-all are accepted",
            yaml: format!(
                "{}---\n{}---\n{}",
                ap(x, get_rule),
                ap("{name: allow-nothing, namespace: foo}", "  {}"),
                ap(
                    "{name: deny-all, namespace: foo}",
                    "  action: DENY\n  rules:\n  - {}"
                )
            ),
            errors: &[],
        },
        Case {
            name: "missing namespace means default",
            yaml: ap(
                "{name: x}",
                "  rules:\n  - to:\n    - operation: {methods: [\"BAD\"]}",
            ),
            errors: &[(
                "AuthorizationPolicy/default/x",
                "spec.rules[0].to[0].operation.methods[0]",
            )],
        },
        Case {
            name: "DENY without rules is rejected",
            yaml: ap(x, "  action: DENY"),
            errors: &[("AuthorizationPolicy/foo/x", "spec.rules")],
        },
        Case {
            name: "action is case-sensitive",
            yaml: ap(x, "  action: deny\n  rules:\n  - {}"),
            errors: &[("AuthorizationPolicy/foo/x", "spec.action")],
        },
        Case {
            name: "bad ipBlocks",
            yaml: ap(
                x,
                "  rules:\n  - from:\n    - source: {ipBlocks: [\"10.0.0.0/33\"]}",
            ),
            errors: &[(
                "AuthorizationPolicy/foo/x",
                "spec.rules[0].from[0].source.ipBlocks[0]",
            )],
        },
        Case {
            name: "bad port",
            yaml: ap(x, "  rules:\n  - to:\n    - operation: {ports: [\"http\"]}"),
            errors: &[(
                "AuthorizationPolicy/foo/x",
                "spec.rules[0].to[0].operation.ports[0]",
            )],
        },
        Case {
            name: "unknown when key",
            yaml: ap(
                x,
                "  rules:\n  - when:\n    - key: destination.labels[app]\n      values: [\"a\"]",
            ),
            errors: &[("AuthorizationPolicy/foo/x", "spec.rules[0].when[0].key")],
        },
        Case {
            name: "when without values",
            yaml: ap(x, "  rules:\n  - when:\n    - key: source.ip"),
            errors: &[("AuthorizationPolicy/foo/x", "spec.rules[0].when[0]")],
        },
        Case {
            name: "empty source",
            yaml: ap(x, "  rules:\n  - from:\n    - source: {}"),
            errors: &[("AuthorizationPolicy/foo/x", "spec.rules[0].from[0].source")],
        },
        Case {
            name: "empty value",
            yaml: ap(x, "  rules:\n  - from:\n    - source: {principals: [\"\"]}"),
            errors: &[(
                "AuthorizationPolicy/foo/x",
                "spec.rules[0].from[0].source.principals[0]",
            )],
        },
        Case {
            name: "CUSTOM without provider",
            yaml: ap(x, "  action: CUSTOM\n  rules:\n  - {}"),
            errors: &[("AuthorizationPolicy/foo/x", "spec.provider")],
        },
        Case {
            name: "provider on an ALLOW policy",
            yaml: ap(x, &format!("  provider: {{name: ext}}\n{get_rule}")),
            errors: &[("AuthorizationPolicy/foo/x", "spec.provider")],
        },
        Case {
            name: "CUSTOM does not support principals",
            yaml: ap(
                x,
                "  action: CUSTOM\n  provider: {name: ext}\n  rules:\n  - from:\n    - source: {principals: [\"a\"]}",
            ),
            errors: &[(
                "AuthorizationPolicy/foo/x",
                "spec.rules[0].from[0].source.principals",
            )],
        },
        Case {
            name: "dry-run on a CUSTOM policy",
            yaml: ap(
                "{name: x, namespace: foo, annotations: {istio.io/dry-run: \"true\"}}",
                "  action: CUSTOM\n  provider: {name: ext}\n  rules:\n  - {}",
            ),
            errors: &[(
                "AuthorizationPolicy/foo/x",
                "metadata.annotations[istio.io/dry-run]",
            )],
        },
        Case {
            name: "dry-run must be a boolean",
            yaml: ap(
                "{name: x, namespace: foo, annotations: {istio.io/dry-run: \"yes\"}}",
                get_rule,
            ),
            errors: &[(
                "AuthorizationPolicy/foo/x",
                "metadata.annotations[istio.io/dry-run]",
            )],
        },
        Case {
            name: "wildcard in selector",
            yaml: ap(
                x,
                &format!("  selector: {{matchLabels: {{app: \"web*\"}}}}\n{get_rule}"),
            ),
            errors: &[("AuthorizationPolicy/foo/x", "spec.selector.matchLabels.app")],
        },
        Case {
            name: "{**} must be last",
            yaml: ap(
                x,
                "  rules:\n  - to:\n    - operation: {paths: [\"/a/{**}/b/{*}\"]}",
            ),
            errors: &[(
                "AuthorizationPolicy/foo/x",
                "spec.rules[0].to[0].operation.paths[0]",
            )],
        },
        Case {
            name: "serviceAccounts take no wildcard",
            yaml: ap(
                x,
                "  rules:\n  - from:\n    - source: {serviceAccounts: [\"foo/*\"]}",
            ),
            errors: &[(
                "AuthorizationPolicy/foo/x",
                "spec.rules[0].from[0].source.serviceAccounts[0]",
            )],
        },
        Case {
            name: "portLevelMtls without selector",
            yaml: format!(
                "{PA}metadata: {{name: pa, namespace: foo}}\nspec:\n  mtls: {{mode: STRICT}}\n  portLevelMtls:\n    8080: {{mode: DISABLE}}\n"
            ),
            errors: &[("PeerAuthentication/foo/pa", "spec.portLevelMtls")],
        },
        Case {
            name: "portLevelMtls with selector",
            yaml: format!(
                "{PA}metadata: {{name: pa, namespace: foo}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  mtls: {{mode: STRICT}}\n  portLevelMtls:\n    8080: {{mode: DISABLE}}\n"
            ),
            errors: &[],
        },
        Case {
            name: "mTLS mode is case-sensitive",
            yaml: format!(
                "{PA}metadata: {{name: pa, namespace: foo}}\nspec:\n  mtls: {{mode: strict}}\n"
            ),
            errors: &[("PeerAuthentication/foo/pa", "spec.mtls.mode")],
        },
        Case {
            name: "DR DISABLE against mesh-wide STRICT",
            yaml: format!(
                "{PA}metadata: {{name: default, namespace: istio-system}}\nspec:\n  mtls: {{mode: STRICT}}\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: reviews, namespace: default}}\nspec:\n  host: reviews\n  trafficPolicy:\n    tls: {{mode: DISABLE}}\n"
            ),
            errors: &[(
                "DestinationRule/default/reviews",
                "spec.trafficPolicy.tls.mode",
            )],
        },
        Case {
            name: "DR ISTIO_MUTUAL against namespace DISABLE",
            yaml: format!(
                "{PA}metadata: {{name: plain, namespace: legacy}}\nspec:\n  mtls: {{mode: DISABLE}}\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: httpbin, namespace: legacy}}\nspec:\n  host: httpbin\n  trafficPolicy:\n    tls: {{mode: ISTIO_MUTUAL}}\n"
            ),
            errors: &[(
                "DestinationRule/legacy/httpbin",
                "spec.trafficPolicy.tls.mode",
            )],
        },
        Case {
            name: "DR ISTIO_MUTUAL with STRICT is consistent",
            yaml: format!(
                "{PA}metadata: {{name: default, namespace: istio-system}}\nspec:\n  mtls: {{mode: STRICT}}\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: reviews, namespace: default}}\nspec:\n  host: reviews\n  trafficPolicy:\n    tls: {{mode: ISTIO_MUTUAL}}\n"
            ),
            errors: &[],
        },
    ]
}

fn check(case: &Case, dir: &std::path::Path, i: usize) -> Result<(), String> {
    let file = dir.join(format!("case-{i}.yaml"));
    std::fs::write(&file, &case.yaml).map_err(|e| e.to_string())?;
    let out = Command::new(env!("CARGO_BIN_EXE_loupe"))
        .args(["analyze", "--output", "json"])
        .arg(&file)
        .output()
        .map_err(|e| e.to_string())?;
    let name = case.name;
    let items: Vec<Value> = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("{name}: not a JSON array ({e})"))?;
    let errors: Vec<(String, String)> = items
        .iter()
        .filter(|d| d["severity"] == "error")
        .map(|d| {
            let s = |k: &str| d[k].as_str().unwrap_or_default().to_string();
            (s("resource"), s("path"))
        })
        .collect();
    let want_exit = if case.errors.is_empty() { 0 } else { 1 };
    if out.status.code() != Some(want_exit) {
        return Err(format!(
            "{name}: exit {:?}, want {want_exit}; errors {errors:?}",
            out.status.code()
        ));
    }
    for (resource, path) in case.errors {
        if !errors.iter().any(|(r, p)| r == resource && p == path) {
            return Err(format!(
                "{name}: no error at {resource} {path}; got {errors:?}"
            ));
        }
    }
    Ok(())
}

#[test]
fn security_analysis_follows_istio_validation() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = cases();
    let failures: Vec<String> = cases
        .iter()
        .enumerate()
        .filter_map(|(i, c)| check(c, dir.path(), i).err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases disagree:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
