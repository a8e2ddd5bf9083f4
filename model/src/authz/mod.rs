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
//! AUDIT policies never change the decision (they are only reported), nor
//! do policies annotated `istio.io/dry-run: "true"` (Istio evaluates them as
//! shadow rules, for logs and metrics only).
//! A policy selects the workload when it lives in the workload's namespace
//! or in the root namespace (mesh-wide), and its `selector` (if any)
//! matches the workload's labels. Policies with `targetRef(s)` attach to
//! gateways and waypoints, not to sidecars; Loupe selects them only for a
//! workload labelled `gateway.networking.k8s.io/gateway-name` with the
//! referenced Gateway's name.
//!
//! Request identities come from the request's verified JWT
//! ([`crate::request::Jwt`]): `requestPrincipals` and
//! `request.auth.principal` match `iss/sub`, `request.auth.audiences` the
//! `aud` claim, `request.auth.presenter` `azp`, `request.auth.claims[a][b]`
//! the (nested) claim — a string, or a list of which any string matches. A
//! request without a JWT has none of them.
//!
//! Paths are matched after Istio's default (`BASE`) normalization and
//! without the query string. A request with no HTTP attribute at all is a
//! plain TCP connection: ALLOW rules naming HTTP-only fields never match it
//! and DENY/AUDIT/CUSTOM rules apply without those fields, as Istio builds
//! its TCP filter. When several policies of one action match, the one
//! reported is the first in Envoy's RBAC order (`ns[NS]-policy[NAME]`).
//!
//! [`Authorizer::new`] compiles every policy once: grouped by namespace and
//! action, values pre-split into exact/prefix/suffix/any, CIDRs parsed,
//! rules indexed by the source namespace or path prefix they require (see
//! `table.rs`). [`Authorizer::evaluate`] then borrows the request and
//! allocates nothing (but the `iss/sub` of a request's JWT);
//! [`Authorizer::authorize`] adds the text for people.

mod attributes;
mod matcher;
mod rule;
mod table;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::request::Request;
use crate::resource::Resource;
use crate::security::{Action, AuthorizationPolicy};
use attributes::Attributes;
use table::{ActionTable, CompiledPolicy, PolicySet};

pub(crate) use matcher::Cidr;
pub(crate) use rule::ConditionKey;
pub(crate) use table::GATEWAY_NAME_LABEL;

/// Istio's default root namespace (`meshConfig.rootNamespace`).
pub const DEFAULT_ROOT_NAMESPACE: &str = "istio-system";

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
    CustomRuleMatched {
        rule: usize,
    },
    DenyRuleMatched {
        rule: usize,
    },
    /// No ALLOW policy selects the workload.
    NoAllowPolicy,
    AllowRuleMatched {
        rule: usize,
    },
    /// `policies` ALLOW policies select the workload; no rule of theirs matched.
    NoAllowRuleMatched {
        policies: usize,
    },
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
    /// The `istio.io/dry-run` policies, as if enforced: only for the text
    /// ("dry-run policy X would deny"), never for the decision.
    shadow: Option<Box<Authorizer>>,
}

impl Authorizer {
    /// Compiles every AuthorizationPolicy among `resources`; other kinds are
    /// ignored. `root_namespace` holds mesh-wide policies (`istio-system` by default).
    pub fn new(resources: &[Resource], root_namespace: &str) -> Authorizer {
        let dry_run: Vec<Resource> = resources
            .iter()
            .filter(|r| matches!(r, Resource::AuthorizationPolicy(p) if is_dry_run(p)))
            .map(|r| match r {
                Resource::AuthorizationPolicy(p) => {
                    let mut p = p.clone();
                    p.metadata.annotations.remove(DRY_RUN_ANNOTATION);
                    Resource::AuthorizationPolicy(p)
                }
                other => other.clone(),
            })
            .collect();
        let mut authorizer = Authorizer::enforced(resources, root_namespace);
        if !dry_run.is_empty() {
            authorizer.shadow = Some(Box::new(Authorizer::enforced(&dry_run, root_namespace)));
        }
        authorizer
    }

