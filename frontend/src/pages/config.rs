//! `/config` and `/config/:kind/:ns/:name`: every Istio resource in the
//! store with its YAML, its revision history, and an editor that validates
//! in the browser with `loupe-model` — the same parser and analyzer the
//! control plane runs — before anything is sent.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_params_map;
use loupe_model::{Diagnostic, Severity};

use loupe_api::config::Resource;

use crate::api::{self, ApiError};
use crate::components::diff_view::DiffView;
use crate::components::error_list::ErrorList;
use crate::graph::sanitize_id;
use crate::live::use_config_tick;
use crate::validate::validate_edit;

#[component]
pub fn ConfigPage() -> impl IntoView {
    let params = use_params_map();
    let tick = use_config_tick();
    let list = LocalResource::new(move || {
        tick.track();
        api::config_list()
    });
    let selected = move || {
        let p = params.read();
        Some((p.get("kind")?, p.get("ns")?, p.get("name")?))
    };

    view! {
        <div class="config-layout">
            <nav class="config-list" data-testid="config-list">
                <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    <ErrorBoundary fallback=|errors| view! { <ErrorList errors /> }>
                        {move || list.get().map(|r| r.map(|entries| view! { <ResourceList entries selected=selected() /> }))}
                    </ErrorBoundary>
                </Transition>
            </nav>
            <div class="config-detail">
                {move || match selected() {
                    None => view! {
                        <p class="hint">"Pick a resource to see its YAML and history, and to edit it."</p>
                    }
                    .into_any(),
                    Some((kind, ns, name)) => {
                        let all = Signal::derive(move || list.get().and_then(Result::ok).unwrap_or_default());
                        view! { <ResourceDetail kind ns name all /> }.into_any()
                    }
                }}
            </div>
        </div>
    }
}

#[component]
fn ResourceList(
    entries: Vec<Resource>,
    selected: Option<(String, String, String)>,
) -> impl IntoView {
    if entries.is_empty() {
        return view! { <p class="empty">"No resources yet. Apply some with `loupe apply -f`."</p> }.into_any();
    }
    let mut entries = entries;
    entries.sort_by(|a, b| {
        (a.kind.as_str(), &a.namespace, &a.name).cmp(&(b.kind.as_str(), &b.namespace, &b.name))
    });
    let mut last_kind = None;
    entries
        .into_iter()
        .map(|e| {
            let kind = e.kind.as_str();
            let heading = (last_kind != Some(e.kind)).then(|| {
                last_kind = Some(e.kind);
                view! { <h4>{kind}</h4> }
            });
            let is_selected = selected.as_ref() == Some(&(kind.to_string(), e.namespace.clone(), e.name.clone()));
            view! {
                {heading}
                <a
                    class="config-item"
                    class:selected=is_selected
                    data-testid=format!("config-item-{}-{}-{}", sanitize_id(kind), sanitize_id(&e.namespace), sanitize_id(&e.name))
                    href=format!("/config/{kind}/{}/{}", loupe_api::encode(&e.namespace), loupe_api::encode(&e.name))
                >
                    {e.name.clone()}
                    <span class="muted">" · " {e.namespace.clone()}</span>
                </a>
            }
        })
        .collect_view()
        .into_any()
}

#[derive(Clone, Debug, PartialEq)]
enum SaveState {
    Idle,
    Saving,
    Saved,
    Refused(Vec<Diagnostic>, String),
    Failed(String),
}

