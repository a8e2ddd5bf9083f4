//! Helpers shared by the security tests: YAML → resources, JSON → request.

#![allow(dead_code)]

use loupe_model::Request;
use loupe_model::resource::Resource;
use loupe_model::security::{AuthorizationPolicy, PeerAuthentication};

/// Parses the security documents of a multi-document YAML text.
pub fn resources(yaml: &str) -> Vec<Resource> {
    let mut out = Vec::new();
    for doc in yaml.split("\n---") {
        if doc.trim().is_empty() {
            continue;
        }
        let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(doc).expect("test YAML parses");
        let kind = value.get("kind").and_then(|k| k.as_str()).unwrap_or_default();
        match kind {
            "AuthorizationPolicy" => out.push(Resource::AuthorizationPolicy(
                serde_yaml_ng::from_value::<AuthorizationPolicy>(value).expect("policy"),
            )),
            "PeerAuthentication" => out.push(Resource::PeerAuthentication(
                serde_yaml_ng::from_value::<PeerAuthentication>(value).expect("peer auth"),
            )),
            other => panic!("test helper does not parse kind {other:?}"),
        }
    }
    out
}

pub fn request(json: &str) -> Request {
    serde_json::from_str(json).expect("test request JSON parses")
}
