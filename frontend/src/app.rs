//! The app root: live-update context, the top navigation and the routes.

use leptos::prelude::*;
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::path;

use crate::live::{provide_live, use_stream_open};
use crate::pages::canary::CanaryPage;
use crate::pages::config::ConfigPage;
use crate::pages::graph::GraphPage;
use crate::pages::traces::{TracePage, TracesPage};

#[component]
pub fn App() -> impl IntoView {
    provide_live();
    view! {
        <Router>
            <Nav />
            <main>
                <Routes fallback=|| view! { <p class="empty">"No such page."</p> }>
                    <Route path=path!("/") view=GraphPage />
                    <Route path=path!("/graph") view=GraphPage />
                    <Route path=path!("/traces") view=TracesPage />
                    <Route path=path!("/traces/:id") view=TracePage />
                    <Route path=path!("/canary") view=CanaryPage />
                    <Route path=path!("/config") view=ConfigPage />
                    <Route path=path!("/config/:kind/:ns/:name") view=ConfigPage />
                </Routes>
            </main>
        </Router>
    }
}

#[component]
fn Nav() -> impl IntoView {
    let open = use_stream_open();
    view! {
        <header class="topbar">
            <a href="/" class="brand">
                <span class="logo">"◎"</span>
                " Loupe"
            </a>
            <nav>
                <A href="/graph" attr:data-testid="nav-graph">"Graph"</A>
                <A href="/traces" attr:data-testid="nav-traces">"Traces"</A>
                <A href="/canary" attr:data-testid="nav-canary">"Canary"</A>
                <A href="/config" attr:data-testid="nav-config">"Config"</A>
            </nav>
            <span
                class="live"
                class:on=move || open.get()
                title="Live updates over /api/events; polling every few seconds as a fallback"
            >
                {move || if open.get() { "● live" } else { "○ polling" }}
            </span>
        </header>
    }
}
