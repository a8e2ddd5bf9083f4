//! Value matchers of AuthorizationPolicy fields, compiled once per policy:
//! Istio's string forms (`exact`, `prefix*`, `*suffix`, `*`), path
//! templates (`{*}`, `{**}`), ports, and IP blocks (CIDRs or single IPs).
//! Matching borrows the request's attributes and allocates nothing.

use std::net::IpAddr;

/// One compiled value of a field.
pub(crate) trait ValueMatch {
    type Attr<'a>: Copy;
    fn matches(&self, attr: Self::Attr<'_>) -> bool;
}

/// A field and its `not` twin: `values` matches when any value matches (an
/// empty list does not constrain); `not_values` when none does. An absent
/// attribute matches no value, so it fails `values` and passes `not_values`
/// (a plaintext request has no principal: `notPrincipals: ["x"]` holds,
/// `principals: ["*"]` does not).
#[derive(Clone, Debug)]
pub(crate) struct Field<M> {
    pub values: Box<[M]>,
    pub not_values: Box<[M]>,
}

impl<M> Default for Field<M> {
    fn default() -> Self {
        Field {
            values: Box::new([]),
            not_values: Box::new([]),
        }
    }
}

impl<M: ValueMatch> Field<M> {
    pub fn new(values: &[String], not_values: &[String], compile: impl Fn(&str) -> M) -> Self {
        Field {
            values: values.iter().map(|v| compile(v)).collect(),
            not_values: not_values.iter().map(|v| compile(v)).collect(),
        }
    }

    pub fn is_unconstrained(&self) -> bool {
        self.values.is_empty() && self.not_values.is_empty()
    }

    pub fn matches(&self, attr: Option<M::Attr<'_>>) -> bool {
        let any = |list: &[M]| attr.is_some_and(|a| list.iter().any(|m| m.matches(a)));
        (self.values.is_empty() || any(&self.values)) && !any(&self.not_values)
    }
}

/// Istio's string value: `*` (present), `prefix*`, `*suffix`, or exact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StrMatch {
    Any,
    Exact(Box<str>),
    Prefix(Box<str>),
    Suffix(Box<str>),
}

impl StrMatch {
    pub fn new(value: &str) -> StrMatch {
        if value == "*" {
            StrMatch::Any
        } else if let Some(suffix) = value.strip_prefix('*') {
            // Istio checks the leading `*` first: `*foo*` is the suffix `foo*`.
            StrMatch::Suffix(suffix.into())
        } else if let Some(prefix) = value.strip_suffix('*') {
            StrMatch::Prefix(prefix.into())
        } else {
            StrMatch::Exact(value.into())
        }
    }
}

impl ValueMatch for StrMatch {
    type Attr<'a> = &'a str;
    fn matches(&self, s: &str) -> bool {
        match self {
            StrMatch::Any => true,
            StrMatch::Exact(v) => s == &**v,
            StrMatch::Prefix(p) => s.starts_with(&**p),
            StrMatch::Suffix(p) => s.ends_with(&**p),
        }
    }
}

/// [`StrMatch`] against a JWT claim (`request.auth.claims[…]`,
/// `request.auth.audiences`): a string claim matches as a string, a list
/// when any of its strings does; other JSON values never match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ClaimMatch(pub StrMatch);

impl ValueMatch for ClaimMatch {
    type Attr<'a> = &'a serde_json::Value;
    fn matches(&self, claim: &serde_json::Value) -> bool {
        match claim {
            serde_json::Value::String(s) => self.0.matches(s),
            serde_json::Value::Array(list) => list
                .iter()
                .any(|v| v.as_str().is_some_and(|s| self.0.matches(s))),
            _ => false,
        }
    }
}

/// [`StrMatch`] compared ASCII-case-insensitively (`hosts`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NoCase(pub StrMatch);

impl ValueMatch for NoCase {
    type Attr<'a> = &'a str;
    fn matches(&self, s: &str) -> bool {
        let s = s.as_bytes();
        match &self.0 {
            StrMatch::Any => true,
            StrMatch::Exact(v) => s.eq_ignore_ascii_case(v.as_bytes()),
            StrMatch::Prefix(p) => {
                s.len() >= p.len() && s[..p.len()].eq_ignore_ascii_case(p.as_bytes())
            }
            StrMatch::Suffix(p) => {
                s.len() >= p.len() && s[s.len() - p.len()..].eq_ignore_ascii_case(p.as_bytes())
            }
        }
    }
}

/// A `paths` value: Istio's string forms, or a path template where `{*}`
/// is exactly one segment and `{**}` (last) any number of segments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PathMatch {
    Str(StrMatch),
    Template(Box<str>),
}

impl PathMatch {
    pub fn new(value: &str) -> PathMatch {
        if value.contains("{*}") || value.contains("{**}") {
            PathMatch::Template(value.into())
        } else {
            PathMatch::Str(StrMatch::new(value))
        }
    }
}

impl ValueMatch for PathMatch {
    type Attr<'a> = &'a str;
    fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Str(m) => m.matches(path),
            PathMatch::Template(t) => template_matches(t, path),
        }
    }
}

