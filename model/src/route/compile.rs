//! VirtualServices compiled into what [`super::Router`] looks up: hosts
//! resolved to FQDNs, gateway bindings resolved, matches compiled, weights
//! turned into percentages, durations into milliseconds — all once.

use std::collections::BTreeSet;

use serde_json::Value as Json;

use super::matching::CompiledMatch;
use super::{Retries, WeightedDestination};
use crate::duration::parse_millis;
use crate::host::fqdn;
use crate::networking::{Destination, GatewayRef, HttpRoute, VirtualService};
use crate::resource::{Kind, ResourceKey};

/// One VirtualService, ready to route.
#[derive(Clone, Debug)]
pub struct CompiledService {
    pub key: ResourceKey,
    /// `spec.hosts`, fully qualified and lower-case.
    pub hosts: Vec<String>,
    /// What the VirtualService is bound to (`mesh` when `gateways` is empty).
    pub gateways: Vec<GatewayRef>,
    export_to: Vec<String>,
    pub routes: Vec<CompiledRoute>,
}

/// One `HTTPRoute`, ready to use.
#[derive(Clone, Debug)]
pub struct CompiledRoute {
    /// Position in `spec.http`.
    pub index: usize,
    pub name: Option<String>,
    pub(crate) matches: Vec<CompiledMatch>,
    /// Effective weights in percent; `port` is `None` when the destination
    /// does not set one (the called port applies).
    pub destinations: Vec<WeightedDestination>,
    /// Set when several destinations all weigh zero: Istio rejects that.
    pub all_weights_zero: bool,
    pub timeout_ms: Option<u64>,
    pub retries: Option<Retries>,
    pub fault: Option<Json>,
    pub rewrite: Option<Json>,
    pub redirect: Option<Json>,
    pub direct_response: Option<Json>,
    pub mirror: Option<Json>,
    /// `delegate`: the VirtualService (namespace, name) that routes instead.
    pub delegate: Option<(String, String)>,
    /// Why this route decided, built once: `[0]` for a route without
    /// `match`, else one per match entry.
    pub(crate) explanations: Vec<String>,
    /// The route as written, for what the decision does not summarise
    /// (header operations, CORS, …).
    pub spec: HttpRoute,
}

impl CompiledService {
    pub(crate) fn compile(vs: &VirtualService, namespaces: &BTreeSet<String>) -> CompiledService {
        let ns = vs.metadata.namespace();
        let is_ns = |n: &str| namespaces.contains(n);
        let gateways = if vs.spec.gateways.is_empty() {
            vec![GatewayRef::Mesh]
        } else {
            vs.spec
                .gateways
                .iter()
                .map(|g| GatewayRef::parse(g, ns))
                .collect()
        };
        let mut service = CompiledService {
            key: ResourceKey {
                kind: Kind::VirtualService,
                namespace: ns.to_string(),
                name: vs.metadata.name.clone(),
            },
            hosts: vs.spec.hosts.iter().map(|h| fqdn(h, ns, is_ns)).collect(),
            gateways,
            export_to: vs.spec.export_to.clone(),
            routes: vs
                .spec
                .http
                .iter()
                .enumerate()
                .map(|(i, r)| CompiledRoute::compile(i, r, ns, &is_ns))
                .collect(),
        };
        let name = service.display_name();
        for route in &mut service.routes {
            route.explanations = route.explain(&name);
        }
        service
    }

    pub fn applies_to(&self, context: &GatewayRef) -> bool {
        self.gateways.contains(context)
    }

    /// `exportTo` as seen from `namespace` (the caller's, or the gateway's).
    pub fn visible_from(&self, namespace: Option<&str>) -> bool {
        let Some(namespace) = namespace else {
            return true;
        };
        self.export_to.is_empty()
            || self.export_to.iter().any(|e| match e.as_str() {
                "*" => true,
                "." => namespace == self.key.namespace,
                "~" => false,
                other => other == namespace,
            })
    }

    pub fn display_name(&self) -> String {
        format!("{}/{}", self.key.namespace, self.key.name)
    }
}

impl CompiledRoute {
    fn compile(
        index: usize,
        r: &HttpRoute,
        ns: &str,
        is_ns: &dyn Fn(&str) -> bool,
    ) -> CompiledRoute {
        let (destinations, all_weights_zero) = effective_weights(r, ns, is_ns);
        CompiledRoute {
            index,
            name: r.name.clone(),
            matches: r
                .matches
                .iter()
                .map(|m| CompiledMatch::compile(m, ns))
                .collect(),
            destinations,
            all_weights_zero,
            timeout_ms: r.timeout.as_deref().and_then(|t| parse_millis(t).ok()),
            retries: r.retries.as_ref().map(|retry| Retries {
                attempts: u32::try_from(retry.attempts).unwrap_or(0),
                per_try_timeout_ms: retry
                    .per_try_timeout
                    .as_deref()
                    .and_then(|t| parse_millis(t).ok()),
                retry_on: retry.retry_on.clone(),
            }),
            fault: r.fault.as_ref().map(to_json),
            rewrite: r.rewrite.as_ref().map(to_json),
            redirect: r.redirect.as_ref().map(to_json),
            direct_response: r.direct_response.as_ref().map(to_json),
            mirror: mirror(r, ns, is_ns),
            delegate: r.delegate.as_ref().map(|d| {
                (
                    d.namespace.clone().unwrap_or_else(|| ns.to_string()),
                    d.name.clone(),
                )
            }),
            explanations: Vec::new(),
            spec: r.clone(),
        }
    }

