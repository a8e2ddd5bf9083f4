//! `loupe-samples` is the demo application: bookinfo-shaped services
//! (productpage → details, productpage → reviews v1/v2/v3, reviews v2/v3 →
//! ratings) and a load generator that calls the ingress gateway at a steady
//! rate. The services are plain HTTP/1.1 apps that know nothing of the mesh:
//! they call each other by service name through their sidecar's outbound
//! listener and forward the trace headers, exactly as Istio asks of apps.
#![deny(rust_2018_idioms)]

pub mod bookinfo;
pub mod http;
pub mod loadgen;
pub mod trace_headers;
