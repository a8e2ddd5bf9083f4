//! The push stream over real gRPC: Hello → snapshot, config changes and
//! endpoint changes pushed within a second, ACK/NACK recorded, disconnects.

mod common;

use std::time::{Duration, Instant};

use common::{
    Proxy, bookinfo, config_resources, control, db, endpoints, eventually, hello, reviews_vs,
};
use loupe_push::proxy_message::Message;
use loupe_push::{Ack, Snapshot};

const REVIEWS: &str = "reviews.default.svc.cluster.local";
const RATINGS: &str = "ratings.default.svc.cluster.local";

fn weight_of_v3(s: &Snapshot) -> Option<u64> {
    let vs = s.resources.iter().find(|r| r.kind == "VirtualService")?;
    let object: serde_json::Value = serde_json::from_str(&vs.json).ok()?;
    object["spec"]["http"][0]["route"][1]["weight"].as_u64()
}

#[tokio::test]
async fn hello_gets_a_snapshot_with_resources_and_endpoints() {
    let db = db().await;
    let cp = control(&db.pool).await;
    cp.store
        .apply("bookinfo.yaml", &bookinfo(50, 50), "alice")
        .await
        .unwrap();

    let mut v1 = Proxy::connect(&cp, hello("reviews-v1", "v1", "reviews", "127.0.0.1:7001")).await;
    let first = v1
        .until(Duration::from_secs(5), |s| config_resources(s).len() == 2)
        .await;
    let kinds: Vec<&str> = config_resources(&first)
        .iter()
        .map(|r| r.kind.as_str())
        .collect();
    assert!(
        kinds.contains(&"VirtualService") && kinds.contains(&"DestinationRule"),
        "{kinds:?}"
    );
    let vs = first
        .resources
        .iter()
        .find(|r| r.kind == "VirtualService")
        .unwrap();
    assert_eq!(
        (vs.namespace.as_str(), vs.name.as_str()),
        ("default", "reviews")
    );
    let object: serde_json::Value = serde_json::from_str(&vs.json).unwrap();
    assert_eq!(object["kind"], "VirtualService");
    assert_eq!(object["metadata"]["name"], "reviews");
    assert_eq!(
        endpoints(&first, REVIEWS),
        ["127.0.0.1:7001"],
        "its own endpoint is in its first snapshot"
    );
    let ep = &first.services[0].endpoints[0];
    assert_eq!(ep.workload, "reviews-v1");
    assert_eq!(ep.service_account, "bookinfo-reviews");
    assert_eq!(ep.labels.get("version").map(String::as_str), Some("v1"));

    // A second workload of the same service: both proxies see both endpoints.
    let mut v3 = Proxy::connect(&cp, hello("reviews-v3", "v3", "reviews", "127.0.0.1:7003")).await;
    let both = ["127.0.0.1:7001", "127.0.0.1:7003"];
    let s3 = v3.next().await;
    assert_eq!(endpoints(&s3, REVIEWS), both);
    let s1 = v1
        .until(Duration::from_secs(1), |s| endpoints(s, REVIEWS).len() == 2)
        .await;
    assert!(
        s1.version > first.version,
        "versions grow: {} > {}",
        s1.version,
        first.version
    );

    // And the collector finds them in the workloads table.
    let rows: Vec<(String, String, bool)> =
        sqlx::query_as("SELECT name, metrics_address, connected FROM workloads ORDER BY name")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        [
            ("reviews-v1".into(), "127.0.0.1:17001".into(), true),
            ("reviews-v3".into(), "127.0.0.1:17003".into(), true)
        ]
    );
    cp.shutdown().await;
}

#[tokio::test]
async fn an_applied_change_reaches_the_proxy_within_a_second() {
    let db = db().await;
    let cp = control(&db.pool).await;
    cp.store
        .apply("bookinfo.yaml", &bookinfo(50, 50), "alice")
        .await
        .unwrap();
    let mut proxy = Proxy::connect(
        &cp,
        hello("productpage-v1", "v1", "productpage", "127.0.0.1:7100"),
    )
    .await;
    let first = proxy
        .until(Duration::from_secs(5), |s| weight_of_v3(s) == Some(50))
        .await;
    proxy.ack(first.version).await;

    let mut latencies = Vec::new();
    for (i, w3) in [100u32, 0, 75].into_iter().enumerate() {
        let started = Instant::now();
        cp.store
            .apply(&format!("step{i}.yaml"), &reviews_vs(100 - w3, w3), "alice")
            .await
            .unwrap();
        let s = proxy
            .until(Duration::from_secs(1), |s| {
                weight_of_v3(s) == Some(u64::from(w3))
            })
            .await;
        let latency = started.elapsed();
        proxy.ack(s.version).await;
        latencies.push(latency);
        assert!(latency < Duration::from_secs(1), "push took {latency:?}");
    }
    println!("apply → proxy push latency (apply commit included): {latencies:?}");
    cp.shutdown().await;
}

