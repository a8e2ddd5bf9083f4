//! What one span, resource or request may make the collector hold
//! ([`SpanLimits`]), and the copying out of a request that applies them
//! and counts what it cut ([`Cleaner`]).

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use serde_json::{Map, Value};

use super::span_row::hex;

/// What one span, resource or request may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanLimits {
    /// Attributes kept per span, per resource and per event.
    pub max_attributes: usize,
    /// Events kept per span.
    pub max_events: usize,
    /// Bytes kept of any one string (key or value); cut at a character boundary.
    pub max_value_bytes: usize,
    /// Spans one export request may carry; a larger request is refused.
    pub max_spans_per_request: usize,
}

impl Default for SpanLimits {
    fn default() -> Self {
        SpanLimits {
            max_attributes: 128,
            max_events: 128,
            max_value_bytes: 4 * 1024,
            max_spans_per_request: 10_000,
        }
    }
}

/// Applies [`SpanLimits`] to what it copies out of a request, and counts.
pub(crate) struct Cleaner {
    pub(crate) limits: SpanLimits,
    pub(crate) dropped: usize,
    pub(crate) truncated: usize,
}

impl Cleaner {
    /// `s` without U+0000, cut at `max_value_bytes` (on a character boundary).
    pub(crate) fn text(&mut self, s: &str) -> String {
        self.text_within(s, self.limits.max_value_bytes)
    }

    /// `s` without U+0000, cut at `max` bytes (on a character boundary).
    pub(crate) fn text_within(&mut self, s: &str, max: usize) -> String {
        let s = if s.len() > max {
            self.truncated += 1;
            &s[..floor_char_boundary(s, max)]
        } else {
            s
        };
        if s.contains('\0') {
            s.replace('\0', "")
        } else {
            s.to_string()
        }
    }

    /// The first `max_attributes` of `kvs` as an object, keys prefixed.
    pub(crate) fn object(&mut self, kvs: &[KeyValue], prefix: &str) -> Map<String, Value> {
        let kept = kvs.len().min(self.limits.max_attributes);
        self.dropped += kvs.len() - kept;
        kvs[..kept]
            .iter()
            .map(|kv| {
                let key = self.text(&kv.key);
                let key = if prefix.is_empty() {
                    key
                } else {
                    format!("{prefix}{key}")
                };
                (key, self.any(kv.value.as_ref()))
            })
            .collect()
    }

    fn any(&mut self, value: Option<&AnyValue>) -> Value {
        match value.and_then(|v| v.value.as_ref()) {
            None => Value::Null,
            Some(any_value::Value::StringValue(s)) => Value::String(self.text(s)),
            Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
            Some(any_value::Value::IntValue(i)) => Value::from(*i),
            Some(any_value::Value::DoubleValue(d)) => serde_json::Number::from_f64(*d)
                .map_or_else(|| Value::String(d.to_string()), Value::Number),
            Some(any_value::Value::ArrayValue(a)) => {
                Value::Array(a.values.iter().map(|v| self.any(Some(v))).collect())
            }
            Some(any_value::Value::KvlistValue(kv)) => Value::Object(self.object(&kv.values, "")),
            Some(any_value::Value::BytesValue(b)) => {
                let max = self.limits.max_value_bytes / 2;
                if b.len() > max {
                    self.truncated += 1;
                }
                Value::String(hex(&b[..b.len().min(max)]))
            }
            #[allow(unreachable_patterns)]
            Some(_) => Value::Null,
        }
    }
}

/// The largest index `<= max` on a character boundary of `s`.
fn floor_char_boundary(s: &str, max: usize) -> usize {
    (0..=max.min(s.len()))
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0)
}
