//! Mesh-wide settings pushed with every snapshot (Istio's MeshConfig, the
//! part proxies need).

use loupe_push::MeshSettings;

/// Istio's root namespace: policies there apply mesh-wide.
pub const ROOT_NAMESPACE: &str = "istio-system";

pub fn settings(trust_domain: &str) -> MeshSettings {
    MeshSettings {
        trust_domain: trust_domain.to_string(),
        root_namespace: ROOT_NAMESPACE.to_string(),
        h2_upgrade: true,
    }
}
