//! One AuthorizationPolicy rule, compiled: `from` (any source) AND `to`
//! (any operation) AND `when` (every condition). Within a source or an
//! operation every set field must match.

use std::net::IpAddr;

use super::attributes::Attributes;
use super::matcher::{Cidr, Field, NoCase, PathMatch, PortMatch, StrMatch};
use crate::security::authorization_policy as ap;

#[derive(Clone, Debug)]
pub(crate) struct CompiledRule {
    from: Box<[CompiledSource]>,
    to: Box<[CompiledOperation]>,
    when: Box<[CompiledCondition]>,
}

impl CompiledRule {
    pub fn new(rule: &ap::Rule) -> CompiledRule {
        CompiledRule {
            // `from: [{}]` (no source) constrains nothing, like `source: {}`.
            from: rule
                .from
                .iter()
                .map(|f| CompiledSource::new(f.source.as_ref().unwrap_or(&ap::Source::default())))
                .collect(),
            to: rule
                .to
                .iter()
                .map(|t| CompiledOperation::new(t.operation.as_ref().unwrap_or(&ap::Operation::default())))
                .collect(),
            when: rule.when.iter().map(CompiledCondition::new).collect(),
        }
    }

    pub fn matches(&self, a: &Attributes<'_>) -> bool {
        (self.from.is_empty() || self.from.iter().any(|s| s.matches(a)))
            && (self.to.is_empty() || self.to.iter().any(|o| o.matches(a)))
            && self.when.iter().all(|c| c.matches(a))
    }
}

#[derive(Clone, Debug)]
struct CompiledSource {
    principals: Field<StrMatch>,
    request_principals: Field<StrMatch>,
    namespaces: Field<StrMatch>,
    /// `NS/SA`, compared as its two parts.
    service_accounts: Field<ServiceAccount>,
    ip_blocks: Field<Cidr>,
    remote_ip_blocks: Field<Cidr>,
}

impl CompiledSource {
    fn new(s: &ap::Source) -> CompiledSource {
        CompiledSource {
            principals: Field::new(&s.principals, &s.not_principals, StrMatch::new),
            request_principals: Field::new(
                &s.request_principals,
                &s.not_request_principals,
                StrMatch::new,
            ),
            namespaces: Field::new(&s.namespaces, &s.not_namespaces, StrMatch::new),
            service_accounts: Field::new(
                &s.service_accounts,
                &s.not_service_accounts,
                ServiceAccount::new,
            ),
            ip_blocks: Field::new(&s.ip_blocks, &s.not_ip_blocks, Cidr::new),
            remote_ip_blocks: Field::new(&s.remote_ip_blocks, &s.not_remote_ip_blocks, Cidr::new),
        }
    }

    fn matches(&self, a: &Attributes<'_>) -> bool {
        let account = a.source_namespace.zip(a.source_service_account);
        self.principals.matches(a.principal)
            // Loupe's Request carries no JWT: request principals are absent.
            && self.request_principals.matches(None)
            && self.namespaces.matches(a.source_namespace)
            && self.service_accounts.matches(account.filter(|_| a.principal.is_some()))
            && self.ip_blocks.matches(a.source_ip)
            // Without trusted proxies (numTrustedProxies) the remote IP is the peer's.
            && self.remote_ip_blocks.matches(a.source_ip)
    }
}

#[derive(Clone, Debug)]
struct ServiceAccount {
    namespace: Box<str>,
    name: Box<str>,
}

