//! The four bookinfo services. Each answers JSON; productpage and reviews
//! v2/v3 call their dependencies through the mesh and report their failures
//! in the response (a failed dependency degrades the page, as in bookinfo).

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::json;

use crate::http::{Body, MeshClient, json, serve};
use crate::trace_headers;

/// Which service a process plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    Productpage,
    Details,
    Reviews,
    Ratings,
}

/// Runs `role` on `listen`; `proxy` is the sidecar's outbound listener.
pub async fn run(
    role: Role,
    version: String,
    listen: SocketAddr,
    proxy: SocketAddr,
) -> anyhow::Result<()> {
    let mesh = Arc::new(MeshClient::new(proxy));
    let version: Arc<str> = version.into();
    serve(listen, move |req| {
        let mesh = mesh.clone();
        let version = version.clone();
        async move { handle(role, &version, &mesh, req).await }
    })
    .await
}

async fn handle(
    role: Role,
    version: &str,
    mesh: &MeshClient,
    req: Request<Incoming>,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    if path == "/health" {
        return json(StatusCode::OK, &json!({"status": "ok"}));
    }
    let headers = trace_headers::extract(req.headers());
    match role {
        Role::Productpage => {
            let (details, reviews) = tokio::join!(
                mesh.get("details:9080", "/details/0", &headers),
                mesh.get("reviews:9080", "/reviews/0", &headers),
            );
            // Like Istio's bookinfo, the page degrades instead of failing:
            // "Error fetching product details!" with a 200.
            let details = dependency(details);
            let reviews = dependency(reviews);
            json(
                StatusCode::OK,
                &json!({
                    "page": "productpage",
                    "details": details.1,
                    "reviews": reviews.1,
                    "degraded": !(details.0 && reviews.0),
                }),
            )
        }
        Role::Details => json(
            StatusCode::OK,
            &json!({"id": 0, "author": "William Shakespeare", "year": 1595, "type": "paperback", "pages": 200}),
        ),
        Role::Reviews => {
            let ratings = if version == "v1" {
                None
            } else {
                Some(dependency(
                    mesh.get("ratings:9080", "/ratings/0", &headers).await,
                ))
            };
            let color = match version {
                "v2" => "black",
                "v3" => "red",
                _ => "none",
            };
            // Bookinfo's reviews: "Ratings service is currently
            // unavailable", still a 200.
            json(
                StatusCode::OK,
                &json!({"id": 0, "version": version, "stars": color, "ratings": ratings.map(|r| r.1)}),
            )
        }
        Role::Ratings => json(
            StatusCode::OK,
            &json!({"id": 0, "ratings": {"Reviewer1": 5, "Reviewer2": 4}}),
        ),
    }
}

/// (succeeded, what to show) for a dependency call.
fn dependency(result: anyhow::Result<crate::http::Reply>) -> (bool, serde_json::Value) {
    match result {
        Ok(r) if r.status.is_success() => (
            true,
            serde_json::from_slice(&r.body)
                .unwrap_or_else(|_| json!(String::from_utf8_lossy(&r.body))),
        ),
        Ok(r) => (
            false,
            json!({"error": format!("status {}", r.status), "body": String::from_utf8_lossy(&r.body)}),
        ),
        Err(e) => (false, json!({"error": e.to_string()})),
    }
}
