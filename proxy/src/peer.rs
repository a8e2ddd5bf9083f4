//! Peer metadata exchange: the calling proxy tells the called proxy who the
//! caller is and which service it meant, in one compact header, so the
//! inbound side can fill Istio's `source_*` and `destination_service`
//! labels (Istio's sidecars do the same with their metadata-exchange
//! filter). The inbound side removes the header before the app sees it.
//!
//! Without mTLS the header is the caller's claim: it feeds telemetry only,
//! never authorization. Once mTLS lands, the principal comes from the
//! peer's certificate instead.

use std::collections::BTreeMap;

use http::HeaderValue;

use crate::identity::{UNKNOWN, Workload};

pub const HEADER: &str = "x-loupe-peer";

/// `wl=NAME;ns=NS;sa=SA;app=APP;ver=VER;dst=FQDN` — labels are DNS-ish
/// names, so `;` and `=` never occur in them; other bytes are dropped.
pub fn encode(this: &Workload, destination_service: &str) -> HeaderValue {
    let mut s = String::with_capacity(128);
    for (k, v) in [
        ("wl", &*this.name),
        ("ns", &*this.namespace),
        ("sa", &*this.service_account),
        (
            "app",
            this.labels.get("app").map(String::as_str).unwrap_or(""),
        ),
        (
            "ver",
            this.labels.get("version").map(String::as_str).unwrap_or(""),
        ),
        ("dst", destination_service),
    ] {
        if !s.is_empty() {
            s.push(';');
        }
        s.push_str(k);
        s.push('=');
        s.extend(
            v.chars()
                .filter(|c| c.is_ascii_graphic() && *c != ';' && *c != '='),
        );
    }
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The caller and the service it called, from the header's value.
pub fn decode(value: &str) -> (Workload, String) {
    let mut name = UNKNOWN;
    let mut namespace = UNKNOWN;
    let mut sa = "";
    let mut labels = BTreeMap::new();
    let mut service = UNKNOWN;
    for pair in value.split(';') {
        let Some((k, v)) = pair.split_once('=') else {
            continue;
        };
        if v.is_empty() {
            continue;
        }
        match k {
            "wl" => name = v,
            "ns" => namespace = v,
            "sa" => sa = v,
            "app" => {
                labels.insert("app".to_string(), v.to_string());
            }
            "ver" => {
                labels.insert("version".to_string(), v.to_string());
            }
            "dst" => service = v,
            _ => {}
        }
    }
    (
        Workload::new(name, namespace, sa, labels),
        service.to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_callers_identity() {
        let mut labels = BTreeMap::new();
        labels.insert("app".to_string(), "productpage".to_string());
        labels.insert("version".to_string(), "v1".to_string());
        let w = Workload::new("productpage-v1", "default", "bookinfo-productpage", labels);
        let v = encode(&w, "reviews.default.svc.cluster.local");
        let (back, svc) = decode(v.to_str().unwrap_or_default());
        assert_eq!(back, w);
        assert_eq!(svc, "reviews.default.svc.cluster.local");
        let (unknown, svc) = decode("garbage");
        assert_eq!(&*unknown.name, "unknown");
        assert_eq!(svc, "unknown");
    }
}
