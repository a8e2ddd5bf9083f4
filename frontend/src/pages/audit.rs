//! `/audit`: who changed which config when, newest first, searchable by
//! user, kind and namespace (`GET /api/audit`). Refreshes on config events.

use leptos::prelude::*;

use loupe_api::audit::AuditEntry;

use crate::api;
use crate::components::error_list::ErrorList;
use crate::live::use_config_tick;
use crate::time::{clock, epoch_ms};

#[component]
pub fn AuditPage() -> impl IntoView {
    let user = RwSignal::new(String::new());
    let kind = RwSignal::new(String::new());
    let namespace = RwSignal::new(String::new());
    let tick = use_config_tick();
    let entries = LocalResource::new(move || {
        tick.track();
        let q = api::AuditQuery {
            user: user.get(),
            kind: kind.get(),
            namespace: namespace.get(),
            limit: 200,
        };
        async move { api::audit(&q).await }
    });
    let field = |label: &'static str, testid: &'static str, value: RwSignal<String>| {
        view! {
            <label>
                {label} " "
                <input
                    type="text"
                    data-testid=testid
                    on:change=move |ev| value.set(event_target_value(&ev).trim().to_string())
                />
            </label>
        }
    };
    view! {
        <div class="toolbar">
            {field("User", "audit-user", user)}
            {field("Kind", "audit-kind", kind)}
            {field("Namespace", "audit-namespace", namespace)}
        </div>
        <Transition fallback=|| view! { <p class="loading">"Loading the audit log…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorList errors /> }>
                {move || entries.get().map(|r| r.map(|list| view! { <AuditTable entries=list /> }))}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn AuditTable(entries: Vec<AuditEntry>) -> impl IntoView {
    if entries.is_empty() {
        return view! { <p class="empty" data-testid="audit-empty">"No changes match."</p> }
            .into_any();
    }
    view! {
        <table class="data" data-testid="audit-table">
            <thead>
                <tr>
                    <th>"Time (UTC)"</th>
                    <th>"User"</th>
                    <th>"Action"</th>
                    <th>"Resource"</th>
                    <th class="num">"Revision"</th>
                </tr>
            </thead>
            <tbody>
                {entries
                    .into_iter()
                    .map(|e| {
                        // `Kind/namespace/name`, the config page's own path.
                        let href = format!("/config/{}", e.resource);
                        view! {
                            <tr data-testid="audit-row" data-user=e.actor.clone()>
                                <td class="mono">{clock(epoch_ms(&e.at))}</td>
                                <td>{e.actor.clone()}</td>
                                <td>{e.action.clone()}</td>
                                <td>
                                    <a href=href>{e.resource.clone()}</a>
                                </td>
                                <td class="num">{e.revision.map(|r| r.to_string()).unwrap_or_default()}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}
