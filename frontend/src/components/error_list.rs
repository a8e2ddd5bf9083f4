//! What an `<ErrorBoundary>` shows: each error in words, and that the page
//! keeps retrying.

use leptos::error::Errors;
use leptos::prelude::*;

#[component]
pub fn ErrorList(errors: ArcRwSignal<Errors>) -> impl IntoView {
    view! {
        <div class="error-box" data-testid="error">
            <strong>"Could not load this page's data"</strong>
            <ul>
                {move || {
                    errors.get().into_iter().map(|(_, e)| view! { <li>{e.to_string()}</li> }).collect_view()
                }}
            </ul>
        </div>
    }
}
