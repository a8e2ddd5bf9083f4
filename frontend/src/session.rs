//! Who is logged in, for the whole console: asked once on load
//! (`GET /api/whoami`, which also hands over the CSRF token); a 401 sends
//! the browser to the login page (see `api::go_to_login`).

use leptos::prelude::*;

use loupe_api::auth::WhoAmI;

use crate::api;

#[derive(Clone, Copy)]
pub struct Session(pub Signal<Option<WhoAmI>>);

/// Asks the server who we are and provides the answer as context.
pub fn provide_session() {
    let me = LocalResource::new(api::whoami);
    provide_context(Session(Signal::derive(move || {
        me.get().and_then(Result::ok)
    })));
}

pub fn use_session() -> Signal<Option<WhoAmI>> {
    use_context::<Session>()
        .map(|s| s.0)
        .unwrap_or_else(|| Signal::derive(|| None))
}

/// Whether the page should offer writes: not for a viewer (the server
/// refuses them anyway); yes while the answer is still on its way.
pub fn use_can_edit() -> Signal<bool> {
    let me = use_session();
    Signal::derive(move || me.get().is_none_or(|m| m.can_edit()))
}

/// Ends the session and goes to the login page.
pub fn log_out() {
    leptos::task::spawn_local(async move {
        let _ = api::logout().await;
        if let Some(window) = web_sys::window() {
            let _ = window.location().assign("/login");
        }
    });
}
