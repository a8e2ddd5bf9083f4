//! `DestinationRule` (networking.istio.io v1alpha3, v1beta1, v1): what
//! happens to traffic for a host after routing — subsets by label, load
//! balancing, connection pools, outlier detection, client TLS. The traffic
//! policy types are in [`super::traffic_policy`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::common::{WorkloadSelector, default_api_version};
use super::traffic_policy::TrafficPolicy;
use crate::meta::ObjectMeta;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct DestinationRule {
    #[serde(default = "default_api_version")]
    pub api_version: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: DestinationRuleSpec,
}

impl Default for DestinationRule {
    fn default() -> Self {
        DestinationRule {
            api_version: default_api_version(),
            metadata: ObjectMeta::default(),
            spec: DestinationRuleSpec::default(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct DestinationRuleSpec {
    #[serde(default)]
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_policy: Option<TrafficPolicy>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subsets: Vec<Subset>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub export_to: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_selector: Option<WorkloadSelector>,
}

/// `Subset`: the endpoints of the host whose labels match, with an optional
/// policy that overrides the rule's.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Subset {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_policy: Option<TrafficPolicy>,
}
