//! A request as the data path sees it: who sends it, to which workload, and
//! its HTTP attributes. It is the `REQUEST.json` of `loupe route` and
//! `loupe authz check`, and what the proxy fills in per request.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Request {
    pub source: Source,
    pub destination: Destination,
    pub request: HttpAttributes,
}

/// The calling workload. `principal` and `namespace` are absent for plaintext.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Source {
    /// SPIFFE identity without the scheme: `cluster.local/ns/default/sa/frontend`.
    pub principal: Option<String>,
    pub namespace: Option<String>,
    pub ip: Option<String>,
    /// Labels of the calling workload (VirtualService `sourceLabels`).
    pub labels: BTreeMap<String, String>,
}

/// The called workload.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Destination {
    pub namespace: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub port: Option<u16>,
    pub ip: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpAttributes {
    pub method: Option<String>,
    pub path: Option<String>,
    /// The `Host`/`:authority`, possibly with a port.
    pub host: Option<String>,
    pub scheme: Option<String>,
    /// Header names are matched case-insensitively; store them lower-case.
    pub headers: BTreeMap<String, String>,
}
