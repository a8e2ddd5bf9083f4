//! VirtualService checks: matches, destinations and weights, durations,
//! route actions, Gateway references, and hosts two VirtualServices claim.

use std::collections::BTreeMap;

use super::{Context, Sink, route_destination};
use crate::analyze::{Diagnostic, Severity};
use crate::networking::http_route::HttpFaultInjection;
use crate::networking::{GatewayRef, HttpMatchRequest, HttpRoute, VirtualService};
use crate::resource::Resource;

pub(super) fn check(vs: &VirtualService, ctx: &Context<'_>, sink: &mut Sink<'_>) {
    let ns = vs.metadata.namespace();
    let spec = &vs.spec;
    let is_delegate = ctx
        .delegates
        .contains(&(ns.to_string(), vs.metadata.name.clone()));
    if spec.hosts.is_empty() && !is_delegate {
        sink.warning(
            "spec.hosts",
            "the VirtualService has no hosts and no route delegates to it, so it routes \
             nothing; add the hosts it routes",
        );
    }
    if is_delegate && !spec.hosts.is_empty() {
        sink.error(
            "spec.hosts",
            "this VirtualService is a delegate (another route delegates to it), and a delegate \
             must not set hosts; remove `hosts`",
        );
    }
    // As Istio's validation: no gateways means the mesh only.
    let applies_to_mesh = spec.gateways.is_empty() || spec.gateways.iter().any(|g| g == "mesh");
    for (i, h) in spec.hosts.iter().enumerate() {
        if h.trim().is_empty() {
            sink.error(
                format!("spec.hosts[{i}]"),
                "empty host; name a service or domain",
            );
        } else if applies_to_mesh && h == "*" {
            sink.error(
                format!("spec.hosts[{i}]"),
                "wildcard host `*` is not allowed for a VirtualService bound to the mesh \
                 (it has no `gateways`, or lists `mesh`); name the hosts, or bind it to \
                 Gateways only",
            );
        }
    }
    duplicate_hosts(sink, &spec.hosts);
    for (i, g) in spec.gateways.iter().enumerate() {
        gateway_exists(ctx, sink, &format!("spec.gateways[{i}]"), g, ns);
        hosts_in_gateway(ctx, sink, &spec.hosts, g, ns);
    }
    for (i, route) in spec.http.iter().enumerate() {
        http_route(ctx, sink, &format!("spec.http[{i}]"), route, ns);
    }
    if !spec.tcp.is_empty() {
        sink.not_enforced(
            "spec.tcp",
            "`tcp` routes (the proxies route HTTP and gRPC only; TCP is not proxied)",
        );
    }
    if !spec.tls.is_empty() {
        sink.not_enforced(
            "spec.tls",
            "`tls` routes (SNI routing of TLS passthrough is not proxied)",
        );
    }
    for (i, tls) in spec.tls.iter().enumerate() {
        let path = format!("spec.tls[{i}]");
        for (j, m) in tls.matches.iter().enumerate() {
            for (k, g) in m.gateways.iter().enumerate() {
                gateway_exists(
                    ctx,
                    sink,
                    &format!("{path}.match[{j}].gateways[{k}]"),
                    g,
                    ns,
                );
            }
        }
        route_destination::check_all(
            ctx,
            sink,
            &path,
            tls.route.iter().map(|d| (&d.destination, d.weight)),
            ns,
        );
    }
    for (i, tcp) in spec.tcp.iter().enumerate() {
        let path = format!("spec.tcp[{i}]");
        for (j, m) in tcp.matches.iter().enumerate() {
            for (k, g) in m.gateways.iter().enumerate() {
                gateway_exists(
                    ctx,
                    sink,
                    &format!("{path}.match[{j}].gateways[{k}]"),
                    g,
                    ns,
                );
            }
        }
        route_destination::check_all(
            ctx,
            sink,
            &path,
            tcp.route.iter().map(|d| (&d.destination, d.weight)),
            ns,
        );
    }
}

/// Istio rejects a VirtualService whose hosts overlap each other, literally
/// (`a`, `a`) or by wildcard (`*.foo.com` and `*.com`): one host, one set of
/// routes.
fn duplicate_hosts(sink: &mut Sink<'_>, hosts: &[String]) {
    let lower: Vec<String> = hosts.iter().map(|h| h.to_ascii_lowercase()).collect();
    for (j, b) in lower.iter().enumerate() {
        if let Some(i) = lower[..j]
            .iter()
            .position(|a| !a.is_empty() && !b.is_empty() && crate::host::overlaps(a, b))
        {
            sink.error(
                format!("spec.hosts[{j}]"),
                format!(
                    "host {:?} duplicates host {:?} (spec.hosts[{i}]) of the same \
                     VirtualService; remove one of them",
                    hosts[j], hosts[i]
                ),
            );
        }
    }
}

