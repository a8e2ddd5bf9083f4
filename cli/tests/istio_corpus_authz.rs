//! An examiner's corpus of Istio authorization semantics, written from
//! istio.io (AuthorizationPolicy reference, the authorization concept page
//! and the security tasks: HTTP and TCP traffic, explicit deny, ingress,
//! dry run), run through the built `loupe authz check --output json`
//! exactly as issue 2 specifies it.
//!
//! Each case in `corpus/authz/cases.json` names a policy file in the same
//! directory, a REQUEST.json body, and the expected `decision` and `policy`
//! (`namespace/name`, or null for a default decision).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/authz")
}

fn run_case(case: &Value, scratch: &Path, index: usize) -> Result<(), String> {
    let name = case["name"].as_str().unwrap_or("?");
    let policies = corpus_dir().join(case["policies"].as_str().unwrap_or_default());
    let request = scratch.join(format!("request-{index}.json"));
    std::fs::write(&request, case["request"].to_string()).map_err(|e| e.to_string())?;
    let out = Command::new(env!("CARGO_BIN_EXE_loupe"))
        .args(["authz", "check", "--output", "json", "-f"])
        .arg(&policies)
        .arg("--request")
        .arg(&request)
        .output()
        .map_err(|e| format!("{name}: cannot run loupe: {e}"))?;
    if out.status.code() != Some(0) {
        return Err(format!(
            "{name}: exit {:?}, stderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let got: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("{name}: stdout is not JSON ({e}): {:?}", out.stdout))?;
    let want = serde_json::json!({"decision": case["decision"], "policy": case["policy"]});
    if got != want {
        return Err(format!("{name}: got {got}, want {want}"));
    }
    Ok(())
}

#[test]
fn authorization_decisions_follow_istio() {
    let text = std::fs::read_to_string(corpus_dir().join("cases.json")).expect("cases.json");
    let cases: Vec<Value> = serde_json::from_str(&text).expect("cases.json is JSON");
    assert!(cases.len() >= 50, "the corpus lost cases: {}", cases.len());
    let scratch = tempfile::tempdir().expect("temp dir");
    let failures: Vec<String> = cases
        .iter()
        .enumerate()
        .filter_map(|(i, c)| run_case(c, scratch.path(), i).err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases disagree with Istio:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// The dry-run task: the policy is not enforced, and the text for people
/// says what it would have done.
#[test]
fn dry_run_policy_is_reported_not_enforced() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let request = scratch.path().join("request.json");
    std::fs::write(
        &request,
        r#"{"source":{"principal":"cluster.local/ns/foo/sa/sleep","ip":"10.0.0.5"},
            "destination":{"namespace":"foo","labels":{"app":"httpbin"},"port":8000},
            "request":{"method":"GET","path":"/headers","host":"httpbin.foo:8000"}}"#,
    )
    .expect("write request");
    let out = Command::new(env!("CARGO_BIN_EXE_loupe"))
        .args(["authz", "check", "-f"])
        .arg(corpus_dir().join("dry-run.yaml"))
        .arg("--request")
        .arg(&request)
        .output()
        .expect("run loupe");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("decision: ALLOW"), "{text}");
    assert!(
        text.contains("dry-run policy foo/deny-path-headers") && text.contains("would DENY"),
        "{text}"
    );
}
