//! `loupe-frontend` is the Loupe console in the browser: a Leptos (CSR) app
//! compiled to WASM and served by the console server from `frontend/dist/`.
//! It owns the pages (service graph, traces and trace timeline, canary
//! weights, config editor with history, audit log, login) and their layout and drawing; it
//! owns no data — everything comes from the console server's JSON API and
//! its `/api/events` stream. YAML is validated here with `loupe-model`, the
//! same code the control plane runs, before anything is saved.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

mod api;
mod app;
mod components;
mod diff;
mod graph;
mod live;
mod pages;
mod session;
mod time;
mod trace;
mod validate;
mod weights;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
