//! Sidecar injection as a pure function: a Pod in, the JSONPatch that adds
//! Loupe's proxy out — what istiod's injector does, with Istio's labels and
//! annotations.
//!
//! The patch adds the init container `istio-init` (first, before the pod's
//! own), which runs `loupe-proxy iptables` with istio-iptables' flags to
//! redirect the pod's traffic through the proxy; the container `istio-proxy`
//! (UID 1337, readiness on `:15021/healthz/ready`, a `preStop` pause so
//! endpoints drop the pod before the proxy stops); the projected token
//! (audience `istio-ca`) and the root certificate ConfigMap; and the
//! `sidecar.istio.io/status` annotation that marks the pod injected.
//! Every operation is valid against the original pod: lists and maps that
//! are absent are added whole, present ones are added to.

use std::collections::BTreeMap;
use std::net::IpAddr;

use json_patch::{AddOperation, Patch, PatchOperation};
use jsonptr::PointerBuf;
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, Lifecycle,
    LifecycleHandler, Pod, ProjectedVolumeSource, ResourceRequirements, SecurityContext,
    ServiceAccountTokenProjection, SleepAction, Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde::Serialize;

use crate::manifest::{CONTROL_SERVICE, NAMESPACE, PUSH_PORT, Settings};

/// Pod label (or annotation) that turns injection off (`"false"`) or on.
pub const INJECT_LABEL: &str = "sidecar.istio.io/inject";
/// Namespace label that turns injection on (`enabled`).
pub const INJECTION_NAMESPACE_LABEL: &str = "istio-injection";
/// Namespace (or pod) label naming the control-plane revision.
pub const REVISION_LABEL: &str = "istio.io/rev";
/// The one revision Loupe installs.
pub const REVISION: &str = "default";
/// Annotation recording what injection added; its presence means "injected".
pub const STATUS_ANNOTATION: &str = "sidecar.istio.io/status";

pub const PROXY_CONTAINER: &str = "istio-proxy";
pub const INIT_CONTAINER: &str = "istio-init";
const TOKEN_VOLUME: &str = "istio-token";
const ROOT_CERT_VOLUME: &str = "istiod-ca-cert";
/// The UID (and GID) the proxy runs as; the redirect exempts its traffic.
pub const PROXY_UID: i64 = 1337;
/// Namespaces never injected, as Istio's injector ignores them.
const IGNORED_NAMESPACES: &[&str] = &["kube-system", "kube-public", "kube-node-lease", NAMESPACE];

/// Ports the proxy listens on that the redirect must leave alone: metrics
/// (15090), readiness (15021) and Istio's agent status port (15020).
const DEFAULT_EXCLUDED_INBOUND: &str = "15090,15021,15020";

/// What injection needs to know about the install.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InjectSettings {
    pub proxy_image: String,
    /// The push stream's address, as proxies dial it.
    pub control_url: String,
    pub revision: String,
}

impl InjectSettings {
    pub fn from_install(settings: &Settings) -> InjectSettings {
        InjectSettings {
            proxy_image: settings.proxy_image(),
            control_url: format!("https://{CONTROL_SERVICE}.{NAMESPACE}.svc:{PUSH_PORT}"),
            revision: REVISION.into(),
        }
    }
}

