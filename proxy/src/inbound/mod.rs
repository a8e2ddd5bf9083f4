//! The inbound path: requests from other proxies (or the gateway) to the
//! local app. The proxy identifies the caller from its peer metadata,
//! authorizes the request, forwards it to `--app` and streams the response
//! back. Reporter is `destination`; the span is a SERVER span whose parent
//! is the caller's CLIENT span, and the app receives this span as its
//! parent in `traceparent`.

pub mod authn;
pub mod authorize;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::header::{self};
use http::{Request, Response, StatusCode, Uri};
use hyper::body::{Body as _, Incoming};

use crate::capture::OriginalDst;
use crate::context::ProxyContext;
use crate::http::{self as body, strip_hop_by_hop, text};
use crate::identity::Workload;
use crate::identity::{UNKNOWN, service_fqdn, split_authority};
use crate::observe::{Completion, ObservedBody};
use crate::outbound::{header_string, url, with_span};
use crate::peer;
use crate::telemetry::metrics::Edge;
use crate::telemetry::metrics::ResponseFlags;
use crate::telemetry::propagation::SpanContext;
use crate::telemetry::span::{FinishedSpan, SpanKind};
use crate::tls::PeerIdentity;

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
    let upgrade = crate::http::upgrade_of(&parts.headers);
    let downstream_upgrade = upgrade
        .as_ref()
        .and_then(|_| parts.extensions.remove::<hyper::upgrade::OnUpgrade>());
    let policy = ctx.store.tracing().server;
    let span_ctx = SpanContext::child_of(&parts.headers, &policy);
    let request_bytes = incoming.size_hint().exact().unwrap_or(0);

    // Captured: the app listens on the port the caller connected to.
    let app = match parts.extensions.get::<OriginalDst>() {
        Some(dst) => dst.app.clone(),
        None => inbound.app.clone(),
    };
    let identity = parts.extensions.get::<PeerIdentity>().cloned();
    let edge = inbound_edge(ctx, &parts.headers, identity.as_ref());
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
            .unwrap_or_else(|| format!("{}/*", app))
    };
    let mut done = Completion {
        edge,
        started,
        code: 0,
        flags: ResponseFlags::None,
        request_bytes,
        span: None,
        recorded: false,
        grpc_status: None,
    };
    done = with_span(
        done,
        ctx.spans.enabled() && span_ctx.sampled && policy.report,
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
            upstream_cluster: format!("inbound|{}||", app.port_u16().unwrap_or(80)),
            peer_address: Some(peer_addr),
            user_agent: header_string(&parts.headers, header::USER_AGENT),
            request_id: header_string(&parts.headers, crate::outbound::REQUEST_ID),
            request_size: 0,
            response_size: 0,
            peer_principal: identity.as_ref().map(|p| p.id.uri()),
        },
        ctx,
    );

    // A plaintext connection opened before the mode became STRICT: its
    // requests are refused from then on, and the connection closed.
    if identity.is_none()
        && let Some(config) = ctx.store.load()
        && config.inbound_mtls(&ctx.this, app.port_u16().unwrap_or(80))
            == loupe_model::peer_auth::MtlsMode::Strict
    {
        ctx.metrics
            .plaintext_refused
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        done.code = 503;
        done.flags = ResponseFlags::UpstreamConnectionFailure;
        let mut resp = text(
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream connect error or disconnect/reset before headers. reset reason: connection termination (PeerAuthentication STRICT: mTLS required)",
        );
        resp.headers_mut()
            .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
        return resp.map(|b| ObservedBody::new(b, done));
    }

    // Authentication (RequestAuthentication): a bad token is refused here;
    // a good one's claims go to authorization.
    let config = ctx.store.load();
    let jwt = match config
        .as_ref()
        .map(|c| c.authenticator.authenticate(&mut parts))
    {
        Some(Err(authn::Unauthenticated(why))) => {
            tracing::debug!(reason = %why, "request refused by RequestAuthentication");
            done.code = 401;
            return text(StatusCode::UNAUTHORIZED, why).map(|b| ObservedBody::new(b, done));
        }
        Some(Ok(jwt)) => jwt,
        None => None,
    };

    // Authorization: the seam where AuthorizationPolicy decides, on the
    // peer certificate's principal and the request's JWT.
    if let Some(authorizer) = config.as_ref().and_then(|c| c.authorizer.clone())
        && let Err(denied) = authorize::authorize(
            ctx,
            &authorizer,
            &parts,
            peer_addr,
            identity.as_ref(),
            jwt,
            app.port_u16().unwrap_or(80),
        )
    {
        tracing::debug!(policy = ?denied.policy, path = %parts.uri.path(), "request denied by AuthorizationPolicy");
        done.code = 403;
        return text(StatusCode::FORBIDDEN, "RBAC: access denied")
            .map(|b| ObservedBody::new(b, done));
    }

    strip_hop_by_hop(&mut parts.headers);
    if let Some(protocol) = &upgrade {
        crate::http::keep_upgrade(&mut parts.headers, protocol);
    }
    parts.headers.remove(peer::HEADER);
    span_ctx.inject(&mut parts.headers);
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let uri = match Uri::builder()
        .scheme("http")
        .authority(app.clone())
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
    // A caller over HTTP/2 names the service in `:authority`; the app
    // speaks HTTP/1.1 and reads `Host`.
    if !parts.headers.contains_key(header::HOST)
        && let Some(authority) = parts.uri.authority()
        && let Ok(v) = http::HeaderValue::from_str(authority.as_str())
    {
        parts.headers.insert(header::HOST, v);
    }
    parts.uri = uri;
    // gRPC reaches the app over h2c; everything else over HTTP/1.1.
    let client = ctx.client_for(&parts.headers);
    parts.version = if crate::http::is_grpc(&parts.headers) {
        http::Version::HTTP_2
    } else {
        http::Version::HTTP_11
    };
    let req = Request::from_parts(parts, body::stream(incoming));
    match client.request(req).await {
        Ok(mut resp) => {
            done.code = resp.status().as_u16();
            done.grpc_status = crate::http::grpc_status(resp.headers());
            let switched = crate::outbound::upgraded(downstream_upgrade, &mut resp);
            let (mut rparts, rbody) = resp.into_parts();
            strip_hop_by_hop(&mut rparts.headers);
            if let Some(protocol) = &switched {
                crate::http::keep_upgrade(&mut rparts.headers, protocol);
            }
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
            tracing::debug!(app = %app, error = %e, "local app unreachable");
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

/// The metrics edge of one inbound request. Over mesh mTLS the caller is
/// its certificate's identity, and its peer-metadata header (workload name,
/// app, version, the service it called) is believed only when it names that
/// same namespace and service account. Over plaintext the header is a claim
/// anyone can make: it is ignored, and the caller is `unknown`.
fn inbound_edge(
    ctx: &ProxyContext,
    headers: &http::HeaderMap,
    identity: Option<&PeerIdentity>,
) -> Arc<Edge> {
    let claimed = headers.get(peer::HEADER).and_then(|v| v.to_str().ok());
    let host_service = || {
        // A caller without a sidecar: the service is what it asked for.
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| split_authority(h).0)
            .unwrap_or(UNKNOWN);
        if host == UNKNOWN || host.parse::<std::net::IpAddr>().is_ok() {
            UNKNOWN.to_string()
        } else {
            service_fqdn(host, &ctx.this.namespace)
        }
    };
    match identity {
        Some(peer) => {
            let id = &peer.id;
            let key = match claimed {
                Some(c) => format!("mtls|{}|{}|{c}", id.namespace, id.service_account),
                None => format!(
                    "mtls|{}|{}|host={}",
                    id.namespace,
                    id.service_account,
                    host_service()
                ),
            };
            let certified = || {
                Workload::new(
                    UNKNOWN,
                    &id.namespace,
                    &id.service_account,
                    Default::default(),
                )
            };
            ctx.metrics.inbound_edge(
                &key,
                || match claimed.map(peer::decode) {
                    Some((w, service))
                        if *w.namespace == *id.namespace
                            && *w.service_account == *id.service_account =>
                    {
                        (w, service)
                    }
                    Some((_, service)) => {
                        tracing::debug!(identity = %id, "peer metadata disagrees with the certificate; ignored");
                        (certified(), service)
                    }
                    None => (certified(), host_service()),
                },
                &ctx.this,
                "mutual_tls",
            )
        }
        None => {
            let service = host_service();
            let key = format!("plain|host={service}");
            ctx.metrics
                .inbound_edge(&key, || (Workload::unknown(), service), &ctx.this, "none")
        }
    }
}
