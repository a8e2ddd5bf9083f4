//! A stand-in Kubernetes API server for the tests of Loupe's Kubernetes
//! client side (cluster mode, `loupe install`, `loupe dashboard`): no API
//! server can run on this machine, so this one answers the requests kube-rs
//! makes (list, watch, get, create, replace, JSON, merge and apply patches,
//! the status subresource, delete, TokenReview, and a pod's `portforward`
//! over WebSocket, subprotocol `v4.channel.k8s.io`, relayed to a local
//! address the test names) over real HTTP on loopback, with the
//! JSON shapes the API reference documents: objects get `uid`,
//! `resourceVersion`, `generation` and `creationTimestamp`; lists carry
//! the collection's `resourceVersion`; a watch replays what happened after
//! the version it is given and then follows, one JSON event per line;
//! errors are `Status` objects with the API server's reasons and codes.
//!
//! It is not an API server: no admission, no schema, no field management
//! (an apply patch merges like a merge patch), no RBAC, no selectors.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// A collection: `api/v1/pods`, `apis/networking.istio.io/v1/virtualservices`.
type Collection = String;

#[derive(Clone, Debug)]
struct Change {
    rv: u64,
    collection: Collection,
    namespace: String,
    event: Value,
}

#[derive(Default)]
struct Inner {
    rv: u64,
    objects: BTreeMap<(Collection, String, String), Value>,
    log: Vec<Change>,
    /// Token → TokenReview status.
    tokens: HashMap<String, Value>,
    /// Every request: "METHOD path?query".
    requests: Vec<String>,
    /// (namespace, pod, port) → where its port-forward is relayed.
    forwards: HashMap<(String, String, u16), SocketAddr>,
}

struct Shared {
    inner: Mutex<Inner>,
    changes: broadcast::Sender<Change>,
}

/// The running stand-in; stops with the test's runtime.
#[derive(Clone)]
pub struct ApiServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl ApiServer {
    pub async fn start() -> ApiServer {
        let (changes, _) = broadcast::channel(1024);
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner::default()),
            changes,
        });
        let app = axum::Router::new()
            .route(
                "/api/v1/namespaces/{ns}/pods/{name}/portforward",
                axum::routing::any(portforward),
            )
            .fallback(handle)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the stand-in API server");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        ApiServer { addr, shared }
    }

    /// A client of this server, as kube-rs makes one from a kubeconfig.
    pub fn client(&self) -> kube::Client {
        let config =
            kube::Config::new(format!("http://{}", self.addr).parse().expect("server URL"));
        kube::Client::try_from(config).expect("a kube client")
    }

    /// Creates or replaces `object` (as `kubectl apply` would), at `collection`.
    pub fn put(&self, collection: &str, object: Value) {
        let ns = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let name = object["metadata"]["name"]
            .as_str()
            .expect("a name")
            .to_string();
        let mut inner = self.shared.inner.lock().unwrap();
        let exists =
            inner
                .objects
                .contains_key(&(collection.to_string(), ns.clone(), name.clone()));
        let kind = if exists { "MODIFIED" } else { "ADDED" };
        write(
            &self.shared,
            &mut inner,
            collection,
            &ns,
            &name,
            object,
            kind,
        );
    }

    pub fn delete(&self, collection: &str, namespace: &str, name: &str) {
        let mut inner = self.shared.inner.lock().unwrap();
        remove(&self.shared, &mut inner, collection, namespace, name);
    }

    pub fn get(&self, collection: &str, namespace: &str, name: &str) -> Option<Value> {
        let inner = self.shared.inner.lock().unwrap();
        inner
            .objects
            .get(&(collection.into(), namespace.into(), name.into()))
            .cloned()
    }

    /// Every object of a collection.
    pub fn list(&self, collection: &str) -> Vec<Value> {
        let inner = self.shared.inner.lock().unwrap();
        inner
            .objects
            .iter()
            .filter(|((c, _, _), _)| c == collection)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// What a TokenReview of `token` answers (`status`).
    pub fn token(&self, token: &str, status: Value) {
        let mut inner = self.shared.inner.lock().unwrap();
        inner.tokens.insert(token.into(), status);
    }

    /// Relays port-forwards to `port` of pod `namespace/pod` to `target`.
    pub fn forward(&self, namespace: &str, pod: &str, port: u16, target: SocketAddr) {
        let mut inner = self.shared.inner.lock().unwrap();
        inner
            .forwards
            .insert((namespace.into(), pod.into(), port), target);
    }

    /// Every request so far, as "METHOD path?query".
    pub fn requests(&self) -> Vec<String> {
        self.shared.inner.lock().unwrap().requests.clone()
    }
}

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Stores `object` with fresh server-set metadata and logs the change.
fn write(
    shared: &Shared,
    inner: &mut Inner,
    collection: &str,
    ns: &str,
    name: &str,
    mut object: Value,
    kind: &str,
) -> Value {
    inner.rv += 1;
    let rv = inner.rv;
    let key = (collection.to_string(), ns.to_string(), name.to_string());
    let previous = inner.objects.get(&key).cloned();
    let meta = object["metadata"].as_object_mut().expect("metadata");
    let (uid, created, generation) = match &previous {
        Some(p) => {
            let spec_changed = p.get("spec") != object.get("spec");
            let generation = p["metadata"]["generation"].as_i64().unwrap_or(1);
            (
                p["metadata"]["uid"].clone(),
                p["metadata"]["creationTimestamp"].clone(),
                if spec_changed {
                    generation + 1
                } else {
                    generation
                },
            )
        }
        None => (
            meta.get("uid")
                .cloned()
                .unwrap_or_else(|| json!(format!("uid-{collection}-{ns}-{name}-{rv}"))),
            json!(now()),
            1,
        ),
    };
    let meta = object["metadata"].as_object_mut().expect("metadata");
    meta.insert("uid".into(), uid);
    meta.insert("creationTimestamp".into(), created);
    meta.insert("generation".into(), json!(generation));
    meta.insert("resourceVersion".into(), json!(rv.to_string()));
    inner.objects.insert(key, object.clone());
    let change = Change {
        rv,
        collection: collection.to_string(),
        namespace: ns.to_string(),
        event: json!({"type": kind, "object": object}),
    };
    inner.log.push(change.clone());
    let _ = shared.changes.send(change);
    object
}

