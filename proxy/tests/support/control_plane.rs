//! A Discovery server that pushes the snapshots a test sets and records
//! what proxies said (Hello, ACK, NACK).

#![allow(dead_code)]

use super::*;

/// What proxies told the control plane.
#[derive(Default)]
pub struct Seen {
    pub hellos: Vec<Hello>,
    pub acks: Vec<u64>,
    pub nacks: Vec<(u64, String)>,
}

/// A Discovery server that pushes whatever snapshot the test sets.
#[derive(Clone)]
pub struct ControlPlane {
    snapshot: watch::Sender<Option<Snapshot>>,
    pub seen: Arc<Mutex<Seen>>,
    pub addr: SocketAddr,
    /// The CA behind `Certificates.CreateCertificate`.
    pub ca: Arc<TestCa>,
    runtime: Arc<Mutex<RuntimeGuard>>,
}

/// Shuts its runtime down without blocking (tests drop it in async code).
struct RuntimeGuard(Option<tokio::runtime::Runtime>);

impl Drop for RuntimeGuard {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

struct DiscoveryPeer {
    snapshot: watch::Receiver<Option<Snapshot>>,
    seen: Arc<Mutex<Seen>>,
}

type SnapshotStream = Pin<Box<dyn Stream<Item = Result<Snapshot, tonic::Status>> + Send>>;

#[tonic::async_trait]
impl Discovery for DiscoveryPeer {
    type StreamStream = SnapshotStream;

    async fn stream(
        &self,
        request: tonic::Request<tonic::Streaming<ProxyMessage>>,
    ) -> Result<tonic::Response<Self::StreamStream>, tonic::Status> {
        let mut incoming = request.into_inner();
        let seen = self.seen.clone();
        tokio::spawn(async move {
            while let Ok(Some(msg)) = incoming.message().await {
                let mut seen = seen.lock().expect("seen lock");
                match msg.message {
                    Some(Message::Hello(h)) => seen.hellos.push(h),
                    Some(Message::Ack(a)) => seen.acks.push(a.version),
                    Some(Message::Nack(n)) => seen.nacks.push((n.version, n.error)),
                    None => {}
                }
            }
        });
        let out = WatchStream::new(self.snapshot.clone()).filter_map(|s| s.map(Ok));
        Ok(tonic::Response::new(Box::pin(out)))
    }
}

impl ControlPlane {
    pub async fn start() -> ControlPlane {
        Self::start_on(0).await
    }

    /// Serves on `port` (0: any) from a runtime of its own, so that
    /// [`ControlPlane::stop`] can drop every connection at once, as a
    /// crashed control plane would.
    pub async fn start_on(port: u16) -> ControlPlane {
        Self::start_with(
            port,
            watch::channel(None).0,
            Arc::default(),
            Arc::new(TestCa::new("loupe test mesh")),
        )
    }

    /// Serves on a listener the test bound (e.g. inside a network namespace).
    pub fn start_on_listener(listener: std::net::TcpListener) -> ControlPlane {
        Self::serve(
            listener,
            watch::channel(None).0,
            Arc::default(),
            Arc::new(TestCa::new("loupe test mesh")),
        )
    }

    fn start_with(
        port: u16,
        snapshot: watch::Sender<Option<Snapshot>>,
        seen: Arc<Mutex<Seen>>,
        ca: Arc<TestCa>,
    ) -> ControlPlane {
        let listener = std::net::TcpListener::bind(addr(port)).expect("bind control plane");
        Self::serve(listener, snapshot, seen, ca)
    }

    fn serve(
        listener: std::net::TcpListener,
        snapshot: watch::Sender<Option<Snapshot>>,
        seen: Arc<Mutex<Seen>>,
        ca: Arc<TestCa>,
    ) -> ControlPlane {
        listener.set_nonblocking(true).expect("nonblocking");
        let local = listener.local_addr().expect("control addr");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("control plane runtime");
        let peer = DiscoveryPeer {
            snapshot: snapshot.subscribe(),
            seen: seen.clone(),
        };
        let certificates = CaService {
            ca: ca.clone(),
            default_ttl: Duration::from_secs(3600),
        };
        runtime.spawn(async move {
            let listener = TcpListener::from_std(listener).expect("tokio listener");
            tonic::transport::Server::builder()
                .add_service(DiscoveryServer::new(peer))
                .add_service(loupe_push::certificates_server::CertificatesServer::new(
                    certificates,
                ))
                .serve_with_incoming(TcpListenerStream::new(listener))
                .await
        });
        ControlPlane {
            snapshot,
            seen,
            addr: local,
            ca,
            runtime: Arc::new(Mutex::new(RuntimeGuard(Some(runtime)))),
        }
    }

    /// Kills the server and every stream it has.
    pub fn stop(&self) {
        if let Some(rt) = self.runtime.lock().expect("runtime").0.take() {
            rt.shutdown_background();
        }
    }

    /// A new server on the same port, with the same snapshot and record.
    pub fn restart(&self) -> ControlPlane {
        self.stop();
        Self::start_with(
            self.addr.port(),
            self.snapshot.clone(),
            self.seen.clone(),
            self.ca.clone(),
        )
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn push(&self, snapshot: Snapshot) {
        self.snapshot.send_replace(Some(snapshot));
    }

    pub fn acked(&self, version: u64) -> bool {
        self.seen.lock().expect("seen").acks.contains(&version)
    }

    pub fn nack(&self, version: u64) -> Option<String> {
        self.seen
            .lock()
            .expect("seen")
            .nacks
            .iter()
            .find(|(v, _)| *v == version)
            .map(|(_, e)| e.clone())
    }

    /// Waits until every proxy connected so far (`proxies` of them) ACKed `version`.
    pub async fn wait_ack(&self, version: u64, proxies: usize) {
        eventually(
            &format!("{proxies} ACKs of version {version}"),
            Duration::from_secs(10),
            || async {
                let n = self
                    .seen
                    .lock()
                    .expect("seen")
                    .acks
                    .iter()
                    .filter(|v| **v == version)
                    .count();
                (n >= proxies).then_some(())
            },
        )
        .await
    }
}