#[tokio::test]
async fn acks_are_recorded_and_a_nack_does_not_stop_the_control_plane() {
    let db = db().await;
    let cp = control(&db.pool).await;
    cp.store
        .apply("bookinfo.yaml", &bookinfo(50, 50), "alice")
        .await
        .unwrap();
    let mut proxy =
        Proxy::connect(&cp, hello("reviews-v1", "v1", "reviews", "127.0.0.1:7001")).await;
    let first = proxy.next().await;
    proxy.ack(first.version).await;
    let acked = first.version as i64;
    let pool = db.pool.clone();
    eventually(Duration::from_secs(2), "ACK recorded", || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, Option<i64>>("SELECT acked_version FROM workloads")
                .fetch_one(&pool)
                .await
                .unwrap()
                == Some(acked)
        }
    })
    .await;

    cp.store
        .apply("b.yaml", &reviews_vs(0, 100), "alice")
        .await
        .unwrap();
    let refused = proxy
        .until(Duration::from_secs(1), |s| weight_of_v3(s) == Some(100))
        .await;
    proxy
        .nack(refused.version, "route table: unsupported field")
        .await;
    let pool = db.pool.clone();
    eventually(Duration::from_secs(2), "NACK recorded", || {
        let pool = pool.clone();
        async move {
            let row: (Option<i64>, Option<i64>, Option<String>) =
                sqlx::query_as("SELECT acked_version, nacked_version, nack_error FROM workloads")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            row == (
                Some(acked),
                Some(refused.version as i64),
                Some("route table: unsupported field".into()),
            )
        }
    })
    .await;
    let status = loupe_control::registry::workload_statuses(&db.pool)
        .await
        .unwrap();
    assert_eq!(status.len(), 1);
    assert!(status[0].connected);
    assert_eq!(status[0].acked_version, Some(acked));
    assert_eq!(status[0].nacked_version, Some(refused.version as i64));
    let nacked = cp.registry.connections()[0].nacked.clone();
    assert_eq!(
        nacked,
        Some((refused.version, "route table: unsupported field".into()))
    );

    // Still serving: the next change arrives on the same stream, and new proxies connect.
    cp.store
        .apply("c.yaml", &reviews_vs(100, 0), "alice")
        .await
        .unwrap();
    let next = proxy
        .until(Duration::from_secs(1), |s| weight_of_v3(s) == Some(0))
        .await;
    assert!(next.version > refused.version);
    let mut other =
        Proxy::connect(&cp, hello("ratings-v1", "v1", "ratings", "127.0.0.1:7200")).await;
    assert_eq!(weight_of_v3(&other.next().await), Some(0));
    cp.shutdown().await;
}

#[tokio::test]
async fn disconnect_removes_endpoints_and_marks_the_workload_disconnected() {
    let db = db().await;
    let cp = control(&db.pool).await;
    let mut watcher =
        Proxy::connect(&cp, hello("reviews-v1", "v1", "reviews", "127.0.0.1:7001")).await;
    watcher.next().await;
    let ratings = Proxy::connect(&cp, hello("ratings-v1", "v1", "ratings", "127.0.0.1:7300")).await;
    watcher
        .until(Duration::from_secs(1), |s| {
            endpoints(s, RATINGS) == ["127.0.0.1:7300"]
        })
        .await;

    drop(ratings);
    let s = watcher
        .until(Duration::from_secs(2), |s| endpoints(s, RATINGS).is_empty())
        .await;
    assert!(
        s.services.iter().all(|svc| svc.host != RATINGS),
        "no empty service entry left"
    );
    let pool = db.pool.clone();
    eventually(
        Duration::from_secs(2),
        "ratings-v1 marked disconnected",
        || {
            let pool = pool.clone();
            async move {
                !sqlx::query_scalar::<_, bool>(
                    "SELECT connected FROM workloads WHERE name = 'ratings-v1'",
                )
                .fetch_one(&pool)
                .await
                .unwrap()
            }
        },
    )
    .await;

    // Shutting the control plane down ends the remaining stream and marks everyone disconnected.
    cp.shutdown().await;
    let connected = common::count(&db.pool, "SELECT count(*) FROM workloads WHERE connected").await;
    assert_eq!(connected, 0);
    let end = tokio::time::timeout(Duration::from_secs(2), watcher.snapshots.message()).await;
    assert!(
        matches!(end, Ok(Ok(None)) | Ok(Err(_))),
        "stream ended: {end:?}"
    );
}

