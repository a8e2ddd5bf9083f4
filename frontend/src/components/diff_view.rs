//! The pending change to a resource as a unified line diff.

use leptos::prelude::*;

use crate::diff::{Change, line_diff, with_context};

#[component]
pub fn DiffView(old: Signal<String>, new: Signal<String>) -> impl IntoView {
    let lines = Memo::new(move |_| with_context(&line_diff(&old.get(), &new.get()), 2));
    move || {
        let lines = lines.get();
        if lines.is_empty() {
            return None;
        }
        let added = lines
            .iter()
            .flatten()
            .filter(|l| l.change == Change::Added)
            .count();
        let removed = lines
            .iter()
            .flatten()
            .filter(|l| l.change == Change::Removed)
            .count();
        Some(view! {
            <div class="diff" data-testid="diff">
                <h4>{format!("Changes to save: +{added} −{removed}")}</h4>
                <pre>
                    {lines
                        .into_iter()
                        .map(|l| match l {
                            None => view! { <span class="gap">"⋯"</span> }.into_any(),
                            Some(l) => {
                                let (class, sign) = match l.change {
                                    Change::Same => ("same", ' '),
                                    Change::Added => ("added", '+'),
                                    Change::Removed => ("removed", '-'),
                                };
                                view! { <span class=class>{format!("{sign} {}", l.text)}</span> }.into_any()
                            }
                        })
                        .collect_view()}
                </pre>
            </div>
        })
    }
}
