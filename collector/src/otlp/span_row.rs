//! OTLP spans → rows of the `spans` table, and the resources they share.
//!
//! Attribute layout of a row's `attributes` JSON object (one flat object, so
//! the console shows it as a tag list the way Jaeger does):
//! - span attributes under their own keys (`http.method`, …), values as JSON
//!   (strings, numbers, booleans, arrays; a kvlist becomes an object; bytes
//!   become a lowercase hex string);
//! - the status message as `otel.status_description` (when not empty);
//! - span events as `otel.events`: `[{"name", "time_unix_nano", "attributes"}]`
//!   (when there are any).
//!
//! What a resource says is the same for every span under it, and so is what
//! an instrumentation scope says: each is stored once, as a
//! [`SpanResource`] (a row of `span_resources`) keyed by a hash of its
//! content — resource attributes under `resource.` + key
//! (`resource.service.name`, …), a scope as `otel.scope.name` /
//! `otel.scope.version` — and a span names its two rows (`resource_id`,
//! `scope_id`). The view `spans_with_resource` merges them back into
//! `attributes`, giving the flat object above plus those keys. Kept apart,
//! neither is ever copied per span or per scope: a request with one large
//! resource and many scopes or spans holds it once. The one resource value
//! copied into every span, `service.name` (the `service` column), is cut at
//! [`MAX_SERVICE_BYTES`].
//!
//! Bounds (what one request may make the collector hold): at most
//! [`SpanLimits::max_attributes`] attributes per span, resource or event (the
//! OpenTelemetry SDKs' default of 128; the rest are dropped), at most
//! `max_events` events per span, and every string (key or value) cut at
//! `max_value_bytes` (4 KiB); each dropped attribute or event and each cut
//! string is counted. U+0000 is removed from every string: Postgres cannot
//! store it in `text` or `jsonb`, and one such string would make it refuse
//! a whole COPY batch.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::limits::Cleaner;
pub use super::limits::SpanLimits;

/// `Status.code` of an error span (OTLP `STATUS_CODE_ERROR`).
pub const STATUS_CODE_ERROR: i16 = 2;

/// Bytes kept of `service.name`, which every span's row repeats.
pub const MAX_SERVICE_BYTES: usize = 256;

/// One row of `spans`.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRow {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub service: String,
    pub operation: String,
    pub kind: i16,
    pub start_time: DateTime<Utc>,
    pub duration_us: i64,
    pub status_code: i16,
    /// The span's own attributes, as JSON object text (see the module doc).
    pub attributes: String,
    /// The resource the span was sent under, shared by its siblings.
    pub resource: Option<Arc<SpanResource>>,
    /// Its instrumentation scope, shared likewise.
    pub scope: Option<Arc<SpanResource>>,
}

/// The attributes of one resource or one scope (a row of `span_resources`).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SpanResource {
    /// Hex of the first 16 bytes of the SHA-256 of `attributes`.
    pub id: String,
    /// JSON object text: `resource.<key>`…, or `otel.scope.name` and `otel.scope.version`.
    pub attributes: String,
}

impl SpanResource {
    fn new(attributes: String) -> Self {
        let digest = Sha256::digest(attributes.as_bytes());
        SpanResource {
            id: hex(&digest[..16]),
            attributes,
        }
    }
}

impl SpanRow {
    pub fn is_error(&self) -> bool {
        self.status_code == STATUS_CODE_ERROR
    }

    pub fn end_time(&self) -> DateTime<Utc> {
        self.start_time + chrono::Duration::microseconds(self.duration_us)
    }

    /// The memory the row holds, roughly (its resource and scope not
    /// included: they are shared, and counted once per request).
    pub fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.trace_id.len()
            + self.span_id.len()
            + self.parent_span_id.as_ref().map_or(0, String::len)
            + self.service.len()
            + self.operation.len()
            + self.attributes.len()
    }
}

/// The rows of one export request, and what had to be rejected or cut.
#[derive(Debug, Default)]
pub struct Converted {
    pub rows: Vec<SpanRow>,
    pub rejected: usize,
    /// Why the first rejected span was rejected (for `partial_success`).
    pub first_error: Option<String>,
    /// Attributes and events dropped for the count limits.
    pub dropped_attributes: usize,
    /// Strings cut at `max_value_bytes`.
    pub truncated_values: usize,
    /// Memory held by the rows and their (distinct) resources.
    pub bytes: usize,
}

/// The spans `request` carries.
pub fn span_count(request: &ExportTraceServiceRequest) -> usize {
    request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum()
}

