//! `/canary`: a weight slider per destination of every VirtualService route
//! that splits traffic. Moving one slider rebalances the others live; on
//! release the route's weights are saved as a new config revision, and the
//! graph shows the shift within seconds.

use leptos::prelude::*;
use leptos::task::spawn_local;

use loupe_api::canary::{Canary, CanaryRoute, WeightRequest, WeightedDestination, WeightsRequest};

use crate::api;
use crate::components::error_list::ErrorList;
use crate::graph::sanitize_id;
use crate::weights::rebalance;

#[component]
pub fn CanaryPage() -> impl IntoView {
    let canaries = LocalResource::new(api::canaries);
    view! {
        <div class="toolbar">
            <span class="muted">
                "Weighted routes of every VirtualService. Drag a slider and release it to save a new revision."
            </span>
            <button on:click=move |_| canaries.refetch()>"Reload"</button>
        </div>
        <Suspense fallback=|| view! { <p class="loading">"Loading VirtualServices…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorList errors /> }>
                {move || {
                    canaries
                        .get()
                        .map(|r| {
                            r.map(|list| {
                                if list.is_empty() {
                                    return view! {
                                        <p class="empty" data-testid="canary-empty">
                                            "No VirtualService splits traffic by weight yet. Apply one with two or more weighted destinations."
                                        </p>
                                    }
                                    .into_any();
                                }
                                list.into_iter()
                                    .map(|c| view! { <CanaryCard canary=c /> })
                                    .collect_view()
                                    .into_any()
                            })
                        })
                }}
            </ErrorBoundary>
        </Suspense>
    }
}

#[derive(Clone, Debug, PartialEq)]
enum SaveState {
    Idle,
    Saving,
    /// When, and the revision the server wrote.
    Saved(String, i32),
    Failed(String),
}

#[component]
fn CanaryCard(canary: Canary) -> impl IntoView {
    let status = RwSignal::new(SaveState::Idle);
    let revision = RwSignal::new(canary.revision);
    let name = canary.name.clone();
    let routes = canary
        .routes
        .into_iter()
        .map(|route| {
            view! { <RouteSliders namespace=canary.namespace.clone() vs=canary.name.clone() route status revision /> }
        })
        .collect_view();
    let status_view = move || {
        let (state, text) = match status.get() {
            SaveState::Idle => ("idle", String::new()),
            SaveState::Saving => ("saving", "Saving…".to_string()),
            SaveState::Saved(at, rev) => ("saved", format!("Saved ✓ revision {rev} at {at}")),
            SaveState::Failed(e) => ("error", format!("Save failed: {e}")),
        };
        view! {
            <span class=format!("status {state}") data-testid="canary-status" data-state=state>
                {text}
            </span>
        }
    };
    view! {
        <section class="card" data-testid=format!("canary-{}", sanitize_id(&name))>
            <header>
                <h2>
                    {canary.name.clone()}
                    <span class="muted">" · " {canary.namespace.clone()}</span>
                    <span class="muted small">
                        {move || format!(" · revision {}", revision.get())}
                    </span>
                </h2>
                <a href=format!("/config/VirtualService/{}/{}", canary.namespace, canary.name)>"YAML & history"</a>
            </header>
            {routes}
            <footer>{status_view}</footer>
        </section>
    }
}

/// What a destination is called on the page and in the PUT body.
fn subset_name(d: &WeightedDestination) -> String {
    d.subset
        .clone()
        .unwrap_or_else(|| d.host.split('.').next().unwrap_or(&d.host).to_string())
}

#[component]
fn RouteSliders(
    namespace: String,
    vs: String,
    route: CanaryRoute,
    status: RwSignal<SaveState>,
    revision: RwSignal<i32>,
) -> impl IntoView {
    let names: Vec<String> = route.destinations.iter().map(subset_name).collect();
    let hosts: Vec<String> = route.destinations.iter().map(|d| d.host.clone()).collect();
    let weights = RwSignal::new(
        route
            .destinations
            .iter()
            .map(|d| d.weight.clamp(0, 100) as u32)
            .collect::<Vec<u32>>(),
    );
    let index = route.index;
    let title = route
        .name
        .clone()
        .unwrap_or_else(|| format!("route {}", route.index));

    let destinations = route.destinations.clone();
    let save = {
        let (namespace, vs) = (namespace.clone(), vs.clone());
        move || {
            // Host and subset together name a destination even where two
            // share a subset name or one has none.
            let update = WeightsRequest {
                route_index: index,
                weights: destinations
                    .iter()
                    .zip(weights.get_untracked())
                    .map(|(d, weight)| WeightRequest {
                        subset: d.subset.clone(),
                        host: Some(d.host.clone()),
                        weight: i64::from(weight),
                    })
                    .collect(),
                revision: Some(revision.get_untracked()),
            };
            let (namespace, vs) = (namespace.clone(), vs.clone());
            status.set(SaveState::Saving);
            spawn_local(async move {
                match api::set_canary(&namespace, &vs, &update).await {
                    Ok(saved) => {
                        revision.set(saved.revision);
                        status.set(SaveState::Saved(now_clock(), saved.revision));
                    }
                    Err(api::ApiError::Status { status: 409, .. }) => status.set(SaveState::Failed(
                        "the VirtualService changed since this page loaded; press Reload and try again".into(),
                    )),
                    Err(e) => status.set(SaveState::Failed(e.to_string())),
                }
            });
        }
    };

    let can_edit = crate::session::use_can_edit();
    // Slider ids: `slider-<vs>-<subset>`; later routes add their index.
    let prefix = if index == 0 {
        sanitize_id(&vs)
    } else {
        format!("{}-{index}", sanitize_id(&vs))
    };
    let segment_names = names.clone();
    let rows = names
        .iter()
        .enumerate()
        .map(|(i, subset)| {
            let save_on_change = save.clone();
            let save_all = save.clone();
            let testid = format!("slider-{prefix}-{}", sanitize_id(subset));
            let all_testid = format!("all-to-{prefix}-{}", sanitize_id(subset));
            let label = subset.clone();
            view! {
                <div class="weight-row">
                    <label class="weight-label" title=hosts[i].clone()>
                        <span class=format!("seg-dot seg{}", i % 6)></span>
                        {label.clone()}
                    </label>
                    <input
                        type="range"
                        min="0"
                        max="100"
                        step="1"
                        data-testid=testid
                        aria-label=format!("Weight of {label}")
                        disabled=move || !can_edit.get()
                        prop:value=move || weights.get().get(i).copied().unwrap_or(0).to_string()
                        on:input=move |ev| {
                            let v = event_target_value(&ev).parse().unwrap_or(0);
                            weights.update(|w| *w = rebalance(w, i, v));
                        }
                        on:change=move |ev| {
                            let v = event_target_value(&ev).parse().unwrap_or(0);
                            weights.update(|w| *w = rebalance(w, i, v));
                            save_on_change();
                        }
                    />
                    <span class="weight-value" data-testid=format!("weight-{prefix}-{}", sanitize_id(subset))>
                        {move || format!("{}%", weights.get().get(i).copied().unwrap_or(0))}
                    </span>
                    <button
                        class="small"
                        data-testid=all_testid
                        disabled=move || !can_edit.get()
                        on:click=move |_| {
                            weights.update(|w| *w = rebalance(w, i, 100));
                            save_all();
                        }
                    >
                        {format!("100% to {subset}")}
                    </button>
                </div>
            }
        })
        .collect_view();

    view! {
        <div class="route">
            <h4>{title}</h4>
            <div class="weight-bar">
                {move || {
                    weights
                        .get()
                        .into_iter()
                        .enumerate()
                        .map(|(i, w)| {
                            view! {
                                <div
                                    class=format!("weight-seg seg{}", i % 6)
                                    style=format!("width:{w}%")
                                    title=format!("{} {w}%", segment_names[i])
                                >
                                    {(w >= 10).then(|| format!("{} {w}%", segment_names[i]))}
                                </div>
                            }
                        })
                        .collect_view()
                }}
            </div>
            {rows}
        </div>
    }
}

fn now_clock() -> String {
    crate::time::clock(js_sys::Date::now())
}
