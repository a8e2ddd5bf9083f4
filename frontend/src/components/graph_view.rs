//! The service graph as SVG: app boxes, nodes coloured by health, curved
//! edges with arrowheads coloured by error rate and labelled with rate,
//! what [`EdgeLabels`] asks for. What a find expression selected is
//! highlighted (`find-match`) and the rest dimmed. Every node and edge
//! carries a `data-testid` and its numbers as `data-*` attributes, so
//! browser tests read what users see.

use std::collections::HashMap;

use leptos::prelude::*;

use loupe_api::graph::{Edge, Graph, Node};

use crate::graph::find::Selected;
use crate::graph::health::Health;
use crate::graph::layout::{LayoutNode, NODE_H, NODE_W, Point, layout};
use crate::graph::{EdgeLabels, sanitize_id};

/// What the side panel shows.
#[derive(Clone, Debug, PartialEq)]
pub enum Selection {
    Node(String),
    Edge(String, String),
}

/// One edge's path, arrow and label position, computed from the layout.
struct EdgeShape {
    d: String,
    label_at: Point,
}

#[component]
pub fn GraphView(
    graph: Graph,
    selected: RwSignal<Option<Selection>>,
    show_idle: bool,
    /// What the find expression selected, if one is set.
    found: Option<Selected>,
    labels: EdgeLabels,
) -> impl IntoView {
    let finding = found.is_some();
    let found = found.unwrap_or_default();
    let edges: Vec<Edge> = graph
        .edges
        .iter()
        .filter(|e| show_idle || e.rps > 0.0)
        .cloned()
        .collect();
    let layout_nodes: Vec<LayoutNode<'_>> = graph
        .nodes
        .iter()
        .map(|n| LayoutNode {
            id: &n.id,
            app: label_app(n),
            version: &n.version,
        })
        .collect();
    // Idle edges still shape the layout: a version that lost its traffic stays put.
    let pairs: Vec<(&str, &str)> = graph
        .edges
        .iter()
        .map(|e| (e.source.as_str(), e.target.as_str()))
        .collect();
    let l = layout(&layout_nodes, &pairs);
    let shapes = edge_shapes(&edges, &l.positions, &l.layers, l.height);

    let boxes = l
        .app_boxes
        .iter()
        .map(|b| {
            view! {
                <g class="app-box">
                    <rect x=b.x y=b.y width=b.w height=b.h rx="8" />
                    <text x=b.x + 8.0 y=b.y + 14.0>{b.app.clone()}</text>
                </g>
            }
        })
        .collect_view();

    let edge_views = edges
        .iter()
        .zip(shapes)
        .filter_map(|(e, shape)| shape.map(|s| (e.clone(), s)))
        .map(|(e, shape)| {
            let health = Health::of_edge(&e);
            let testid = format!("edge-{}-{}", sanitize_id(&e.source), sanitize_id(&e.target));
            let key = Selection::Edge(e.source.clone(), e.target.clone());
            let key2 = key.clone();
            let key3 = key.clone();
            let (label, detail) = labels.text(&e);
            let matched = found.has_edge(&e);
            let (src, dst) = (node_of(&graph, &e.source), node_of(&graph, &e.target));
            view! {
                <g
                    class=format!("edge {}", health.class())
                    class:selected=move || selected.get().as_ref() == Some(&key)
                    class:find-match=matched
                    data-find=matched.to_string()
                    data-testid=testid
                    aria-label=format!("{} to {}", e.source, e.target)
                    data-source=e.source.clone()
                    data-target=e.target.clone()
                    data-source-app=src.map(|n| n.app.clone()).unwrap_or_default()
                    data-target-app=dst.map(|n| n.app.clone()).unwrap_or_default()
                    data-target-version=dst.map(|n| n.version.clone()).unwrap_or_default()
                    data-rps=e.rps.to_string()
                    data-error-rate=e.error_rate.to_string()
                    tabindex="0"
                    role="button"
                    on:click=move |_| selected.set(Some(key2.clone()))
                    on:keydown=move |ev| {
                        // Keyboard users select with Enter or Space, as on a button.
                        if ev.key() == "Enter" || ev.key() == " " {
                            ev.prevent_default();
                            selected.set(Some(key3.clone()));
                        }
                    }
                >
                    <path class="edge-hit" d=shape.d.clone() />
                    <path class="edge-line" d=shape.d marker-end=format!("url(#arrow-{})", health.class()) />
                    {(labels != EdgeLabels::None).then(|| view! {
                        <text class="edge-label" x=shape.label_at.x y=shape.label_at.y - 6.0 text-anchor="middle">
                            {label}
                            <tspan class="edge-detail" x=shape.label_at.x dy="12">{detail}</tspan>
                        </text>
                    })}
                </g>
            }
        })
        .collect_view();

    let node_views = graph
        .nodes
        .iter()
        .filter_map(|n| l.positions.get(&n.id).map(|p| (n, *p)))
        .map(|(n, p)| {
            let health = Health::of_node(n);
            let key = Selection::Node(n.id.clone());
            let key2 = key.clone();
            let key3 = key.clone();
            let full = label_app(n).to_string();
            let title = ellipsize(&full, 16);
            let subtitle = node_subtitle(n);
            let matched = found.nodes.contains(&n.id);
            view! {
                <g
                    class=format!("node {}", health.class())
                    class:selected=move || selected.get().as_ref() == Some(&key)
                    class:find-match=matched
                    data-find=matched.to_string()
                    data-testid=format!("node-{}", sanitize_id(&n.id))
                    data-app=n.app.clone()
                    aria-label=format!("{} {}", n.app, n.version)
                    data-version=n.version.clone()
                    transform=format!("translate({},{})", p.x, p.y)
                    tabindex="0"
                    role="button"
                    on:click=move |_| selected.set(Some(key2.clone()))
                    on:keydown=move |ev| {
                        // Keyboard users select with Enter or Space, as on a button.
                        if ev.key() == "Enter" || ev.key() == " " {
                            ev.prevent_default();
                            selected.set(Some(key3.clone()));
                        }
                    }
                >
                    <title>{full}</title>
                    <rect width=NODE_W height=NODE_H rx="6" />
                    <circle class="health-dot" cx="12" cy=NODE_H / 2.0 r="5" />
                    <text class="node-title" x="24" y="17">{title}</text>
                    <text class="node-subtitle" x="24" y="33">{subtitle}</text>
                </g>
            }
        })
        .collect_view();

    let markers = Health::ALL
        .iter()
        .map(|h| {
            view! {
                <marker
                    id=format!("arrow-{}", h.class())
                    class=format!("arrow {}", h.class())
                    viewBox="0 0 10 10"
                    refX="9"
                    refY="5"
                    markerUnits="userSpaceOnUse"
                    markerWidth="11"
                    markerHeight="11"
                    orient="auto-start-reverse"
                >
                    <path d="M 0 0 L 10 5 L 0 10 z" />
                </marker>
            }
        })
        .collect_view();

    view! {
        <svg
            class="graph-svg"
            class:finding=finding
            data-testid="graph"
            data-find-count=(found.nodes.len() + found.edges.len()).to_string()
            data-node-count=graph.nodes.len().to_string()
            data-edge-count=graph.edges.len().to_string()
            viewBox=format!("0 0 {} {}", l.width, l.height + 60.0)
            width=l.width
            height=l.height + 60.0
            on:click=move |ev| {
                // A click on the background clears the selection.
                if ev.target() == ev.current_target() {
                    selected.set(None);
                }
            }
        >
            <defs>{markers}</defs>
            {boxes}
            <g class="edges">{edge_views}</g>
            <g class="nodes">{node_views}</g>
        </svg>
    }
}

