//! Who is connected right now: the proxies whose authenticated, checked
//! `Hello`s opened a push stream. It tells which declared WorkloadEntries
//! have a live proxy (so are endpoints, see [`crate::declared`]) and
//! mirrors itself into the `workloads` table, where the collector finds the
//! metrics endpoints to scrape and the console shows which proxy has ACKed
//! which snapshot.
//!
//! Memory is the truth; the table is a best-effort mirror: a database
//! hiccup is logged and never drops a proxy.
//!
//! A proxy's endpoints count while its stream is open and for a grace
//! period after it drops ([`ENDPOINT_GRACE`] by default): a proxy that
//! reconnects within it — after a network blip, or after the *control
//! plane* restarted — never leaves the endpoint sets, so no other proxy is
//! pushed a partial set and answers `no healthy upstream` meanwhile. A
//! restarted control plane starts from the table: the workloads that were
//! connected when it went away (or left less than the grace ago) keep their
//! endpoints until they reconnect or the grace runs out
//! ([`Registry::restore`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use loupe_push::Hello;
use sqlx::PgPool;

/// The cluster DNS suffix of service hosts, as in Kubernetes.
pub const CLUSTER_DOMAIN: &str = "svc.cluster.local";

/// A connected proxy's workload, as its `Hello` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    pub name: String,
    pub namespace: String,
    pub service_account: String,
    pub labels: BTreeMap<String, String>,
    /// host:port of the inbound listener (the endpoint address).
    pub inbound_address: String,
    /// host:port of the Prometheus endpoint.
    pub metrics_address: String,
    /// Short names of the services (in `namespace`) it is an endpoint of.
    pub services: Vec<String>,
    pub gateway: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum HelloError {
    #[error("Hello.workload is empty: a proxy must name its workload (--workload)")]
    NoWorkload,
}

impl Workload {
    /// Checks a `Hello`; an empty namespace means `default` (as in Kubernetes).
    /// A proxy without an inbound listener still gets its config (it may
    /// only send requests) but is an endpoint of no service.
    pub fn from_hello(hello: Hello) -> Result<Self, HelloError> {
        Self::check_shape(&hello)?;
        let mut services: Vec<String> = hello
            .services
            .into_iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if !services.is_empty() && hello.inbound_address.trim().is_empty() {
            tracing::warn!(workload = %hello.workload, ?services, "no inbound address in Hello: not an endpoint of its services (start the proxy with --inbound)");
            services.clear();
        }
        let namespace = match hello.namespace.trim() {
            "" => loupe_model::meta::DEFAULT_NAMESPACE.to_string(),
            ns => ns.to_string(),
        };
        Ok(Workload {
            name: hello.workload,
            namespace,
            service_account: hello.service_account,
            labels: hello.labels.into_iter().collect(),
            inbound_address: hello.inbound_address,
            metrics_address: hello.metrics_address,
            services,
            gateway: hello.gateway,
        })
    }

    /// What every Hello needs, whoever sends it.
    pub fn check_shape(hello: &Hello) -> Result<(), HelloError> {
        if hello.workload.trim().is_empty() {
            return Err(HelloError::NoWorkload);
        }
        Ok(())
    }

    /// `NAME.NS.svc.cluster.local` of each service it serves.
    pub fn hosts(&self) -> impl Iterator<Item = String> + '_ {
        self.services
            .iter()
            .map(|s| format!("{s}.{}.{CLUSTER_DOMAIN}", self.namespace))
    }

    /// The `workloads` table's key.
    fn same_row(&self, other: &Workload) -> bool {
        self.namespace == other.namespace
            && self.name == other.name
            && self.inbound_address == other.inbound_address
    }
}

/// How long a WorkloadEntry whose proxy's stream dropped stays an endpoint
/// (proxies reconnect within a few seconds: their backoff is capped at 5 s).
pub const ENDPOINT_GRACE: Duration = Duration::from_secs(15);

/// A WorkloadEntry: (namespace, name).
type EntryKey = (String, String);

/// One open push stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(u64);

