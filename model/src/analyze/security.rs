//! Checks of the security.istio.io kinds: what Istio's validation webhook
//! rejects (errors) and what it accepts but almost certainly does not do
//! what the author meant (warnings).

mod request_authentication;
mod tls;

use std::collections::BTreeMap;

use super::{Diagnostic, Report, Severity};
use crate::authz::{Cidr, ConditionKey};
use crate::resource::Resource;
use crate::security::authorization_policy::{Condition, Operation, Source};
use crate::security::{Action, AuthorizationPolicy, PeerAuthentication};

/// The methods Istio accepts in `methods` / `notMethods` (case-sensitive).
const HTTP_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

pub(super) fn check(resources: &[Resource], out: &mut Vec<Diagnostic>) {
    for r in resources {
        match r {
            Resource::AuthorizationPolicy(p) => authorization_policy(r, p, out),
            Resource::PeerAuthentication(p) => peer_authentication(r, p, out),
            Resource::RequestAuthentication(p) => request_authentication::check(r, p, out),
            _ => {}
        }
    }
    competing_peer_authentications(resources, out);
    tls::check(resources, out);
}

fn authorization_policy(r: &Resource, p: &AuthorizationPolicy, out: &mut Vec<Diagnostic>) {
    let mut report = Report {
        resource: r.key().to_string(),
        out,
    };
    let spec = &p.spec;
    let action = spec.action();
    selector(&mut report, spec.selector.as_ref());
    dry_run(&mut report, p);
    if action == Action::Custom {
        custom_fields(&mut report, p);
    }
    if spec.selector.is_some() && (spec.target_ref.is_some() || !spec.target_refs.is_empty()) {
        report.error(
            "spec.selector",
            "selector and targetRef/targetRefs are mutually exclusive: keep the selector for \
             sidecars, or targetRef(s) for gateways and waypoints",
        );
    }
    match (action, &spec.provider) {
        (Action::Custom, None) => report.error(
            "spec.provider",
            "action CUSTOM needs a provider: set spec.provider.name to an extension provider \
             from meshConfig.extensionProviders",
        ),
        (Action::Custom, Some(provider)) if provider.name.is_empty() => report.error(
            "spec.provider.name",
            "the CUSTOM provider has no name: set it to an extension provider from \
             meshConfig.extensionProviders",
        ),
        (Action::Custom, Some(_)) => {}
        (_, Some(_)) => report.error(
            "spec.provider",
            format!(
                "provider is only used with action CUSTOM, but the action is {}: remove the \
                 provider or set action: CUSTOM",
                action.as_str()
            ),
        ),
        (_, None) => {}
    }
    if spec.rules.is_empty() {
        match action {
            // Istio's webhook rejects these: they could never be triggered.
            Action::Deny | Action::Custom => report.error(
                "spec.rules",
                format!(
                    "{} action without rules is meaningless (it never triggers): add rules, or \
                     `rules: [{{}}]` to match every request",
                    action.as_str()
                ),
            ),
            Action::Allow => report.warning(
                "spec.rules",
                "this ALLOW policy has no rules, so it allows nothing: every request to the \
                 workloads it selects is denied unless another ALLOW policy matches (add rules, \
                 or `rules: [{}]` to allow everything)",
            ),
            other => report.warning(
                "spec.rules",
                format!(
                    "this {} policy has no rules, so it matches no request and has no effect \
                     (add rules; `rules: [{{}}]` matches every request)",
                    other.as_str()
                ),
            ),
        }
    }
    for (i, rule) in spec.rules.iter().enumerate() {
        let base = format!("spec.rules[{i}]");
        for (j, from) in rule.from.iter().enumerate() {
            let path = format!("{base}.from[{j}].source");
            match &from.source {
                Some(s) if *s != Source::default() => source(&mut report, &path, s),
                _ => report.error(
                    path,
                    "from[].source is empty: set at least one field (principals, namespaces, \
                     ipBlocks, …) or remove this from entry",
                ),
            }
        }
        for (j, to) in rule.to.iter().enumerate() {
            let path = format!("{base}.to[{j}].operation");
            match &to.operation {
                Some(o) if *o != Operation::default() => operation(&mut report, &path, o),
                _ => report.error(
                    path,
                    "to[].operation is empty: set at least one field (hosts, ports, methods, \
                     paths) or remove this to entry",
                ),
            }
        }
        for (j, c) in rule.when.iter().enumerate() {
            condition(&mut report, &format!("{base}.when[{j}]"), c);
        }
    }
}