fn remove(
    shared: &Shared,
    inner: &mut Inner,
    collection: &str,
    ns: &str,
    name: &str,
) -> Option<Value> {
    let mut object = inner
        .objects
        .remove(&(collection.into(), ns.into(), name.into()))?;
    inner.rv += 1;
    object["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
    let change = Change {
        rv: inner.rv,
        collection: collection.to_string(),
        namespace: ns.to_string(),
        event: json!({"type": "DELETED", "object": object}),
    };
    inner.log.push(change.clone());
    let _ = shared.changes.send(change);
    Some(object)
}

fn status(code: StatusCode, reason: &str, message: String) -> Response {
    (
        code,
        axum::Json(json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": message, "reason": reason, "code": code.as_u16(),
        })),
    )
        .into_response()
}

/// The request's path as (collection, namespace, name, subresource).
fn route(path: &str) -> Option<(Collection, String, Option<String>, Option<String>)> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (prefix, rest) = match segments.as_slice() {
        ["api", v, rest @ ..] => (format!("api/{v}"), rest),
        ["apis", g, v, rest @ ..] => (format!("apis/{g}/{v}"), rest),
        _ => return None,
    };
    let (ns, rest) = match rest {
        ["namespaces", ns, plural, rest @ ..] => (ns.to_string(), {
            let mut v = vec![*plural];
            v.extend(rest);
            v
        }),
        rest => (String::new(), rest.to_vec()),
    };
    match rest.as_slice() {
        [plural] => Some((format!("{prefix}/{plural}"), ns, None, None)),
        [plural, name] => Some((
            format!("{prefix}/{plural}"),
            ns,
            Some(name.to_string()),
            None,
        )),
        [plural, name, sub] => Some((
            format!("{prefix}/{plural}"),
            ns,
            Some(name.to_string()),
            Some(sub.to_string()),
        )),
        _ => None,
    }
}