fn node_of<'a>(graph: &'a Graph, id: &str) -> Option<&'a Node> {
    graph.nodes.iter().find(|n| n.id == id)
}

/// The name a node is shown and grouped by: its app, else workload, else id.
fn label_app(n: &Node) -> &str {
    if !n.app.is_empty() {
        &n.app
    } else if !n.workload.is_empty() {
        &n.workload
    } else {
        &n.id
    }
}

/// Node boxes have a fixed width: long names end in `…` (full name on hover).
fn ellipsize(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        s.chars().take(max - 1).chain(['…']).collect()
    }
}

fn node_subtitle(n: &Node) -> String {
    let given = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
    match (given(&n.version), given(&n.workload)) {
        (Some(v), _) => format!("{v} · {}", n.namespace),
        (None, Some(w)) if w != n.app => format!("{w} · {}", n.namespace),
        _ => n.namespace.clone(),
    }
}

/// The edge's `mtls` — the share (0..1) of requests over mutual TLS — in
/// words: `mTLS`, `mTLS 40%`, or empty for plaintext.
pub fn mtls_text(share: f64) -> String {
    if share >= 0.995 {
        "mTLS".into()
    } else if share > 0.0 {
        format!("mTLS {:.0}%", share * 100.0)
    } else {
        String::new()
    }
}