#[tokio::test]
async fn a_stream_that_does_not_start_with_hello_is_refused() {
    let db = db().await;
    let cp = control(&db.pool).await;
    let refused = Proxy::open(&cp, Message::Ack(Ack { version: 1 })).await;
    let status = match refused {
        Err(status) => status,
        Ok((_tx, mut stream)) => stream.message().await.expect_err("refused"),
    };
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("Hello"), "{status:?}");

    let mut nameless = hello("", "v1", "reviews", "127.0.0.1:1");
    nameless.workload.clear();
    let status = match Proxy::open(&cp, Message::Hello(nameless)).await {
        Err(status) => status,
        Ok((_tx, mut stream)) => stream.message().await.expect_err("refused"),
    };
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("workload"), "{status:?}");
    assert!(cp.registry.connections().is_empty());
    cp.shutdown().await;
}

#[tokio::test]
async fn a_change_missed_by_notify_is_found_by_the_periodic_check() {
    let db = db().await;
    let cp = control(&db.pool).await;
    cp.store
        .apply("bookinfo.yaml", &bookinfo(50, 50), "alice")
        .await
        .unwrap();
    let mut proxy =
        Proxy::connect(&cp, hello("reviews-v1", "v1", "reviews", "127.0.0.1:7001")).await;
    proxy
        .until(Duration::from_secs(2), |s| weight_of_v3(s) == Some(50))
        .await;

    // Written around the store: no NOTIFY, as if the notification were lost.
    let started = Instant::now();
    sqlx::query(
        "INSERT INTO config_revisions (kind, namespace, name, revision, yaml, object, author)
         SELECT kind, namespace, name, revision + 1,
                replace(yaml, 'weight: 50', 'weight: 77'), object, 'sql'
         FROM config_revisions WHERE kind = 'VirtualService'",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let within = loupe_control::RECHECK_INTERVAL + Duration::from_secs(1);
    proxy.until(within, |s| weight_of_v3(s) == Some(77)).await;
    println!("picked up without NOTIFY after {:?}", started.elapsed());
    cp.shutdown().await;
}

#[tokio::test]
async fn each_proxy_gets_the_config_visible_in_its_namespace() {
    let db = db().await;
    let cp = control(&db.pool).await;
    let yaml = "\
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: shop-only
  namespace: shop
spec:
  action: DENY
  rules:
  - to:
    - operation:
        paths: [/admin]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: istio-system
spec:
  mtls:
    mode: PERMISSIVE
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: cart
  namespace: shop
spec:
  hosts: [cart]
  exportTo: [.]
  http:
  - route:
    - destination:
        host: cart
";
    cp.store.apply("scoped.yaml", yaml, "alice").await.unwrap();
    let names = |s: &Snapshot| {
        let mut n: Vec<String> = config_resources(s)
            .into_iter()
            .map(|r| format!("{}/{}/{}", r.kind, r.namespace, r.name))
            .collect();
        n.sort();
        n
    };
    let mut in_default =
        Proxy::connect(&cp, hello("reviews-v1", "v1", "reviews", "127.0.0.1:7001")).await;
    let mut shop = hello("cart-v1", "v1", "cart", "127.0.0.1:7400");
    shop.namespace = "shop".into();
    let mut in_shop = Proxy::connect(&cp, shop).await;

    // (The first snapshot may predate the apply: wait for the config.)
    let loaded = |s: &Snapshot| !config_resources(s).is_empty();
    let default_view = in_default.until(Duration::from_secs(2), loaded).await;
    assert_eq!(
        names(&default_view),
        ["PeerAuthentication/istio-system/default"]
    );
    let shop_view = in_shop
        .until(Duration::from_secs(2), |s| {
            loaded(s) && !endpoints(s, REVIEWS).is_empty()
        })
        .await;
    assert_eq!(
        names(&shop_view),
        [
            "AuthorizationPolicy/shop/shop-only",
            "PeerAuthentication/istio-system/default",
            "VirtualService/shop/cart"
        ]
    );
    // Endpoints are mesh-wide either way.
    assert_eq!(endpoints(&shop_view, REVIEWS), ["127.0.0.1:7001"]);
    cp.shutdown().await;
}

#[tokio::test]
async fn changes_still_arrive_after_the_listening_connection_is_killed() {
    let db = db().await;
    let cp = control(&db.pool).await;
    cp.store
        .apply("bookinfo.yaml", &bookinfo(50, 50), "alice")
        .await
        .unwrap();
    let mut proxy =
        Proxy::connect(&cp, hello("reviews-v1", "v1", "reviews", "127.0.0.1:7001")).await;
    proxy
        .until(Duration::from_secs(2), |s| weight_of_v3(s) == Some(50))
        .await;

    let killed = sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()) t",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert!(
        killed >= 1,
        "the control plane's LISTEN connection was found"
    );

    cp.store
        .apply("b.yaml", &reviews_vs(10, 90), "alice")
        .await
        .unwrap();
    let within = loupe_control::RECHECK_INTERVAL + Duration::from_secs(2);
    proxy.until(within, |s| weight_of_v3(s) == Some(90)).await;
    // And once reconnected, NOTIFY drives pushes again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    cp.store
        .apply("c.yaml", &reviews_vs(20, 80), "alice")
        .await
        .unwrap();
    proxy.until(within, |s| weight_of_v3(s) == Some(80)).await;
    cp.shutdown().await;
}

