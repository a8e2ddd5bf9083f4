//! OTLP/HTTP trace receiver: `POST /v1/traces` with an
//! `ExportTraceServiceRequest` as `application/x-protobuf` or
//! `application/json` (OTLP JSON: lowerCamelCase fields, hex trace/span ids,
//! enums as integers, 64-bit integers as strings or numbers).
//!
//! The body may be gzip-compressed (`Content-Encoding: gzip`), as exporters
//! configured with compression send it; it is inflated up to the same size
//! limit as plain bodies.
//!
//! Answers as the OTLP spec says, once the spans are committed: 200 with an
//! `ExportTraceServiceResponse`,
//! 400 with a `google.rpc.Status` naming what was malformed, 429 with
//! `Retry-After` when the writer is behind, 503 with `Retry-After` while
//! shutting down or when the spans were not committed in time, 413 for
//! too many spans or a body that inflates too far — every body in the
//! encoding of the request.

use axum::Router;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use super::rpc_status::{
    CODE_INVALID_ARGUMENT, CODE_RESOURCE_EXHAUSTED, CODE_UNAVAILABLE, RpcStatus,
};
use super::{
    ExportError, Ingest, RETRY_AFTER, not_yet_written_message, refusal_message,
    too_many_spans_message,
};
use crate::writer::queue::Refused;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

#[derive(Clone)]
struct HttpState {
    ingest: Ingest,
    max_body_bytes: usize,
    body_timeout: Duration,
}

/// The OTLP/HTTP routes, ready to serve. A body must arrive whole within
/// `body_timeout` (a sender trickling it would hold a request slot).
pub fn router(ingest: Ingest, max_body_bytes: usize, body_timeout: Duration) -> Router {
    Router::new()
        .route("/v1/traces", post(export_traces))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(HttpState {
            ingest,
            max_body_bytes,
            body_timeout,
        })
}

async fn export_traces(State(state): State<HttpState>, headers: HeaderMap, body: Body) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type.split(';').next().unwrap_or("").trim();
    let encoding = match media {
        "application/x-protobuf" | "application/protobuf" => Encoding::Protobuf,
        "application/json" => Encoding::Json,
        _ => {
            return plain(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "unsupported Content-Type {content_type:?}: send application/x-protobuf or application/json"
                ),
            );
        }
    };
    let body = match tokio::time::timeout(
        state.body_timeout,
        axum::body::to_bytes(body, state.max_body_bytes),
    )
    .await
    {
        Ok(Ok(body)) => body,
        Ok(Err(error)) => {
            let too_large = std::error::Error::source(&error)
                .is_some_and(|e| e.is::<http_body_util::LengthLimitError>());
            let (http, message) = if too_large {
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "body is over the {}-byte limit: send smaller batches",
                        state.max_body_bytes
                    ),
                )
            } else {
                (
                    StatusCode::BAD_REQUEST,
                    format!("reading the body failed: {error}"),
                )
            };
            return status(encoding, http, CODE_INVALID_ARGUMENT, message, false);
        }
        Err(_) => {
            return status(
                encoding,
                StatusCode::REQUEST_TIMEOUT,
                CODE_INVALID_ARGUMENT,
                format!(
                    "the body did not arrive within {}s",
                    state.body_timeout.as_secs_f64()
                ),
                false,
            );
        }
    };
    let content_encoding = headers.get(header::CONTENT_ENCODING).map(|v| {
        String::from_utf8_lossy(v.as_bytes())
            .trim()
            .to_ascii_lowercase()
    });
    let body = match content_encoding.as_deref() {
        None | Some("") | Some("identity") => body,
        Some("gzip") => match gunzip(&body, state.max_body_bytes) {
            Ok(inflated) => Bytes::from(inflated),
            Err((http, message)) => {
                return status(encoding, http, CODE_INVALID_ARGUMENT, message, false);
            }
        },
        Some(other) => {
            return status(
                encoding,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                CODE_INVALID_ARGUMENT,
                format!("Content-Encoding {other:?} is not supported: send gzip or no compression"),
                false,
            );
        }
    };
    let request = match encoding {
        Encoding::Protobuf => ExportTraceServiceRequest::decode(body.as_ref())
            .map_err(|e| format!("body is not a protobuf ExportTraceServiceRequest: {e}")),
        Encoding::Json => serde_json::from_slice::<ExportTraceServiceRequest>(&body)
            .map_err(|e| format!("body is not an OTLP JSON ExportTraceServiceRequest: {e}")),
    };
    let request = match request {
        Ok(r) => r,
        Err(message) => {
            tracing::warn!(error = %message, bytes = body.len(), "malformed OTLP/HTTP export refused");
            return status(
                encoding,
                StatusCode::BAD_REQUEST,
                CODE_INVALID_ARGUMENT,
                message,
                false,
            );
        }
    };
    match state.ingest.export(&request).await {
        Ok(response) => {
            let bytes = match encoding {
                Encoding::Protobuf => response.encode_to_vec(),
                // `{}` rather than `{"partialSuccess":null}` for full success.
                Encoding::Json if response.partial_success.is_none() => b"{}".to_vec(),
                Encoding::Json => serde_json::to_vec(&response).unwrap_or_else(|_| b"{}".to_vec()),
            };
            with_type(StatusCode::OK, encoding, bytes, false)
        }
        Err(ExportError::TooManySpans { spans, max }) => status(
            encoding,
            StatusCode::PAYLOAD_TOO_LARGE,
            CODE_INVALID_ARGUMENT,
            too_many_spans_message(spans, max),
            false,
        ),
        Err(ExportError::NotYetWritten { waited }) => status(
            encoding,
            StatusCode::SERVICE_UNAVAILABLE,
            CODE_UNAVAILABLE,
            not_yet_written_message(waited),
            true,
        ),
        Err(ExportError::Refused(refused)) => {
            let (http, code) = match refused {
                Refused::Full { .. } => (StatusCode::TOO_MANY_REQUESTS, CODE_RESOURCE_EXHAUSTED),
                Refused::Closed => (StatusCode::SERVICE_UNAVAILABLE, CODE_UNAVAILABLE),
            };
            status(encoding, http, code, refusal_message(refused), true)
        }
    }
}

/// Inflates a gzip body, refusing one that inflates past `limit` bytes.
fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, (StatusCode, String)> {
    use std::io::Read;
    let mut inflated = Vec::with_capacity(body.len() * 4);
    flate2::read::GzDecoder::new(body)
        .take(limit as u64 + 1)
        .read_to_end(&mut inflated)
        .map_err(|e| {
            (
                StatusCode::BAD_REQUEST,
                format!("body is not valid gzip: {e}"),
            )
        })?;
    if inflated.len() > limit {
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("gzip body inflates past the {limit}-byte limit: send smaller batches"),
        ));
    }
    Ok(inflated)
}

fn status(
    encoding: Encoding,
    http: StatusCode,
    code: i32,
    message: String,
    retry: bool,
) -> Response {
    let status = RpcStatus {
        code,
        message,
        details: vec![],
    };
    let bytes = match encoding {
        Encoding::Protobuf => status.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(&status).unwrap_or_default(),
    };
    with_type(http, encoding, bytes, retry)
}

fn with_type(http: StatusCode, encoding: Encoding, body: Vec<u8>, retry: bool) -> Response {
    let mut response = (http, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(encoding.content_type()),
    );
    if retry {
        headers.insert(
            header::RETRY_AFTER,
            HeaderValue::from(RETRY_AFTER.as_secs()),
        );
    }
    response
}

fn plain(http: StatusCode, message: String) -> Response {
    (http, message).into_response()
}