/// A connected proxy and what it last said about our snapshots.
#[derive(Clone, Debug)]
pub struct Connection {
    pub id: ConnectionId,
    pub workload: Workload,
    pub acked_version: Option<u64>,
    /// The last refused snapshot version and the proxy's reason.
    pub nacked: Option<(u64, String)>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    /// Bumped on every connect/disconnect: endpoints may have changed.
    generation: u64,
    connections: BTreeMap<ConnectionId, Connection>,
    /// Entries without an open stream that still count, until when.
    departed: BTreeMap<EntryKey, Instant>,
}

pub struct Registry {
    pool: PgPool,
    grace: Duration,
    state: Mutex<State>,
}

impl Registry {
    /// A registry whose disconnected entries stay endpoints for [`ENDPOINT_GRACE`].
    pub fn new(pool: PgPool) -> Self {
        Self::with_grace(pool, ENDPOINT_GRACE)
    }

    /// A registry whose disconnected entries stay endpoints for `grace`.
    pub fn with_grace(pool: PgPool, grace: Duration) -> Self {
        Registry {
            pool,
            grace,
            state: Mutex::new(State::default()),
        }
    }

    /// At start-up: the entries whose proxies were connected to the previous
    /// control plane (rows it left `connected`, or that left less than the
    /// grace ago) count for the rest of their grace, and every row is then
    /// marked disconnected until its proxy says Hello again. Returns how many
    /// entries were restored.
    pub async fn restore(&self) -> Result<usize, sqlx::Error> {
        let grace = self.grace.as_secs_f64();
        let rows: Vec<(String, String, f64)> = sqlx::query_as(
            "SELECT namespace, name,
                    MAX(CASE WHEN connected THEN $1
                             ELSE $1 - EXTRACT(EPOCH FROM now() - last_seen)::float8 END)
             FROM workloads
             WHERE connected OR last_seen > now() - make_interval(secs => $1)
             GROUP BY namespace, name",
        )
        .bind(grace)
        .fetch_all(&self.pool)
        .await?;
        self.mark_all_disconnected().await?;
        let now = Instant::now();
        let mut st = self.lock();
        let mut restored = 0;
        for (namespace, name, left) in rows {
            if left > 0.0 {
                let until = now + Duration::from_secs_f64(left.min(grace));
                st.departed.insert((namespace, name), until);
                restored += 1;
            }
        }
        if restored > 0 {
            st.generation += 1;
        }
        Ok(restored)
    }

    /// Drops the departed entries whose grace ran out by `now`; whether any
    /// did (the endpoint sets changed: publish).
    pub fn expire(&self, now: Instant) -> bool {
        let mut st = self.lock();
        let before = st.departed.len();
        st.departed.retain(|_, until| *until > now);
        let changed = st.departed.len() != before;
        if changed {
            st.generation += 1;
        }
        changed
    }

