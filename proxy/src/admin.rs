//! The admin listener (`--admin`), Envoy's admin port in Istio terms:
//! `/stats/prometheus` (what the collector scrapes), `/ready` (200 once the
//! first snapshot is applied and, with an identity, the first certificate
//! installed), `/config_dump` (the applied snapshot), `/certs` (the
//! workload certificate and trust bundle, as Envoy's admin `/certs`).

use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;

use crate::config::ConfigStore;
use crate::telemetry::metrics::Metrics;
use crate::tls::CredentialStore;

pub struct Admin {
    pub store: Arc<ConfigStore>,
    pub metrics: Arc<Metrics>,
    pub credentials: Arc<CredentialStore>,
}

pub async fn handle(admin: Arc<Admin>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "only GET\n".into(),
        );
    }
    match req.uri().path() {
        "/stats/prometheus" | "/metrics" => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            admin.metrics.render(),
        ),
        "/ready" | "/healthz/ready" => {
            if admin.store.is_ready() && admin.credentials.is_ready() {
                reply(StatusCode::OK, "text/plain", "LIVE\n".into())
            } else if admin.store.is_ready() {
                reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    "no workload certificate issued by the control plane yet\n".into(),
                )
            } else {
                reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    "no configuration received from the control plane yet\n".into(),
                )
            }
        }
        "/config_dump" => match admin.store.load() {
            Some(config) => reply(
                StatusCode::OK,
                "application/json",
                serde_json::to_string_pretty(&config.dump).unwrap_or_default(),
            ),
            None => reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "application/json",
                r#"{"version":null,"error":"no configuration received from the control plane yet"}"#.into(),
            ),
        },
        "/certs" => reply(
            StatusCode::OK,
            "application/json",
            serde_json::to_string_pretty(&admin.credentials.dump()).unwrap_or_default(),
        ),
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "admin paths: /stats/prometheus /ready /config_dump /certs\n".into(),
        ),
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}
