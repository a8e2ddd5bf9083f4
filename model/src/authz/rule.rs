//! One AuthorizationPolicy rule, compiled: `from` (any source) AND `to`
//! (any operation) AND `when` (every condition). Within a source or an
//! operation every set field must match.

use std::net::IpAddr;

use super::attributes::Attributes;
use super::matcher::{Cidr, ClaimMatch, Field, NoCase, PathMatch, PortMatch, StrMatch};
use crate::security::authorization_policy as ap;

#[derive(Clone, Debug)]
pub(crate) struct CompiledRule {
    from: Box<[CompiledSource]>,
    to: Box<[CompiledOperation]>,
    when: Box<[CompiledCondition]>,
    /// How the rule treats a plain TCP connection (no HTTP attributes).
    tcp: TcpMode,
}

/// Istio builds the TCP filter from the same rules, minus what only HTTP
/// has (hosts, methods, paths, requestPrincipals, request headers,
/// request.auth.*): an ALLOW rule naming any of them is dropped (it allows
/// less), a DENY/AUDIT/CUSTOM rule is kept without them (it denies more).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TcpMode {
    /// The rule names no HTTP-only field: TCP matches as HTTP does.
    Same,
    /// ALLOW rule with HTTP-only fields: never matches TCP.
    Never,
    /// Non-ALLOW rule with HTTP-only fields: they are ignored for TCP.
    IgnoreHttpFields,
}

impl CompiledRule {
    /// `namespace` is the policy's own (the default for bare `serviceAccounts`
    /// names); `allow` says whether the policy's action is ALLOW.
    pub fn new(rule: &ap::Rule, namespace: &str, allow: bool) -> CompiledRule {
        let from: Box<[CompiledSource]> = rule
            .from
            .iter()
            // `from: [{}]` (no source) constrains nothing, like `source: {}`.
            .map(|f| {
                CompiledSource::new(
                    f.source.as_ref().unwrap_or(&ap::Source::default()),
                    namespace,
                )
            })
            .collect();
        let to: Box<[CompiledOperation]> = rule
            .to
            .iter()
            .map(|t| {
                CompiledOperation::new(t.operation.as_ref().unwrap_or(&ap::Operation::default()))
            })
            .collect();
        let when: Box<[CompiledCondition]> = rule
            .when
            .iter()
            .map(|c| CompiledCondition::new(c, namespace))
            .collect();
        let http_only = from
            .iter()
            .any(|s| s.checks.iter().any(SourceCheck::is_http_only))
            || to
                .iter()
                .any(|o| o.checks.iter().any(OperationCheck::is_http_only))
            || when.iter().any(CompiledCondition::is_http_only);
        let tcp = match (http_only, allow) {
            (false, _) => TcpMode::Same,
            (true, true) => TcpMode::Never,
            (true, false) => TcpMode::IgnoreHttpFields,
        };
        CompiledRule {
            from,
            to,
            when,
            tcp,
        }
    }

    /// The source namespaces a request must come from for `rule` to match,
    /// when the rule says so in a form an index can use (every `from`
    /// source names its namespaces exactly, or through principals or
    /// service accounts); `None` when any namespace (or none) may match.
    pub fn required_namespaces(rule: &ap::Rule, namespace: &str) -> Option<Vec<String>> {
        if rule.from.is_empty() {
            return None;
        }
        let mut all = Vec::new();
        for from in &rule.from {
            all.extend(source_namespaces(from.source.as_ref()?, namespace)?);
        }
        all.sort_unstable();
        all.dedup();
        Some(all)
    }

    /// The directories (`/`-terminated literal path prefixes) one of which
    /// the request path must start with for `rule` to match: when every
    /// `to` operation lists only exact or `prefix*` paths. `None` otherwise.
    pub fn required_path_dirs(rule: &ap::Rule) -> Option<Vec<String>> {
        if rule.to.is_empty() {
            return None;
        }
        let mut all = Vec::new();
        for to in &rule.to {
            let paths = &to.operation.as_ref()?.paths;
            if paths.is_empty() {
                return None;
            }
            for path in paths {
                if path.starts_with('*') || path.contains('{') {
                    return None;
                }
                let literal = path.strip_suffix('*').unwrap_or(path);
                let dir = literal.rfind('/').map(|i| &literal[..=i])?;
                all.push(dir.to_string());
            }
        }
        all.sort_unstable();
        all.dedup();
        Some(all)
    }

