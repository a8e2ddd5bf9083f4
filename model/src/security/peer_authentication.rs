//! `PeerAuthentication` (security.istio.io v1beta1, v1), field for field as
//! Istio's API reference spells it. Resolution lives in [`crate::peer_auth`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::selector::WorkloadSelector;
use crate::meta::ObjectMeta;

fn default_api_version() -> String {
    super::authorization_policy::API_VERSION.to_string()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct PeerAuthentication {
    /// Kept as written so printing gives back what was parsed.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: PeerAuthenticationSpec,
}

impl Default for PeerAuthentication {
    fn default() -> Self {
        PeerAuthentication {
            api_version: default_api_version(),
            metadata: ObjectMeta::default(),
            spec: PeerAuthenticationSpec::default(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct PeerAuthenticationSpec {
    /// Absent: the policy is namespace-wide (mesh-wide in the root namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<WorkloadSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtls: Option<MutualTls>,
    /// Per workload port (the container port, not the service port); only
    /// honoured together with a `selector`, as in Istio.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub port_level_mtls: BTreeMap<u32, MutualTls>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct MutualTls {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<MutualTlsMode>,
}

impl MutualTls {
    /// The mode, `UNSET` when left out.
    pub fn mode(&self) -> MutualTlsMode {
        self.mode.unwrap_or(MutualTlsMode::Unset)
    }
}

/// `PeerAuthentication.MutualTLS.Mode`, case-sensitive as in Istio.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum MutualTlsMode {
    /// Inherit from the parent level (namespace, then mesh).
    #[default]
    Unset,
    Disable,
    Permissive,
    Strict,
}

impl MutualTlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            MutualTlsMode::Unset => "UNSET",
            MutualTlsMode::Disable => "DISABLE",
            MutualTlsMode::Permissive => "PERMISSIVE",
            MutualTlsMode::Strict => "STRICT",
        }
    }
}
