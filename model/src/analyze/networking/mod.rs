//! Checks of the networking.istio.io kinds: each resource on its own
//! (durations, regexes, weights, enum-like strings, ServiceEntry ports and
//! endpoints) and the references between them (subsets a DestinationRule
//! must define, Gateways that must exist, hosts claimed twice, a
//! ServiceEntry's workloadSelector that selects nothing). Unknown destination hosts are not errors:
//! the analyzer has no service registry.

mod destination_rule;
mod gateway;
mod route_destination;
mod service_entry;
mod virtual_service;

use std::collections::{BTreeSet, HashMap, HashSet};

use super::{Diagnostic, Severity};
use crate::duration::parse_duration;
use crate::host;
use crate::meta::DEFAULT_NAMESPACE;
use crate::networking::{DestinationRule, StringMatch};
use crate::resource::Resource;
use crate::route::matching::anchored;

pub(super) fn check(resources: &[Resource], out: &mut Vec<Diagnostic>) {
    let ctx = Context::new(resources);
    for r in resources {
        let mut sink = Sink {
            resource: r.key().to_string(),
            out,
        };
        match r {
            Resource::VirtualService(vs) => virtual_service::check(vs, &ctx, &mut sink),
            Resource::DestinationRule(dr) => destination_rule::check(dr, &ctx, &mut sink),
            Resource::Gateway(gw) => gateway::check(gw, &mut sink),
            Resource::ServiceEntry(se) => service_entry::check(se, &mut sink),
            Resource::WorkloadEntry(we) => service_entry::check_workload_entry(we, &mut sink),
            _ => {}
        }
    }
    virtual_service::check_conflicting_hosts(resources, &ctx, out);
    destination_rule::check_conflicting_hosts(resources, &ctx, out);
    service_entry::check_selectors(resources, &ctx, out);
}

/// A Gateway server host: (namespace allowed to bind it, pattern), as
/// [`host::split_gateway_host`] splits it.
type ServerHost = (Option<String>, String);

/// What cross-resource checks look up, built once.
pub(super) struct Context<'a> {
    namespaces: BTreeSet<String>,
    /// Indices of resources a later one with the same Kind/namespace/name
    /// replaces (as `kubectl apply` of the files would): they claim no hosts.
    pub(super) superseded: HashSet<usize>,
    /// Gateways by (namespace, name) → their servers' hosts.
    gateways: HashMap<(String, String), Vec<ServerHost>>,
    /// VirtualServices by (namespace, name), and those some route delegates to.
    virtual_services: HashSet<(String, String)>,
    delegates: HashSet<(String, String)>,
    /// Each DestinationRule with its host fully qualified.
    destination_rules: Vec<(String, &'a DestinationRule)>,
}

impl<'a> Context<'a> {
    fn new(resources: &'a [Resource]) -> Context<'a> {
        let mut namespaces: BTreeSet<String> = resources
            .iter()
            .map(|r| r.meta().namespace().to_string())
            .collect();
        namespaces.insert(DEFAULT_NAMESPACE.to_string());
        let mut ctx = Context {
            namespaces,
            superseded: HashSet::new(),
            gateways: HashMap::new(),
            virtual_services: HashSet::new(),
            delegates: HashSet::new(),
            destination_rules: Vec::new(),
        };
        let mut last = HashMap::new();
        for (i, r) in resources.iter().enumerate() {
            if let Some(earlier) = last.insert(r.key(), i) {
                ctx.superseded.insert(earlier);
            }
        }
        for r in resources {
            match r {
                Resource::Gateway(g) => {
                    let ns = g.metadata.namespace();
                    let hosts = g
                        .spec
                        .servers
                        .iter()
                        .flat_map(|s| &s.hosts)
                        .map(|h| host::split_gateway_host(h, ns));
                    ctx.gateways
                        .entry((ns.to_string(), g.metadata.name.clone()))
                        .or_default()
                        .extend(hosts);
                }
                Resource::VirtualService(vs) => {
                    let ns = vs.metadata.namespace();
                    ctx.virtual_services
                        .insert((ns.to_string(), vs.metadata.name.clone()));
                    for d in vs.spec.http.iter().filter_map(|r| r.delegate.as_ref()) {
                        let dns = d.namespace.as_deref().unwrap_or(ns);
                        ctx.delegates.insert((dns.to_string(), d.name.clone()));
                    }
                }
                Resource::DestinationRule(dr) => {
                    let h = ctx.fqdn(&dr.spec.host, dr.metadata.namespace());
                    ctx.destination_rules.push((h, dr));
                }
                _ => {}
            }
        }
        ctx
    }

    pub(super) fn fqdn(&self, h: &str, namespace: &str) -> String {
        host::fqdn(h, namespace, |n| self.namespaces.contains(n))
    }

    /// DestinationRules whose host covers `host` (FQDN).
    fn rules_for<'s>(&'s self, host: &'s str) -> impl Iterator<Item = &'a DestinationRule> + 's {
        self.destination_rules
            .iter()
            .filter(move |(h, _)| host::matches(h, host))
            .map(|(_, dr)| *dr)
    }
}

/// Collects the diagnostics of one resource.
pub(super) struct Sink<'o> {
    resource: String,
    out: &'o mut Vec<Diagnostic>,
}

impl Sink<'_> {
    pub(super) fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Error, path.into(), message.into());
    }

    pub(super) fn warning(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Warning, path.into(), message.into());
    }

    /// A field Loupe parses and validates but its data plane does not act
    /// on yet: said plainly, never silently ignored.
    pub(super) fn not_enforced(&mut self, path: impl Into<String>, what: &str) {
        self.warning(
            path,
            format!("{what}: accepted but not yet enforced by Loupe's proxies"),
        );
    }

    fn push(&mut self, severity: Severity, path: String, message: String) {
        self.out.push(Diagnostic {
            severity,
            resource: self.resource.clone(),
            path,
            message,
        });
    }

    /// An Istio duration field.
    pub(super) fn duration(&mut self, path: &str, value: Option<&String>) {
        if let Some(v) = value
            && let Err(e) = parse_duration(v)
        {
            self.error(path, format!("invalid duration: {e}"));
        }
    }

    /// A percentage (`Percent.value` and friends) must be within 0–100.
    pub(super) fn percent(&mut self, path: &str, value: Option<f64>) {
        if let Some(v) = value
            && !(0.0..=100.0).contains(&v)
        {
            self.error(
                path,
                format!("percentage {v} is outside 0–100; use a value from 0 to 100"),
            );
        }
    }

    /// A `StringMatch`: one alternative at most, and a valid RE2 regex.
    pub(super) fn string_match(&mut self, path: &str, m: &StringMatch) {
        if m.set_count() > 1 {
            self.error(
                path,
                "a StringMatch sets more than one of exact, prefix and regex; keep exactly one",
            );
        }
        if let Some(re) = &m.regex {
            self.regex(&format!("{path}.regex"), re);
        }
    }

    pub(super) fn regex(&mut self, path: &str, pattern: &str) {
        if let Err(e) = anchored(pattern, false) {
            self.error(
                path,
                format!(
                    "invalid RE2 regex {pattern:?}: {}; fix the pattern (RE2 has no \
                     lookaround or backreferences)",
                    regex_reason(&e)
                ),
            );
        }
    }
}

/// The one-line reason of a regex error (its Display draws a caret diagram).
fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .find_map(|l| l.strip_prefix("error: "))
        .unwrap_or(text.lines().last().unwrap_or(""))
        .to_string()
}
