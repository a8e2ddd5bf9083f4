//! Upstream connections: one pooled HTTP client per proxy, built from a
//! connector stack. Today the stack is plain TCP carrying HTTP/1.1; mTLS
//! (rustls with the workload's SPIFFE certificate) and HTTP/2 between
//! proxies slot in here as layers around [`connector`], without touching the
//! listeners.

use std::time::Duration;

use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::http::Body;

/// The connector stack for upstream connections.
pub type Connector = HttpConnector;

/// The pooled client every listener forwards through.
pub type UpstreamClient = Client<Connector, Body>;

pub fn connector() -> Connector {
    let mut c = HttpConnector::new();
    c.set_nodelay(true);
    c.set_connect_timeout(Some(Duration::from_secs(1)));
    c
}

pub fn client() -> UpstreamClient {
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(64)
        // The proxy forwards the app's own Host header.
        .set_host(false)
        .build(connector())
}
