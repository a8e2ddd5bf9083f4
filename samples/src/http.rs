//! The little HTTP plumbing the sample apps share: serving a handler on a
//! listener, and calling another service through the sidecar.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{HeaderMap, Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

pub type Body = Full<Bytes>;

/// Serves `handler` on `listen` until the process ends.
pub async fn serve<H, F>(listen: SocketAddr, handler: H) -> anyhow::Result<()>
where
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    tracing::info!(%listen, "listening");
    let handler = Arc::new(handler);
    loop {
        let (stream, _) = listener.accept().await?;
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler(req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(value.to_string())))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// Calls other services through the sidecar's outbound listener: the request
/// goes to `proxy` with `Host: service:port`, as an app behind an
/// `HTTP_PROXY`-style sidecar does.
#[derive(Clone)]
pub struct MeshClient {
    proxy: SocketAddr,
    client: Client<HttpConnector, Body>,
}

/// What a call returned.
pub struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
}

impl MeshClient {
    pub fn new(proxy: SocketAddr) -> Self {
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(32)
            .build_http();
        MeshClient { proxy, client }
    }

    /// GET `path` on `authority` (e.g. `reviews:9080`), copying `headers`.
    pub async fn get(
        &self,
        authority: &str,
        path: &str,
        headers: &HeaderMap,
    ) -> anyhow::Result<Reply> {
        let mut req = Request::get(format!("http://{}{}", self.proxy, path))
            .header("host", authority)
            .body(Full::new(Bytes::new()))?;
        for (k, v) in headers {
            req.headers_mut().insert(k.clone(), v.clone());
        }
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| anyhow::anyhow!("GET {authority}{path} via {}: {e}", self.proxy))?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok(Reply { status, body })
    }
}
