//! The data path on `--concurrency` worker threads: each worker a thread of
//! its own with its own socket on every traffic listener (SO_REUSEPORT).
//! Every connection is served whichever worker's socket the kernel hands
//! it to (a socket left without a worker would leave connections
//! unanswered), and the workers share the work.

mod support;

use std::time::Duration;

use loupe_push::Snapshot;
use support::*;

/// The proxy's threads: (name, CPU ticks used).
fn threads(pid: u32) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let path = task.path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
        // Fields after the parenthesised name: utime and stime are the 12th and 13th.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = fields
            .get(11)
            .and_then(|u| u.parse::<u64>().ok())
            .unwrap_or(0)
            + fields
                .get(12)
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0);
        out.push((name.trim().to_string(), ticks));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_is_served_and_both_workers_take_a_share() {
    let control = ControlPlane::start().await;
    let app = App::start("reviews-v1").await;
    let proxy = ProxySpec::sidecar("productpage-v1", "productpage", "v1", &control.url())
        .without_identity()
        .with_outbound()
        .with_flags(&["--concurrency", "2"]);
    let process = proxy.spawn_binary();
    control.push(Snapshot {
        version: 1,
        resources: vec![],
        services: vec![service(
            "reviews",
            vec![endpoint(app.addr, "reviews-v1", "reviews", "v1")],
        )],
        mesh: None,
        jwks: Default::default(),
    });
    control.wait_ack(1, 1).await;
    proxy.wait_ready().await;
    let outbound = proxy.outbound.expect("outbound");

    let names: Vec<String> = threads(process.id()).into_iter().map(|(n, _)| n).collect();
    for worker in ["loupe-worker-0", "loupe-worker-1"] {
        assert!(
            names.iter().any(|n| n == worker),
            "no {worker} in {names:?}"
        );
    }
    assert!(!names.iter().any(|n| n == "loupe-worker-2"), "{names:?}");

    // Each request on a new connection: the kernel spreads them over both
    // workers' sockets, and every one must be answered.
    let mut answered = 0;
    for _ in 0..400 {
        let (status, _) =
            tokio::time::timeout(Duration::from_secs(5), get(outbound, "reviews:9080", "/"))
                .await
                .expect("a connection was left unanswered")
                .expect("answer");
        assert_eq!(status, 200);
        answered += 1;
    }
    assert_eq!(answered, 400);
    assert_eq!(app.count(), 400);
    let busy: Vec<(String, u64)> = threads(process.id())
        .into_iter()
        .filter(|(n, _)| n.starts_with("loupe-worker"))
        .collect();
    assert_eq!(busy.len(), 2, "{busy:?}");
    assert!(
        busy.iter().all(|(_, ticks)| *ticks > 0),
        "a worker did no work: {busy:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_zero_is_one_worker_per_core() {
    let control = ControlPlane::start().await;
    let proxy = ProxySpec::sidecar("productpage-v1", "productpage", "v1", &control.url())
        .without_identity()
        .with_outbound()
        .with_flags(&["--concurrency", "0"]);
    let process = proxy.spawn_binary();
    control.push(Snapshot {
        version: 1,
        resources: vec![],
        services: vec![],
        mesh: None,
        jwks: Default::default(),
    });
    control.wait_ack(1, 1).await;
    proxy.wait_ready().await;
    let cores = std::thread::available_parallelism().unwrap().get();
    let workers = threads(process.id())
        .into_iter()
        .filter(|(n, _)| n.starts_with("loupe-worker"))
        .count();
    assert_eq!(workers, cores);
}
