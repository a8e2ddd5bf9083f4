//! Deployments and Services: the control plane (`loupe-control`), the
//! collector, the console (port 20001, as Kiali's), and the ingress gateway
//! (`istio: ingressgateway`, so Istio's Gateway selectors pick it) behind a
//! LoadBalancer.
//!
//! The control plane runs `loupe control --kubernetes` (cluster mode, see
//! `loupe-cluster`) with the webhooks on `--webhook-listen`.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    HTTPGetAction, ObjectFieldSelector, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    SecretKeySelector, SecurityContext, Service, ServicePort, ServiceSpec, TCPSocketAction, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::rbac::GATEWAY_SERVICE_ACCOUNT;
use super::{
    CONTROL_SERVICE, DATABASE_SECRET, NAMESPACE, PUSH_PORT, Settings, WEBHOOK_PORT,
    WEBHOOK_SERVICE_PORT, json, labels, meta,
};

/// One port: its name, the Service's port and the container's.
struct Port {
    name: &'static str,
    port: u16,
    target: u16,
}

const fn port(name: &'static str, port: u16, target: u16) -> Port {
    Port { name, port, target }
}

pub(super) fn objects(settings: &Settings, out: &mut Vec<serde_json::Value>) {
    let image = settings.loupe_image();
    part(
        out,
        Part {
            name: CONTROL_SERVICE,
            replicas: settings.control_replicas,
            container: Container {
                image: Some(image.clone()),
                args: Some(strings(&[
                    "control",
                    "--kubernetes",
                    &format!("--listen=0.0.0.0:{PUSH_PORT}"),
                    &format!("--webhook-listen=0.0.0.0:{WEBHOOK_PORT}"),
                    "--data-dir=/var/lib/loupe",
                ])),
                readiness_probe: Some(tcp_probe(PUSH_PORT)),
                volume_mounts: Some(vec![VolumeMount {
                    name: "data".into(),
                    mount_path: "/var/lib/loupe".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            },
            ports: vec![
                port("grpc-push", PUSH_PORT, PUSH_PORT),
                port("https-webhook", WEBHOOK_SERVICE_PORT, WEBHOOK_PORT),
            ],
            volumes: vec![Volume {
                name: "data".into(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Default::default()
            }],
        },
    );
    part(
        out,
        Part {
            name: "loupe-collector",
            replicas: 1,
            container: Container {
                image: Some(image.clone()),
                args: Some(strings(&[
                    "collector",
                    "--otlp-grpc=0.0.0.0:4317",
                    "--otlp-http=0.0.0.0:4318",
                ])),
                readiness_probe: Some(tcp_probe(4317)),
                ..Default::default()
            },
            ports: vec![port("grpc-otlp", 4317, 4317), port("http-otlp", 4318, 4318)],
            volumes: vec![],
        },
    );
    part(
        out,
        Part {
            name: super::CONSOLE_SERVICE,
            replicas: 1,
            container: Container {
                image: Some(image),
                args: Some(strings(&[
                    "console",
                    "--listen=0.0.0.0:20001",
                    "--static-dir=/usr/share/loupe/frontend",
                ])),
                readiness_probe: Some(http_probe("/api/health", 20001)),
                ..Default::default()
            },
            ports: vec![port("http", 20001, 20001)],
            volumes: vec![],
        },
    );
    ingress_gateway(settings, out);
}

struct Part {
    name: &'static str,
    replicas: i32,
    container: Container,
    ports: Vec<Port>,
    volumes: Vec<Volume>,
}

/// A Deployment and its ClusterIP Service; the pod is never injected (the
/// control plane serves the webhook; its own pods must not wait for it).
fn part(out: &mut Vec<serde_json::Value>, p: Part) {
    let selector = [("app", p.name)];
    let mut container = p.container;
    container.name = "main".into();
    container.ports = Some(
        p.ports
            .iter()
            .map(|port| ContainerPort {
                name: Some(port.name.into()),
                container_port: port.target.into(),
                ..Default::default()
            })
            .collect(),
    );
    container.env = Some(vec![
        secret_env("DATABASE_URL", DATABASE_SECRET, "DATABASE_URL"),
        field_env("POD_NAME", "metadata.name"),
        field_env("POD_NAMESPACE", "metadata.namespace"),
        plain_env("RUST_LOG", "info"),
    ]);
    container.security_context = Some(restricted());
    out.push(json(&deployment(
        p.name,
        &selector,
        p.replicas,
        &[("sidecar.istio.io/inject", "false")],
        PodSpec {
            service_account_name: Some(p.name.into()),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(1337),
                run_as_group: Some(1337),
                fs_group: Some(1337),
                ..Default::default()
            }),
            containers: vec![container],
            volumes: (!p.volumes.is_empty()).then_some(p.volumes),
            ..Default::default()
        },
    )));
    out.push(json(&service(p.name, &selector, None, &p.ports)));
}

/// `istio-ingressgateway`: `loupe-proxy --gateway`, routing with the
/// Gateways that select `istio: ingressgateway`.
fn ingress_gateway(settings: &Settings, out: &mut Vec<serde_json::Value>) {
    let name = "istio-ingressgateway";
    let selector = [("app", name), ("istio", "ingressgateway")];
    let ports = [
        port("status-port", 15021, 15021),
        port("http2", 80, 8080),
        port("https", 443, 8443),
    ];
    let container = Container {
        name: "istio-proxy".into(),
        image: Some(settings.proxy_image()),
        args: Some(strings(&[
            "--gateway",
            "--listen=0.0.0.0:8080",
            "--workload=$(POD_NAME)",
            "--namespace=$(POD_NAMESPACE)",
            "--service-account=$(SERVICE_ACCOUNT)",
            "--label=app=istio-ingressgateway",
            "--label=istio=ingressgateway",
            &format!("--control=https://{CONTROL_SERVICE}.{NAMESPACE}.svc:{PUSH_PORT}"),
            "--ca-root=/var/run/secrets/istio/root-cert.pem",
            "--token-file=/var/run/secrets/tokens/istio-token",
        ])),
        env: Some(vec![
            field_env("POD_NAME", "metadata.name"),
            field_env("POD_NAMESPACE", "metadata.namespace"),
            field_env("SERVICE_ACCOUNT", "spec.serviceAccountName"),
        ]),
        ports: Some(
            ports
                .iter()
                .map(|p| ContainerPort {
                    name: Some(p.name.into()),
                    container_port: p.target.into(),
                    ..Default::default()
                })
                .collect(),
        ),
        readiness_probe: Some(http_probe("/healthz/ready", 15021)),
        security_context: Some(restricted()),
        volume_mounts: Some(crate::inject::proxy_volume_mounts()),
        ..Default::default()
    };
    out.push(json(&deployment(
        name,
        &selector,
        1,
        &[("sidecar.istio.io/inject", "false")],
        PodSpec {
            service_account_name: Some(GATEWAY_SERVICE_ACCOUNT.into()),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(1337),
                run_as_group: Some(1337),
                fs_group: Some(1337),
                ..Default::default()
            }),
            containers: vec![container],
            volumes: Some(crate::inject::proxy_volumes()),
            ..Default::default()
        },
    )));
    out.push(json(&service(
        name,
        &selector,
        Some("LoadBalancer"),
        &ports,
    )));
}

