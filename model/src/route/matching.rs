//! `HTTPMatchRequest` compiled: string matchers with their regexes built
//! once (RE2 semantics: the whole value must match), and the per-request view
//! of a [`Request`] they are evaluated against.

use std::collections::BTreeMap;

use regex::Regex;

use crate::networking::{GatewayRef, HttpMatchRequest, StringMatch};
use crate::request::Request;

/// A compiled `StringMatch`.
#[derive(Clone, Debug)]
pub(crate) enum Matcher {
    Exact(String),
    Prefix(String),
    /// The compiled (anchored) regex and the pattern as written.
    Regex(Regex, String),
    /// `{}`: the value must be present (headers, query parameters).
    Present,
    /// An invalid regex never matches (`loupe analyze` reports it).
    Never,
}

impl Matcher {
    pub(crate) fn compile(m: &StringMatch, ignore_case: bool) -> Matcher {
        if let Some(exact) = &m.exact {
            Matcher::Exact(exact.clone())
        } else if let Some(prefix) = &m.prefix {
            Matcher::Prefix(prefix.clone())
        } else if let Some(regex) = &m.regex {
            match anchored(regex, ignore_case) {
                Ok(re) => Matcher::Regex(re, regex.clone()),
                Err(_) => Matcher::Never,
            }
        } else {
            Matcher::Present
        }
    }

    pub(crate) fn matches(&self, value: &str, ignore_case: bool) -> bool {
        match self {
            Matcher::Exact(e) if ignore_case => e.eq_ignore_ascii_case(value),
            Matcher::Exact(e) => e == value,
            Matcher::Prefix(p) if ignore_case => value
                .as_bytes()
                .get(..p.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(p.as_bytes())),
            Matcher::Prefix(p) => value.starts_with(p.as_str()),
            Matcher::Regex(re, _) => re.is_match(value),
            Matcher::Present => true,
            Matcher::Never => false,
        }
    }

    fn describe(&self) -> String {
        match self {
            Matcher::Exact(e) => format!("exact {e:?}"),
            Matcher::Prefix(p) => format!("prefix {p:?}"),
            Matcher::Regex(_, pattern) => format!("regex {pattern:?}"),
            Matcher::Present => "present".into(),
            Matcher::Never => "an invalid regex (never matches)".into(),
        }
    }
}

/// RE2 matches the whole value in Istio (Envoy's `safe_regex`), so anchor it.
pub fn anchored(pattern: &str, ignore_case: bool) -> Result<Regex, regex::Error> {
    let flags = if ignore_case { "(?i)" } else { "" };
    Regex::new(&format!("{flags}^(?:{pattern})$"))
}

/// The request attributes matches look at, extracted once per request.
pub(crate) struct RequestView<'a> {
    pub path: &'a str,
    pub query: &'a str,
    pub method: &'a str,
    pub scheme: &'a str,
    pub authority: &'a str,
    pub port: Option<u16>,
    pub source_namespace: Option<&'a str>,
    pub source_labels: &'a BTreeMap<String, String>,
    pub headers: &'a BTreeMap<String, String>,
    /// Whether some header name has upper-case letters (then lookups fall
    /// back to a case-insensitive scan); checked once per request.
    mixed_case_headers: bool,
    /// [`name_bloom`] of every header name the request carries.
    header_bloom: u64,
}

impl<'a> RequestView<'a> {
    pub(crate) fn new(request: &'a Request, port: Option<u16>) -> RequestView<'a> {
        let full = request.request.path.as_deref().unwrap_or("/");
        let (path, query) = full.split_once('?').unwrap_or((full, ""));
        RequestView {
            path,
            query,
            method: request.request.method.as_deref().unwrap_or(""),
            scheme: request.request.scheme.as_deref().unwrap_or("http"),
            authority: request.request.host.as_deref().unwrap_or(""),
            port,
            source_namespace: source_namespace(request),
            source_labels: &request.source.labels,
            headers: &request.request.headers,
            mixed_case_headers: request
                .request
                .headers
                .keys()
                .any(|k| k.bytes().any(|b| b.is_ascii_uppercase())),
            header_bloom: request
                .request
                .headers
                .keys()
                .fold(0, |bloom, k| bloom | name_bloom(k)),
        }
    }

    /// Header names are case-insensitive; requests normally carry them
    /// lower-case, so the map lookup is tried first.
    fn header(&self, name: &str) -> Option<&'a str> {
        if let Some(v) = self.headers.get(name) {
            return Some(v);
        }
        if !self.mixed_case_headers {
            return None;
        }
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn query_param(&self, name: &str) -> Option<&'a str> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then_some(v)
        })
    }
}

/// One bit per header name (case-insensitive), so a match entry that needs a
/// header the request does not carry is rejected with one AND instead of
/// map lookups — the routes of a VirtualService are tried in order on every
/// request.
fn name_bloom(name: &str) -> u64 {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b.to_ascii_lowercase())).wrapping_mul(0x0100_0000_01b3)
    });
    1 << (hash % 64)
}

/// The caller's namespace: given, or the `/ns/NAME/` part of its principal.
pub(crate) fn source_namespace(request: &Request) -> Option<&str> {
    request.source.namespace.as_deref().or_else(|| {
        let principal = request.source.principal.as_deref()?;
        let rest = &principal[principal.find("/ns/")? + 4..];
        Some(rest.split('/').next().unwrap_or(rest))
    })
}

