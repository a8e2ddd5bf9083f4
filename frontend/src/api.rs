//! Every call the console makes to the console server's JSON API. The
//! shapes are `loupe-api`'s, the very types the server serializes, so a
//! change to the contract that this side misses does not compile.
//!
//! The session cookie rides along by itself (same origin); every write adds
//! the session's CSRF token as `X-CSRF-Token` (from the login answer or
//! `GET /api/whoami`), and any 401 sends the browser to the login page.

use std::cell::RefCell;

use gloo_net::http::{Request, Response};
use loupe_api::audit::AuditEntry;
use loupe_api::auth::{LoginRequest, WhoAmI};
use loupe_api::canary::{Canary, WeightsRequest, WeightsResponse};
use loupe_api::config::{Applied, Resource, ResourceWithHistory};
use loupe_api::encode;
use loupe_api::error::ErrorBody;
use loupe_api::graph::Graph;
use loupe_api::mesh::{Components, ProxyStatusList, ServerHealth};
use loupe_api::traces::{EdgeCrossing, Trace, TraceSort, TraceSummary};
use loupe_model::Diagnostic;

/// What went wrong talking to the server, said so the user can act on it.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{url}: request failed ({message}); is the console server running?")]
    Network { url: String, message: String },
    #[error("{url}: server answered {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("{url}: unexpected response body ({message})")]
    Decode { url: String, message: String },
    /// 422 from a config write: the server's validation refused it.
    #[error("the server refused the change: {} problem(s)", diagnostics.len())]
    Invalid {
        diagnostics: Vec<Diagnostic>,
        message: String,
    },
}

// ---- session -------------------------------------------------------------

thread_local! {
    /// The session's CSRF token, sent on every write.
    static CSRF: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn remember(me: &WhoAmI) {
    CSRF.with(|c| *c.borrow_mut() = me.csrf_token.clone());
}

fn csrf_token() -> Option<String> {
    CSRF.with(|c| c.borrow().clone())
}

pub async fn whoami() -> Result<WhoAmI, ApiError> {
    let me: WhoAmI = get_json("/api/whoami").await?;
    remember(&me);
    Ok(me)
}

/// Logs in; a wrong user or password is `Status { status: 401, .. }`.
pub async fn login(user: &str, password: &str) -> Result<WhoAmI, ApiError> {
    let url = "/api/login";
    let body = LoginRequest {
        user: user.to_string(),
        password: password.to_string(),
    };
    let response = Request::post(url)
        .json(&body)
        .map_err(|e| ApiError::Decode {
            url: url.into(),
            message: e.to_string(),
        })?
        .send()
        .await
        .map_err(|e| network(url, e))?;
    if !response.ok() {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<ErrorBody>(&body)
            .map(|b| b.error)
            .unwrap_or(body);
        return Err(ApiError::Status {
            url: url.into(),
            status,
            body: message,
        });
    }
    let me: WhoAmI = response.json().await.map_err(|e| ApiError::Decode {
        url: url.into(),
        message: e.to_string(),
    })?;
    remember(&me);
    Ok(me)
}

pub async fn logout() -> Result<(), ApiError> {
    let url = "/api/logout";
    Request::post(url)
        .send()
        .await
        .map_err(|e| network(url, e))?;
    CSRF.with(|c| *c.borrow_mut() = None);
    Ok(())
}

/// The login page, coming back to the current page after.
pub fn go_to_login() {
    let Some(window) = web_sys::window() else {
        return;
    };
    let location = window.location();
    let here = location.pathname().unwrap_or_default();
    if here == "/login" {
        return;
    }
    let search = location.search().unwrap_or_default();
    let next = encode(&format!("{here}{search}"));
    let _ = location.assign(&format!("/login?next={next}"));
}

/// A write request: the CSRF header added when the session has one.
fn write_request(builder: gloo_net::http::RequestBuilder) -> gloo_net::http::RequestBuilder {
    match csrf_token() {
        Some(token) => builder.header("x-csrf-token", &token),
        None => builder,
    }
}

// ---- graph ---------------------------------------------------------------

/// The graph; `namespaces` empty means all of them.
pub async fn graph(
    graph_type: &str,
    window: &str,
    namespaces: &[String],
) -> Result<Graph, ApiError> {
    let mut url = format!(
        "/api/graph?type={}&window={}",
        encode(graph_type),
        encode(window)
    );
    if !namespaces.is_empty() {
        url.push_str(&format!("&namespaces={}", encode(&namespaces.join(","))));
    }
    get_json(&url).await
}

// ---- traces --------------------------------------------------------------

/// The trace search form; empty fields do not filter.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TraceQuery {
    pub service: String,
    pub operation: String,
    /// `key:value` pairs separated by spaces or commas (`http.status_code:500`).
    pub tags: String,
    pub min_duration_ms: f64,
    pub limit: u32,
    /// `30s`, `5m`, … (Jaeger's lookback); empty for any time.
    pub lookback: String,
    pub sort: TraceSort,
    /// Only traces that crossed this graph edge.
    pub edge: Option<EdgeCrossing>,
}

