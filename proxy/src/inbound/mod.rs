//! The inbound path: requests from other proxies (or the gateway) to the
//! local app. The proxy identifies the caller from its peer metadata,
//! authorizes the request, forwards it to `--app` and streams the response
//! back. Reporter is `destination`; the span is a SERVER span whose parent
//! is the caller's CLIENT span, and the app receives this span as its
//! parent in `traceparent`.

pub mod authorize;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::header::{self};
use http::{Request, Response, StatusCode, Uri};
use hyper::body::{Body as _, Incoming};

use crate::context::ProxyContext;
use crate::http::{self as body, strip_hop_by_hop, text};
use crate::identity::{UNKNOWN, service_fqdn, split_authority};
use crate::observe::{Completion, ObservedBody};
use crate::outbound::{header_string, url, with_span};
use crate::peer;
use crate::telemetry::metrics::ResponseFlags;
use crate::telemetry::propagation::SpanContext;
use crate::telemetry::span::{FinishedSpan, SpanKind};

/// The inbound listener's own state.
pub struct Inbound {
    pub ctx: Arc<ProxyContext>,
    /// The local app (`--app`).
    pub app: http::uri::Authority,
}

pub async fn handle(
    inbound: Arc<Inbound>,
    req: Request<Incoming>,
    peer_addr: SocketAddr,
) -> Response<ObservedBody> {
    let ctx = &inbound.ctx;
    let started = Instant::now();
    let wall = SystemTime::now();
    let (mut parts, incoming) = req.into_parts();
    let span_ctx = SpanContext::child_of(&parts.headers);
    let request_bytes = incoming.size_hint().exact().unwrap_or(0);

    let edge = match parts
        .headers
        .get(peer::HEADER)
        .and_then(|v| v.to_str().ok())
    {
        Some(key) => ctx
            .metrics
            .inbound_edge(key, || peer::decode(key), &ctx.this),
        None => {
            // A caller without a sidecar: the service is what it asked for.
            let host = parts
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(|h| split_authority(h).0)
                .unwrap_or(UNKNOWN);
            let service = if host == UNKNOWN || host.parse::<std::net::IpAddr>().is_ok() {
                UNKNOWN.to_string()
            } else {
                service_fqdn(host, &ctx.this.namespace)
            };
            let key = format!("host={service}");
            ctx.metrics.inbound_edge(
                &key,
                || (crate::identity::Workload::unknown(), service),
                &ctx.this,
            )
        }
    };
    // Envoy's inbound operation name: the service the caller asked for.
    let span_name = || {
        header_string(&parts.headers, header::HOST)
            .map(|h| {
                let (host, port) = split_authority(&h);
                format!(
                    "{}:{}/*",
                    service_fqdn(host, &ctx.this.namespace),
                    port.unwrap_or(80)
                )
            })
            .unwrap_or_else(|| format!("{}/*", inbound.app))
    };
    let mut done = Completion {
        edge,
        started,
        code: 0,
        flags: ResponseFlags::None,
        request_bytes,
        span: None,
    };
    done = with_span(
        done,
        ctx.spans.enabled() && span_ctx.sampled,
        || FinishedSpan {
            context: span_ctx,
            kind: SpanKind::Server,
            name: span_name(),
            start: wall,
            end: wall,
            method: parts.method.clone(),
            url: url(&parts),
            status_code: 0,
            flags: ResponseFlags::None,
            upstream_cluster: format!("inbound|{}||", inbound.app.port_u16().unwrap_or(80)),
            peer_address: Some(peer_addr),
            user_agent: header_string(&parts.headers, header::USER_AGENT),
            request_id: header_string(&parts.headers, "x-request-id"),
            request_size: 0,
            response_size: 0,
        },
        ctx,
    );

    // Authorization: the seam where AuthorizationPolicy (and, with mTLS,
    // the peer certificate's principal) decides.
    if let Some(authorizer) = ctx.store.load().and_then(|c| c.authorizer.clone())
        && let Err(denied) = authorize::authorize(
            ctx,
            &authorizer,
            &parts,
            peer_addr,
            inbound.app.port_u16().unwrap_or(80),
        )
    {
        tracing::debug!(policy = ?denied.policy, path = %parts.uri.path(), "request denied by AuthorizationPolicy");
        done.code = 403;
        return text(StatusCode::FORBIDDEN, "RBAC: access denied")
            .map(|b| ObservedBody::new(b, done));
    }

    strip_hop_by_hop(&mut parts.headers);
    parts.headers.remove(peer::HEADER);
    span_ctx.inject(&mut parts.headers);
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let uri = match Uri::builder()
        .scheme("http")
        .authority(inbound.app.clone())
        .path_and_query(path)
        .build()
    {
        Ok(u) => u,
        Err(e) => {
            done.code = 400;
            return text(
                StatusCode::BAD_REQUEST,
                format!("invalid request path: {e}"),
            )
            .map(|b| ObservedBody::new(b, done));
        }
    };
    parts.uri = uri;
    let req = Request::from_parts(parts, body::stream(incoming));
    match ctx.client.request(req).await {
        Ok(resp) => {
            done.code = resp.status().as_u16();
            let (mut rparts, rbody) = resp.into_parts();
            strip_hop_by_hop(&mut rparts.headers);
            Response::from_parts(rparts, ObservedBody::new(body::stream(rbody), done))
        }
        Err(e) => {
            let (status, flags, reason) = if e.is_connect() {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    ResponseFlags::UpstreamConnectionFailure,
                    "connection failure",
                )
            } else {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    ResponseFlags::UpstreamReset,
                    "connection termination",
                )
            };
            tracing::debug!(app = %inbound.app, error = %e, "local app unreachable");
            done.code = status.as_u16();
            done.flags = flags;
            text(
                status,
                format!("upstream connect error or disconnect/reset before headers. reset reason: {reason}"),
            )
            .map(|b| ObservedBody::new(b, done))
        }
    }
}
