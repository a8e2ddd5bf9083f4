//! Authorization in Istio's order: CUSTOM, DENY, then ALLOW; AUDIT never
//! changes the decision. [`Authorizer`] is built once per configuration.
//! (Skeleton: the model work fills this in.)

use serde::{Deserialize, Serialize};

use crate::request::Request;
use crate::resource::Resource;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Decision {
    Allow,
    Deny,
}

/// The outcome; serializes as `loupe authz check --output json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuthzDecision {
    pub decision: Decision,
    /// `namespace/name` of the DENY or ALLOW policy whose rule decided;
    /// `None` for a default decision.
    pub policy: Option<String>,
    /// Why, for people (text output).
    #[serde(skip)]
    pub reason: String,
}

/// The compiled AuthorizationPolicies of a configuration.
#[derive(Clone, Debug, Default)]
pub struct Authorizer {}

impl Authorizer {
    /// `root_namespace` holds mesh-wide policies (`istio-system` by default).
    pub fn new(_resources: &[Resource], _root_namespace: &str) -> Authorizer {
        Authorizer {}
    }

    pub fn authorize(&self, _request: &Request) -> AuthzDecision {
        AuthzDecision {
            decision: Decision::Allow,
            policy: None,
            reason: String::new(),
        }
    }
}
