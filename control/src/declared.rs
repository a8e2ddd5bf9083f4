//! The operator's declarations of workloads outside Kubernetes, in Istio's
//! shapes: each WorkloadEntry with the hosts of the ServiceEntries that
//! select it. Built once per config version; the push stream and the CA
//! look entries up here by the (namespace, name) a credential is bound to.

use std::collections::BTreeMap;

use loupe_model::Resource;

use crate::authn::claims::Declared;

/// Every declared workload, by (namespace, name).
#[derive(Clone, Debug, Default)]
pub struct Declarations {
    workloads: BTreeMap<(String, String), Declared>,
}

impl Declarations {
    /// The declarations in a config. (loupe-model does not have the
    /// WorkloadEntry and ServiceEntry kinds yet: none.)
    pub fn from_resources(_resources: &[Resource]) -> Declarations {
        Declarations::default()
    }

    pub fn workload(&self, namespace: &str, name: &str) -> Option<&Declared> {
        self.workloads
            .get(&(namespace.to_string(), name.to_string()))
    }
}
