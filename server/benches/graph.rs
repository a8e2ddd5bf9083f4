//! The graph pipeline without a database, over a synthetic mesh whose size
//! is the knob (like Kiali's `-num-namespaces`):
//! `LOUPE_BENCH_NAMESPACES=20 LOUPE_BENCH_WORKLOADS=30 cargo bench -p loupe-server --bench graph`.
//! Each namespace is a chain of workloads, each calling the next two, with
//! 12 scrape intervals (a minute at 5s), two response codes and both reporters.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use loupe_server::graph::{GraphOptions, GraphType, Rollup, build};

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn mesh(namespaces: usize, workloads: usize) -> Vec<Rollup> {
    let bounds = vec![
        1.0,
        5.0,
        10.0,
        25.0,
        50.0,
        100.0,
        250.0,
        500.0,
        f64::INFINITY,
    ];
    let mut rows = Vec::new();
    for ns in 0..namespaces {
        for w in 0..workloads {
            for callee in [w + 1, w + 2].into_iter().filter(|&c| c < workloads) {
                for interval in 0..12 {
                    for (reporter, code, n) in [
                        ("source", "200", 50),
                        ("source", "503", 1),
                        ("destination", "200", 50),
                    ] {
                        rows.push(Rollup {
                            reporter: reporter.into(),
                            source_workload: format!("app{w}-v{}", interval % 3),
                            source_workload_namespace: format!("ns{ns}"),
                            source_app: format!("app{w}"),
                            source_version: format!("v{}", interval % 3),
                            destination_workload: format!("app{callee}-v1"),
                            destination_workload_namespace: format!("ns{ns}"),
                            destination_app: format!("app{callee}"),
                            destination_version: "v1".into(),
                            destination_service: format!("app{callee}.ns{ns}.svc.cluster.local"),
                            response_code: code.into(),
                            connection_security_policy: "mutual_tls".into(),
                            requests: n,
                            duration_sum_ms: 12.0 * n as f64,
                            bucket_bounds_ms: bounds.clone(),
                            bucket_counts: vec![0, 5, 20, 40, n - 2, n - 1, n, n, n],
                        });
                    }
                }
            }
        }
    }
    rows
}

fn graph(c: &mut Criterion) {
    let namespaces = knob("LOUPE_BENCH_NAMESPACES", 10);
    let workloads = knob("LOUPE_BENCH_WORKLOADS", 20);
    let rows = mesh(namespaces, workloads);
    let mut group = c.benchmark_group(format!(
        "graph/{namespaces}ns×{workloads}wl/{}rows",
        rows.len()
    ));
    for (name, t) in [
        ("versioned-app", GraphType::VersionedApp),
        ("app", GraphType::App),
        ("workload", GraphType::Workload),
    ] {
        group.bench_function(name, |b| {
            let options = GraphOptions {
                graph_type: t,
                window: Duration::from_secs(60),
                inject_service_nodes: false,
            };
            b.iter(|| build(black_box(options), black_box(&rows)))
        });
    }
    group.finish();
}

criterion_group!(benches, graph);
criterion_main!(benches);
