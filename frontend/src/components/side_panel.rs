//! Details of the selected node or edge, next to the graph (Kiali's side panel).

use leptos::prelude::*;

use loupe_api::graph::{Edge, Graph, Node, NodeType};

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
    }
}