#[component]
fn ResourceDetail(
    kind: String,
    ns: String,
    name: String,
    all: Signal<Vec<Resource>>,
) -> impl IntoView {
    let (k, n, m) = (kind.clone(), ns.clone(), name.clone());
    let detail = LocalResource::new(move || {
        let (k, n, m) = (k.clone(), n.clone(), m.clone());
        async move { api::config_detail(&k, &n, &m).await }
    });
    let text = RwSignal::new(String::new());
    // The stored YAML the editor started from: the diff's left side.
    let stored = RwSignal::new(String::new());
    let loaded = RwSignal::new(false);
    let state = RwSignal::new(SaveState::Idle);
    // Fill the editor once the resource arrives, without clobbering edits later.
    Effect::new(move |_| {
        if let Some(Ok(d)) = detail.get()
            && !loaded.get_untracked()
        {
            text.set(d.resource.yaml.clone());
            stored.set(d.resource.yaml);
            loaded.set(true);
        }
    });
    let (vk, vn, vm) = (kind.clone(), ns.clone(), name.clone());
    let diagnostics = Memo::new(move |_| validate_edit(&vk, &vn, &vm, &text.get(), &all.get()));
    let has_errors = move || diagnostics.with(|d| d.iter().any(|d| d.severity == Severity::Error));

    let can_edit = crate::session::use_can_edit();
    let (sk, sn, sm) = (kind.clone(), ns.clone(), name.clone());
    let save = move |_| {
        let (k, n, m, body) = (sk.clone(), sn.clone(), sm.clone(), text.get_untracked());
        state.set(SaveState::Saving);
        spawn_local(async move {
            match api::put_config(&k, &n, &m, body).await {
                Ok(_) => {
                    state.set(SaveState::Saved);
                    stored.set(text.get_untracked());
                    detail.refetch();
                }
                Err(ApiError::Invalid {
                    diagnostics,
                    message,
                }) => state.set(SaveState::Refused(diagnostics, message)),
                Err(e) => state.set(SaveState::Failed(e.to_string())),
            }
        });
    };

    view! {
        <header class="detail-header">
            <h2>{kind.clone()} " " <span class="muted">{ns.clone()} "/"</span> {name.clone()}</h2>
        </header>
        <div class="editor-layout">
            <div class="editor">
                <textarea
                    data-testid="yaml-editor"
                    spellcheck="false"
                    prop:value=move || text.get()
                    on:input=move |ev| {
                        text.set(event_target_value(&ev));
                        state.set(SaveState::Idle);
                    }
                ></textarea>
                <div class="editor-actions">
                    <button
                        class="primary"
                        data-testid="save-config"
                        disabled=move || {
                            has_errors() || !can_edit.get() || matches!(state.get(), SaveState::Saving)
                        }
                        title=move || {
                            (!can_edit.get()).then_some("Viewers cannot change config: log in as an editor")
                        }
                        on:click=save
                    >
                        "Save as new revision"
                    </button>
                    <button on:click=move |_| {
                        loaded.set(false);
                        state.set(SaveState::Idle);
                        detail.refetch();
                    }>"Revert"</button>
                    <SaveStatus state />
                </div>
                <Diagnostics diagnostics=Signal::derive(move || diagnostics.get()) testid="diagnostics" />
                <DiffView old=stored.into() new=text.into() />
            </div>
            <div class="history">
                <h3>"History"</h3>
                <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    <ErrorBoundary fallback=|errors| view! { <ErrorList errors /> }>
                        {move || {
                            detail
                                .get()
                                .map(|r| {
                                    r.map(|d| {
                                        d.revisions
                                            .into_iter()
                                            .map(|rev| {
                                                let yaml = rev.yaml.clone();
                                                view! {
                                                    <div class="revision" data-testid="revision">
                                                        <strong>"#" {rev.revision}</strong>
                                                        " "
                                                        {rev.deleted.then(|| view! { <span class="badge failure">"deleted"</span> })}
                                                        <span class="muted">
                                                            {rev.author.clone()} " · "
                                                            {rev.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}
                                                        </span>
                                                        <span class="revision-message">{rev.message.clone()}</span>
                                                        <button
                                                            class="small"
                                                            title="Load this revision into the editor; save to roll back"
                                                            on:click=move |_| text.set(yaml.clone())
                                                        >
                                                            "Load"
                                                        </button>
                                                    </div>
                                                }
                                            })
                                            .collect_view()
                                    })
                                })
                        }}
                    </ErrorBoundary>
                </Transition>
            </div>
        </div>
    }
}

#[component]
fn SaveStatus(state: RwSignal<SaveState>) -> impl IntoView {
    move || {
        let (cls, text, refused) = match state.get() {
            SaveState::Idle => ("idle", String::new(), Vec::new()),
            SaveState::Saving => ("saving", "Saving…".into(), Vec::new()),
            SaveState::Saved => ("saved", "Saved ✓".into(), Vec::new()),
            SaveState::Refused(d, m) => ("error", format!("Refused by the server. {m}"), d),
            SaveState::Failed(e) => ("error", format!("Save failed: {e}"), Vec::new()),
        };
        view! {
            <span class=format!("status {cls}") data-testid="config-save-status" data-state=cls>{text}</span>
            {(!refused.is_empty())
                .then(|| view! { <Diagnostics diagnostics=Signal::derive(move || refused.clone()) testid="server-diagnostics" /> })}
        }
    }
}

#[component]
fn Diagnostics(diagnostics: Signal<Vec<Diagnostic>>, testid: &'static str) -> impl IntoView {
    view! {
        <div class="diagnostics" data-testid=testid data-count=move || diagnostics.with(Vec::len).to_string()>
            {move || {
                let list = diagnostics.get();
                if list.is_empty() {
                    return view! { <p class="ok">"✓ Valid"</p> }.into_any();
                }
                list.into_iter()
                    .map(|d| {
                        let sev = match d.severity {
                            Severity::Error => "error",
                            Severity::Warning => "warning",
                        };
                        view! {
                            <div class=format!("diagnostic {sev}") data-testid="diagnostic" data-severity=sev>
                                <span class="sev">{sev}</span>
                                <span class="mono">{d.resource} " " {d.path}</span>
                                <span>{d.message}</span>
                            </div>
                        }
                    })
                    .collect_view()
                    .into_any()
            }}
        </div>
    }
}