    pub fn matches(&self, a: &Attributes<'_>) -> bool {
        let skip_http = a.tcp
            && match self.tcp {
                TcpMode::Same => false,
                TcpMode::Never => return false,
                TcpMode::IgnoreHttpFields => true,
            };
        (self.from.is_empty() || self.from.iter().any(|s| s.matches(a, skip_http)))
            && (self.to.is_empty() || self.to.iter().any(|o| o.matches(a, skip_http)))
            && self
                .when
                .iter()
                .all(|c| (skip_http && c.is_http_only()) || c.matches(a))
    }

    /// For people: which parts of this (matching) rule held, e.g.
    /// `from[0].source (principals); to[1].operation (methods, paths)`.
    pub fn explain(&self, a: &Attributes<'_>) -> String {
        let skip_http = a.tcp && self.tcp == TcpMode::IgnoreHttpFields;
        let mut parts = Vec::new();
        if skip_http {
            parts.push("a TCP connection: HTTP-only fields ignored, as Istio does for DENY".into());
        }
        if let Some(i) = self.from.iter().position(|s| s.matches(a, skip_http)) {
            let fields: Vec<_> = self.from[i].checks.iter().map(SourceCheck::name).collect();
            parts.push(format!("from[{i}].source ({})", fields.join(", ")));
        }
        if let Some(i) = self.to.iter().position(|o| o.matches(a, skip_http)) {
            let fields: Vec<_> = self.to[i].checks.iter().map(OperationCheck::name).collect();
            parts.push(format!("to[{i}].operation ({})", fields.join(", ")));
        }
        if !self.when.is_empty() {
            parts.push(format!("all {} when condition(s)", self.when.len()));
        }
        if parts.is_empty() {
            "an empty rule matches every request".to_string()
        } else {
            parts.join("; ")
        }
    }
}

fn source_namespaces(s: &ap::Source, policy_namespace: &str) -> Option<Vec<String>> {
    let exact = |v: &String| !v.contains('*');
    if !s.namespaces.is_empty() && s.namespaces.iter().all(exact) {
        return Some(s.namespaces.clone());
    }
    if !s.principals.is_empty() {
        let from_principals: Option<Vec<String>> = s
            .principals
            .iter()
            .map(|p| principal_namespace(p).map(str::to_string))
            .collect();
        if from_principals.is_some() {
            return from_principals;
        }
    }
    if !s.service_accounts.is_empty() {
        return s
            .service_accounts
            .iter()
            .map(|sa| match sa.split_once('/') {
                Some((ns, _)) if !ns.is_empty() && !ns.contains('*') => Some(ns.to_string()),
                None if !sa.contains('*') => Some(policy_namespace.to_string()),
                _ => None,
            })
            .collect();
    }
    None
}

/// The namespace every principal matching `value` has: from an exact
/// value, or a `prefix*` that contains the whole `/ns/NAME/` segment.
fn principal_namespace(value: &str) -> Option<&str> {
    if value.starts_with('*') {
        return None;
    }
    match value.strip_suffix('*') {
        None => super::attributes::identity_part(value, "ns"),
        // Only complete segments (each followed by `/`) are certain.
        Some(prefix) => super::attributes::identity_part(prefix.rsplit_once('/')?.0, "ns"),
    }
}

/// Only the fields a source sets, cheapest first: most rules set one or
/// two of them, and the first that fails ends the match.
#[derive(Clone, Debug)]
struct CompiledSource {
    checks: Box<[SourceCheck]>,
}

#[derive(Clone, Debug)]
enum SourceCheck {
    Namespaces(Field<StrMatch>),
    Principals(Field<StrMatch>),
    /// `NS/SA`, compared as its two parts.
    ServiceAccounts(Field<ServiceAccount>),
    RequestPrincipals(Field<StrMatch>),
    IpBlocks(Field<Cidr>),
    RemoteIpBlocks(Field<Cidr>),
}

