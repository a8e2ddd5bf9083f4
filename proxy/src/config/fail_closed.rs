//! Security resources this proxy cannot compile fail closed, never open
//! (as istiod turns an AuthorizationPolicy it cannot translate into one
//! that denies): an AuthorizationPolicy or RequestAuthentication that does
//! not parse becomes a DENY of every request for the workloads it selects,
//! and a PeerAuthentication becomes STRICT for them. Refusing the whole
//! snapshot instead would keep the last good config — which, for a new
//! DENY policy, is the config without it: open. The selector is read from
//! the raw object when it is well formed; otherwise the stand-in covers its
//! whole namespace (more closed, not less). Each stand-in is logged, counted
//! (`loupe_proxy_security_resources_failed_closed`) and listed in
//! `/config_dump`.

use loupe_model::Kind;
use serde_json::{Value, json};

/// What replaces a security resource that did not compile.
pub struct FailedClosed {
    /// `Kind/namespace/name` of the resource that did not compile.
    pub resource: String,
    /// Why it did not.
    pub error: String,
    /// The stand-in, as a Kubernetes object (JSON text).
    pub stand_in: String,
}

/// The stand-in for the security resource `kind` `namespace/name` whose
/// object is `object` (when it is JSON at all); `None` for other kinds,
/// which refuse the snapshot as before.
pub fn stand_in(
    kind: &str,
    namespace: &str,
    name: &str,
    object: Option<&Value>,
    error: String,
) -> Option<FailedClosed> {
    let kind = Kind::parse(kind)?;
    let selector = object
        .and_then(|o| o.pointer("/spec/selector/matchLabels"))
        .and_then(Value::as_object)
        .filter(|m| m.values().all(Value::is_string))
        .map(|m| json!({ "matchLabels": m }));
    let mut spec = match kind {
        Kind::AuthorizationPolicy | Kind::RequestAuthentication => {
            json!({ "action": "DENY", "rules": [{}] })
        }
        Kind::PeerAuthentication => json!({ "mtls": { "mode": "STRICT" } }),
        _ => return None,
    };
    if let Some(selector) = selector {
        spec["selector"] = selector;
    }
    let stand_in_kind = match kind {
        Kind::PeerAuthentication => "PeerAuthentication",
        _ => "AuthorizationPolicy",
    };
    let object = json!({
        "apiVersion": "security.istio.io/v1",
        "kind": stand_in_kind,
        "metadata": { "name": format!("{name}-failed-closed"), "namespace": namespace },
        "spec": spec,
    });
    Some(FailedClosed {
        resource: format!("{}/{namespace}/{name}", kind.as_str()),
        error,
        stand_in: object.to_string(),
    })
}

/// The stand-in as the model's resource (it always parses: it is built here).
pub fn stand_in_resource(f: &FailedClosed) -> Option<(Value, Vec<loupe_model::Resource>)> {
    let value: Value = serde_json::from_str(&f.stand_in).ok()?;
    let parsed = loupe_model::parse_documents(&f.resource, &f.stand_in);
    let clean = parsed
        .diagnostics
        .iter()
        .all(|d| d.severity != loupe_model::Severity::Error);
    (clean && !parsed.resources.is_empty()).then_some((value, parsed.resources))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_authorization_policy_becomes_a_deny_all_with_its_selector() {
        let object = json!({"spec": {"selector": {"matchLabels": {"app": "reviews"}},
                                     "rules": [{"to": [{"operation": {"methods": "GET"}}]}]}});
        let f = stand_in(
            "AuthorizationPolicy",
            "default",
            "p",
            Some(&object),
            "bad".into(),
        )
        .expect("a stand-in");
        let v: Value = serde_json::from_str(&f.stand_in).unwrap();
        assert_eq!(v["spec"]["action"], "DENY");
        assert_eq!(v["spec"]["rules"], json!([{}]));
        assert_eq!(v["spec"]["selector"]["matchLabels"]["app"], "reviews");
        assert_eq!(f.resource, "AuthorizationPolicy/default/p");
    }

    #[test]
    fn a_malformed_selector_widens_to_the_namespace_and_peer_authentication_goes_strict() {
        let object = json!({"spec": {"selector": {"matchLabels": ["app"]}, "mtls": {"mode": 7}}});
        let f = stand_in(
            "PeerAuthentication",
            "default",
            "pa",
            Some(&object),
            "bad".into(),
        )
        .expect("a stand-in");
        let v: Value = serde_json::from_str(&f.stand_in).unwrap();
        assert_eq!(v["kind"], "PeerAuthentication");
        assert_eq!(v["spec"]["mtls"]["mode"], "STRICT");
        assert!(v["spec"].get("selector").is_none(), "the whole namespace");
        assert!(stand_in("VirtualService", "default", "vs", None, "bad".into()).is_none());
    }
}
