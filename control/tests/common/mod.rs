//! Shared by the control plane's tests: a private Postgres per test, Istio
//! YAML fixtures, a running control plane (its own CA in a temporary
//! directory, TLS) on an ephemeral port, and a proxy stand-in that speaks
//! the push protocol over a real gRPC connection.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use loupe_control::{ConfigStore, ControlPlane};
use loupe_db::{PgPool, PrivatePostgres};
use loupe_push::discovery_client::DiscoveryClient;
use loupe_push::proxy_message::Message;
use loupe_push::{Ack, Hello, Nack, ProxyMessage, Snapshot};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

pub struct Db {
    pub pool: PgPool,
    // Dropped last: stops the server.
    pub pg: PrivatePostgres,
}

pub async fn db() -> Db {
    let pg = PrivatePostgres::start_temporary().expect("start a private Postgres");
    let pool = loupe_db::connect(&pg.url(), 16)
        .await
        .expect("connect + migrate");
    Db { pool, pg }
}

pub async fn count(pool: &PgPool, table_sql: &'static str) -> i64 {
    sqlx::query_scalar::<_, i64>(table_sql)
        .fetch_one(pool)
        .await
        .expect("count query")
}

/// Bookinfo's reviews DestinationRule (subsets v1, v2, v3).
pub const REVIEWS_DR: &str = "\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: default
spec:
  host: reviews
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
  - name: v3
    labels:
      version: v3
";

/// A reviews VirtualService splitting `v1`/`v3` by the given weights.
pub fn reviews_vs(w1: u32, w3: u32) -> String {
    format!(
        "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: default
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
      weight: {w1}
    - destination:
        host: reviews
        subset: v3
      weight: {w3}
"
    )
}

pub fn bookinfo(w1: u32, w3: u32) -> String {
    format!("{REVIEWS_DR}---\n{}", reviews_vs(w1, w3))
}

/// A control plane serving on 127.0.0.1:0; dropping `stop` (or sending on
/// it) shuts it down.
pub struct Running {
    pub addr: SocketAddr,
    pub store: ConfigStore,
    pub registry: std::sync::Arc<loupe_control::registry::Registry>,
    pub pool: PgPool,
    /// The mesh's trust bundle (PEM), what proxies start from.
    pub root: String,
    pub stop: Option<oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<Result<(), loupe_control::ControlError>>,
    /// The snapshots the control plane publishes.
    pub published: tokio::sync::watch::Receiver<std::sync::Arc<loupe_control::snapshot::Published>>,
    /// The CA's directory; removed with the test.
    pub ca_dir: tempfile::TempDir,
}

pub async fn control(pool: &PgPool) -> Running {
    let ca_dir = tempfile::tempdir().expect("CA directory");
    let ca = loupe_control::ca::CaOptions::new(ca_dir.path());
    control_with(pool, ca_dir, ca).await
}

/// A control plane whose CA lives in `ca_dir` with `ca`'s options; a
/// disconnected workload's endpoints leave at once (no grace).
pub async fn control_with(
    pool: &PgPool,
    ca_dir: tempfile::TempDir,
    ca: loupe_control::ca::CaOptions,
) -> Running {
    control_with_grace(pool, ca_dir, ca, Duration::ZERO).await
}

/// A control plane (own CA) whose departed workloads stay endpoints for `grace`.
pub async fn control_graced(pool: &PgPool, grace: Duration) -> Running {
    let ca_dir = tempfile::tempdir().expect("CA directory");
    let ca = loupe_control::ca::CaOptions::new(ca_dir.path());
    control_with_grace(pool, ca_dir, ca, grace).await
}

pub async fn control_with_grace(
    pool: &PgPool,
    ca_dir: tempfile::TempDir,
    ca: loupe_control::ca::CaOptions,
    grace: Duration,
) -> Running {
    let cp = ControlPlane::start_with_grace(pool.clone(), &ca, grace)
        .await
        .expect("start control plane");
    let root = std::fs::read_to_string(cp.ca().root_cert_path()).expect("root-cert.pem written");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let store = cp.store().clone();
    let registry = cp.registry().clone();
    let published = cp.subscribe();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(cp.serve(listener, async move {
        let _ = stopped.await;
    }));
    Running {
        addr,
        store,
        registry,
        pool: pool.clone(),
        root,
        stop: Some(stop),
        task,
        published,
        ca_dir,
    }
}

