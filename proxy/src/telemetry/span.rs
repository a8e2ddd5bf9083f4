//! The spans the proxy makes (a SERVER span per inbound request, a CLIENT
//! span per outbound or gateway request), named and attributed as Envoy's
//! tracer does in Istio so trace views read the same.
//!
//! The request path only fills a [`FinishedSpan`] (ids, times, a few
//! values); the OTLP structures and attribute lists are built on the export
//! task, off the request path.

use std::net::SocketAddr;
use std::time::SystemTime;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{Span, Status, span, status};

use super::metrics::ResponseFlags;
use super::propagation::SpanContext;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanKind {
    Server,
    Client,
}

/// One span as the request path hands it to the exporter.
#[derive(Clone, Debug)]
pub struct FinishedSpan {
    pub context: SpanContext,
    pub kind: SpanKind,
    /// Envoy's operation name: `reviews.default.svc.cluster.local:9080/*`.
    pub name: String,
    pub start: SystemTime,
    pub end: SystemTime,
    pub method: http::Method,
    pub url: String,
    pub status_code: u16,
    pub flags: ResponseFlags,
    /// Envoy's cluster name: `outbound|9080|v1|reviews.default.svc.cluster.local`.
    pub upstream_cluster: String,
    /// The other side of the hop: the endpoint called, or the caller.
    pub peer_address: Option<SocketAddr>,
    /// The other side's SPIFFE ID from its mTLS certificate (server spans:
    /// the caller); never from a header.
    pub peer_principal: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub request_size: u64,
    pub response_size: u64,
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

pub fn string_attr(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn int_attr(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..Default::default()
    }
}

impl FinishedSpan {
    /// The OTLP span; `common` are the proxy's own attributes (node_id,
    /// component, istio.canonical_service, …), added to every span.
    pub fn to_otlp(&self, common: &[KeyValue]) -> Span {
        let mut attributes = Vec::with_capacity(common.len() + 14);
        attributes.extend_from_slice(common);
        attributes.push(string_attr("http.method", self.method.as_str()));
        attributes.push(string_attr("http.url", self.url.clone()));
        attributes.push(string_attr("http.protocol", "HTTP/1.1"));
        attributes.push(int_attr("http.status_code", i64::from(self.status_code)));
        attributes.push(string_attr("response_flags", self.flags.as_str()));
        attributes.push(string_attr(
            "upstream_cluster",
            self.upstream_cluster.clone(),
        ));
        attributes.push(string_attr(
            "upstream_cluster.name",
            self.upstream_cluster.clone(),
        ));
        attributes.push(int_attr("request_size", self.request_size as i64));
        attributes.push(int_attr("response_size", self.response_size as i64));
        if let Some(principal) = &self.peer_principal {
            attributes.push(string_attr("peer.principal", principal.clone()));
        }
        if let Some(peer) = self.peer_address {
            attributes.push(string_attr("peer.address", peer.to_string()));
            attributes.push(string_attr("net.peer.ip", peer.ip().to_string()));
            attributes.push(int_attr("net.peer.port", i64::from(peer.port())));
        }
        if let Some(ua) = &self.user_agent {
            attributes.push(string_attr("user_agent", ua.clone()));
        }
        if let Some(id) = &self.request_id {
            attributes.push(string_attr("guid:x-request-id", id.clone()));
        }
        let error = self.status_code >= 500 || self.status_code == 0;
        if error {
            attributes.push(KeyValue {
                key: "error".to_string(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::BoolValue(true)),
                }),
                ..Default::default()
            });
        }
        Span {
            trace_id: self.context.trace_id.to_vec(),
            span_id: self.context.span_id.to_vec(),
            parent_span_id: self
                .context
                .parent_span_id
                .map(|p| p.to_vec())
                .unwrap_or_default(),
            flags: u32::from(self.context.sampled),
            name: self.name.clone(),
            kind: match self.kind {
                SpanKind::Server => span::SpanKind::Server as i32,
                SpanKind::Client => span::SpanKind::Client as i32,
            },
            start_time_unix_nano: unix_nanos(self.start),
            end_time_unix_nano: unix_nanos(self.end),
            attributes,
            status: Some(Status {
                code: if error {
                    status::StatusCode::Error as i32
                } else {
                    status::StatusCode::Unset as i32
                },
                message: String::new(),
            }),
            ..Default::default()
        }
    }
}