fn source(report: &mut Report<'_>, path: &str, s: &Source) {
    let string_fields: [(&str, &Vec<String>); 8] = [
        ("principals", &s.principals),
        ("notPrincipals", &s.not_principals),
        ("requestPrincipals", &s.request_principals),
        ("notRequestPrincipals", &s.not_request_principals),
        ("namespaces", &s.namespaces),
        ("notNamespaces", &s.not_namespaces),
        ("serviceAccounts", &s.service_accounts),
        ("notServiceAccounts", &s.not_service_accounts),
    ];
    for (name, values) in string_fields {
        wildcards(report, &format!("{path}.{name}"), values);
    }
    let ip_fields: [(&str, &Vec<String>); 4] = [
        ("ipBlocks", &s.ip_blocks),
        ("notIpBlocks", &s.not_ip_blocks),
        ("remoteIpBlocks", &s.remote_ip_blocks),
        ("notRemoteIpBlocks", &s.not_remote_ip_blocks),
    ];
    for (name, values) in ip_fields {
        ip_blocks(report, &format!("{path}.{name}"), values);
    }
    for (name, values) in [
        ("serviceAccounts", &s.service_accounts),
        ("notServiceAccounts", &s.not_service_accounts),
    ] {
        service_accounts(report, &format!("{path}.{name}"), values);
    }
    if !s.service_accounts.is_empty() || !s.not_service_accounts.is_empty() {
        let both = !s.principals.is_empty()
            || !s.not_principals.is_empty()
            || !s.namespaces.is_empty()
            || !s.not_namespaces.is_empty();
        if both {
            report.error(
                format!("{path}.serviceAccounts"),
                "serviceAccounts cannot be combined with principals or namespaces in one \
                 source: use one form, or split them into separate from entries",
            );
        }
    }
}

fn operation(report: &mut Report<'_>, path: &str, o: &Operation) {
    for (name, values) in [("methods", &o.methods), ("notMethods", &o.not_methods)] {
        for (k, m) in values.iter().enumerate() {
            if m != "*" && !HTTP_METHODS.contains(&m.as_str()) {
                let hint = match HTTP_METHODS.iter().find(|h| h.eq_ignore_ascii_case(m)) {
                    Some(upper) => format!(" (methods are case-sensitive: write {upper})"),
                    None => String::new(),
                };
                report.error(
                    format!("{path}.{name}[{k}]"),
                    format!(
                        "{m:?} is not an HTTP method{hint}: use one of {}",
                        HTTP_METHODS.join(", ")
                    ),
                );
            }
        }
    }
    for (name, values) in [("ports", &o.ports), ("notPorts", &o.not_ports)] {
        ports(report, &format!("{path}.{name}"), values);
    }
    for (name, values) in [
        ("hosts", &o.hosts),
        ("notHosts", &o.not_hosts),
        ("paths", &o.paths),
        ("notPaths", &o.not_paths),
    ] {
        wildcards(report, &format!("{path}.{name}"), values);
    }
    for (name, values) in [("paths", &o.paths), ("notPaths", &o.not_paths)] {
        path_templates(report, &format!("{path}.{name}"), values);
    }
}

/// Istio's path templates: `{*}` one segment, `{**}` the rest (last only);
/// any other `{`/`}` is rejected.
fn path_templates(report: &mut Report<'_>, path: &str, values: &[String]) {
    for (k, v) in values.iter().enumerate() {
        let mut seen_any = false;
        for segment in v.trim_matches('/').split('/') {
            let problem = match segment {
                "{*}" | "{**}" if seen_any => Some("{**} must be the last segment"),
                "{**}" => {
                    seen_any = true;
                    None
                }
                "{*}" => None,
                s if s.contains(['{', '}']) => {
                    Some("`{` and `}` are only allowed as whole {*} or {**} segments")
                }
                _ => None,
            };
            if let Some(problem) = problem {
                report.error(
                    format!("{path}[{k}]"),
                    format!("{v:?} is not a valid path template: {problem}"),
                );
                break;
            }
        }
    }
}

