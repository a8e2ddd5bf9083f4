//! The login page: user and password, `POST /api/login`, then back to the
//! page the user came from (`/login?next=/config`) with a full page load, so
//! the event stream and every page start over with the new session.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{self, ApiError};

#[component]
pub fn LoginPage() -> impl IntoView {
    let user = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let (u, p) = (user.get_untracked(), password.get_untracked());
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            match api::login(&u, &p).await {
                Ok(_) => {
                    if let Some(window) = web_sys::window() {
                        let _ = window.location().assign(&next_page());
                    }
                }
                Err(ApiError::Status { body, .. }) => {
                    password.set(String::new());
                    error.set(Some(body));
                }
                Err(e) => error.set(Some(e.to_string())),
            }
            busy.set(false);
        });
    };
    view! {
        <div class="login-card" data-testid="login-page">
            <h1>
                <span class="logo">"◎"</span>
                " Loupe"
            </h1>
            <form on:submit=submit data-testid="login-form">
                <label>
                    "User"
                    <input
                        data-testid="login-user"
                        autocomplete="username"
                        autofocus=true
                        prop:value=move || user.get()
                        on:input=move |ev| user.set(event_target_value(&ev))
                    />
                </label>
                <label>
                    "Password"
                    <input
                        type="password"
                        data-testid="login-password"
                        autocomplete="current-password"
                        prop:value=move || password.get()
                        on:input=move |ev| password.set(event_target_value(&ev))
                    />
                </label>
                <button type="submit" class="primary" data-testid="login-submit" disabled=move || busy.get()>
                    "Log in"
                </button>
                {move || {
                    error.get().map(|e| view! { <p class="login-error" data-testid="login-error">{e}</p> })
                }}
            </form>
            <p class="muted small-print">
                "Running " <code>"loupe demo"</code> "? The user is " <code>"admin"</code>
                " and its password is in " <code>"demo.json"</code> " (" <code>"console_login"</code> ")."
            </p>
        </div>
    }
}

/// `?next=` if it is a path of this console (never another site), else `/`.
fn next_page() -> String {
    let search = web_sys::window()
        .and_then(|w| w.location().search().ok())
        .unwrap_or_default();
    let next = search
        .trim_start_matches('?')
        .split('&')
        .find_map(|pair| pair.strip_prefix("next="))
        .and_then(|v| js_sys::decode_uri_component(v).ok())
        .and_then(|v| v.as_string())
        .unwrap_or_default();
    if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/login") {
        next
    } else {
        "/".into()
    }
}