impl ServiceAccount {
    fn new(value: &str) -> ServiceAccount {
        let (namespace, name) = value.split_once('/').unwrap_or(("", value));
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

#[derive(Clone, Debug)]
struct CompiledOperation {
    hosts: Field<NoCase>,
    ports: Field<PortMatch>,
    methods: Field<StrMatch>,
    paths: Field<PathMatch>,
}

impl CompiledOperation {
    fn new(o: &ap::Operation) -> CompiledOperation {
        CompiledOperation {
            hosts: Field::new(&o.hosts, &o.not_hosts, |v| NoCase(StrMatch::new(v))),
            ports: Field::new(&o.ports, &o.not_ports, PortMatch::new),
            methods: Field::new(&o.methods, &o.not_methods, StrMatch::new),
            paths: Field::new(&o.paths, &o.not_paths, PathMatch::new),
        }
    }

    fn matches(&self, a: &Attributes<'_>) -> bool {
        self.ports.matches(a.destination_port)
            && self.methods.matches(a.method)
            && self.paths.matches(a.path)
            && self.hosts.matches(a.host)
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
    DestinationIp,
    DestinationPort,
    /// Keys Istio knows whose attribute Loupe's request never carries
    /// (`connection.sni`, `request.auth.*`, `experimental.envoy.filters.*`):
    /// always absent.
    Absent,
    /// Not one of Istio's keys: the condition never matches.
    Unknown,
}

impl ConditionKey {
    pub fn parse(key: &str) -> ConditionKey {
        if let Some(name) = bracketed(key, "request.headers") {
            return match name.to_ascii_lowercase().as_str() {
                "" => ConditionKey::Unknown,
                ":authority" | "host" => ConditionKey::Host,
                ":method" => ConditionKey::Method,
                ":path" => ConditionKey::Path,
                lower => ConditionKey::Header(lower.into()),
            };
        }
        if let Some(claim) = bracketed(key, "request.auth.claims") {
            return if claim.is_empty() {
                ConditionKey::Unknown
            } else {
                ConditionKey::Absent
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
            "destination.ip" => ConditionKey::DestinationIp,
            "destination.port" => ConditionKey::DestinationPort,
            "connection.sni"
            | "request.auth.principal"
            | "request.auth.audiences"
            | "request.auth.presenter" => ConditionKey::Absent,
            _ => ConditionKey::Unknown,
        }
    }
}

/// `prefix[inner]` → `inner`.
fn bracketed<'a>(key: &'a str, prefix: &str) -> Option<&'a str> {
    key.strip_prefix(prefix)?.strip_prefix('[')?.strip_suffix(']')
}

#[derive(Clone, Debug)]
enum CompiledCondition {
    Str(ConditionKey, Field<StrMatch>),
    Ip(ConditionKey, Field<Cidr>),
    Port(Field<PortMatch>),
    Never,
}

impl CompiledCondition {
    fn new(c: &ap::Condition) -> CompiledCondition {
        let key = ConditionKey::parse(&c.key);
        match key {
            ConditionKey::Unknown => CompiledCondition::Never,
            ConditionKey::SourceIp | ConditionKey::RemoteIp | ConditionKey::DestinationIp => {
                CompiledCondition::Ip(key, Field::new(&c.values, &c.not_values, Cidr::new))
            }
            ConditionKey::DestinationPort => {
                CompiledCondition::Port(Field::new(&c.values, &c.not_values, PortMatch::new))
            }
            _ => CompiledCondition::Str(key, Field::new(&c.values, &c.not_values, StrMatch::new)),
        }
    }

    fn matches(&self, a: &Attributes<'_>) -> bool {
        match self {
            CompiledCondition::Str(key, field) => field.matches(str_attr(key, a)),
            CompiledCondition::Ip(key, field) => field.matches(ip_attr(key, a)),
            CompiledCondition::Port(field) => field.matches(a.destination_port),
            CompiledCondition::Never => false,
        }
    }
}

fn str_attr<'a>(key: &ConditionKey, a: &Attributes<'a>) -> Option<&'a str> {
    match key {
        ConditionKey::Header(name) => a.header(name),
        ConditionKey::Host => a.host,
        ConditionKey::Method => a.method,
        ConditionKey::Path => a.full_path,
        ConditionKey::SourceNamespace => a.source_namespace,
        ConditionKey::SourcePrincipal => a.principal,
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