#[tokio::test]
async fn fifty_proxies_all_get_a_change_within_a_second() {
    let db = db().await;
    let cp = control(&db.pool).await;
    cp.store
        .apply("bookinfo.yaml", &bookinfo(50, 50), "alice")
        .await
        .unwrap();
    let mut proxies = Vec::new();
    for i in 0..50u16 {
        let inbound = format!("127.0.0.1:{}", 8000 + i);
        let mut p = Proxy::connect(
            &cp,
            hello(&format!("reviews-{i}"), "v1", "reviews", &inbound),
        )
        .await;
        let first = p
            .until(Duration::from_secs(2), |s| weight_of_v3(s) == Some(50))
            .await;
        proxies.push((p, first));
    }
    // Let the connect-time snapshots drain, then measure one change to all.
    for (p, last) in &mut proxies {
        if endpoints(last, REVIEWS).len() < 50 {
            p.until(Duration::from_secs(2), |s| {
                endpoints(s, REVIEWS).len() == 50
            })
            .await;
        }
    }
    let started = Instant::now();
    cp.store
        .apply("canary.yaml", &reviews_vs(0, 100), "alice")
        .await
        .unwrap();
    let waits = proxies.iter_mut().map(|(p, _)| async move {
        p.until(Duration::from_secs(1), |s| weight_of_v3(s) == Some(100))
            .await;
        started.elapsed()
    });
    let latencies = futures::future::join_all(waits).await;
    let slowest = latencies.iter().max().copied().unwrap_or_default();
    println!("apply → all 50 proxies: slowest {slowest:?}");
    assert!(slowest < Duration::from_secs(1), "{slowest:?}");
    cp.shutdown().await;
}

#[tokio::test]
async fn a_dropped_workload_stays_an_endpoint_for_the_grace_then_leaves() {
    let db = db().await;
    let grace = Duration::from_secs(2);
    let cp = common::control_graced(&db.pool, grace).await;
    let mut watcher =
        Proxy::connect(&cp, hello("reviews-v1", "v1", "reviews", "127.0.0.1:7001")).await;
    let ratings = Proxy::connect(&cp, hello("ratings-v1", "v1", "ratings", "127.0.0.1:7300")).await;
    watcher
        .until(Duration::from_secs(1), |s| {
            endpoints(s, RATINGS) == ["127.0.0.1:7300"]
        })
        .await;

    drop(ratings);
    let dropped = Instant::now();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        cp.published_endpoints(RATINGS),
        ["127.0.0.1:7300"],
        "within the grace the endpoint stays"
    );
    watcher
        .until(Duration::from_secs(4), |s| endpoints(s, RATINGS).is_empty())
        .await;
    let after = dropped.elapsed();
    assert!(
        after >= grace,
        "left after {after:?}, before the {grace:?} grace"
    );
    cp.shutdown().await;
}

