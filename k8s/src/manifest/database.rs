//! Postgres: a StatefulSet with a PVC for `database=internal`, nothing for
//! `database=external` (the user creates Secret `loupe-database` with key
//! `DATABASE_URL`). Either way every part reads that one Secret.
//!
//! The internal database's password is fixed so that the rendered manifest
//! is deterministic; it is reachable only inside the cluster, and
//! `database=external` is the choice for anything beyond a demo.

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, EnvVarSource, ExecAction, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PodSpec, PodTemplateSpec, Probe, Secret, SecretKeySelector, Service,
    ServicePort, ServiceSpec, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{DATABASE_SECRET, Database, NAMESPACE, Settings, json, labels, meta};

const NAME: &str = "loupe-postgres";
const PASSWORD: &str = "loupe-demo";

pub(super) fn objects(settings: &Settings, out: &mut Vec<serde_json::Value>) {
    if settings.database == Database::External {
        return;
    }
    let selector = [("app", NAME)];
    out.push(json(&Secret {
        metadata: meta(NAME, Some(NAMESPACE), &selector),
        string_data: Some(labels(&[("POSTGRES_PASSWORD", PASSWORD)])),
        ..Default::default()
    }));
    out.push(json(&Secret {
        metadata: meta(DATABASE_SECRET, Some(NAMESPACE), &[]),
        string_data: Some(labels(&[(
            "DATABASE_URL",
            &format!("postgres://loupe:{PASSWORD}@{NAME}.{NAMESPACE}.svc:5432/loupe"),
        )])),
        ..Default::default()
    }));
    out.push(json(&Service {
        metadata: meta(NAME, Some(NAMESPACE), &selector),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            selector: Some(labels(&selector)),
            ports: Some(vec![ServicePort {
                name: Some("tcp-postgres".into()),
                port: 5432,
                target_port: Some(IntOrString::Int(5432)),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }));
    let ready = Probe {
        exec: Some(ExecAction {
            command: Some(vec!["pg_isready".into(), "-U".into(), "loupe".into()]),
        }),
        period_seconds: Some(5),
        ..Default::default()
    };
    out.push(json(&StatefulSet {
        metadata: meta(NAME, Some(NAMESPACE), &selector),
        spec: Some(StatefulSetSpec {
            service_name: Some(NAME.into()),
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(labels(&selector)),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(&[
                        ("app", NAME),
                        ("sidecar.istio.io/inject", "false"),
                    ])),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "postgres".into(),
                        image: Some("docker.io/library/postgres:17-bookworm".into()),
                        env: Some(vec![
                            plain("POSTGRES_USER", "loupe"),
                            plain("POSTGRES_DB", "loupe"),
                            plain("PGDATA", "/var/lib/postgresql/data/pgdata"),
                            EnvVar {
                                name: "POSTGRES_PASSWORD".into(),
                                value_from: Some(EnvVarSource {
                                    secret_key_ref: Some(SecretKeySelector {
                                        name: NAME.into(),
                                        key: "POSTGRES_PASSWORD".into(),
                                        ..Default::default()
                                    }),
                                    ..Default::default()
                                }),
                                ..Default::default()
                            },
                        ]),
                        ports: Some(vec![ContainerPort {
                            name: Some("tcp-postgres".into()),
                            container_port: 5432,
                            ..Default::default()
                        }]),
                        readiness_probe: Some(ready),
                        volume_mounts: Some(vec![VolumeMount {
                            name: "data".into(),
                            mount_path: "/var/lib/postgresql/data".into(),
                            ..Default::default()
                        }]),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            volume_claim_templates: Some(vec![PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some("data".into()),
                    ..Default::default()
                },
                spec: Some(PersistentVolumeClaimSpec {
                    access_modes: Some(vec!["ReadWriteOnce".into()]),
                    resources: Some(VolumeResourceRequirements {
                        requests: Some([("storage".to_string(), Quantity("5Gi".into()))].into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }));
}

fn plain(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    }
}
