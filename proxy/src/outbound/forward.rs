//! Forwarding one request to a backend: pick an endpoint round robin, send,
//! and retry on the route's `retryOn` conditions (each retry picks the next
//! endpoint, as Envoy's retry host selection does), within per-try
//! timeouts. The route's overall timeout wraps this whole loop.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, Uri};
use hyper::body::Incoming;

use super::policy::RetryPolicy;
use crate::config::{Backend, Endpoint};
use crate::http::{self as body, Body};
use crate::telemetry::metrics::ResponseFlags;
use crate::transport::UpstreamClient;

/// A request body that may be sent more than once.
pub enum Replay {
    /// Small or empty bodies are buffered, so retries can resend them.
    Buffered(Bytes),
    /// Large bodies stream through once; such requests are not retried.
    Streaming(Option<Incoming>),
}

/// The parts of the request every attempt shares.
pub struct Outgoing<'a> {
    pub method: &'a Method,
    pub path_and_query: &'a str,
    pub headers: &'a HeaderMap,
}

/// How forwarding failed when no response came back.
#[derive(Debug)]
pub enum Failure {
    /// The connection to the endpoint could not be made.
    Connect(String),
    /// The connection broke before a response arrived.
    Reset(String),
    /// The per-try timeout fired.
    Timeout,
}

impl Failure {
    /// The response Envoy gives for this failure, and its flag.
    pub fn status_and_flags(&self) -> (http::StatusCode, ResponseFlags) {
        match self {
            Failure::Connect(_) => (
                http::StatusCode::SERVICE_UNAVAILABLE,
                ResponseFlags::UpstreamConnectionFailure,
            ),
            Failure::Reset(_) => (
                http::StatusCode::SERVICE_UNAVAILABLE,
                ResponseFlags::UpstreamReset,
            ),
            Failure::Timeout => (
                http::StatusCode::GATEWAY_TIMEOUT,
                ResponseFlags::UpstreamRequestTimeout,
            ),
        }
    }

    pub fn message(&self) -> String {
        match self {
            Failure::Connect(e) => format!(
                "upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: {e}"
            ),
            Failure::Reset(e) => format!(
                "upstream connect error or disconnect/reset before headers. reset reason: connection termination ({e})"
            ),
            Failure::Timeout => "upstream request timeout".to_string(),
        }
    }
}

/// What forwarding produced: the upstream's response or why there is none,
/// the endpoint of the last attempt, and whether retries ran out.
pub struct Forwarded {
    pub result: Result<Response<Incoming>, Failure>,
    pub endpoint: Arc<Endpoint>,
    pub retries_exhausted: bool,
}

/// Sends `request` to `backend`, which must have at least one endpoint.
pub async fn forward(
    client: &UpstreamClient,
    backend: &Backend,
    has_identity: bool,
    request: &Outgoing<'_>,
    mut replay: Replay,
    retry: &RetryPolicy,
) -> Option<Forwarded> {
    let mut last: Option<Forwarded> = None;
    for attempt in 0..=retry.attempts {
        let endpoint = backend.pick()?.clone();
        let body = match &mut replay {
            Replay::Buffered(b) => body::full(b.clone()),
            Replay::Streaming(b) => match b.take() {
                Some(b) => body::stream(b),
                None => break,
            },
        };
        let can_retry = attempt < retry.attempts && matches!(replay, Replay::Buffered(_));
        let scheme = backend.scheme(&endpoint, has_identity);
        let result = send(
            backend.client(client),
            scheme,
            &endpoint,
            request,
            body,
            retry.per_try_timeout,
        )
        .await;
        let again = can_retry
            && match &result {
                Ok(resp) => retry.retries_status(resp.status().as_u16()),
                Err(Failure::Connect(_)) => retry.on_connect_failure,
                Err(Failure::Reset(_)) => retry.on_reset,
                Err(Failure::Timeout) => retry.on_5xx || retry.on_gateway_error,
            };
        if !again {
            return Some(Forwarded {
                result,
                endpoint,
                retries_exhausted: attempt > 0 && attempt == retry.attempts,
            });
        }
        tracing::debug!(endpoint = %endpoint.authority, attempt, "retrying upstream request");
        last = Some(Forwarded {
            result,
            endpoint,
            retries_exhausted: true,
        });
        tokio::time::sleep(retry.backoff(attempt)).await;
    }
    last
}

async fn send(
    client: &UpstreamClient,
    scheme: &'static str,
    endpoint: &Endpoint,
    request: &Outgoing<'_>,
    body: Body,
    per_try_timeout: Option<Duration>,
) -> Result<Response<Incoming>, Failure> {
    let uri = Uri::builder()
        .scheme(scheme)
        .authority(endpoint.authority.clone())
        .path_and_query(request.path_and_query)
        .build()
        .map_err(|e| Failure::Reset(format!("invalid upstream URI: {e}")))?;
    let mut req = Request::new(body);
    *req.method_mut() = request.method.clone();
    *req.uri_mut() = uri;
    *req.headers_mut() = request.headers.clone();
    let _active = endpoint.start_request();
    let call = client.request(req);
    let result = match per_try_timeout {
        Some(t) => match tokio::time::timeout(t, call).await {
            Ok(r) => r,
            Err(_) => return Err(Failure::Timeout),
        },
        None => call.await,
    };
    result.map_err(|e| {
        let detail = source_chain(&e);
        if e.is_connect() {
            Failure::Connect(detail)
        } else {
            Failure::Reset(detail)
        }
    })
}

fn source_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}
