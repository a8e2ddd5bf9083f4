//! Transparent capture, across real processes in network namespaces this
//! test creates (every address, virtual IPs included, lives inside them; no
//! route leaves the machine): two workloads, each with `loupe-proxy
//! iptables` run in its namespace and a `loupe-proxy --capture` as UID 1337;
//! the test's control plane inside a third ("hub") namespace. Clients
//! nobody here wrote reach services by name with no proxy configured
//! anywhere: `curl http://reviews:9080/` (a Python HTTP server behind the
//! reviews sidecar) and `psql -h db` (a real PostgreSQL server, as TCP),
//! names answered by the sidecar's DNS proxy; sidecar to sidecar is mTLS.
//! Also grpcio and a WebSocket client, passthrough to a non-service, and
//! PeerAuthentication STRICT closing plaintext on the app's captured port.
//! Needs root, `ip`, `iptables`, `curl`, `python3`, PostgreSQL: the test
//! setup (`scripts/setup.sh`) installs them.

mod support;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use loupe_push::{Endpoint, Service, ServicePort, Snapshot};
use support::*;

const VIP_REVIEWS: &str = "10.96.0.10";
const VIP_DB: &str = "10.96.0.11";
const VIP_GRPC: &str = "10.96.0.13";
const HUB_IP: &str = "10.233.0.1";
const CLIENT_IP: &str = "10.233.0.2";
const SERVER_IP: &str = "10.233.0.3";

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `ip netns exec NS CMD…`, its output.
fn exec(ns: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["netns", "exec", ns];
    all.extend(args);
    Command::new("ip")
        .args(all)
        .output()
        .expect("ip netns exec")
}

