//! The per-request work of the outbound path without sockets: route a
//! request (Router decision, weighted pick, subset, endpoint) and record its
//! metrics on the pre-built edge. A size knob (`services`) shows the cost
//! stays flat as the mesh grows.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use loupe_proxy::config::{ConfigStore, compile};
use loupe_proxy::context::ProxyContext;
use loupe_proxy::identity::Workload;
use loupe_proxy::outbound::route::{Routed, Traffic, route};
use loupe_proxy::telemetry::export::SpanSink;
use loupe_proxy::telemetry::metrics::{Metrics, Observation, ResponseFlags};
use loupe_push::{Endpoint, Resource, Service, Snapshot};

fn snapshot(services: usize) -> Snapshot {
    let mut resources = Vec::new();
    let mut list = Vec::new();
    for s in 0..services {
        let name = format!("svc{s}");
        resources.push(Resource {
            kind: "DestinationRule".into(),
            namespace: "default".into(),
            name: name.clone(),
            json: serde_json::json!({
                "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"host": name, "subsets": [
                    {"name": "v1", "labels": {"version": "v1"}},
                    {"name": "v2", "labels": {"version": "v2"}}]}
            })
            .to_string(),
        });
        resources.push(Resource {
            kind: "VirtualService".into(),
            namespace: "default".into(),
            name: name.clone(),
            json: serde_json::json!({
                "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"hosts": [name], "http": [{"route": [
                    {"destination": {"host": name, "subset": "v1"}, "weight": 80},
                    {"destination": {"host": name, "subset": "v2"}, "weight": 20}]}]}
            })
            .to_string(),
        });
        list.push(Service {
            host: format!("{name}.default.svc.cluster.local"),
            endpoints: (0..4)
                .map(|i| Endpoint {
                    address: format!("127.0.0.1:{}", 20000 + s * 4 + i),
                    labels: [
                        ("app", name.as_str()),
                        ("version", if i % 2 == 0 { "v1" } else { "v2" }),
                    ]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                    workload: format!("{name}-{i}"),
                    namespace: "default".into(),
                    service_account: name.clone(),
                    identity: format!("spiffe://cluster.local/ns/default/sa/{name}"),
                    service_port: 0,
                })
                .collect(),
            ..Default::default()
        });
    }
    Snapshot {
        version: 1,
        resources,
        services: list,
        mesh: None,
        jwks: Default::default(),
    }
}

fn request_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("outbound_request");
    for services in [10, 1000] {
        let metrics = Arc::new(Metrics::default());
        let this = Workload::new(
            "productpage-v1",
            "default",
            "bookinfo-productpage",
            BTreeMap::from([
                ("app".into(), "productpage".into()),
                ("version".into(), "v1".into()),
            ]),
        );
        let store = Arc::new(ConfigStore::default());
        let config = match compile(&snapshot(services), &this, &metrics) {
            Ok(c) => c,
            Err(e) => panic!("benchmark snapshot does not compile: {e}"),
        };
        store.store(config);
        let ctx = ProxyContext::new(
            this,
            store,
            metrics.clone(),
            SpanSink::disabled(metrics),
            Default::default(),
        );
        let (parts, ()) = http::Request::get("/reviews/1")
            .header("host", "svc3:9080")
            .header("user-agent", "bench")
            .body(())
            .map(http::Request::into_parts)
            .unwrap_or_else(|e| panic!("request: {e}"));
        group.bench_with_input(
            BenchmarkId::new("route_and_record", services),
            &parts,
            |b, parts| {
                b.iter(|| {
                    if let Routed::Forward(target) = route(&ctx, Traffic::Sidecar, parts)
                        && let Some(endpoint) = target.backend.pick()
                    {
                        endpoint.edge.record(&Observation {
                            code: 200,
                            flags: ResponseFlags::None,
                            grpc_status: None,
                            duration: Duration::from_micros(1500),
                            request_bytes: 0,
                            response_bytes: 512,
                        });
                    }
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, request_path);
criterion_main!(benches);
