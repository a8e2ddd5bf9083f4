//! Every call the console makes to the console server's JSON API, and the
//! shapes it reads. Fields the page does not need are ignored and missing
//! ones default, so the console keeps working while the API grows.
//!
//! The session cookie rides along by itself (same origin); every write adds
//! the session's CSRF token as `X-CSRF-Token` (from the login answer or
//! `GET /api/whoami`), and any 401 sends the browser to the login page.

use std::cell::RefCell;

use gloo_net::http::{Request, Response};
use loupe_model::Diagnostic;
use serde::{Deserialize, Serialize};
use serde_json::Value;

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

/// Who is logged in (`GET /api/whoami`, `POST /api/login`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct WhoAmI {
    pub user: String,
    /// `viewer`, `editor` or `admin`.
    pub role: String,
    pub csrf_token: Option<String>,
}

impl WhoAmI {
    /// Whether this user may change config (editor or admin).
    pub fn can_edit(&self) -> bool {
        matches!(self.role.as_str(), "editor" | "admin")
    }
}

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
    let body = serde_json::json!({ "user": user, "password": password });
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
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
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

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct GraphNode {
    #[serde(deserialize_with = "null_as_default")]
    pub id: String,
    #[serde(deserialize_with = "null_as_default")]
    pub namespace: String,
    #[serde(deserialize_with = "null_as_default")]
    pub app: String,
    pub version: Option<String>,
    pub workload: Option<String>,
    pub service: Option<String>,
    /// Anything else the server adds (node type, health, …), shown in the panel.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct GraphEdge {
    #[serde(deserialize_with = "null_as_default")]
    pub source: String,
    #[serde(deserialize_with = "null_as_default")]
    pub target: String,
    #[serde(deserialize_with = "null_as_default")]
    pub rps: f64,
    #[serde(deserialize_with = "null_as_default")]
    pub error_rate: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub mtls: Option<Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Graph {
    #[serde(deserialize_with = "null_as_default")]
    pub nodes: Vec<GraphNode>,
    #[serde(deserialize_with = "null_as_default")]
    pub edges: Vec<GraphEdge>,
}

pub async fn graph(graph_type: &str, window: &str) -> Result<Graph, ApiError> {
    get_json(&format!("/api/graph?type={graph_type}&window={window}")).await
}

// ---- traces --------------------------------------------------------------

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct TraceSummary {
    #[serde(deserialize_with = "null_as_default")]
    pub trace_id: String,
    #[serde(deserialize_with = "null_as_default")]
    pub root_service: String,
    #[serde(deserialize_with = "null_as_default")]
    pub root_operation: String,
    pub start: Value,
    #[serde(deserialize_with = "null_as_default")]
    pub duration_ms: f64,
    #[serde(deserialize_with = "null_as_default")]
    pub span_count: u64,
    #[serde(deserialize_with = "null_as_default")]
    pub services: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Span {
    #[serde(deserialize_with = "null_as_default")]
    pub span_id: String,
    pub parent_span_id: Option<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub service: String,
    #[serde(deserialize_with = "null_as_default")]
    pub operation: String,
    pub start: Value,
    #[serde(deserialize_with = "null_as_default")]
    pub duration_ms: f64,
    pub attributes: Value,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Trace {
    pub trace_id: Option<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub spans: Vec<Span>,
}

/// A Jaeger-style trace search; empty fields do not filter.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TraceQuery {
    pub service: String,
    pub operation: String,
    /// `key:value` pairs separated by spaces or commas (`http.status_code:500`).
    pub tags: String,
    pub min_duration_ms: f64,
    pub limit: u32,
}

pub async fn traces(q: &TraceQuery) -> Result<Vec<TraceSummary>, ApiError> {
    let mut url = format!("/api/traces?limit={}", q.limit.max(1));
    for (key, value) in [("service", &q.service), ("operation", &q.operation)] {
        if !value.trim().is_empty() {
            url.push_str(&format!("&{key}={}", encode(value.trim())));
        }
    }
    let tags: Vec<&str> = q.tags.split([' ', ',']).filter(|t| !t.is_empty()).collect();
    if !tags.is_empty() {
        url.push_str(&format!("&tags={}", encode(&tags.join(","))));
    }
    if q.min_duration_ms > 0.0 {
        url.push_str(&format!("&min_duration_ms={}", q.min_duration_ms));
    }
    get_json(&url).await
}

pub async fn trace(trace_id: &str) -> Result<Trace, ApiError> {
    get_json(&format!("/api/traces/{}", encode(trace_id))).await
}

// ---- canary --------------------------------------------------------------

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Destination {
    #[serde(deserialize_with = "null_as_default")]
    pub host: String,
    pub subset: Option<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub weight: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct CanaryRoute {
    #[serde(deserialize_with = "null_as_default")]
    pub index: usize,
    pub name: Option<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub destinations: Vec<Destination>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Canary {
    #[serde(deserialize_with = "null_as_default")]
    pub key: String,
    #[serde(deserialize_with = "null_as_default")]
    pub namespace: String,
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
    /// The config revision these weights are from.
    pub revision: Option<i64>,
    #[serde(deserialize_with = "null_as_default")]
    pub routes: Vec<CanaryRoute>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SubsetWeight {
    pub subset: String,
    pub weight: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CanaryUpdate {
    pub route_index: usize,
    pub weights: Vec<SubsetWeight>,
    /// The revision the sliders show: the server refuses (409) the change
    /// if someone else changed the VirtualService since.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
}

/// What a canary save answers: the new revision.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct CanarySaved {
    pub revision: Option<i64>,
}

pub async fn canaries() -> Result<Vec<Canary>, ApiError> {
    get_json("/api/canary").await
}

pub async fn set_canary(
    namespace: &str,
    name: &str,
    update: &CanaryUpdate,
) -> Result<CanarySaved, ApiError> {
    let url = format!("/api/canary/{}/{}", encode(namespace), encode(name));
    let request = write_request(Request::put(&url))
        .json(update)
        .map_err(|e| ApiError::Decode {
            url: url.clone(),
            message: e.to_string(),
        })?;
    let response = request.send().await.map_err(|e| network(&url, e))?;
    let response = check(&url, response).await?;
    Ok(response.json::<CanarySaved>().await.unwrap_or_default())
}

// ---- config --------------------------------------------------------------

/// One resource as `GET /api/config` lists it. The server's exact field set
/// may vary; `yaml` is what the editor needs, the rest is shown if present.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ConfigEntry {
    #[serde(deserialize_with = "null_as_default")]
    pub kind: String,
    #[serde(deserialize_with = "null_as_default")]
    pub namespace: String,
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
    pub yaml: Option<String>,
    pub revision: Option<Value>,
    pub author: Option<String>,
    #[serde(alias = "updated_at", alias = "created_at")]
    pub time: Option<Value>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

impl ConfigEntry {
    /// The YAML to show: the server's own text, or the object it sent as JSON.
    pub fn yaml_text(&self) -> String {
        if let Some(y) = &self.yaml {
            return y.clone();
        }
        for k in ["resource", "object", "json", "spec"] {
            if let Some(v) = self.extra.get(k) {
                return serde_yaml_text(v);
            }
        }
        String::new()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Revision {
    #[serde(alias = "revision", alias = "id")]
    pub rev: Option<Value>,
    pub author: Option<String>,
    #[serde(alias = "created_at", alias = "time")]
    pub at: Option<Value>,
    pub yaml: Option<String>,
    pub deleted: Option<bool>,
    /// Why it was written (`apply FILE`, `put`, `rollback to revision N`, …).
    pub message: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ConfigDetail {
    #[serde(flatten)]
    pub current: ConfigEntry,
    #[serde(deserialize_with = "null_as_default")]
    pub revisions: Vec<Revision>,
}

/// `GET /api/config` answers either a list or `{"resources": [...]}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum ConfigList {
    List(Vec<ConfigEntry>),
    Wrapped { resources: Vec<ConfigEntry> },
}

pub async fn config_list() -> Result<Vec<ConfigEntry>, ApiError> {
    Ok(match get_json::<ConfigList>("/api/config").await? {
        ConfigList::List(l) | ConfigList::Wrapped { resources: l } => l,
    })
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
) -> Result<ConfigDetail, ApiError> {
    get_json(&config_path(kind, namespace, name)).await
}

/// Writes a new revision. A 422 comes back as [`ApiError::Invalid`] with
/// the server's diagnostics.
pub async fn put_config(
    kind: &str,
    namespace: &str,
    name: &str,
    yaml: String,
) -> Result<(), ApiError> {
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
    check(&url, response).await.map(drop)
}

/// The 422 body is a list of diagnostics or an object holding one.
pub fn invalid_from_body(body: &str) -> ApiError {
    let value: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let list = match &value {
        Value::Array(_) => value.clone(),
        Value::Object(o) => o.get("diagnostics").cloned().unwrap_or(Value::Null),
        _ => Value::Null,
    };
    let diagnostics: Vec<Diagnostic> = serde_json::from_value(list).unwrap_or_default();
    let message = value
        .get("error")
        .or_else(|| value.get("message"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| {
            if diagnostics.is_empty() {
                body.to_string()
            } else {
                String::new()
            }
        });
    ApiError::Invalid {
        diagnostics,
        message,
    }
}

// ---- audit ---------------------------------------------------------------

/// One line of the audit log.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct AuditEntry {
    pub at: Value,
    #[serde(deserialize_with = "null_as_default")]
    pub actor: String,
    #[serde(deserialize_with = "null_as_default")]
    pub action: String,
    /// `Kind/namespace/name`.
    #[serde(deserialize_with = "null_as_default")]
    pub resource: String,
    pub revision: Option<i64>,
}

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

/// One proxy, as `GET /api/proxy-status` (and `istioctl proxy-status`) sees it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ProxyStatus {
    pub namespace: String,
    pub workload: String,
    pub address: String,
    pub gateway: bool,
    pub connected: bool,
    pub acked_revision: Option<i64>,
    pub nacked_revision: Option<i64>,
    pub nack_error: Option<String>,
    pub last_seen: Value,
    /// `SYNCED`, `STALE`, `NACKED` or `DISCONNECTED`.
    pub sync: String,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ProxyStatusList {
    pub config_revision: i64,
    pub synced: usize,
    pub connected: usize,
    pub proxies: Vec<ProxyStatus>,
}

pub async fn proxy_status() -> Result<ProxyStatusList, ApiError> {
    get_json("/api/proxy-status").await
}

/// One of the mesh's own processes, from `loupe demo`'s supervisor.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Part {
    pub name: String,
    pub pid: Option<u32>,
    pub running: bool,
    pub restarts: u32,
    pub started_at: Value,
    pub last_exit: Option<String>,
    pub last_exit_at: Option<Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Components {
    pub supervised: bool,
    pub parts: Vec<Part>,
}

pub async fn components() -> Result<Components, ApiError> {
    get_json("/api/components").await
}

// ---- plumbing ------------------------------------------------------------

/// `null` reads as the type's default, like a missing field: the server
/// sends `null` for what it does not know (a trace's root before the root
/// span arrives).
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

async fn get_json<T: serde::de::DeserializeOwned>(url: &str) -> Result<T, ApiError> {
    let response = Request::get(url)
        .send()
        .await
        .map_err(|e| network(url, e))?;
    let response = check(url, response).await?;
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

/// Percent-encodes a path segment or query value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// JSON shown as YAML-ish text when the server sent no YAML: serde_json's
/// pretty form is valid YAML (YAML is a superset of JSON).
fn serde_yaml_text(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}