/// RFC 7386 merge patch.
fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: axum::http::HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Response {
    shared
        .inner
        .lock()
        .unwrap()
        .requests
        .push(match uri.query() {
            Some(q) => format!("{method} {}?{q}", uri.path()),
            None => format!("{method} {}", uri.path()),
        });
    let Some((collection, ns, name, sub)) = route(uri.path()) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("no route {}", uri.path()),
        );
    };
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", e.to_string()),
        }
    };
    match (method, name) {
        (Method::GET, None) => {
            let watching = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
            if watching {
                let since: u64 = query
                    .get("resourceVersion")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                return watch(&shared, collection, ns, since);
            }
            let inner = shared.inner.lock().unwrap();
            let items: Vec<Value> = inner
                .objects
                .iter()
                .filter(|((c, n, _), _)| *c == collection && (ns.is_empty() || *n == ns))
                .map(|(_, v)| v.clone())
                .collect();
            axum::Json(json!({
                "kind": "List", "apiVersion": "v1",
                "metadata": {"resourceVersion": inner.rv.to_string()},
                "items": items,
            }))
            .into_response()
        }
        (Method::GET, Some(name)) => {
            let inner = shared.inner.lock().unwrap();
            match inner.objects.get(&(collection.clone(), ns, name.clone())) {
                Some(object) => axum::Json(object.clone()).into_response(),
                None => status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("{collection} \"{name}\" not found"),
                ),
            }
        }
        (Method::POST, None) if collection.ends_with("/tokenreviews") => {
            let token = body["spec"]["token"].as_str().unwrap_or_default();
            let inner = shared.inner.lock().unwrap();
            let answer = inner.tokens.get(token).cloned().unwrap_or_else(
                || json!({"authenticated": false, "error": "[invalid bearer token]"}),
            );
            let mut review = body.clone();
            review["status"] = answer;
            (StatusCode::CREATED, axum::Json(review)).into_response()
        }
        (Method::POST, None) => {
            let mut object = body;
            let Some(name) = object["metadata"]["name"]
                .as_str()
                .map(str::to_string)
                .or_else(|| {
                    object["metadata"]["generateName"]
                        .as_str()
                        .map(|p| format!("{p}{}", shared.inner.lock().unwrap().rv + 1))
                })
            else {
                return status(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Invalid",
                    "metadata.name: Required value".into(),
                );
            };
            object["metadata"]["name"] = json!(name);
            if !ns.is_empty() {
                object["metadata"]["namespace"] = json!(ns);
            }
            let mut inner = shared.inner.lock().unwrap();
            if inner
                .objects
                .contains_key(&(collection.clone(), ns.clone(), name.clone()))
            {
                return status(
                    StatusCode::CONFLICT,
                    "AlreadyExists",
                    format!("{collection} \"{name}\" already exists"),
                );
            }
            let stored = write(
                &shared,
                &mut inner,
                &collection,
                &ns,
                &name,
                object,
                "ADDED",
            );
            (StatusCode::CREATED, axum::Json(stored)).into_response()
        }
        (Method::PUT, Some(name)) => {
            let mut inner = shared.inner.lock().unwrap();
            let key = (collection.clone(), ns.clone(), name.clone());
            let Some(current) = inner.objects.get(&key) else {
                return status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("{collection} \"{name}\" not found"),
                );
            };
            let given = body["metadata"]["resourceVersion"].as_str();
            if given.is_some() && given != current["metadata"]["resourceVersion"].as_str() {
                return status(
                    StatusCode::CONFLICT,
                    "Conflict",
                    format!(
                        "Operation cannot be fulfilled on {collection} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
                    ),
                );
            }
            let stored = write(
                &shared,
                &mut inner,
                &collection,
                &ns,
                &name,
                body,
                "MODIFIED",
            );
            axum::Json(stored).into_response()
        }
        (Method::PATCH, Some(name)) => {
            let mut inner = shared.inner.lock().unwrap();
            let key = (collection.clone(), ns.clone(), name.clone());
            let existing = inner.objects.get(&key).cloned();
            let mut object = match existing {
                Some(o) => o,
                // An apply patch creates; a merge patch of nothing is NotFound.
                None if query.contains_key("fieldManager") => {
                    json!({"metadata": {"name": name, "namespace": ns}})
                }
                None => {
                    return status(
                        StatusCode::NOT_FOUND,
                        "NotFound",
                        format!("{collection} \"{name}\" not found"),
                    );
                }
            };
            let added = object["metadata"]["resourceVersion"].is_null();
            let json_patch = headers
                .get("content-type")
                .is_some_and(|v| v.as_bytes().starts_with(b"application/json-patch+json"));
            if json_patch {
                let patch: json_patch::Patch = match serde_json::from_value(body) {
                    Ok(p) => p,
                    Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", e.to_string()),
                };
                if let Err(e) = json_patch::patch(&mut object, &patch) {
                    return status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", e.to_string());
                }
            } else {
                let patch = if sub.as_deref() == Some("status") {
                    json!({"status": body["status"].clone()})
                } else {
                    body
                };
                merge(&mut object, &patch);
            }
            if !ns.is_empty() {
                object["metadata"]["namespace"] = json!(ns);
            }
            let kind = if added { "ADDED" } else { "MODIFIED" };
            let stored = write(&shared, &mut inner, &collection, &ns, &name, object, kind);
            axum::Json(stored).into_response()
        }
        (Method::DELETE, Some(name)) => {
            let mut inner = shared.inner.lock().unwrap();
            match remove(&shared, &mut inner, &collection, &ns, &name) {
                Some(object) => axum::Json(object).into_response(),
                None => status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("{collection} \"{name}\" not found"),
                ),
            }
        }
        (method, _) => status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("{method} is not supported here"),
        ),
    }
}

