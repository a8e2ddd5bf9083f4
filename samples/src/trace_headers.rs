//! The headers an app must copy from its inbound request to its outbound
//! calls for a trace to span services (Istio's list, W3C and B3).

use hyper::HeaderMap;

pub const PROPAGATED: &[&str] = &[
    "traceparent",
    "tracestate",
    "x-request-id",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "b3",
    "x-ot-span-context",
    "end-user",
];

/// The propagated headers present in `from`.
pub fn extract(from: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in PROPAGATED {
        if let Some(v) = from.get(*name) {
            out.insert(*name, v.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_only_trace_headers() {
        let mut h = HeaderMap::new();
        h.insert("traceparent", "00-abc-def-01".parse().unwrap());
        h.insert("cookie", "secret".parse().unwrap());
        let out = extract(&h);
        assert_eq!(out.get("traceparent").unwrap(), "00-abc-def-01");
        assert!(out.get("cookie").is_none());
    }
}
