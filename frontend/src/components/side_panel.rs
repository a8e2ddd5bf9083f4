//! Details of the selected node or edge, next to the graph (Kiali's side
//! panel); an edge's panel links to the slowest traces that crossed it.

use leptos::prelude::*;

use loupe_api::encode;
use loupe_api::graph::{Edge, Graph, Node, NodeType};
use loupe_api::traces::{EdgeCrossing, TraceSort};

use crate::components::graph_view::{Selection, mtls_text};
use crate::graph::health::Health;
use crate::graph::{format_ms, format_rps};

#[component]
pub fn SidePanel(graph: Graph, selected: RwSignal<Option<Selection>>) -> impl IntoView {
    let body = move || match selected.get() {
        None => view! {
            <p class="hint">"Click a node or an edge for its details."</p>
        }
        .into_any(),
        Some(Selection::Node(id)) => match graph.nodes.iter().find(|n| n.id == id) {
            Some(n) => node_details(n, &graph).into_any(),
            None => view! { <p class="hint">"This node is no longer in the graph."</p> }.into_any(),
        },
        Some(Selection::Edge(s, t)) => {
            match graph.edges.iter().find(|e| e.source == s && e.target == t) {
                Some(e) => edge_details(e, &graph).into_any(),
                None => view! { <p class="hint">"This edge has no traffic in the window."</p> }
                    .into_any(),
            }
        }
    };
    view! {
        <aside class="side-panel" data-testid="side-panel">
            {body}
        </aside>
    }
}

fn node_type_words(t: NodeType) -> &'static str {
    match t {
        NodeType::App => "app",
        NodeType::VersionedApp => "versioned app",
        NodeType::Workload => "workload",
        NodeType::Service => "service",
        NodeType::Unknown => "outside the mesh",
    }
}

fn node_details(n: &Node, _graph: &Graph) -> impl IntoView + use<> {
    let health = Health::of_node(n);
    let workloads = if n.workloads.is_empty() {
        "—".to_string()
    } else {
        n.workloads.join(", ")
    };
    let service = (!n.service.is_empty()).then(|| {
        view! { <dt>"Service"</dt><dd>{n.service.clone()}</dd> }
    });
    view! {
        <h3>{n.app.clone()} " " <span class="muted">{n.version.clone()}</span></h3>
        <span class=format!("badge {}", health.class())>{health.class()}</span>
        <dl>
            <dt>"Type"</dt><dd>{node_type_words(n.node_type)}</dd>
            <dt>"Namespace"</dt><dd>{n.namespace.clone()}</dd>
            <dt>"Workloads"</dt><dd>{workloads}</dd>
            {service}
            <dt>"Inbound"</dt><dd>{format!("{} rps, {:.2}% errors", format_rps(n.rps_in), n.error_rate * 100.0)}</dd>
            <dt>"Outbound"</dt><dd>{format!("{} rps", format_rps(n.rps_out))}</dd>
        </dl>
        <a class="button" href=format!("/traces?service={}", loupe_api::encode(&n.app))>"Traces of " {n.app.clone()}</a>
    }
}

