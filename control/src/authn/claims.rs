//! What an authenticated proxy may say about itself. Its `Hello` must
//! describe the workload its credential is bound to and nothing more; any
//! claim beyond that is refused, naming the mismatch, before the proxy
//! reaches the registry. Sizes are capped first, so a huge Hello costs
//! nothing but its refusal.

use std::collections::{BTreeMap, BTreeSet};

use loupe_push::Hello;

use super::Authenticated;

/// At most this many labels in a Hello.
pub const MAX_LABELS: usize = 64;
/// A Kubernetes label key: a DNS-subdomain prefix (253), `/`, a name (63).
pub const MAX_LABEL_KEY_LEN: usize = 317;
/// A Kubernetes label value.
pub const MAX_LABEL_VALUE_LEN: usize = 63;
/// At most this many services in a Hello.
pub const MAX_SERVICES: usize = 64;
/// Names, namespaces, service accounts, addresses.
pub const MAX_FIELD_LEN: usize = 253;

/// A claim the credential does not back, or a Hello too large to read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("Hello.{field} is {len} bytes, above the limit of {max}")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("Hello has {count} {what}, above the limit of {max}")]
    TooMany {
        what: &'static str,
        count: usize,
        max: usize,
    },
    #[error("Hello claims workload {claimed:?} but the credential is for WorkloadEntry {bound}")]
    Workload { claimed: String, bound: String },
    #[error("Hello claims namespace {claimed:?} but the credential is for namespace {bound:?}")]
    Namespace { claimed: String, bound: String },
    #[error(
        "Hello claims service account {claimed:?} but WorkloadEntry {entry} declares {declared:?}"
    )]
    ServiceAccount {
        claimed: String,
        declared: String,
        entry: String,
    },
    #[error("Hello claims label {key}={claimed:?} but WorkloadEntry {entry} {}", match declared {
        Some(v) => format!("declares {key}={v:?}"),
        None => format!("has no label {key}"),
    })]
    Label {
        key: String,
        claimed: String,
        declared: Option<String>,
        entry: String,
    },
    #[error("Hello claims inbound address {claimed:?} but WorkloadEntry {entry} {reason}")]
    InboundAddress {
        claimed: String,
        reason: String,
        entry: String,
    },
    #[error(
        "Hello claims metrics address {claimed:?} but WorkloadEntry {entry} has address {declared:?} (the collector scrapes only the workload's own host)"
    )]
    MetricsAddress {
        claimed: String,
        declared: String,
        entry: String,
    },
    #[error(
        "Hello claims service {service:?} but no ServiceEntry selecting WorkloadEntry {entry} declares host {host}"
    )]
    Service {
        service: String,
        host: String,
        entry: String,
    },
}

/// What the operator declared about one workload: its WorkloadEntry, and
/// the services whose ServiceEntries select it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Declared {
    pub namespace: String,
    pub name: String,
    /// The entry's address (the host proxies reach it at).
    pub address: String,
    /// Port name → port, the entry's `ports`.
    pub ports: BTreeMap<String, u32>,
    pub labels: BTreeMap<String, String>,
    /// The entry's `serviceAccount` (Istio's `default` when absent).
    pub service_account: String,
    /// Hosts of the ServiceEntries that select the entry.
    pub hosts: BTreeSet<String>,
}

