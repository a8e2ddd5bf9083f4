//! `/mesh`: the mesh's own health. Proxy status as `istioctl proxy-status`
//! shows it — per proxy connected or not, the config revision it applied,
//! SYNCED / STALE / NACKED (with the proxy's reason) — with "applied by N of
//! M proxies" for the newest revision; and, under `loupe demo`, its parts
//! (control plane, collector, console, apps, sidecars) with their restarts,
//! as `kubectl get pods` shows RESTARTS. Refreshes with the live ticks.

use leptos::prelude::*;

use loupe_api::mesh::{Components, ProxyStatusList, Sync};

use crate::api;
use crate::components::error_list::ErrorList;
use crate::live::{use_config_tick, use_graph_tick};
use crate::time::{clock, epoch_ms};

#[component]
pub fn MeshPage() -> impl IntoView {
    let graph = use_graph_tick();
    let config = use_config_tick();
    let proxies = LocalResource::new(move || {
        graph.track();
        config.track();
        api::proxy_status()
    });
    let parts = LocalResource::new(move || {
        graph.track();
        api::components()
    });
    view! {
        <h2>"Proxies"</h2>
        <Transition fallback=|| view! { <p class="loading">"Loading proxy status…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorList errors /> }>
                {move || proxies.get().map(|r| r.map(|list| view! { <ProxyTable list /> }))}
            </ErrorBoundary>
        </Transition>
        <h2>"Mesh parts"</h2>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorList errors /> }>
                {move || parts.get().map(|r| r.map(|c| view! { <PartsTable components=c /> }))}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn ProxyTable(list: ProxyStatusList) -> impl IntoView {
    let summary = format!(
        "Config revision {}: applied by {} of {} connected proxies",
        list.config_revision, list.synced, list.connected
    );
    let all = list.synced == list.connected;
    view! {
        <p class="summary" class:warn=!all data-testid="proxy-summary"
            data-synced=list.synced data-connected=list.connected>{summary}</p>
        <table class="data" data-testid="proxy-table">
            <thead>
                <tr>
                    <th>"Proxy"</th>
                    <th>"Address"</th>
                    <th>"Sync"</th>
                    <th class="num">"ACKed"</th>
                    <th class="num">"NACKed"</th>
                    <th>"Last seen (UTC)"</th>
                </tr>
            </thead>
            <tbody>
                {list
                    .proxies
                    .into_iter()
                    .map(|p| {
                        let sync = match (p.sync, &p.nack_error) {
                            (Sync::Nacked, Some(why)) => format!("NACKED: {why}"),
                            (s, _) => s.as_str().to_string(),
                        };
                        let revision = |r: Option<i64>| r.map(|r| r.to_string()).unwrap_or_default();
                        view! {
                            <tr data-testid="proxy-row" data-workload=p.workload.clone()
                                data-sync=p.sync.as_str()>
                                <td>{format!("{}.{}", p.workload, p.namespace)}</td>
                                <td class="mono">{p.address.clone()}</td>
                                <td class=format!("sync {}", p.sync.as_str().to_lowercase())>{sync}</td>
                                <td class="num">{revision(p.acked_revision)}</td>
                                <td class="num">{revision(p.nacked_revision)}</td>
                                <td class="mono">{clock(epoch_ms(&p.last_seen))}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}

#[component]
fn PartsTable(components: Components) -> impl IntoView {
    if !components.supervised {
        return view! {
            <p class="empty" data-testid="parts-unsupervised">
                "This console was started on its own: no supervisor reports the mesh's parts."
            </p>
        }
        .into_any();
    }
    view! {
        <table class="data" data-testid="parts-table">
            <thead>
                <tr>
                    <th>"Part"</th>
                    <th>"State"</th>
                    <th class="num">"PID"</th>
                    <th class="num">"Restarts"</th>
                    <th>"Last exit"</th>
                    <th>"Started (UTC)"</th>
                </tr>
            </thead>
            <tbody>
                {components
                    .parts
                    .into_iter()
                    .map(|p| {
                        let last_exit = match (&p.last_exit, &p.last_exit_at) {
                            (Some(how), Some(at)) => {
                                format!("{how} at {}", clock(epoch_ms(at)))
                            }
                            (Some(how), None) => how.clone(),
                            _ => String::new(),
                        };
                        let restarted = p.restarts > 0;
                        view! {
                            <tr data-testid="part-row" data-part=p.name.clone()
                                data-restarts=p.restarts data-running=p.running.to_string()>
                                <td>{p.name.clone()}</td>
                                <td>{if p.running { "running" } else { "restarting" }}</td>
                                <td class="num">{p.pid.map(|p| p.to_string()).unwrap_or_default()}</td>
                                <td class="num" class:warn=restarted>{p.restarts}</td>
                                <td>{last_exit}</td>
                                <td class="mono">{clock(epoch_ms(&p.started_at))}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}
