//! Authorization in Istio's order, for one request to one workload:
//!
//! 1. a CUSTOM policy whose rule matches → DENY. Loupe has no external
//!    authorizer (ext-authz provider) to ask, so it takes the cautious
//!    answer a failing provider gives;
//! 2. a DENY policy whose rule matches → DENY;
//! 3. no ALLOW policy selects the workload → ALLOW;
//! 4. an ALLOW policy whose rule matches → ALLOW;
//! 5. otherwise DENY.
//!
//! AUDIT policies never change the decision (they are only reported).
//! A policy selects the workload when it lives in the workload's namespace
//! or in the root namespace (mesh-wide), and its `selector` (if any)
//! matches the workload's labels. Policies with `targetRef(s)` attach to
//! gateways and waypoints, not to sidecars; Loupe selects them only for a
//! workload labelled `gateway.networking.k8s.io/gateway-name` with the
//! referenced Gateway's name.
//!
//! [`Authorizer::new`] compiles every policy once (grouped by namespace and
//! action, values pre-split into exact/prefix/suffix/any, CIDRs parsed);
//! [`Authorizer::evaluate`] then borrows the request and allocates nothing.

mod attributes;
mod matcher;
mod rule;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::request::Request;
use crate::resource::Resource;
use crate::security::{Action, AuthorizationPolicy, WorkloadSelector};
use attributes::Attributes;
use rule::CompiledRule;

pub(crate) use matcher::Cidr;
pub(crate) use rule::ConditionKey;

/// Istio's default root namespace (`meshConfig.rootNamespace`).
pub const DEFAULT_ROOT_NAMESPACE: &str = "istio-system";

/// The label Kubernetes Gateway API deployments carry; `targetRef` policies
/// for a `Gateway` select workloads with it.
const GATEWAY_NAME_LABEL: &str = "gateway.networking.k8s.io/gateway-name";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Decision {
    Allow,
    Deny,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "ALLOW",
            Decision::Deny => "DENY",
        }
    }
}

/// The outcome; serializes as `loupe authz check --output json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuthzDecision {
    pub decision: Decision,
    /// `namespace/name` of the DENY or ALLOW policy whose rule decided;
    /// `None` for a default decision.
    pub policy: Option<String>,
    /// Why, for people (text output).
    #[serde(skip)]
    pub reason: String,
}

/// Why a decision was taken; `rule` is the index in `spec.rules`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    CustomRuleMatched { rule: usize },
    DenyRuleMatched { rule: usize },
    /// No ALLOW policy selects the workload.
    NoAllowPolicy,
    AllowRuleMatched { rule: usize },
    /// `policies` ALLOW policies select the workload; no rule of theirs matched.
    NoAllowRuleMatched { policies: usize },
}

/// The allocation-free result of [`Authorizer::evaluate`], borrowing the
/// compiled policies.
#[derive(Clone, Copy, Debug)]
pub struct Verdict<'a> {
    pub decision: Decision,
    /// The policy whose rule decided (`namespace/name`).
    pub policy: Option<&'a str>,
    pub cause: Cause,
    /// The first AUDIT policy whose rule matched, if any.
    pub audited_by: Option<&'a str>,
}

/// The compiled AuthorizationPolicies of a configuration.
#[derive(Clone, Debug, Default)]
pub struct Authorizer {
    root_namespace: String,
    namespaces: HashMap<String, PolicySet>,
}

/// The policies of one namespace, by action, in `namespace/name` order.
#[derive(Clone, Debug, Default)]
struct PolicySet {
    custom: Vec<CompiledPolicy>,
    deny: Vec<CompiledPolicy>,
    allow: Vec<CompiledPolicy>,
    audit: Vec<CompiledPolicy>,
}

#[derive(Clone, Debug)]
struct CompiledPolicy {
    /// `namespace/name`.
    id: String,
    provider: Option<String>,
    target: Target,
    rules: Box<[CompiledRule]>,
}

#[derive(Clone, Debug)]
enum Target {
    Selector(Option<WorkloadSelector>),
    /// Names of the Gateways a `targetRef(s)` points at.
    Gateways(Box<[String]>),
}

impl CompiledPolicy {
    fn new(policy: &AuthorizationPolicy) -> CompiledPolicy {
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

    fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        match &self.target {
            Target::Selector(None) => true,
            Target::Selector(Some(s)) => s.matches(labels),
            Target::Gateways(names) => labels
                .get(GATEWAY_NAME_LABEL)
                .is_some_and(|g| names.iter().any(|n| n == g)),
        }
    }

    /// The index of the first rule that matches.
    fn matching_rule(&self, a: &Attributes<'_>) -> Option<usize> {
        self.rules.iter().position(|r| r.matches(a))
    }
}

impl Authorizer {
    /// Compiles every AuthorizationPolicy among `resources`; other kinds are
    /// ignored. `root_namespace` holds mesh-wide policies (`istio-system` by default).
    pub fn new(resources: &[Resource], root_namespace: &str) -> Authorizer {
        let mut policies: Vec<&AuthorizationPolicy> = resources
            .iter()
            .filter_map(|r| match r {
                Resource::AuthorizationPolicy(p) => Some(p),
                _ => None,
            })
            .collect();
        policies.sort_by(|a, b| {
            (a.metadata.namespace(), &a.metadata.name).cmp(&(b.metadata.namespace(), &b.metadata.name))
        });
        let mut namespaces: HashMap<String, PolicySet> = HashMap::new();
        for policy in policies {
            let set = namespaces.entry(policy.metadata.namespace().to_string()).or_default();
            let compiled = CompiledPolicy::new(policy);
            match policy.spec.action() {
                Action::Custom => set.custom.push(compiled),
                Action::Deny => set.deny.push(compiled),
                Action::Allow => set.allow.push(compiled),
                Action::Audit => set.audit.push(compiled),
            }
        }
        Authorizer {
            root_namespace: root_namespace.to_string(),
            namespaces,
        }
    }

