//! The Prometheus scraper: every interval, reads the connected workloads
//! from `workloads`, GETs each proxy's `/stats/prometheus` concurrently,
//! turns its Istio counters into per-interval deltas ([`delta`]) and writes
//! one `edge_rollups` row per (scrape, reporter, edge label set) with COPY
//! ([`rollups`]). A proxy that does not answer is logged and skipped; its
//! last values are kept so its next answer yields a correct delta.

pub mod delta;
pub mod rollups;

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use futures::{StreamExt, stream};
use sqlx::PgPool;
use tokio::sync::watch;

use crate::error::CollectorError;
use crate::writer::drops::DropRecorder;
use delta::Deltas;

/// A proxy to scrape, as registered by the control plane.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Target {
    pub namespace: String,
    pub name: String,
    pub metrics_address: String,
}

impl Target {
    fn key(&self) -> String {
        format!("{}/{}@{}", self.namespace, self.name, self.metrics_address)
    }
}

/// What one scrape round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RoundReport {
    pub targets: usize,
    pub failed: usize,
    pub rows_written: usize,
}

pub struct Scraper {
    pool: PgPool,
    client: reqwest::Client,
    interval: Duration,
    deltas: Deltas,
    failing: HashSet<String>,
    drops: DropRecorder,
}

/// Proxies scraped at the same time.
const MAX_CONCURRENT_SCRAPES: usize = 64;

/// A proxy not listed as connected for this long is forgotten.
const FORGET_AFTER: chrono::Duration = chrono::Duration::minutes(10);

impl Scraper {
    pub fn new(
        pool: PgPool,
        interval: Duration,
        drops: DropRecorder,
    ) -> Result<Self, CollectorError> {
        // A scrape must end before the next one starts.
        let timeout = interval
            .min(Duration::from_secs(3))
            .max(Duration::from_millis(200));
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(CollectorError::HttpClient)?;
        Ok(Scraper {
            pool,
            client,
            interval,
            deltas: Deltas::default(),
            failing: HashSet::new(),
            drops,
        })
    }

    /// Scrapes every `interval`, the first time one interval from now,
    /// until `stop` turns true.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut ticker =
            tokio::time::interval_at(tokio::time::Instant::now() + self.interval, self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.wait_for(|s| *s) => break,
            }
            match self.scrape_round().await {
                Ok(report) => tracing::debug!(?report, "scrape round done"),
                Err(error) => tracing::warn!(%error, "scrape round failed"),
            }
        }
        tracing::info!("scraper stopped");
    }

    /// One round: list targets, scrape them all, write the rollups.
    pub async fn scrape_round(&mut self) -> Result<RoundReport, CollectorError> {
        let targets: Vec<Target> = sqlx::query_as(
            "SELECT namespace, name, metrics_address FROM workloads WHERE connected",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(CollectorError::sql("listing connected workloads"))?;
        let now = Utc::now();
        // Concurrent, but not unbounded: a large mesh must not open
        // thousands of sockets at once.
        let client = self.client.clone();
        let addresses: Vec<String> = targets.iter().map(|t| t.metrics_address.clone()).collect();
        let fetches = addresses
            .into_iter()
            .map(move |address| fetch(client.clone(), address));
        let bodies: Vec<_> = stream::iter(fetches)
            .buffered(MAX_CONCURRENT_SCRAPES)
            .collect()
            .await;
        let mut report = RoundReport {
            targets: targets.len(),
            ..Default::default()
        };
        let mut rows = Vec::new();
        for (target, body) in targets.iter().zip(bodies) {
            let key = target.key();
            self.deltas.listed(&key, now);
            let scrape = body.and_then(|text| {
                prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
                    .map_err(|e| format!("unparseable Prometheus text: {e}"))
            });
            match scrape {
                Ok(scrape) => {
                    if self.failing.remove(&key) {
                        tracing::info!(target = %key, "proxy metrics reachable again");
                    }
                    rows.extend(self.deltas.observe(&key, &scrape, now, self.interval));
                }
                Err(error) => {
                    report.failed += 1;
                    // Warn once per outage, not every interval.
                    if self.failing.insert(key.clone()) {
                        tracing::warn!(target = %key, %error, "scraping proxy metrics failed; skipping it");
                    } else {
                        tracing::debug!(target = %key, %error, "proxy metrics still unreachable");
                    }
                }
            }
        }
        self.deltas.end_round();
        self.deltas.forget_unlisted(now, FORGET_AFTER);
        if !rows.is_empty() {
            match rollups::write(&self.pool, &rows).await {
                Ok(n) => report.rows_written = n as usize,
                Err(error) => {
                    tracing::warn!(%error, rows = rows.len(), "writing edge rollups failed");
                    self.drops
                        .record("edge_rollups", "write_failed", rows.len());
                    return Err(CollectorError::Sql {
                        what: "writing edge rollups",
                        source: error,
                    });
                }
            }
        }
        Ok(report)
    }
}

/// The Prometheus text of the proxy whose admin address is `address`.
async fn fetch(client: reqwest::Client, address: String) -> Result<String, String> {
    let url = format!("http://{address}/stats/prometheus");
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("GET {url}: HTTP {}", response.status()));
    }
    response
        .text()
        .await
        .map_err(|e| format!("GET {url}: reading body: {e}"))
}