impl CompiledSource {
    fn new(s: &ap::Source, policy_namespace: &str) -> CompiledSource {
        let checks = [
            SourceCheck::Namespaces(Field::new(&s.namespaces, &s.not_namespaces, StrMatch::new)),
            SourceCheck::Principals(Field::new(&s.principals, &s.not_principals, StrMatch::new)),
            SourceCheck::ServiceAccounts(Field::new(
                &s.service_accounts,
                &s.not_service_accounts,
                |v| ServiceAccount::new(v, policy_namespace),
            )),
            SourceCheck::RequestPrincipals(Field::new(
                &s.request_principals,
                &s.not_request_principals,
                StrMatch::new,
            )),
            SourceCheck::IpBlocks(Field::new(&s.ip_blocks, &s.not_ip_blocks, Cidr::new)),
            SourceCheck::RemoteIpBlocks(Field::new(
                &s.remote_ip_blocks,
                &s.not_remote_ip_blocks,
                Cidr::new,
            )),
        ];
        CompiledSource {
            checks: checks
                .into_iter()
                .filter(|c| !c.is_unconstrained())
                .collect(),
        }
    }

    fn matches(&self, a: &Attributes<'_>, skip_http: bool) -> bool {
        self.checks
            .iter()
            .all(|c| (skip_http && c.is_http_only()) || c.matches(a))
    }
}

impl SourceCheck {
    /// Only HTTP carries a JWT.
    fn is_http_only(&self) -> bool {
        matches!(self, SourceCheck::RequestPrincipals(_))
    }

    fn name(&self) -> &'static str {
        match self {
            SourceCheck::Namespaces(_) => "namespaces",
            SourceCheck::Principals(_) => "principals",
            SourceCheck::ServiceAccounts(_) => "serviceAccounts",
            SourceCheck::RequestPrincipals(_) => "requestPrincipals",
            SourceCheck::IpBlocks(_) => "ipBlocks",
            SourceCheck::RemoteIpBlocks(_) => "remoteIpBlocks",
        }
    }

    fn is_unconstrained(&self) -> bool {
        match self {
            SourceCheck::Namespaces(f) | SourceCheck::Principals(f) => f.is_unconstrained(),
            SourceCheck::RequestPrincipals(f) => f.is_unconstrained(),
            SourceCheck::ServiceAccounts(f) => f.is_unconstrained(),
            SourceCheck::IpBlocks(f) | SourceCheck::RemoteIpBlocks(f) => f.is_unconstrained(),
        }
    }

    fn matches(&self, a: &Attributes<'_>) -> bool {
        match self {
            SourceCheck::Namespaces(f) => f.matches(a.source_namespace),
            SourceCheck::Principals(f) => f.matches(a.principal),
            SourceCheck::ServiceAccounts(f) => f.matches(a.service_account()),
            // `iss/sub` of the verified JWT; absent without one.
            SourceCheck::RequestPrincipals(f) => f.matches(a.request_principal.as_deref()),
            SourceCheck::IpBlocks(f) => f.matches(a.source_ip),
            // Without trusted proxies (numTrustedProxies) the remote IP is the peer's.
            SourceCheck::RemoteIpBlocks(f) => f.matches(a.source_ip),
        }
    }
}

#[derive(Clone, Debug)]
struct ServiceAccount {
    namespace: Box<str>,
    name: Box<str>,
}