/// A compiled `HTTPMatchRequest`: all set conditions must hold.
#[derive(Clone, Debug)]
pub(crate) struct CompiledMatch {
    pub name: Option<String>,
    uri: Option<Matcher>,
    scheme: Option<Matcher>,
    method: Option<Matcher>,
    authority: Option<Matcher>,
    headers: Vec<(String, Matcher)>,
    without_headers: Vec<(String, Matcher)>,
    query_params: Vec<(String, Matcher)>,
    port: Option<u32>,
    source_labels: Vec<(String, String)>,
    source_namespace: Option<String>,
    /// Match-level `gateways` override the VirtualService's.
    gateways: Option<Vec<GatewayRef>>,
    ignore_uri_case: bool,
    /// [`name_bloom`] of the headers this entry requires to be present.
    required_headers: u64,
    /// For people: the conditions, as `uri prefix "/api", header end-user exact "jason"`.
    pub description: String,
}

impl CompiledMatch {
    pub(crate) fn compile(m: &HttpMatchRequest, vs_namespace: &str) -> CompiledMatch {
        let plain = |s: &Option<StringMatch>| s.as_ref().map(|s| Matcher::compile(s, false));
        let map = |m: &BTreeMap<String, StringMatch>| -> Vec<(String, Matcher)> {
            m.iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), Matcher::compile(v, false)))
                .collect()
        };
        let mut compiled = CompiledMatch {
            name: m.name.clone(),
            // Istio's ignoreUriCase becomes Envoy's case_sensitive: false,
            // which Envoy ignores for safe_regex: a uri regex stays
            // case-sensitive (exact and prefix honour it in `matches`).
            uri: m.uri.as_ref().map(|s| Matcher::compile(s, false)),
            scheme: plain(&m.scheme),
            method: plain(&m.method),
            authority: plain(&m.authority),
            headers: map(&m.headers),
            without_headers: map(&m.without_headers),
            query_params: m
                .query_params
                .iter()
                .map(|(k, v)| (k.clone(), Matcher::compile(v, false)))
                .collect(),
            port: m.port,
            source_labels: m.source_labels.clone().into_iter().collect(),
            source_namespace: m.source_namespace.clone(),
            gateways: (!m.gateways.is_empty()).then(|| {
                m.gateways
                    .iter()
                    .map(|g| GatewayRef::parse(g, vs_namespace))
                    .collect()
            }),
            ignore_uri_case: m.ignore_uri_case,
            required_headers: m.headers.keys().fold(0, |bloom, k| bloom | name_bloom(k)),
            description: String::new(),
        };
        compiled.description = compiled.describe();
        compiled
    }

    pub(crate) fn matches(&self, r: &RequestView<'_>, context: &GatewayRef) -> bool {
        if self.required_headers & !r.header_bloom != 0 {
            return false;
        }
        let one =
            |m: &Option<Matcher>, v: &str, ic: bool| m.as_ref().is_none_or(|m| m.matches(v, ic));
        if let Some(gateways) = &self.gateways
            && !gateways.contains(context)
        {
            return false;
        }
        one(&self.uri, r.path, self.ignore_uri_case)
            && one(&self.scheme, r.scheme, false)
            && one(&self.method, r.method, false)
            && one(&self.authority, r.authority, false)
            && self
                .port
                .is_none_or(|p| r.port.is_some_and(|rp| u32::from(rp) == p))
            && self
                .source_namespace
                .as_deref()
                .is_none_or(|ns| r.source_namespace == Some(ns))
            && self
                .source_labels
                .iter()
                .all(|(k, v)| r.source_labels.get(k) == Some(v))
            && self
                .headers
                .iter()
                .all(|(k, m)| r.header(k).is_some_and(|v| m.matches(v, false)))
            && !self
                .without_headers
                .iter()
                .any(|(k, m)| r.header(k).is_some_and(|v| m.matches(v, false)))
            && self
                .query_params
                .iter()
                .all(|(k, m)| r.query_param(k).is_some_and(|v| m.matches(v, false)))
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        let case = if self.ignore_uri_case && !matches!(self.uri, Some(Matcher::Regex(..))) {
            " (ignoring case)"
        } else {
            ""
        };
        let mut field = |name: &str, m: &Option<Matcher>, suffix: &str| {
            if let Some(m) = m {
                parts.push(format!("{name} {}{suffix}", m.describe()));
            }
        };
        field("uri", &self.uri, case);
        field("scheme", &self.scheme, "");
        field("method", &self.method, "");
        field("authority", &self.authority, "");
        for (k, m) in &self.headers {
            parts.push(format!("header {k} {}", m.describe()));
        }
        for (k, m) in &self.without_headers {
            parts.push(format!("without header {k} {}", m.describe()));
        }
        for (k, m) in &self.query_params {
            parts.push(format!("query {k} {}", m.describe()));
        }
        if let Some(p) = self.port {
            parts.push(format!("port {p}"));
        }
        for (k, v) in &self.source_labels {
            parts.push(format!("source label {k}={v}"));
        }
        if let Some(ns) = &self.source_namespace {
            parts.push(format!("source namespace {ns}"));
        }
        if let Some(g) = &self.gateways {
            let g: Vec<String> = g.iter().map(ToString::to_string).collect();
            parts.push(format!("gateways [{}]", g.join(", ")));
        }
        if parts.is_empty() {
            "no conditions".into()
        } else {
            parts.join(", ")
        }
    }
}
