//! OTLP trace receivers: gRPC ([`grpc`]) and HTTP with protobuf or JSON
//! ([`http`]). Both hand decoded requests to [`Ingest`], which converts them
//! to rows and queues them for the writer, or refuses them with a reason the
//! receiver turns into its protocol's retry signal.

pub mod grpc;
pub mod http;
pub mod rpc_status;
pub mod span_row;

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};

use crate::writer::drops::DropRecorder;
use crate::writer::queue::{Refused, SpanQueue};

/// How long a refused sender is told to wait before retrying.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The receivers' shared path into the writer queue.
#[derive(Clone)]
pub struct Ingest {
    pub(crate) queue: SpanQueue,
    pub(crate) drops: DropRecorder,
}

impl Ingest {
    /// Queues the spans of `request`. Spans that are invalid are reported in
    /// `partial_success` (and counted as drops); a full or closing queue
    /// refuses the whole request (counted too) so the sender retries it.
    pub fn export(
        &self,
        request: &ExportTraceServiceRequest,
    ) -> Result<ExportTraceServiceResponse, Refused> {
        let converted = span_row::convert(request);
        let n = converted.rows.len();
        self.drops
            .record("spans", "invalid_span", converted.rejected);
        if let Err(refused) = self.queue.try_push(converted.rows) {
            let reason = match refused {
                Refused::Full { .. } => "queue_full_refused_for_retry",
                Refused::Closed => "shutting_down_refused_for_retry",
            };
            self.drops.record("spans", reason, n);
            return Err(refused);
        }
        let partial_success = (converted.rejected > 0).then(|| ExportTracePartialSuccess {
            rejected_spans: converted.rejected as i64,
            error_message: converted.first_error.unwrap_or_default(),
        });
        Ok(ExportTraceServiceResponse { partial_success })
    }
}

pub(crate) fn refusal_message(refused: Refused) -> String {
    match refused {
        Refused::Full { queued, capacity } => format!(
            "collector is behind: {queued} spans queued of {capacity}; retry after {}s",
            RETRY_AFTER.as_secs()
        ),
        Refused::Closed => {
            "collector is shutting down; retry against another instance or later".into()
        }
    }
}