/// Wildcards and empty keys are not allowed in a workload selector.
fn selector(report: &mut Report<'_>, selector: Option<&crate::security::WorkloadSelector>) {
    for (k, v) in selector.into_iter().flat_map(|s| &s.match_labels) {
        if k.is_empty() {
            report.error(
                "spec.selector.matchLabels",
                format!("empty label key (value {v:?}): remove it or name the label"),
            );
        } else if k.contains('*') || v.contains('*') {
            report.error(
                format!("spec.selector.matchLabels.{k}"),
                format!(
                    "wildcards are not supported in selectors ({k}={v}): use exact label values"
                ),
            );
        }
    }
}

/// `istio.io/dry-run` is only for ALLOW and DENY, with a boolean value.
fn dry_run(report: &mut Report<'_>, p: &AuthorizationPolicy) {
    let Some(value) = p.metadata.annotations.get(crate::authz::DRY_RUN_ANNOTATION) else {
        return;
    };
    let path = "metadata.annotations[istio.io/dry-run]";
    match p.spec.action() {
        Action::Allow | Action::Deny => {
            if crate::authz::parse_go_bool(value).is_none() {
                report.error(
                    path,
                    format!("{value:?} is not a boolean: write \"true\" or \"false\""),
                );
            }
        }
        other => report.error(
            path,
            format!(
                "istio.io/dry-run only supports ALLOW and DENY policies, not {}: remove the \
                 annotation",
                other.as_str()
            ),
        ),
    }
}

/// What Istio does not support with action CUSTOM (the ext-authz filter
/// runs before peer and JWT identities are checked).
fn custom_fields(report: &mut Report<'_>, p: &AuthorizationPolicy) {
    for (i, rule) in p.spec.rules.iter().enumerate() {
        for (j, from) in rule.from.iter().enumerate() {
            let Some(s) = &from.source else { continue };
            let fields: [(&str, &Vec<String>); 6] = [
                ("namespaces", &s.namespaces),
                ("notNamespaces", &s.not_namespaces),
                ("principals", &s.principals),
                ("notPrincipals", &s.not_principals),
                ("requestPrincipals", &s.request_principals),
                ("notRequestPrincipals", &s.not_request_principals),
            ];
            for (name, values) in fields {
                if !values.is_empty() {
                    report.error(
                        format!("spec.rules[{i}].from[{j}].source.{name}"),
                        format!("{name} is not supported with action CUSTOM: remove it"),
                    );
                }
            }
        }
        for (j, c) in rule.when.iter().enumerate() {
            let key = c.key.as_str();
            if key == "source.namespace"
                || key == "source.principal"
                || key.starts_with("request.auth.")
            {
                report.error(
                    format!("spec.rules[{i}].when[{j}].key"),
                    format!("{key} is not supported with action CUSTOM: remove this condition"),
                );
            }
        }
    }
}

fn condition(report: &mut Report<'_>, path: &str, c: &Condition) {
    let key = ConditionKey::parse(&c.key);
    if c.key.is_empty() {
        report.error(
            format!("{path}.key"),
            "the when condition has no key: set one of Istio's \
             attributes, e.g. request.headers[x-user] or source.ip",
        );
    } else if key == ConditionKey::Unknown {
        report.error(
            format!("{path}.key"),
            format!(
                "unknown when key {:?}: use one of request.headers[NAME], source.ip, remote.ip, \
                 source.namespace, source.principal, destination.ip, destination.port, \
                 connection.sni, request.auth.principal, request.auth.audiences, \
                 request.auth.presenter, request.auth.claims[NAME], experimental.envoy.filters.*",
                c.key
            ),
        );
    }
    if c.values.is_empty() && c.not_values.is_empty() {
        report.error(
            path.to_string(),
            "the when condition has neither values nor notValues: set at least one",
        );
    }
    for (name, values) in [("values", &c.values), ("notValues", &c.not_values)] {
        let p = format!("{path}.{name}");
        match key {
            ConditionKey::SourceIp | ConditionKey::RemoteIp | ConditionKey::DestinationIp => {
                ip_blocks(report, &p, values)
            }
            ConditionKey::DestinationPort => ports(report, &p, values),
            _ => wildcards(report, &p, values),
        }
    }
}