    pub fn root_namespace(&self) -> &str {
        &self.root_namespace
    }

    /// The decision with its reason spelled out for people.
    pub fn authorize(&self, request: &Request) -> AuthzDecision {
        let verdict = self.evaluate(request);
        AuthzDecision {
            decision: verdict.decision,
            policy: verdict.policy.map(str::to_string),
            reason: self.explain(request, &verdict),
        }
    }

    /// The decision, without building any text: what the proxy calls per request.
    pub fn evaluate(&self, request: &Request) -> Verdict<'_> {
        let a = Attributes::new(request);
        let labels = &request.destination.labels;
        let sets = self.sets_for(request.destination.namespace.as_deref());
        let selected = |pick: fn(&PolicySet) -> &Vec<CompiledPolicy>| {
            sets.into_iter()
                .flatten()
                .flat_map(move |s| pick(s).iter())
                .filter(move |p| p.selects(labels))
        };
        let first_match = |pick: fn(&PolicySet) -> &Vec<CompiledPolicy>| {
            selected(pick).find_map(|p| p.matching_rule(&a).map(|rule| (p, rule)))
        };
        let audited_by = first_match(|s| &s.audit).map(|(p, _)| p.id.as_str());
        if let Some((p, rule)) = first_match(|s| &s.custom) {
            return make_verdict(Decision::Deny, Some(p), Cause::CustomRuleMatched { rule }, audited_by);
        }
        if let Some((p, rule)) = first_match(|s| &s.deny) {
            return make_verdict(Decision::Deny, Some(p), Cause::DenyRuleMatched { rule }, audited_by);
        }
        let mut allow_policies = 0;
        for p in selected(|s| &s.allow) {
            allow_policies += 1;
            if let Some(rule) = p.matching_rule(&a) {
                return make_verdict(Decision::Allow, Some(p), Cause::AllowRuleMatched { rule }, audited_by);
            }
        }
        if allow_policies == 0 {
            make_verdict(Decision::Allow, None, Cause::NoAllowPolicy, audited_by)
        } else {
            let cause = Cause::NoAllowRuleMatched {
                policies: allow_policies,
            };
            make_verdict(Decision::Deny, None, cause, audited_by)
        }
    }

    /// The workload's own namespace, then the root namespace (once).
    fn sets_for(&self, namespace: Option<&str>) -> [Option<&PolicySet>; 2] {
        let namespace = namespace.unwrap_or(crate::meta::DEFAULT_NAMESPACE);
        let local = self.namespaces.get(namespace);
        let root = (namespace != self.root_namespace)
            .then(|| self.namespaces.get(&self.root_namespace))
            .flatten();
        [local, root]
    }

    fn policy(&self, id: &str) -> Option<&CompiledPolicy> {
        self.namespaces
            .values()
            .flat_map(|s| s.custom.iter().chain(&s.deny).chain(&s.allow).chain(&s.audit))
            .find(|p| p.id == id)
    }

    fn explain(&self, request: &Request, v: &Verdict<'_>) -> String {
        let id = v.policy.unwrap_or("");
        let mut out = match v.cause {
            Cause::CustomRuleMatched { rule } => {
                let provider = self
                    .policy(id)
                    .and_then(|p| p.provider.clone())
                    .unwrap_or_else(|| "(none)".to_string());
                format!(
                    "CUSTOM policy {id} (provider {provider}) matched by spec.rules[{rule}]: \
                     Loupe has no external authorizer to ask, so a matching CUSTOM rule denies"
                )
            }
            Cause::DenyRuleMatched { rule } => {
                format!("DENY policy {id} matched by spec.rules[{rule}]: DENY policies are checked before ALLOW")
            }
            Cause::AllowRuleMatched { rule } => {
                format!("ALLOW policy {id} matched by spec.rules[{rule}]")
            }
            Cause::NoAllowPolicy => format!(
                "no ALLOW policy selects the workload ({}): allowed by default",
                describe_workload(request)
            ),
            Cause::NoAllowRuleMatched { .. } => {
                let names = self.selected_allow_ids(request).join(", ");
                format!(
                    "ALLOW policies select the workload ({}) but no rule of theirs matched \
                     ({names}; a policy without rules allows nothing): denied by default",
                    describe_workload(request)
                )
            }
        };
        if let Some(audit) = v.audited_by {
            let _ = write!(out, "; AUDIT policy {audit} matched (audit only, no effect on the decision)");
        }
        out
    }

    fn selected_allow_ids(&self, request: &Request) -> Vec<&str> {
        self.sets_for(request.destination.namespace.as_deref())
            .into_iter()
            .flatten()
            .flat_map(|s| s.allow.iter())
            .filter(|p| p.selects(&request.destination.labels))
            .map(|p| p.id.as_str())
            .collect()
    }
}

fn make_verdict<'a>(
    decision: Decision,
    policy: Option<&'a CompiledPolicy>,
    cause: Cause,
    audited_by: Option<&'a str>,
) -> Verdict<'a> {
    Verdict {
        decision,
        policy: policy.map(|p| p.id.as_str()),
        cause,
        audited_by,
    }
}

fn describe_workload(request: &Request) -> String {
    let ns = request
        .destination
        .namespace
        .as_deref()
        .unwrap_or(crate::meta::DEFAULT_NAMESPACE);
    let labels: Vec<String> = request
        .destination
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if labels.is_empty() {
        format!("namespace {ns}, no labels")
    } else {
        format!("namespace {ns}, labels {}", labels.join(","))
    }
}
