//! The request attributes authorization looks at, taken once per request
//! from a [`Request`] as borrowed slices and parsed addresses (the one
//! allocation: the `iss/sub` request principal of a request with a JWT).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::request::{Jwt, Request};

pub(crate) struct Attributes<'a> {
    /// Peer identity without `spiffe://`; absent for plaintext.
    pub principal: Option<&'a str>,
    /// From the principal's `/ns/NAME/` part only: Istio reads it from the
    /// peer certificate, so a plaintext request has none.
    pub source_namespace: Option<&'a str>,
    /// From the principal's `/sa/NAME` part.
    pub source_service_account: Option<&'a str>,
    pub source_ip: Option<IpAddr>,
    pub destination_ip: Option<IpAddr>,
    pub destination_port: Option<u16>,
    pub method: Option<&'a str>,
    /// Without the query string and fragment, as Envoy's `url_path`, and
    /// normalized as Istio's default (`BASE`) does; borrowed unless that
    /// changes it.
    pub path: Option<Cow<'a, str>>,
    /// With the query string (`request.headers[:path]`).
    pub full_path: Option<&'a str>,
    pub host: Option<&'a str>,
    pub headers: &'a BTreeMap<String, String>,
    /// The verified JWT (`request.auth.*`), absent without one.
    pub jwt: Option<&'a Jwt>,
    /// `iss/sub` of the JWT (`requestPrincipals`, `request.auth.principal`).
    pub request_principal: Option<String>,
    /// A plain TCP connection: the request carries no HTTP attribute at all
    /// (no method, path, host or header).
    pub tcp: bool,
}

impl<'a> Attributes<'a> {
    pub fn new(request: &'a Request) -> Attributes<'a> {
        let principal = request
            .source
            .principal
            .as_deref()
            .map(|p| p.strip_prefix("spiffe://").unwrap_or(p))
            .filter(|p| !p.is_empty());
        let source_namespace = principal.and_then(|p| identity_part(p, "ns"));
        let http = &request.request;
        let tcp = http.method.is_none()
            && http.path.is_none()
            && http.host.is_none()
            && http.headers.is_empty()
            && http.auth.is_none();
        let full_path = request.request.path.as_deref();
        Attributes {
            principal,
            source_namespace,
            source_service_account: principal.and_then(|p| identity_part(p, "sa")),
            source_ip: parse_ip(request.source.ip.as_deref()),
            destination_ip: parse_ip(request.destination.ip.as_deref()),
            // The port the workload was called on; else the one in the Host header.
            destination_port: request.destination.port.or_else(|| {
                let host = request.request.host.as_deref()?;
                crate::host::split_port(host).1
            }),
            method: request.request.method.as_deref(),
            path: full_path.map(|p| normalize_path(p.split(['?', '#']).next().unwrap_or(p))),
            full_path,
            host: request.request.host.as_deref(),
            headers: &request.request.headers,
            jwt: http.auth.as_ref(),
            request_principal: http.auth.as_ref().and_then(Jwt::principal),
            tcp,
        }
    }

    /// `(namespace, service account)` of the peer identity.
    pub fn service_account(&self) -> Option<(&'a str, &'a str)> {
        self.principal
            .and(self.source_namespace.zip(self.source_service_account))
    }

    /// A request header by (lower-case) name; names are compared
    /// case-insensitively in case the request was written with capitals.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        match self.headers.get(name) {
            Some(v) => Some(v),
            None => self
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str()),
        }
    }
}

/// Istio's default path normalization (`BASE`, Envoy's `normalize_path`):
/// percent-encoded unreserved characters decoded once (`%2e` → `.`, `%61` →
/// `a`; `%2f` and `%5c` stay), backslashes become slashes, and `.`/`..`
/// segments are resolved as RFC 3986 says. Slashes are not merged.
pub(crate) fn normalize_path(path: &str) -> Cow<'_, str> {
    let dot_segment = path.split(['/', '\\']).any(|s| s == "." || s == "..");
    if !dot_segment && !path.contains(['%', '\\']) {
        return Cow::Borrowed(path);
    }
    let bytes = path.as_bytes();
    let mut decoded = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            let unreserved = hex
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~'));
            if let Some(c) = unreserved {
                decoded.push(char::from(c));
                i += 3;
                continue;
            }
        }
        let c = path[i..].chars().next().unwrap_or('/');
        decoded.push(if c == '\\' { '/' } else { c });
        i += c.len_utf8();
    }
    Cow::Owned(remove_dot_segments(&decoded))
}

/// RFC 3986 section 5.2.4, for an absolute path.
fn remove_dot_segments(path: &str) -> String {
    let Some(rest) = path.strip_prefix('/') else {
        return path.to_string();
    };
    let mut out: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for segment in rest.split('/') {
        trailing_slash = false;
        match segment {
            "." => trailing_slash = true,
            ".." => {
                out.pop();
                trailing_slash = true;
            }
            s => out.push(s),
        }
    }
    let mut result = String::with_capacity(path.len());
    result.push('/');
    result.push_str(&out.join("/"));
    if trailing_slash && !result.ends_with('/') {
        result.push('/');
    }
    result
}

/// `cluster.local/ns/default/sa/frontend` → `default` for `ns`, `frontend` for `sa`.
pub(crate) fn identity_part<'a>(principal: &'a str, part: &str) -> Option<&'a str> {
    let mut it = principal.split('/');
    while let Some(s) = it.next() {
        if s == part {
            return it.next().filter(|v| !v.is_empty());
        }
    }
    None
}

/// Accepts `10.0.0.5`, `10.0.0.5:1234` and `[::1]:1234`.
fn parse_ip(s: Option<&str>) -> Option<IpAddr> {
    let s = s?.trim();
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    s.parse::<std::net::SocketAddr>().ok().map(|a| a.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_comes_from_the_principal() {
        let mut r = Request::default();
        r.source.principal = Some("spiffe://cluster.local/ns/foo/sa/bar".into());
        r.source.namespace = Some("other".into());
        let a = Attributes::new(&r);
        assert_eq!(a.principal, Some("cluster.local/ns/foo/sa/bar"));
        assert_eq!(a.source_namespace, Some("foo"));
        assert_eq!(a.source_service_account, Some("bar"));
    }

    #[test]
    fn plaintext_has_no_source_namespace_even_if_declared() {
        let mut r = Request::default();
        r.source.namespace = Some("other".into());
        r.request.path = Some("/a/b?x=1".into());
        let a = Attributes::new(&r);
        assert_eq!(a.principal, None);
        assert_eq!(a.source_namespace, None);
        assert!(!a.tcp);
        assert_eq!(a.path.as_deref(), Some("/a/b"));
        assert_eq!(a.full_path, Some("/a/b?x=1"));
    }
}

#[cfg(test)]
mod normalization_tests {
    use super::normalize_path;

    #[test]
    fn istio_base_normalization() {
        for (raw, want) in [
            ("/a/../b", "/b"),
            ("/public/./data/abc/../xyz", "/public/data/xyz"),
            ("/some%2fdata/%61%62%63", "/some%2fdata/abc"),
            ("/some\\data", "/some/data"),
            ("/a/%2e%2e/admin", "/admin"),
            ("/some//data", "/some//data"),
            ("/a/b/..", "/a/"),
            ("/..", "/"),
            ("/plain/path", "/plain/path"),
            ("/x%", "/x%"),
            ("/caf\u{e9}/%7e", "/caf\u{e9}/~"),
        ] {
            assert_eq!(normalize_path(raw), want, "{raw}");
        }
    }
}
