//! The outbound path (sidecar `--outbound` and the ingress gateway): the app
//! (or an external client) sends plain HTTP/1.1 naming the service in the
//! `Host` header; the proxy routes it with the VirtualServices of the
//! current config (`loupe_model::route::Router`), picks a weighted
//! destination, its DestinationRule subset and an endpoint, applies the
//! route's fault, timeout and retries, and streams the response back.
//! Reporter is `source`; the span is a CLIENT span.

pub mod forward;
pub mod mirror;
pub mod policy;
pub mod route;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};

use self::forward::{Outgoing, Replay};
use self::policy::roll;
pub use self::route::Traffic;
use self::route::{Routed, route};
use crate::context::ProxyContext;
use crate::http::{self as body, strip_hop_by_hop, text};
use crate::observe::{Completion, ObservedBody};
use crate::peer;
use crate::telemetry::metrics::{Edge, ResponseFlags};
use crate::telemetry::propagation::SpanContext;
use crate::telemetry::span::{FinishedSpan, SpanKind};

pub const REQUEST_ID: &str = "x-request-id";

/// A random UUID (version 4), as Envoy generates `x-request-id`.
fn request_id() -> HeaderValue {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = crate::telemetry::propagation::hex(&b);
    let id = format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    );
    HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// Bodies up to this size are buffered so that retries can resend them.
const MAX_REPLAY_BYTES: u64 = 64 * 1024;