fn edge_details(e: &Edge, graph: &Graph) -> impl IntoView + use<> {
    let health = Health::of_edge(e);
    // `productpage v1`, not `default/productpage/v1`: the namespace is below.
    let name = |id: &str| match graph.nodes.iter().find(|n| n.id == id) {
        Some(n) if !n.app.is_empty() => format!("{} {}", n.app, n.version),
        _ => id.to_string(),
    };
    let (from, to) = (name(&e.source), name(&e.target));
    let ms = |v: f64| {
        if v > 0.0 && v.is_finite() {
            format_ms(v)
        } else {
            "—".into()
        }
    };
    let mtls = mtls_text(e.mtls);
    let codes = e
        .responses
        .iter()
        .map(|(code, n)| format!("{code}: {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    view! {
        <h3 title=format!("{} → {}", e.source, e.target)>{from} " → " {to}</h3>
        <span class=format!("badge {}", health.class())>{health.class()}</span>
        <dl>
            <dt>"Request rate"</dt><dd data-testid="panel-rps">{format!("{} rps", format_rps(e.rps))}</dd>
            <dt>"Error rate"</dt><dd>{format!("{:.2}%", e.error_rate * 100.0)}</dd>
            <dt>"Responses"</dt><dd data-testid="panel-responses">{codes}</dd>
            <dt>"p50"</dt><dd>{ms(e.p50_ms)}</dd>
            <dt>"p95"</dt><dd>{ms(e.p95_ms)}</dd>
            <dt>"p99"</dt><dd>{ms(e.p99_ms)}</dd>
            <dt>"Source"</dt><dd class="mono">{e.source.clone()}</dd>
            <dt>"Destination"</dt><dd class="mono">{e.target.clone()}</dd>
            <dt>"Security"</dt><dd>{if mtls.is_empty() { "plaintext".to_string() } else { mtls }}</dd>
        </dl>
        <a class="button" data-testid="edge-traces" href=slowest_traces_href(e, graph)>
            "Slowest traces over this edge"
        </a>
    }
}

/// The traces that crossed `e` in the graph's window, slowest first: the
/// source's workloads (or, for a service node, its app) calling the
/// destination's workloads (or service).
pub fn slowest_traces_href(e: &Edge, graph: &Graph) -> String {
    let node = |id: &str| graph.nodes.iter().find(|n| n.id == id);
    let mut edge = EdgeCrossing::default();
    if let Some(s) = node(&e.source).filter(|n| n.node_type != NodeType::Unknown) {
        edge.source_namespace = Some(s.namespace.clone());
        if s.workloads.is_empty() {
            edge.source_app = Some(s.service.clone()).filter(|a| !a.is_empty());
        } else {
            edge.source_workloads = s.workloads.clone();
        }
    }
    if let Some(d) = node(&e.target) {
        edge.destination_namespace = Some(d.namespace.clone());
        if d.workloads.is_empty() {
            edge.destination_service = Some(d.service.clone()).filter(|s| !s.is_empty());
        } else {
            edge.destination_workloads = d.workloads.clone();
        }
    }
    let mut href = format!(
        "/traces?sort={}&lookback={}s",
        TraceSort::LongestFirst.as_str(),
        graph.window_s.max(1.0).ceil() as u64
    );
    for (k, v) in edge.to_query() {
        href.push_str(&format!("&{k}={}", encode(&v)));
    }
    href
}

#[cfg(test)]
mod tests {
    use super::*;
    use loupe_api::health::Health as Judged;

    fn node(id: &str, node_type: NodeType, workloads: &[&str], service: &str) -> Node {
        Node {
            id: id.into(),
            node_type,
            namespace: "default".into(),
            app: String::new(),
            version: String::new(),
            workload: String::new(),
            workloads: workloads.iter().map(|w| w.to_string()).collect(),
            service: service.into(),
            health: Judged::Healthy,
            rps_in: 1.0,
            rps_out: 1.0,
            error_rate: 0.0,
        }
    }

    fn graph(nodes: Vec<Node>) -> Graph {
        Graph {
            window_s: 60.0,
            nodes,
            ..Graph::default()
        }
    }

    fn edge(s: &str, t: &str) -> Edge {
        Edge {
            source: s.into(),
            target: t.into(),
            ..Edge::default()
        }
    }

    #[test]
    fn an_edge_links_to_its_slowest_traces_by_workload() {
        let g = graph(vec![
            node(
                "default/productpage/v1",
                NodeType::VersionedApp,
                &["productpage-v1"],
                "",
            ),
            node(
                "default/reviews",
                NodeType::App,
                &["reviews-v1", "reviews-v2"],
                "",
            ),
        ]);
        assert_eq!(
            slowest_traces_href(&edge("default/productpage/v1", "default/reviews"), &g),
            "/traces?sort=longest_first&lookback=60s&source_workload=productpage-v1\
             &source_namespace=default&destination_workload=reviews-v1%2Creviews-v2\
             &destination_namespace=default"
        );
    }

    #[test]
    fn services_and_outside_callers_link_by_what_is_known() {
        let g = graph(vec![
            node("unknown", NodeType::Unknown, &["unknown"], ""),
            node("default/productpage", NodeType::Service, &[], "productpage"),
            node("default/reviews", NodeType::Service, &[], "reviews"),
        ]);
        assert_eq!(
            slowest_traces_href(&edge("default/productpage", "default/reviews"), &g),
            "/traces?sort=longest_first&lookback=60s&source_app=productpage\
             &source_namespace=default&destination_service=reviews&destination_namespace=default"
        );
        assert_eq!(
            slowest_traces_href(&edge("unknown", "default/productpage"), &g),
            "/traces?sort=longest_first&lookback=60s&destination_service=productpage\
             &destination_namespace=default"
        );
    }
}
