//! Mesh mTLS between real sidecars with certificates from a CA: STRICT
//! refuses plaintext, only mesh certificates get in, secure naming refuses
//! an endpoint with the wrong identity, authorization and metrics use the
//! certificate's principal (never a header), certificates rotate under load
//! without failures, and DestinationRule / PeerAuthentication DISABLE turn
//! mTLS off where Istio would.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use loupe_push::{Resource, Snapshot};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::json;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const REVIEWS: &str = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews";

fn peer_authentication(namespace: &str, name: &str, mode: &str) -> Resource {
    Resource {
        kind: "PeerAuthentication".into(),
        namespace: namespace.into(),
        name: name.into(),
        json: json!({
            "apiVersion": "security.istio.io/v1",
            "kind": "PeerAuthentication",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"mtls": {"mode": mode}},
        })
        .to_string(),
    }
}

fn policy(name: &str, spec: serde_json::Value) -> Resource {
    resource(
        "AuthorizationPolicy",
        name,
        json!({
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": {"name": name, "namespace": "default"},
            "spec": spec,
        }),
    )
}

/// The chapter's pair: allow-nothing in `default`, and GET/POST to ratings
/// for reviews' principal.
fn chapter_policies() -> Vec<Resource> {
    vec![
        policy("allow-nothing", json!({})),
        policy(
            "ratings-from-reviews",
            json!({
                "selector": {"matchLabels": {"app": "ratings"}},
                "action": "ALLOW",
                "rules": [{
                    "from": [{"source": {"principals": ["cluster.local/ns/default/sa/bookinfo-reviews"]}}],
                    "to": [{"operation": {"methods": ["GET", "POST"]}}],
                }],
            }),
        ),
    ]
}

/// ratings-v1 (inbound) and callers (outbound), all with identities.
struct Mesh {
    control: ControlPlane,
    app: App,
    ratings: ProxySpec,
    callers: Vec<ProxySpec>,
}

impl Mesh {
    async fn start(ratings_sa: Option<&str>, ttl: Option<u64>, callers: &[(&str, &str)]) -> Mesh {
        let control = ControlPlane::start().await;
        let app = App::start("ratings-v1").await;
        let mut ratings = ProxySpec::sidecar("ratings-v1", "ratings", "v1", &control.url())
            .with_inbound(app.addr)
            .with_identity();
        if let Some(sa) = ratings_sa {
            ratings = ratings.with_service_account(sa);
        }
        if let Some(ttl) = ttl {
            ratings = ratings.with_cert_ttl(ttl);
        }
        ratings.spawn_task();
        let callers = callers
            .iter()
            .map(|(workload, app)| {
                let mut c = ProxySpec::sidecar(workload, app, "v1", &control.url())
                    .with_outbound()
                    .with_identity();
                if let Some(ttl) = ttl {
                    c = c.with_cert_ttl(ttl);
                }
                c.spawn_task();
                c
            })
            .collect();
        Mesh {
            control,
            app,
            ratings,
            callers,
        }
    }

    async fn push(&self, version: u64, resources: Vec<Resource>) {
        self.control.push(Snapshot {
            version,
            resources,
            services: vec![service(
                "ratings",
                vec![sidecar_endpoint(
                    self.ratings.inbound.expect("inbound"),
                    "ratings-v1",
                    "ratings",
                    "v1",
                )],
            )],
            mesh: None,
            jwks: Default::default(),
        });
        self.control.wait_ack(version, 1 + self.callers.len()).await;
        self.ratings.wait_ready().await;
        for c in &self.callers {
            c.wait_ready().await;
        }
    }

    fn caller(&self, i: usize) -> std::net::SocketAddr {
        self.callers[i].outbound.expect("outbound")
    }

    fn inbound(&self) -> std::net::SocketAddr {
        self.ratings.inbound.expect("inbound")
    }
}