    fn enforced(resources: &[Resource], root_namespace: &str) -> Authorizer {
        let mut policies: Vec<&AuthorizationPolicy> = resources
            .iter()
            .filter_map(|r| match r {
                Resource::AuthorizationPolicy(p) if !is_dry_run(p) => Some(p),
                _ => None,
            })
            .collect();
        // Envoy's RBAC filter tries its policies in the order of their
        // names, which Istio writes as `ns[NS]-policy[NAME]-rule[N]`: that
        // order decides which policy is reported when several match.
        policies.sort_by_cached_key(|p| rbac_policy_key(p.metadata.namespace(), &p.metadata.name));
        let mut grouped: BTreeMap<&str, [Vec<(&AuthorizationPolicy, CompiledPolicy)>; 4]> =
            BTreeMap::new();
        for policy in policies {
            let by_action = grouped.entry(policy.metadata.namespace()).or_default();
            let slot = match policy.spec.action() {
                Action::Custom => 0,
                Action::Deny => 1,
                Action::Allow => 2,
                Action::Audit => 3,
            };
            by_action[slot].push((policy, CompiledPolicy::new(policy)));
        }
        let namespaces = grouped
            .into_iter()
            .map(|(ns, [custom, deny, allow, audit])| {
                let set = PolicySet {
                    custom: ActionTable::new(custom),
                    deny: ActionTable::new(deny),
                    allow: ActionTable::new(allow),
                    audit: ActionTable::new(audit),
                };
                (ns.to_string(), set)
            })
            .collect();
        Authorizer {
            root_namespace: root_namespace.to_string(),
            namespaces,
            shadow: None,
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
        // The workload's namespace and the root namespace share one Envoy
        // filter per action, so the first match in RBAC name order wins.
        let first_match = |pick: fn(&PolicySet) -> &ActionTable| {
            sets.into_iter()
                .flatten()
                .filter_map(|s| pick(s).first_match(&a, labels))
                .min_by(|x, y| x.0.rbac_key.cmp(&y.0.rbac_key))
        };
        let audited_by = first_match(|s| &s.audit).map(|(p, _)| p.id.as_str());
        if let Some((p, rule)) = first_match(|s| &s.custom) {
            let cause = Cause::CustomRuleMatched { rule };
            return make_verdict(Decision::Deny, Some(p), cause, audited_by);
        }
        if let Some((p, rule)) = first_match(|s| &s.deny) {
            let cause = Cause::DenyRuleMatched { rule };
            return make_verdict(Decision::Deny, Some(p), cause, audited_by);
        }
        if let Some((p, rule)) = first_match(|s| &s.allow) {
            let cause = Cause::AllowRuleMatched { rule };
            return make_verdict(Decision::Allow, Some(p), cause, audited_by);
        }
        let allow_policies = sets
            .into_iter()
            .flatten()
            .map(|s| s.allow.selecting(labels).count())
            .sum();
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
            .flat_map(|s| {
                let tables = [&s.custom, &s.deny, &s.allow, &s.audit];
                tables.into_iter().flat_map(|t| t.policies.iter())
            })
            .find(|p| p.id == id)
    }

    /// Which parts of rule `rule` of policy `id` matched the request.
    fn rule_detail(&self, request: &Request, id: &str, rule: usize) -> String {
        self.policy(id)
            .and_then(|p| p.rules.get(rule))
            .map(|r| r.explain(&Attributes::new(request)))
            .unwrap_or_default()
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
                    "CUSTOM policy {id} (provider {provider}) matched by spec.rules[{rule}] \
                     [{}]: Loupe has no external authorizer to ask, so a matching CUSTOM rule \
                     denies",
                    self.rule_detail(request, id, rule)
                )
            }
            Cause::DenyRuleMatched { rule } => {
                format!(
                    "DENY policy {id} matched by spec.rules[{rule}] [{}]: DENY policies are \
                     checked before ALLOW",
                    self.rule_detail(request, id, rule)
                )
            }
            Cause::AllowRuleMatched { rule } => {
                format!(
                    "ALLOW policy {id} matched by spec.rules[{rule}] [{}]",
                    self.rule_detail(request, id, rule)
                )
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
            let _ = write!(
                out,
                "; AUDIT policy {audit} matched (audit only, no effect on the decision)"
            );
        }
        if let Some(shadow) = &self.shadow {
            let s = shadow.evaluate(request);
            if let Some(p) = s.policy {
                let _ = write!(
                    out,
                    "; dry-run policy {p} (istio.io/dry-run, not enforced) would {}",
                    s.decision.as_str()
                );
            }
        }
        out
    }

    fn selected_allow_ids(&self, request: &Request) -> Vec<String> {
        self.sets_for(request.destination.namespace.as_deref())
            .into_iter()
            .flatten()
            .flat_map(|s| s.allow.selecting(&request.destination.labels))
            .map(|p| p.id.clone())
            .collect()
    }
}

/// The name Istio gives a policy's rules in Envoy's RBAC config, up to the
/// rule index: `ns[foo]-policy[httpbin]-rule[`.
pub(crate) fn rbac_policy_key(namespace: &str, name: &str) -> String {
    format!("ns[{namespace}]-policy[{name}]-rule[")
}

/// The annotation that makes a policy shadow-only.
pub const DRY_RUN_ANNOTATION: &str = "istio.io/dry-run";

/// True when `istio.io/dry-run` holds a true value as Go's
/// `strconv.ParseBool` reads it (what istiod uses); other values enforce.
pub fn is_dry_run(policy: &AuthorizationPolicy) -> bool {
    policy
        .metadata
        .annotations
        .get(DRY_RUN_ANNOTATION)
        .and_then(|v| parse_go_bool(v))
        .unwrap_or(false)
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
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
