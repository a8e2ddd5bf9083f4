//! Route selection for one request: `loupe-model`'s router selects the
//! VirtualService route (borrowing the compiled table, no allocation for
//! the decision), then a weighted destination, then the service and the
//! DestinationRule subset it names. Istio's answers where nothing routes:
//! no VirtualService for a sidecar's host → the host itself; a VirtualService
//! with no matching route, or a gateway without a route → 404 (NR).

use std::borrow::Cow;
use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{Response, StatusCode, Uri};
use loupe_model::request::{Destination, HttpAttributes};
use loupe_model::route::{Selection, WeightedDestination};
use rand::Rng;

use super::policy::RoutePolicy;
use crate::capture::OriginalDst;
use crate::config::{Backend, MeshConfig, ServiceEntry};
use crate::context::ProxyContext;
use crate::http::{Body, full, text};
use crate::identity::{service_fqdn, split_authority};
use crate::telemetry::metrics::{Edge, ResponseFlags};

/// Where a request goes, with the policies of the route that sent it.
pub struct Target {
    pub service: Arc<ServiceEntry>,
    pub backend: Arc<Backend>,
    /// The service port (from the route, else the request).
    pub port: u16,
    pub policy: Arc<RoutePolicy>,
    /// Which match entry of the route held (for prefix rewrites).
    pub match_index: Option<usize>,
    /// Where the route mirrors requests to, resolved with this config.
    pub mirror: Option<MirrorTarget>,
}

/// A mirror destination with endpoints.
pub struct MirrorTarget {
    pub service: Arc<ServiceEntry>,
    pub backend: Arc<Backend>,
    pub percent: f64,
}

impl Target {
    /// The path and query sent upstream (rewritten when the route says so).
    pub fn path_and_query<'a>(&self, uri: &'a Uri) -> Cow<'a, str> {
        let original = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        match self
            .policy
            .rewrite
            .as_ref()
            .and_then(|r| r.apply(original, self.match_index))
        {
            Some(rewritten) => Cow::Owned(rewritten),
            None => Cow::Borrowed(original),
        }
    }

    pub fn authority_rewrite(&self) -> Option<&str> {
        self.policy.rewrite.as_ref()?.authority.as_deref()
    }

    pub fn no_endpoint_message(&self) -> String {
        no_healthy_upstream(&self.service.host, self.backend.subset.as_deref())
    }
}

fn no_healthy_upstream(host: &str, subset: Option<&str>) -> String {
    match subset {
        Some(s) => format!("no healthy upstream for {host} subset {s}"),
        None => format!("no healthy upstream for {host}"),
    }
}

/// Which listener the request came in on: it decides the routing context
/// (`mesh`, or the Gateways selecting this proxy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Traffic {
    /// From the local app, to the mesh (`--outbound`).
    Sidecar,
    /// From outside, through an ingress gateway (`--listen`).
    Gateway,
}

pub enum Routed {
    /// The proxy answers itself (no route, no endpoint, redirect, …).
    Respond {
        response: Response<Body>,
        flags: ResponseFlags,
        edge: Arc<Edge>,
        /// The span name.
        name: String,
    },
    Forward(Target),
}

/// What the router chose, detached from the borrowed selection.
struct Chosen<'r> {
    destinations: Cow<'r, [WeightedDestination]>,
    policy: Arc<RoutePolicy>,
    match_index: Option<usize>,
}

