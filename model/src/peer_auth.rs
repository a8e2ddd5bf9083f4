//! PeerAuthentication resolution: the effective mTLS mode for a workload and
//! port — workload policy over namespace policy over mesh policy, `UNSET`
//! inheriting, `PERMISSIVE` when nothing says otherwise.
//! (Skeleton: the model work fills this in.)

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::resource::Resource;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum MtlsMode {
    Permissive,
    Strict,
    Disable,
}

pub fn effective_mtls_mode(
    _resources: &[Resource],
    _root_namespace: &str,
    _namespace: &str,
    _labels: &BTreeMap<String, String>,
    _port: u16,
) -> MtlsMode {
    MtlsMode::Permissive
}
