//! Authorization on request identities (the verified JWT), table-driven,
//! from Istio's "JWT" and "Authorization policy" reference pages:
//! `requestPrincipals`/`notRequestPrincipals` against `iss/sub`, and the
//! `request.auth.principal|audiences|presenter|claims[…]` conditions.

mod common;

use loupe_model::authz::{Authorizer, Decision};
use loupe_model::request::Jwt;

const ALLOW: Decision = Decision::Allow;
const DENY: Decision = Decision::Deny;

/// A GET to httpbin in `foo`, with the JWT claims `auth` (JSON, or none).
fn request(auth: Option<&str>) -> String {
    let auth = auth
        .map(|c| format!(r#","auth":{{"claims":{c}}}"#))
        .unwrap_or_default();
    format!(
        r#"{{"source":{{"principal":"cluster.local/ns/default/sa/sleep"}},
            "destination":{{"namespace":"foo","labels":{{"app":"httpbin"}},"port":8000}},
            "request":{{"method":"GET","path":"/headers","host":"httpbin.foo"{auth}}}}}"#
    )
}

const TESTING: &str = r#"{"iss":"testing@secure.istio.io","sub":"testing@secure.istio.io",
  "aud":"httpbin.foo","azp":"sleep-client","groups":["group1","group2"],
  "realm_access":{"roles":["admin","viewer"]},"email_verified":true,"scope":"read write"}"#;

const GOOGLE: &str = r#"{"iss":"https://accounts.google.com","sub":"alice",
  "aud":["web","mobile"],"groups":"group2"}"#;

/// An ALLOW policy in `foo` with one rule.
fn allow(rule: &str) -> String {
    format!(
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: p, namespace: foo}}\nspec:\n  action: ALLOW\n  rules:\n  - {rule}\n"
    )
}

fn deny(rule: &str) -> String {
    allow(rule).replace("action: ALLOW", "action: DENY")
}

