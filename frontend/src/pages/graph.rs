//! `/` and `/graph`: the live service graph with its type and window
//! selectors and the side panel.

use leptos::prelude::*;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_navigate, use_query_map};

use crate::api;
use crate::components::error_list::ErrorList;
use crate::components::graph_view::{GraphView, Selection};
use crate::components::side_panel::SidePanel;
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

#[component]
pub fn GraphPage() -> impl IntoView {
    // Type and window live in the URL too (`/graph?type=app&window=5m`), so
    // a view can be bookmarked and shared, as in Kiali.
    let query = use_query_map();
    let from_query = |key: &str, allowed: &[(&str, &str)], default: &str| {
        query
            .read_untracked()
            .get(key)
            .filter(|v| allowed.iter().any(|(a, _)| a == v))
            .unwrap_or_else(|| default.to_string())
    };
    let graph_type = RwSignal::new(from_query("type", &GRAPH_TYPES, "versioned-app"));
    let window = RwSignal::new(from_query("window", &WINDOWS, "60s"));
    let navigate = use_navigate();
    let remember = move || {
        let url = format!(
            "/graph?type={}&window={}",
            graph_type.get_untracked(),
            window.get_untracked()
        );
        navigate(
            &url,
            NavigateOptions {
                replace: true,
                scroll: false,
                ..Default::default()
            },
        );
    };
    let remember2 = remember.clone();
    let show_idle = RwSignal::new(true);
    let selected = RwSignal::new(None::<Selection>);
    let tick = use_graph_tick();

    let graph = LocalResource::new(move || {
        tick.track();
        let (t, w) = (graph_type.get(), window.get());
        async move { api::graph(&t, &w).await }
    });

    view! {
        <div class="toolbar">
            <label>
                "Graph "
                <select
                    data-testid="graph-type"
                    on:change=move |ev| {
                        graph_type.set(event_target_value(&ev));
                        remember();
                    }
                    prop:value=move || graph_type.get()
                >
                    {GRAPH_TYPES.iter().map(|(v, l)| view! { <option value=*v>{*l}</option> }).collect_view()}
                </select>
            </label>
            <label>
                "Window "
                <select
                    data-testid="graph-window"
                    on:change=move |ev| {
                        window.set(event_target_value(&ev));
                        remember2();
                    }
                    prop:value=move || window.get()
                >
                    {WINDOWS.iter().map(|(v, l)| view! { <option value=*v>{*l}</option> }).collect_view()}
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
        <div class="graph-layout">
            <div class="graph-canvas">
                <Transition fallback=|| view! { <p class="loading">"Loading graph…"</p> }>
                    <ErrorBoundary fallback=|errors| view! { <ErrorList errors /> }>
                        {move || {
                            graph
                                .get()
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
                                            view! {
                                                <GraphView graph=g selected show_idle=show_idle.get() />
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
                graph
                    .get()
                    .and_then(Result::ok)
                    .map(|g| view! { <SidePanel graph=g selected /> })
            }}
        </div>
    }
}
