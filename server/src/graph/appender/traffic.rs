//! Traffic: turns rollup rows into nodes and edges, summing each edge's
//! requests, errors, mTLS requests, response codes and latency buckets.
//!
//! Every request is reported twice, by the client's proxy (`reporter=source`)
//! and by the server's (`reporter=destination`). Like Kiali, an edge counts
//! the source's report when there is one — it also sees requests that never
//! reached a server (timeouts, no healthy upstream) — and the destination's
//! otherwise: traffic from outside the mesh (`source_workload=unknown`) or
//! from a client without a proxy.

use std::collections::HashSet;

use petgraph::stable_graph::NodeIndex;

use crate::graph::histogram::Histogram;
use crate::graph::model::{Graph, GraphType, Health, Node, NodeType};
use crate::graph::rollup::{Rollup, UNKNOWN};

pub fn append(g: &mut Graph, rows: &[Rollup]) {
    let source_reported: HashSet<EdgeKey<'_>> = rows
        .iter()
        .filter(|r| r.reporter == "source" && r.source_workload != UNKNOWN)
        .map(EdgeKey::of)
        .collect();
    for r in rows {
        let counted = match r.reporter.as_str() {
            "source" => r.source_workload != UNKNOWN,
            _ => !source_reported.contains(&EdgeKey::of(r)),
        };
        // The destination's report carries the connection's security.
        let secured = r.reporter == "destination";
        if !counted && !secured {
            continue;
        }
        let add = |g: &mut Graph, from: NodeIndex, to: NodeIndex, r: &Rollup| {
            if counted {
                add(g, from, to, r);
            }
            if secured {
                add_security(g, from, to, r);
            }
        };
        let from = g.node(source_node(g.graph_type, r));
        let to = g.node(destination_node(g.graph_type, r));
        let via = match g.graph[to].node_type {
            // Kiali's "inject service nodes": caller → service → workload,
            // which shows how one service's traffic splits over versions.
            NodeType::Service => None,
            _ if g.inject_service_nodes => {
                let (service, ns) =
                    split_service(&r.destination_service, &r.destination_workload_namespace);
                Some(g.node(service_node(g.graph_type, ns, service)))
            }
            _ => None,
        };
        match via {
            Some(service) => {
                add(g, from, service, r);
                add(g, service, to, r);
            }
            None => add(g, from, to, r),
        }
    }
}

fn add(g: &mut Graph, from: NodeIndex, to: NodeIndex, r: &Rollup) {
    let e = g.edge(from, to);
    let t = &mut g.graph[e].traffic;
    let n = r.requests.max(0) as u64;
    t.requests += n;
    if r.response_code.starts_with('5') {
        t.errors += n;
    }
    t.counts.add_http(&r.response_code, n);
    t.duration_sum_ms += r.duration_sum_ms;
    *t.codes.entry(r.response_code.clone()).or_default() += n;
    t.histogram.merge(&Histogram::from_row(
        &r.bucket_bounds_ms,
        &r.bucket_counts,
        n,
    ));
}

fn add_security(g: &mut Graph, from: NodeIndex, to: NodeIndex, r: &Rollup) {
    let e = g.edge(from, to);
    let t = &mut g.graph[e].traffic;
    let n = r.requests.max(0) as u64;
    t.destination_requests += n;
    if r.connection_security_policy == "mutual_tls" {
        t.mtls_requests += n;
    }
}

/// Which workload-level edge a row reports on.
#[derive(PartialEq, Eq, Hash)]
struct EdgeKey<'a> {
    src_ns: &'a str,
    src: &'a str,
    dst_ns: &'a str,
    dst: &'a str,
    service: &'a str,
}

impl<'a> EdgeKey<'a> {
    fn of(r: &'a Rollup) -> Self {
        EdgeKey {
            src_ns: &r.source_workload_namespace,
            src: &r.source_workload,
            dst_ns: &r.destination_workload_namespace,
            dst: &r.destination_workload,
            service: &r.destination_service,
        }
    }
}

fn known(label: &str) -> bool {
    !label.is_empty() && label != UNKNOWN
}

