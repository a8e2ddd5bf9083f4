//! TLS origination (DestinationRule `tls.mode` SIMPLE and MUTUAL), as in
//! Istio's egress TLS origination task: the app sends plain HTTP to a host
//! outside the mesh, the sidecar opens TLS to it. The server is Python's own
//! `ssl` + `http.server` (`fixtures/tls_server.py`), which reports the SNI it
//! got and the client certificate it was shown.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use loupe_push::{Resource, Service, Snapshot};
use support::*;

const HOST: &str = "secure.example.test";

/// The external server, stopped when dropped.
struct TlsServer {
    child: Child,
    addr: std::net::SocketAddr,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TlsServer {
    fn start(cert: &Path, key: &Path, client_ca: Option<&Path>) -> TlsServer {
        let port = free_port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls_server.py");
        let mut cmd = Command::new("python3");
        cmd.arg(script).arg(port.to_string()).arg(cert).arg(key);
        if let Some(ca) = client_ca {
            cmd.arg(ca);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
            &mut line,
        )
        .expect("the server says ready");
        assert_eq!(line.trim(), "ready");
        TlsServer {
            child,
            addr: addr(port),
        }
    }
}

/// Certificates on disk: the server's CA and its certificate for [`HOST`],
/// a client CA and a client certificate, and an unrelated CA.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        let dir = tempfile::tempdir().expect("temp dir");
        let server_ca = TestCa::new("server ca");
        let client_ca = TestCa::new("client ca");
        let other_ca = TestCa::new("other ca");
        let (cert, key) = server_ca.dns_leaf(HOST, HOST);
        let (client_cert, client_key) = client_ca.dns_leaf("client.local", "productpage-client");
        for (name, pem) in [
            ("server-ca.pem", server_ca.root_pem()),
            ("client-ca.pem", client_ca.root_pem()),
            ("other-ca.pem", other_ca.root_pem()),
            ("server.pem", cert),
            ("server-key.pem", key),
            ("client.pem", client_cert),
            ("client-key.pem", client_key),
        ] {
            std::fs::write(dir.path().join(name), pem).expect("write PEM");
        }
        Files { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn s(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

/// The external host as a ServiceEntry's registry entry: one endpoint, no sidecar.
fn external(server: &TlsServer) -> Service {
    let mut e = endpoint(server.addr, "secure-external", "secure", "v1");
    e.identity = String::new();
    Service {
        host: HOST.to_string(),
        endpoints: vec![e],
        ..Default::default()
    }
}

fn tls_rule(tls: serde_json::Value) -> Resource {
    resource(
        "DestinationRule",
        "secure",
        serde_json::json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": "secure", "namespace": "default"},
            "spec": {"host": HOST, "trafficPolicy": {"tls": tls}},
        }),
    )
}

fn snapshot(version: u64, server: &TlsServer, tls: serde_json::Value) -> Snapshot {
    Snapshot {
        version,
        resources: vec![tls_rule(tls)],
        services: vec![external(server)],
        mesh: None,
        jwks: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_originates_tls_verified_by_ca_and_name() {
    let files = Files::new();
    let server = TlsServer::start(
        &files.path("server.pem"),
        &files.path("server-key.pem"),
        None,
    );
    let control = ControlPlane::start().await;
    let proxy =
        ProxySpec::sidecar("productpage-v1", "productpage", "v1", &control.url()).with_outbound();
    let _task = proxy.spawn_task();
    let outbound = proxy.outbound.expect("outbound");

    // SIMPLE with the server's CA: plain HTTP in, TLS out, SNI the host.
    control.push(snapshot(
        1,
        &server,
        serde_json::json!({"mode": "SIMPLE", "caCertificates": files.s("server-ca.pem")}),
    ));
    proxy.wait_ready().await;
    control.wait_ack(1, 1).await;
    let (status, body) = get(outbound, HOST, "/").await.expect("answer");
    assert_eq!(
        (status, body.as_str()),
        (200, "sni=secure.example.test client=none")
    );

    // A CA that did not sign the server: refused, nothing reaches the app.
    control.push(snapshot(
        2,
        &server,
        serde_json::json!({"mode": "SIMPLE", "caCertificates": files.s("other-ca.pem")}),
    ));
    control.wait_ack(2, 1).await;
    let (status, body) = get(outbound, HOST, "/").await.expect("answer");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("TLS"), "the answer says why: {body}");

    // subjectAltNames the certificate does not carry: refused; ones it does: served.
    control.push(snapshot(
        3,
        &server,
        serde_json::json!({"mode": "SIMPLE", "caCertificates": files.s("server-ca.pem"),
                           "subjectAltNames": ["other.example.test"]}),
    ));
    control.wait_ack(3, 1).await;
    let (status, _) = get(outbound, HOST, "/").await.expect("answer");
    assert_eq!(status, 503);
    control.push(snapshot(
        4,
        &server,
        serde_json::json!({"mode": "SIMPLE", "caCertificates": files.s("server-ca.pem"),
                           "subjectAltNames": ["other.example.test", HOST]}),
    ));
    control.wait_ack(4, 1).await;
    let (status, _) = get(outbound, HOST, "/").await.expect("answer");
    assert_eq!(status, 200);

    // `sni` is sent as given; the name checked is then that one.
    control.push(snapshot(
        5,
        &server,
        serde_json::json!({"mode": "SIMPLE", "caCertificates": files.s("server-ca.pem"),
                           "sni": "alias.example.test", "subjectAltNames": [HOST]}),
    ));
    control.wait_ack(5, 1).await;
    let (status, body) = get(outbound, HOST, "/").await.expect("answer");
    assert_eq!(
        (status, body.as_str()),
        (200, "sni=alias.example.test client=none")
    );

    // insecureSkipVerify: any chain.
    control.push(snapshot(
        6,
        &server,
        serde_json::json!({"mode": "SIMPLE", "caCertificates": files.s("other-ca.pem"),
                           "insecureSkipVerify": true}),
    ));
    control.wait_ack(6, 1).await;
    let (status, _) = get(outbound, HOST, "/").await.expect("answer");
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_presents_the_client_certificate_and_a_bad_file_is_nacked() {
    let files = Files::new();
    let server = TlsServer::start(
        &files.path("server.pem"),
        &files.path("server-key.pem"),
        Some(&files.path("client-ca.pem")),
    );
    let control = ControlPlane::start().await;
    let proxy =
        ProxySpec::sidecar("productpage-v1", "productpage", "v1", &control.url()).with_outbound();
    let _task = proxy.spawn_task();
    let outbound = proxy.outbound.expect("outbound");

    // SIMPLE to a server that requires a client certificate: refused by it.
    control.push(snapshot(
        1,
        &server,
        serde_json::json!({"mode": "SIMPLE", "caCertificates": files.s("server-ca.pem")}),
    ));
    proxy.wait_ready().await;
    control.wait_ack(1, 1).await;
    let (status, _) = get(outbound, HOST, "/").await.expect("answer");
    assert_ne!(status, 200, "no client certificate, no answer");

    control.push(snapshot(
        2,
        &server,
        serde_json::json!({"mode": "MUTUAL", "caCertificates": files.s("server-ca.pem"),
                           "clientCertificate": files.s("client.pem"),
                           "privateKey": files.s("client-key.pem")}),
    ));
    control.wait_ack(2, 1).await;
    let (status, body) = get(outbound, HOST, "/").await.expect("answer");
    assert_eq!(
        (status, body.as_str()),
        (200, "sni=secure.example.test client=productpage-client")
    );

    // A key file that is not there: the snapshot is refused, naming the
    // rule and the file, and the last good config keeps serving.
    let missing = files.s("missing-key.pem");
    control.push(snapshot(
        3,
        &server,
        serde_json::json!({"mode": "MUTUAL", "caCertificates": files.s("server-ca.pem"),
                           "clientCertificate": files.s("client.pem"),
                           "privateKey": missing}),
    ));
    let error = eventually("a NACK of version 3", Duration::from_secs(5), || async {
        control.nack(3)
    })
    .await;
    assert!(
        error.contains("DestinationRule/default/secure") && error.contains("missing-key.pem"),
        "{error}"
    );
    let (status, body) = get(outbound, HOST, "/").await.expect("answer");
    assert_eq!(
        (status, body.as_str()),
        (200, "sni=secure.example.test client=productpage-client")
    );
}