/// What the injector decided for one pod.
#[derive(Clone, Debug, PartialEq)]
pub enum Injection {
    /// Leave the pod as it is, for this reason.
    Skip(&'static str),
    /// Apply this patch.
    Patch(Patch),
}

/// A pod that cannot be injected as its annotations ask (Istio refuses such
/// pods too, rather than capture traffic it was told not to).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("annotation `{annotation}: {value}`: {problem}")]
pub struct InjectError {
    pub annotation: &'static str,
    pub value: String,
    pub problem: &'static str,
}

/// The injection of `pod`, created in `namespace`.
pub fn inject(
    pod: &Pod,
    namespace: &str,
    settings: &InjectSettings,
) -> Result<Injection, InjectError> {
    let meta = &pod.metadata;
    let empty = BTreeMap::new();
    let labels = meta.labels.as_ref().unwrap_or(&empty);
    let annotations = meta.annotations.as_ref().unwrap_or(&empty);
    let Some(spec) = pod.spec.as_ref() else {
        return Ok(Injection::Skip("the pod has no spec"));
    };
    let opted_out = [labels.get(INJECT_LABEL), annotations.get(INJECT_LABEL)]
        .into_iter()
        .flatten()
        .any(|v| is_false(v));
    if opted_out {
        return Ok(Injection::Skip("sidecar.istio.io/inject is false"));
    }
    if spec.host_network == Some(true) {
        return Ok(Injection::Skip("the pod uses the host's network"));
    }
    if IGNORED_NAMESPACES.contains(&namespace) {
        return Ok(Injection::Skip("the namespace is never injected"));
    }
    let has =
        |list: &Option<Vec<Container>>, name: &str| list.iter().flatten().any(|c| c.name == name);
    if annotations.contains_key(STATUS_ANNOTATION)
        || has(&Some(spec.containers.clone()), PROXY_CONTAINER)
        || has(&spec.init_containers, INIT_CONTAINER)
    {
        return Ok(Injection::Skip("the pod is already injected"));
    }

    let mut ops = Vec::new();
    let init = init_container(annotations, settings)?;
    match spec.init_containers.as_deref() {
        None | Some([]) => ops.push(add("/spec/initContainers", &vec![init])),
        Some(_) => ops.push(add("/spec/initContainers/0", &init)),
    }
    ops.push(add(
        "/spec/containers/-",
        &proxy_container(labels, settings),
    ));
    let volumes = proxy_volumes();
    match spec.volumes.as_deref() {
        None => ops.push(add("/spec/volumes", &volumes)),
        Some(_) => ops.extend(volumes.iter().map(|v| add("/spec/volumes/-", v))),
    }

    let status = serde_json::json!({
        "initContainers": [INIT_CONTAINER],
        "containers": [PROXY_CONTAINER],
        "volumes": [TOKEN_VOLUME, ROOT_CERT_VOLUME],
        "imagePullSecrets": null,
        "revision": settings.revision,
    });
    let mut new_annotations = vec![(STATUS_ANNOTATION, status.to_string())];
    if let Some(app) = spec.containers.first() {
        new_annotations.push(("kubectl.kubernetes.io/default-container", app.name.clone()));
    }
    new_annotations.extend([
        ("prometheus.io/scrape", "true".to_string()),
        ("prometheus.io/port", "15090".to_string()),
        ("prometheus.io/path", "/stats/prometheus".to_string()),
    ]);
    map_entries(
        &mut ops,
        "/metadata/annotations",
        meta.annotations.as_ref(),
        new_annotations,
    );
    let new_labels = vec![
        ("security.istio.io/tlsMode", "istio".to_string()),
        (
            "service.istio.io/canonical-name",
            canonical(
                labels,
                &[
                    "service.istio.io/canonical-name",
                    "app.kubernetes.io/name",
                    "app",
                ],
            )
            .unwrap_or_else(|| workload_name(pod)),
        ),
        (
            "service.istio.io/canonical-revision",
            canonical(
                labels,
                &[
                    "service.istio.io/canonical-revision",
                    "app.kubernetes.io/version",
                    "version",
                ],
            )
            .unwrap_or_else(|| "latest".into()),
        ),
    ];
    map_entries(
        &mut ops,
        "/metadata/labels",
        meta.labels.as_ref(),
        new_labels,
    );
    Ok(Injection::Patch(Patch(ops)))
}

/// Istio reads `false`, `n`, `no`, `off`, `0` as false (any case).
fn is_false(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "false" | "n" | "no" | "off" | "0"
    )
}

fn canonical(labels: &BTreeMap<String, String>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| labels.get(*k)).cloned()
}

