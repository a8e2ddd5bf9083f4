//! Kiali's Find and Hide boxes above the graph: an expression applies when
//! Enter is pressed or the box is left, and a refused one is shown under
//! its box with the offending token marked.

use leptos::prelude::*;

use crate::graph::find::{Expr, FindError};

/// Both boxes; `find` and `hide` hold the applied text, the memos its parse.
#[component]
pub fn FindBar(
    find: RwSignal<String>,
    hide: RwSignal<String>,
    find_expr: Memo<Result<Option<Expr>, FindError>>,
    hide_expr: Memo<Result<Option<Expr>, FindError>>,
) -> impl IntoView {
    view! {
        <div class="find-bar">
            <ExprBox label="Find" testid="graph-find" text=find parsed=find_expr />
            <ExprBox label="Hide" testid="graph-hide" text=hide parsed=hide_expr />
            <span
                class="hint"
                title="Operands: name app version namespace workload service node httpin httpout rps %httperr responsetime %httptraffic protocol; flags: sidecar trafficsource healthy degraded failure idle mtls traffic (negate with !). Operators: = != < > <= >= ^= $= *= !^= !$= !*=. Combine with AND (&&) and OR (||)."
            >
                "e.g. app = reviews AND version != v1 · %httperr > 5 · !sidecar"
            </span>
        </div>
    }
}

#[component]
fn ExprBox(
    label: &'static str,
    testid: &'static str,
    text: RwSignal<String>,
    parsed: Memo<Result<Option<Expr>, FindError>>,
) -> impl IntoView {
    let error = move || {
        parsed.get().err().map(|e| {
            let input = text.get();
            // The token the error is about, marked in what was typed.
            let (start, end) = (e.start.min(input.len()), e.end.min(input.len()));
            let (before, bad, after) =
                match (input.get(..start), input.get(start..end), input.get(end..)) {
                    (Some(b), Some(t), Some(a)) => (b.to_string(), t.to_string(), a.to_string()),
                    _ => (input.clone(), String::new(), String::new()),
                };
            view! {
                <div class="find-error" data-testid=format!("{testid}-error")>
                    <span class="mono">{before}<mark>{bad}</mark>{after}</span>
                    " — "
                    {e.message}
                </div>
            }
        })
    };
    view! {
        <label class="find-box">
            {label} " "
            <span class="find-input">
                <input
                    type="text"
                    data-testid=testid
                    class:invalid=move || parsed.get().is_err()
                    placeholder=format!("{label} nodes or edges…")
                    prop:value=move || text.get()
                    on:change=move |ev| text.set(event_target_value(&ev))
                />
                {error}
            </span>
        </label>
    }
}