fn deployment(
    name: &str,
    selector: &[(&str, &str)],
    replicas: i32,
    pod_labels: &[(&str, &str)],
    spec: PodSpec,
) -> Deployment {
    let mut template_labels = labels(selector);
    template_labels.extend(labels(pod_labels));
    Deployment {
        metadata: meta(name, Some(NAMESPACE), selector),
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(labels(selector)),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(template_labels),
                    ..Default::default()
                }),
                spec: Some(spec),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn service(name: &str, selector: &[(&str, &str)], type_: Option<&str>, ports: &[Port]) -> Service {
    Service {
        metadata: meta(name, Some(NAMESPACE), selector),
        spec: Some(ServiceSpec {
            type_: type_.map(str::to_string),
            selector: Some(labels(selector)),
            ports: Some(
                ports
                    .iter()
                    .map(|p| ServicePort {
                        name: Some(p.name.into()),
                        port: p.port.into(),
                        target_port: Some(IntOrString::Int(p.target.into())),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Non-root, no privilege escalation, no capabilities, read-only root.
fn restricted() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn tcp_probe(port: u16) -> Probe {
    Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::Int(port.into()),
            ..Default::default()
        }),
        period_seconds: Some(5),
        ..Default::default()
    }
}

pub(crate) fn http_probe(path: &str, port: u16) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(port.into()),
            ..Default::default()
        }),
        period_seconds: Some(5),
        ..Default::default()
    }
}

fn strings(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| x.to_string()).collect()
}

fn plain_env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    }
}

pub(crate) fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn secret_env(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: key.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}
