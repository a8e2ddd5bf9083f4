//! Kiali's namespace selector: check the namespaces whose traffic the graph
//! shows; none checked shows them all.

use leptos::prelude::*;

/// `namespaces` holds the checked ones; `known` what can be picked.
#[component]
pub fn NamespacePicker(
    known: Signal<Vec<String>>,
    namespaces: RwSignal<Vec<String>>,
) -> impl IntoView {
    let summary = move || {
        let picked = namespaces.get();
        match picked.len() {
            0 => "All namespaces".to_string(),
            1 => picked[0].clone(),
            n => format!("{n} namespaces"),
        }
    };
    let options = move || {
        let mut list = known.get();
        // A namespace in the URL stays pickable even with no traffic now.
        for ns in namespaces.get() {
            if !list.contains(&ns) {
                list.push(ns);
            }
        }
        list.sort();
        list.into_iter()
            .map(|ns| {
                let ns2 = ns.clone();
                let ns3 = ns.clone();
                let testid = format!("namespace-{ns}");
                view! {
                    <label class="check" data-testid=testid>
                        <input
                            type="checkbox"
                            prop:checked=move || namespaces.get().contains(&ns2)
                            on:change=move |ev| {
                                let on = event_target_checked(&ev);
                                namespaces.update(|list| {
                                    list.retain(|n| n != &ns3);
                                    if on {
                                        list.push(ns3.clone());
                                        list.sort();
                                    }
                                });
                            }
                        />
                        " " {ns}
                    </label>
                }
            })
            .collect_view()
    };
    view! {
        <details class="namespace-picker" data-testid="namespace-picker">
            <summary data-testid="namespace-summary">"Namespace: " {summary}</summary>
            <div class="namespace-options">
                {options}
                <button class="small" on:click=move |_| namespaces.set(Vec::new())>"All"</button>
            </div>
        </details>
    }
}
