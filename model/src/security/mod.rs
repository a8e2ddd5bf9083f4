//! security.istio.io: `PeerAuthentication`, `RequestAuthentication`,
//! `AuthorizationPolicy`, and the workload selection they share.

pub mod authorization_policy;
pub mod peer_authentication;
pub mod request_authentication;
pub mod selector;

pub use authorization_policy::{
    Action, AuthorizationPolicy, AuthorizationPolicySpec, Condition, ExtensionProvider, Operation,
    Rule, Source,
};
pub use peer_authentication::{
    MutualTls, MutualTlsMode, PeerAuthentication, PeerAuthenticationSpec,
};
pub use request_authentication::{
    ClaimToHeader, JwtHeader, JwtRule, RequestAuthentication, RequestAuthenticationSpec,
};
pub use selector::{PolicyTargetReference, WorkloadSelector};