/// `*` only works alone, as a prefix or as a suffix; elsewhere it is a
/// literal character (Istio matches it exactly).
fn wildcards(report: &mut Report<'_>, path: &str, values: &[String]) {
    for (k, v) in values.iter().enumerate() {
        let inner = v.strip_prefix('*').unwrap_or(v);
        let inner = inner.strip_suffix('*').unwrap_or(inner);
        if inner.contains('*') || (v.len() > 1 && v.starts_with('*') && v.ends_with('*')) {
            report.warning(
                format!("{path}[{k}]"),
                format!(
                    "{v:?}: `*` is only a wildcard alone, at the start (suffix match) or at the \
                     end (prefix match), not both or in the middle; here it is matched literally"
                ),
            );
        } else if v.is_empty() {
            report.error(
                format!("{path}[{k}]"),
                "empty values are not allowed (Istio rejects the policy): remove it",
            );
        }
    }
}

/// `NAMESPACE/NAME` or `NAME` (the policy's namespace), no wildcards.
fn service_accounts(report: &mut Report<'_>, path: &str, values: &[String]) {
    for (k, v) in values.iter().enumerate() {
        let bad_shape = match v.split_once('/') {
            Some((ns, sa)) => ns.is_empty() || sa.is_empty() || sa.contains('/'),
            None => v.is_empty(),
        };
        if v.contains('*') || bad_shape {
            report.error(
                format!("{path}[{k}]"),
                format!(
                    "{v:?} is not a service account: write NAME (in the policy's namespace) or \
                     NAMESPACE/NAME, without wildcards"
                ),
            );
        }
    }
}

fn ip_blocks(report: &mut Report<'_>, path: &str, values: &[String]) {
    for (k, v) in values.iter().enumerate() {
        if !Cidr::is_valid(v) {
            report.error(
                format!("{path}[{k}]"),
                format!(
                    "{v:?} is not an IP address or CIDR block: write e.g. 10.0.0.1 or 10.0.0.0/16"
                ),
            );
        }
    }
}

fn ports(report: &mut Report<'_>, path: &str, values: &[String]) {
    for (k, v) in values.iter().enumerate() {
        if v.trim().parse::<u16>().is_err() {
            report.error(
                format!("{path}[{k}]"),
                format!(
                    "{v:?} is not a port number: write a number from 0 to 65535, e.g. \"8080\""
                ),
            );
        }
    }
}

fn peer_authentication(r: &Resource, p: &PeerAuthentication, out: &mut Vec<Diagnostic>) {
    let mut report = Report {
        resource: r.key().to_string(),
        out,
    };
    selector(&mut report, p.spec.selector.as_ref());
    let selects = p
        .spec
        .selector
        .as_ref()
        .is_some_and(|s| !s.match_labels.is_empty());
    if !p.spec.port_level_mtls.is_empty() && !selects {
        report.error(
            "spec.portLevelMtls",
            "portLevelMtls needs a workload selector (Istio ignores it on namespace- and \
             mesh-wide policies): add spec.selector.matchLabels, or move the ports into a \
             workload-specific PeerAuthentication",
        );
    }
    for port in p.spec.port_level_mtls.keys() {
        if *port == 0 || *port > u32::from(u16::MAX) {
            report.error(
                format!("spec.portLevelMtls[{port}]"),
                format!(
                    "{port} is not a port number: use 1 to 65535 (the workload's container port)"
                ),
            );
        }
    }
}

/// Two namespace-wide (or mesh-wide) PeerAuthentications in one namespace:
/// Istio applies only the oldest.
fn competing_peer_authentications(resources: &[Resource], out: &mut Vec<Diagnostic>) {
    let mut wide: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in resources {
        let Resource::PeerAuthentication(p) = r else {
            continue;
        };
        if p.spec
            .selector
            .as_ref()
            .is_none_or(|s| s.match_labels.is_empty())
        {
            wide.entry(p.metadata.namespace())
                .or_default()
                .push(&p.metadata.name);
        }
    }
    for (namespace, mut names) in wide {
        if names.len() < 2 {
            continue;
        }
        names.sort_unstable();
        for name in &names[1..] {
            out.push(Diagnostic {
                severity: Severity::Warning,
                resource: format!("PeerAuthentication/{namespace}/{name}"),
                path: "spec.selector".to_string(),
                message: format!(
                    "namespace {namespace} has {} PeerAuthentications without a selector ({}); \
                     Istio applies only the oldest: keep one namespace-wide policy",
                    names.len(),
                    names.join(", ")
                ),
            });
        }
    }
}
