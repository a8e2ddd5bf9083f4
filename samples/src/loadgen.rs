//! Steady traffic through the ingress gateway: `rps` GETs per second of
//! `path` with `Host: host`, each one its own trace. Open-loop: a slow
//! response does not lower the offered rate (up to `max_in_flight`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper::HeaderMap;

use crate::http::MeshClient;

pub struct LoadOptions {
    pub target: std::net::SocketAddr,
    pub host: String,
    pub path: String,
    pub rps: f64,
    pub max_in_flight: u64,
}

pub async fn run(opts: LoadOptions) -> anyhow::Result<()> {
    anyhow::ensure!(opts.rps > 0.0, "--rps must be positive, got {}", opts.rps);
    let client = MeshClient::new(opts.target);
    let in_flight = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / opts.rps));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut report = tokio::time::interval(Duration::from_secs(10));
    let headers = HeaderMap::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if in_flight.load(Ordering::Relaxed) >= opts.max_in_flight {
                    failed.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                in_flight.fetch_add(1, Ordering::Relaxed);
                let (client, host, path, headers) = (client.clone(), opts.host.clone(), opts.path.clone(), headers.clone());
                let (in_flight, ok, failed) = (in_flight.clone(), ok.clone(), failed.clone());
                tokio::spawn(async move {
                    match client.get(&host, &path, &headers).await {
                        Ok(r) if r.status.is_success() => ok.fetch_add(1, Ordering::Relaxed),
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                    in_flight.fetch_sub(1, Ordering::Relaxed);
                });
            }
            _ = report.tick() => {
                tracing::info!(ok = ok.load(Ordering::Relaxed), failed = failed.load(Ordering::Relaxed), "load");
            }
        }
    }
}