#[test]
fn jwt_attributes_match_as_istio_documents() {
    // (name, policy, claims, decision)
    let cases: Vec<(&str, String, Option<&str>, Decision)> = vec![
        (
            "requestPrincipals * needs a JWT",
            allow(r#"from: [{source: {requestPrincipals: ["*"]}}]"#),
            None,
            DENY,
        ),
        (
            "requestPrincipals * holds for any JWT",
            allow(r#"from: [{source: {requestPrincipals: ["*"]}}]"#),
            Some(GOOGLE),
            ALLOW,
        ),
        (
            "requestPrincipals exact iss/sub",
            allow(
                r#"from: [{source: {requestPrincipals: ["testing@secure.istio.io/testing@secure.istio.io"]}}]"#,
            ),
            Some(TESTING),
            ALLOW,
        ),
        (
            "requestPrincipals exact: another subject does not match",
            allow(r#"from: [{source: {requestPrincipals: ["https://accounts.google.com/bob"]}}]"#),
            Some(GOOGLE),
            DENY,
        ),
        (
            "requestPrincipals prefix: every subject of an issuer",
            allow(r#"from: [{source: {requestPrincipals: ["https://accounts.google.com/*"]}}]"#),
            Some(GOOGLE),
            ALLOW,
        ),
        (
            "requestPrincipals suffix",
            allow(r#"from: [{source: {requestPrincipals: ["*/alice"]}}]"#),
            Some(GOOGLE),
            ALLOW,
        ),
        (
            "a JWT without sub has no request principal",
            allow(r#"from: [{source: {requestPrincipals: ["*"]}}]"#),
            Some(r#"{"iss":"https://accounts.google.com"}"#),
            DENY,
        ),
        (
            "DENY notRequestPrincipals * rejects requests without a JWT",
            deny(r#"from: [{source: {notRequestPrincipals: ["*"]}}]"#),
            None,
            DENY,
        ),
        (
            "DENY notRequestPrincipals * lets a JWT through",
            deny(r#"from: [{source: {notRequestPrincipals: ["*"]}}]"#),
            Some(TESTING),
            ALLOW,
        ),
        (
            "notRequestPrincipals excludes one issuer",
            allow(
                r#"from: [{source: {requestPrincipals: ["*"], notRequestPrincipals: ["https://accounts.google.com/*"]}}]"#,
            ),
            Some(GOOGLE),
            DENY,
        ),
        (
            "request.auth.principal",
            allow(
                r#"when: [{key: request.auth.principal, values: ["testing@secure.istio.io/testing@secure.istio.io"]}]"#,
            ),
            Some(TESTING),
            ALLOW,
        ),
        (
            "request.auth.claims[groups]: any of a list claim",
            allow(r#"when: [{key: "request.auth.claims[groups]", values: ["group1"]}]"#),
            Some(TESTING),
            ALLOW,
        ),
        (
            "request.auth.claims[groups]: a string claim",
            allow(r#"when: [{key: "request.auth.claims[groups]", values: ["group2"]}]"#),
            Some(GOOGLE),
            ALLOW,
        ),
        (
            "request.auth.claims[groups]: no element matches",
            allow(r#"when: [{key: "request.auth.claims[groups]", values: ["group3"]}]"#),
            Some(TESTING),
            DENY,
        ),
        (
            "request.auth.claims[iss] with prefix",
            allow(r#"when: [{key: "request.auth.claims[iss]", values: ["https://accounts.*"]}]"#),
            Some(GOOGLE),
            ALLOW,
        ),
        (
            "nested claims[realm_access][roles]",
            allow(
                r#"when: [{key: "request.auth.claims[realm_access][roles]", values: ["admin"]}]"#,
            ),
            Some(TESTING),
            ALLOW,
        ),
        (
            "nested claim missing a level",
            allow(r#"when: [{key: "request.auth.claims[realm_access][roles]", values: ["*"]}]"#),
            Some(GOOGLE),
            DENY,
        ),
        (
            "an object claim is not a string",
            allow(r#"when: [{key: "request.auth.claims[realm_access]", values: ["*"]}]"#),
            Some(TESTING),
            DENY,
        ),
        (
            "a boolean claim is not a string",
            allow(r#"when: [{key: "request.auth.claims[email_verified]", values: ["true"]}]"#),
            Some(TESTING),
            DENY,
        ),
        (
            "notValues on a list claim: no element may match",
            allow(r#"when: [{key: "request.auth.claims[groups]", notValues: ["group2"]}]"#),
            Some(TESTING),
            DENY,
        ),
        (
            "notValues on an absent claim holds",
            allow(r#"when: [{key: "request.auth.claims[tenant]", notValues: ["evil"]}]"#),
            Some(TESTING),
            ALLOW,
        ),
        (
            "request.auth.audiences: a string aud",
            allow(r#"when: [{key: request.auth.audiences, values: ["httpbin.foo"]}]"#),
            Some(TESTING),
            ALLOW,
        ),
        (
            "request.auth.audiences: a list aud",
            allow(r#"when: [{key: request.auth.audiences, values: ["mobile"]}]"#),
            Some(GOOGLE),
            ALLOW,
        ),
        (
            "request.auth.audiences: not among them",
            allow(r#"when: [{key: request.auth.audiences, values: ["httpbin.foo"]}]"#),
            Some(GOOGLE),
            DENY,
        ),
        (
            "request.auth.presenter is azp",
            allow(r#"when: [{key: request.auth.presenter, values: ["sleep-*"]}]"#),
            Some(TESTING),
            ALLOW,
        ),
        (
            "request.auth.presenter absent",
            allow(r#"when: [{key: request.auth.presenter, values: ["*"]}]"#),
            Some(GOOGLE),
            DENY,
        ),
    ];
    let mut failures = Vec::new();
    for (name, policy, claims, decision) in &cases {
        let authorizer = Authorizer::new(&common::resources(policy), "istio-system");
        let got = authorizer.authorize(&common::request(&request(*claims)));
        if got.decision != *decision {
            failures.push(format!(
                "{name}: expected {decision:?}, got {:?} ({})",
                got.decision, got.reason
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn jwt_accessors_read_the_claims() {
    let jwt = Jwt::from_claims(serde_json::from_str(GOOGLE).expect("json"));
    assert_eq!(
        jwt.principal().as_deref(),
        Some("https://accounts.google.com/alice")
    );
    assert_eq!(jwt.audiences(), ["web", "mobile"]);
    assert_eq!(jwt.presenter(), None);
    let testing = Jwt::from_claims(serde_json::from_str(TESTING).expect("json"));
    assert_eq!(
        testing.claim(&["realm_access", "roles"]),
        Some(&serde_json::json!(["admin", "viewer"]))
    );
    assert_eq!(testing.claim(&["groups", "x"]), None);
}

#[test]
fn a_jwt_alone_makes_the_request_http() {
    // No method, path, host or header, but a JWT: not a TCP connection, so
    // an ALLOW rule on requestPrincipals can match.
    let policy = allow(r#"from: [{source: {requestPrincipals: ["*"]}}]"#);
    let authorizer = Authorizer::new(&common::resources(&policy), "istio-system");
    let request = common::request(&format!(
        r#"{{"destination":{{"namespace":"foo"}},"request":{{"auth":{{"claims":{GOOGLE}}}}}}}"#
    ));
    assert_eq!(authorizer.authorize(&request).decision, ALLOW);
}
