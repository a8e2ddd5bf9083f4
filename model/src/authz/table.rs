//! The compiled policies of one namespace, one table per action. Each table
//! indexes its rules so a request only tries the rules that could match it:
//!
//! - by the source namespace a rule requires (exact `namespaces`, or
//!   principals / service accounts naming `/ns/NAME/`);
//! - else by the directory its paths require: a rule whose every operation
//!   has only exact or `prefix*` paths needs the request path to start with
//!   the literal up to its last `/` (`/api/v1/*` → `/api/v1/`), so the
//!   request looks up each `/`-terminated prefix of its path;
//! - every other rule is always tried.
//!
//! Candidates are merged in policy-then-rule order, so the first match found
//! is the first match in that order, exactly as a plain scan would find.

use std::collections::{BTreeMap, HashMap};

use super::attributes::Attributes;
use super::rule::CompiledRule;
use crate::security::{AuthorizationPolicy, WorkloadSelector};

/// The label Kubernetes Gateway API deployments carry; `targetRef` policies
/// for a `Gateway` select workloads with it.
pub(crate) const GATEWAY_NAME_LABEL: &str = "gateway.networking.k8s.io/gateway-name";

/// Below this many path-indexable rules, hashing the request's path
/// prefixes costs more than trying the rules.
const MIN_PATH_INDEXED: usize = if cfg!(test) { 1 } else { 8 };

/// Candidate lists merged per request (unindexed, namespace, path prefixes);
/// a deeper path falls back to trying every rule.
const MAX_LISTS: usize = 16;

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

type Index = HashMap<Box<str>, Box<[Slot]>>;

#[derive(Clone, Debug, Default)]
pub(crate) struct ActionTable {
    /// In `namespace/name` order.
    pub policies: Vec<CompiledPolicy>,
    by_namespace: Index,
    by_path: Index,
    /// Rules that may match any request.
    unindexed: Box<[Slot]>,
}

impl ActionTable {
    pub fn new(policies: Vec<(&AuthorizationPolicy, CompiledPolicy)>) -> ActionTable {
        let mut by_namespace: HashMap<Box<str>, Vec<Slot>> = HashMap::new();
        let mut by_path: Vec<(Vec<String>, Slot)> = Vec::new();
        let mut unindexed = Vec::new();
        for (p, (policy, _)) in policies.iter().enumerate() {
            for (r, rule) in policy.spec.rules.iter().enumerate() {
                let slot = (p as u32, r as u32);
                let ns = policy.metadata.namespace();
                if let Some(namespaces) = CompiledRule::required_namespaces(rule, ns) {
                    for ns in namespaces {
                        by_namespace.entry(ns.into()).or_default().push(slot);
                    }
                } else if let Some(dirs) = CompiledRule::required_path_dirs(rule) {
                    by_path.push((dirs, slot));
                } else {
                    unindexed.push(slot);
                }
            }
        }
        let mut path_index: HashMap<Box<str>, Vec<Slot>> = HashMap::new();
        if by_path.len() >= MIN_PATH_INDEXED {
            for (dirs, slot) in by_path {
                for dir in dirs {
                    path_index.entry(dir.into()).or_default().push(slot);
                }
            }
        } else {
            unindexed.extend(by_path.into_iter().map(|(_, slot)| slot));
            unindexed.sort_unstable();
        }
        ActionTable {
            policies: policies.into_iter().map(|(_, c)| c).collect(),
            by_namespace: finish(by_namespace),
            by_path: finish(path_index),
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
        if a.tcp {
            // Path-indexed DENY rules may match TCP without their paths.
            return self.scan(a, labels);
        }
        let mut lists: [&[Slot]; MAX_LISTS] = [&[]; MAX_LISTS];
        lists[0] = &self.unindexed;
        let mut n = 1;
        if let Some(v) = a.source_namespace.and_then(|ns| self.by_namespace.get(ns)) {
            lists[n] = v;
            n += 1;
        }
        if let (false, Some(path)) = (self.by_path.is_empty(), a.path.as_deref()) {
            for (i, _) in path.match_indices('/') {
                if let Some(v) = self.by_path.get(&path[..=i]) {
                    if n == MAX_LISTS {
                        return self.scan(a, labels);
                    }
                    lists[n] = v;
                    n += 1;
                }
            }
        }
        // The selector of the policy last looked at, so it is checked once.
        let mut selected: Option<(u32, bool)> = None;
        let mut try_slot = |(p, r): Slot| {
            let policy = &self.policies[p as usize];
            let selects = match selected {
                Some((q, s)) if q == p => s,
                _ => {
                    let s = policy.selects(labels);
                    selected = Some((p, s));
                    s
                }
            };
            (selects && policy.rules[r as usize].matches(a)).then_some((policy, r as usize))
        };
        if n == 1 {
            // Only the unindexed rules can match: no merge needed.
            return lists[0].iter().find_map(|slot| try_slot(*slot));
        }
        let lists = &mut lists[..n];
        let mut last: Option<Slot> = None;
        loop {
            let (k, slot) = lists
                .iter()
                .enumerate()
                .filter_map(|(k, l)| l.first().map(|s| (k, *s)))
                .min_by_key(|(_, s)| *s)?;
            lists[k] = &lists[k][1..];
            // A rule indexed under two of the path's prefixes comes twice.
            if last == Some(slot) {
                continue;
            }
            last = Some(slot);
            if let Some(found) = try_slot(slot) {
                return Some(found);
            }
        }
    }

    /// Every rule in order: the fallback when the index cannot help.
    fn scan(
        &self,
        a: &Attributes<'_>,
        labels: &BTreeMap<String, String>,
    ) -> Option<(&CompiledPolicy, usize)> {
        self.policies
            .iter()
            .filter(|p| p.selects(labels))
            .find_map(|p| p.rules.iter().position(|r| r.matches(a)).map(|r| (p, r)))
    }

    pub fn selecting<'a>(
        &'a self,
        labels: &'a BTreeMap<String, String>,
    ) -> impl Iterator<Item = &'a CompiledPolicy> + 'a {
        self.policies.iter().filter(move |p| p.selects(labels))
    }
}

