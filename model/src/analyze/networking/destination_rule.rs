//! DestinationRule checks: subsets (named, unique), traffic policy values,
//! and hosts two DestinationRules claim.

use std::collections::{BTreeMap, HashMap};

use super::{Context, Sink};
use crate::analyze::{Diagnostic, Severity};
use crate::networking::traffic_policy::{
    ConnectionPoolSettings, LoadBalancerSettings, OutlierDetection, PortTrafficPolicy,
};
use crate::networking::{ClientTlsMode, ClientTlsSettings, DestinationRule, TrafficPolicy};
use crate::resource::Resource;

pub(super) fn check(dr: &DestinationRule, _ctx: &Context<'_>, sink: &mut Sink<'_>) {
    let spec = &dr.spec;
    if spec.host.trim().is_empty() {
        sink.error(
            "spec.host",
            "the DestinationRule has no host; name the service it configures, e.g. `reviews`",
        );
    }
    if let Some(tp) = &spec.traffic_policy {
        traffic_policy(sink, "spec.trafficPolicy", tp);
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, subset) in spec.subsets.iter().enumerate() {
        let path = format!("spec.subsets[{i}]");
        if subset.name.trim().is_empty() {
            sink.error(
                format!("{path}.name"),
                "the subset has no name; routes refer to subsets by name",
            );
        } else if let Some(first) = seen.insert(subset.name.as_str(), i) {
            sink.error(
                format!("{path}.name"),
                format!(
                    "duplicate subset name {:?} (also spec.subsets[{first}]); Istio keeps only one, \
                     so rename or remove this one",
                    subset.name
                ),
            );
            seen.insert(subset.name.as_str(), first);
        }
        if let Some(tp) = &subset.traffic_policy {
            traffic_policy(sink, &format!("{path}.trafficPolicy"), tp);
        }
    }
}

fn traffic_policy(sink: &mut Sink<'_>, path: &str, tp: &TrafficPolicy) {
    if !tp.port_level_settings.is_empty() {
        sink.not_enforced(
            format!("{path}.portLevelSettings"),
            "`portLevelSettings` (per-port policies; none of them applies, on any port)",
        );
    }
    if tp.tunnel.is_some() {
        sink.not_enforced(
            format!("{path}.tunnel"),
            "`tunnel` (HTTP CONNECT tunnelling)",
        );
    }
    if tp.proxy_protocol.is_some() {
        sink.not_enforced(format!("{path}.proxyProtocol"), "`proxyProtocol`");
    }
    if let Some(lb) = &tp.load_balancer {
        load_balancer(sink, &format!("{path}.loadBalancer"), lb);
    }
    if let Some(cp) = &tp.connection_pool {
        connection_pool(sink, &format!("{path}.connectionPool"), cp);
    }
    if let Some(od) = &tp.outlier_detection {
        outlier_detection(sink, &format!("{path}.outlierDetection"), od);
    }
    if let Some(tls) = &tp.tls {
        client_tls(sink, &format!("{path}.tls"), tls);
    }
    for (i, p) in tp.port_level_settings.iter().enumerate() {
        port_level(sink, &format!("{path}.portLevelSettings[{i}]"), p);
    }
}

fn port_level(sink: &mut Sink<'_>, path: &str, p: &PortTrafficPolicy) {
    match p.port.as_ref().and_then(|p| p.number) {
        None => sink.error(
            format!("{path}.port"),
            "port-level settings need `port.number`",
        ),
        Some(n) if !(1..=65535).contains(&n) => sink.error(
            format!("{path}.port.number"),
            format!("port {n} is outside 1–65535"),
        ),
        Some(_) => {}
    }
    if let Some(lb) = &p.load_balancer {
        load_balancer(sink, &format!("{path}.loadBalancer"), lb);
    }
    if let Some(cp) = &p.connection_pool {
        connection_pool(sink, &format!("{path}.connectionPool"), cp);
    }
    if let Some(od) = &p.outlier_detection {
        outlier_detection(sink, &format!("{path}.outlierDetection"), od);
    }
    if let Some(tls) = &p.tls {
        client_tls(sink, &format!("{path}.tls"), tls);
    }
}

