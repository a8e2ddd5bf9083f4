//! The config API over a real Postgres through the control plane's store:
//! round trips, refusals with diagnostics, key mismatches, rollback, delete,
//! and the canary helper writing new revisions.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::Harness;
use serde_json::{Value, json};

const BOOKINFO: &str = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: default
spec:
  host: reviews
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
  - name: v3
    labels: {version: v3}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: default
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 40
    - destination: {host: reviews, subset: v2}
      weight: 30
    - destination: {host: reviews, subset: v3}
      weight: 30
"#;

fn reviews_vs(weights: [i64; 3], subset3: &str) -> String {
    format!(
        r#"apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: default
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {{host: reviews, subset: v1}}
      weight: {}
    - destination: {{host: reviews, subset: v2}}
      weight: {}
    - destination: {{host: reviews, subset: {subset3}}}
      weight: {}
"#,
        weights[0], weights[1], weights[2]
    )
}

fn body_req(method: &str, uri: &str, content_type: &str, body: impl Into<Body>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", content_type)
        .body(body.into())
        .expect("request")
}

async fn seeded() -> Harness {
    let h = Harness::start().await;
    let (status, applied) = h
        .send(body_req(
            "POST",
            "/api/config",
            "application/yaml",
            BOOKINFO,
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{applied}");
    assert_eq!(applied.as_array().map(Vec::len), Some(2), "{applied}");
    assert!(
        applied
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["outcome"] == "created" && a["revision"] == 1)
    );
    h
}

fn weights(object: &Value) -> Vec<i64> {
    object["spec"]["http"][0]["route"]
        .as_array()
        .expect("routes")
        .iter()
        .map(|d| d["weight"].as_i64().unwrap_or(0))
        .collect()
}

#[tokio::test]
async fn config_round_trip_put_yaml_json_rollback_delete() {
    let h = seeded().await;

    let (status, list) = h.get("/api/config").await;
    assert_eq!(status, StatusCode::OK);
    let vs = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "VirtualService")
        .expect("the VirtualService is listed");
    for field in [
        "namespace",
        "name",
        "revision",
        "yaml",
        "object",
        "author",
        "created_at",
    ] {
        assert!(vs.get(field).is_some(), "{field} missing in {vs}");
    }
    // The user the request authenticated as (the harness's admin token).
    assert_eq!(vs["author"], "tester");
    let (_, only_dr) = h.get("/api/config?kind=destinationrules").await;
    assert_eq!(only_dr.as_array().map(Vec::len), Some(1));

    // PUT YAML: a new revision with the new weights.
    let uri = "/api/config/virtualservices/default/reviews";
    let (status, put) = h
        .send(body_req(
            "PUT",
            uri,
            "application/yaml",
            reviews_vs([0, 0, 100], "v3"),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(put["revision"], 2);
    assert_eq!(put["outcome"], "configured");

    // PUT JSON, kind spelled as Istio does.
    let mut object = h.get("/api/config/VirtualService/default/reviews").await.1["object"].clone();
    object["spec"]["http"][0]["route"][0]["weight"] = json!(50);
    object["spec"]["http"][0]["route"][2]["weight"] = json!(50);
    let (status, put) = h
        .send(body_req(
            "PUT",
            "/api/config/VirtualService/default/reviews",
            "application/json",
            object.to_string(),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(put["revision"], 3);

    let (status, got) = h.get(uri).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["revision"], 3);
    assert_eq!(weights(&got["object"]), [50, 0, 50]);
    assert!(
        got["yaml"].as_str().unwrap().contains("weight: 50"),
        "{}",
        got["yaml"]
    );
    let revisions: Vec<i64> = got["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["revision"].as_i64().unwrap())
        .collect();
    assert_eq!(revisions, [3, 2, 1], "newest first");

    // Rollback to 1 is revision 4 with revision 1's content.
    let (status, rb) = h
        .send(body_req(
            "POST",
            &format!("{uri}/rollback?revision=1"),
            "text/plain",
            "",
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{rb}");
    assert_eq!(rb["revision"], 4);
    assert_eq!(weights(&h.get(uri).await.1["object"]), [40, 30, 30]);

    // Delete, then it is gone but its history stays reachable by rollback.
    let (status, del) = h.send(body_req("DELETE", uri, "text/plain", "")).await;
    assert_eq!(status, StatusCode::OK, "{del}");
    assert_eq!(del["outcome"], "deleted");
    assert_eq!(h.get(uri).await.0, StatusCode::NOT_FOUND);
    let (status, _) = h
        .send(body_req(
            "POST",
            &format!("{uri}/rollback?revision=4"),
            "text/plain",
            "",
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h.get(uri).await.0, StatusCode::OK);
}

#[tokio::test]
async fn invalid_config_is_422_with_diagnostics_and_nothing_changes() {
    let h = seeded().await;
    let uri = "/api/config/virtualservices/default/reviews";
    // Subset v9 is not defined by the DestinationRule.
    let (status, body) = h
        .send(body_req(
            "PUT",
            uri,
            "application/yaml",
            reviews_vs([0, 0, 100], "v9"),
        ))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("refused"),
        "{body}"
    );
    let diagnostics = body["diagnostics"].as_array().expect("diagnostics");
    assert!(!diagnostics.is_empty());
    let d = &diagnostics[0];
    for field in ["severity", "resource", "path", "message"] {
        assert!(d.get(field).is_some(), "{field} missing in {d}");
    }
    assert!(
        diagnostics
            .iter()
            .any(|d| d["message"].as_str().unwrap_or("").contains("v9")),
        "{body}"
    );

    // YAML that does not parse is refused the same way.
    let (status, body) = h
        .send(body_req(
            "PUT",
            uri,
            "application/yaml",
            "kind: VirtualService\nspec: [",
        ))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    let (_, got) = h.get(uri).await;
    assert_eq!(got["revision"], 1, "the last good revision stays");
}

#[tokio::test]
async fn body_for_another_resource_is_400() {
    let h = seeded().await;
    let (status, body) = h
        .send(body_req(
            "PUT",
            "/api/config/virtualservices/default/ratings",
            "application/yaml",
            reviews_vs([40, 30, 30], "v3"),
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("ratings"),
        "{body}"
    );

    for (req, says) in [
        (
            body_req("GET", "/api/config/galaxies/default/x", "text/plain", ""),
            "not a kind",
        ),
        (
            body_req(
                "PUT",
                "/api/config/vs/default/reviews",
                "application/yaml",
                "  ",
            ),
            "empty",
        ),
        (
            body_req(
                "POST",
                "/api/config/vs/default/reviews/rollback",
                "text/plain",
                "",
            ),
            "revision=N",
        ),
        (
            body_req(
                "POST",
                "/api/config/vs/default/reviews/rollback?revision=x",
                "text/plain",
                "",
            ),
            "revision=N",
        ),
    ] {
        let uri = req.uri().to_string();
        let (status, body) = h.send(req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(says),
            "{uri}: {body}"
        );
    }
    let (status, _) = h
        .send(body_req(
            "POST",
            "/api/config/vs/default/reviews/rollback?revision=99",
            "text/plain",
            "",
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        h.get("/api/config/vs/default/nothing").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn canary_lists_weighted_routes_and_writes_new_revisions() {
    let h = seeded().await;
    let (status, list) = h.get("/api/canary").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        list,
        json!([{
            "key": "VirtualService/default/reviews",
            "namespace": "default",
            "name": "reviews",
            "revision": 1,
            "hosts": ["reviews"],
            "routes": [{"index": 0, "name": null, "destinations": [
                {"host": "reviews", "subset": "v1", "weight": 40},
                {"host": "reviews", "subset": "v2", "weight": 30},
                {"host": "reviews", "subset": "v3", "weight": 30}]}]
        }])
    );

    let put = |body: Value| {
        body_req(
            "PUT",
            "/api/canary/default/reviews",
            "application/json",
            body.to_string(),
        )
    };
    let all_v3 = json!({"route_index": 0, "weights": [
        {"subset": "v1", "weight": 0}, {"subset": "v2", "weight": 0}, {"subset": "v3", "weight": 100}]});
    let (status, body) = h.send(put(all_v3.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["revision"], 2);
    let (_, got) = h.get("/api/config/VirtualService/default/reviews").await;
    assert_eq!(weights(&got["object"]), [0, 0, 100]);
    assert_eq!(got["author"], "tester");

    // Refused: bad sums, negatives, unknown subsets — 422, nothing written.
    for bad in [
        json!({"route_index": 0, "weights": [{"subset": "v1", "weight": 50}, {"subset": "v2", "weight": 40}]}),
        json!({"route_index": 0, "weights": [{"subset": "v1", "weight": 120}, {"subset": "v2", "weight": -20}]}),
        json!({"route_index": 0, "weights": [{"subset": "v7", "weight": 100}]}),
        json!({"route_index": 3, "weights": [{"subset": "v1", "weight": 100}]}),
    ] {
        let (status, body) = h.send(put(bad.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert!(
            body["diagnostics"]
                .as_array()
                .is_some_and(|d| !d.is_empty()),
            "{body}"
        );
    }
    assert_eq!(
        h.get("/api/config/vs/default/reviews").await.1["revision"],
        2
    );

    // A slider showing an old revision may not overwrite a newer one.
    let mut stale = all_v3.clone();
    stale["revision"] = json!(1);
    assert_eq!(h.send(put(stale)).await.0, StatusCode::CONFLICT);
    // Not JSON → 400; no such VirtualService → 404.
    let (status, _) = h
        .send(body_req(
            "PUT",
            "/api/canary/default/reviews",
            "application/json",
            "{weights",
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = h
        .send(body_req(
            "PUT",
            "/api/canary/default/nothing",
            "application/json",
            all_v3.to_string(),
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// This process's peak resident memory, in MiB (`VmHWM`).
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .expect("VmHWM")
}

#[tokio::test]
async fn a_mebibyte_of_anchors_and_aliases_is_refused_fast_and_small() {
    let h = seeded().await;
    // A "billion laughs": each level aliases the previous one ten times.
    let mut bomb = String::from(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews, namespace: default}\nspec:\n  hosts: [reviews]\n  l0: &l0 [\"lol\"]\n",
    );
    for i in 1..12 {
        let prev = format!("*l{}", i - 1);
        bomb.push_str(&format!("  l{i}: &l{i} [{}]\n", vec![prev; 10].join(", ")));
    }
    // Padded to just under the console's 1 MiB body limit.
    bomb.push_str("  pad: \"");
    bomb.push_str(&"x".repeat(1024 * 1024 - 200 - bomb.len()));
    bomb.push_str("\"\n");
    assert!(
        bomb.len() > 1_000_000 && bomb.len() < 1024 * 1024,
        "{}",
        bomb.len()
    );
    let started = std::time::Instant::now();
    let (status, body) = h
        .send(body_req(
            "PUT",
            "/api/config/virtualservices/default/reviews",
            "application/yaml",
            bomb,
        ))
        .await;
    let took = started.elapsed();
    assert!(status.is_client_error(), "{status}: {body}");
    assert!(body.to_string().contains("alias"), "{body}");
    assert!(
        took < std::time::Duration::from_secs(1),
        "answered after {took:?}"
    );
    let peak = peak_rss_mib();
    assert!(peak < 200.0, "peak RSS {peak:.0} MiB");
    // The last good config is kept.
    let (_, vs) = h.get("/api/config/VirtualService/default/reviews").await;
    assert_eq!(vs["revision"], 1, "{vs}");
}