/// Converts every span of `request`. Spans without a valid trace id, span id
/// or start time cannot be stored or found again: they are rejected (and
/// reported back to the sender through OTLP's `partial_success`).
pub fn convert(request: &ExportTraceServiceRequest, limits: &SpanLimits) -> Converted {
    let mut out = Converted::default();
    let mut cleaner = Cleaner {
        limits: *limits,
        dropped: 0,
        truncated: 0,
    };
    // One `SpanResource` per distinct content in the request.
    let mut shared = Shared::default();
    for resource_spans in &request.resource_spans {
        let resource_attrs: &[KeyValue] = resource_spans
            .resource
            .as_ref()
            .map(|r| r.attributes.as_slice())
            .unwrap_or(&[]);
        let service = resource_attrs
            .iter()
            .find(|kv| kv.key == "service.name")
            .and_then(
                |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(any_value::Value::StringValue(s)) if !s.is_empty() => {
                        Some(cleaner.text_within(s, MAX_SERVICE_BYTES))
                    }
                    _ => None,
                },
            )
            .unwrap_or_else(|| "unknown".to_string());
        let resource = shared.get(cleaner.object(resource_attrs, "resource."));
        for scope_spans in &resource_spans.scope_spans {
            if scope_spans.spans.is_empty() {
                continue;
            }
            let mut scope_attrs = Map::new();
            if let Some(scope) = &scope_spans.scope {
                if !scope.name.is_empty() {
                    scope_attrs.insert("otel.scope.name".into(), cleaner.text(&scope.name).into());
                }
                if !scope.version.is_empty() {
                    scope_attrs.insert(
                        "otel.scope.version".into(),
                        cleaner.text(&scope.version).into(),
                    );
                }
            }
            let scope = shared.get(scope_attrs);
            for span in &scope_spans.spans {
                match row(span, &service, &resource, &scope, &mut cleaner) {
                    Ok(row) => {
                        out.bytes += row.size_bytes();
                        out.rows.push(row);
                    }
                    Err(why) => {
                        out.rejected += 1;
                        out.first_error.get_or_insert(why);
                    }
                }
            }
        }
    }
    out.bytes += shared.bytes();
    out.dropped_attributes = cleaner.dropped;
    out.truncated_values = cleaner.truncated;
    out
}

/// The resources and scopes of one request, one `Arc` per distinct content.
#[derive(Default)]
struct Shared {
    by_content: HashMap<String, Arc<SpanResource>>,
}

impl Shared {
    fn get(&mut self, attributes: Map<String, Value>) -> Option<Arc<SpanResource>> {
        if attributes.is_empty() {
            return None;
        }
        let text = Value::Object(attributes).to_string();
        Some(
            self.by_content
                .entry(text)
                .or_insert_with_key(|text| Arc::new(SpanResource::new(text.clone())))
                .clone(),
        )
    }

    /// What they hold (the key and the value each hold the text).
    fn bytes(&self) -> usize {
        self.by_content
            .values()
            .map(|r| r.id.len() + 2 * r.attributes.len())
            .sum()
    }
}

fn row(
    span: &Span,
    service: &str,
    resource: &Option<Arc<SpanResource>>,
    scope: &Option<Arc<SpanResource>>,
    cleaner: &mut Cleaner,
) -> Result<SpanRow, String> {
    let trace_id = valid_id(&span.trace_id, 16)
        .ok_or_else(|| format!("span {:?}: traceId must be 16 non-zero bytes", span.name))?;
    let span_id = valid_id(&span.span_id, 8)
        .ok_or_else(|| format!("span {:?}: spanId must be 8 non-zero bytes", span.name))?;
    // An empty or all-zero parent means "root" in OTLP.
    let parent_span_id = match span.parent_span_id.len() {
        0 => None,
        8 => valid_id(&span.parent_span_id, 8),
        _ => {
            return Err(format!(
                "span {:?}: parentSpanId must be empty or 8 bytes",
                span.name
            ));
        }
    };
    let start_nanos = i64::try_from(span.start_time_unix_nano)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("span {:?}: startTimeUnixNano is missing", span.name))?;
    let start_time = DateTime::from_timestamp_nanos(start_nanos);
    let duration_us = (span
        .end_time_unix_nano
        .saturating_sub(span.start_time_unix_nano)
        / 1_000) as i64;
    let (status_code, status_message) = span
        .status
        .as_ref()
        .map(|s| (s.code as i16, s.message.as_str()))
        .unwrap_or((0, ""));

    let mut attributes = cleaner.object(&span.attributes, "");
    if !status_message.is_empty() {
        attributes.insert(
            "otel.status_description".into(),
            cleaner.text(status_message).into(),
        );
    }
    if !span.events.is_empty() {
        let kept = span.events.len().min(cleaner.limits.max_events);
        cleaner.dropped += span.events.len() - kept;
        let events = span.events[..kept]
            .iter()
            .map(|e| {
                serde_json::json!({
                    "name": cleaner.text(&e.name),
                    "time_unix_nano": e.time_unix_nano,
                    "attributes": Value::Object(cleaner.object(&e.attributes, "")),
                })
            })
            .collect();
        attributes.insert("otel.events".into(), Value::Array(events));
    }

    Ok(SpanRow {
        trace_id,
        span_id,
        parent_span_id,
        service: service.to_string(),
        operation: cleaner.text(&span.name),
        kind: span.kind as i16,
        start_time,
        duration_us,
        status_code,
        attributes: Value::Object(attributes).to_string(),
        resource: resource.clone(),
        scope: scope.clone(),
    })
}