pub async fn handle(
    ctx: Arc<ProxyContext>,
    traffic: Traffic,
    req: Request<Incoming>,
    downstream: SocketAddr,
) -> Response<ObservedBody> {
    let started = Instant::now();
    let wall = SystemTime::now();
    let (mut parts, incoming) = req.into_parts();
    let upgrade = crate::http::upgrade_of(&parts.headers);
    let downstream_upgrade = upgrade
        .as_ref()
        .and_then(|_| parts.extensions.remove::<hyper::upgrade::OnUpgrade>());
    // Envoy's request id: kept when the caller sent one, made otherwise, so
    // logs and spans of one request correlate across hops.
    if !parts.headers.contains_key(REQUEST_ID) {
        parts.headers.insert(REQUEST_ID, request_id());
    }
    let policy = ctx.store.tracing().client;
    let span_ctx = SpanContext::child_of(&parts.headers, &policy);
    let span = ctx.spans.enabled() && span_ctx.sampled && policy.report;
    let request_bytes = incoming.size_hint().exact().unwrap_or(0);

    // At the ingress gateway, its own RequestAuthentication and
    // AuthorizationPolicies decide before routing (Envoy's jwt_authn and
    // RBAC filters run before the router). The external client has no
    // certificate: it has a source IP, and a JWT if it sends one.
    if traffic == Traffic::Gateway
        && let Some((response, code)) = gateway_policy(&ctx, &mut parts, downstream)
    {
        let edge = ctx.unknown_service_edge();
        let done = completion(edge, started, code, ResponseFlags::None, request_bytes);
        return response.map(|b| ObservedBody::new(b, done));
    }

    let routed = route(&ctx, traffic, &parts);
    let (target, mut done) = match routed {
        Routed::Respond {
            response,
            flags,
            edge,
            name,
        } => {
            let code = response.status().as_u16();
            let completion = completion(edge, started, code, flags, request_bytes);
            let completion = with_span(
                completion,
                span,
                || FinishedSpan {
                    context: span_ctx,
                    kind: SpanKind::Client,
                    name,
                    start: wall,
                    end: wall,
                    method: parts.method.clone(),
                    url: url(&parts),
                    status_code: code,
                    flags,
                    upstream_cluster: "-".to_string(),
                    peer_address: None,
                    user_agent: header_string(&parts.headers, header::USER_AGENT),
                    request_id: header_string(&parts.headers, REQUEST_ID),
                    request_size: 0,
                    response_size: 0,
                    peer_principal: None,
                },
                &ctx,
            );
            return response.map(|b| ObservedBody::new(b, completion));
        }
        Routed::Forward(target) => {
            let edge = target.service.unreached.clone();
            let completion = completion(edge, started, 0, ResponseFlags::None, request_bytes);
            let completion = with_span(
                completion,
                span,
                || FinishedSpan {
                    context: span_ctx,
                    kind: SpanKind::Client,
                    name: format!("{}:{}/*", target.service.host, target.port),
                    start: wall,
                    end: wall,
                    method: parts.method.clone(),
                    url: url(&parts),
                    status_code: 0,
                    flags: ResponseFlags::None,
                    upstream_cluster: target.backend.cluster_name(target.port),
                    peer_address: None,
                    user_agent: header_string(&parts.headers, header::USER_AGENT),
                    request_id: header_string(&parts.headers, REQUEST_ID),
                    request_size: 0,
                    response_size: 0,
                    peer_principal: None,
                },
                &ctx,
            );
            (target, completion)
        }
    };

    // Fault injection happens before any upstream is contacted, as Envoy's
    // fault filter does.
    if let Some(fault) = target.policy.fault.as_ref() {
        if let Some((delay, pct)) = fault.delay
            && roll(pct)
        {
            tokio::time::sleep(delay).await;
            done.flags = ResponseFlags::DelayInjected;
        }
        if let Some((status, pct)) = fault.abort
            && roll(pct)
        {
            let response = text(
                StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                "fault filter abort",
            );
            done.code = status;
            done.flags = ResponseFlags::FaultInjected;
            return response.map(|b| ObservedBody::new(b, done));
        }
    }

    // The request as the next hop sees it. An HTTP/2 caller names the
    // service in `:authority`; the next hop's URI names the endpoint, so the
    // service travels in `Host`.
    if !parts.headers.contains_key(header::HOST)
        && let Some(authority) = parts.uri.authority()
        && let Ok(v) = HeaderValue::from_str(authority.as_str())
    {
        parts.headers.insert(header::HOST, v);
    }
    let headers = &mut parts.headers;
    strip_hop_by_hop(headers);
    if let Some(protocol) = &upgrade {
        crate::http::keep_upgrade(headers, protocol);
    }
    headers.insert(peer::HEADER, target.service.peer_header.clone());
    span_ctx.inject(headers);
    if let Some(authority) = target.authority_rewrite()
        && let Ok(v) = HeaderValue::from_str(authority)
    {
        headers.insert(header::HOST, v);
    }
    let path_and_query = target.path_and_query(&parts.uri);

    let retry = &target.policy.retry;
    let replay = match replayable(incoming, retry.attempts).await {
        Ok(r) => r,
        Err(e) => {
            done.code = 400;
            done.flags = ResponseFlags::DownstreamConnectionTermination;
            return text(
                StatusCode::BAD_REQUEST,
                format!("reading the request body failed: {e}"),
            )
            .map(|b| ObservedBody::new(b, done));
        }
    };
    if let (Some(mirror), Replay::Buffered(body)) = (&target.mirror, &replay)
        && roll(mirror.percent)
    {
        mirror::send(
            &ctx,
            mirror,
            &parts,
            &path_and_query,
            body.clone(),
            target.policy.timeout,
        );
    }
    let outgoing = Outgoing {
        method: &parts.method,
        path_and_query: &path_and_query,
        headers: &parts.headers,
    };
    let call = forward::forward(
        ctx.client_for(&parts.headers),
        &target.backend,
        ctx.credentials.required,
        &outgoing,
        replay,
        retry,
    );
    let forwarded = match target.policy.timeout {
        Some(t) => match tokio::time::timeout(t, call).await {
            Ok(f) => f,
            Err(_) => {
                done.code = 504;
                done.flags = ResponseFlags::UpstreamRequestTimeout;
                return text(StatusCode::GATEWAY_TIMEOUT, "upstream request timeout")
                    .map(|b| ObservedBody::new(b, done));
            }
        },
        None => call.await,
    };
    let Some(forwarded) = forwarded else {
        done.code = 503;
        done.flags = ResponseFlags::NoHealthyUpstream;
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            target.no_endpoint_message(),
        )
        .map(|b| ObservedBody::new(b, done));
    };
    done.edge = forwarded.endpoint.edge.clone();
    if let Some((span, _)) = done.span.as_mut() {
        span.peer_address = forwarded.endpoint.socket;
    }
    match forwarded.result {
        Ok(mut resp) => {
            done.code = resp.status().as_u16();
            done.grpc_status = crate::http::grpc_status(resp.headers());
            let switched = upgraded(downstream_upgrade, &mut resp);
            if forwarded.retries_exhausted && done.flags == ResponseFlags::None {
                done.flags = ResponseFlags::UpstreamRetryLimitExceeded;
            }
            let (mut rparts, rbody) = resp.into_parts();
            strip_hop_by_hop(&mut rparts.headers);
            if let Some(protocol) = &switched {
                crate::http::keep_upgrade(&mut rparts.headers, protocol);
            }
            Response::from_parts(rparts, ObservedBody::new(body::stream(rbody), done))
        }
        Err(failure) => {
            let (status, flags) = failure.status_and_flags();
            tracing::debug!(endpoint = %forwarded.endpoint.authority, error = %failure.message(), "upstream request failed");
            done.code = status.as_u16();
            done.flags = if forwarded.retries_exhausted {
                ResponseFlags::UpstreamRetryLimitExceeded
            } else {
                flags
            };
            text(status, failure.message()).map(|b| ObservedBody::new(b, done))
        }
    }
}

