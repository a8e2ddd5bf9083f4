//! The compiled policies of one namespace, one table per action. Each table
//! indexes its rules by the source namespace they require (from exact
//! `namespaces`, or principals / service accounts naming `/ns/NAME/`), so
//! a request only tries the rules that could match it, in policy-then-rule
//! order, and the first match found is the first match in that order.

use std::collections::{BTreeMap, HashMap};

use super::attributes::Attributes;
use super::rule::CompiledRule;
use crate::security::{AuthorizationPolicy, WorkloadSelector};

/// The label Kubernetes Gateway API deployments carry; `targetRef` policies
/// for a `Gateway` select workloads with it.
const GATEWAY_NAME_LABEL: &str = "gateway.networking.k8s.io/gateway-name";

/// The policies of one namespace, by action.
#[derive(Clone, Debug, Default)]
pub(crate) struct PolicySet {
    pub custom: ActionTable,
    pub deny: ActionTable,
    pub allow: ActionTable,
    pub audit: ActionTable,
}

/// (policy index, rule index), ascending.
type Slot = (u32, u32);

#[derive(Clone, Debug, Default)]
pub(crate) struct ActionTable {
    /// In `namespace/name` order.
    pub policies: Vec<CompiledPolicy>,
    by_namespace: HashMap<Box<str>, Box<[Slot]>>,
    /// Rules that may match a request from any namespace (or none).
    unindexed: Box<[Slot]>,
}

impl ActionTable {
    pub fn new(policies: Vec<(&AuthorizationPolicy, CompiledPolicy)>) -> ActionTable {
        let mut by_namespace: HashMap<Box<str>, Vec<Slot>> = HashMap::new();
        let mut unindexed = Vec::new();
        for (p, (policy, _)) in policies.iter().enumerate() {
            for (r, rule) in policy.spec.rules.iter().enumerate() {
                let slot = (p as u32, r as u32);
                match CompiledRule::required_namespaces(rule) {
                    Some(namespaces) => {
                        for ns in namespaces {
                            by_namespace.entry(ns.into()).or_default().push(slot);
                        }
                    }
                    None => unindexed.push(slot),
                }
            }
        }
        ActionTable {
            policies: policies.into_iter().map(|(_, c)| c).collect(),
            by_namespace: by_namespace
                .into_iter()
                .map(|(k, mut v)| {
                    v.dedup();
                    (k, v.into_boxed_slice())
                })
                .collect(),
            unindexed: unindexed.into_boxed_slice(),
        }
    }

    /// The first (policy, rule index) that selects the workload and matches.
    pub fn first_match(
        &self,
        a: &Attributes<'_>,
        labels: &BTreeMap<String, String>,
    ) -> Option<(&CompiledPolicy, usize)> {
        if self.policies.is_empty() {
            return None;
        }
        let indexed: &[Slot] = a
            .source_namespace
            .and_then(|ns| self.by_namespace.get(ns))
            .map_or(&[], |v| v);
        let (mut i, mut u) = (0, 0);
        // The selector of the policy last looked at, so it is checked once.
        let mut selected: Option<(u32, bool)> = None;
        loop {
            let slot = match (indexed.get(i), self.unindexed.get(u)) {
                (Some(x), Some(y)) if x <= y => {
                    i += 1;
                    *x
                }
                (Some(x), None) => {
                    i += 1;
                    *x
                }
                (_, Some(y)) => {
                    u += 1;
                    *y
                }
                (None, None) => return None,
            };
            let (p, r) = slot;
            let policy = &self.policies[p as usize];
            let selects = match selected {
                Some((q, s)) if q == p => s,
                _ => {
                    let s = policy.selects(labels);
                    selected = Some((p, s));
                    s
                }
            };
            if selects && policy.rules[r as usize].matches(a) {
                return Some((policy, r as usize));
            }
        }
    }

    pub fn selecting<'a>(
        &'a self,
        labels: &'a BTreeMap<String, String>,
    ) -> impl Iterator<Item = &'a CompiledPolicy> + 'a {
        self.policies.iter().filter(move |p| p.selects(labels))
    }
}

#[derive(Clone, Debug)]
pub(crate) struct CompiledPolicy {
    /// `namespace/name`.
    pub id: String,
    pub provider: Option<String>,
    target: Target,
    pub rules: Box<[CompiledRule]>,
}

#[derive(Clone, Debug)]
enum Target {
    Selector(Option<WorkloadSelector>),
    /// Names of the Gateways a `targetRef(s)` points at.
    Gateways(Box<[String]>),
}

impl CompiledPolicy {
    pub fn new(policy: &AuthorizationPolicy) -> CompiledPolicy {
        let spec = &policy.spec;
        let refs: Vec<_> = spec.target_ref.iter().chain(&spec.target_refs).collect();
        let target = if refs.is_empty() {
            Target::Selector(spec.selector.clone())
        } else {
            Target::Gateways(
                refs.iter()
                    .filter(|r| r.kind == "Gateway")
                    .map(|r| r.name.clone())
                    .collect(),
            )
        };
        CompiledPolicy {
            id: format!("{}/{}", policy.metadata.namespace(), policy.metadata.name),
            provider: spec.provider.as_ref().map(|p| p.name.clone()),
            target,
            rules: spec.rules.iter().map(CompiledRule::new).collect(),
        }
    }

    pub fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        match &self.target {
            Target::Selector(None) => true,
            Target::Selector(Some(s)) => s.matches(labels),
            Target::Gateways(names) => labels
                .get(GATEWAY_NAME_LABEL)
                .is_some_and(|g| names.iter().any(|n| n == g)),
        }
    }
}