    /// Registers a proxy that said Hello; its endpoints count from now on.
    /// Also says whether the endpoint sets changed (not when the entry was
    /// already live: another stream, or within its grace).
    pub async fn connect(&self, workload: Workload) -> (ConnectionId, bool) {
        let (id, changed) = {
            let mut st = self.lock();
            st.next_id += 1;
            st.generation += 1;
            let key = (workload.namespace.clone(), workload.name.clone());
            let was_live = st.departed.remove(&key).is_some()
                || st
                    .connections
                    .values()
                    .any(|c| c.workload.namespace == key.0 && c.workload.name == key.1);
            let id = ConnectionId(st.next_id);
            st.connections.insert(
                id,
                Connection {
                    id,
                    workload: workload.clone(),
                    acked_version: None,
                    nacked: None,
                },
            );
            (id, !was_live)
        };
        tracing::info!(workload = %workload.name, namespace = %workload.namespace, inbound = %workload.inbound_address, services = ?workload.services, "proxy connected");
        let labels = serde_json::to_value(&workload.labels).unwrap_or_default();
        let result = sqlx::query(
            "INSERT INTO workloads (namespace, name, service_account, labels, services, inbound_address,
                                    metrics_address, gateway, connected, acked_version, nacked_version, nack_error, last_seen)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, TRUE, NULL, NULL, NULL, now())
             ON CONFLICT (namespace, name, inbound_address) DO UPDATE SET
                service_account = EXCLUDED.service_account, labels = EXCLUDED.labels,
                services = EXCLUDED.services, metrics_address = EXCLUDED.metrics_address,
                gateway = EXCLUDED.gateway, connected = TRUE, acked_version = NULL,
                nacked_version = NULL, nack_error = NULL, last_seen = now()",
        )
        .bind(&workload.namespace)
        .bind(&workload.name)
        .bind(&workload.service_account)
        .bind(labels)
        .bind(&workload.services)
        .bind(&workload.inbound_address)
        .bind(&workload.metrics_address)
        .bind(workload.gateway)
        .execute(&self.pool)
        .await;
        log_db("recording a connected workload", &workload, result);
        (id, changed)
    }

    /// Forgets a proxy whose stream ended. The table row is marked
    /// disconnected unless another stream of the same workload is open
    /// (a proxy that reconnected before its old stream was noticed dead).
    /// Says whether the endpoint sets changed (only without a grace).
    pub async fn disconnect(&self, id: ConnectionId) -> bool {
        let (workload, still_connected, changed) = {
            let mut st = self.lock();
            let Some(conn) = st.connections.remove(&id) else {
                return false;
            };
            st.generation += 1;
            let still = st
                .connections
                .values()
                .any(|c| c.workload.same_row(&conn.workload));
            let entry_open = st.connections.values().any(|c| {
                c.workload.namespace == conn.workload.namespace
                    && c.workload.name == conn.workload.name
            });
            if !entry_open && !self.grace.is_zero() {
                let key = (conn.workload.namespace.clone(), conn.workload.name.clone());
                st.departed.insert(key, Instant::now() + self.grace);
            }
            (conn.workload, still, !entry_open && self.grace.is_zero())
        };
        tracing::info!(workload = %workload.name, namespace = %workload.namespace, "proxy disconnected");
        if still_connected {
            return changed;
        }
        let result = sqlx::query(
            "UPDATE workloads SET connected = FALSE, last_seen = now()
             WHERE namespace = $1 AND name = $2 AND inbound_address = $3",
        )
        .bind(&workload.namespace)
        .bind(&workload.name)
        .bind(&workload.inbound_address)
        .execute(&self.pool)
        .await;
        log_db("recording a disconnected workload", &workload, result);
        changed
    }

    /// The proxy applied snapshot `version`.
    pub async fn ack(&self, id: ConnectionId, version: u64) {
        let Some(workload) = self.update(id, |c| c.acked_version = Some(version)) else {
            return;
        };
        tracing::info!(workload = %workload.name, namespace = %workload.namespace, version, "snapshot ACKed");
        let result = sqlx::query(
            "UPDATE workloads SET acked_version = $4, last_seen = now()
             WHERE namespace = $1 AND name = $2 AND inbound_address = $3",
        )
        .bind(&workload.namespace)
        .bind(&workload.name)
        .bind(&workload.inbound_address)
        .bind(i64::try_from(version).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await;
        log_db("recording an ACK", &workload, result);
    }

    /// The proxy refused snapshot `version` (and keeps its last good one).
    pub async fn nack(&self, id: ConnectionId, version: u64, error: &str) {
        let Some(workload) = self.update(id, |c| c.nacked = Some((version, error.to_string())))
        else {
            return;
        };
        tracing::warn!(workload = %workload.name, namespace = %workload.namespace, version, error, "snapshot NACKed: the proxy keeps its last good config");
        let result = sqlx::query(
            "UPDATE workloads SET nacked_version = $4, nack_error = $5, last_seen = now()
             WHERE namespace = $1 AND name = $2 AND inbound_address = $3",
        )
        .bind(&workload.namespace)
        .bind(&workload.name)
        .bind(&workload.inbound_address)
        .bind(i64::try_from(version).unwrap_or(i64::MAX))
        .bind(error)
        .execute(&self.pool)
        .await;
        log_db("recording a NACK", &workload, result);
    }

    /// Marks every workload row disconnected (as of now): at start-up (rows
    /// left by a control plane that died) and at shutdown.
    pub async fn mark_all_disconnected(&self) -> Result<u64, sqlx::Error> {
        sqlx::query("UPDATE workloads SET connected = FALSE, last_seen = now() WHERE connected")
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
    }

    /// Changes whenever the set of connections (hence endpoints) changes.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// The open connections, oldest first.
    pub fn connections(&self) -> Vec<Connection> {
        self.lock().connections.values().cloned().collect()
    }

    /// The WorkloadEntries (namespace, name) that are endpoints now: with a
    /// connected proxy, or within the grace after it left.
    pub fn live_entries(&self) -> BTreeSet<EntryKey> {
        let st = self.lock();
        st.connections
            .values()
            .map(|c| (c.workload.namespace.clone(), c.workload.name.clone()))
            .chain(st.departed.keys().cloned())
            .collect()
    }

    fn update(&self, id: ConnectionId, f: impl FnOnce(&mut Connection)) -> Option<Workload> {
        let mut st = self.lock();
        let conn = st.connections.get_mut(&id)?;
        f(conn);
        Some(conn.workload.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A row of the `workloads` table: a proxy that is or was connected, and
/// how far its config is (what `istioctl proxy-status` shows).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct WorkloadStatus {
    pub namespace: String,
    pub name: String,
    pub service_account: String,
    pub inbound_address: String,
    pub metrics_address: String,
    pub services: Vec<String>,
    pub gateway: bool,
    pub connected: bool,
    pub acked_version: Option<i64>,
    pub nacked_version: Option<i64>,
    pub nack_error: Option<String>,
    pub last_seen: chrono::DateTime<chrono::Utc>,
}

/// Every workload the control plane has seen, connected ones first, then by
/// namespace and name. (Read by the console; written only by [`Registry`].)
pub async fn workload_statuses(pool: &PgPool) -> Result<Vec<WorkloadStatus>, sqlx::Error> {
    sqlx::query_as::<_, WorkloadStatus>(
        "SELECT namespace, name, service_account, inbound_address, metrics_address, services,
                gateway, connected, acked_version, nacked_version, nack_error, last_seen
         FROM workloads ORDER BY connected DESC, namespace, name, inbound_address",
    )
    .fetch_all(pool)
    .await
}

fn log_db<T>(action: &str, workload: &Workload, result: Result<T, sqlx::Error>) {
    if let Err(error) = result {
        tracing::warn!(workload = %workload.name, namespace = %workload.namespace, %error, "{action} in the workloads table failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn hello(name: &str, services: &[&str], inbound: &str) -> Hello {
        Hello {
            workload: name.into(),
            namespace: String::new(),
            service_account: "sa".into(),
            labels: labels(&[("app", "reviews")]),
            inbound_address: inbound.into(),
            metrics_address: "127.0.0.1:1".into(),
            services: services.iter().map(|s| s.to_string()).collect(),
            gateway: false,
        }
    }

    #[test]
    fn hello_defaults_namespace_and_names_hosts() {
        let w = Workload::from_hello(hello("reviews-v1", &["reviews"], "127.0.0.1:9")).unwrap();
        assert_eq!(w.namespace, "default");
        assert_eq!(
            w.hosts().collect::<Vec<_>>(),
            ["reviews.default.svc.cluster.local"]
        );
    }

    #[test]
    fn hello_without_workload_is_refused_and_without_address_serves_nothing() {
        assert!(matches!(
            Workload::from_hello(hello(" ", &[], "x:1")),
            Err(HelloError::NoWorkload)
        ));
        let client_only = Workload::from_hello(hello("r", &["reviews"], "")).unwrap();
        assert!(client_only.services.is_empty(), "no address, no endpoint");
        // A gateway serving no service needs no inbound address.
        assert!(Workload::from_hello(hello("gw", &[], "")).is_ok());
    }
}
