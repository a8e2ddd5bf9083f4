//! The app root: the session and live-update contexts, the top navigation
//! and the routes — or, on `/login`, the login page alone (no session to ask
//! about, no event stream to open).

use leptos::prelude::*;
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::path;

use crate::components::degraded_banner::DegradedBanner;
use crate::live::{provide_live, use_stream_open};
use crate::pages::audit::AuditPage;
use crate::pages::canary::CanaryPage;
use crate::pages::config::ConfigPage;
use crate::pages::graph::GraphPage;
use crate::pages::login::LoginPage;
use crate::pages::mesh::MeshPage;
use crate::pages::trace::TracePage;
use crate::pages::traces::TracesPage;
use crate::session::{log_out, provide_session, use_session};

#[component]
pub fn App() -> impl IntoView {
    let path = web_sys::window()
        .and_then(|w| w.location().pathname().ok())
        .unwrap_or_default();
    if path == "/login" {
        return view! {
            <main class="login-main">
                <LoginPage />
            </main>
        }
        .into_any();
    }
    provide_session();
    provide_live();
    view! {
        <Router>
            <Nav />
            <DegradedBanner />
            <main>
                <Routes fallback=|| view! { <p class="empty">"No such page."</p> }>
                    <Route path=path!("/") view=GraphPage />
                    <Route path=path!("/graph") view=GraphPage />
                    <Route path=path!("/traces") view=TracesPage />
                    <Route path=path!("/traces/:id") view=TracePage />
                    <Route path=path!("/canary") view=CanaryPage />
                    <Route path=path!("/config") view=ConfigPage />
                    <Route path=path!("/config/:kind/:ns/:name") view=ConfigPage />
                    <Route path=path!("/audit") view=AuditPage />
                    <Route path=path!("/mesh") view=MeshPage />
                </Routes>
            </main>
        </Router>
    }
    .into_any()
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
                <A href="/audit" attr:data-testid="nav-audit">"Audit"</A>
                <A href="/mesh" attr:data-testid="nav-mesh">"Mesh"</A>
            </nav>
            <span
                class="live"
                class:on=move || open.get()
                title="Live updates over /api/events; polling every few seconds as a fallback"
            >
                {move || if open.get() { "● live" } else { "○ polling" }}
            </span>
            <UserMenu />
        </header>
    }
}

/// The logged-in user, their role, and a logout button.
#[component]
fn UserMenu() -> impl IntoView {
    let me = use_session();
    move || {
        me.get().map(|me| {
            view! {
                <span class="user-menu">
                    <span data-testid="whoami" data-role=me.role.as_str() title="Logged in">
                        {me.user.clone()}
                        " "
                        <span class="badge">{me.role.as_str()}</span>
                    </span>
                    <button class="small" data-testid="logout" on:click=move |_| log_out()>
                        "Log out"
                    </button>
                </span>
            }
        })
    }
}
