//! `GET /api/events`: server-sent events that tell the frontend when to
//! refresh. `graph` (`{"at", "latest"}`) on connect and whenever the
//! collector has written newer rollups (checked every [`GRAPH_EVERY`]);
//! `config` (`{"version"}`) on connect and whenever a config revision is
//! written (the newest `config_revisions.id`, checked every [`CONFIG_EVERY`]).
//! Polling two indexed `max()`s keeps this independent of which process
//! wrote.
//!
//! One poller per console feeds every stream (a `watch` channel), so a
//! hundred open consoles cost the database what one does; at most
//! [`Limits::max_event_streams`](crate::Limits) streams are open at once
//! (503 past it). Each stream ends when the server shuts down.

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use chrono::{DateTime, Utc};
use futures::Stream;
use futures::StreamExt;
use loupe_api::error::ErrorBody;
use loupe_api::events::{CONFIG_EVENT, ConfigEvent, GRAPH_EVENT, GraphEvent};
use sqlx::PgPool;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::{Instant, MissedTickBehavior};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;

pub const GRAPH_EVERY: Duration = Duration::from_secs(2);
pub const CONFIG_EVERY: Duration = Duration::from_secs(1);

/// Served by `edge_rollups_ts` (newest row first).
pub(crate) const LATEST_ROLLUP_SQL: &str = "SELECT max(ts) FROM edge_rollups";
/// Served by the primary key.
pub(crate) const CONFIG_VERSION_SQL: &str = "SELECT max(id) FROM config_revisions";

/// What the poller last read; `None` until its first successful read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Marks {
    graph_latest: Option<Option<DateTime<Utc>>>,
    config_version: Option<i64>,
}

/// The console's one poller (started with the first stream) and the cap
/// on open streams.
pub struct EventsHub {
    marks: OnceLock<watch::Receiver<Marks>>,
    streams: Arc<Semaphore>,
}

impl EventsHub {
    pub fn new(max_streams: usize) -> EventsHub {
        EventsHub {
            marks: OnceLock::new(),
            streams: Arc::new(Semaphore::new(max_streams)),
        }
    }

    fn subscribe(&self, state: &AppState) -> watch::Receiver<Marks> {
        self.marks
            .get_or_init(|| {
                let (tx, rx) = watch::channel(Marks::default());
                tokio::spawn(poll(state.pool.clone(), tx, state.shutdown_signal()));
                rx
            })
            .clone()
    }
}

/// Reads the two marks on their schedules until shutdown, publishing changes.
async fn poll(
    pool: PgPool,
    tx: watch::Sender<Marks>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let run = async {
        let mut tick = tokio::time::interval(CONFIG_EVERY);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut next_graph = Instant::now();
        loop {
            tick.tick().await;
            let mut marks = tx.borrow().clone();
            if Instant::now() >= next_graph {
                next_graph = Instant::now() + GRAPH_EVERY;
                if let Some(latest) = latest_rollup(&pool).await {
                    marks.graph_latest = Some(latest);
                }
            }
            if let Some(version) = config_version(&pool).await {
                marks.config_version = Some(version);
            }
            tx.send_if_modified(|m| {
                let changed = *m != marks;
                *m = marks;
                changed
            });
        }
    };
    tokio::select! {
        _ = run => {},
        _ = shutdown => {},
    }
}

async fn latest_rollup(pool: &PgPool) -> Option<Option<DateTime<Utc>>> {
    sqlx::query_scalar::<_, Option<DateTime<Utc>>>(LATEST_ROLLUP_SQL)
        .fetch_one(pool)
        .await
        .inspect_err(|error| tracing::warn!(%error, "events: reading the newest rollup"))
        .ok()
}

async fn config_version(pool: &PgPool) -> Option<i64> {
    sqlx::query_scalar::<_, Option<i64>>(CONFIG_VERSION_SQL)
        .fetch_one(pool)
        .await
        .inspect_err(|error| tracing::warn!(%error, "events: reading the config version"))
        .ok()
        .map(|v| v.unwrap_or(0))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(events))
}

/// Server-sent events: `graph` ([`GraphEvent`]) and `config` ([`ConfigEvent`]).
#[utoipa::path(get, path = "/events", tag = "events",
    responses(
        (status = 200, description = "`graph` and `config` events whose data are GraphEvent and ConfigEvent",
         content_type = "text/event-stream", body = String),
        (status = 503, body = ErrorBody)))]
async fn events(
    State(state): State<AppState>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Ok(permit) = state.events.streams.clone().try_acquire_owned() else {
        return Err(ApiError::Busy(
            "too many open event streams; the console polls every few seconds without one".into(),
        ));
    };
    let marks = state.events.subscribe(&state);
    let shutdown = state.shutdown_signal();
    let watch = Watch {
        marks,
        sent: Marks::default(),
        _permit: permit,
    };
    let stream = futures::stream::unfold(watch, |mut w| async move {
        let event = w.next().await?;
        Some((Ok(event), w))
    })
    .take_until(shutdown);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// One stream: what it last told its client, and its place under the cap.
fn json_event(name: &str, data: &impl serde::Serialize) -> Event {
    let data = serde_json::to_string(data).unwrap_or_else(|_| "{}".into());
    Event::default().event(name).data(data)
}

struct Watch {
    marks: watch::Receiver<Marks>,
    sent: Marks,
    _permit: OwnedSemaphorePermit,
}

impl Watch {
    /// The next change worth telling; `None` once the poller is gone.
    async fn next(&mut self) -> Option<Event> {
        loop {
            let now = self.marks.borrow_and_update().clone();
            if let Some(latest) = now.graph_latest
                && self.sent.graph_latest != Some(latest)
            {
                self.sent.graph_latest = Some(latest);
                let data = GraphEvent {
                    at: Utc::now(),
                    latest,
                };
                return Some(json_event(GRAPH_EVENT, &data));
            }
            if let Some(version) = now.config_version
                && self.sent.config_version != Some(version)
            {
                self.sent.config_version = Some(version);
                let data = ConfigEvent {
                    at: Utc::now(),
                    version,
                };
                return Some(json_event(CONFIG_EVENT, &data));
            }
            self.marks.changed().await.ok()?;
        }
    }
}
