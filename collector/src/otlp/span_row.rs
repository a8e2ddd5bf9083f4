//! OTLP spans → rows of the `spans` table.
//!
//! Attribute layout of a row's `attributes` JSON object (one flat object, so
//! the console shows it as a tag list the way Jaeger does):
//! - span attributes under their own keys (`http.method`, …), values as JSON
//!   (strings, numbers, booleans, arrays; a kvlist becomes an object; bytes
//!   become a lowercase hex string);
//! - resource attributes under `resource.` + key (`resource.service.name`, …);
//! - the instrumentation scope as `otel.scope.name` / `otel.scope.version`;
//! - the status message as `otel.status_description` (when not empty);
//! - span events as `otel.events`: `[{"name", "time_unix_nano", "attributes"}]`
//!   (when there are any).

use chrono::{DateTime, Utc};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::{Map, Value};

/// `Status.code` of an error span (OTLP `STATUS_CODE_ERROR`).
pub const STATUS_CODE_ERROR: i16 = 2;

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
    pub attributes: Value,
}

impl SpanRow {
    pub fn is_error(&self) -> bool {
        self.status_code == STATUS_CODE_ERROR
    }

    pub fn end_time(&self) -> DateTime<Utc> {
        self.start_time + chrono::Duration::microseconds(self.duration_us)
    }
}

/// The rows of one export request, and what had to be rejected.
#[derive(Debug, Default)]
pub struct Converted {
    pub rows: Vec<SpanRow>,
    pub rejected: usize,
    /// Why the first rejected span was rejected (for `partial_success`).
    pub first_error: Option<String>,
}

/// Converts every span of `request`. Spans without a valid trace id, span id
/// or start time cannot be stored or found again: they are rejected (and
/// reported back to the sender through OTLP's `partial_success`).
pub fn convert(request: &ExportTraceServiceRequest) -> Converted {
    let mut out = Converted::default();
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
                    Some(any_value::Value::StringValue(s)) if !s.is_empty() => Some(s.clone()),
                    _ => None,
                },
            )
            .unwrap_or_else(|| "unknown".to_string());
        // Built once per resource and scope, copied into each span's attributes.
        let resource_entries: Vec<(String, Value)> = resource_attrs
            .iter()
            .map(|kv| (format!("resource.{}", kv.key), any_json(&kv.value)))
            .collect();
        for scope_spans in &resource_spans.scope_spans {
            let mut shared = resource_entries.clone();
            if let Some(scope) = &scope_spans.scope {
                if !scope.name.is_empty() {
                    shared.push(("otel.scope.name".into(), scope.name.clone().into()));
                }
                if !scope.version.is_empty() {
                    shared.push(("otel.scope.version".into(), scope.version.clone().into()));
                }
            }
            for span in &scope_spans.spans {
                match row(span, &service, &shared) {
                    Ok(row) => out.rows.push(row),
                    Err(why) => {
                        out.rejected += 1;
                        out.first_error.get_or_insert(why);
                    }
                }
            }
        }
    }
    out
}

fn row(span: &Span, service: &str, shared: &[(String, Value)]) -> Result<SpanRow, String> {
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

    let mut attributes = Map::new();
    for kv in &span.attributes {
        attributes.insert(kv.key.clone(), any_json(&kv.value));
    }
    for (key, value) in shared {
        attributes.insert(key.clone(), value.clone());
    }
    if !status_message.is_empty() {
        attributes.insert("otel.status_description".into(), status_message.into());
    }
    if !span.events.is_empty() {
        let events = span
            .events
            .iter()
            .map(|e| {
                serde_json::json!({
                    "name": e.name,
                    "time_unix_nano": e.time_unix_nano,
                    "attributes": kv_object(&e.attributes),
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
        operation: span.name.clone(),
        kind: span.kind as i16,
        start_time,
        duration_us,
        status_code,
        attributes: Value::Object(attributes),
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

fn kv_object(kvs: &[KeyValue]) -> Value {
    Value::Object(
        kvs.iter()
            .map(|kv| (kv.key.clone(), any_json(&kv.value)))
            .collect(),
    )
}

fn any_json(value: &Option<AnyValue>) -> Value {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        None => Value::Null,
        Some(any_value::Value::StringValue(s)) => Value::String(s.clone()),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
        Some(any_value::Value::IntValue(i)) => Value::from(*i),
        Some(any_value::Value::DoubleValue(d)) => serde_json::Number::from_f64(*d)
            .map_or_else(|| Value::String(d.to_string()), Value::Number),
        Some(any_value::Value::ArrayValue(a)) => Value::Array(
            a.values
                .iter()
                .map(|v| any_json(&Some(v.clone())))
                .collect(),
        ),
        Some(any_value::Value::KvlistValue(kv)) => kv_object(&kv.values),
        Some(any_value::Value::BytesValue(b)) => Value::String(hex(b)),
        #[allow(unreachable_patterns)]
        Some(_) => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let out = convert(&request(
            vec![span],
            vec![kv(
                "service.name",
                any_value::Value::StringValue("reviews".into()),
            )],
        ));
        assert_eq!(out.rejected, 0);
        let row = &out.rows[0];
        assert_eq!(row.trace_id, "ab".repeat(16));
        assert_eq!(row.span_id, "0102030405060708");
        assert_eq!(row.parent_span_id, None, "all-zero parent is a root");
        assert_eq!(row.service, "reviews");
        assert_eq!(row.operation, "GET /reviews");
        assert_eq!(row.duration_us, 2_500);
        assert!(row.is_error());
        assert_eq!(row.attributes["http.status_code"], 503);
        assert_eq!(row.attributes["retry"], true);
        assert_eq!(row.attributes["resource.service.name"], "reviews");
        assert_eq!(row.attributes["otel.scope.name"], "loupe-proxy");
        assert_eq!(row.attributes["otel.status_description"], "upstream reset");
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
        let out = convert(&request(vec![good, bad], vec![]));
        assert_eq!(out.rows.len(), 1);
        assert_eq!(out.rows[0].service, "unknown");
        assert_eq!(out.rows[0].duration_us, 0, "end before start is clamped");
        assert_eq!(out.rejected, 1);
        assert!(out.first_error.unwrap().contains("traceId"));
    }
}