/// Lowercase hex of an id of `len` bytes, `None` if the length is wrong or
/// every byte is zero (both invalid per the OTLP spec).
fn valid_id(bytes: &[u8], len: usize) -> Option<String> {
    if bytes.len() != len || bytes.iter().all(|b| *b == 0) {
        return None;
    }
    Some(hex(bytes))
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::AnyValue;
    use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Status};

    fn kv(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn request(spans: Vec<Span>, resource: Vec<KeyValue>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: resource,
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "loupe-proxy".into(),
                        ..Default::default()
                    }),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn converts_ids_service_duration_status_and_attribute_layout() {
        let span = Span {
            trace_id: vec![0xab; 16],
            span_id: vec![1, 2, 3, 4, 5, 6, 7, 8],
            parent_span_id: vec![0; 8],
            name: "GET /reviews".into(),
            kind: 2,
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_000_002_500_000,
            attributes: vec![
                kv("http.status_code", any_value::Value::IntValue(503)),
                kv("retry", any_value::Value::BoolValue(true)),
            ],
            status: Some(Status {
                code: 2,
                message: "upstream reset".into(),
            }),
            ..Default::default()
        };
        let out = convert(
            &request(
                vec![span],
                vec![kv(
                    "service.name",
                    any_value::Value::StringValue("reviews".into()),
                )],
            ),
            &SpanLimits::default(),
        );
        assert_eq!(out.rejected, 0);
        let row = &out.rows[0];
        assert_eq!(row.trace_id, "ab".repeat(16));
        assert_eq!(row.span_id, "0102030405060708");
        assert_eq!(row.parent_span_id, None, "all-zero parent is a root");
        assert_eq!(row.service, "reviews");
        assert_eq!(row.operation, "GET /reviews");
        assert_eq!(row.duration_us, 2_500);
        assert!(row.is_error());
        let attributes = json(&row.attributes);
        assert_eq!(attributes["http.status_code"], 503);
        assert_eq!(attributes["retry"], true);
        assert_eq!(attributes["otel.status_description"], "upstream reset");
        let resource = json(&row.resource.as_ref().unwrap().attributes);
        assert_eq!(resource["resource.service.name"], "reviews");
        let scope = json(&row.scope.as_ref().unwrap().attributes);
        assert_eq!(scope["otel.scope.name"], "loupe-proxy");
        assert!(
            attributes.get("resource.service.name").is_none(),
            "stored once, apart"
        );
    }

    #[test]
    fn missing_service_name_is_unknown_and_bad_ids_are_rejected() {
        let good = Span {
            trace_id: vec![1; 16],
            span_id: vec![1; 8],
            start_time_unix_nano: 1,
            end_time_unix_nano: 0,
            ..Default::default()
        };
        let bad = Span {
            trace_id: vec![1; 3],
            ..good.clone()
        };
        let out = convert(&request(vec![good, bad], vec![]), &SpanLimits::default());
        assert_eq!(out.rows.len(), 1);
        assert_eq!(out.rows[0].service, "unknown");
        assert_eq!(out.rows[0].duration_us, 0, "end before start is clamped");
        assert_eq!(out.rejected, 1);
        assert!(out.first_error.unwrap().contains("traceId"));
    }

    fn json(text: &str) -> Value {
        serde_json::from_str(text).expect("valid JSON")
    }

    fn some_span() -> Span {
        Span {
            trace_id: vec![1; 16],
            span_id: vec![1; 8],
            start_time_unix_nano: 1,
            ..Default::default()
        }
    }

    #[test]
    fn attributes_past_the_limit_are_dropped_and_long_values_cut_and_counted() {
        let mut span = some_span();
        span.attributes = (0..200)
            .map(|i| kv(&format!("k{i:03}"), any_value::Value::IntValue(i)))
            .collect();
        // 4095 ASCII bytes then a 2-byte character: the cut falls inside it.
        let long = format!("{}é{}", "a".repeat(4095), "b".repeat(10_000));
        span.attributes[0] = kv("long", any_value::Value::StringValue(long));
        span.events = (0..130)
            .map(|_| opentelemetry_proto::tonic::trace::v1::span::Event::default())
            .collect();
        let out = convert(&request(vec![span], vec![]), &SpanLimits::default());
        let attributes = json(&out.rows[0].attributes);
        // 128 attributes, plus otel.events.
        assert_eq!(attributes.as_object().unwrap().len(), 129);
        assert!(attributes.get("k127").is_some() && attributes.get("k128").is_none());
        assert_eq!(attributes["long"].as_str().unwrap(), "a".repeat(4095));
        assert_eq!(attributes["otel.events"].as_array().unwrap().len(), 128);
        assert_eq!(out.dropped_attributes, 72 + 2);
        assert_eq!(out.truncated_values, 1);
    }

    #[test]
    fn nul_is_removed_from_every_string() {
        let mut span = some_span();
        span.name = "GET /x\u{0}".into();
        span.attributes = vec![kv(
            "k\u{0}",
            any_value::Value::StringValue("v\u{0}v".into()),
        )];
        let out = convert(
            &request(
                vec![span],
                vec![kv("host", any_value::Value::StringValue("h\u{0}".into()))],
            ),
            &SpanLimits::default(),
        );
        let row = &out.rows[0];
        assert_eq!(row.operation, "GET /x");
        assert_eq!(json(&row.attributes)["k"], "vv");
        assert!(!row.attributes.contains("\\u0000"), "{}", row.attributes);
        let resource = &row.resource.as_ref().unwrap().attributes;
        assert_eq!(json(resource)["resource.host"], "h");
    }

    #[test]
    fn one_resource_is_held_once_however_many_spans_share_it() {
        let big = "x".repeat(4000);
        let resource = (0..100)
            .map(|i| kv(&format!("r{i}"), any_value::Value::StringValue(big.clone())))
            .collect();
        let spans = (0..1000u64)
            .map(|i| Span {
                span_id: (i + 1).to_be_bytes().to_vec(),
                ..some_span()
            })
            .collect();
        let out = convert(&request(spans, resource), &SpanLimits::default());
        assert_eq!(out.rows.len(), 1000);
        let first = out.rows[0].resource.as_ref().unwrap();
        assert!(
            out.rows
                .iter()
                .all(|r| Arc::ptr_eq(r.resource.as_ref().unwrap(), first))
        );
        // 400 KB of resource (held as key and value) + 1000 small rows,
        // not 1000 copies (400 MB).
        assert!(out.bytes < 2_000_000, "{} bytes", out.bytes);
    }

    #[test]
    fn many_scopes_under_one_large_resource_do_not_copy_it() {
        let big = "x".repeat(4000);
        let attributes = (0..100)
            .map(|i| kv(&format!("r{i}"), any_value::Value::StringValue(big.clone())))
            .collect();
        let scope_spans = (0..1000u64)
            .map(|i| ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: format!("scope-{i}"),
                    ..Default::default()
                }),
                spans: vec![Span {
                    span_id: (i + 1).to_be_bytes().to_vec(),
                    ..some_span()
                }],
                ..Default::default()
            })
            .collect();
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes,
                    ..Default::default()
                }),
                scope_spans,
                ..Default::default()
            }],
        };
        let out = convert(&request, &SpanLimits::default());
        assert_eq!(out.rows.len(), 1000);
        // One 400 KB resource, a thousand small scopes: not 400 MB.
        assert!(out.bytes < 2_000_000, "{} bytes", out.bytes);
    }

    #[test]
    fn the_service_name_every_row_repeats_is_cut_short() {
        let long = "s".repeat(10_000);
        let out = convert(
            &request(
                vec![some_span()],
                vec![kv("service.name", any_value::Value::StringValue(long))],
            ),
            &SpanLimits::default(),
        );
        assert_eq!(out.rows[0].service.len(), MAX_SERVICE_BYTES);
    }
}
