//! Details of the selected node or edge, next to the graph (Kiali's side panel).

use leptos::prelude::*;

use crate::api::{Graph, GraphEdge, GraphNode};
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

fn node_details(n: &GraphNode, graph: &Graph) -> impl IntoView + use<> {
    let inbound: Vec<&GraphEdge> = graph.edges.iter().filter(|e| e.target == n.id).collect();
    let outbound: Vec<&GraphEdge> = graph.edges.iter().filter(|e| e.source == n.id).collect();
    let sum = |edges: &[&GraphEdge]| edges.iter().map(|e| e.rps).sum::<f64>();
    let errors = |edges: &[&GraphEdge]| {
        let rps = sum(edges);
        if rps > 0.0 {
            edges.iter().map(|e| e.rps * e.error_rate).sum::<f64>() / rps
        } else {
            0.0
        }
    };
    let (in_rps, in_err, out_rps) = (sum(&inbound), errors(&inbound), sum(&outbound));
    // What the server adds beyond the fields shown above, in words.
    const SHOWN: [&str; 5] = ["health", "error_rate", "rps_in", "rps_out", "workload"];
    let extra: Vec<(String, String)> = n
        .extra
        .iter()
        .filter(|(k, _)| !SHOWN.contains(&k.as_str()))
        .map(|(k, v)| (k.replace('_', " "), value_words(v)))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    let computed = Health::of(in_rps.max(out_rps), in_err);
    let health = match n
        .extra
        .get("health")
        .and_then(|h| h.as_str())
        .and_then(Health::parse)
    {
        Some(server) if computed != Health::Idle => server,
        _ => computed,
    };
    view! {
        <h3>{n.app.clone()} " " <span class="muted">{n.version.clone().unwrap_or_default()}</span></h3>
        <span class=format!("badge {}", health.class())>{health.class()}</span>
        <dl>
            <dt>"Namespace"</dt><dd>{n.namespace.clone()}</dd>
            <dt>"Workload"</dt><dd>{n.workload.clone().unwrap_or_else(|| "—".into())}</dd>
            <dt>"Inbound"</dt><dd>{format!("{} rps, {:.2}% errors", format_rps(in_rps), in_err * 100.0)}</dd>
            <dt>"Outbound"</dt><dd>{format!("{} rps", format_rps(out_rps))}</dd>
            {extra.into_iter().map(|(k, v)| view! { <dt>{k}</dt><dd>{v}</dd> }).collect_view()}
        </dl>
        <a class="button" href=format!("/traces?service={}", n.app)>"Traces of " {n.app.clone()}</a>
    }
}

fn edge_details(e: &GraphEdge, graph: &Graph) -> impl IntoView + use<> {
    let health = Health::of(e.rps, e.error_rate);
    // `productpage v1`, not `default/productpage/v1`: the namespace is below.
    let name = |id: &str| match graph.nodes.iter().find(|n| n.id == id) {
        Some(n) if !n.app.is_empty() => {
            format!("{} {}", n.app, n.version.clone().unwrap_or_default())
        }
        _ => id.to_string(),
    };
    let (from, to) = (name(&e.source), name(&e.target));
    let ms = |v: Option<f64>| v.map(format_ms).unwrap_or_else(|| "—".into());
    let mtls = mtls_text(&e.mtls);
    view! {
        <h3 title=format!("{} → {}", e.source, e.target)>{from} " → " {to}</h3>
        <span class=format!("badge {}", health.class())>{health.class()}</span>
        <dl>
            <dt>"Request rate"</dt><dd data-testid="panel-rps">{format!("{} rps", format_rps(e.rps))}</dd>
            <dt>"Error rate"</dt><dd>{format!("{:.2}%", e.error_rate * 100.0)}</dd>
            <dt>"p50"</dt><dd>{ms(e.p50_ms)}</dd>
            <dt>"p99"</dt><dd>{ms(e.p99_ms)}</dd>
            <dt>"Source"</dt><dd class="mono">{e.source.clone()}</dd>
            <dt>"Destination"</dt><dd class="mono">{e.target.clone()}</dd>
            <dt>"Security"</dt><dd>{if mtls.is_empty() { "plaintext".to_string() } else { mtls }}</dd>
        </dl>
    }
}

/// A JSON value as a person reads it: lists joined, numbers rounded.
fn value_words(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() != 0.0 => format!("{f:.3}"),
            _ => n.to_string(),
        },
        serde_json::Value::Array(a) => a.iter().map(value_words).collect::<Vec<_>>().join(", "),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}