impl TraceQuery {
    pub fn url(&self) -> String {
        let mut url = format!("/api/traces?limit={}", self.limit.max(1));
        for (key, value) in [
            ("service", &self.service),
            ("operation", &self.operation),
            ("lookback", &self.lookback),
        ] {
            if !value.trim().is_empty() {
                url.push_str(&format!("&{key}={}", encode(value.trim())));
            }
        }
        let tags: Vec<&str> = self
            .tags
            .split([' ', ','])
            .filter(|t| !t.is_empty())
            .collect();
        if !tags.is_empty() {
            url.push_str(&format!("&tags={}", encode(&tags.join(","))));
        }
        if self.min_duration_ms > 0.0 {
            url.push_str(&format!("&min_duration_ms={}", self.min_duration_ms));
        }
        if self.sort != TraceSort::default() {
            url.push_str(&format!("&sort={}", self.sort.as_str()));
        }
        for (key, value) in self.edge.iter().flat_map(EdgeCrossing::to_query) {
            url.push_str(&format!("&{key}={}", encode(&value)));
        }
        url
    }
}

pub async fn traces(q: &TraceQuery) -> Result<Vec<TraceSummary>, ApiError> {
    get_json(&q.url()).await
}

pub async fn trace(trace_id: &str) -> Result<Trace, ApiError> {
    get_json(&format!("/api/traces/{}", encode(trace_id))).await
}

// ---- canary --------------------------------------------------------------

pub async fn canaries() -> Result<Vec<Canary>, ApiError> {
    get_json("/api/canary").await
}

pub async fn set_canary(
    namespace: &str,
    name: &str,
    update: &WeightsRequest,
) -> Result<WeightsResponse, ApiError> {
    let url = format!("/api/canary/{}/{}", encode(namespace), encode(name));
    let request = write_request(Request::put(&url))
        .json(update)
        .map_err(|e| ApiError::Decode {
            url: url.clone(),
            message: e.to_string(),
        })?;
    let response = request.send().await.map_err(|e| network(&url, e))?;
    let response = check(&url, response).await?;
    decode(&url, response).await
}

// ---- config --------------------------------------------------------------

pub async fn config_list() -> Result<Vec<Resource>, ApiError> {
    get_json("/api/config").await
}

pub fn config_path(kind: &str, namespace: &str, name: &str) -> String {
    format!(
        "/api/config/{}/{}/{}",
        encode(kind),
        encode(namespace),
        encode(name)
    )
}