fn finish(index: HashMap<Box<str>, Vec<Slot>>) -> Index {
    index
        .into_iter()
        .map(|(k, mut v)| {
            v.dedup();
            (k, v.into_boxed_slice())
        })
        .collect()
}

#[derive(Clone, Debug)]
pub(crate) struct CompiledPolicy {
    /// `namespace/name`.
    pub id: String,
    /// The order Envoy tries policies in ([`super::rbac_policy_key`]).
    pub rbac_key: String,
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
            rbac_key: super::rbac_policy_key(policy.metadata.namespace(), &policy.metadata.name),
            provider: spec.provider.as_ref().map(|p| p.name.clone()),
            target,
            rules: {
                let ns = policy.metadata.namespace();
                let allow = spec.action() == crate::security::Action::Allow;
                spec.rules
                    .iter()
                    .map(|r| CompiledRule::new(r, ns, allow))
                    .collect()
            },
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

    const PATHS: [&str; 8] = [
        "/api/v1/*",
        "/api/v1/users",
        "/api/*",
        "/api/v2*",
        "*.json",
        "/api/{*}/users",
        "/",
        "/other",
    ];

    const REQUEST_PATHS: [&str; 5] = [
        "/api/v1/users",
        "/api/v2/x",
        "/other",
        "/api/v1/u.json",
        "/",
    ];

    type GenRule = (Vec<usize>, Option<bool>, Vec<Vec<usize>>);

    /// `from` sources (indices into SOURCES), a method, and `to`
    /// operations each with paths (indices into PATHS).
    fn rule_yaml((sources, method, ops): &GenRule) -> String {
        let mut rule = String::from("  - from: [");
        for s in sources {
            rule.push_str(&format!("{{source: {{{}}}}}, ", SOURCES[*s]));
        }
        rule.push_str("]\n    to: [");
        for paths in ops {
            let paths: Vec<_> = paths.iter().map(|p| format!("\"{}\"", PATHS[*p])).collect();
            let method = match method {
                Some(true) => "methods: [\"GET\"], ",
                Some(false) => "methods: [\"POST\"], ",
                None => "",
            };
            rule.push_str(&format!(
                "{{operation: {{{method}paths: [{}]}}}}, ",
                paths.join(", ")
            ));
        }
        rule.push_str("]\n");
        rule
    }

    fn policies(rules: &[Vec<GenRule>]) -> Vec<(AuthorizationPolicy, CompiledPolicy)> {
        rules
            .iter()
            .enumerate()
            .map(|(i, rules)| {
                let mut yaml =
                    format!("metadata: {{name: p{i}, namespace: foo}}\nspec:\n  rules:\n");
                if rules.is_empty() {
                    yaml = format!("metadata: {{name: p{i}, namespace: foo}}\nspec: {{}}\n");
                }
                for rule in rules {
                    yaml.push_str(&rule_yaml(rule));
                }
                let policy: AuthorizationPolicy =
                    serde_yaml_ng::from_str(&yaml).expect("generated YAML");
                let compiled = CompiledPolicy::new(&policy);
                (policy, compiled)
            })
            .collect()
    }

    fn gen_rule() -> impl Strategy<Value = GenRule> {
        (
            prop::collection::vec(0..SOURCES.len(), 0..3),
            prop::option::of(any::<bool>()),
            prop::collection::vec(prop::collection::vec(0..PATHS.len(), 1..3), 0..3),
        )
    }

    proptest! {
        /// The indexes find exactly what a plain scan finds.
        #[test]
        fn index_agrees_with_a_linear_scan(
            rules in prop::collection::vec(prop::collection::vec(gen_rule(), 0..6), 1..4),
            ns in prop::option::of(0..4usize),
            sa_b in any::<bool>(),
            get in any::<bool>(),
            path in prop::option::of(0..REQUEST_PATHS.len()),
        ) {
            let compiled = policies(&rules);
            let table = ActionTable::new(compiled.iter().map(|(p, c)| (p, c.clone())).collect());
            let mut request = Request::default();
            request.source.principal = ns.map(|n| {
                let ns = if n == 3 { "x".to_string() } else { n.to_string() };
                format!("cluster.local/ns/ns{ns}/sa/{}", if sa_b { "b" } else { "a" })
            });
            request.request.method = Some(if get { "GET" } else { "POST" }.to_string());
            request.request.path = path.map(|p| REQUEST_PATHS[p].to_string());
            let a = Attributes::new(&request);
            let labels = BTreeMap::new();
            let expected = table.scan(&a, &labels).map(|(p, r)| (p.id.clone(), r));
            let got = table.first_match(&a, &labels).map(|(p, r)| (p.id.clone(), r));
            prop_assert_eq!(got, expected);
        }
    }
}