/// A request carrying `authorization: Bearer TOKEN` (when given).
pub fn authorized<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("ASCII token"),
        );
    }
    request
}

/// A WorkloadEntry that declares exactly what `hello` claims (address and
/// port from its inbound address, labels, service account), and a
/// ServiceEntry (`NAME.NS.svc.cluster.local`, port 9080 http, selecting
/// `app=NAME`) for each of its services.
pub fn declaration(hello: &Hello) -> String {
    let namespace = if hello.namespace.is_empty() {
        "default"
    } else {
        &hello.namespace
    };
    let (address, port) = hello
        .inbound_address
        .rsplit_once(':')
        .map(|(h, p)| (h.to_string(), p.to_string()))
        .unwrap_or_else(|| ("127.0.0.1".into(), String::new()));
    let ports = if port.is_empty() {
        String::new()
    } else {
        format!("  ports: {{http: {port}}}\n")
    };
    let labels: Vec<String> = hello
        .labels
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    let mut yaml = format!(
        "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {{name: {}, namespace: {namespace}}}\nspec:\n  address: {address}\n{ports}  labels: {{{}}}\n  serviceAccount: {}\n",
        hello.workload,
        labels.join(", "),
        hello.service_account
    );
    for service in &hello.services {
        yaml.push_str(&format!(
            "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: {service}, namespace: {namespace}}}\nspec:\n  hosts: [{service}.{namespace}.svc.cluster.local]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports: [{{number: 9080, name: http, protocol: HTTP}}]\n  workloadSelector: {{labels: {{app: {service}}}}}\n"
        ));
    }
    yaml
}

impl Running {
    /// Applies [`declaration`] of `hello` to the config store.
    pub async fn declare(&self, hello: &Hello) {
        self.store
            .apply(
                &format!("{}.yaml", hello.workload),
                &declaration(hello),
                "test",
            )
            .await
            .expect("declaration applied");
    }

    /// The endpoints of `host` in the latest published snapshot.
    pub fn published_endpoints(&self, host: &str) -> Vec<String> {
        endpoints(&self.published.borrow().snapshot, host)
    }

    /// A new bootstrap token for WorkloadEntry `namespace/name` (an empty
    /// namespace is `default`, as in a Hello).
    pub async fn token(&self, namespace: &str, name: &str) -> String {
        let namespace = if namespace.is_empty() {
            "default"
        } else {
            namespace
        };
        loupe_control::authn::BootstrapTokens::new(self.pool.clone())
            .issue(namespace, name)
            .await
            .expect("issue a token")
    }

    /// A gRPC channel over TLS that trusts the mesh root and checks the
    /// server's name (`localhost`).
    pub async fn channel(&self) -> Result<Channel, tonic::transport::Error> {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.root))
            .domain_name("localhost");
        Channel::from_shared(format!("https://{}", self.addr))
            .expect("endpoint URI")
            .tls_config(tls)?
            .connect()
            .await
    }

    /// Ends the server as `kill -9` would: no goodbye, the table left as it was.
    pub async fn crash(mut self) {
        self.stop.take();
        self.task.abort();
        let _ = self.task.await;
    }

    /// Stops the server and waits until it has shut down.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("control plane stops within 10 s")
            .expect("serve task")
            .expect("serve result");
    }
}

/// The metrics (admin) address of a test workload: its inbound host, port + 10000.
pub fn metrics_of(inbound: &str) -> String {
    match inbound.rsplit_once(':') {
        Some((host, port)) => {
            let port: u16 = port.parse().expect("test port");
            format!("{host}:{}", port + 10000)
        }
        None => String::new(),
    }
}

