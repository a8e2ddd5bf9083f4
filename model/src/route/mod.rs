//! Route selection: which VirtualService applies to a request, which of its
//! http routes matches first, and the weighted destinations it sends to.
//!
//! The algorithm, as Istio's sidecar (and gateway) applies it:
//! 1. The called host is the request's `host` without its port, fully
//!    qualified in the caller's namespace (else the destination's, else
//!    `default`); the port is the host's port, else `destination.port`.
//! 2. Candidate VirtualServices bind that host: exact hosts first, then
//!    wildcard hosts from the longest suffix to `*`, each group in config
//!    order. The first one bound to the traffic's context (`mesh` for
//!    sidecars, or the `--gateway`) and exported to the caller applies.
//! 3. Its http routes are tried in order; a route matches when it has no
//!    `match` or any of its match entries holds (all conditions of an entry
//!    must hold, and match-level `gateways` override the service's).
//!    `delegate` routes continue in the delegate VirtualService.
//! 4. No VirtualService for the host: sidecars route to the host itself;
//!    a gateway has no route (Istio answers 404).
//! 5. At a gateway the configuration defines, the host must also be one of
//!    its servers' `hosts` (`ns/host` entries admit only VirtualServices of
//!    `ns`): Istio builds the gateway's virtual hosts from that
//!    intersection. A gateway the configuration does not define is not
//!    filtered (the Gateway may live in another file).
//!
//! [`Router`] is built once per configuration; [`Router::route`] only looks up.

mod compile;
pub mod matching;

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

pub use compile::{CompiledRoute, CompiledService};
use matching::RequestView;

use crate::host::{self, fqdn};
use crate::meta::DEFAULT_NAMESPACE;
use crate::networking::GatewayRef;
use crate::request::Request;
use crate::resource::{Resource, ResourceKey};

/// One destination with its effective weight in percent of the route's total.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WeightedDestination {
    /// Fully qualified: `reviews.default.svc.cluster.local`.
    pub host: String,
    pub subset: Option<String>,
    pub port: Option<u16>,
    #[serde(serialize_with = "crate::serde_util::compact_f64")]
    pub weight: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Retries {
    pub attempts: u32,
    pub per_try_timeout_ms: Option<u64>,
    pub retry_on: Option<String>,
}

/// Which VirtualService route decided (not part of the JSON contract).
#[derive(Clone, Debug, PartialEq)]
pub struct MatchedRoute {
    pub virtual_service: ResourceKey,
    /// Index in `spec.http` of the route that matched.
    pub route_index: usize,
    pub route_name: Option<String>,
    /// Index of the match entry that held; `None` for a route without `match`.
    pub match_index: Option<usize>,
    /// The delegate VirtualService whose route decided, if any.
    pub delegate: Option<ResourceKey>,
}

/// The outcome of [`Router::route`]; serializes as `loupe route --output json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteDecision {
    pub routes: Vec<WeightedDestination>,
    pub fault: Option<serde_json::Value>,
    pub timeout_ms: Option<u64>,
    pub retries: Option<Retries>,
    pub rewrite: Option<serde_json::Value>,
    pub redirect: Option<serde_json::Value>,
    pub mirror: Option<serde_json::Value>,
    /// `directResponse` of the route, when it answers by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direct_response: Option<serde_json::Value>,
    pub reason: String,
    #[serde(skip)]
    pub matched: Option<MatchedRoute>,
}

/// What [`Router::select`] found, borrowing the compiled configuration.
#[derive(Debug)]
pub enum Selection<'r> {
    /// The request carries no host.
    NoHost,
    /// No VirtualService applies: sidecars route to the host itself.
    Default,
    /// Gateway traffic for a host no VirtualService bound to the gateway has.
    NoGatewayRoute,
    /// A VirtualService applies and none of its routes matches.
    Unmatched { service: &'r CompiledService },
    /// A route matched (in `delegate`'s routes when the route delegated).
    Matched {
        service: &'r CompiledService,
        route: &'r CompiledRoute,
        match_index: Option<usize>,
        delegate: Option<&'r CompiledService>,
    },
}

/// The compiled routing table of a configuration.
#[derive(Clone, Debug, Default)]
pub struct Router {
    services: Vec<CompiledService>,
    /// FQDN host → services binding it exactly, in config order.
    exact: HashMap<String, Vec<usize>>,
    /// Wildcard hosts, most specific (longest) first, then config order.
    wildcards: Vec<(String, usize)>,
    /// (namespace, name) → service, for `delegate`.
    by_name: HashMap<(String, String), usize>,
    /// Namespaces the configuration mentions (`reviews.prod` is a service
    /// in `prod` only if `prod` is a namespace).
    namespaces: BTreeSet<String>,
    /// (namespace, name) of each Gateway → its servers' hosts.
    gateways: HashMap<(String, String), Vec<GatewayHost>>,
}

/// One `hosts` entry of a Gateway server: `[namespace/]dnsName`.
#[derive(Clone, Debug)]
struct GatewayHost {
    /// The namespace whose VirtualServices may bind it; `None` for `*`.
    namespace: Option<String>,
    /// Lower-case host pattern (`*`, `*.example.com`, `bookinfo.com`).
    pattern: String,
}

