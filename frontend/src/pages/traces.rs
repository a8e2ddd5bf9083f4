//! `/traces`: traces filtered by service, operation, tags, duration,
//! lookback and a graph edge they crossed, in Jaeger's sort orders (one
//! trace is `pages::trace`).

use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};

use crate::api;
use crate::components::error_list::ErrorList;
use crate::components::timeline::service_colour;
use crate::graph::format_ms;
use crate::live::use_graph_tick;
use crate::time::{clock, epoch_ms};
use loupe_api::traces::{EdgeCrossing, TraceSort, TraceSummary};

/// Jaeger's lookback presets; empty is any time.
const LOOKBACKS: [(&str, &str); 6] = [
    ("", "Any time"),
    ("5m", "Last 5 minutes"),
    ("15m", "Last 15 minutes"),
    ("1h", "Last hour"),
    ("6h", "Last 6 hours"),
    ("1d", "Last day"),
];

/// The edge of `/traces?source_workload=…&destination_workload=…`, if any.
fn edge_from_query(param: &dyn Fn(&str) -> String) -> Option<EdgeCrossing> {
    let given = |k: &str| Some(param(k)).filter(|v| !v.is_empty());
    let list = |k: &str| -> Vec<String> {
        param(k)
            .split(',')
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect()
    };
    let e = EdgeCrossing {
        source_workloads: list("source_workload"),
        source_app: given("source_app"),
        source_namespace: given("source_namespace"),
        destination_workloads: list("destination_workload"),
        destination_service: given("destination_service"),
        destination_namespace: given("destination_namespace"),
    };
    (e != EdgeCrossing::default()).then_some(e)
}

/// `default/productpage-v1 → default/reviews-v1, reviews-v2`.
fn edge_words(e: &EdgeCrossing) -> String {
    let side = |workloads: &[String], other: Option<&String>, ns: Option<&String>| {
        let names = if workloads.is_empty() {
            other.cloned().unwrap_or_else(|| "outside the mesh".into())
        } else {
            workloads.join(", ")
        };
        match ns {
            Some(ns) => format!("{ns}/{names}"),
            None => names,
        }
    };
    format!(
        "{} → {}",
        side(
            &e.source_workloads,
            e.source_app.as_ref(),
            e.source_namespace.as_ref()
        ),
        side(
            &e.destination_workloads,
            e.destination_service.as_ref(),
            e.destination_namespace.as_ref()
        )
    )
}