    /// "VirtualService ns/name: http[i] ("name") is the first route that
    /// matches; match[j] held: …", per match entry.
    fn explain(&self, service: &str) -> Vec<String> {
        let label = match &self.name {
            Some(name) => format!("http[{}] ({name:?})", self.index),
            None => format!("http[{}]", self.index),
        };
        let outcome = if self.all_weights_zero {
            "; all its destinations weigh 0, which Istio rejects, so nothing is routed"
        } else if self.redirect.is_some() {
            "; it answers with a redirect"
        } else if self.direct_response.is_some() {
            "; it answers with a direct response"
        } else {
            ""
        };
        let line = |why: String| {
            format!(
                "VirtualService {service}: {label} is the first route that matches; {why}{outcome}"
            )
        };
        if self.matches.is_empty() {
            return vec![line(
                "it has no match conditions, so it matches every request".into(),
            )];
        }
        self.matches
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let entry = match &m.name {
                    Some(n) => format!("match[{i}] ({n:?})"),
                    None => format!("match[{i}]"),
                };
                line(format!("{entry} held: {}", m.description))
            })
            .collect()
    }

    /// The precomputed explanation for the match entry that held.
    pub(crate) fn explanation(&self, match_index: Option<usize>) -> &str {
        self.explanations
            .get(match_index.unwrap_or(0))
            .map_or("", String::as_str)
    }
}

/// Istio splits by weight ÷ sum; a single destination takes everything;
/// weight-0 destinations are dropped when there are several.
fn effective_weights(
    r: &HttpRoute,
    ns: &str,
    is_ns: &dyn Fn(&str) -> bool,
) -> (Vec<WeightedDestination>, bool) {
    let dest = |d: &Destination, weight: f64| WeightedDestination {
        host: fqdn(&d.host, ns, is_ns),
        subset: d.subset.clone(),
        port: d
            .port
            .as_ref()
            .and_then(|p| p.number)
            .and_then(|n| u16::try_from(n).ok()),
        weight,
    };
    if let [only] = r.route.as_slice() {
        return (vec![dest(&only.destination, 100.0)], false);
    }
    let weight = |w: Option<i32>| f64::from(w.unwrap_or(0).max(0));
    let sum: f64 = r.route.iter().map(|d| weight(d.weight)).sum();
    if sum == 0.0 {
        return (Vec::new(), !r.route.is_empty());
    }
    let out = r
        .route
        .iter()
        .filter(|d| weight(d.weight) > 0.0)
        .map(|d| dest(&d.destination, weight(d.weight) * 100.0 / sum))
        .collect();
    (out, false)
}

/// `mirror` (or the first of `mirrors`), with its host fully qualified and
/// the mirrored percentage when it is not 100, in Istio's field names.
fn mirror(r: &HttpRoute, ns: &str, is_ns: &dyn Fn(&str) -> bool) -> Option<Json> {
    let (destination, percentage) = match (&r.mirror, r.mirrors.first()) {
        (Some(d), _) => {
            let pct = r
                .mirror_percentage
                .as_ref()
                .map(|p| p.value)
                .or(r.mirror_percent.map(f64::from));
            (d, pct)
        }
        (None, Some(m)) => (&m.destination, m.percentage.as_ref().map(|p| p.value)),
        (None, None) => return None,
    };
    let mut d = destination.clone();
    d.host = fqdn(&d.host, ns, is_ns);
    let mut json = serde_json::to_value(&d).ok()?;
    // Istio mirrors 100% when no percentage is set; say so only when it differs.
    let percentage = percentage.filter(|p| *p != 100.0);
    if let (Some(pct), Some(obj)) = (percentage, json.as_object_mut()) {
        obj.insert(
            "percentage".into(),
            serde_json::json!({ "value": compact(pct) }),
        );
    }
    Some(json)
}

fn compact(v: f64) -> Json {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        Json::from(v as i64)
    } else {
        Json::from(v)
    }
}

/// Serializing the Istio structs to JSON values cannot fail (string keys,
/// finite numbers), so a failure would only ever show as `null`.
fn to_json<T: serde::Serialize>(value: &T) -> Json {
    serde_json::to_value(value).unwrap_or(Json::Null)
}