/// The pod's name, or its `generateName` without the ReplicaSet's and
/// pod's suffixes (`reviews-v1-7d8f9-` → `reviews-v1`), as Istio names workloads.
fn workload_name(pod: &Pod) -> String {
    if let Some(name) = pod.metadata.name.as_deref().filter(|n| !n.is_empty()) {
        return name.to_string();
    }
    let generated = pod.metadata.generate_name.as_deref().unwrap_or("");
    let base = generated.trim_end_matches('-');
    let parts: Vec<&str> = base.split('-').collect();
    if parts.len() > 2 {
        parts[..parts.len() - 1].join("-")
    } else {
        base.to_string()
    }
}

/// Adds each `(key, value)` to the map at `path`: the whole map when the pod
/// has none, one operation per key it lacks otherwise (existing keys stay).
fn map_entries(
    ops: &mut Vec<PatchOperation>,
    path: &str,
    existing: Option<&BTreeMap<String, String>>,
    entries: Vec<(&str, String)>,
) {
    match existing {
        None => {
            let map: BTreeMap<&str, String> = entries.into_iter().collect();
            ops.push(add(path, &map));
        }
        Some(existing) => {
            for (key, value) in entries {
                if !existing.contains_key(key) {
                    let pointer = format!("{path}/{}", key.replace('~', "~0").replace('/', "~1"));
                    ops.push(add(&pointer, &value));
                }
            }
        }
    }
}

fn add<T: Serialize>(path: &str, value: &T) -> PatchOperation {
    PatchOperation::Add(AddOperation {
        // Every path here is built from literal segments and escaped keys.
        path: PointerBuf::parse(path).unwrap_or_default(),
        value: serde_json::to_value(value).unwrap_or_default(),
    })
}

/// The capture init container: `loupe-proxy iptables` with istio-iptables'
/// flags, from Istio's `traffic.sidecar.istio.io/*` annotations.
fn init_container(
    annotations: &BTreeMap<String, String>,
    settings: &InjectSettings,
) -> Result<Container, InjectError> {
    let get = |key: &str| annotations.get(key).map(String::as_str);
    const INCLUDE_IPS: &str = "traffic.sidecar.istio.io/includeOutboundIPRanges";
    const EXCLUDE_IPS: &str = "traffic.sidecar.istio.io/excludeOutboundIPRanges";
    const INCLUDE_IN: &str = "traffic.sidecar.istio.io/includeInboundPorts";
    const EXCLUDE_IN: &str = "traffic.sidecar.istio.io/excludeInboundPorts";
    const EXCLUDE_OUT: &str = "traffic.sidecar.istio.io/excludeOutboundPorts";
    const INCLUDE_OUT: &str = "traffic.sidecar.istio.io/includeOutboundPorts";

    let include_ips = checked(INCLUDE_IPS, get(INCLUDE_IPS).unwrap_or("*"), cidrs)?;
    let exclude_ips = checked(EXCLUDE_IPS, get(EXCLUDE_IPS).unwrap_or(""), cidrs)?;
    let include_in = checked(INCLUDE_IN, get(INCLUDE_IN).unwrap_or("*"), ports)?;
    let mut exclude_in = DEFAULT_EXCLUDED_INBOUND.to_string();
    if let Some(extra) = get(EXCLUDE_IN) {
        for port in checked(EXCLUDE_IN, extra, ports)?
            .split(',')
            .filter(|p| !p.is_empty())
        {
            if !exclude_in.split(',').any(|p| p == port) {
                exclude_in.push(',');
                exclude_in.push_str(port);
            }
        }
    }
    let mut args: Vec<String> = [
        "iptables", "-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend([
        include_ips,
        "-x".into(),
        exclude_ips,
        "-b".into(),
        include_in,
        "-d".into(),
        exclude_in,
    ]);
    if let Some(value) = get(EXCLUDE_OUT) {
        args.extend(["-o".into(), checked(EXCLUDE_OUT, value, ports)?]);
    }
    if let Some(value) = get(INCLUDE_OUT) {
        args.extend(["-q".into(), checked(INCLUDE_OUT, value, ports)?]);
    }
    Ok(Container {
        name: INIT_CONTAINER.into(),
        image: Some(settings.proxy_image.clone()),
        command: Some(vec!["loupe-proxy".into()]),
        args: Some(args),
        resources: Some(resources()),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            privileged: Some(false),
            read_only_root_filesystem: Some(false),
            run_as_user: Some(0),
            run_as_group: Some(0),
            run_as_non_root: Some(false),
            capabilities: Some(Capabilities {
                add: Some(vec!["NET_ADMIN".into(), "NET_RAW".into()]),
                drop: Some(vec!["ALL".into()]),
            }),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// The value with spaces removed, if `valid` accepts it.
fn checked(
    annotation: &'static str,
    value: &str,
    valid: fn(&str) -> Result<(), &'static str>,
) -> Result<String, InjectError> {
    let value: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    valid(&value).map_err(|problem| InjectError {
        annotation,
        value: value.clone(),
        problem,
    })?;
    Ok(value)
}

/// `*`, empty, or comma-separated CIDRs (`10.0.0.0/8,fd00::/8`).
fn cidrs(value: &str) -> Result<(), &'static str> {
    if value == "*" || value.is_empty() {
        return Ok(());
    }
    for cidr in value.split(',') {
        let (ip, bits) = cidr
            .split_once('/')
            .ok_or("expected CIDRs such as 10.0.0.0/8, or *")?;
        let ip: IpAddr = ip.parse().map_err(|_| "not an IP address range (CIDR)")?;
        let bits: u8 = bits
            .parse()
            .map_err(|_| "the prefix length is not a number")?;
        if bits > if ip.is_ipv4() { 32 } else { 128 } {
            return Err("the prefix length is too long for the address");
        }
    }
    Ok(())
}

/// `*`, empty, or comma-separated port numbers.
fn ports(value: &str) -> Result<(), &'static str> {
    if value == "*" || value.is_empty() {
        return Ok(());
    }
    for port in value.split(',') {
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => return Err("expected port numbers (1-65535) separated by commas, or *"),
        }
    }
    Ok(())
}

