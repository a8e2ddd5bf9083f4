//! The Prometheus scraper: every interval, reads the connected workloads
//! from `workloads`, GETs each proxy's `/stats/prometheus` concurrently,
//! reads the text strictly ([`text`]), turns its Istio counters into
//! per-interval deltas ([`delta`]) and writes one `edge_rollups` row per
//! (scrape, reporter, edge label set) with COPY ([`rollups`]). A proxy that
//! does not answer is logged and skipped; its last values are kept so its
//! next answer yields a correct delta.
//!
//! What a target may make the collector do: its address comes only from
//! `workloads`, which the control plane writes for a proxy it authenticated
//! and whose metrics host it checked against the workload's declared
//! address; here it must still be a plain `host:port` (no path, user or
//! query can ride in it), and a wildcard host (`0.0.0.0:15090`) is the
//! host of the workload's inbound address, never the collector's own. A
//! scrape follows no redirect and reads at most [`MAX_SCRAPE_BYTES`].

pub mod delta;
pub mod rollups;
pub mod text;

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
    pub inbound_address: String,
}

/// The most one scrape may return; a proxy's Istio metrics are a few KiB.
pub const MAX_SCRAPE_BYTES: usize = 4 * 1024 * 1024;

/// `host:port` to connect to for `target`'s metrics, or why not: a DNS
/// name or IP and a port, nothing else; a wildcard IP becomes the host of
/// the inbound address.
pub fn scrape_address(target: &Target) -> Result<String, String> {
    let (host, port) = host_port(&target.metrics_address).ok_or_else(|| {
        format!(
            "metrics address {:?} is not HOST:PORT",
            target.metrics_address
        )
    })?;
    let unspecified = host
        .trim_matches(['[', ']'])
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_unspecified());
    if !unspecified {
        return Ok(format!("{host}:{port}"));
    }
    let (inbound, _) = host_port(&target.inbound_address).ok_or_else(|| {
        format!(
            "metrics address {:?} is a wildcard and the inbound address {:?} names no host",
            target.metrics_address, target.inbound_address
        )
    })?;
    Ok(format!("{inbound}:{port}"))
}

/// A `host:port` with a DNS name, an IPv4 address or a bracketed IPv6 one.
fn host_port(address: &str) -> Option<(&str, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    let ok = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        v6.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    };
    ok.then_some((host, port))
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
            // A proxy's metrics are at its own address: a redirect elsewhere is refused.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
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
            "SELECT namespace, name, metrics_address, inbound_address FROM workloads WHERE connected",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(CollectorError::sql("listing connected workloads"))?;
        let now = Utc::now();
        // Concurrent, but not unbounded: a large mesh must not open
        // thousands of sockets at once.
        let client = self.client.clone();
        let addresses: Vec<Result<String, String>> = targets.iter().map(scrape_address).collect();
        let fetches = addresses.into_iter().map(move |address| {
            let client = client.clone();
            async move { fetch(client, address?).await }
        });
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
                text::Scrape::parse(&text).map_err(|e| format!("unparseable Prometheus text: {e}"))
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
    let too_large = || format!("GET {url}: the body is over {MAX_SCRAPE_BYTES} bytes; not read");
    if response
        .content_length()
        .is_some_and(|n| n > MAX_SCRAPE_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut response = response;
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("GET {url}: reading body: {e}"))?
    {
        if body.len() + chunk.len() > MAX_SCRAPE_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| format!("GET {url}: the body is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(metrics: &str, inbound: &str) -> Target {
        Target {
            namespace: "default".into(),
            name: "reviews-v1".into(),
            metrics_address: metrics.into(),
            inbound_address: inbound.into(),
        }
    }

    #[test]
    fn scrape_addresses_are_plain_host_ports_and_wildcards_the_workloads_host() {
        let ok = |m: &str, i: &str| scrape_address(&target(m, i));
        assert_eq!(ok("10.0.0.7:15090", "").unwrap(), "10.0.0.7:15090");
        assert_eq!(
            ok("reviews.local:15090", "").unwrap(),
            "reviews.local:15090"
        );
        assert_eq!(ok("[::1]:15090", "").unwrap(), "[::1]:15090");
        assert_eq!(
            ok("0.0.0.0:15090", "10.0.0.7:9080").unwrap(),
            "10.0.0.7:15090"
        );
        assert_eq!(
            ok("[::]:15090", "[fd00::7]:9080").unwrap(),
            "[fd00::7]:15090"
        );
        for bad in [
            "evil.example/x?:15090",
            "user@10.0.0.7:15090",
            "10.0.0.7:15090/metrics",
            "10.0.0.7",
            "10.0.0.7:0",
            " 10.0.0.7:15090",
            "[::1:15090",
        ] {
            assert!(ok(bad, "10.0.0.7:9080").is_err(), "{bad}");
        }
        assert!(
            ok("0.0.0.0:15090", "").is_err(),
            "a wildcard needs the inbound host"
        );
    }
}