impl ServiceAccount {
    /// `NS/SA`, or a bare `SA` in the policy's namespace (as Istio reads it).
    fn new(value: &str, policy_namespace: &str) -> ServiceAccount {
        let (namespace, name) = value.split_once('/').unwrap_or((policy_namespace, value));
        ServiceAccount {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl super::matcher::ValueMatch for ServiceAccount {
    type Attr<'a> = (&'a str, &'a str);
    fn matches(&self, (namespace, name): (&str, &str)) -> bool {
        *self.namespace == *namespace && *self.name == *name
    }
}

/// Only the fields an operation sets, cheapest first.
#[derive(Clone, Debug)]
struct CompiledOperation {
    checks: Box<[OperationCheck]>,
}

#[derive(Clone, Debug)]
enum OperationCheck {
    Ports(Field<PortMatch>),
    Methods(Field<StrMatch>),
    Paths(Field<PathMatch>),
    Hosts(Field<NoCase>),
}

impl CompiledOperation {
    fn new(o: &ap::Operation) -> CompiledOperation {
        // Paths first: they usually tell rules apart, methods rarely do.
        let checks = [
            OperationCheck::Paths(Field::new(&o.paths, &o.not_paths, PathMatch::new)),
            OperationCheck::Ports(Field::new(&o.ports, &o.not_ports, PortMatch::new)),
            OperationCheck::Methods(Field::new(&o.methods, &o.not_methods, StrMatch::new)),
            OperationCheck::Hosts(Field::new(&o.hosts, &o.not_hosts, |v| {
                NoCase(StrMatch::new(v))
            })),
        ];
        CompiledOperation {
            checks: checks
                .into_iter()
                .filter(|c| !c.is_unconstrained())
                .collect(),
        }
    }

    fn matches(&self, a: &Attributes<'_>, skip_http: bool) -> bool {
        self.checks
            .iter()
            .all(|c| (skip_http && c.is_http_only()) || c.matches(a))
    }
}

impl OperationCheck {
    /// Everything but ports needs HTTP.
    fn is_http_only(&self) -> bool {
        !matches!(self, OperationCheck::Ports(_))
    }

    fn name(&self) -> &'static str {
        match self {
            OperationCheck::Ports(_) => "ports",
            OperationCheck::Methods(_) => "methods",
            OperationCheck::Paths(_) => "paths",
            OperationCheck::Hosts(_) => "hosts",
        }
    }

    fn is_unconstrained(&self) -> bool {
        match self {
            OperationCheck::Ports(f) => f.is_unconstrained(),
            OperationCheck::Methods(f) => f.is_unconstrained(),
            OperationCheck::Paths(f) => f.is_unconstrained(),
            OperationCheck::Hosts(f) => f.is_unconstrained(),
        }
    }

    fn matches(&self, a: &Attributes<'_>) -> bool {
        match self {
            OperationCheck::Ports(f) => f.matches(a.destination_port),
            OperationCheck::Methods(f) => f.matches(a.method),
            OperationCheck::Paths(f) => f.matches(a.path.as_deref()),
            OperationCheck::Hosts(f) => f.matches(a.host),
        }
    }
}

/// The request attribute a `when` key names, resolved at compile time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ConditionKey {
    Header(Box<str>),
    /// `request.headers[:authority]` / `[host]`.
    Host,
    /// `request.headers[:method]`.
    Method,
    /// `request.headers[:path]`: the path with its query string.
    Path,
    SourceIp,
    RemoteIp,
    SourceNamespace,
    SourcePrincipal,
    /// `source.serviceAccount`: `NS/SA`, or `SA` in the policy's namespace.
    SourceServiceAccount,
    DestinationIp,
    DestinationPort,
    /// Keys Istio knows whose attribute Loupe's request never carries
    /// (`connection.sni`, `experimental.envoy.filters.*`): always absent.
    Absent,
    /// `request.auth.principal`: `iss/sub` of the JWT.
    RequestPrincipal,
    /// `request.auth.presenter`: the JWT's `azp`.
    RequestPresenter,
    /// `request.auth.claims[a][b]…` (and `request.auth.audiences`, the
    /// `aud` claim): the path into the JWT's claims.
    RequestClaim(Box<[Box<str>]>),
    /// Not one of Istio's keys: the condition never matches.
    Unknown,
}

impl ConditionKey {
    pub fn parse(key: &str) -> ConditionKey {
        // `request.experimental.inline.headers[...]` matches the same header
        // (its comma-joined values); Loupe's request has one value per header.
        let header = bracketed(key, "request.headers")
            .or_else(|| bracketed(key, "request.experimental.inline.headers"));
        if let Some(name) = header {
            return match name.to_ascii_lowercase().as_str() {
                "" => ConditionKey::Unknown,
                ":authority" | "host" => ConditionKey::Host,
                ":method" => ConditionKey::Method,
                ":path" => ConditionKey::Path,
                lower => ConditionKey::Header(lower.into()),
            };
        }
        if let Some(claims) = bracketed(key, "request.auth.claims") {
            // `a][b` between the outer brackets: one name per level.
            let path: Vec<&str> = claims.split("][").collect();
            let bad = |name: &&str| name.is_empty() || name.contains(['[', ']']);
            return if path.iter().any(bad) {
                ConditionKey::Unknown
            } else {
                ConditionKey::RequestClaim(path.into_iter().map(Box::from).collect())
            };
        }
        if key.starts_with("experimental.envoy.filters.") {
            return ConditionKey::Absent;
        }
        match key {
            "source.ip" => ConditionKey::SourceIp,
            "remote.ip" => ConditionKey::RemoteIp,
            "source.namespace" => ConditionKey::SourceNamespace,
            "source.principal" => ConditionKey::SourcePrincipal,
            "source.serviceAccount" => ConditionKey::SourceServiceAccount,
            "destination.ip" => ConditionKey::DestinationIp,
            "destination.port" => ConditionKey::DestinationPort,
            "connection.sni" => ConditionKey::Absent,
            "request.auth.principal" => ConditionKey::RequestPrincipal,
            "request.auth.presenter" => ConditionKey::RequestPresenter,
            "request.auth.audiences" => ConditionKey::RequestClaim(Box::new(["aud".into()])),
            _ => ConditionKey::Unknown,
        }
    }
}

/// `prefix[inner]` → `inner`.
fn bracketed<'a>(key: &'a str, prefix: &str) -> Option<&'a str> {
    key.strip_prefix(prefix)?
        .strip_prefix('[')?
        .strip_suffix(']')
}