#[component]
pub fn TracesPage() -> impl IntoView {
    let query = use_query_map();
    let param = |key: &str| query.read_untracked().get(key).unwrap_or_default();
    let service = RwSignal::new(param("service"));
    // `/traces?source_workload=…&destination_workload=…&sort=longest_first`
    // is what a graph edge's "slowest traces" link opens.
    let sort = RwSignal::new(TraceSort::parse(&param("sort")).unwrap_or_default());
    let lookback = RwSignal::new(param("lookback"));
    let edge = RwSignal::new(edge_from_query(&param));
    let min_ms = RwSignal::new(0.0f64);
    // Operation and tags apply when the field is left (or Enter is pressed),
    // not on every keystroke.
    let operation = RwSignal::new(String::new());
    let tags = RwSignal::new(String::new());
    let limit = RwSignal::new(50u32);
    let paused = RwSignal::new(false);
    let tick = use_graph_tick();

    let traces = LocalResource::new(move || {
        if !paused.get() {
            tick.track();
        }
        let q = api::TraceQuery {
            service: service.get(),
            operation: operation.get(),
            tags: tags.get(),
            min_duration_ms: min_ms.get(),
            limit: limit.get(),
            lookback: lookback.get(),
            sort: sort.get(),
            edge: edge.get(),
        };
        async move { api::traces(&q).await }
    });
    // Services to filter by: the apps of the graph (they are the services
    // that carry traffic), stable while the trace list refreshes.
    let services = LocalResource::new(|| async {
        let mut apps: Vec<String> = api::graph("app", "900s", &[])
            .await
            .map(|g| {
                g.nodes
                    .into_iter()
                    .map(|n| n.app)
                    .filter(|a| !a.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        apps.sort();
        apps.dedup();
        apps
    });

    view! {
        <div class="toolbar">
            <label>
                "Service "
                <select
                    data-testid="trace-service"
                    on:change=move |ev| service.set(event_target_value(&ev))
                    prop:value=move || service.get()
                >
                    <option value="">"All services"</option>
                    {move || {
                        let mut list = services.get().unwrap_or_default();
                        let current = service.get();
                        if !current.is_empty() && !list.contains(&current) {
                            list.push(current);
                        }
                        list.into_iter().map(|s| view! { <option value=s.clone()>{s.clone()}</option> }).collect_view()
                    }}
                </select>
            </label>
            <label>
                "Operation "
                <input
                    type="text"
                    placeholder="e.g. GET /reviews"
                    data-testid="trace-operation"
                    on:change=move |ev| operation.set(event_target_value(&ev))
                />
            </label>
            <label>
                "Tags "
                <input
                    type="text"
                    placeholder="http.status_code:500"
                    title="key:value pairs, separated by spaces"
                    data-testid="trace-tags"
                    on:change=move |ev| tags.set(event_target_value(&ev))
                />
            </label>
            <label>
                "Min duration (ms) "
                <input
                    type="number"
                    min="0"
                    class="narrow"
                    data-testid="trace-min-duration"
                    prop:value=move || min_ms.get().to_string()
                    on:input=move |ev| min_ms.set(event_target_value(&ev).parse().unwrap_or(0.0))
                />
            </label>
            <label>
                "Limit "
                <select on:change=move |ev| limit.set(event_target_value(&ev).parse().unwrap_or(50))>
                    <option value="20">"20"</option>
                    <option value="50" selected>"50"</option>
                    <option value="200">"200"</option>
                </select>
            </label>
            <label>
                "Lookback "
                <select
                    data-testid="trace-lookback"
                    on:change=move |ev| lookback.set(event_target_value(&ev))
                    prop:value=move || lookback.get()
                >
                    {move || {
                        let mut list: Vec<(String, String)> = LOOKBACKS
                            .iter()
                            .map(|(v, l)| (v.to_string(), l.to_string()))
                            .collect();
                        let current = lookback.get();
                        if !list.iter().any(|(v, _)| *v == current) {
                            list.push((current.clone(), format!("Last {current}")));
                        }
                        list.into_iter().map(|(v, l)| view! { <option value=v>{l}</option> }).collect_view()
                    }}
                </select>
            </label>
            <label>
                "Sort "
                <select
                    data-testid="trace-sort"
                    on:change=move |ev| sort.set(TraceSort::parse(&event_target_value(&ev)).unwrap_or_default())
                    prop:value=move || sort.get().as_str()
                >
                    {TraceSort::ALL
                        .iter()
                        .map(|s| view! { <option value=s.as_str()>{s.words()}</option> })
                        .collect_view()}
                </select>
            </label>
            <label class="check">
                <input type="checkbox" on:change=move |ev| paused.set(event_target_checked(&ev)) />
                " Pause live updates"
            </label>
        </div>
        {move || {
            edge.get()
                .map(|e| {
                    view! {
                        <div class="edge-filter" data-testid="trace-edge-filter">
                            "Traces that crossed the edge "
                            <strong>{edge_words(&e)}</strong>
                            <button class="small" data-testid="trace-edge-clear" on:click=move |_| edge.set(None)>
                                "✕ all traces"
                            </button>
                        </div>
                    }
                })
        }}
        <Transition fallback=|| view! { <p class="loading">"Loading traces…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorList errors /> }>
                {move || {
                    traces
                        .get()
                        .map(|r| {
                            r.map(|list| {
                                let min = min_ms.get();
                                let list: Vec<TraceSummary> =
                                    list.into_iter().filter(|t| t.duration_ms >= min).collect();
                                view! { <TraceTable traces=list /> }
                            })
                        })
                }}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn TraceTable(traces: Vec<TraceSummary>) -> impl IntoView {
    if traces.is_empty() {
        return view! { <p class="empty" data-testid="traces-empty">"No traces match."</p> }
            .into_any();
    }
    let longest = traces.iter().map(|t| t.duration_ms).fold(0.001, f64::max);
    let navigate = use_navigate();
    view! {
        <table class="data traces" data-testid="traces-table">
            <thead>
                <tr>
                    <th>"Start (UTC)"</th>
                    <th>"Root"</th>
                    <th>"Services"</th>
                    <th class="num">"Spans"</th>
                    <th>"Duration"</th>
                    <th>"Trace ID"</th>
                </tr>
            </thead>
            <tbody>
                {traces
                    .into_iter()
                    .map(|t| {
                        let href = format!("/traces/{}", t.trace_id);
                        let nav = navigate.clone();
                        let href2 = href.clone();
                        view! {
                            <tr
                                data-testid="trace-row"
                                data-trace-id=t.trace_id.clone()
                                data-duration-ms=t.duration_ms.to_string()
                                data-span-count=t.span_count.to_string()
                                data-service-count=t.services.len().to_string()
                                class="clickable"
                                on:click=move |_| nav(&href2, Default::default())
                            >
                                <td class="mono">{clock(epoch_ms(&t.start))}</td>
                                <td>
                                    {if t.root_service.is_empty() {
                                        view! {
                                            <span class="muted" title="The trace's root span has not arrived (yet)">
                                                "(no root span)"
                                            </span>
                                        }
                                            .into_any()
                                    } else {
                                        view! { <strong>{t.root_service.clone()}</strong> }.into_any()
                                    }}
                                    " "
                                    <span class="muted">{t.root_operation.clone()}</span>
                                </td>
                                <td>
                                    {t
                                        .services
                                        .iter()
                                        .map(|s| {
                                            view! {
                                                <span class="chip">
                                                    <span
                                                        class="service-dot"
                                                        style=format!("background:{}", service_colour(s))
                                                    ></span>
                                                    {s.clone()}
                                                </span>
                                            }
                                        })
                                        .collect_view()}
                                </td>
                                <td class="num">{t.span_count}</td>
                                <td>
                                    <div class="duration-cell">
                                        <div
                                            class="duration-bar"
                                            style=format!("width:{:.1}%", t.duration_ms / longest * 100.0)
                                        ></div>
                                        <span>{format_ms(t.duration_ms)}</span>
                                    </div>
                                </td>
                                <td class="mono">
                                    <a href=href>{t.trace_id.chars().take(16).collect::<String>()}</a>
                                </td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_edge_link_is_read_back_from_the_query() {
        let query = |k: &str| match k {
            "source_workload" => "productpage-v1".to_string(),
            "source_namespace" | "destination_namespace" => "default".to_string(),
            "destination_workload" => "reviews-v1,reviews-v2".to_string(),
            _ => String::new(),
        };
        let e = edge_from_query(&query).expect("an edge");
        assert_eq!(e.destination_workloads, ["reviews-v1", "reviews-v2"]);
        assert_eq!(
            edge_words(&e),
            "default/productpage-v1 → default/reviews-v1, reviews-v2"
        );
        assert_eq!(edge_from_query(&|_: &str| String::new()), None);
        let outside = EdgeCrossing {
            destination_service: Some("productpage".into()),
            ..EdgeCrossing::default()
        };
        assert_eq!(edge_words(&outside), "outside the mesh → productpage");
    }
}