fn resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(
            [
                ("cpu".to_string(), Quantity("100m".into())),
                ("memory".to_string(), Quantity("128Mi".into())),
            ]
            .into(),
        ),
        ..Default::default()
    }
}

/// The sidecar: `loupe-proxy --capture`, identified by the downward API.
fn proxy_container(labels: &BTreeMap<String, String>, settings: &InjectSettings) -> Container {
    let field = crate::manifest::field_env;
    let label_list = labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let args = [
        "--capture",
        "--workload",
        "$(POD_NAME)",
        "--namespace",
        "$(POD_NAMESPACE)",
        "--service-account",
        "$(SERVICE_ACCOUNT)",
        "--control",
        &settings.control_url,
        "--ca-root",
        "/var/run/secrets/istio/root-cert.pem",
        "--token-file",
        "/var/run/secrets/tokens/istio-token",
    ];
    Container {
        name: PROXY_CONTAINER.into(),
        image: Some(settings.proxy_image.clone()),
        command: Some(vec!["loupe-proxy".into()]),
        args: Some(args.iter().map(|s| s.to_string()).collect()),
        env: Some(vec![
            field("POD_NAME", "metadata.name"),
            field("POD_NAMESPACE", "metadata.namespace"),
            field("SERVICE_ACCOUNT", "spec.serviceAccountName"),
            field("INSTANCE_IP", "status.podIP"),
            EnvVar {
                name: "LOUPE_PROXY_LABELS".into(),
                value: Some(label_list),
                ..Default::default()
            },
        ]),
        ports: Some(vec![
            ContainerPort {
                name: Some("http-envoy-prom".into()),
                container_port: 15090,
                protocol: Some("TCP".into()),
                ..Default::default()
            },
            ContainerPort {
                name: Some("status-port".into()),
                container_port: 15021,
                protocol: Some("TCP".into()),
                ..Default::default()
            },
        ]),
        readiness_probe: Some(k8s_openapi::api::core::v1::Probe {
            initial_delay_seconds: Some(1),
            period_seconds: Some(2),
            timeout_seconds: Some(3),
            failure_threshold: Some(30),
            ..crate::manifest::http_probe("/healthz/ready", 15021)
        }),
        // Endpoints stop sending to the pod before the proxy gets SIGTERM,
        // which then drains its connections.
        lifecycle: Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                sleep: Some(SleepAction { seconds: 5 }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        resources: Some(resources()),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            privileged: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_user: Some(PROXY_UID),
            run_as_group: Some(PROXY_UID),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        volume_mounts: Some(proxy_volume_mounts()),
        ..Default::default()
    }
}

/// Where a proxy reads its token and the mesh's root certificate.
pub(crate) fn proxy_volume_mounts() -> Vec<VolumeMount> {
    vec![
        VolumeMount {
            name: TOKEN_VOLUME.into(),
            mount_path: "/var/run/secrets/tokens".into(),
            read_only: Some(true),
            ..Default::default()
        },
        VolumeMount {
            name: ROOT_CERT_VOLUME.into(),
            mount_path: "/var/run/secrets/istio".into(),
            read_only: Some(true),
            ..Default::default()
        },
    ]
}

/// The projected service-account token (audience `istio-ca`, what the
/// control plane's TokenReview checks) and the root certificate ConfigMap
/// the control plane writes in every namespace.
pub(crate) fn proxy_volumes() -> Vec<Volume> {
    vec![
        Volume {
            name: TOKEN_VOLUME.into(),
            projected: Some(ProjectedVolumeSource {
                sources: Some(vec![VolumeProjection {
                    service_account_token: Some(ServiceAccountTokenProjection {
                        audience: Some("istio-ca".into()),
                        expiration_seconds: Some(43200),
                        path: "istio-token".into(),
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        },
        Volume {
            name: ROOT_CERT_VOLUME.into(),
            config_map: Some(ConfigMapVolumeSource {
                name: "istio-ca-root-cert".into(),
                ..Default::default()
            }),
            ..Default::default()
        },
    ]
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn generated(name: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                generate_name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn workload_names_drop_the_replica_set_and_pod_suffixes() {
        assert_eq!(
            workload_name(&generated("reviews-v1-7d8f9c6b5-")),
            "reviews-v1"
        );
        assert_eq!(workload_name(&generated("web-")), "web");
    }

    #[test]
    fn annotation_values_are_checked_as_istio_checks_them() {
        assert!(cidrs("*").is_ok());
        assert!(cidrs("").is_ok());
        assert!(cidrs("10.0.0.0/8,fd00::/8").is_ok());
        assert!(cidrs("10.0.0.0").is_err());
        assert!(cidrs("10.0.0.0/33").is_err());
        assert!(cidrs("fd00::/129").is_err());
        assert!(ports("80,443").is_ok());
        assert!(ports("0").is_err());
        assert!(ports("http").is_err());
        assert!(ports("70000").is_err());
    }

    #[test]
    fn istio_booleans() {
        for v in ["false", "False", "n", "no", "off", "0"] {
            assert!(is_false(v), "{v}");
        }
        for v in ["true", "yes", "enabled", ""] {
            assert!(!is_false(v), "{v}");
        }
    }

    #[test]
    fn a_pod_in_istio_system_is_never_injected() {
        let pod = Pod {
            spec: Some(Default::default()),
            ..Default::default()
        };
        let settings =
            InjectSettings::from_install(&Settings::for_profile(crate::manifest::Profile::Demo));
        assert_eq!(
            inject(&pod, "istio-system", &settings),
            Ok(Injection::Skip("the namespace is never injected"))
        );
        assert!(matches!(
            inject(&pod, "default", &settings),
            Ok(Injection::Patch(_))
        ));
    }
}