/// When the upstream switched protocols (101) for a request that asked,
/// joins the two connections and says to which protocol.
pub(crate) fn upgraded<B>(
    downstream: Option<hyper::upgrade::OnUpgrade>,
    resp: &mut Response<B>,
) -> Option<HeaderValue> {
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        return None;
    }
    let downstream = downstream?;
    let protocol = resp.headers().get(header::UPGRADE).cloned()?;
    crate::http::splice(downstream, hyper::upgrade::on(resp));
    Some(protocol)
}

/// The gateway's authentication and authorization; the refusal, if any.
fn gateway_policy(
    ctx: &ProxyContext,
    parts: &mut http::request::Parts,
    downstream: SocketAddr,
) -> Option<(Response<crate::http::Body>, u16)> {
    let config = ctx.store.load()?;
    let jwt = match config.authenticator.authenticate(parts) {
        Ok(jwt) => jwt,
        Err(crate::inbound::authn::Unauthenticated(why)) => {
            return Some((text(StatusCode::UNAUTHORIZED, why), 401));
        }
    };
    let authorizer = config.authorizer.as_ref()?;
    let port = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| crate::identity::split_authority(h).1)
        .unwrap_or(80);
    match crate::inbound::authorize::authorize(ctx, authorizer, parts, downstream, None, jwt, port)
    {
        Ok(()) => None,
        Err(denied) => {
            tracing::debug!(policy = ?denied.policy, "request denied at the gateway by AuthorizationPolicy");
            Some((text(StatusCode::FORBIDDEN, "RBAC: access denied"), 403))
        }
    }
}

fn completion(
    edge: Arc<Edge>,
    started: Instant,
    code: u16,
    flags: ResponseFlags,
    request_bytes: u64,
) -> Completion {
    Completion {
        edge,
        started,
        code,
        flags,
        request_bytes,
        span: None,
        recorded: false,
        grpc_status: None,
    }
}

/// Attaches a span to `c` when tracing wants one; `make` runs only then.
pub fn with_span(
    mut c: Completion,
    wanted: bool,
    make: impl FnOnce() -> FinishedSpan,
    ctx: &ProxyContext,
) -> Completion {
    if wanted {
        c.span = Some((make(), ctx.spans.clone()));
    }
    c
}

/// Buffers small bodies (so retries can resend them); streams large ones.
async fn replayable(incoming: Incoming, retries: u32) -> Result<Replay, hyper::Error> {
    if incoming.is_end_stream() {
        return Ok(Replay::Buffered(bytes::Bytes::new()));
    }
    let small = incoming
        .size_hint()
        .upper()
        .is_some_and(|n| n <= MAX_REPLAY_BYTES);
    if retries > 0 && small {
        return Ok(Replay::Buffered(incoming.collect().await?.to_bytes()));
    }
    Ok(Replay::Streaming(Some(incoming)))
}

pub fn url(parts: &http::request::Parts) -> String {
    let host = parts
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
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    format!("http://{host}{path}")
}

pub fn header_string(headers: &http::HeaderMap, name: impl header::AsHeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}
