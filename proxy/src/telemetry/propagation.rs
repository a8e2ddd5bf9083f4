//! Trace context propagation: W3C `traceparent` (and `tracestate`), and
//! Zipkin B3 multi-header (`x-b3-*`), which Istio's sample apps forward.
//! The proxy continues the caller's trace when one is present, starts one
//! otherwise, and injects its own span as the parent of the next hop.

use http::{HeaderMap, HeaderValue};
use rand::Rng;

use super::sampling::SpanPolicy;

pub const TRACEPARENT: &str = "traceparent";
pub const B3_TRACE_ID: &str = "x-b3-traceid";
pub const B3_SPAN_ID: &str = "x-b3-spanid";
pub const B3_PARENT_SPAN_ID: &str = "x-b3-parentspanid";
pub const B3_SAMPLED: &str = "x-b3-sampled";

/// The context a span is created in: its trace, its own id, its parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_span_id: Option<[u8; 8]>,
    pub sampled: bool,
}

impl SpanContext {
    /// A new span continuing the trace found in `headers` (and its sampling
    /// decision), or the root of a new trace, sampled as `policy` says.
    pub fn child_of(headers: &HeaderMap, policy: &SpanPolicy) -> SpanContext {
        let mut rng = rand::rng();
        let span_id = nonzero_id::<8>(&mut rng);
        if let Some((trace_id, parent, sampled)) =
            parse_traceparent(headers).or_else(|| parse_b3(headers))
        {
            return SpanContext {
                trace_id,
                span_id,
                parent_span_id: Some(parent),
                sampled,
            };
        }
        SpanContext {
            trace_id: nonzero_id::<16>(&mut rng),
            span_id,
            parent_span_id: None,
            sampled: policy.sample_new_trace(),
        }
    }

    /// Writes this span as the parent for the next hop: always
    /// `traceparent`; B3 headers only when the caller used B3.
    pub fn inject(&self, headers: &mut HeaderMap) {
        let flags = if self.sampled { "01" } else { "00" };
        let tp = format!("00-{}-{}-{flags}", hex(&self.trace_id), hex(&self.span_id));
        if let Ok(v) = HeaderValue::from_str(&tp) {
            headers.insert(TRACEPARENT, v);
        }
        if headers.contains_key(B3_TRACE_ID) {
            let set = |h: &mut HeaderMap, k: &'static str, v: String| {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    h.insert(k, v);
                }
            };
            set(headers, B3_TRACE_ID, hex(&self.trace_id));
            set(headers, B3_SPAN_ID, hex(&self.span_id));
            match self.parent_span_id {
                Some(p) => set(headers, B3_PARENT_SPAN_ID, hex(&p)),
                None => {
                    headers.remove(B3_PARENT_SPAN_ID);
                }
            }
            headers.insert(
                B3_SAMPLED,
                HeaderValue::from_static(if self.sampled { "1" } else { "0" }),
            );
        }
    }
}

fn nonzero_id<const N: usize>(rng: &mut impl Rng) -> [u8; N] {
    loop {
        let id: [u8; N] = rng.random();
        if id.iter().any(|b| *b != 0) {
            return id;
        }
    }
}

/// `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`.
fn parse_traceparent(headers: &HeaderMap) -> Option<([u8; 16], [u8; 8], bool)> {
    let v = headers.get(TRACEPARENT)?.to_str().ok()?.trim();
    let mut parts = v.split('-');
    let version = parts.next()?;
    if version.len() != 2 || version == "ff" {
        return None;
    }
    let trace_id = unhex::<16>(parts.next()?)?;
    let parent = unhex::<8>(parts.next()?)?;
    let flags = unhex::<1>(parts.next()?)?;
    if trace_id == [0; 16] || parent == [0; 8] {
        return None;
    }
    Some((trace_id, parent, flags[0] & 1 == 1))
}

fn parse_b3(headers: &HeaderMap) -> Option<([u8; 16], [u8; 8], bool)> {
    let trace = headers.get(B3_TRACE_ID)?.to_str().ok()?;
    let span = headers.get(B3_SPAN_ID)?.to_str().ok()?;
    // 64-bit B3 trace ids are left-padded to 128 bits, as Zipkin does.
    let trace_id = match trace.len() {
        16 => {
            let low = unhex::<8>(trace)?;
            let mut id = [0; 16];
            id[8..].copy_from_slice(&low);
            id
        }
        _ => unhex::<16>(trace)?,
    };
    let sampled = headers
        .get(B3_SAMPLED)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v != "0");
    Some((trace_id, unhex::<8>(span)?, sampled))
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != N * 2 {
        return None;
    }
    let mut out = [0; N];
    for (i, pair) in s.as_bytes().chunks(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continues_a_w3c_trace_and_injects_itself_as_parent() {
        let mut h = HeaderMap::new();
        h.insert(
            TRACEPARENT,
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        let ctx = SpanContext::child_of(&h, &SpanPolicy::default());
        assert_eq!(hex(&ctx.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            ctx.parent_span_id.map(|p| hex(&p)).as_deref(),
            Some("00f067aa0ba902b7")
        );
        ctx.inject(&mut h);
        let tp = h[TRACEPARENT].to_str().unwrap_or_default().to_string();
        assert_eq!(
            tp,
            format!(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01",
                hex(&ctx.span_id)
            )
        );
    }

    #[test]
    fn a_new_trace_is_sampled_as_the_policy_says_and_a_callers_decision_is_kept() {
        let never = SpanPolicy {
            basis_points: 0,
            report: true,
        };
        let h = HeaderMap::new();
        assert!(!SpanContext::child_of(&h, &never).sampled);
        assert!(SpanContext::child_of(&h, &SpanPolicy::default()).sampled);
        let mut sampled = HeaderMap::new();
        sampled.insert(
            TRACEPARENT,
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        assert!(SpanContext::child_of(&sampled, &never).sampled);
        let mut declined = HeaderMap::new();
        declined.insert(
            TRACEPARENT,
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
        );
        let ctx = SpanContext::child_of(&declined, &SpanPolicy::default());
        assert!(!ctx.sampled);
        let mut next = HeaderMap::new();
        ctx.inject(&mut next);
        assert!(
            next[TRACEPARENT]
                .to_str()
                .unwrap_or_default()
                .ends_with("-00")
        );
    }

    #[test]
    fn starts_a_trace_without_context_and_rejects_garbage() {
        let mut h = HeaderMap::new();
        h.insert(TRACEPARENT, HeaderValue::from_static("00-zz-11-01"));
        let ctx = SpanContext::child_of(&h, &SpanPolicy::default());
        assert!(ctx.parent_span_id.is_none());
        assert_ne!(ctx.trace_id, [0; 16]);
    }

    #[test]
    fn continues_b3_and_keeps_b3_headers_up_to_date() {
        let mut h = HeaderMap::new();
        h.insert(B3_TRACE_ID, HeaderValue::from_static("463ac35c9f6413ad"));
        h.insert(B3_SPAN_ID, HeaderValue::from_static("a2fb4a1d1a96d312"));
        let ctx = SpanContext::child_of(&h, &SpanPolicy::default());
        assert_eq!(hex(&ctx.trace_id), "0000000000000000463ac35c9f6413ad");
        ctx.inject(&mut h);
        assert_eq!(h[B3_PARENT_SPAN_ID], "a2fb4a1d1a96d312");
        assert_eq!(
            h[B3_SPAN_ID].to_str().unwrap_or_default(),
            hex(&ctx.span_id)
        );
        assert!(h.contains_key(TRACEPARENT));
    }
}