/// curl's HTTP status for `url` from inside `ns` (`000`: no response).
fn http_code(ns: &str, url: &str) -> String {
    let out = exec(
        ns,
        &[
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
            url,
        ],
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The namespaces, their processes and files; all removed on drop.
struct Mesh {
    hub: String,
    client: String,
    server: String,
    dir: PathBuf,
    children: Vec<Child>,
}

impl Drop for Mesh {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.client, &self.server, &self.hub] {
            // Stops whatever still runs inside (e.g. postgres children).
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
            let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(ns));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Mesh {
    fn create() -> Mesh {
        let id = std::process::id();
        let mesh = Mesh {
            hub: format!("lc{id}h"),
            client: format!("lc{id}a"),
            server: format!("lc{id}b"),
            dir: std::env::temp_dir().join(format!("loupe-capture-{id}")),
            children: Vec::new(),
        };
        std::fs::create_dir_all(&mesh.dir).expect("dir");
        std::fs::set_permissions(&mesh.dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let hub = mesh.hub.as_str();
        run("ip", &["netns", "add", hub]);
        run("ip", &["-n", hub, "link", "set", "lo", "up"]);
        run("ip", &["-n", hub, "link", "add", "br0", "type", "bridge"]);
        run(
            "ip",
            &[
                "-n",
                hub,
                "addr",
                "add",
                &format!("{HUB_IP}/24"),
                "dev",
                "br0",
            ],
        );
        run("ip", &["-n", hub, "link", "set", "br0", "up"]);
        for (ns, ip, port) in [
            (&mesh.client, CLIENT_IP, "va"),
            (&mesh.server, SERVER_IP, "vb"),
        ] {
            run("ip", &["netns", "add", ns]);
            run("ip", &["-n", ns, "link", "set", "lo", "up"]);
            run(
                "ip",
                &[
                    "-n", hub, "link", "add", port, "type", "veth", "peer", "name", "eth0",
                    "netns", ns,
                ],
            );
            run(
                "ip",
                &["-n", hub, "link", "set", port, "master", "br0", "up"],
            );
            run(
                "ip",
                &["-n", ns, "addr", "add", &format!("{ip}/24"), "dev", "eth0"],
            );
            run("ip", &["-n", ns, "link", "set", "eth0", "up"]);
            // The services' virtual IPs: routed to the link (the capture
            // redirects them before any packet leaves).
            run(
                "ip",
                &["-n", ns, "route", "add", "10.96.0.0/16", "dev", "eth0"],
            );
            // What `ip netns exec` mounts as /etc/resolv.conf inside.
            let etc = Path::new("/etc/netns").join(ns);
            std::fs::create_dir_all(&etc).expect("/etc/netns");
            std::fs::write(
                etc.join("resolv.conf"),
                format!("nameserver {HUB_IP}\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5 timeout:2 attempts:1\n"),
            )
            .expect("resolv.conf");
        }
        mesh
    }

    /// A control plane listening inside the hub namespace: a thread enters
    /// it, binds, and the socket stays there when the thread is gone.
    fn control_plane(&self) -> ControlPlane {
        let path = format!("/run/netns/{}", self.hub);
        let listener = std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).expect("open netns");
            nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            std::net::TcpListener::bind((HUB_IP, 0)).expect("bind in hub")
        })
        .join()
        .expect("bind thread");
        ControlPlane::start_on_listener(listener)
    }

    fn spawn(&mut self, ns: &str, args: &[&str], log: &str) {
        let log = std::fs::File::create(self.dir.join(log)).expect("log");
        let mut all = vec!["netns", "exec", ns];
        all.extend(args);
        let child = Command::new("ip")
            .args(all)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn in netns");
        self.children.push(child);
    }

    /// The init command, then the sidecar as UID 1337, as Istio runs them.
    fn sidecar(&mut self, ns: &str, workload: &str, app: &str, ip: &str, control: &str) {
        let ns = ns.to_string();
        let proxy = self.dir.join("loupe-proxy");
        if !proxy.exists() {
            std::fs::copy(env!("CARGO_BIN_EXE_loupe-proxy"), &proxy).expect("copy proxy");
            std::fs::set_permissions(&proxy, std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
        }
        let proxy = proxy.display().to_string();
        let out = exec(
            &ns,
            &[
                &proxy,
                "iptables",
                "-p",
                "15001",
                "-z",
                "15006",
                "-u",
                "1337",
                "-m",
                "REDIRECT",
                "-i",
                "*",
                "-x",
                "",
                "-b",
                "*",
                "-d",
                "15090,15021,15020",
                "--redirect-dns",
            ],
        );
        assert!(
            out.status.success(),
            "iptables init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let token = self.dir.join(format!("{workload}.token"));
        std::fs::write(&token, "test-token").expect("token");
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let token = token.display().to_string();
        let args: Vec<String> = [
            "env",
            "RUST_LOG=loupe_proxy=debug,info",
            "setpriv",
            "--reuid=1337",
            "--regid=1337",
            "--clear-groups",
            &proxy,
            "--capture",
            "--workload",
            workload,
            "--namespace",
            "default",
            "--service-account",
            &format!("bookinfo-{app}"),
            "--label",
            &format!("app={app}"),
            "--label",
            "version=v1",
            "--control",
            control,
            "--token-file",
            &token,
            "--pod-ip",
            ip,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.spawn(&ns, &args, &format!("{workload}.log"));
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    fn metrics(&self, ns: &str) -> String {
        let out = exec(
            ns,
            &["curl", "-s", "http://127.0.0.1:15090/stats/prometheus"],
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn endpoint(address: &str, port: u32, workload: &str, app: &str) -> Endpoint {
    Endpoint {
        address: format!("{address}:{port}"),
        labels: HashMap::from([
            ("app".to_string(), app.to_string()),
            ("security.istio.io/tlsMode".to_string(), "istio".to_string()),
        ]),
        workload: workload.to_string(),
        namespace: "default".to_string(),
        service_account: format!("bookinfo-{app}"),
        identity: format!("spiffe://cluster.local/ns/default/sa/bookinfo-{app}"),
        service_port: port,
    }
}

fn service(
    host: &str,
    vip: &str,
    port: u32,
    name: &str,
    protocol: &str,
    endpoints: Vec<Endpoint>,
) -> Service {
    Service {
        host: format!("{host}.default.svc.cluster.local"),
        endpoints,
        addresses: vec![vip.to_string()],
        ports: vec![ServicePort {
            number: port,
            name: name.to_string(),
            protocol: protocol.to_string(),
        }],
    }
}

/// The sum of a counter's series whose labels include all of `labels`.
fn counter(metrics: &str, name: &str, labels: &[(&str, &str)]) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// A Python with grpcio and websockets (PyPI), made once under the cargo cache.
fn python_with_clients() -> String {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let venv = Path::new(&home).join(".cache/loupe/venv-py");
    let python = venv.join("bin/python");
    let ready = Command::new(&python)
        .args(["-c", "import grpc, websockets"])
        .status()
        .is_ok_and(|s| s.success());
    if !ready {
        run("python3", &["-m", "venv", &venv.display().to_string()]);
        run(
            &venv.join("bin/pip").display().to_string(),
            &["install", "-q", "grpcio", "websockets"],
        );
    }
    python.display().to_string()
}

fn grpc_call(ns: &str, python: &str, text: &str) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/grpc_echo.py");
    let out = exec(
        ns,
        &[
            "env",
            "GRPC_DNS_RESOLVER=native",
            python,
            script,
            "call",
            "grpc-echo:50051",
            text,
        ],
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout).trim(),
        if out.status.success() {
            String::new()
        } else {
            String::from_utf8_lossy(&out.stderr).into_owned()
        }
    )
}

/// A PostgreSQL server inside `ns`, on 127.0.0.1:5432, trusting local TCP.
fn start_postgres(mesh: &mut Mesh) {
    let bin = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (scripts/setup.sh)")
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .find(|p| p.join("initdb").exists())
        .expect("initdb");
    let data = mesh.dir.join("pg");
    run("mkdir", &["-p", &data.display().to_string()]);
    run("chown", &["postgres:postgres", &data.display().to_string()]);
    run(
        "runuser",
        &[
            "-u",
            "postgres",
            "--",
            &bin.join("initdb").display().to_string(),
            "-D",
            &data.display().to_string(),
            "-A",
            "trust",
            "--no-sync",
            "-U",
            "postgres",
        ],
    );
    let server = mesh.server.clone();
    let postgres = bin.join("postgres").display().to_string();
    let data = data.display().to_string();
    mesh.spawn(
        &server,
        &[
            "runuser",
            "-u",
            "postgres",
            "--",
            &postgres,
            "-D",
            &data,
            "-k",
            &data,
            "-p",
            "5432",
            "-c",
            "listen_addresses=127.0.0.1",
        ],
        "postgres.log",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captured_apps_reach_services_by_name_over_mtls_http_and_tcp() {
    let mut mesh = Mesh::create();
    let control = mesh.control_plane();
    let url = control.url();

    // The server workload: an HTTP app and a PostgreSQL server.
    let server = mesh.server.clone();
    mesh.spawn(
        &server,
        &[
            "python3",
            "-m",
            "http.server",
            "9080",
            "--bind",
            "127.0.0.1",
        ],
        "http.log",
    );
    start_postgres(&mut mesh);
    let python = python_with_clients();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/grpc_echo.py");
    mesh.spawn(&server, &[&python, script, "serve", "50051"], "grpc.log");
    let ws_script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ws_echo.py");
    mesh.spawn(&server, &[&python, ws_script, "serve", "8765"], "ws.log");
    let client = mesh.client.clone();
    mesh.sidecar(&server, "reviews-v1", "reviews", SERVER_IP, &url);
    mesh.sidecar(&client, "productpage-v1", "productpage", CLIENT_IP, &url);

    let services = vec![
        service(
            "reviews",
            VIP_REVIEWS,
            9080,
            "http",
            "HTTP",
            vec![endpoint(SERVER_IP, 9080, "reviews-v1", "reviews")],
        ),
        service(
            "db",
            VIP_DB,
            5432,
            "tcp-postgres",
            "TCP",
            vec![endpoint(SERVER_IP, 5432, "reviews-v1", "reviews")],
        ),
        service(
            "ws-echo",
            "10.96.0.14",
            8765,
            "http-ws",
            "",
            vec![endpoint(SERVER_IP, 8765, "reviews-v1", "reviews")],
        ),
        service(
            "grpc-echo",
            VIP_GRPC,
            50051,
            "grpc",
            "GRPC",
            vec![endpoint(SERVER_IP, 50051, "reviews-v1", "reviews")],
        ),
        service(
            "productpage",
            "10.96.0.12",
            9080,
            "http",
            "HTTP",
            vec![endpoint(CLIENT_IP, 9080, "productpage-v1", "productpage")],
        ),
    ];
    control.push(Snapshot {
        version: 1,
        services: services.clone(),
        ..Default::default()
    });
    eventually(
        "both sidecars ACK and hold certificates",
        Duration::from_secs(20),
        || async {
            let ready = |ns: &str| {
                exec(ns, &["curl", "-sf", "http://127.0.0.1:15021/healthz/ready"])
                    .status
                    .success()
            };
            (control.acked(1) && ready(&client) && ready(&server)).then_some(())
        },
    )
    .await;

    // DNS: the service name resolves to its virtual IP, inside the namespace.
    let out = exec(&client, &["getent", "hosts", "reviews"]);
    let hosts = String::from_utf8_lossy(&out.stdout);
    assert!(
        hosts.starts_with(VIP_REVIEWS),
        "getent hosts reviews: {hosts:?} {}",
        mesh.log("productpage-v1.log")
    );

    // HTTP by name: curl knows nothing of any proxy.
    let code = http_code(&client, "http://reviews:9080/");
    assert_eq!(
        code,
        "200",
        "curl http://reviews:9080/: {code:?}\n{}\n{}",
        mesh.log("productpage-v1.log"),
        mesh.log("reviews-v1.log")
    );

    // TCP by name: psql to PostgreSQL through both sidecars.
    let out = exec(
        &client,
        &[
            "psql",
            "-h",
            "db",
            "-p",
            "5432",
            "-U",
            "postgres",
            "-At",
            "-c",
            "select 40 + 2",
        ],
    );
    let answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(
        answer,
        "42",
        "psql -h db: {answer:?} {}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        mesh.log("productpage-v1.log"),
        mesh.log("reviews-v1.log")
    );

    // gRPC by name, from grpcio: a reply, and the app's error status.
    assert_eq!(
        grpc_call(&client, &python, "hello"),
        "echo:hello",
        "{}",
        mesh.log("productpage-v1.log")
    );
    assert_eq!(grpc_call(&client, &python, "deny"), "PERMISSION_DENIED");

    // WebSocket by name: the HTTP upgrade crosses both sidecars, then
    // messages flow both ways on the upgraded connection.
    let out = exec(
        &client,
        &[&python, ws_script, "call", "ws://ws-echo:8765/", "m"],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "m0 m1 m2",
        "websocket: {}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        mesh.log("productpage-v1.log"),
        mesh.log("reviews-v1.log")
    );

    // What the sidecars report.
    let client_metrics = mesh.metrics(&client);
    let server_metrics = mesh.metrics(&server);
    let reviews = "reviews.default.svc.cluster.local";
    let db = "db.default.svc.cluster.local";
    assert!(
        counter(
            &client_metrics,
            "istio_requests_total",
            &[
                ("reporter", "source"),
                ("destination_service", reviews),
                ("response_code", "200")
            ]
        ) >= 1,
        "{client_metrics}"
    );
    assert!(
        counter(
            &server_metrics,
            "istio_requests_total",
            &[
                ("reporter", "destination"),
                ("source_workload", "productpage-v1"),
                ("connection_security_policy", "mutual_tls"),
                ("response_code", "200")
            ]
        ) >= 1,
        "{server_metrics}"
    );
    assert!(
        counter(
            &server_metrics,
            "istio_requests_total",
            &[
                ("reporter", "destination"),
                ("destination_service", "ws-echo.default.svc.cluster.local"),
                ("response_code", "101"),
                ("connection_security_policy", "mutual_tls"),
            ]
        ) >= 1,
        "the WebSocket upgrade (101) in\n{server_metrics}"
    );
    let grpc = "grpc-echo.default.svc.cluster.local";
    for (metrics, reporter) in [
        (&client_metrics, "source"),
        (&server_metrics, "destination"),
    ] {
        for status in ["0", "7"] {
            assert!(
                counter(
                    metrics,
                    "istio_requests_total",
                    &[
                        ("reporter", reporter),
                        ("destination_service", grpc),
                        ("grpc_response_status", status),
                        ("response_code", "200")
                    ]
                ) >= 1,
                "grpc_response_status={status} ({reporter}) in\n{metrics}"
            );
        }
    }
    for (name, at_least) in [
        ("istio_tcp_connections_opened_total", 1),
        ("istio_tcp_connections_closed_total", 1),
        ("istio_tcp_sent_bytes_total", 8),
        ("istio_tcp_received_bytes_total", 8),
    ] {
        assert!(
            counter(
                &client_metrics,
                name,
                &[
                    ("reporter", "source"),
                    ("destination_service", db),
                    ("request_protocol", "tcp")
                ]
            ) >= at_least,
            "{name} (source) in\n{client_metrics}"
        );
        assert!(
            counter(
                &server_metrics,
                name,
                &[
                    ("reporter", "destination"),
                    ("destination_service", db),
                    ("connection_security_policy", "mutual_tls"),
                    (
                        "source_principal",
                        "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"
                    )
                ]
            ) >= at_least,
            "{name} (destination) in\n{server_metrics}"
        );
    }

    // A destination that is no service passes through (ALLOW_ANY).
    let _ = exec(
        &client,
        &[
            "curl",
            "-s",
            "--max-time",
            "3",
            &format!("http://{HUB_IP}:9/"),
        ],
    );
    let client_metrics = mesh.metrics(&client);
    assert!(
        counter(
            &client_metrics,
            "loupe_proxy_passthrough_connections_total",
            &[]
        ) >= 1,
        "{client_metrics}"
    );

    // PeerAuthentication: a plaintext client without a sidecar (in the hub)
    // reaches the app's captured port under PERMISSIVE, not under STRICT —
    // while the client's sidecar, over mTLS, still does.
    let plain = |mesh: &Mesh| http_code(&mesh.hub, &format!("http://{SERVER_IP}:9080/"));
    assert_eq!(plain(&mesh), "200", "PERMISSIVE serves plaintext");
    control.push(Snapshot {
        version: 2,
        resources: vec![resource(
            "PeerAuthentication",
            "default",
            serde_json::json!({
                "apiVersion": "security.istio.io/v1",
                "kind": "PeerAuthentication",
                "metadata": {"name": "default", "namespace": "default"},
                "spec": {"mtls": {"mode": "STRICT"}},
            }),
        )],
        services,
        ..Default::default()
    });
    control.wait_ack(2, 2).await;
    assert_eq!(
        plain(&mesh),
        "000",
        "STRICT closes plaintext on the captured port"
    );
    assert_eq!(
        http_code(&client, "http://reviews:9080/"),
        "200",
        "mTLS through the sidecars still passes"
    );
    let server_metrics = mesh.metrics(&server);
    assert!(
        counter(
            &server_metrics,
            "loupe_proxy_inbound_plaintext_refused_total",
            &[]
        ) >= 1,
        "{server_metrics}"
    );
}
