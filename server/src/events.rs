//! `GET /api/events`: server-sent events that tell the frontend when to
//! refresh. `graph` (`{"at", "latest"}`) on connect and whenever the
//! collector has written newer rollups (checked every [`GRAPH_EVERY`]);
//! `config` (`{"version"}`) on connect and whenever a config revision is
//! written (the newest `config_revisions.id`, checked every [`CONFIG_EVERY`]).
//! Polling two indexed `max()`s keeps this independent of which process
//! wrote; each stream ends when the server shuts down.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use chrono::{DateTime, Utc};
use futures::Stream;
use futures::StreamExt;
use serde_json::json;
use tokio::time::{Instant, MissedTickBehavior};

use crate::AppState;

pub const GRAPH_EVERY: Duration = Duration::from_secs(2);
pub const CONFIG_EVERY: Duration = Duration::from_secs(1);

/// Served by `edge_rollups_ts` (newest row first).
pub(crate) const LATEST_ROLLUP_SQL: &str = "SELECT max(ts) FROM edge_rollups";
/// Served by the primary key.
pub(crate) const CONFIG_VERSION_SQL: &str = "SELECT max(id) FROM config_revisions";

pub fn router() -> Router<AppState> {
    Router::new().route("/events", get(events))
}

async fn events(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let shutdown = state.shutdown_signal();
    let stream = futures::stream::unfold(Watch::new(state), |mut w| async move {
        let event = w.next().await;
        Some((Ok(event), w))
    })
    .take_until(shutdown);
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// What the stream last told the client, and when to look again.
struct Watch {
    state: AppState,
    tick: tokio::time::Interval,
    next_graph: Instant,
    /// `None` until the first event of each kind is sent.
    graph_latest: Option<Option<DateTime<Utc>>>,
    config_version: Option<i64>,
}

impl Watch {
    fn new(state: AppState) -> Watch {
        let mut tick = tokio::time::interval(CONFIG_EVERY);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Watch {
            state,
            tick,
            next_graph: Instant::now(),
            graph_latest: None,
            config_version: None,
        }
    }

    /// Waits for the next change worth telling.
    async fn next(&mut self) -> Event {
        loop {
            if self.graph_latest.is_none() || Instant::now() >= self.next_graph {
                self.next_graph = Instant::now() + GRAPH_EVERY;
                if let Some(latest) = self.latest_rollup().await
                    && self.graph_latest != Some(latest)
                {
                    self.graph_latest = Some(latest);
                    let data = json!({"at": Utc::now(), "latest": latest});
                    return Event::default().event("graph").data(data.to_string());
                }
            }
            if let Some(version) = self.config_version().await
                && self.config_version != Some(version)
            {
                self.config_version = Some(version);
                let data = json!({"at": Utc::now(), "version": version});
                return Event::default().event("config").data(data.to_string());
            }
            self.tick.tick().await;
        }
    }

    async fn latest_rollup(&self) -> Option<Option<DateTime<Utc>>> {
        sqlx::query_scalar::<_, Option<DateTime<Utc>>>(LATEST_ROLLUP_SQL)
            .fetch_one(&self.state.pool)
            .await
            .inspect_err(|error| tracing::warn!(%error, "events: reading the newest rollup"))
            .ok()
    }

    async fn config_version(&self) -> Option<i64> {
        sqlx::query_scalar::<_, Option<i64>>(CONFIG_VERSION_SQL)
            .fetch_one(&self.state.pool)
            .await
            .inspect_err(|error| tracing::warn!(%error, "events: reading the config version"))
            .ok()
            .map(|v| v.unwrap_or(0))
    }
}
