//! OTLP trace receivers: gRPC ([`grpc`]) and HTTP with protobuf or JSON
//! ([`http`]). Both hand decoded requests to [`Ingest`], which converts them
//! to rows and queues them for the writer, or refuses them with a reason the
//! receiver turns into its protocol's retry signal.
//!
//! A request is answered only once its spans are committed to Postgres (or
//! known lost): success then means stored. Spans Postgres refused are
//! reported in `partial_success` like invalid ones. If the write takes
//! longer than `ack_timeout` (the database is down), the sender is told to
//! retry; its spans stay queued and are written when the database is back,
//! so a retry may store them twice (OTLP's delivery is at-least-once).

pub mod grpc;
pub mod http;
pub mod limits;
pub mod rpc_status;
pub mod span_row;

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};

use crate::writer::drops::DropRecorder;
use crate::writer::queue::{Refused, SpanQueue};
use span_row::SpanLimits;

/// How long a refused sender is told to wait before retrying.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The receivers' shared path into the writer queue.
#[derive(Clone)]
pub struct Ingest {
    pub(crate) queue: SpanQueue,
    pub(crate) drops: DropRecorder,
    pub(crate) limits: SpanLimits,
    /// How long a request waits for its spans to be committed.
    pub(crate) ack_timeout: Duration,
}

/// Why a request was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportError {
    /// Not now: the sender should retry.
    Refused(Refused),
    /// Never: more spans than one request may carry.
    TooManySpans { spans: usize, max: usize },
    /// Queued, but not committed within `ack_timeout`: the sender should
    /// retry (the spans will most likely be written meanwhile).
    NotYetWritten { waited: Duration },
}

impl Ingest {
    /// Queues the spans of `request`. Spans that are invalid are reported in
    /// `partial_success` (and counted as drops); a full or closing queue
    /// refuses the whole request (counted too) so the sender retries it.
    /// Attributes dropped and values cut by [`SpanLimits`] are counted.
    /// Resolves when the spans are committed (see the module doc).
    pub async fn export(
        &self,
        request: &ExportTraceServiceRequest,
    ) -> Result<ExportTraceServiceResponse, ExportError> {
        let spans = span_row::span_count(request);
        if spans > self.limits.max_spans_per_request {
            self.drops.record("spans", "too_many_in_request", spans);
            return Err(ExportError::TooManySpans {
                spans,
                max: self.limits.max_spans_per_request,
            });
        }
        let converted = span_row::convert(request, &self.limits);
        let n = converted.rows.len();
        self.drops
            .record("spans", "invalid_span", converted.rejected);
        self.drops.record(
            "span_attributes",
            "over_count_limit",
            converted.dropped_attributes,
        );
        self.drops.record(
            "attribute_values",
            "truncated_over_length_limit",
            converted.truncated_values,
        );
        let ack = match self.queue.try_push(converted.rows, converted.bytes) {
            Ok(ack) => ack,
            Err(refused) => {
                let reason = match refused {
                    Refused::Full { .. } => "queue_full_refused_for_retry",
                    Refused::Closed => "shutting_down_refused_for_retry",
                };
                self.drops.record("spans", reason, n);
                return Err(ExportError::Refused(refused));
            }
        };
        let written = match tokio::time::timeout(self.ack_timeout, ack).await {
            Ok(Ok(written)) => written,
            // The writer stopped without writing them (it does not, but then
            // retrying elsewhere is right).
            Ok(Err(_)) => return Err(ExportError::Refused(Refused::Closed)),
            Err(_) => {
                return Err(ExportError::NotYetWritten {
                    waited: self.ack_timeout,
                });
            }
        };
        let rejected = converted.rejected + written.not_stored;
        let partial_success = (rejected > 0).then(|| ExportTracePartialSuccess {
            rejected_spans: rejected as i64,
            error_message: converted.first_error.unwrap_or_else(|| {
                format!(
                    "{} spans could not be stored (refused by the database)",
                    written.not_stored
                )
            }),
        });
        Ok(ExportTraceServiceResponse { partial_success })
    }
}

pub(crate) fn refusal_message(refused: Refused) -> String {
    match refused {
        Refused::Full { spans, bytes } => format!(
            "collector is behind: {spans} spans ({} KiB) queued; retry after {}s",
            bytes / 1024,
            RETRY_AFTER.as_secs()
        ),
        Refused::Closed => {
            "collector is shutting down; retry against another instance or later".into()
        }
    }
}

pub(crate) fn not_yet_written_message(waited: Duration) -> String {
    format!(
        "the spans were queued but not committed within {}s (is the database down?); \
         retry after {}s",
        waited.as_secs_f64(),
        RETRY_AFTER.as_secs()
    )
}

pub(crate) fn too_many_spans_message(spans: usize, max: usize) -> String {
    format!(
        "the request carries {spans} spans; at most {max} are accepted per request: send smaller batches"
    )
}