#[tokio::test]
async fn a_restarted_control_plane_pushes_whole_endpoint_sets_from_the_first_snapshot() {
    let db = db().await;
    let grace = Duration::from_secs(3);
    let first = common::control_graced(&db.pool, grace).await;
    let reviews = hello("reviews-v1", "v1", "reviews", "127.0.0.1:7001");
    let ratings = hello("ratings-v1", "v1", "ratings", "127.0.0.1:7300");
    let r1 = Proxy::connect(&first, reviews.clone()).await;
    let r2 = Proxy::connect(&first, ratings.clone()).await;
    eventually(Duration::from_secs(2), "both published", || async {
        first.published_endpoints(RATINGS).len() == 1
            && first.published_endpoints(REVIEWS).len() == 1
    })
    .await;
    // kill -9: the table still says both are connected.
    first.crash().await;
    drop((r1, r2));

    let second = common::control_graced(&db.pool, grace).await;
    // The first proxy back (reviews) must not be told ratings has no endpoints.
    let token = second.token("default", "reviews-v1").await;
    let mut back = Proxy::connect_with_token(&second, &token, reviews).await;
    let snapshot = back.next().await;
    assert_eq!(endpoints(&snapshot, RATINGS), ["127.0.0.1:7300"]);
    assert_eq!(endpoints(&snapshot, REVIEWS), ["127.0.0.1:7001"]);
    let connected = common::count(&db.pool, "SELECT count(*) FROM workloads WHERE connected").await;
    assert_eq!(connected, 1, "only reviews is connected again");

    // ratings never comes back: it leaves once the grace is over.
    let s = back
        .until(Duration::from_secs(5), |s| endpoints(s, RATINGS).is_empty())
        .await;
    assert_eq!(endpoints(&s, REVIEWS), ["127.0.0.1:7001"]);
    second.shutdown().await;
}

#[tokio::test]
async fn a_proxy_reconnecting_within_its_grace_publishes_nothing() {
    let db = db().await;
    let cp = common::control_graced(&db.pool, Duration::from_secs(30)).await;
    let ratings = hello("ratings-v1", "v1", "ratings", "127.0.0.1:7300");
    let first = Proxy::connect(&cp, ratings.clone()).await;
    eventually(Duration::from_secs(2), "ratings published", || async {
        cp.published_endpoints(RATINGS).len() == 1
    })
    .await;
    let version = cp.published.borrow().snapshot.version;

    drop(first);
    let token = cp.token("default", "ratings-v1").await;
    let mut again = Proxy::connect_with_token(&cp, &token, ratings).await;
    let snapshot = again.next().await;
    assert_eq!(endpoints(&snapshot, RATINGS), ["127.0.0.1:7300"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        cp.published.borrow().snapshot.version,
        version,
        "the endpoint sets never changed: no snapshot was rebuilt"
    );
    cp.shutdown().await;
}

#[tokio::test]
async fn a_burst_of_connecting_proxies_is_pushed_in_a_few_snapshots() {
    let db = db().await;
    let cp = control(&db.pool).await;
    let hellos: Vec<_> = (0..30u16)
        .map(|i| {
            let inbound = format!("127.0.0.1:{}", 8100 + i);
            hello(&format!("reviews-{i}"), "v1", "reviews", &inbound)
        })
        .collect();
    let mut tokens = Vec::new();
    for h in &hellos {
        cp.declare(h).await;
        tokens.push(cp.token(&h.namespace, &h.workload).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = cp.published.borrow().snapshot.version;

    let connects = hellos
        .iter()
        .zip(&tokens)
        .map(|(h, t)| Proxy::connect_with_token(&cp, t, h.clone()));
    let mut proxies = futures::future::join_all(connects).await;
    for (i, p) in proxies.iter_mut().enumerate() {
        let first = p.next().await;
        assert!(
            endpoints(&first, REVIEWS).contains(&format!("127.0.0.1:{}", 8100 + i)),
            "proxy {i}'s first snapshot lists it"
        );
    }
    eventually(
        Duration::from_secs(2),
        "all 30 endpoints published",
        || async { cp.published_endpoints(REVIEWS).len() == 30 },
    )
    .await;
    let builds = cp.published.borrow().snapshot.version - before;
    println!("30 proxies connecting at once: {builds} snapshot builds");
    assert!(
        builds <= 5,
        "{builds} snapshots built for one burst of 30 connections (one each without debouncing)"
    );
    cp.shutdown().await;
}
