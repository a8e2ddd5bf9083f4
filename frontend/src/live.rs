//! Live refresh: one `EventSource` on `/api/events` for the whole console
//! (the server sends `graph` and `config` events when data changes), plus a
//! poll every few seconds as a fallback for when the stream is down or a
//! proxy sits in between that buffers it. Pages read the counters from
//! context and refetch when they change.

use std::time::Duration;

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;

/// How often pages refresh when no event arrives.
const POLL_EVERY: Duration = Duration::from_secs(4);

/// Bumped on every `graph` event and every poll tick.
#[derive(Clone, Copy)]
pub struct GraphTick(pub RwSignal<u64>);

/// Bumped on every `config` event.
#[derive(Clone, Copy)]
pub struct ConfigTick(pub RwSignal<u64>);

/// Whether the event stream is currently open (shown in the nav bar).
#[derive(Clone, Copy)]
pub struct StreamOpen(pub RwSignal<bool>);

/// Starts the stream and the poll, and provides the three signals as context.
/// Called once by the app root, which lives as long as the page, so the
/// closures are leaked on purpose.
pub fn provide_live() {
    let graph = RwSignal::new(0u64);
    let config = RwSignal::new(0u64);
    let open = RwSignal::new(false);
    provide_context(GraphTick(graph));
    provide_context(ConfigTick(config));
    provide_context(StreamOpen(open));

    set_interval(move || graph.update(|n| *n += 1), POLL_EVERY);

    let Ok(source) = web_sys::EventSource::new("/api/events") else {
        leptos::logging::warn!("EventSource unavailable; refreshing by polling only");
        return;
    };
    let on = |name: &str, f: Box<dyn FnMut(web_sys::Event)>| {
        let closure = Closure::wrap(f);
        let _ = source.add_event_listener_with_callback(name, closure.as_ref().unchecked_ref());
        closure.forget();
    };
    on("graph", Box::new(move |_| graph.update(|n| *n += 1)));
    on(
        "config",
        Box::new(move |_| {
            config.update(|n| *n += 1);
            // A config change (say, canary weights) changes the graph soon after.
            graph.update(|n| *n += 1);
        }),
    );
    on("open", Box::new(move |_| open.set(true)));
    on("error", Box::new(move |_| open.set(false)));
    // The stream lives as long as the page.
    std::mem::forget(source);
}

pub fn use_graph_tick() -> RwSignal<u64> {
    use_context::<GraphTick>()
        .map(|t| t.0)
        .unwrap_or_else(|| RwSignal::new(0))
}

pub fn use_config_tick() -> RwSignal<u64> {
    use_context::<ConfigTick>()
        .map(|t| t.0)
        .unwrap_or_else(|| RwSignal::new(0))
}

pub fn use_stream_open() -> RwSignal<bool> {
    use_context::<StreamOpen>()
        .map(|t| t.0)
        .unwrap_or_else(|| RwSignal::new(false))
}