/// Paths for each edge. Forward edges leave a node's right side and enter
/// the next one's left side; ends are spread a little so parallel edges do
/// not share a pixel. Edges that go back or stay in a column loop below.
fn edge_shapes(
    edges: &[Edge],
    pos: &HashMap<String, Point>,
    layers: &HashMap<String, usize>,
    height: f64,
) -> Vec<Option<EdgeShape>> {
    let spread = |ids: Vec<(usize, f64)>| -> HashMap<usize, f64> {
        let mut ids = ids;
        ids.sort_by(|a, b| a.1.total_cmp(&b.1));
        let m = ids.len() as f64;
        ids.iter()
            .enumerate()
            .map(|(k, (i, _))| (*i, (k as f64 - (m - 1.0) / 2.0) * 5.0))
            .collect()
    };
    let mut by_source: HashMap<&str, Vec<(usize, f64)>> = HashMap::new();
    let mut by_target: HashMap<&str, Vec<(usize, f64)>> = HashMap::new();
    for (i, e) in edges.iter().enumerate() {
        if let (Some(s), Some(t)) = (pos.get(&e.source), pos.get(&e.target)) {
            by_source.entry(&e.source).or_default().push((i, t.y));
            by_target.entry(&e.target).or_default().push((i, s.y));
        }
    }
    // Labels sit where sibling edges are furthest apart: towards the
    // targets of a fan-out, towards the sources of a fan-in.
    let fan_out: HashMap<&str, usize> = by_source.iter().map(|(k, v)| (*k, v.len())).collect();
    let fan_in: HashMap<&str, usize> = by_target.iter().map(|(k, v)| (*k, v.len())).collect();
    let label_t = |e: &Edge| {
        let out = fan_out.get(e.source.as_str()).copied().unwrap_or(1);
        let inn = fan_in.get(e.target.as_str()).copied().unwrap_or(1);
        match out.cmp(&inn) {
            std::cmp::Ordering::Greater => 0.6,
            std::cmp::Ordering::Less => 0.4,
            std::cmp::Ordering::Equal => 0.5,
        }
    };
    let out_offset: HashMap<usize, f64> = by_source.into_values().flat_map(spread).collect();
    let in_offset: HashMap<usize, f64> = by_target.into_values().flat_map(spread).collect();

    edges
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let s = pos.get(&e.source)?;
            let t = pos.get(&e.target)?;
            let forward = layers.get(&e.target) > layers.get(&e.source);
            if forward {
                let (x0, y0) = (s.x + NODE_W, s.y + NODE_H / 2.0 + out_offset.get(&i).copied().unwrap_or(0.0));
                let (x3, y3) = (t.x - 2.0, t.y + NODE_H / 2.0 + in_offset.get(&i).copied().unwrap_or(0.0));
                let dx = (x3 - x0) / 2.0;
                let (x1, y1, x2, y2) = (x0 + dx, y0, x3 - dx, y3);
                Some(EdgeShape {
                    d: format!("M {x0:.1} {y0:.1} C {x1:.1} {y1:.1}, {x2:.1} {y2:.1}, {x3:.1} {y3:.1}"),
                    label_at: bezier_at(label_t(e), (x0, y0), (x1, y1), (x2, y2), (x3, y3)),
                })
            } else {
                let (x0, y0) = (s.x + NODE_W / 2.0 + 10.0, s.y + NODE_H);
                let (x3, y3) = (t.x + NODE_W / 2.0 - 10.0, t.y + NODE_H + 2.0);
                let below = height.max(y0.max(y3) + 40.0) + 10.0;
                Some(EdgeShape {
                    d: format!("M {x0:.1} {y0:.1} C {x0:.1} {below:.1}, {x3:.1} {below:.1}, {x3:.1} {y3:.1}"),
                    label_at: bezier_at(0.5, (x0, y0), (x0, below), (x3, below), (x3, y3)),
                })
            }
        })
        .collect()
}

/// The point at `t` (0..1) on a cubic Bézier curve.
fn bezier_at(t: f64, p0: (f64, f64), p1: (f64, f64), p2: (f64, f64), p3: (f64, f64)) -> Point {
    let u = 1.0 - t;
    let (a, b, c, d) = (u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t);
    Point {
        x: a * p0.0 + b * p1.0 + c * p2.0 + d * p3.0,
        y: a * p0.1 + b * p1.1 + c * p2.1 + d * p3.1,
    }
}