pub fn route(ctx: &ProxyContext, traffic: Traffic, parts: &http::request::Parts) -> Routed {
    let authority = parts
        .uri
        .authority()
        .map(|a| a.as_str())
        .or_else(|| {
            parts
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
        })
        .unwrap_or("");
    let (host, port) = split_authority(authority);
    let port = port.unwrap_or(80);
    let Some(config) = ctx.store.load() else {
        return respond(
            ctx,
            None,
            host,
            port,
            StatusCode::SERVICE_UNAVAILABLE,
            ResponseFlags::NoRoute,
            "no configuration received from the control plane yet".to_string(),
        );
    };
    if host.is_empty() {
        return respond(
            ctx,
            None,
            "unknown",
            port,
            StatusCode::BAD_REQUEST,
            ResponseFlags::NoRoute,
            "the request names no service: send Host: SERVICE:PORT".to_string(),
        );
    }
    // A captured connection to a service's virtual IP whose Host names no
    // service (`curl http://10.96.0.5:9080/`) is that service's, as Istio
    // lists a service's VIP among its route's domains.
    let captured_authority;
    let (host, port, authority) = match parts.extensions.get::<OriginalDst>() {
        Some(dst) if config.service(host).is_none() => match config.captured(dst.addr) {
            Some(c) => {
                captured_authority = format!("{}:{}", c.service.host, c.port);
                (&*c.service.host, c.port, captured_authority.as_str())
            }
            None => (host, port, authority),
        },
        _ => (host, port, authority),
    };
    let service = config.service(host).cloned();
    let request = model_request(ctx, &config, parts, authority, port);
    let fqdn = fqdn_of(service.as_ref(), host, &ctx.this.namespace);

    let chosen = match select(traffic, &config, &request) {
        Ok(chosen) => chosen,
        Err(why) => {
            return respond(
                ctx,
                service.as_ref(),
                host,
                port,
                StatusCode::NOT_FOUND,
                ResponseFlags::NoRoute,
                why.message(&fqdn, &request),
            );
        }
    };
    if let Some(redirect) = chosen.policy.redirect.as_ref() {
        return redirect_response(ctx, service.as_ref(), host, port, parts, redirect);
    }
    if let Some((status, body)) = chosen.policy.direct_response.as_ref() {
        let mut response = Response::new(full(body.clone()));
        *response.status_mut() = *status;
        return Routed::Respond {
            response,
            flags: ResponseFlags::None,
            edge: edge_of(ctx, service.as_ref()),
            name: format!("{fqdn}:{port}/*"),
        };
    }
    let Some(destination) = pick_weighted(&chosen.destinations) else {
        return respond(
            ctx,
            service.as_ref(),
            host,
            port,
            StatusCode::SERVICE_UNAVAILABLE,
            ResponseFlags::NoRoute,
            format!("the route for {fqdn} has no destination with a weight above 0"),
        );
    };

    let dest_service = config.service(&destination.host).cloned().or_else(|| {
        config
            .service(&service_fqdn(&destination.host, &ctx.this.namespace))
            .cloned()
    });
    let dest_port = destination.port.unwrap_or(port);
    let subset = destination.subset.as_deref();
    let Some(dest_service) = dest_service else {
        let fqdn = service_fqdn(&destination.host, &ctx.this.namespace);
        return respond(
            ctx,
            None,
            &fqdn,
            dest_port,
            StatusCode::SERVICE_UNAVAILABLE,
            ResponseFlags::NoHealthyUpstream,
            no_healthy_upstream(&fqdn, subset),
        );
    };
    let Some(backend) = dest_service.backend(subset).cloned() else {
        let msg = format!(
            "{} (no DestinationRule defines subset {})",
            no_healthy_upstream(&dest_service.host, subset),
            subset.unwrap_or_default()
        );
        return respond(
            ctx,
            Some(&dest_service),
            &dest_service.host,
            dest_port,
            StatusCode::SERVICE_UNAVAILABLE,
            ResponseFlags::NoCluster,
            msg,
        );
    };
    if backend.endpoints.is_empty() {
        let msg = no_healthy_upstream(&dest_service.host, subset);
        return respond(
            ctx,
            Some(&dest_service),
            &dest_service.host,
            dest_port,
            StatusCode::SERVICE_UNAVAILABLE,
            ResponseFlags::NoHealthyUpstream,
            msg,
        );
    }
    let mirror = chosen.policy.mirror.as_ref().and_then(|m| {
        let service = config.service(&m.host)?.clone();
        let backend = service.backend(m.subset.as_deref())?.clone();
        (!backend.endpoints.is_empty()).then_some(MirrorTarget {
            service,
            backend,
            percent: m.percent,
        })
    });
    Routed::Forward(Target {
        service: dest_service,
        backend,
        port: dest_port,
        policy: chosen.policy,
        match_index: chosen.match_index,
        mirror,
    })
}

