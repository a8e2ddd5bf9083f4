//! `ServiceEntry` (networking.istio.io v1alpha3, v1beta1, v1): adds hosts to
//! the mesh's service registry — external APIs, VMs, services of another
//! cluster — with their ports, how their endpoints are resolved, and the
//! endpoints themselves (inline, or WorkloadEntries selected by labels).
//! What endpoints a host ends up with is [`crate::registry`]'s job.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::common::default_api_version;
use super::workload_entry::WorkloadEntrySpec;
use crate::meta::ObjectMeta;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ServiceEntry {
    #[serde(default = "default_api_version")]
    pub api_version: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ServiceEntrySpec,
}

impl Default for ServiceEntry {
    fn default() -> Self {
        ServiceEntry {
            api_version: default_api_version(),
            metadata: ObjectMeta::default(),
            spec: ServiceEntrySpec::default(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ServiceEntrySpec {
    /// DNS names, possibly with a wildcard prefix (`*.example.com`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Virtual IPs or CIDR blocks of the service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ServicePort>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<WorkloadEntrySpec>,
    /// Selects WorkloadEntries (and pods) of the entry's namespace by label;
    /// mutually exclusive with `endpoints`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub export_to: Vec<String>,
    /// Identities the endpoints' certificates may carry (`spiffe://…`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_alt_names: Vec<String>,
}

impl ServiceEntrySpec {
    /// The resolution, `NONE` when left out (Istio's default).
    pub fn resolution(&self) -> Resolution {
        self.resolution.unwrap_or_default()
    }

    /// The location, `MESH_EXTERNAL` when left out (Istio's default).
    pub fn location(&self) -> Location {
        self.location.unwrap_or_default()
    }
}

/// `ServicePort`: a port of the service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    #[serde(default)]
    pub number: u32,
    /// HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, TCP, TLS, MONGO, REDIS, MYSQL, UDP
    /// (any case); empty means the proxy sniffs the protocol.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    #[serde(default)]
    pub name: String,
    /// The port endpoints listen on when they do not say (absent: `number`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<u32>,
}

/// `ServiceEntry.Location`: whether the service is part of the mesh (its
/// endpoints run sidecars and speak mTLS) or outside it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Location {
    #[default]
    MeshExternal,
    MeshInternal,
}

/// `ServiceEntry.Resolution`: how the proxy finds the endpoints' addresses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Resolution {
    /// Forward to the address the caller connected to.
    #[default]
    None,
    /// The endpoints' addresses are IPs (or unix sockets), used as they are.
    Static,
    /// Endpoint addresses (or the hosts, without endpoints) are DNS names,
    /// resolved asynchronously; every resolved IP is an endpoint.
    Dns,
    /// Like `Dns`, but only the first resolved IP is used.
    DnsRoundRobin,
}

impl Resolution {
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::None => "NONE",
            Resolution::Static => "STATIC",
            Resolution::Dns => "DNS",
            Resolution::DnsRoundRobin => "DNS_ROUND_ROBIN",
        }
    }
}

/// networking.istio.io's `WorkloadSelector`, as ServiceEntry (and Sidecar)
/// write it: `labels`, unlike security's `matchLabels`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl LabelSelector {
    /// True when every selector label is among `labels` (an empty selector
    /// selects every workload of the namespace, as in Kubernetes).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.labels
            .iter()
            .all(|(k, v)| labels.get(k).is_some_and(|l| l == v))
    }
}
