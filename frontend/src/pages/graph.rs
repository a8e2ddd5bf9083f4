//! `/` and `/graph`: the live service graph with its namespace, type,
//! window and edge-label selectors, Kiali's find/hide boxes, and the side
//! panel.

use leptos::prelude::*;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_navigate, use_query_map};

use loupe_api::encode;

use crate::api;
use crate::components::error_list::ErrorList;
use crate::components::find_bar::FindBar;
use crate::components::graph_view::{GraphView, Selection};
use crate::components::namespace_picker::NamespacePicker;
use crate::components::side_panel::SidePanel;
use crate::graph::{EdgeLabels, find};
use crate::live::use_graph_tick;

const GRAPH_TYPES: [(&str, &str); 4] = [
    ("versioned-app", "Versioned app"),
    ("app", "App"),
    ("workload", "Workload"),
    ("service", "Service"),
];
/// Rates are averages over the window; 30 s shows a canary shift soonest.
const WINDOWS: [(&str, &str); 4] = [
    ("30s", "Last 30s"),
    ("60s", "Last 1m"),
    ("300s", "Last 5m"),
    ("900s", "Last 15m"),
];

/// The page's settings, all kept in the URL (`/graph?type=app&window=300s&
/// namespaces=default&find=…&hide=…&labels=rps`) so a view can be bookmarked
/// and shared, as in Kiali.
#[derive(Clone, Copy)]
struct Settings {
    graph_type: RwSignal<String>,
    window: RwSignal<String>,
    namespaces: RwSignal<Vec<String>>,
    find: RwSignal<String>,
    hide: RwSignal<String>,
    labels: RwSignal<EdgeLabels>,
}

impl Settings {
    fn url(&self) -> String {
        let mut url = format!(
            "/graph?type={}&window={}",
            self.graph_type.get_untracked(),
            self.window.get_untracked()
        );
        let namespaces = self.namespaces.get_untracked();
        if !namespaces.is_empty() {
            url.push_str(&format!("&namespaces={}", encode(&namespaces.join(","))));
        }
        for (key, value) in [("find", self.find), ("hide", self.hide)] {
            let value = value.get_untracked();
            if !value.trim().is_empty() {
                url.push_str(&format!("&{key}={}", encode(&value)));
            }
        }
        let labels = self.labels.get_untracked();
        if labels != EdgeLabels::default() {
            url.push_str(&format!("&labels={}", labels.as_str()));
        }
        url
    }
}