impl GatewayHost {
    fn parse(entry: &str, gateway_namespace: &str) -> GatewayHost {
        let (namespace, pattern) = host::split_gateway_host(entry, gateway_namespace);
        GatewayHost { namespace, pattern }
    }

    fn admits(&self, vs_namespace: &str, host: &str) -> bool {
        self.namespace.as_deref().is_none_or(|n| n == vs_namespace)
            && host::matches(&self.pattern, host)
    }
}

impl Router {
    /// Compiles every VirtualService (regexes, host tables) once.
    pub fn new(resources: &[Resource]) -> Router {
        let mut namespaces: BTreeSet<String> = resources
            .iter()
            .map(|r| r.meta().namespace().to_string())
            .collect();
        namespaces.insert(DEFAULT_NAMESPACE.to_string());
        // A later definition of the same VirtualService replaces the earlier
        // one, as `kubectl apply` of the files in order would.
        let mut last: HashMap<ResourceKey, usize> = HashMap::new();
        for (i, r) in resources.iter().enumerate() {
            if let Resource::VirtualService(_) = r {
                last.insert(r.key(), i);
            }
        }
        let services: Vec<CompiledService> = resources
            .iter()
            .enumerate()
            .filter_map(|(i, r)| match r {
                Resource::VirtualService(vs) if last.get(&r.key()) == Some(&i) => {
                    Some(CompiledService::compile(vs, &namespaces))
                }
                _ => None,
            })
            .collect();
        let mut router = Router {
            namespaces,
            ..Router::default()
        };
        for r in resources {
            if let Resource::Gateway(gw) = r {
                let ns = gw.metadata.namespace();
                let hosts = gw
                    .spec
                    .servers
                    .iter()
                    .flat_map(|s| &s.hosts)
                    .map(|h| GatewayHost::parse(h, ns));
                router
                    .gateways
                    .entry((ns.to_string(), gw.metadata.name.clone()))
                    .or_default()
                    .extend(hosts);
            }
        }
        for (i, s) in services.iter().enumerate() {
            router
                .by_name
                .entry((s.key.namespace.clone(), s.key.name.clone()))
                .or_insert(i);
            for h in &s.hosts {
                if h.starts_with('*') {
                    router.wildcards.push((h.clone(), i));
                } else {
                    let list = router.exact.entry(h.clone()).or_default();
                    if !list.contains(&i) {
                        list.push(i);
                    }
                }
            }
        }
        // Stable: equal lengths keep config order.
        router
            .wildcards
            .sort_by_key(|(h, _)| std::cmp::Reverse(h.len()));
        router.services = services;
        router
    }

    /// The compiled VirtualServices, in config order.
    pub fn services(&self) -> &[CompiledService] {
        &self.services
    }

    /// The called host as an FQDN, and the port used for matching.
    pub fn called(&self, request: &Request) -> Option<(String, Option<u16>)> {
        let authority = request.request.host.as_deref()?.trim();
        if authority.is_empty() {
            return None;
        }
        let (name, port) = host::split_port(authority);
        let namespace = matching::source_namespace(request)
            .or(request.destination.namespace.as_deref())
            .unwrap_or(DEFAULT_NAMESPACE);
        let known = |n: &str| {
            self.namespaces.contains(n)
                || request.source.namespace.as_deref() == Some(n)
                || request.destination.namespace.as_deref() == Some(n)
        };
        Some((
            fqdn(name, namespace, known),
            port.or(request.destination.port),
        ))
    }