pub async fn config_detail(
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<ResourceWithHistory, ApiError> {
    get_json(&config_path(kind, namespace, name)).await
}

/// Writes a new revision. A 422 comes back as [`ApiError::Invalid`] with
/// the server's diagnostics.
pub async fn put_config(
    kind: &str,
    namespace: &str,
    name: &str,
    yaml: String,
) -> Result<Applied, ApiError> {
    let url = config_path(kind, namespace, name);
    let request = write_request(Request::put(&url))
        .header("content-type", "application/yaml")
        .body(yaml)
        .map_err(|e| ApiError::Decode {
            url: url.clone(),
            message: e.to_string(),
        })?;
    let response = request.send().await.map_err(|e| network(&url, e))?;
    if response.status() == 422 {
        let body = response.text().await.unwrap_or_default();
        return Err(invalid_from_body(&body));
    }
    let response = check(&url, response).await?;
    decode(&url, response).await
}

/// A 422's [`ErrorBody`] as [`ApiError::Invalid`]; a body that is not one
/// is shown as it came.
pub fn invalid_from_body(body: &str) -> ApiError {
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(b) => ApiError::Invalid {
            diagnostics: b.diagnostics,
            message: b.error,
        },
        Err(_) => ApiError::Invalid {
            diagnostics: Vec::new(),
            message: body.to_string(),
        },
    }
}

// ---- audit ---------------------------------------------------------------

/// Empty fields do not filter.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuditQuery {
    pub user: String,
    pub kind: String,
    pub namespace: String,
    pub limit: u32,
}

pub async fn audit(q: &AuditQuery) -> Result<Vec<AuditEntry>, ApiError> {
    let mut url = format!("/api/audit?limit={}", q.limit.max(1));
    for (key, value) in [
        ("user", &q.user),
        ("kind", &q.kind),
        ("namespace", &q.namespace),
    ] {
        if !value.trim().is_empty() {
            url.push_str(&format!("&{key}={}", encode(value.trim())));
        }
    }
    get_json(&url).await
}

// ---- proxy status and the mesh's parts ----------------------------------

pub async fn proxy_status() -> Result<ProxyStatusList, ApiError> {
    get_json("/api/proxy-status").await
}

pub async fn components() -> Result<Components, ApiError> {
    get_json("/api/components").await
}

/// `GET /api/health`: a 503 still carries the body that says what is down.
pub async fn health() -> Result<ServerHealth, ApiError> {
    let url = "/api/health";
    let response = Request::get(url)
        .send()
        .await
        .map_err(|e| network(url, e))?;
    decode(url, response).await
}

// ---- plumbing ------------------------------------------------------------

async fn get_json<T: serde::de::DeserializeOwned>(url: &str) -> Result<T, ApiError> {
    let response = Request::get(url)
        .send()
        .await
        .map_err(|e| network(url, e))?;
    let response = check(url, response).await?;
    decode(url, response).await
}

async fn decode<T: serde::de::DeserializeOwned>(
    url: &str,
    response: Response,
) -> Result<T, ApiError> {
    response.json::<T>().await.map_err(|e| ApiError::Decode {
        url: url.to_string(),
        message: e.to_string(),
    })
}

async fn check(url: &str, response: Response) -> Result<Response, ApiError> {
    if response.ok() {
        return Ok(response);
    }
    let status = response.status();
    if status == 401 {
        go_to_login();
    }
    let body = response.text().await.unwrap_or_default();
    Err(ApiError::Status {
        url: url.to_string(),
        status,
        body: body.chars().take(400).collect(),
    })
}

fn network(url: &str, e: gloo_net::Error) -> ApiError {
    ApiError::Network {
        url: url.to_string(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_search_urls_carry_sort_lookback_and_the_edge() {
        let q = TraceQuery {
            limit: 20,
            lookback: "60s".into(),
            sort: TraceSort::LongestFirst,
            edge: Some(EdgeCrossing {
                source_workloads: vec!["productpage-v1".into()],
                destination_workloads: vec!["reviews-v1".into(), "reviews-v2".into()],
                ..EdgeCrossing::default()
            }),
            ..TraceQuery::default()
        };
        assert_eq!(
            q.url(),
            "/api/traces?limit=20&lookback=60s&sort=longest_first\
             &source_workload=productpage-v1&destination_workload=reviews-v1%2Creviews-v2"
        );
        // The defaults add nothing.
        let plain = TraceQuery {
            limit: 50,
            ..TraceQuery::default()
        };
        assert_eq!(plain.url(), "/api/traces?limit=50");
    }
}
