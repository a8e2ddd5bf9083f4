//! Traffic mirroring (Istio's `mirror`): a copy of the request goes to the
//! mirror service with `-shadow` appended to its Host, as Envoy does; the
//! copy is sent from its own task and its answer is dropped, so the mirror
//! never slows or changes the real response. Only bodies the proxy
//! buffered (small ones) are mirrored.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Uri};

use super::route::MirrorTarget;
use crate::context::ProxyContext;
use crate::http::full;
use crate::peer;

pub fn send(
    ctx: &ProxyContext,
    mirror: &MirrorTarget,
    original: &http::request::Parts,
    path_and_query: &str,
    body: Bytes,
) {
    let Some(endpoint) = mirror.backend.pick() else {
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
    let client = ctx.client.clone();
    let target = endpoint.authority.clone();
    tokio::spawn(async move {
        if let Err(error) = client.request(req).await {
            tracing::debug!(mirror = %target, %error, "mirrored request failed");
        }
    });
}
