//! `/traces/:id`: one trace as Jaeger shows it — a virtualized timeline or a
//! flame graph, the critical path marked in both, and the selected span's
//! details.

use std::sync::Arc;

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api;
use crate::components::error_list::ErrorList;
use crate::components::flame_graph::FlameGraph;
use crate::components::span_details::SpanDetails;
use crate::components::timeline::{Timeline, service_colour};
use crate::graph::format_ms;
use crate::trace::TraceModel;

/// The trace view's two pictures of the same spans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum View {
    Timeline,
    FlameGraph,
}

#[component]
pub fn TracePage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let id = move || params.read().get("id").unwrap_or_default();
    // `/traces/ID?view=flamegraph` opens on the flame graph.
    let view_kind = RwSignal::new(
        if query.read_untracked().get("view").as_deref() == Some("flamegraph") {
            View::FlameGraph
        } else {
            View::Timeline
        },
    );
    let trace = LocalResource::new(move || {
        let id = id();
        async move { api::trace(&id).await.map(TraceModel::of) }
    });
    let tab = move |v: View, label: &'static str, testid: &'static str| {
        view! {
            <button
                class="tab"
                class:active=move || view_kind.get() == v
                data-testid=testid
                on:click=move |_| view_kind.set(v)
            >
                {label}
            </button>
        }
    };
    view! {
        <div class="toolbar">
            <a href="/traces" class="button">"← Traces"</a>
            <span class="mono">"Trace " {id}</span>
            <span class="tabs">
                {tab(View::Timeline, "Timeline", "trace-view-timeline")}
                {tab(View::FlameGraph, "Flame graph", "trace-view-flamegraph")}
            </span>
        </div>
        <Suspense fallback=|| view! { <p class="loading">"Loading trace…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorList errors /> }>
                {move || {
                    trace
                        .get()
                        .map(|r| {
                            r.map(|m| {
                                let services = {
                                    let mut s: Vec<&str> = m.trace.spans.iter().map(|s| s.service.as_str()).collect();
                                    s.sort();
                                    s.dedup();
                                    s.len()
                                };
                                let selected = RwSignal::new(None::<usize>);
                                let m2 = m.clone();
                                let m3 = m.clone();
                                view! {
                                    <div
                                        class="trace-summary"
                                        data-testid="trace-view"
                                        data-service-count=services.to_string()
                                        data-span-count=m.trace.spans.len().to_string()
                                        data-critical-spans=m.critical_spans().to_string()
                                    >
                                        <span>{format!("{} spans", m.trace.spans.len())}</span>
                                        <span>{format!("{services} services")}</span>
                                        <span>{format!("{} total", format_ms(m.tree.total_ms()))}</span>
                                        <span>{format!("{} spans on the critical path", m.critical_spans())}</span>
                                    </div>
                                    <ServicesLegend model=m.clone() />
                                    {move || match view_kind.get() {
                                        View::Timeline => view! { <Timeline model=m2.clone() selected /> }.into_any(),
                                        View::FlameGraph => view! { <FlameGraph model=m2.clone() selected /> }.into_any(),
                                    }}
                                    <SpanDetails model=m3 selected />
                                }
                            })
                        })
                }}
            </ErrorBoundary>
        </Suspense>
    }
}

/// The trace's services and their colours, in the order they first appear.
#[component]
fn ServicesLegend(model: Arc<TraceModel>) -> impl IntoView {
    let mut seen: Vec<&str> = Vec::new();
    for &i in &model.tree.order {
        let s = model.trace.spans[i].service.as_str();
        if !seen.contains(&s) {
            seen.push(s);
        }
    }
    let items = seen
        .into_iter()
        .map(|s| {
            view! {
                <span class="legend-item">
                    <span class="service-dot" style=format!("background:{}", service_colour(s))></span>
                    {s.to_string()}
                </span>
            }
        })
        .collect_view();
    view! { <div class="legend services-legend">{items}<span class="legend-item"><span class="critical-swatch"></span>"critical path"</span></div> }
}
