//! PeerAuthentication resolution: the effective mTLS mode for a workload and
//! port, as Istio resolves it:
//!
//! 1. the workload's policy (its namespace, a non-empty `selector` matching
//!    its labels): `portLevelMtls[port]`, then its `mtls.mode`;
//! 2. the namespace's policy (no selector);
//! 3. the mesh policy (root namespace, no selector);
//! 4. `PERMISSIVE`.
//!
//! A level that says `UNSET` (or nothing) inherits from the next one. When
//! several policies compete at one level Istio takes the oldest; Loupe has
//! no creation times and takes the first by name (`analyze` warns).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::resource::Resource;
use crate::security::{MutualTlsMode, PeerAuthentication};

/// The effective mode (never `UNSET`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum MtlsMode {
    Permissive,
    Strict,
    Disable,
}

impl MtlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            MtlsMode::Permissive => "PERMISSIVE",
            MtlsMode::Strict => "STRICT",
            MtlsMode::Disable => "DISABLE",
        }
    }

    fn from_spec(mode: MutualTlsMode) -> Option<MtlsMode> {
        match mode {
            MutualTlsMode::Unset => None,
            MutualTlsMode::Disable => Some(MtlsMode::Disable),
            MutualTlsMode::Permissive => Some(MtlsMode::Permissive),
            MutualTlsMode::Strict => Some(MtlsMode::Strict),
        }
    }
}

/// The mode and the policy that set it (`namespace/name`, `None` for the default).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MtlsResolution {
    pub mode: MtlsMode,
    pub policy: Option<String>,
}

/// The effective mode for the workload (`namespace`, `labels`) on `port`.
pub fn effective_mtls_mode(
    resources: &[Resource],
    root_namespace: &str,
    namespace: &str,
    labels: &BTreeMap<String, String>,
    port: u16,
) -> MtlsMode {
    resolve(resources, root_namespace, namespace, labels, port).mode
}

/// Like [`effective_mtls_mode`], also naming the deciding policy.
pub fn resolve(
    resources: &[Resource],
    root_namespace: &str,
    namespace: &str,
    labels: &BTreeMap<String, String>,
    port: u16,
) -> MtlsResolution {
    let mut policies: Vec<&PeerAuthentication> = resources
        .iter()
        .filter_map(|r| match r {
            Resource::PeerAuthentication(p) => Some(p),
            _ => None,
        })
        .collect();
    policies.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));

    let workload = policies.iter().find(|p| {
        p.metadata.namespace() == namespace && selector_labels(p).is_some_and(|s| s.matches(labels))
    });
    let namespace_wide = |ns: &str| {
        policies
            .iter()
            .find(|p| p.metadata.namespace() == ns && selector_labels(p).is_none())
    };
    let decided = |p: &PeerAuthentication, mode| MtlsResolution {
        mode,
        policy: Some(format!("{}/{}", p.metadata.namespace(), p.metadata.name)),
    };

    if let Some(p) = workload {
        let port_mode = p
            .spec
            .port_level_mtls
            .get(&u32::from(port))
            .and_then(|m| MtlsMode::from_spec(m.mode()));
        let mode = port_mode.or_else(|| {
            p.spec
                .mtls
                .as_ref()
                .and_then(|m| MtlsMode::from_spec(m.mode()))
        });
        if let Some(mode) = mode {
            return decided(p, mode);
        }
    }
    let levels = [
        Some(namespace),
        (namespace != root_namespace).then_some(root_namespace),
    ];
    for ns in levels.into_iter().flatten() {
        let set = namespace_wide(ns).and_then(|p| {
            let mode = p.spec.mtls.as_ref()?.mode();
            MtlsMode::from_spec(mode).map(|mode| (p, mode))
        });
        if let Some((p, mode)) = set {
            return decided(p, mode);
        }
    }
    MtlsResolution {
        mode: MtlsMode::Permissive,
        policy: None,
    }
}

/// The selector, when it selects particular workloads (an empty
/// `matchLabels` is namespace-wide, as in Istio).
fn selector_labels(p: &PeerAuthentication) -> Option<&crate::security::WorkloadSelector> {
    p.spec
        .selector
        .as_ref()
        .filter(|s| !s.match_labels.is_empty())
}
