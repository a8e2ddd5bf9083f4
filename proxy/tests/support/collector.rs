//! An OTLP/gRPC trace collector that keeps every span it receives.

#![allow(dead_code)]

use super::*;

#[derive(Clone, Default)]
pub struct Collector {
    /// (service.name, span)
    pub spans: Arc<Mutex<Vec<(String, Span)>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().expect("spans");
        for rs in request.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .and_then(|v| match &v.value {
                    Some(
                        opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s),
                    ) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for s in ss.spans {
                    spans.push((service.clone(), s));
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Collector {
    pub async fn start() -> (Collector, SocketAddr) {
        let c = Collector::default();
        let listener = TcpListener::bind(addr(0)).await.expect("bind collector");
        let local = listener.local_addr().expect("collector addr");
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(c.clone()))
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        (c, local)
    }

    pub fn of_trace(&self, trace_id: &[u8]) -> Vec<(String, Span)> {
        self.spans
            .lock()
            .expect("spans")
            .iter()
            .filter(|(_, s)| s.trace_id == trace_id)
            .cloned()
            .collect()
    }
}

pub fn attr(span: &Span, key: &str) -> Option<String> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.clone()),
            Value::IntValue(i) => Some(i.to_string()),
            Value::BoolValue(b) => Some(b.to_string()),
            _ => None,
        })
}
