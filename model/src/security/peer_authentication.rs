//! `PeerAuthentication` (security.istio.io v1beta1, v1). (Skeleton.)

use serde::{Deserialize, Serialize};

use crate::meta::ObjectMeta;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerAuthentication {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: serde_json::Value,
}
