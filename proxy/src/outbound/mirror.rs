//! Traffic mirroring (Istio's `mirror`): a copy of the request goes to the
//! mirror service with `-shadow` appended to its Host, as Envoy does; the
//! copy is sent from its own task and its answer is dropped, so the mirror
//! never slows or changes the real response. Only bodies the proxy
//! buffered (small ones) are mirrored. Each copy is bounded in time — by
//! the route's `timeout` as Envoy bounds its shadows, and by
//! [`MIRROR_TIMEOUT`] at most — and at most [`MAX_IN_FLIGHT`] are outstanding; past
//! that, copies are skipped and counted (`loupe_proxy_mirrors_skipped_total`),
//! so a slow mirror costs bounded memory.

use std::sync::Arc;
use std::sync::atomic::Ordering::{AcqRel, Relaxed};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Uri};

use super::route::MirrorTarget;
use crate::context::ProxyContext;
use crate::http::full;
use crate::peer;
use crate::telemetry::metrics::Metrics;

/// The longest a mirrored request may take before it is abandoned.
pub const MIRROR_TIMEOUT: Duration = Duration::from_secs(15);
/// Mirrored requests outstanding at most, per proxy.
pub const MAX_IN_FLIGHT: u64 = 1_000;

pub fn send(
    ctx: &ProxyContext,
    mirror: &MirrorTarget,
    original: &http::request::Parts,
    path_and_query: &str,
    body: Bytes,
    route_timeout: Option<Duration>,
) {
    let timeout = route_timeout.map_or(MIRROR_TIMEOUT, |t| t.min(MIRROR_TIMEOUT));
    let Some(endpoint) = mirror.backend.pick() else {
        return;
    };
    let Some(guard) = InFlight::take(&ctx.metrics) else {
        ctx.metrics.mirrors_skipped.fetch_add(1, Relaxed);
        return;
    };
    let uri = Uri::builder()
        .scheme(mirror.backend.scheme(endpoint, ctx.credentials.required))
        .authority(endpoint.authority.clone())
        .path_and_query(path_and_query)
        .build();
    let Ok(uri) = uri else {
        return;
    };
    let mut req = Request::new(full(body));
    *req.method_mut() = original.method.clone();
    *req.uri_mut() = uri;
    *req.headers_mut() = original.headers.clone();
    let headers = req.headers_mut();
    headers.insert(peer::HEADER, mirror.service.peer_header.clone());
    if let Some(host) = original
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
    {
        let (name, port) = crate::identity::split_authority(host);
        let shadow = match port {
            Some(p) => format!("{name}-shadow:{p}"),
            None => format!("{name}-shadow"),
        };
        if let Ok(v) = HeaderValue::from_str(&shadow) {
            headers.insert(header::HOST, v);
        }
    }
    let client = mirror.backend.client(&ctx.client).clone();
    let target = endpoint.authority.clone();
    tokio::spawn(async move {
        let _guard = guard;
        match tokio::time::timeout(timeout, client.request(req)).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                tracing::debug!(mirror = %target, %error, "mirrored request failed")
            }
            Err(_) => tracing::debug!(mirror = %target, "mirrored request timed out"),
        }
    });
}

/// One outstanding mirrored request (`loupe_proxy_mirrors_in_flight`);
/// released when dropped.
struct InFlight(Arc<Metrics>);

impl InFlight {
    fn take(metrics: &Arc<Metrics>) -> Option<InFlight> {
        if metrics.mirrors_in_flight.fetch_add(1, AcqRel) >= MAX_IN_FLIGHT {
            metrics.mirrors_in_flight.fetch_sub(1, AcqRel);
            return None;
        }
        Some(InFlight(metrics.clone()))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.mirrors_in_flight.fetch_sub(1, AcqRel);
    }
}
