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
}

impl Completion {
    fn finish(self, response_bytes: u64, complete: bool) {
        let flags = match (complete, self.flags) {
            (false, ResponseFlags::None) => ResponseFlags::DownstreamConnectionTermination,
            (_, f) => f,
        };
        self.edge.record(&Observation {
            code: self.code,
            flags,
            duration: self.started.elapsed(),
            request_bytes: self.request_bytes,
            response_bytes,
        });
        if let Some((mut span, sink)) = self.span {
            span.end = SystemTime::now();
            span.status_code = self.code;
            span.flags = flags;
            span.request_size = self.request_bytes;
            span.response_size = response_bytes;
            sink.submit(span);
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
        if let Some(c) = self.completion.take() {
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