/// Why nothing routes a request; the message is built only when needed.
enum NoRoute<'r> {
    /// Gateway traffic that no VirtualService bound to its Gateways routes.
    Gateway(&'r [String]),
    /// A VirtualService owns the host but none of its routes matches.
    Unmatched(String),
}

impl NoRoute<'_> {
    fn message(&self, host: &str, request: &loupe_model::Request) -> String {
        match self {
            NoRoute::Gateway([]) => {
                format!("no Gateway selects this gateway's labels, so nothing routes {host}")
            }
            NoRoute::Gateway(gateways) => format!(
                "no VirtualService bound to gateway(s) {} routes {host}",
                gateways.join(", ")
            ),
            NoRoute::Unmatched(vs) => format!(
                "VirtualService {vs} routes {host} but none of its routes matches {} {}",
                request.request.method.as_deref().unwrap_or_default(),
                request.request.path.as_deref().unwrap_or_default(),
            ),
        }
    }
}

/// The sidecar asks the router once (`mesh`); the gateway asks per Gateway
/// selecting this proxy, in order, and the first that has a route wins.
fn select<'r>(
    traffic: Traffic,
    config: &'r MeshConfig,
    request: &loupe_model::Request,
) -> Result<Chosen<'r>, NoRoute<'r>> {
    let contexts = match traffic {
        Traffic::Sidecar => 1,
        Traffic::Gateway => config.gateways.len(),
    };
    let mut no_route = NoRoute::Gateway(&config.gateways);
    for i in 0..contexts {
        let gateway = match traffic {
            Traffic::Sidecar => None,
            Traffic::Gateway => Some(config.gateways[i].as_str()),
        };
        match config.router.select(request, gateway) {
            Selection::Matched {
                route, match_index, ..
            } => {
                return Ok(Chosen {
                    destinations: Cow::Borrowed(&route.destinations),
                    policy: config.policy(route),
                    match_index,
                });
            }
            Selection::Default => {
                let Some((host, port)) = config.router.called(request) else {
                    break;
                };
                return Ok(Chosen {
                    destinations: Cow::Owned(vec![WeightedDestination {
                        host,
                        subset: None,
                        port,
                        weight: 100.0,
                    }]),
                    policy: config.default_policy.clone(),
                    match_index: None,
                });
            }
            Selection::Unmatched { service } => {
                no_route = NoRoute::Unmatched(service.display_name());
            }
            Selection::NoHost | Selection::NoGatewayRoute => {}
        }
    }
    Err(no_route)
}

/// A weighted random choice; weights need not add up to 100.
fn pick_weighted(routes: &[WeightedDestination]) -> Option<&WeightedDestination> {
    match routes {
        [] => None,
        [only] => Some(only),
        _ => {
            let total: f64 = routes.iter().map(|r| r.weight.max(0.0)).sum();
            if total <= 0.0 {
                return routes.first();
            }
            let mut x = rand::rng().random_range(0.0..total);
            for r in routes {
                let w = r.weight.max(0.0);
                if x < w {
                    return Some(r);
                }
                x -= w;
            }
            routes.iter().rev().find(|r| r.weight > 0.0)
        }
    }
}

fn model_request(
    ctx: &ProxyContext,
    config: &MeshConfig,
    parts: &http::request::Parts,
    authority: &str,
    port: u16,
) -> loupe_model::Request {
    let mut headers = std::collections::BTreeMap::new();
    for name in &config.matched_headers {
        let mut values = parts
            .headers
            .get_all(name.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok());
        if let Some(first) = values.next() {
            let mut joined = first.to_string();
            for v in values {
                joined.push(',');
                joined.push_str(v);
            }
            headers.insert(name.clone(), joined);
        }
    }
    loupe_model::Request {
        source: ctx.source.clone(),
        destination: Destination {
            port: Some(port),
            ..Default::default()
        },
        request: HttpAttributes {
            method: Some(parts.method.as_str().to_string()),
            path: Some(
                parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/")
                    .to_string(),
            ),
            host: Some(authority.to_string()),
            scheme: Some("http".to_string()),
            headers,
            auth: None,
        },
    }
}