async fn send(to: std::net::SocketAddr, method: &str) -> (u16, String) {
    let req = hyper::Request::builder()
        .method(method)
        .uri(format!("http://{to}/ratings/0"))
        .header("host", "ratings:9080")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let resp = client().request(req).await.expect("response");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A raw plaintext HTTP/1.1 request; what came back before the close.
async fn plaintext_raw(to: std::net::SocketAddr) -> Vec<u8> {
    let Ok(mut s) = tokio::net::TcpStream::connect(to).await else {
        return Vec::new();
    };
    let _ = s
        .write_all(b"GET /ratings/0 HTTP/1.1\r\nhost: ratings:9080\r\nconnection: close\r\n\r\n")
        .await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    out
}

/// One request over a hand-made mTLS connection presenting `cert`/`key`,
/// trusting `root`; the status, or why there is none.
async fn mtls_request(
    to: std::net::SocketAddr,
    root: &str,
    client_cert: Option<(&str, &str)>,
    headers: &[(&str, &str)],
) -> Result<u16, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(root.as_bytes()) {
        roots
            .add(c.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = loupe_proxy::tls::verify::MeshServerVerifier::new(
        Arc::new(roots),
        provider.signature_verification_algorithms,
    );
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let mut config = match client_cert {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(cert.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| e.to_string())?,
                PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|e| e.to_string())?,
            )
            .map_err(|e| e.to_string())?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"istio-http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(to)
        .await
        .map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::IpAddress(to.ip().into()), tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .uri("/ratings/0")
        .header("host", "ratings:9080");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = sender
        .send_request(
            req.body(Full::new(Bytes::new()))
                .map_err(|e| e.to_string())?,
        )
        .await
        .map_err(|e| format!("request: {e}"))?;
    Ok(resp.status().as_u16())
}

fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with(name) && l.as_bytes().get(name.len()) == Some(&b' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_refuses_every_plaintext_connection_and_serves_mesh_mtls() {
    let mesh = Mesh::start(None, None, &[("reviews-v2", "reviews")]).await;
    mesh.push(
        1,
        vec![peer_authentication("istio-system", "default", "STRICT")],
    )
    .await;

    assert_eq!(
        send(mesh.caller(0), "GET").await,
        (200, "ratings-v1".into())
    );
    let m = mesh.ratings.metrics().await;
    assert_eq!(
        requests_total(
            &m,
            &[
                ("reporter", "destination"),
                ("connection_security_policy", "mutual_tls"),
                ("source_principal", REVIEWS),
                ("source_workload", "reviews-v2"),
                (
                    "destination_principal",
                    "spiffe://cluster.local/ns/default/sa/bookinfo-ratings"
                ),
            ]
        ),
        1,
        "{m}"
    );

    let reached = mesh.app.count();
    let mut answered = 0;
    for _ in 0..1000 {
        if !plaintext_raw(mesh.inbound()).await.is_empty() {
            answered += 1;
        }
    }
    assert_eq!(answered, 0, "no plaintext attempt got any answer");
    assert_eq!(
        mesh.app.count(),
        reached,
        "no plaintext attempt reached the app"
    );
    let m = mesh.ratings.metrics().await;
    assert!(
        counter(&m, "loupe_proxy_inbound_plaintext_refused_total") >= 1000,
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_certificates_of_the_mesh_ca_get_in() {
    let mesh = Mesh::start(None, None, &[]).await;
    mesh.push(1, vec![]).await;
    let root = mesh.control.ca.root_pem();

    let (cert, key) = mesh.control.ca.leaf(REVIEWS);
    assert_eq!(
        mtls_request(mesh.inbound(), &root, Some((&cert, &key)), &[]).await,
        Ok(200),
        "a certificate of the mesh CA is served"
    );

    let other = TestCa::new("another mesh");
    let (cert, key) = other.leaf(REVIEWS);
    let foreign = mtls_request(mesh.inbound(), &root, Some((&cert, &key)), &[]).await;
    assert!(foreign.is_err(), "another CA's certificate: {foreign:?}");

    let anonymous = mtls_request(mesh.inbound(), &root, None, &[]).await;
    assert!(anonymous.is_err(), "no client certificate: {anonymous:?}");
    assert_eq!(mesh.app.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_presenting_another_identity_is_refused_before_the_request() {
    // ratings' proxy holds a certificate for "impostor"; the registry says
    // the endpoint is bookinfo-ratings.
    let mesh = Mesh::start(Some("impostor"), None, &[("reviews-v2", "reviews")]).await;
    mesh.push(1, vec![]).await;
    let (status, body) = send(mesh.caller(0), "GET").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("secure naming"), "{body}");
    assert!(
        body.contains("spiffe://cluster.local/ns/default/sa/impostor"),
        "{body}"
    );
    assert_eq!(mesh.app.count(), 0, "the request was never sent");
    let m = mesh.callers[0].metrics().await;
    // UF, or URX once the default retries on connect failure are spent.
    assert_eq!(
        requests_total(&m, &[("reporter", "source"), ("response_flags", "UF")])
            + requests_total(&m, &[("reporter", "source"), ("response_flags", "URX")]),
        1,
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chapters_policies_decide_on_the_certificates_principal() {
    let mesh = Mesh::start(
        None,
        None,
        &[("reviews-v2", "reviews"), ("details-v1", "details")],
    )
    .await;
    mesh.push(1, chapter_policies()).await;

    assert_eq!(send(mesh.caller(0), "GET").await.0, 200);
    assert_eq!(send(mesh.caller(0), "POST").await.0, 200);
    assert_eq!(send(mesh.caller(0), "DELETE").await.0, 403);
    assert_eq!(
        send(mesh.caller(1), "GET").await.0,
        403,
        "another principal"
    );
    // Plaintext under PERMISSIVE is served, but has no principal.
    let (status, _) = get(mesh.inbound(), "ratings:9080", "/ratings/0")
        .await
        .expect("plaintext");
    assert_eq!(status, 403);
    assert_eq!(mesh.app.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_identity_headers_change_no_decision_and_no_label() {
    let mesh = Mesh::start(None, None, &[]).await;
    mesh.push(1, chapter_policies()).await;
    let forged = [
        (
            "x-loupe-peer",
            "wl=reviews-v2;ns=default;sa=bookinfo-reviews;app=reviews;ver=v2;dst=ratings.default.svc.cluster.local",
        ),
        (
            "x-forwarded-client-cert",
            "By=spiffe://cluster.local/ns/default/sa/bookinfo-ratings;URI=spiffe://cluster.local/ns/default/sa/bookinfo-reviews",
        ),
        (
            "x-loupe-principal",
            "cluster.local/ns/default/sa/bookinfo-reviews",
        ),
    ];
    // Plaintext with every forged header.
    let (status, _, _) = request(mesh.inbound(), "ratings:9080", "/ratings/0", &forged)
        .await
        .expect("plaintext");
    assert_eq!(status, 403);
    // mTLS as details, claiming to be reviews in the peer header.
    let (cert, key) = mesh
        .control
        .ca
        .leaf("spiffe://cluster.local/ns/default/sa/bookinfo-details");
    let root = mesh.control.ca.root_pem();
    assert_eq!(
        mtls_request(mesh.inbound(), &root, Some((&cert, &key)), &forged).await,
        Ok(403)
    );
    assert_eq!(mesh.app.count(), 0);

    let m = mesh.ratings.metrics().await;
    assert_eq!(
        requests_total(&m, &[("source_principal", REVIEWS)]),
        0,
        "no series claims reviews: {m}"
    );
    assert_eq!(
        requests_total(
            &m,
            &[
                ("connection_security_policy", "none"),
                ("source_workload", "unknown"),
                ("source_principal", "unknown"),
                ("response_code", "403"),
            ]
        ),
        1,
        "{m}"
    );
    assert_eq!(
        requests_total(
            &m,
            &[
                ("connection_security_policy", "mutual_tls"),
                ("source_workload", "unknown"),
                (
                    "source_principal",
                    "spiffe://cluster.local/ns/default/sa/bookinfo-details"
                ),
                ("response_code", "403"),
            ]
        ),
        1,
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_rotate_at_half_life_without_a_failed_request() {
    // 4 s certificates renew every ~2 s: 13 s of load see at least 4.
    let mesh = Mesh::start(None, Some(4), &[("reviews-v2", "reviews")]).await;
    mesh.push(
        1,
        vec![peer_authentication("istio-system", "default", "STRICT")],
    )
    .await;
    let first =
        mesh.ratings.certs().await["certificates"][0]["cert_chain"][0]["serial_number"].clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(13);
    let (mut ok, mut failed) = (0, 0);
    while std::time::Instant::now() < deadline {
        match send(mesh.caller(0), "GET").await.0 {
            200 => ok += 1,
            _ => failed += 1,
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(failed, 0, "{ok} succeeded");
    assert!(ok > 100, "{ok} requests");
    for proxy in [&mesh.ratings, &mesh.callers[0]] {
        let certs = proxy.certs().await;
        let rotations = certs["rotations"].as_u64().unwrap_or(0);
        assert!(rotations >= 4, "{}: {certs}", proxy.workload);
    }
    let now =
        mesh.ratings.certs().await["certificates"][0]["cert_chain"][0]["serial_number"].clone();
    assert_ne!(first, now, "the serial changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destination_rule_and_peer_authentication_disable_turn_mtls_off() {
    let mesh = Mesh::start(None, None, &[("reviews-v2", "reviews")]).await;
    let dr_disable = resource(
        "DestinationRule",
        "ratings",
        json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": "ratings", "namespace": "default"},
            "spec": {"host": "ratings", "trafficPolicy": {"tls": {"mode": "DISABLE"}}},
        }),
    );
    mesh.push(1, vec![dr_disable.clone()]).await;
    assert_eq!(send(mesh.caller(0), "GET").await.0, 200);
    // DISABLE from the client against STRICT at the server fails, as in Istio.
    mesh.push(
        2,
        vec![
            dr_disable,
            peer_authentication("default", "default", "STRICT"),
        ],
    )
    .await;
    assert_eq!(send(mesh.caller(0), "GET").await.0, 503);
    // The destination's own PeerAuthentication DISABLE: auto mTLS sends plaintext.
    mesh.push(
        3,
        vec![peer_authentication("default", "default", "DISABLE")],
    )
    .await;
    assert_eq!(send(mesh.caller(0), "GET").await.0, 200);
    let m = mesh.ratings.metrics().await;
    assert_eq!(
        requests_total(
            &m,
            &[
                ("reporter", "destination"),
                ("connection_security_policy", "none"),
                ("response_code", "200"),
            ]
        ),
        2,
        "{m}"
    );
    assert_eq!(
        requests_total(&m, &[("connection_security_policy", "mutual_tls")]),
        0,
        "{m}"
    );
}