#[component]
pub fn GraphPage() -> impl IntoView {
    let query = use_query_map();
    let from_query = |key: &str, allowed: &[(&str, &str)], default: &str| {
        query
            .read_untracked()
            .get(key)
            .filter(|v| allowed.iter().any(|(a, _)| a == v))
            .unwrap_or_else(|| default.to_string())
    };
    let text = |key: &str| query.read_untracked().get(key).unwrap_or_default();
    let settings = Settings {
        graph_type: RwSignal::new(from_query("type", &GRAPH_TYPES, "versioned-app")),
        window: RwSignal::new(from_query("window", &WINDOWS, "60s")),
        namespaces: RwSignal::new(
            text("namespaces")
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        ),
        find: RwSignal::new(text("find")),
        hide: RwSignal::new(text("hide")),
        labels: RwSignal::new(EdgeLabels::parse(&text("labels")).unwrap_or_default()),
    };
    let Settings {
        graph_type,
        window,
        namespaces,
        find,
        hide,
        labels,
    } = settings;
    let navigate = use_navigate();
    // Any change of a setting rewrites the URL (not the history); the
    // first run only subscribes.
    Effect::new(move |first: Option<()>| {
        graph_type.track();
        window.track();
        namespaces.track();
        find.track();
        hide.track();
        labels.track();
        if first.is_some() {
            navigate(
                &settings.url(),
                NavigateOptions {
                    replace: true,
                    scroll: false,
                    ..Default::default()
                },
            );
        }
    });
    let show_idle = RwSignal::new(true);
    let selected = RwSignal::new(None::<Selection>);
    let tick = use_graph_tick();
    let find_expr = Memo::new(move |_| find::parse(&find.get()));
    let hide_expr = Memo::new(move |_| find::parse(&hide.get()));

    let graph = LocalResource::new(move || {
        tick.track();
        let (t, w, ns) = (graph_type.get(), window.get(), namespaces.get());
        async move { api::graph(&t, &w, &ns).await }
    });
    // What the namespace picker offers: every namespace with a proxy, and
    // any the graph shows (callers outside the mesh have one too).
    let registry = LocalResource::new(|| async { api::proxy_status().await });
    let known = Signal::derive(move || {
        let mut list: Vec<String> = registry
            .get()
            .and_then(Result::ok)
            .map(|s| s.proxies.into_iter().map(|p| p.namespace).collect())
            .unwrap_or_default();
        if let Some(Ok(g)) = graph.get() {
            list.extend(g.nodes.into_iter().map(|n| n.namespace));
        }
        list.retain(|n| !n.is_empty());
        list.sort();
        list.dedup();
        list
    });
    // The graph as drawn: without what Hide takes out.
    let shown = move || {
        graph.get().map(|r| {
            r.map(|g| match hide_expr.get() {
                Ok(Some(expr)) => find::hide(&expr, &g),
                _ => g,
            })
        })
    };

    view! {
        <div class="toolbar">
            <NamespacePicker known namespaces />
            <label>
                "Graph "
                <select
                    data-testid="graph-type"
                    on:change=move |ev| graph_type.set(event_target_value(&ev))
                    prop:value=move || graph_type.get()
                >
                    {GRAPH_TYPES.iter().map(|(v, l)| view! { <option value=*v>{*l}</option> }).collect_view()}
                </select>
            </label>
            <label>
                "Window "
                <select
                    data-testid="graph-window"
                    on:change=move |ev| window.set(event_target_value(&ev))
                    prop:value=move || window.get()
                >
                    {WINDOWS.iter().map(|(v, l)| view! { <option value=*v>{*l}</option> }).collect_view()}
                </select>
            </label>
            <label>
                "Edge labels "
                <select
                    data-testid="edge-labels"
                    on:change=move |ev| {
                        labels.set(EdgeLabels::parse(&event_target_value(&ev)).unwrap_or_default())
                    }
                    prop:value=move || labels.get().as_str()
                >
                    {EdgeLabels::ALL
                        .iter()
                        .map(|l| view! { <option value=l.as_str()>{l.words()}</option> })
                        .collect_view()}
                </select>
            </label>
            <label class="check">
                <input
                    type="checkbox"
                    prop:checked=move || show_idle.get()
                    on:change=move |ev| show_idle.set(event_target_checked(&ev))
                />
                " Idle edges"
            </label>
            // `loupe_api::health`'s thresholds, in words.
            <span class="legend" title="5xx: any is degraded, 10% failure; 4xx: 10% degraded, 20% failure; gRPC errors as 5xx">
                <span class="swatch healthy"></span>"OK "
                <span class="swatch degraded"></span>"any 5xx / ≥10% 4xx "
                <span class="swatch failure"></span>"≥10% 5xx / ≥20% 4xx "
                <span class="swatch idle"></span>"no traffic"
            </span>
        </div>
        <FindBar find hide find_expr hide_expr />
        <div class="graph-layout">
            <div class="graph-canvas">
                <Transition fallback=|| view! { <p class="loading">"Loading graph…"</p> }>
                    <ErrorBoundary fallback=|errors| view! { <ErrorList errors /> }>
                        {move || {
                            shown()
                                .map(|r| {
                                    r.map(|g| {
                                        if g.nodes.is_empty() {
                                            view! {
                                                <p class="empty" data-testid="graph-empty">
                                                    "No traffic in this window yet. Requests through the mesh appear here within seconds."
                                                </p>
                                            }
                                            .into_any()
                                        } else {
                                            let found = match find_expr.get() {
                                                Ok(Some(expr)) => Some(find::select(&expr, &g)),
                                                _ => None,
                                            };
                                            view! {
                                                <GraphView graph=g selected show_idle=show_idle.get() found labels=labels.get() />
                                            }
                                            .into_any()
                                        }
                                    })
                                })
                        }}
                    </ErrorBoundary>
                </Transition>
            </div>
            {move || {
                shown()
                    .and_then(Result::ok)
                    .map(|g| view! { <SidePanel graph=g selected /> })
            }}
        </div>
    }
}