fn fqdn_of<'a>(
    service: Option<&'a Arc<ServiceEntry>>,
    host: &str,
    namespace: &str,
) -> Cow<'a, str> {
    match service {
        Some(s) => Cow::Borrowed(&s.host),
        None => Cow::Owned(service_fqdn(host, namespace)),
    }
}

fn respond(
    ctx: &ProxyContext,
    service: Option<&Arc<ServiceEntry>>,
    host: &str,
    port: u16,
    status: StatusCode,
    flags: ResponseFlags,
    message: String,
) -> Routed {
    tracing::debug!(%host, %status, flags = flags.as_str(), %message, "request not forwarded");
    let fqdn = fqdn_of(service, host, &ctx.this.namespace);
    let edge = if host == "unknown" {
        ctx.unknown_service_edge()
    } else {
        edge_of(ctx, service)
    };
    Routed::Respond {
        response: text(status, message),
        flags,
        edge,
        name: format!("{fqdn}:{port}/*"),
    }
}

/// Istio's `HTTPRedirect`: replaces the path (`uri`), host (`authority`),
/// scheme and port; 301 unless `redirectCode` says otherwise.
fn redirect_response(
    ctx: &ProxyContext,
    service: Option<&Arc<ServiceEntry>>,
    host: &str,
    port: u16,
    parts: &http::request::Parts,
    redirect: &serde_json::Value,
) -> Routed {
    let field = |k: &str| redirect.get(k).and_then(|v| v.as_str());
    let scheme = field("scheme").unwrap_or("http");
    let authority = field("authority").unwrap_or(host);
    let authority = match redirect.get("port").and_then(|p| p.as_u64()) {
        Some(p) => format!("{}:{p}", split_authority(authority).0),
        None => authority.to_string(),
    };
    let path = field("uri").unwrap_or_else(|| parts.uri.path());
    let location = format!("{scheme}://{authority}{path}");
    let code = redirect
        .get("redirectCode")
        .and_then(|c| c.as_u64())
        .and_then(|c| u16::try_from(c).ok())
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::MOVED_PERMANENTLY);
    let mut response = text(code, format!("redirecting to {location}"));
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    let fqdn = fqdn_of(service, host, &ctx.this.namespace);
    Routed::Respond {
        edge: edge_of(ctx, service),
        response,
        flags: ResponseFlags::None,
        name: format!("{fqdn}:{port}/*"),
    }
}

/// The edge for a request that reached no endpoint of the service.
fn edge_of(ctx: &ProxyContext, service: Option<&Arc<ServiceEntry>>) -> Arc<Edge> {
    match service {
        Some(s) => s.unreached.clone(),
        None => ctx.unknown_service_edge(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(subset: &str, weight: f64) -> WeightedDestination {
        WeightedDestination {
            host: "reviews.default.svc.cluster.local".into(),
            subset: Some(subset.into()),
            port: None,
            weight,
        }
    }

    #[test]
    fn weighted_choice_follows_the_weights() {
        let routes = vec![dest("v1", 80.0), dest("v2", 20.0), dest("v3", 0.0)];
        let mut v1 = 0;
        for _ in 0..10_000 {
            match pick_weighted(&routes).and_then(|d| d.subset.as_deref()) {
                Some("v1") => v1 += 1,
                Some("v2") => {}
                other => panic!("picked {other:?}"),
            }
        }
        assert!(
            (7_500..8_500).contains(&v1),
            "v1 picked {v1} times of 10000"
        );
        assert!(pick_weighted(&[]).is_none());
    }
}