#[derive(Clone, Debug)]
enum CompiledCondition {
    Str(ConditionKey, Field<StrMatch>),
    Ip(ConditionKey, Field<Cidr>),
    Port(Field<PortMatch>),
    ServiceAccount(Field<ServiceAccount>),
    Claim(Box<[Box<str>]>, Field<ClaimMatch>),
    Never,
}

impl CompiledCondition {
    fn new(c: &ap::Condition, policy_namespace: &str) -> CompiledCondition {
        let key = ConditionKey::parse(&c.key);
        match key {
            ConditionKey::Unknown => CompiledCondition::Never,
            ConditionKey::SourceServiceAccount => {
                CompiledCondition::ServiceAccount(Field::new(&c.values, &c.not_values, |v| {
                    ServiceAccount::new(v, policy_namespace)
                }))
            }
            ConditionKey::SourceIp | ConditionKey::RemoteIp | ConditionKey::DestinationIp => {
                CompiledCondition::Ip(key, Field::new(&c.values, &c.not_values, Cidr::new))
            }
            ConditionKey::DestinationPort => {
                CompiledCondition::Port(Field::new(&c.values, &c.not_values, PortMatch::new))
            }
            ConditionKey::RequestClaim(path) => CompiledCondition::Claim(
                path,
                Field::new(&c.values, &c.not_values, |v| ClaimMatch(StrMatch::new(v))),
            ),
            _ => CompiledCondition::Str(key, Field::new(&c.values, &c.not_values, StrMatch::new)),
        }
    }

    fn matches(&self, a: &Attributes<'_>) -> bool {
        match self {
            CompiledCondition::Str(key, field) => field.matches(str_attr(key, a)),
            CompiledCondition::Ip(key, field) => field.matches(ip_attr(key, a)),
            CompiledCondition::Port(field) => field.matches(a.destination_port),
            CompiledCondition::ServiceAccount(field) => field.matches(a.service_account()),
            CompiledCondition::Claim(path, field) => {
                field.matches(a.jwt.and_then(|jwt| jwt.claim(path)))
            }
            CompiledCondition::Never => false,
        }
    }

    /// Request headers and JWT attributes need HTTP.
    fn is_http_only(&self) -> bool {
        matches!(
            self,
            CompiledCondition::Claim(..)
                | CompiledCondition::Str(
                    ConditionKey::Header(_)
                        | ConditionKey::Host
                        | ConditionKey::Method
                        | ConditionKey::Path
                        | ConditionKey::RequestPrincipal
                        | ConditionKey::RequestPresenter,
                    _
                )
        )
    }
}

fn str_attr<'s>(key: &ConditionKey, a: &'s Attributes<'_>) -> Option<&'s str> {
    match key {
        ConditionKey::Header(name) => a.header(name),
        ConditionKey::Host => a.host,
        ConditionKey::Method => a.method,
        ConditionKey::Path => a.full_path,
        ConditionKey::SourceNamespace => a.source_namespace,
        ConditionKey::SourcePrincipal => a.principal,
        ConditionKey::RequestPrincipal => a.request_principal.as_deref(),
        ConditionKey::RequestPresenter => a.jwt.and_then(|jwt| jwt.presenter()),
        _ => None,
    }
}

fn ip_attr(key: &ConditionKey, a: &Attributes<'_>) -> Option<IpAddr> {
    match key {
        ConditionKey::SourceIp | ConditionKey::RemoteIp => a.source_ip,
        ConditionKey::DestinationIp => a.destination_ip,
        _ => None,
    }
}
