//! `WorkloadEntry` (networking.istio.io v1alpha3, v1beta1, v1): one workload
//! that is not a Kubernetes pod (a VM, a bare-metal server) — its address,
//! labels, ports and identity. A ServiceEntry selects it by labels; the same
//! shape is a ServiceEntry's inline `endpoints`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::common::default_api_version;
use crate::meta::ObjectMeta;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct WorkloadEntry {
    #[serde(default = "default_api_version")]
    pub api_version: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: WorkloadEntrySpec,
}

impl Default for WorkloadEntry {
    fn default() -> Self {
        WorkloadEntry {
            api_version: default_api_version(),
            metadata: ObjectMeta::default(),
            spec: WorkloadEntrySpec::default(),
        }
    }
}

/// Istio's `WorkloadEntry` message: the spec of the kind, and each item of a
/// ServiceEntry's `endpoints`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct WorkloadEntrySpec {
    /// An IP address, a DNS name (with `DNS` resolution) or `unix:///path`.
    /// May be empty when `network` is set: the workload is then reached
    /// through that network's gateway.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub address: String,
    /// ServiceEntry port name → the port this workload listens on for it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ports: BTreeMap<String, u32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// `region/zone/subzone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    /// Load-balancing weight among the host's endpoints (absent: 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// Service account in the entry's namespace; the workload's SPIFFE identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
}
