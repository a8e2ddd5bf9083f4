//! The gRPC port speaks TLS only, with a server certificate from the mesh
//! CA; the CA's root is kept in its directory across restarts.

mod common;

use std::time::Duration;

use common::{Proxy, control, control_with, db, hello};
use loupe_push::ProxyMessage;
use loupe_push::discovery_client::DiscoveryClient;
use loupe_push::proxy_message::Message;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

/// Opens a push stream on `channel` and says Hello: the call's status.
async fn try_stream(channel: Channel, token: &str) -> Result<(), tonic::Status> {
    let mut client = DiscoveryClient::new(channel);
    let first = ProxyMessage {
        message: Some(Message::Hello(hello(
            "reviews-v1",
            "v1",
            "reviews",
            "127.0.0.1:7001",
        ))),
    };
    let mut stream = client
        .stream(common::authorized(
            tokio_stream::iter(vec![first]),
            Some(token),
        ))
        .await?
        .into_inner();
    stream.message().await.map(|_| ())
}

#[tokio::test]
async fn a_plaintext_client_cannot_talk_to_the_control_plane() {
    let db = db().await;
    let cp = control(&db.pool).await;
    cp.declare(&hello("reviews-v1", "v1", "reviews", "127.0.0.1:7001"))
        .await;
    let token = cp.token("default", "reviews-v1").await;

    // h2c, as the push clients spoke before TLS.
    let plaintext = Channel::from_shared(format!("http://{}", cp.addr))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await;
    if let Ok(channel) = plaintext {
        let status = tokio::time::timeout(Duration::from_secs(15), try_stream(channel, &token))
            .await
            .expect("a plaintext call fails rather than hangs")
            .expect_err("plaintext refused");
        assert_ne!(status.code(), tonic::Code::Ok);
    }
    // A raw HTTP/1.1 request gets no answer but a closed connection.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(cp.addr).await.unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut buf)).await;
        assert!(
            !String::from_utf8_lossy(&buf).contains("HTTP/1.1 200"),
            "{buf:?}"
        );
    }
    assert!(cp.registry.connections().is_empty(), "nothing registered");

    // A TLS client that trusts another root is refused in the handshake.
    let other = tempfile::tempdir().unwrap();
    let other_ca = loupe_control::ca::CertificateAuthority::open(
        &loupe_control::ca::CaOptions::new(other.path()),
    )
    .unwrap();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(other_ca.trust_bundle().to_pem()))
        .domain_name("localhost");
    let distrusting = Channel::from_shared(format!("https://{}", cp.addr))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await;
    assert!(
        distrusting.is_err(),
        "a foreign root does not verify the server"
    );

    // The mesh root does, by name and by IP.
    try_stream(cp.channel().await.expect("TLS with the mesh root"), &token)
        .await
        .expect("a snapshot over TLS");
    let by_ip = Channel::from_shared(format!("https://{}", cp.addr))
        .unwrap()
        .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&cp.root)))
        .unwrap()
        .connect()
        .await;
    assert!(by_ip.is_ok(), "the certificate names 127.0.0.1: {by_ip:?}");
    cp.shutdown().await;
}

#[tokio::test]
async fn the_root_survives_a_restart_and_its_key_stays_private() {
    let db = db().await;
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let opts = loupe_control::ca::CaOptions::new(&ca_dir);
    let keep = tempfile::tempdir().unwrap();
    let first = control_with(&db.pool, keep, opts.clone()).await;
    let root = first.root.clone();
    first.shutdown().await;
    let key = ca_dir.join("ca-key.pem");
    let mode = std::fs::metadata(&key).map(|m| {
        use std::os::unix::fs::PermissionsExt;
        m.permissions().mode() & 0o777
    });
    assert_eq!(mode.unwrap(), 0o600);

    let second = control_with(&db.pool, tempfile::tempdir().unwrap(), opts).await;
    assert_eq!(second.root, root, "the same root after a restart");
    // Clients holding the old root-cert.pem still connect.
    let mut proxy = Proxy::connect(
        &second,
        hello("reviews-v1", "v1", "reviews", "127.0.0.1:7001"),
    )
    .await;
    proxy.next().await;
    second.shutdown().await;
}

#[tokio::test]
async fn past_the_connection_cap_new_connections_are_closed_on_arrival() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let ca = std::sync::Arc::new(
        loupe_control::ca::CertificateAuthority::open(&loupe_control::ca::CaOptions::new(
            dir.path(),
        ))
        .unwrap(),
    );
    let config = loupe_control::tls::server_config(ca, vec![], vec![]).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _incoming = loupe_control::tls::incoming_capped(listener, config, 2);

    // Two silent clients hold both places (their handshakes are pending).
    let first = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _second = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let still_open = |mut s: tokio::net::TcpStream| async move {
        let mut buf = [0u8; 16];
        tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf))
            .await
            .is_err()
    };
    let third = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(!still_open(third).await, "the third is closed at once");

    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fourth = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(
        still_open(fourth).await,
        "a freed place takes a new connection"
    );
}