pub fn hello(workload: &str, version: &str, service: &str, inbound: &str) -> Hello {
    Hello {
        workload: workload.into(),
        namespace: "default".into(),
        service_account: format!("bookinfo-{service}"),
        labels: [("app", service), ("version", version)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        inbound_address: inbound.into(),
        metrics_address: metrics_of(inbound),
        services: vec![service.into()],
        gateway: false,
    }
}

/// A proxy stand-in on a real gRPC stream.
pub struct Proxy {
    pub tx: mpsc::Sender<ProxyMessage>,
    pub snapshots: tonic::Streaming<Snapshot>,
}

impl Proxy {
    /// Declares the Hello's workload (see [`declaration`]) and connects
    /// with a token of its WorkloadEntry.
    pub async fn connect(cp: &Running, hello: Hello) -> Proxy {
        cp.declare(&hello).await;
        let token = cp.token(&hello.namespace, &hello.workload).await;
        let (tx, snapshots) = Self::open_as(cp, Some(&token), Message::Hello(hello))
            .await
            .expect("stream accepted");
        Proxy { tx, snapshots }
    }

    /// Connects with `token`, declaring nothing.
    pub async fn connect_with_token(cp: &Running, token: &str, hello: Hello) -> Proxy {
        let (tx, snapshots) = Self::open_as(cp, Some(token), Message::Hello(hello))
            .await
            .expect("stream accepted");
        Proxy { tx, snapshots }
    }

    /// Opens a stream whose first message is `first`, with a token of
    /// WorkloadEntry default/reviews-v1.
    pub async fn open(
        cp: &Running,
        first: Message,
    ) -> Result<(mpsc::Sender<ProxyMessage>, tonic::Streaming<Snapshot>), tonic::Status> {
        let token = cp.token("default", "reviews-v1").await;
        Self::open_as(cp, Some(&token), first).await
    }

    /// Opens a stream with `token` (none: no authorization metadata).
    pub async fn open_as(
        cp: &Running,
        token: Option<&str>,
        first: Message,
    ) -> Result<(mpsc::Sender<ProxyMessage>, tonic::Streaming<Snapshot>), tonic::Status> {
        let channel = cp.channel().await.expect("connect to the control plane");
        let mut client = DiscoveryClient::new(channel);
        let (tx, rx) = mpsc::channel(8);
        tx.send(ProxyMessage {
            message: Some(first),
        })
        .await
        .expect("queue first message");
        let response = client
            .stream(authorized(ReceiverStream::new(rx), token))
            .await?;
        Ok((tx, response.into_inner()))
    }

    /// The next snapshot (fails the test after 5 s).
    pub async fn next(&mut self) -> Snapshot {
        tokio::time::timeout(Duration::from_secs(5), self.snapshots.message())
            .await
            .expect("a snapshot within 5 s")
            .expect("stream healthy")
            .expect("stream open")
    }

    /// Skips snapshots until one satisfies `pred` (fails the test after `within`).
    pub async fn until(&mut self, within: Duration, pred: impl Fn(&Snapshot) -> bool) -> Snapshot {
        tokio::time::timeout(within, async {
            loop {
                let s = self.next().await;
                if pred(&s) {
                    return s;
                }
            }
        })
        .await
        .expect("the awaited snapshot arrived in time")
    }

    pub async fn ack(&self, version: u64) {
        self.send(Message::Ack(Ack { version })).await;
    }

    pub async fn nack(&self, version: u64, error: &str) {
        self.send(Message::Nack(Nack {
            version,
            error: error.into(),
        }))
        .await;
    }

    async fn send(&self, m: Message) {
        self.tx
            .send(ProxyMessage { message: Some(m) })
            .await
            .expect("stream open");
    }
}

/// The snapshot's resources other than the ServiceEntries tests declare.
pub fn config_resources(s: &Snapshot) -> Vec<&loupe_push::Resource> {
    s.resources
        .iter()
        .filter(|r| r.kind != "ServiceEntry")
        .collect()
}

/// Endpoint addresses of `host` in a snapshot, sorted.
pub fn endpoints(s: &Snapshot, host: &str) -> Vec<String> {
    let mut out: Vec<String> = s
        .services
        .iter()
        .filter(|svc| svc.host == host)
        .flat_map(|svc| svc.endpoints.iter().map(|e| e.address.clone()))
        .collect();
    out.sort();
    out
}

/// Polls `f` until it is true (fails the test after `within`).
pub async fn eventually<F, Fut>(within: Duration, what: &str, f: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
