//! Istio host names: short names resolve in a namespace (`reviews` in
//! `default` is `reviews.default.svc.cluster.local`), `name.namespace` and
//! `name.namespace.svc` forms complete to the cluster domain, and wildcard
//! hosts (`*.example.com`, `*`) match by suffix.

/// The cluster DNS suffix Istio assumes.
pub const CLUSTER_DOMAIN: &str = "svc.cluster.local";

/// Expands `host` as Istio does for a resource in `namespace`.
///
/// `is_namespace` tells whether a two-label name's second label is a
/// namespace (`reviews.prod`) rather than a domain (`example.com`).
pub fn fqdn(host: &str, namespace: &str, is_namespace: impl Fn(&str) -> bool) -> String {
    let host = host.trim_end_matches('.');
    if host.starts_with('*') {
        return host.to_ascii_lowercase();
    }
    let host = host.to_ascii_lowercase();
    let dots = host.bytes().filter(|b| *b == b'.').count();
    match dots {
        0 => format!("{host}.{namespace}.{CLUSTER_DOMAIN}"),
        1 if host.split('.').nth(1).is_some_and(is_namespace) => {
            format!("{host}.{CLUSTER_DOMAIN}")
        }
        2 if host.ends_with(".svc") => format!("{host}.cluster.local"),
        _ => host,
    }
}

/// Whether the (possibly wildcard) `pattern` matches the concrete `host`.
/// Both must already be fully qualified and lower-case.
pub fn matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some("") => true,
        Some(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
        None => pattern == host,
    }
}

/// Whether two (possibly wildcard) host patterns can match a common host.
pub fn overlaps(a: &str, b: &str) -> bool {
    matches(a, b) || matches(b, a)
}

/// Splits a Gateway server `hosts` entry, `[namespace/]dnsName`, into the
/// namespace whose VirtualServices may bind it (`None` for `*/` or no
/// namespace; `./` is the Gateway's own) and the lower-case host pattern.
pub fn split_gateway_host(entry: &str, gateway_namespace: &str) -> (Option<String>, String) {
    let (namespace, pattern) = match entry.split_once('/') {
        Some(("*", h)) => (None, h),
        Some((".", h)) => (Some(gateway_namespace.to_string()), h),
        Some((ns, h)) => (Some(ns.to_string()), h),
        None => (None, entry),
    };
    (namespace, pattern.to_ascii_lowercase())
}

/// Splits `host:port` (or `[v6]:port`) into host and port.
pub fn split_port(authority: &str) -> (&str, Option<u16>) {
    if let Some(rest) = authority.strip_prefix('[') {
        if let Some((ip, tail)) = rest.split_once(']') {
            return (ip, tail.strip_prefix(':').and_then(|p| p.parse().ok()));
        }
        return (authority, None);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(port) => (host, Some(port)),
            Err(_) => (authority, None),
        },
        _ => (authority, None),
    }
}

/// A DNS-1123 label: 1–63 letters, digits and `-`, starting and ending
/// with a letter or digit (Istio accepts either case in hosts and port names).
pub fn is_dns_label(label: &str) -> bool {
    let b = label.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// A DNS name without wildcards: dot-separated DNS-1123 labels, at most 255
/// characters, an optional trailing dot.
pub fn is_fqdn(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty() && name.len() <= 255 && name.split('.').all(is_dns_label)
}

/// A DNS name whose first label may be a wildcard (`*`, `*.example.com`,
/// `*foo.example.com`), as Istio allows in hosts.
pub fn is_wildcard_domain(name: &str) -> bool {
    let (first, rest) = match name.split_once('.') {
        Some((first, rest)) => (first, Some(rest)),
        None => (name, None),
    };
    let first_ok = match first.strip_prefix('*') {
        Some("") => true,
        Some(tail) => is_dns_label(tail.strip_prefix('-').unwrap_or(tail)),
        None => is_dns_label(first),
    };
    name.len() <= 255 && first_ok && rest.is_none_or(is_fqdn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_expand_in_the_namespace() {
        let ns = |n: &str| n == "default" || n == "prod";
        assert_eq!(
            fqdn("reviews", "default", ns),
            "reviews.default.svc.cluster.local"
        );
        assert_eq!(
            fqdn("reviews.prod", "default", ns),
            "reviews.prod.svc.cluster.local"
        );
        assert_eq!(
            fqdn("reviews.prod.svc", "x", ns),
            "reviews.prod.svc.cluster.local"
        );
        assert_eq!(fqdn("example.com", "default", ns), "example.com");
        assert_eq!(
            fqdn("Reviews", "default", ns),
            "reviews.default.svc.cluster.local"
        );
        assert_eq!(fqdn("*.example.com", "default", ns), "*.example.com");
        assert_eq!(fqdn("*", "default", ns), "*");
    }

    #[test]
    fn wildcards_match_by_suffix() {
        assert!(matches("*.example.com", "a.example.com"));
        assert!(matches("*.example.com", "a.b.example.com"));
        assert!(!matches("*.example.com", "example.com"));
        assert!(matches("*", "anything"));
        assert!(!matches("a.example.com", "b.example.com"));
        assert!(overlaps("*.example.com", "*.a.example.com"));
    }

    #[test]
    fn dns_names() {
        assert!(is_dns_label("http-web"));
        assert!(!is_dns_label("-web") && !is_dns_label("") && !is_dns_label("a_b"));
        assert!(!is_dns_label(&"a".repeat(64)));
        assert!(is_fqdn("api.example.com") && is_fqdn("db") && is_fqdn("a.b."));
        assert!(!is_fqdn("*.example.com") && !is_fqdn("a..b"));
        for ok in ["*", "*.example.com", "*foo.example.com", "example.com"] {
            assert!(is_wildcard_domain(ok), "{ok}");
        }
        for bad in ["a.*.com", "*.*.com", "", "ex ample.com", "**"] {
            assert!(!is_wildcard_domain(bad), "{bad}");
        }
    }

    #[test]
    fn ports_split_off() {
        assert_eq!(split_port("reviews:9080"), ("reviews", Some(9080)));
        assert_eq!(split_port("reviews"), ("reviews", None));
        assert_eq!(split_port("[::1]:80"), ("::1", Some(80)));
        assert_eq!(split_port("::1"), ("::1", None));
    }
}