/// Whether the first certificate of `leaf_pem` is signed by the one in `root_pem`.
fn signed_by(leaf_pem: &str, root_pem: &str) -> bool {
    let der = |pem: &str| {
        let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("PEM");
        p.contents
    };
    let (leaf, root) = (der(leaf_pem), der(root_pem));
    let (_, leaf) = x509_parser::parse_x509_certificate(&leaf).expect("leaf");
    let (_, root) = x509_parser::parse_x509_certificate(&root).expect("root");
    leaf.verify_signature(Some(root.public_key())).is_ok()
}

/// A certificate for reviews-v1 from the running control plane, reached
/// trusting the bundle now in its CA directory (as a proxy holds it).
async fn issue(cp: &common::Running, token: &str) -> loupe_push::CertificateResponse {
    let bundle = std::fs::read_to_string(cp.ca_dir.path().join("root-cert.pem")).unwrap();
    let channel = Channel::from_shared(format!("https://{}", cp.addr))
        .unwrap()
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(bundle))
                .domain_name("localhost"),
        )
        .unwrap()
        .connect()
        .await
        .expect("TLS with the bundle");
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.subject_alt_names.push(rcgen::SanType::URI(
        "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"
            .try_into()
            .unwrap(),
    ));
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    let mut client = loupe_push::certificates_client::CertificatesClient::new(channel);
    client
        .create_certificate(common::authorized(
            loupe_push::CertificateRequest {
                csr,
                validity_duration: 0,
            },
            Some(token),
        ))
        .await
        .expect("a certificate")
        .into_inner()
}

/// Whether a TLS client that trusts only `root_pem` reaches the control plane.
async fn reachable_trusting(cp: &common::Running, root_pem: &str) -> bool {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(root_pem))
        .domain_name("localhost");
    Channel::from_shared(format!("https://{}", cp.addr))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .is_ok()
}

#[tokio::test]
async fn the_root_rotates_in_three_file_edits_without_a_restart() {
    let db = db().await;
    let cp = control(&db.pool).await;
    cp.declare(&hello("reviews-v1", "v1", "reviews", "127.0.0.1:7001"))
        .await;
    let token = cp.token("default", "reviews-v1").await;
    let dir = cp.ca_dir.path().to_path_buf();
    let old_root = std::fs::read_to_string(dir.join("root-cert.pem")).unwrap();
    let next = tempfile::tempdir().unwrap();
    loupe_control::ca::CertificateAuthority::open(&loupe_control::ca::CaOptions::new(next.path()))
        .unwrap();
    let new_root = std::fs::read_to_string(next.path().join("root-cert.pem")).unwrap();
    let within = Duration::from_secs(10);
    let wait_for = |what: &'static str,
                    f: Box<dyn Fn(&loupe_push::CertificateResponse) -> bool>| {
        let (cp, token) = (&cp, &token);
        async move {
            let started = std::time::Instant::now();
            loop {
                let issued = issue(cp, token).await;
                if f(&issued) {
                    return issued;
                }
                assert!(started.elapsed() < within, "{what} within {within:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };

    // 1. Trust both: the bundle every proxy gets now holds both roots.
    std::fs::write(dir.join("root-cert.pem"), format!("{old_root}{new_root}")).unwrap();
    let issued = wait_for("two roots", Box::new(|c| c.trust_bundle.len() == 2)).await;
    assert!(
        signed_by(&issued.cert_chain[0], &old_root),
        "still the old signer"
    );

    // A half-done step 2 (the new certificate, the old key): refused, the
    // last good CA keeps signing.
    std::fs::copy(next.path().join("ca-cert.pem"), dir.join("ca-cert.pem")).unwrap();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let issued = issue(&cp, &token).await;
    assert!(
        signed_by(&issued.cert_chain[0], &old_root),
        "last good CA kept"
    );
    assert!(reachable_trusting(&cp, &old_root).await);

    // 2. Sign with the new one: leaves and the server certificate follow.
    std::fs::copy(next.path().join("ca-key.pem"), dir.join("ca-key.pem")).unwrap();
    wait_for(
        "leaves from the new root",
        Box::new(move |c| signed_by(&c.cert_chain[0], &new_root)),
    )
    .await;
    let new_root = std::fs::read_to_string(next.path().join("root-cert.pem")).unwrap();
    assert!(
        reachable_trusting(&cp, &new_root).await,
        "the server certificate chains to the new root"
    );
    assert!(!reachable_trusting(&cp, &old_root).await);

    // 3. Drop the old root.
    std::fs::write(dir.join("root-cert.pem"), &new_root).unwrap();
    let issued = wait_for("one root", Box::new(|c| c.trust_bundle.len() == 1)).await;
    assert_eq!(issued.trust_bundle[0].trim(), new_root.trim());
    cp.shutdown().await;
}