fn source_node(gt: GraphType, r: &Rollup) -> Node {
    if !known(&r.source_workload) {
        return unknown_node();
    }
    let ns = &r.source_workload_namespace;
    if gt == GraphType::Service && known(&r.source_app) {
        // A client's own service is not in its labels; its app name is the
        // Kubernetes convention for it.
        return service_node(gt, ns, &r.source_app);
    }
    workload_node(gt, ns, &r.source_workload, &r.source_app, &r.source_version)
}

fn destination_node(gt: GraphType, r: &Rollup) -> Node {
    let (service, service_ns) =
        split_service(&r.destination_service, &r.destination_workload_namespace);
    if gt == GraphType::Service || !known(&r.destination_workload) {
        // Requests that reached no workload (no healthy upstream, no route)
        // still name the service they were for.
        return service_node(gt, service_ns, service);
    }
    workload_node(
        gt,
        &r.destination_workload_namespace,
        &r.destination_workload,
        &r.destination_app,
        &r.destination_version,
    )
}

/// `reviews.default.svc.cluster.local` → (`reviews`, `default`); a short
/// name keeps the workload's namespace.
fn split_service<'a>(host: &'a str, workload_ns: &'a str) -> (&'a str, &'a str) {
    let mut parts = host.split('.');
    let name = parts.next().unwrap_or(host);
    match parts.next() {
        Some(ns) if !ns.is_empty() && ns != "svc" => (name, ns),
        _ => (name, workload_ns),
    }
}

fn workload_node(gt: GraphType, ns: &str, workload: &str, app: &str, version: &str) -> Node {
    let (id, node_type) = match gt {
        GraphType::VersionedApp if known(app) && known(version) => {
            (format!("{ns}/{app}/{version}"), NodeType::VersionedApp)
        }
        GraphType::VersionedApp | GraphType::App if known(app) => {
            (format!("{ns}/{app}"), NodeType::App)
        }
        _ => (format!("{ns}/{workload}"), NodeType::Workload),
    };
    let (app, version) = match node_type {
        NodeType::App => (app, ""),
        _ => (app, version),
    };
    Node {
        id,
        node_type,
        namespace: ns.to_string(),
        app: if known(app) {
            app.to_string()
        } else {
            String::new()
        },
        version: if known(version) {
            version.to_string()
        } else {
            String::new()
        },
        workload: workload.to_string(),
        workloads: vec![workload.to_string()],
        service: String::new(),
        health: Health::default(),
        rps_in: 0.0,
        rps_out: 0.0,
        error_rate: 0.0,
    }
}

fn service_node(gt: GraphType, ns: &str, service: &str) -> Node {
    // In the service graph ids are plain `NS/service`; elsewhere a prefix
    // keeps a service apart from an app or workload of the same name.
    let id = match gt {
        GraphType::Service => format!("{ns}/{service}"),
        _ => format!("svc:{ns}/{service}"),
    };
    Node {
        id,
        node_type: NodeType::Service,
        namespace: ns.to_string(),
        app: String::new(),
        version: String::new(),
        workload: String::new(),
        workloads: Vec::new(),
        service: service.to_string(),
        health: Health::default(),
        rps_in: 0.0,
        rps_out: 0.0,
        error_rate: 0.0,
    }
}