/// istioctl's IST0132 (VirtualServiceHostNotFoundInGateway, a warning): a
/// host of a VirtualService bound to a Gateway that none of the Gateway's
/// servers lists is never served there.
fn hosts_in_gateway(ctx: &Context<'_>, sink: &mut Sink<'_>, hosts: &[String], g: &str, ns: &str) {
    let GatewayRef::Gateway { namespace, name } = GatewayRef::parse(g, ns) else {
        return;
    };
    let Some(servers) = ctx.gateways.get(&(namespace.clone(), name.clone())) else {
        return;
    };
    for (i, h) in hosts.iter().enumerate() {
        let vs_host = ctx.fqdn(h, ns);
        let served = servers.iter().any(|(allowed, pattern)| {
            allowed.as_deref().is_none_or(|a| a == ns) && crate::host::overlaps(pattern, &vs_host)
        });
        if !served && !h.trim().is_empty() {
            sink.warning(
                format!("spec.hosts[{i}]"),
                format!(
                    "host {h:?} is not among the hosts of Gateway {namespace}/{name} (for \
                     VirtualServices in {ns}), so the gateway never serves it; add it to the \
                     Gateway's server hosts or fix the host"
                ),
            );
        }
    }
}

fn gateway_exists(ctx: &Context<'_>, sink: &mut Sink<'_>, path: &str, reference: &str, ns: &str) {
    if let GatewayRef::Gateway { namespace, name } = GatewayRef::parse(reference, ns)
        && !ctx
            .gateways
            .contains_key(&(namespace.clone(), name.clone()))
    {
        sink.error(
            path,
            format!(
                "the VirtualService is bound to Gateway {namespace}/{name}, which does not \
                     exist; create that Gateway or fix the reference (`name` means a Gateway \
                     in the VirtualService's namespace, `namespace/name` any other)"
            ),
        );
    }
}

fn http_route(ctx: &Context<'_>, sink: &mut Sink<'_>, path: &str, r: &HttpRoute, ns: &str) {
    if r.headers.is_some() {
        sink.not_enforced(
            format!("{path}.headers"),
            "`headers` (request and response header set/add/remove)",
        );
    }
    for (j, d) in r.route.iter().enumerate() {
        if d.headers.is_some() {
            sink.not_enforced(
                format!("{path}.route[{j}].headers"),
                "`headers` (request and response header set/add/remove)",
            );
        }
    }
    if r.cors_policy.is_some() {
        sink.not_enforced(
            format!("{path}.corsPolicy"),
            "`corsPolicy` (no CORS preflight answers or headers)",
        );
    }
    if !r.mirrors.is_empty() {
        sink.not_enforced(
            format!("{path}.mirrors"),
            "`mirrors` (the list form; the single `mirror` with `mirrorPercentage` is enforced)",
        );
    }
    for (j, m) in r.matches.iter().enumerate() {
        http_match(ctx, sink, &format!("{path}.match[{j}]"), m, ns);
    }
    let has_route = !r.route.is_empty();
    if has_route && r.redirect.is_some() {
        sink.error(
            format!("{path}.redirect"),
            "an http route cannot both redirect and route; remove `redirect` or `route`",
        );
    }
    if has_route && r.direct_response.is_some() {
        sink.error(
            format!("{path}.directResponse"),
            "an http route cannot both answer directly and route; remove `directResponse` or `route`",
        );
    }
    if r.redirect.is_some() && r.direct_response.is_some() {
        sink.error(
            format!("{path}.directResponse"),
            "an http route cannot both redirect and answer directly; keep one",
        );
    }
    if !has_route && r.redirect.is_none() && r.direct_response.is_none() && r.delegate.is_none() {
        sink.error(
            format!("{path}.route"),
            "the http route has no destination: add `route` (or `redirect`, `directResponse`, `delegate`)",
        );
    }
    if let Some(d) = &r.delegate {
        let dns = d.namespace.as_deref().unwrap_or(ns);
        if !ctx
            .virtual_services
            .contains(&(dns.to_string(), d.name.clone()))
        {
            sink.error(
                format!("{path}.delegate"),
                format!(
                    "delegates to VirtualService {dns}/{}, which does not exist; create it or \
                     fix `delegate.name`/`delegate.namespace`",
                    d.name
                ),
            );
        }
        if has_route || r.redirect.is_some() {
            sink.error(
                format!("{path}.delegate"),
                "a delegating route cannot also set `route` or `redirect`; keep `delegate` alone",
            );
        }
    }
    route_destination::check_all(
        ctx,
        sink,
        path,
        r.route.iter().map(|d| (&d.destination, d.weight)),
        ns,
    );
    sink.duration(&format!("{path}.timeout"), r.timeout.as_ref());
    if let Some(retries) = &r.retries {
        if retries.attempts < 0 {
            sink.error(
                format!("{path}.retries.attempts"),
                format!(
                    "retry attempts {} is negative; use 0 or more",
                    retries.attempts
                ),
            );
        }
        if let Some(retry_on) = &retries.retry_on {
            retry_on_policies(sink, &format!("{path}.retries.retryOn"), retry_on);
        }
        sink.duration(
            &format!("{path}.retries.perTryTimeout"),
            retries.per_try_timeout.as_ref(),
        );
        sink.duration(&format!("{path}.retries.backoff"), retries.backoff.as_ref());
    }
    if let Some(fault) = &r.fault {
        fault_injection(sink, &format!("{path}.fault"), fault);
    }
    if let Some(rewrite) = &r.rewrite {
        if rewrite.uri.is_some() && rewrite.uri_regex_rewrite.is_some() {
            sink.error(
                format!("{path}.rewrite"),
                "`uri` and `uriRegexRewrite` cannot both be set; keep one",
            );
        }
        if let Some(rr) = &rewrite.uri_regex_rewrite {
            sink.regex(
                &format!("{path}.rewrite.uriRegexRewrite.match"),
                &rr.pattern,
            );
        }
    }
    if let Some(redirect) = &r.redirect
        && let Some(code) = redirect.redirect_code
        && ![301, 302, 303, 307, 308].contains(&code)
    {
        sink.error(
            format!("{path}.redirect.redirectCode"),
            format!("redirect code {code} is not a redirect; use 301, 302, 303, 307 or 308"),
        );
    }
    if let Some(d) = &r.direct_response
        && !(200..=599).contains(&d.status)
    {
        sink.error(
            format!("{path}.directResponse.status"),
            format!("status {} is not an HTTP status; use 200–599", d.status),
        );
    }
    if let Some(m) = &r.mirror {
        route_destination::check(ctx, sink, &format!("{path}.mirror"), m, ns);
    }
    for (k, m) in r.mirrors.iter().enumerate() {
        route_destination::check(
            ctx,
            sink,
            &format!("{path}.mirrors[{k}].destination"),
            &m.destination,
            ns,
        );
        sink.percent(
            &format!("{path}.mirrors[{k}].percentage.value"),
            m.percentage.as_ref().map(|p| p.value),
        );
    }
    sink.percent(
        &format!("{path}.mirrorPercentage.value"),
        r.mirror_percentage.as_ref().map(|p| p.value),
    );
    if let Some(cors) = &r.cors_policy {
        sink.duration(&format!("{path}.corsPolicy.maxAge"), cors.max_age.as_ref());
        for (k, o) in cors.allow_origins.iter().enumerate() {
            sink.string_match(&format!("{path}.corsPolicy.allowOrigins[{k}]"), o);
        }
    }
}

