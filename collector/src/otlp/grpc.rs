//! OTLP/gRPC trace receiver (`opentelemetry.proto.collector.trace.v1.TraceService`).
//! A full queue answers RESOURCE_EXHAUSTED with a `google.rpc.RetryInfo`
//! detail, which OTLP defines as "retryable, after this delay".

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::codec::CompressionEncoding;
use tonic::{Code, Request, Response, Status};

use super::rpc_status::{CODE_RESOURCE_EXHAUSTED, CODE_UNAVAILABLE, retry_status_bytes};
use super::{
    ExportError, Ingest, RETRY_AFTER, not_yet_written_message, refusal_message,
    too_many_spans_message,
};
use crate::writer::queue::Refused;

pub struct OtlpGrpc {
    ingest: Ingest,
}

impl OtlpGrpc {
    pub fn server(ingest: Ingest, max_message_bytes: usize) -> TraceServiceServer<Self> {
        TraceServiceServer::new(OtlpGrpc { ingest })
            .max_decoding_message_size(max_message_bytes)
            // SDKs and the OpenTelemetry Collector may send gzip.
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
    }
}

#[tonic::async_trait]
impl TraceService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        match self.ingest.export(request.get_ref()).await {
            Ok(response) => Ok(Response::new(response)),
            Err(ExportError::TooManySpans { spans, max }) => {
                Err(Status::invalid_argument(too_many_spans_message(spans, max)))
            }
            Err(ExportError::NotYetWritten { waited }) => {
                let message = not_yet_written_message(waited);
                let details = retry_status_bytes(CODE_UNAVAILABLE, &message, RETRY_AFTER);
                Err(Status::with_details(
                    Code::Unavailable,
                    message,
                    details.into(),
                ))
            }
            Err(ExportError::Refused(refused)) => {
                let message = refusal_message(refused);
                let (code, number) = match refused {
                    Refused::Full { .. } => (Code::ResourceExhausted, CODE_RESOURCE_EXHAUSTED),
                    Refused::Closed => (Code::Unavailable, CODE_UNAVAILABLE),
                };
                let details = retry_status_bytes(number, &message, RETRY_AFTER);
                Err(Status::with_details(code, message, details.into()))
            }
        }
    }
}
