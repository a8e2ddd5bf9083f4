//! `/traces`: recent traces, filtered by service and minimum duration, and
//! `/traces/:id`: one trace's timeline.

use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};

use crate::api;
use crate::components::error_list::ErrorList;
use crate::components::timeline::{Timeline, service_colour};
use crate::graph::format_ms;
use crate::live::use_graph_tick;
use crate::time::{clock, epoch_ms};
use loupe_api::traces::TraceSummary;

#[component]
pub fn TracesPage() -> impl IntoView {
    let query = use_query_map();
    let service = RwSignal::new(query.read_untracked().get("service").unwrap_or_default());
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
            <label class="check">
                <input type="checkbox" on:change=move |ev| paused.set(event_target_checked(&ev)) />
                " Pause live updates"
            </label>
        </div>
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

#[component]
pub fn TracePage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let trace = LocalResource::new(move || {
        let id = id();
        async move { api::trace(&id).await }
    });
    view! {
        <div class="toolbar">
            <a href="/traces" class="button">"← Traces"</a>
            <span class="mono">"Trace " {id}</span>
        </div>
        <Suspense fallback=|| view! { <p class="loading">"Loading trace…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorList errors /> }>
                {move || {
                    trace
                        .get()
                        .map(|r| {
                            r.map(|t| {
                                let services = {
                                    let mut s: Vec<&str> = t.spans.iter().map(|s| s.service.as_str()).collect();
                                    s.sort();
                                    s.dedup();
                                    s.len()
                                };
                                let total = crate::components::timeline::rows(&t).1;
                                view! {
                                    <div
                                        class="trace-summary"
                                        data-testid="trace-view"
                                        data-service-count=services.to_string()
                                        data-span-count=t.spans.len().to_string()
                                    >
                                        <span>{format!("{} spans", t.spans.len())}</span>
                                        <span>{format!("{services} services")}</span>
                                        <span>{format!("{} total", format_ms(total))}</span>
                                    </div>
                                    <Timeline trace=t />
                                }
                            })
                        })
                }}
            </ErrorBoundary>
        </Suspense>
    }
}