fn template_matches(template: &str, path: &str) -> bool {
    let mut segments = path.split('/');
    for pattern in template.split('/') {
        match pattern {
            // Whatever is left, including nothing (Envoy's `**`).
            "{**}" => return true,
            "{*}" => match segments.next() {
                Some(s) if !s.is_empty() => {}
                _ => return false,
            },
            literal => match segments.next() {
                Some(s) if s == literal => {}
                _ => return false,
            },
        }
    }
    segments.next().is_none()
}

/// A `ports` value. A value that is not a port number never matches
/// (`analyze` reports it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PortMatch(pub Option<u16>);

impl PortMatch {
    pub fn new(value: &str) -> PortMatch {
        PortMatch(value.trim().parse().ok())
    }
}

impl ValueMatch for PortMatch {
    type Attr<'a> = u16;
    fn matches(&self, port: u16) -> bool {
        self.0 == Some(port)
    }
}

/// An IP block: `10.0.0.0/8`, `2001:db8::/32` or a single address. An
/// unparsable block never matches (`analyze` reports it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cidr {
    V4 { network: u32, prefix: u8 },
    V6 { network: u128, prefix: u8 },
    Invalid,
}

impl Cidr {
    pub fn new(value: &str) -> Cidr {
        parse_cidr(value.trim()).unwrap_or(Cidr::Invalid)
    }

    pub fn is_valid(value: &str) -> bool {
        parse_cidr(value.trim()).is_some()
    }
}

fn parse_cidr(value: &str) -> Option<Cidr> {
    let (addr, prefix) = match value.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix.parse::<u8>().ok()?)),
        None => (value, None),
    };
    match addr.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) => {
            let prefix = prefix.unwrap_or(32);
            (prefix <= 32).then(|| Cidr::V4 {
                network: u32::from(a) & mask32(prefix),
                prefix,
            })
        }
        IpAddr::V6(a) => {
            let prefix = prefix.unwrap_or(128);
            (prefix <= 128).then(|| Cidr::V6 {
                network: u128::from(a) & mask128(prefix),
                prefix,
            })
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl ValueMatch for Cidr {
    type Attr<'a> = IpAddr;
    fn matches(&self, ip: IpAddr) -> bool {
        // An IPv4-mapped IPv6 address is the IPv4 address it carries.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (*self, ip) {
            (Cidr::V4 { network, prefix }, IpAddr::V4(a)) => {
                u32::from(a) & mask32(prefix) == network
            }
            (Cidr::V6 { network, prefix }, IpAddr::V6(a)) => {
                u128::from(a) & mask128(prefix) == network
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_forms() {
        let m = |p: &str, s: &str| StrMatch::new(p).matches(s);
        assert!(m("/info", "/info"));
        assert!(!m("/info", "/info/x"));
        assert!(m("/info*", "/info/x"));
        assert!(m("*.example.com", "a.example.com"));
        assert!(!m("*.example.com", "example.org"));
        assert!(m("*", "anything"));
        assert!(NoCase(StrMatch::new("*.Example.com")).matches("A.EXAMPLE.COM"));
        assert!(NoCase(StrMatch::new("Bookinfo*")).matches("bookinfo.com:80"));
    }

    #[test]
    fn absent_attribute_fails_values_and_passes_not_values() {
        let f = Field::new(&["*".into()], &[], StrMatch::new);
        assert!(!f.matches(None));
        let f = Field::new(&[], &["x".into()], StrMatch::new);
        assert!(f.matches(None));
        assert!(!f.matches(Some("x")));
        assert!(f.matches(Some("y")));
    }

    #[test]
    fn path_templates() {
        let m = |p: &str, s: &str| PathMatch::new(p).matches(s);
        assert!(m("/foo/{*}", "/foo/bar"));
        assert!(!m("/foo/{*}", "/foo/bar/baz"));
        assert!(!m("/foo/{*}", "/foo/"));
        assert!(m("/foo/{*}/baz", "/foo/bar/baz"));
        assert!(m("/foo/{**}", "/foo/bar/baz/qux"));
        assert!(!m("/foo/{**}", "/other/bar"));
    }

    #[test]
    fn cidrs() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(Cidr::new("10.0.0.0/8").matches(ip("10.1.2.3")));
        assert!(!Cidr::new("10.0.0.0/8").matches(ip("11.1.2.3")));
        assert!(Cidr::new("1.2.3.4").matches(ip("1.2.3.4")));
        assert!(!Cidr::new("1.2.3.4").matches(ip("1.2.3.5")));
        assert!(Cidr::new("0.0.0.0/0").matches(ip("8.8.8.8")));
        assert!(Cidr::new("2001:db8::/32").matches(ip("2001:db8::1")));
        assert!(Cidr::new("10.0.0.0/8").matches(ip("::ffff:10.0.0.1")));
        assert!(!Cidr::new("10.0.0.0/8").matches(ip("2001:db8::1")));
        assert_eq!(Cidr::new("10.0.0.0/33"), Cidr::Invalid);
        assert_eq!(Cidr::new("not-an-ip"), Cidr::Invalid);
        assert!(!Cidr::Invalid.matches(ip("10.0.0.1")));
    }

    #[test]
    fn ports() {
        assert!(PortMatch::new("9080").matches(9080));
        assert!(!PortMatch::new("http").matches(80));
    }
}