fn unknown_node() -> Node {
    Node {
        id: UNKNOWN.to_string(),
        node_type: NodeType::Unknown,
        namespace: UNKNOWN.to_string(),
        app: String::new(),
        version: String::new(),
        workload: UNKNOWN.to_string(),
        workloads: vec![UNKNOWN.to_string()],
        service: String::new(),
        health: Health::default(),
        rps_in: 0.0,
        rps_out: 0.0,
        error_rate: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::graph::appender::testdata::row;

    fn ids(g: &Graph) -> Vec<String> {
        let mut v: Vec<String> = g.graph.node_weights().map(|n| n.id.clone()).collect();
        v.sort();
        v
    }

    #[test]
    fn node_ids_follow_the_graph_type() {
        let rows = vec![
            row(("productpage", "v1"), ("reviews", "v1"), "200", 5),
            row(("productpage", "v1"), ("reviews", "v2"), "200", 5),
        ];
        let cases = [
            (
                GraphType::VersionedApp,
                vec![
                    "default/productpage/v1",
                    "default/reviews/v1",
                    "default/reviews/v2",
                ],
            ),
            (
                GraphType::App,
                vec!["default/productpage", "default/reviews"],
            ),
            (
                GraphType::Workload,
                vec![
                    "default/productpage-v1",
                    "default/reviews-v1",
                    "default/reviews-v2",
                ],
            ),
            (
                GraphType::Service,
                vec!["default/productpage", "default/reviews"],
            ),
        ];
        for (gt, want) in cases {
            let mut g = Graph::new(gt, Duration::from_secs(60));
            append(&mut g, &rows);
            assert_eq!(ids(&g), want, "{gt:?}");
        }
    }

    #[test]
    fn app_graph_merges_versions_into_one_edge() {
        let rows = vec![
            row(("productpage", "v1"), ("reviews", "v1"), "200", 5),
            row(("productpage", "v1"), ("reviews", "v2"), "503", 3),
        ];
        let mut g = Graph::new(GraphType::App, Duration::from_secs(60));
        append(&mut g, &rows);
        assert_eq!(g.graph.edge_count(), 1);
        let e = g.graph.edge_weights().next().unwrap();
        assert_eq!((e.traffic.requests, e.traffic.errors), (8, 3));
        let reviews = &g.graph[g.index_of("default/reviews").unwrap()];
        assert_eq!(reviews.workloads, vec!["reviews-v1", "reviews-v2"]);
        assert_eq!(reviews.workload, "");
    }

    #[test]
    fn source_report_wins_and_destination_fills_in() {
        let src = row(("productpage", "v1"), ("reviews", "v1"), "200", 5);
        let mut dst = src.clone();
        dst.reporter = "destination".into();
        dst.requests = 4;
        // Ingress traffic from outside the mesh is only reported by the destination.
        let mut outside = row(("x", "y"), ("productpage", "v1"), "200", 7);
        outside.reporter = "destination".into();
        outside.source_workload = UNKNOWN.into();
        let mut g = Graph::new(GraphType::VersionedApp, Duration::from_secs(60));
        append(&mut g, &[src, dst, outside]);
        let count = |from: &str, to: &str| {
            let e = g
                .graph
                .find_edge(g.index_of(from).unwrap(), g.index_of(to).unwrap())
                .unwrap();
            g.graph[e].traffic.requests
        };
        assert_eq!(count("default/productpage/v1", "default/reviews/v1"), 5);
        assert_eq!(count("unknown", "default/productpage/v1"), 7);
    }

    #[test]
    fn injected_service_nodes_sit_between_caller_and_versions() {
        let rows = vec![
            row(("productpage", "v1"), ("reviews", "v1"), "200", 5),
            row(("productpage", "v1"), ("reviews", "v2"), "200", 3),
        ];
        let mut g = Graph::new(GraphType::VersionedApp, Duration::from_secs(60));
        g.inject_service_nodes = true;
        append(&mut g, &rows);
        let requests = |from: &str, to: &str| {
            let e = g
                .graph
                .find_edge(g.index_of(from).unwrap(), g.index_of(to).unwrap())
                .unwrap();
            g.graph[e].traffic.requests
        };
        assert_eq!(requests("default/productpage/v1", "svc:default/reviews"), 8);
        assert_eq!(requests("svc:default/reviews", "default/reviews/v1"), 5);
        assert_eq!(requests("svc:default/reviews", "default/reviews/v2"), 3);
        assert_eq!(g.graph.edge_count(), 3);
    }

    #[test]
    fn unreached_destination_becomes_its_service() {
        let mut r = row(("productpage", "v1"), ("reviews", "v1"), "503", 2);
        r.destination_workload = UNKNOWN.into();
        let mut g = Graph::new(GraphType::Workload, Duration::from_secs(60));
        append(&mut g, &[r]);
        assert!(g.index_of("svc:default/reviews").is_some());
    }
}
