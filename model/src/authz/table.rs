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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::request::Request;

    const SOURCES: [&str; 7] = [
        "namespaces: [\"ns0\"]",
        "namespaces: [\"ns1\", \"ns2\"]",
        "namespaces: [\"ns*\"]",
        "principals: [\"cluster.local/ns/ns1/sa/a\"]",
        "principals: [\"cluster.local/ns/ns2/*\"]",
        "principals: [\"cluster.local/ns/n*\"]",
        "principals: [\"*/sa/b\"]",
    ];

    /// A rule: its `from` sources (indices into SOURCES; empty = no `from`)
    /// and an optional method.
    fn rule_yaml(sources: &[usize], method: Option<bool>) -> String {
        let mut rule = String::from("  - {}\n");
        if !sources.is_empty() || method.is_some() {
            rule = String::from("  -");
            let mut first = true;
            if !sources.is_empty() {
                rule.push_str(" from:\n");
                for s in sources {
                    rule.push_str(&format!("    - source: {{{}}}\n", SOURCES[*s]));
                }
                first = false;
            }
            if let Some(get) = method {
                let m = if get { "GET" } else { "POST" };
                let lead = if first { " " } else { "    " };
                rule.push_str(&format!(
                    "{lead}to:\n    - operation: {{methods: [\"{m}\"]}}\n"
                ));
            }
        }
        rule
    }

    fn policies(
        rules: &[Vec<(Vec<usize>, Option<bool>)>],
    ) -> Vec<(AuthorizationPolicy, CompiledPolicy)> {
        rules
            .iter()
            .enumerate()
            .map(|(i, rules)| {
                let mut yaml =
                    format!("metadata: {{name: p{i}, namespace: foo}}\nspec:\n  rules:\n");
                if rules.is_empty() {
                    yaml = format!("metadata: {{name: p{i}, namespace: foo}}\nspec: {{}}\n");
                }
                for (sources, method) in rules {
                    yaml.push_str(&rule_yaml(sources, *method));
                }
                let policy: AuthorizationPolicy =
                    serde_yaml_ng::from_str(&yaml).expect("generated YAML");
                let compiled = CompiledPolicy::new(&policy);
                (policy, compiled)
            })
            .collect()
    }

    proptest! {
        /// The namespace index finds exactly what a plain scan finds.
        #[test]
        fn index_agrees_with_a_linear_scan(
            rules in prop::collection::vec(
                prop::collection::vec(
                    (prop::collection::vec(0..SOURCES.len(), 0..3), prop::option::of(any::<bool>())),
                    0..5,
                ),
                1..4,
            ),
            ns in prop::option::of(0..4usize),
            sa_b in any::<bool>(),
            get in any::<bool>(),
        ) {
            let compiled = policies(&rules);
            let scan: Vec<CompiledPolicy> = compiled.iter().map(|(_, c)| c.clone()).collect();
            let table = ActionTable::new(compiled.iter().map(|(p, c)| (p, c.clone())).collect());
            let mut request = Request::default();
            request.source.principal = ns.map(|n| {
                format!("cluster.local/ns/ns{}/sa/{}", if n == 3 { "x".to_string() } else { n.to_string() }, if sa_b { "b" } else { "a" })
            });
            request.request.method = Some(if get { "GET" } else { "POST" }.to_string());
            let a = Attributes::new(&request);
            let labels = BTreeMap::new();
            let expected = scan.iter().find_map(|p| {
                p.rules.iter().position(|r| r.matches(&a)).map(|r| (p.id.clone(), r))
            });
            let got = table.first_match(&a, &labels).map(|(p, r)| (p.id.clone(), r));
            prop_assert_eq!(got, expected);
        }
    }
}