fn load_balancer(sink: &mut Sink<'_>, path: &str, lb: &LoadBalancerSettings) {
    if lb.consistent_hash.is_some() {
        sink.not_enforced(
            format!("{path}.consistentHash"),
            "`consistentHash` (session affinity; requests are balanced as `simple` says, \
             ROUND_ROBIN by default)",
        );
    }
    if lb.locality_lb_setting.is_some() {
        sink.not_enforced(
            format!("{path}.localityLbSetting"),
            "`localityLbSetting` (locality-aware load balancing)",
        );
    }
    if lb.warmup.is_some() || lb.warmup_duration_secs.is_some() {
        sink.not_enforced(format!("{path}.warmup"), "`warmup` (slow start)");
    }
    if lb.simple.is_some() && lb.consistent_hash.is_some() {
        sink.error(
            path,
            "`simple` and `consistentHash` cannot both be set; keep one",
        );
    }
    sink.duration(
        &format!("{path}.warmupDurationSecs"),
        lb.warmup_duration_secs.as_ref(),
    );
    if let Some(w) = &lb.warmup {
        sink.duration(&format!("{path}.warmup.duration"), w.duration.as_ref());
        sink.percent(&format!("{path}.warmup.minimumPercent"), w.minimum_percent);
    }
    if let Some(ch) = &lb.consistent_hash {
        let keys = [
            ch.http_header_name.is_some(),
            ch.http_cookie.is_some(),
            ch.use_source_ip.is_some(),
            ch.http_query_parameter_name.is_some(),
        ];
        if keys.iter().filter(|k| **k).count() > 1 {
            sink.error(
                format!("{path}.consistentHash"),
                "consistentHash sets more than one hash key; keep one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName",
            );
        }
        if let Some(c) = &ch.http_cookie {
            sink.duration(
                &format!("{path}.consistentHash.httpCookie.ttl"),
                c.ttl.as_ref(),
            );
        }
    }
    if let Some(loc) = &lb.locality_lb_setting {
        for (i, d) in loc.distribute.iter().enumerate() {
            let total: u32 = d.to.values().sum();
            if total != 100 {
                sink.error(
                    format!("{path}.localityLbSetting.distribute[{i}].to"),
                    format!("locality weights sum to {total}; they must sum to 100"),
                );
            }
        }
    }
}

fn connection_pool(sink: &mut Sink<'_>, path: &str, cp: &ConnectionPoolSettings) {
    if cp.tcp.is_some() {
        sink.not_enforced(
            format!("{path}.tcp"),
            "`connectionPool.tcp` (connection limits, connect timeout, keepalive)",
        );
    }
    if let Some(http) = &cp.http {
        let limits = [
            (
                "http1MaxPendingRequests",
                http.http1_max_pending_requests.is_some(),
            ),
            ("http2MaxRequests", http.http2_max_requests.is_some()),
            (
                "maxRequestsPerConnection",
                http.max_requests_per_connection.is_some(),
            ),
            ("maxRetries", http.max_retries.is_some()),
            ("idleTimeout", http.idle_timeout.is_some()),
            (
                "maxConcurrentStreams",
                http.max_concurrent_streams.is_some(),
            ),
        ];
        for (field, set) in limits {
            if set {
                sink.not_enforced(
                    format!("{path}.http.{field}"),
                    &format!(
                        "`connectionPool.http.{field}` (h2UpgradePolicy and useClientProtocol are)"
                    ),
                );
            }
        }
    }
    if let Some(tcp) = &cp.tcp {
        sink.duration(
            &format!("{path}.tcp.connectTimeout"),
            tcp.connect_timeout.as_ref(),
        );
        sink.duration(
            &format!("{path}.tcp.maxConnectionDuration"),
            tcp.max_connection_duration.as_ref(),
        );
        sink.duration(
            &format!("{path}.tcp.idleTimeout"),
            tcp.idle_timeout.as_ref(),
        );
        if let Some(k) = &tcp.tcp_keepalive {
            sink.duration(&format!("{path}.tcp.tcpKeepalive.time"), k.time.as_ref());
            sink.duration(
                &format!("{path}.tcp.tcpKeepalive.interval"),
                k.interval.as_ref(),
            );
        }
        if let Some(n) = tcp.max_connections.filter(|n| *n < 0) {
            sink.error(
                format!("{path}.tcp.maxConnections"),
                format!("{n} is negative; use 0 or more"),
            );
        }
    }
    if let Some(http) = &cp.http {
        sink.duration(
            &format!("{path}.http.idleTimeout"),
            http.idle_timeout.as_ref(),
        );
        for (field, v) in [
            ("http1MaxPendingRequests", http.http1_max_pending_requests),
            ("http2MaxRequests", http.http2_max_requests),
            ("maxRequestsPerConnection", http.max_requests_per_connection),
            ("maxRetries", http.max_retries),
            ("maxConcurrentStreams", http.max_concurrent_streams),
        ] {
            if let Some(n) = v.filter(|n| *n < 0) {
                sink.error(
                    format!("{path}.http.{field}"),
                    format!("{n} is negative; use 0 or more"),
                );
            }
        }
    }
}