    /// Looks the request up without building the owned decision: what the
    /// proxy calls per request.
    pub fn select<'r>(&'r self, request: &Request, gateway: Option<&str>) -> Selection<'r> {
        let Some((host, port)) = self.called(request) else {
            return Selection::NoHost;
        };
        let context = context(gateway);
        self.select_for(request, &host, port, &context)
    }

    fn select_for<'r>(
        &'r self,
        request: &Request,
        host: &str,
        port: Option<u16>,
        context: &GatewayRef,
    ) -> Selection<'r> {
        let viewer = match context {
            GatewayRef::Mesh => matching::source_namespace(request),
            GatewayRef::Gateway { namespace, .. } => Some(namespace.as_str()),
        };
        let exact = self.exact.get(host).into_iter().flatten().copied();
        let wild = self
            .wildcards
            .iter()
            .filter(|(pattern, _)| host::matches(pattern, host))
            .map(|(_, i)| *i);
        let service = exact.chain(wild).map(|i| &self.services[i]).find(|s| {
            s.applies_to(context)
                && s.visible_from(viewer)
                && self.gateway_admits(context, &s.key.namespace, host)
        });
        let Some(service) = service else {
            return match context {
                GatewayRef::Mesh => Selection::Default,
                GatewayRef::Gateway { .. } => Selection::NoGatewayRoute,
            };
        };
        let view = RequestView::new(request, port);
        let Some((route, match_index)) = first_match(service, &view, context) else {
            return Selection::Unmatched { service };
        };
        let Some(target) = &route.delegate else {
            return Selection::Matched {
                service,
                route,
                match_index,
                delegate: None,
            };
        };
        // Istio allows one level of delegation; the delegate's own routes decide.
        let delegate = self.by_name.get(target).map(|i| &self.services[*i]);
        match delegate.and_then(|d| first_match(d, &view, context).map(|m| (d, m))) {
            Some((d, (route, match_index))) => Selection::Matched {
                service,
                route,
                match_index,
                delegate: Some(d),
            },
            None => Selection::Unmatched { service },
        }
    }

    /// Whether the gateway of `context` serves `host` for VirtualServices of
    /// `vs_namespace`. Sidecars and gateways missing from the config admit all.
    fn gateway_admits(&self, context: &GatewayRef, vs_namespace: &str, host: &str) -> bool {
        let GatewayRef::Gateway { namespace, name } = context else {
            return true;
        };
        self.gateways
            .get(&(namespace.clone(), name.clone()))
            .is_none_or(|hosts| hosts.iter().any(|h| h.admits(vs_namespace, host)))
    }

    /// Routes `request` as sidecar traffic, or as traffic through the gateway
    /// `namespace/name` when `gateway` is given.
    pub fn route(&self, request: &Request, gateway: Option<&str>) -> RouteDecision {
        let Some((host, port)) = self.called(request) else {
            return RouteDecision {
                reason: "the request has no host (`request.host`), so there is nothing to route"
                    .into(),
                ..RouteDecision::default()
            };
        };
        let context = context(gateway);
        let traffic = || match &context {
            GatewayRef::Mesh => "sidecar (mesh) traffic".to_string(),
            g => format!("traffic through gateway {g}"),
        };
        match self.select_for(request, &host, port, &context) {
            Selection::NoHost => RouteDecision::default(),
            Selection::Default => RouteDecision {
                routes: vec![WeightedDestination {
                    host: host.clone(),
                    subset: None,
                    port,
                    weight: 100.0,
                }],
                reason: format!(
                    "no VirtualService for host {host} applies to {}; \
                     default route to {host} itself",
                    traffic()
                ),
                ..RouteDecision::default()
            },
            Selection::NoGatewayRoute => RouteDecision {
                reason: format!(
                    "no VirtualService bound to {} has host {host}; the gateway has no \
                     route for it (Istio answers 404)",
                    context
                ),
                ..RouteDecision::default()
            },
            Selection::Unmatched { service } => RouteDecision {
                reason: format!(
                    "VirtualService {} applies to host {host} for {}, but none of its \
                     {} http route(s) matches the request (Istio answers 404)",
                    service.display_name(),
                    traffic(),
                    service.routes.len()
                ),
                ..RouteDecision::default()
            },
            Selection::Matched {
                service,
                route,
                match_index,
                delegate,
            } => decision(service, route, match_index, delegate, &context, port),
        }
    }
}

fn context(gateway: Option<&str>) -> GatewayRef {
    match gateway {
        None | Some("mesh") | Some("") => GatewayRef::Mesh,
        // A bare name means a Gateway in `default`.
        Some(g) => GatewayRef::parse(g, DEFAULT_NAMESPACE),
    }
}

fn first_match<'r>(
    service: &'r CompiledService,
    view: &RequestView<'_>,
    context: &GatewayRef,
) -> Option<(&'r CompiledRoute, Option<usize>)> {
    service.routes.iter().find_map(|route| {
        if route.matches.is_empty() {
            return Some((route, None));
        }
        route
            .matches
            .iter()
            .position(|m| m.matches(view, context))
            .map(|i| (route, Some(i)))
    })
}

fn decision(
    service: &CompiledService,
    route: &CompiledRoute,
    match_index: Option<usize>,
    delegate: Option<&CompiledService>,
    context: &GatewayRef,
    port: Option<u16>,
) -> RouteDecision {
    // The common case (a sidecar, no delegation) only copies the explanation
    // built at compile time.
    let explanation = route.explanation(match_index);
    let reason = match (delegate, context) {
        (None, GatewayRef::Mesh) => explanation.to_string(),
        (None, gateway) => format!("{explanation} (traffic through gateway {gateway})"),
        (Some(_), _) => format!(
            "VirtualService {} delegates to {explanation}",
            service.display_name()
        ),
    };
    RouteDecision {
        routes: route
            .destinations
            .iter()
            .map(|d| WeightedDestination {
                port: d.port.or(port),
                ..d.clone()
            })
            .collect(),
        fault: route.fault.clone(),
        timeout_ms: route.timeout_ms,
        retries: route.retries.clone(),
        rewrite: route.rewrite.clone(),
        redirect: route.redirect.clone(),
        mirror: route.mirror.clone(),
        direct_response: route.direct_response.clone(),
        reason,
        matched: Some(MatchedRoute {
            virtual_service: service.key.clone(),
            route_index: route.index,
            route_name: route.name.clone(),
            match_index,
            delegate: delegate.map(|d| d.key.clone()),
        }),
    }
}
