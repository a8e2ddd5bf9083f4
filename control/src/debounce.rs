//! Registry-driven pushes, debounced as istiod debounces its pushes
//! (`PILOT_DEBOUNCE_AFTER` 100 ms, `PILOT_DEBOUNCE_MAX` 10 s): a workload
//! connecting, leaving or running out of grace asks for a push; the
//! snapshot is rebuilt once the asks have been quiet for [`Debounce::after`],
//! or at the latest [`Debounce::max`] after the first ask of a burst. So a
//! thousand proxies starting (or a control plane's whole mesh reconnecting)
//! cost a handful of snapshot builds, not one per proxy for every proxy.
//! Config changes are not debounced: a user who applies waits for them.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::snapshot::Publisher;

/// How long asks must be quiet, and how long a burst may postpone a push.
#[derive(Clone, Copy, Debug)]
pub struct Debounce {
    pub after: Duration,
    pub max: Duration,
}

impl Default for Debounce {
    fn default() -> Self {
        Debounce {
            after: Duration::from_millis(100),
            max: Duration::from_secs(10),
        }
    }
}

/// Where asks for a push meet the task that publishes them.
#[derive(Default)]
pub struct PushRequests(Notify);

impl PushRequests {
    /// Ask for a push; asks made while one is pending join it.
    pub fn ask(&self) {
        self.0.notify_one();
    }
}

/// Publishes once per burst of asks, until aborted.
pub async fn run(publisher: Arc<Publisher>, debounce: Debounce) {
    let asks = publisher.push_requests();
    loop {
        asks.0.notified().await;
        let deadline = Instant::now() + debounce.max;
        loop {
            let quiet = (Instant::now() + debounce.after).min(deadline);
            tokio::select! {
                _ = asks.0.notified() => {
                    if Instant::now() >= deadline {
                        break;
                    }
                }
                _ = tokio::time::sleep_until(quiet) => break,
            }
        }
        publisher.publish();
    }
}