impl Declared {
    fn entry(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// The Hello's namespace as the registry keeps it (empty means `default`).
pub fn hello_namespace(hello: &Hello) -> &str {
    match hello.namespace.trim() {
        "" => loupe_model::meta::DEFAULT_NAMESPACE,
        ns => ns,
    }
}

/// Refuses a Hello too large to be honest, before reading it further.
pub fn check_sizes(hello: &Hello) -> Result<(), Mismatch> {
    let fields = [
        ("workload", &hello.workload),
        ("namespace", &hello.namespace),
        ("service_account", &hello.service_account),
        ("inbound_address", &hello.inbound_address),
        ("metrics_address", &hello.metrics_address),
    ];
    for (field, value) in fields {
        too_long(field, value, MAX_FIELD_LEN)?;
    }
    if hello.labels.len() > MAX_LABELS {
        return Err(Mismatch::TooMany {
            what: "labels",
            count: hello.labels.len(),
            max: MAX_LABELS,
        });
    }
    for (k, v) in &hello.labels {
        too_long("labels (a key)", k, MAX_LABEL_KEY_LEN)?;
        too_long("labels (a value)", v, MAX_LABEL_VALUE_LEN)?;
    }
    if hello.services.len() > MAX_SERVICES {
        return Err(Mismatch::TooMany {
            what: "services",
            count: hello.services.len(),
            max: MAX_SERVICES,
        });
    }
    for s in &hello.services {
        too_long("services (a name)", s, MAX_FIELD_LEN)?;
    }
    Ok(())
}

fn too_long(field: &'static str, value: &str, max: usize) -> Result<(), Mismatch> {
    if value.len() > max {
        return Err(Mismatch::TooLong {
            field,
            len: value.len(),
            max,
        });
    }
    Ok(())
}

/// The Hello names the workload and namespace the credential is bound to.
pub fn check_identity(hello: &Hello, bound: &Authenticated) -> Result<(), Mismatch> {
    let namespace = hello_namespace(hello);
    if namespace != bound.namespace {
        return Err(Mismatch::Namespace {
            claimed: namespace.to_string(),
            bound: bound.namespace.clone(),
        });
    }
    if hello.workload != bound.workload_entry {
        return Err(Mismatch::Workload {
            claimed: hello.workload.clone(),
            bound: format!("{}/{}", bound.namespace, bound.workload_entry),
        });
    }
    Ok(())
}

/// Every other claim of the Hello is backed by the declaration: its
/// service account, each label (same value), the inbound address (the
/// entry's host, one of its ports), the metrics address (the entry's host,
/// or a wildcard bind), each service (a ServiceEntry that selects the entry
/// declares its host `NAME.NS.svc.cluster.local`).
pub fn check_declared(hello: &Hello, declared: &Declared) -> Result<(), Mismatch> {
    if hello.service_account != declared.service_account {
        return Err(Mismatch::ServiceAccount {
            claimed: hello.service_account.clone(),
            declared: declared.service_account.clone(),
            entry: declared.entry(),
        });
    }
    // Sorted, so the first mismatch named is the same every time.
    let labels: BTreeMap<&String, &String> = hello.labels.iter().collect();
    for (key, value) in labels {
        if declared.labels.get(key) != Some(value) {
            return Err(Mismatch::Label {
                key: key.clone(),
                claimed: value.clone(),
                declared: declared.labels.get(key).cloned(),
                entry: declared.entry(),
            });
        }
    }
    if !hello.inbound_address.trim().is_empty() {
        check_inbound(hello.inbound_address.trim(), declared)?;
    }
    let metrics = hello.metrics_address.trim();
    if !metrics.is_empty() {
        let host_ok = split_host_port(metrics).is_some_and(|(host, _)| {
            same_host(host, &declared.address)
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_unspecified())
        });
        if !host_ok {
            return Err(Mismatch::MetricsAddress {
                claimed: metrics.to_string(),
                declared: declared.address.clone(),
                entry: declared.entry(),
            });
        }
    }
    for service in &hello.services {
        let service = service.trim();
        if service.is_empty() {
            continue;
        }
        let host = format!(
            "{service}.{}.{}",
            declared.namespace,
            crate::registry::CLUSTER_DOMAIN
        );
        if !declared.hosts.contains(&host) {
            return Err(Mismatch::Service {
                service: service.to_string(),
                host,
                entry: declared.entry(),
            });
        }
    }
    Ok(())
}

fn check_inbound(claimed: &str, declared: &Declared) -> Result<(), Mismatch> {
    let refuse = |reason: String| Mismatch::InboundAddress {
        claimed: claimed.to_string(),
        reason,
        entry: declared.entry(),
    };
    let (host, port) =
        split_host_port(claimed).ok_or_else(|| refuse("expects HOST:PORT".to_string()))?;
    if !same_host(host, &declared.address) {
        return Err(refuse(format!("has address {:?}", declared.address)));
    }
    if !declared.ports.values().any(|p| *p == port) {
        let ports: Vec<String> = declared
            .ports
            .iter()
            .map(|(name, p)| format!("{name}: {p}"))
            .collect();
        return Err(refuse(format!("declares ports {{{}}}", ports.join(", "))));
    }
    Ok(())
}

fn same_host(host: &str, declared: &str) -> bool {
    host.eq_ignore_ascii_case(declared.trim_matches(['[', ']']))
}

/// `host:port` or `[v6]:port`.
fn split_host_port(addr: &str) -> Option<(&str, u32)> {
    let (host, port) = addr.rsplit_once(':')?;
    let port: u32 = port.parse().ok().filter(|p| (1..=65535).contains(p))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    (!host.is_empty()).then_some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> Hello {
        Hello {
            workload: "reviews-v1".into(),
            namespace: "default".into(),
            service_account: "bookinfo-reviews".into(),
            labels: [("app", "reviews"), ("version", "v1")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            inbound_address: "127.0.0.1:9081".into(),
            metrics_address: "127.0.0.1:9083".into(),
            services: vec!["reviews".into()],
            gateway: false,
        }
    }

    fn declared() -> Declared {
        Declared {
            namespace: "default".into(),
            name: "reviews-v1".into(),
            address: "127.0.0.1".into(),
            ports: [("http".to_string(), 9081)].into_iter().collect(),
            labels: [("app", "reviews"), ("version", "v1"), ("team", "books")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            service_account: "bookinfo-reviews".into(),
            hosts: ["reviews.default.svc.cluster.local".to_string()]
                .into_iter()
                .collect(),
        }
    }

    fn bound() -> Authenticated {
        Authenticated {
            namespace: "default".into(),
            workload_entry: "reviews-v1".into(),
        }
    }

    #[test]
    fn a_hello_that_matches_its_entry_passes() {
        let h = hello();
        assert_eq!(check_sizes(&h), Ok(()));
        assert_eq!(check_identity(&h, &bound()), Ok(()));
        assert_eq!(check_declared(&h, &declared()), Ok(()));
        // Fewer labels than declared, no services, no inbound: still honest.
        let mut h = hello();
        h.labels.remove("version");
        h.services.clear();
        h.inbound_address.clear();
        assert_eq!(check_declared(&h, &declared()), Ok(()));
        // A wildcard bind for the admin port is the workload's own host.
        let mut h = hello();
        h.metrics_address = "0.0.0.0:15090".into();
        assert_eq!(check_declared(&h, &declared()), Ok(()));
        // An empty namespace is `default`.
        let mut h = hello();
        h.namespace.clear();
        assert_eq!(check_identity(&h, &bound()), Ok(()));
    }

    #[test]
    fn each_claim_beyond_the_entry_is_refused_by_name() {
        let refused = |edit: &dyn Fn(&mut Hello)| {
            let mut h = hello();
            edit(&mut h);
            check_identity(&h, &bound())
                .and_then(|()| check_declared(&h, &declared()))
                .unwrap_err()
                .to_string()
        };
        let m = refused(&|h| h.workload = "ratings-v1".into());
        assert!(
            m.contains("\"ratings-v1\"") && m.contains("default/reviews-v1"),
            "{m}"
        );
        let m = refused(&|h| h.namespace = "shop".into());
        assert!(m.contains("namespace \"shop\""), "{m}");
        let m = refused(&|h| h.service_account = "bookinfo-productpage".into());
        assert!(
            m.contains("bookinfo-productpage") && m.contains("declares \"bookinfo-reviews\""),
            "{m}"
        );
        let m = refused(&|h| {
            h.labels.insert("version".into(), "v3".into());
        });
        assert!(
            m.contains("version=\"v3\"") && m.contains("declares version=\"v1\""),
            "{m}"
        );
        let m = refused(&|h| {
            h.labels.insert("admin".into(), "true".into());
        });
        assert!(m.contains("has no label admin"), "{m}");
        let m = refused(&|h| h.inbound_address = "10.0.0.9:9081".into());
        assert!(m.contains("has address \"127.0.0.1\""), "{m}");
        let m = refused(&|h| h.inbound_address = "127.0.0.1:9999".into());
        assert!(m.contains("declares ports {http: 9081}"), "{m}");
        let m = refused(&|h| h.inbound_address = "nonsense".into());
        assert!(m.contains("HOST:PORT"), "{m}");
        let m = refused(&|h| h.metrics_address = "10.0.0.7:15090".into());
        assert!(m.contains("metrics address \"10.0.0.7:15090\""), "{m}");
        let m = refused(&|h| h.workload = " reviews-v1".into());
        assert!(m.contains("\" reviews-v1\""), "{m}");
        let m = refused(&|h| h.services.push("ratings".into()));
        assert!(m.contains("ratings.default.svc.cluster.local"), "{m}");
    }

    #[test]
    fn oversized_hellos_are_refused_before_anything_else() {
        let mut h = hello();
        h.labels = (0..65).map(|i| (format!("k{i}"), "v".into())).collect();
        assert!(matches!(
            check_sizes(&h),
            Err(Mismatch::TooMany { what: "labels", .. })
        ));
        let mut h = hello();
        h.labels.insert("k".into(), "v".repeat(64));
        assert!(matches!(check_sizes(&h), Err(Mismatch::TooLong { .. })));
        let mut h = hello();
        h.workload = "w".repeat(254);
        assert!(matches!(
            check_sizes(&h),
            Err(Mismatch::TooLong {
                field: "workload",
                ..
            })
        ));
        let mut h = hello();
        h.services = (0..65).map(|i| format!("s{i}")).collect();
        assert!(matches!(
            check_sizes(&h),
            Err(Mismatch::TooMany {
                what: "services",
                ..
            })
        ));
    }

    #[test]
    fn addresses_split_with_ipv6_brackets() {
        assert_eq!(split_host_port("127.0.0.1:80"), Some(("127.0.0.1", 80)));
        assert_eq!(split_host_port("[::1]:80"), Some(("::1", 80)));
        assert_eq!(split_host_port("h:0"), None);
        assert_eq!(split_host_port(":80"), None);
    }
}
