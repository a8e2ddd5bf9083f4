//! Route selection for one request: the VirtualService decision from
//! `loupe-model`, then a weighted destination, then the service and
//! DestinationRule subset it names. Istio's rules where no VirtualService
//! routes a host: a known service gets all its endpoints; a host a
//! VirtualService owns but no route matches is a 404 (NR).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderValue};
use http::{Response, StatusCode, Uri};
use loupe_model::request::{Destination, HttpAttributes};
use loupe_model::route::{Retries, RouteDecision, WeightedDestination};
use rand::Rng;

use super::policy::Fault;
use super::{fault_of, route_timeout};
use crate::config::{Backend, MeshConfig, ServiceEntry};
use crate::context::ProxyContext;
use crate::http::{Body, text};
use crate::identity::{service_fqdn, split_authority};
use crate::telemetry::metrics::{Edge, ResponseFlags};

/// Where a request goes, with the policies of the route that sent it.
pub struct Target {
    pub service: Arc<ServiceEntry>,
    pub backend: Arc<Backend>,
    /// The service port (from the route, else the request).
    pub port: u16,
    pub fault: Option<Fault>,
    pub timeout: Option<Duration>,
    pub retries: Option<Retries>,
    pub authority_rewrite: Option<String>,
}

impl Target {
    /// The path and query sent upstream.
    pub fn path_and_query<'a>(&self, uri: &'a Uri) -> Cow<'a, str> {
        Cow::Borrowed(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
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

pub fn route(ctx: &ProxyContext, parts: &http::request::Parts) -> Routed {
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
    let service = config.service(host).cloned();
    let request = model_request(ctx, parts, authority, port);
    let decision = decide(ctx, &config, &request);

    if let Some(redirect) = decision.redirect.as_ref() {
        return redirect_response(ctx, service.as_ref(), host, port, parts, redirect);
    }
    let destination = match pick_weighted(&decision.routes) {
        Some(d) => Cow::Borrowed(d),
        None => {
            let fqdn = fqdn_of(service.as_ref(), host, &ctx.this.namespace);
            let owned_by_vs = config.virtual_hosts.contains(fqdn.as_ref());
            match (&service, ctx.gateway || owned_by_vs) {
                (Some(svc), false) => Cow::Owned(WeightedDestination {
                    host: svc.host.to_string(),
                    subset: None,
                    port: Some(port),
                    weight: 100.0,
                }),
                (_, true) => {
                    let why = if ctx.gateway {
                        format!(
                            "no route for {authority}{} through gateway(s) {:?}",
                            parts.uri.path(),
                            config.gateways
                        )
                    } else {
                        format!(
                            "no VirtualService route of {fqdn} matches {} {}",
                            parts.method,
                            parts.uri.path()
                        )
                    };
                    return respond(
                        ctx,
                        service.as_ref(),
                        host,
                        port,
                        StatusCode::NOT_FOUND,
                        ResponseFlags::NoRoute,
                        why,
                    );
                }
                (None, false) => {
                    return respond(
                        ctx,
                        None,
                        host,
                        port,
                        StatusCode::SERVICE_UNAVAILABLE,
                        ResponseFlags::NoRoute,
                        format!("no healthy upstream for {fqdn}: the mesh has no such service"),
                    );
                }
            }
        }
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
    Routed::Forward(Target {
        service: dest_service,
        backend,
        port: dest_port,
        fault: fault_of(&decision),
        timeout: route_timeout(decision.timeout_ms),
        retries: decision.retries.clone(),
        authority_rewrite: decision
            .rewrite
            .as_ref()
            .and_then(|r| r.get("authority"))
            .and_then(|a| a.as_str())
            .map(str::to_string),
    })
}

/// The sidecar asks the router once; the gateway asks it per Gateway bound
/// to this proxy, in order, and the first that routes wins.
fn decide(
    ctx: &ProxyContext,
    config: &MeshConfig,
    request: &loupe_model::Request,
) -> RouteDecision {
    if !ctx.gateway {
        return config.router.route(request, None);
    }
    let mut last = RouteDecision::default();
    for gw in &config.gateways {
        let d = config.router.route(request, Some(gw));
        if !d.routes.is_empty() || d.redirect.is_some() {
            return d;
        }
        last = d;
    }
    last
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
    parts: &http::request::Parts,
    authority: &str,
    port: u16,
) -> loupe_model::Request {
    let mut headers = std::collections::BTreeMap::new();
    for (name, value) in &parts.headers {
        if let Ok(v) = value.to_str() {
            headers
                .entry(name.as_str().to_string())
                .and_modify(|have: &mut String| {
                    have.push(',');
                    have.push_str(v);
                })
                .or_insert_with(|| v.to_string());
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
    let edge = match service {
        Some(s) => s.unreached.clone(),
        None => ctx.unknown_service_edge(if host == "unknown" { "unknown" } else { &fqdn }),
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
    let edge = match service {
        Some(s) => s.unreached.clone(),
        None => ctx.unknown_service_edge(&fqdn),
    };
    Routed::Respond {
        response,
        flags: ResponseFlags::None,
        edge,
        name: format!("{fqdn}:{port}/*"),
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