/// Envoy's HTTP and gRPC retry conditions Istio accepts in `retryOn`, besides
/// HTTP status codes.
const RETRY_ON: &[&str] = &[
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "envoy-ratelimited",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "http3-post-connect-failure",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

fn retry_on_policies(sink: &mut Sink<'_>, path: &str, retry_on: &str) {
    for policy in retry_on.split(',').map(str::trim) {
        let is_status = policy
            .parse::<u16>()
            .is_ok_and(|c| (100..=599).contains(&c));
        if !is_status && !RETRY_ON.contains(&policy) {
            sink.error(
                path,
                format!(
                    "{policy:?} is not a retry condition; use a comma-separated list of {} or \
                     HTTP status codes",
                    RETRY_ON.join(", ")
                ),
            );
        }
    }
}

fn http_match(ctx: &Context<'_>, sink: &mut Sink<'_>, path: &str, m: &HttpMatchRequest, ns: &str) {
    for (field, value) in [
        ("uri", &m.uri),
        ("scheme", &m.scheme),
        ("method", &m.method),
        ("authority", &m.authority),
    ] {
        if let Some(sm) = value {
            sink.string_match(&format!("{path}.{field}"), sm);
        }
    }
    for (field, map) in [
        ("headers", &m.headers),
        ("withoutHeaders", &m.without_headers),
    ] {
        for (name, sm) in map {
            let p = format!("{path}.{field}.{name}");
            sink.string_match(&p, sm);
            if name.chars().any(|c| c.is_ascii_uppercase()) {
                sink.warning(
                    p,
                    format!("header name {name:?} has upper-case letters; Istio header keys are lower-case, write {:?}", name.to_ascii_lowercase()),
                );
            }
        }
    }
    for (name, sm) in &m.query_params {
        let p = format!("{path}.queryParams.{name}");
        sink.string_match(&p, sm);
        // The VirtualService reference: "prefix matching is currently not
        // supported" for query parameters.
        if sm.prefix.is_some() {
            sink.warning(
                format!("{p}.prefix"),
                "Istio does not support prefix matching of query parameters; use `exact` or \
                 `regex` (e.g. `regex: \"abc.*\"`)",
            );
        }
    }
    // Envoy ignores case_sensitive for safe_regex: only exact and prefix
    // honour ignoreUriCase.
    if m.ignore_uri_case && m.uri.as_ref().is_some_and(|u| u.regex.is_some()) {
        sink.warning(
            format!("{path}.ignoreUriCase"),
            "ignoreUriCase applies only to exact and prefix uri matches, so this regex stays \
             case-sensitive; write the case-insensitivity into the regex with `(?i)`",
        );
    }
    if let Some(port) = m.port
        && !(1..=65535).contains(&port)
    {
        sink.error(
            format!("{path}.port"),
            format!("port {port} is outside 1–65535"),
        );
    }
    for (k, g) in m.gateways.iter().enumerate() {
        gateway_exists(ctx, sink, &format!("{path}.gateways[{k}]"), g, ns);
    }
}

fn fault_injection(sink: &mut Sink<'_>, path: &str, fault: &HttpFaultInjection) {
    if fault.delay.is_none() && fault.abort.is_none() {
        sink.error(
            path,
            "fault injection sets neither `delay` nor `abort`; set one or remove `fault`",
        );
    }
    if let Some(delay) = &fault.delay {
        if delay.fixed_delay.is_none() && delay.exponential_delay.is_none() {
            sink.error(
                format!("{path}.delay"),
                "a delay needs `fixedDelay`, e.g. `fixedDelay: 5s`",
            );
        }
        sink.duration(
            &format!("{path}.delay.fixedDelay"),
            delay.fixed_delay.as_ref(),
        );
        sink.duration(
            &format!("{path}.delay.exponentialDelay"),
            delay.exponential_delay.as_ref(),
        );
        sink.percent(
            &format!("{path}.delay.percentage.value"),
            delay.percentage.as_ref().map(|p| p.value),
        );
        sink.percent(
            &format!("{path}.delay.percent"),
            delay.percent.map(f64::from),
        );
    }
    if let Some(abort) = &fault.abort {
        let kinds = [
            abort.http_status.is_some(),
            abort.grpc_status.is_some(),
            abort.http2_error.is_some(),
        ];
        if !kinds.contains(&true) {
            sink.error(
                format!("{path}.abort"),
                "an abort needs `httpStatus` (or `grpcStatus`), e.g. `httpStatus: 503`",
            );
        }
        if let Some(status) = abort.http_status
            && !(200..=599).contains(&status)
        {
            sink.error(
                format!("{path}.abort.httpStatus"),
                format!("abort status {status} is not an HTTP status; use 200–599"),
            );
        }
        sink.percent(
            &format!("{path}.abort.percentage.value"),
            abort.percentage.as_ref().map(|p| p.value),
        );
    }
}

/// Two VirtualServices for the same host on the sidecars: Istio uses only one
/// of them, so the other's routes silently never apply.
pub(super) fn check_conflicting_hosts(
    resources: &[Resource],
    ctx: &Context<'_>,
    out: &mut Vec<Diagnostic>,
) {
    let mut by_host: BTreeMap<String, Vec<(usize, &VirtualService, usize)>> = BTreeMap::new();
    for (ri, r) in resources.iter().enumerate() {
        let Resource::VirtualService(vs) = r else {
            continue;
        };
        if ctx.superseded.contains(&ri) {
            continue;
        }
        let ns = vs.metadata.namespace();
        let on_mesh = vs.spec.gateways.is_empty() || vs.spec.gateways.iter().any(|g| g == "mesh");
        if !on_mesh {
            continue;
        }
        for (hi, h) in vs.spec.hosts.iter().enumerate() {
            let entry = by_host.entry(ctx.fqdn(h, ns)).or_default();
            if !entry.iter().any(|(other, _, _)| *other == ri) {
                entry.push((ri, vs, hi));
            }
        }
    }
    for (host, claims) in by_host.into_iter().filter(|(_, c)| c.len() > 1) {
        for (ri, _, hi) in &claims {
            let others: Vec<String> = claims
                .iter()
                .filter(|(o, _, _)| o != ri)
                .map(|(_, o, _)| format!("{}/{}", o.metadata.namespace(), o.metadata.name))
                .collect();
            out.push(Diagnostic {
                severity: Severity::Error,
                resource: resources[*ri].key().to_string(),
                path: format!("spec.hosts[{hi}]"),
                message: format!(
                    "host {host} is also routed by VirtualService {} for the sidecars (mesh); \
                     Istio applies only one VirtualService per host, so the other's routes are \
                     ignored. Merge their http routes into one VirtualService",
                    others.join(", ")
                ),
            });
        }
    }
}