/// A watch: what happened after `since`, then what happens, one event per line.
fn watch(shared: &Arc<Shared>, collection: Collection, ns: String, since: u64) -> Response {
    let mut live = shared.changes.subscribe();
    let backlog: Vec<Change> = shared
        .inner
        .lock()
        .unwrap()
        .log
        .iter()
        .filter(|c| c.rv > since)
        .cloned()
        .collect();
    let mut last = since;
    let stream = async_stream(
        move |tx: tokio::sync::mpsc::Sender<Result<String, std::io::Error>>| async move {
            let wanted =
                |c: &Change| c.collection == collection && (ns.is_empty() || c.namespace == ns);
            for change in backlog.iter().filter(|c| wanted(c)) {
                last = change.rv;
                if tx.send(Ok(format!("{}\n", change.event))).await.is_err() {
                    return;
                }
            }
            loop {
                match live.recv().await {
                    Ok(change) if change.rv > last && wanted(&change) => {
                        last = change.rv;
                        if tx.send(Ok(format!("{}\n", change.event))).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        },
    );
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .expect("a watch response")
}

/// A stream fed by a task.
fn async_stream<F, Fut>(
    f: F,
) -> tokio_stream::wrappers::ReceiverStream<Result<String, std::io::Error>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<String, std::io::Error>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(f(tx));
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// A pod's `portforward` subresource: one port per connection, relayed to
/// the address the test registered with [`ApiServer::forward`]. Frames are
/// the channel byte then data; the server first sends, on the port's data
/// channel (0) and error channel (1), the port number (little-endian).
async fn portforward(
    State(shared): State<Arc<Shared>>,
    axum::extract::Path((ns, name)): axum::extract::Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    upgrade: axum::extract::ws::WebSocketUpgrade,
) -> Response {
    let Some(port) = query.get("ports").and_then(|p| p.parse::<u16>().ok()) else {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "ports: one port number is required".into(),
        );
    };
    let target = {
        let mut inner = shared.inner.lock().unwrap();
        inner.requests.push(format!(
            "GET /api/v1/namespaces/{ns}/pods/{name}/portforward?ports={port}"
        ));
        inner
            .forwards
            .get(&(ns.clone(), name.clone(), port))
            .copied()
    };
    let Some(target) = target else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("pods \"{name}\" not found"),
        );
    };
    upgrade
        .protocols(["v4.channel.k8s.io"])
        .on_upgrade(move |socket| relay(socket, target, port))
}

async fn relay(socket: axum::extract::ws::WebSocket, target: SocketAddr, port: u16) {
    use axum::extract::ws::Message;
    use futures::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (mut to_client, mut from_client) = socket.split();
    let [lo, hi] = port.to_le_bytes();
    for channel in [0u8, 1] {
        if to_client
            .send(Message::Binary(vec![channel, lo, hi].into()))
            .await
            .is_err()
        {
            return;
        }
    }
    let Ok(stream) = tokio::net::TcpStream::connect(target).await else {
        let mut frame = vec![1u8];
        frame.extend_from_slice(format!("connection refused on port {port}").as_bytes());
        let _ = to_client.send(Message::Binary(frame.into())).await;
        return;
    };
    let (mut read, mut write) = stream.into_split();
    let up = async move {
        while let Some(Ok(message)) = from_client.next().await {
            let bytes = match message {
                Message::Binary(bytes) if bytes.first() == Some(&0) => bytes,
                Message::Close(_) => break,
                _ => continue,
            };
            if write.write_all(&bytes[1..]).await.is_err() {
                break;
            }
        }
        let _ = write.shutdown().await;
    };
    let down = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match read.read(&mut buf[1..]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    buf[0] = 0;
                    let frame = buf[..=n].to_vec();
                    if to_client.send(Message::Binary(frame.into())).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to_client.close().await;
    };
    tokio::join!(up, down);
}