fn outlier_detection(sink: &mut Sink<'_>, path: &str, od: &OutlierDetection) {
    sink.not_enforced(
        path,
        "`outlierDetection` (failing endpoints are not ejected; retries pick the next endpoint)",
    );
    sink.duration(&format!("{path}.interval"), od.interval.as_ref());
    sink.duration(
        &format!("{path}.baseEjectionTime"),
        od.base_ejection_time.as_ref(),
    );
    for (field, v) in [
        ("maxEjectionPercent", od.max_ejection_percent),
        ("minHealthPercent", od.min_health_percent),
    ] {
        sink.percent(&format!("{path}.{field}"), v.map(f64::from));
    }
}

fn client_tls(sink: &mut Sink<'_>, path: &str, tls: &ClientTlsSettings) {
    let originates = matches!(
        tls.mode,
        Some(ClientTlsMode::Simple | ClientTlsMode::Mutual)
    );
    // Origination is run per host: the host-level policy's (portLevelSettings
    // are reported as a whole above).
    if originates && path.starts_with("spec.subsets[") {
        sink.warning(
            format!("{path}.mode"),
            "SIMPLE/MUTUAL on a subset is accepted but not enforced by Loupe's proxies (TLS \
             origination is per host: set it in `spec.trafficPolicy.tls`); the host's TLS settings apply",
        );
    }
    if originates {
        if tls.credential_name.is_some() {
            sink.not_enforced(
                format!("{path}.credentialName"),
                "`credentialName` (a Kubernetes Secret; in local mode give `caCertificates`, \
                 `clientCertificate` and `privateKey` as files on the proxy's host)",
            );
        }
        if tls.ca_crl.is_some() {
            sink.not_enforced(
                format!("{path}.caCrl"),
                "`caCrl` (certificate revocation lists)",
            );
        }
        for (i, san) in tls.subject_alt_names.iter().enumerate() {
            if !is_dns_name_or_ip(san) {
                sink.error(
                    format!("{path}.subjectAltNames[{i}]"),
                    format!(
                        "{san:?}: Loupe matches a server's DNS or IP SANs only; write a DNS name or an IP address"
                    ),
                );
            }
        }
        if let Some(sni) = &tls.sni
            && !is_dns_name_or_ip(sni)
        {
            sink.error(
                format!("{path}.sni"),
                format!("{sni:?} is not a DNS name or an IP address"),
            );
        }
    }
    if tls.mode == Some(ClientTlsMode::Mutual)
        && tls.credential_name.is_none()
        && (tls.client_certificate.is_none() || tls.private_key.is_none())
    {
        sink.error(
            format!("{path}.mode"),
            "MUTUAL TLS needs a client certificate: set `credentialName`, or `clientCertificate` and `privateKey` (or use ISTIO_MUTUAL for mesh certificates)",
        );
    }
}

/// Two DestinationRules for the same host (and the same workloads): Istio
/// merges them unpredictably, so one's policy or subsets may not apply.
pub(super) fn check_conflicting_hosts(
    resources: &[Resource],
    ctx: &Context<'_>,
    out: &mut Vec<Diagnostic>,
) {
    let mut by_host: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (ri, r) in resources.iter().enumerate() {
        let Resource::DestinationRule(dr) = r else {
            continue;
        };
        if ctx.superseded.contains(&ri) {
            continue;
        }
        if dr.spec.host.trim().is_empty() {
            continue;
        }
        let host = ctx.fqdn(&dr.spec.host, dr.metadata.namespace());
        let selector = dr
            .spec
            .workload_selector
            .as_ref()
            .map(|s| format!("{:?}", s.match_labels))
            .unwrap_or_default();
        by_host.entry((host, selector)).or_default().push(ri);
    }
    for ((host, _), rules) in by_host.into_iter().filter(|(_, r)| r.len() > 1) {
        for ri in &rules {
            let others: Vec<String> = rules
                .iter()
                .filter(|o| *o != ri)
                .map(|o| {
                    let m = resources[*o].meta();
                    format!("{}/{}", m.namespace(), m.name)
                })
                .collect();
            out.push(Diagnostic {
                severity: Severity::Error,
                resource: resources[*ri].key().to_string(),
                path: "spec.host".into(),
                message: format!(
                    "host {host} also has DestinationRule {}; with two rules for one host Istio \
                     applies only one's traffic policy and subsets. Merge them into one DestinationRule",
                    others.join(", ")
                ),
            });
        }
    }
}

/// A name TLS can verify a server certificate against: a DNS name
/// (letters, digits, `-`, dots; `*.` first for a wildcard) or an IP address.
fn is_dns_name_or_ip(s: &str) -> bool {
    if s.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let s = s.strip_prefix("*.").unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}
