//! Recording a request when its response ends: the metrics observation and
//! the span are taken once the response body has been streamed (or dropped
//! early by the client), so durations and byte counts cover the whole
//! exchange, as Envoy's do.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};

use crate::http::{Body, BoxError};
use crate::telemetry::export::SpanSink;
use crate::telemetry::metrics::{Edge, Observation, ResponseFlags};
use crate::telemetry::span::FinishedSpan;

/// What is known about a request when its response starts; finished when
/// the response body ends.
pub struct Completion {
    pub edge: Arc<Edge>,
    pub started: Instant,
    pub code: u16,
    pub flags: ResponseFlags,
    pub request_bytes: u64,
    /// The span to finish, when tracing is on and the trace is sampled.
    pub span: Option<(FinishedSpan, SpanSink)>,
    /// Set once recorded, so ending and dropping never count twice.
    pub recorded: bool,
    /// A gRPC response's `grpc-status` (headers, or trailers when they come).
    pub grpc_status: Option<u16>,
}

impl Completion {
    /// Records the exchange once: the first call wins.
    fn finish(&mut self, response_bytes: u64, complete: bool) {
        if self.recorded {
            return;
        }
        self.recorded = true;
        let flags = match (complete, self.flags) {
            (false, ResponseFlags::None) => ResponseFlags::DownstreamConnectionTermination,
            (_, f) => f,
        };
        let duration = self.started.elapsed();
        self.edge.record(&Observation {
            code: self.code,
            flags,
            grpc_status: self.grpc_status,
            duration,
            request_bytes: self.request_bytes,
            response_bytes,
        });
        // Envoy's access log, at debug level (`RUST_LOG=loupe_proxy::access=debug`).
        tracing::debug!(
            target: "loupe_proxy::access",
            code = self.code,
            flags = flags.as_str(),
            duration_ms = duration.as_secs_f64() * 1000.0,
            request_bytes = self.request_bytes,
            response_bytes,
            "request"
        );
        if let Some((mut span, sink)) = self.span.take() {
            span.end = SystemTime::now();
            span.status_code = self.code;
            span.flags = flags;
            span.request_size = self.request_bytes;
            span.response_size = response_bytes;
            sink.submit(span);
        }
    }
}

/// A request dropped before its response started (the client went away
/// while the proxy waited upstream) is still counted: code 0, flag DC, as
/// Envoy reports it.
impl Drop for Completion {
    fn drop(&mut self) {
        if !self.recorded {
            self.code = 0;
            self.finish(0, false);
        }
    }
}

/// A response body that counts its bytes and records the request when it
/// ends or is dropped.
pub struct ObservedBody {
    inner: Body,
    bytes: u64,
    completion: Option<Completion>,
}

impl ObservedBody {
    pub fn new(inner: Body, completion: Completion) -> ObservedBody {
        ObservedBody {
            inner,
            bytes: 0,
            completion: Some(completion),
        }
    }

    fn complete(&mut self, complete: bool) {
        if let Some(mut c) = self.completion.take() {
            c.finish(self.bytes, complete);
        }
    }
}

impl HttpBody for ObservedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                } else if let Some(trailers) = frame.trailers_ref()
                    && let Some(c) = this.completion.as_mut()
                    && let Some(status) = crate::http::grpc_status(trailers)
                {
                    c.grpc_status = Some(status);
                }
                if this.inner.is_end_stream() {
                    this.complete(true);
                }
            }
            Poll::Ready(None) => this.complete(true),
            Poll::Ready(Some(Err(_))) => {
                if let Some(c) = this.completion.as_mut()
                    && c.flags == ResponseFlags::None
                {
                    c.flags = ResponseFlags::UpstreamReset;
                }
                this.complete(false);
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for ObservedBody {
    fn drop(&mut self) {
        let complete = self.inner.is_end_stream();
        self.complete(complete);
    }
}
