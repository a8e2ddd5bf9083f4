//! SPIFFE identities as Istio spells them: `spiffe://TRUST_DOMAIN/ns/NS/sa/SA`.
//! The certificate authority writes them into URI SANs, the proxy reads
//! them back from peer certificates, and authorization compares principals
//! (the identity without its `spiffe://` scheme) — all with this one type.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Istio's default trust domain.
pub const DEFAULT_TRUST_DOMAIN: &str = "cluster.local";

/// A workload identity: trust domain, namespace, service account.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SpiffeId {
    pub trust_domain: String,
    pub namespace: String,
    pub service_account: String,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpiffeIdError {
    #[error("{0:?} is not a SPIFFE ID: it must start with spiffe://")]
    Scheme(String),
    #[error(
        "{0:?} is not an Istio workload identity: expected spiffe://TRUST_DOMAIN/ns/NAMESPACE/sa/SERVICE_ACCOUNT"
    )]
    Shape(String),
}

impl SpiffeId {
    pub fn new(trust_domain: &str, namespace: &str, service_account: &str) -> SpiffeId {
        SpiffeId {
            trust_domain: trust_domain.to_string(),
            namespace: namespace.to_string(),
            service_account: service_account.to_string(),
        }
    }

    /// Parses `spiffe://TD/ns/NS/sa/SA`. Every segment must be non-empty and
    /// free of `/`, as SPIFFE path segments are.
    pub fn parse(uri: &str) -> Result<SpiffeId, SpiffeIdError> {
        let rest = uri
            .strip_prefix("spiffe://")
            .ok_or_else(|| SpiffeIdError::Scheme(uri.to_string()))?;
        Self::from_principal(rest).map_err(|_| SpiffeIdError::Shape(uri.to_string()))
    }

    /// Parses a principal as AuthorizationPolicy writes it: `TD/ns/NS/sa/SA`.
    pub fn from_principal(principal: &str) -> Result<SpiffeId, SpiffeIdError> {
        let shape = || SpiffeIdError::Shape(principal.to_string());
        let parts: Vec<&str> = principal.split('/').collect();
        match parts.as_slice() {
            [td, "ns", ns, "sa", sa] if [td, ns, sa].iter().all(|s| valid_segment(s)) => {
                Ok(SpiffeId::new(td, ns, sa))
            }
            _ => Err(shape()),
        }
    }

    /// `spiffe://TD/ns/NS/sa/SA`, the certificate's URI SAN.
    pub fn uri(&self) -> String {
        format!("spiffe://{}", self.principal())
    }

    /// `TD/ns/NS/sa/SA`, the `source.principal` of Istio's authorization.
    pub fn principal(&self) -> String {
        format!(
            "{}/ns/{}/sa/{}",
            self.trust_domain, self.namespace, self.service_account
        )
    }
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "spiffe://{}/ns/{}/sa/{}",
            self.trust_domain, self.namespace, self.service_account
        )
    }
}

impl FromStr for SpiffeId {
    type Err = SpiffeIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SpiffeId::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_istio_identities() {
        let id = SpiffeId::parse("spiffe://cluster.local/ns/default/sa/bookinfo-productpage")
            .expect("valid");
        assert_eq!(id.namespace, "default");
        assert_eq!(id.service_account, "bookinfo-productpage");
        assert_eq!(
            id.principal(),
            "cluster.local/ns/default/sa/bookinfo-productpage"
        );
        assert_eq!(id.uri(), id.to_string());
        assert_eq!(SpiffeId::from_principal(&id.principal()), Ok(id));
    }

    #[test]
    fn refuses_what_is_not_a_workload_identity() {
        for bad in [
            "cluster.local/ns/default/sa/x",
            "spiffe://cluster.local/ns/default",
            "spiffe://cluster.local/ns//sa/x",
            "spiffe://cluster.local/ns/a/sa/b/c",
            "spiffe://cluster.local/namespace/a/sa/b",
            "spiffe:///ns/a/sa/b",
        ] {
            assert!(SpiffeId::parse(bad).is_err(), "{bad} should be refused");
        }
    }
}
