//! Istio's ALPN values for mesh traffic, so the inbound side tells mesh
//! mTLS apart from an application's own TLS.

/// HTTP/2 between sidecars.
pub const ISTIO_H2: &[u8] = b"istio-h2";
/// HTTP/1.1 between sidecars.
pub const ISTIO_HTTP11: &[u8] = b"istio-http/1.1";
/// Opaque TCP between sidecars.
pub const ISTIO: &[u8] = b"istio";

/// What the inbound side accepts, most preferred first.
pub fn server() -> Vec<Vec<u8>> {
    vec![
        ISTIO_H2.to_vec(),
        ISTIO_HTTP11.to_vec(),
        ISTIO.to_vec(),
        b"h2".to_vec(),
        b"http/1.1".to_vec(),
    ]
}

/// Whether the negotiated protocol is HTTP/2.
pub fn is_h2(negotiated: Option<&[u8]>) -> bool {
    matches!(negotiated, Some(p) if p == ISTIO_H2 || p == b"h2")
}
