//! security.istio.io: `PeerAuthentication`, `AuthorizationPolicy`.

pub mod authorization_policy;
pub mod peer_authentication;

pub use authorization_policy::AuthorizationPolicy;
pub use peer_authentication::PeerAuthentication;
