//! Every call needs a credential, and a credential backs exactly one
//! workload: a proxy cannot say Hello, or get a certificate, as anyone else.

mod common;

use common::{Proxy, Running, authorized, control, count, db, hello};
use loupe_push::CertificateRequest;
use loupe_push::certificates_client::CertificatesClient;
use loupe_push::proxy_message::Message;
use rcgen::{CertificateParams, DistinguishedName, KeyPair, SanType};

const REVIEWS_ID: &str = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews";

fn csr(uri: &str) -> String {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .subject_alt_names
        .push(SanType::URI(uri.to_string().try_into().unwrap()));
    params.serialize_request(&key).unwrap().pem().unwrap()
}

async fn create_certificate(
    cp: &Running,
    token: Option<&str>,
    csr: String,
) -> Result<loupe_push::CertificateResponse, tonic::Status> {
    let mut client = CertificatesClient::new(cp.channel().await.unwrap());
    let request = CertificateRequest {
        csr,
        validity_duration: 0,
    };
    client
        .create_certificate(authorized(request, token))
        .await
        .map(|r| r.into_inner())
}

async fn stream_status(cp: &Running, token: Option<&str>, h: loupe_push::Hello) -> tonic::Status {
    match Proxy::open_as(cp, token, Message::Hello(h)).await {
        Err(status) => status,
        Ok((_tx, mut stream)) => stream.message().await.expect_err("refused"),
    }
}

async fn nothing_registered(cp: &Running) {
    assert!(
        cp.registry.connections().is_empty(),
        "nothing in the registry"
    );
    let published = cp.published.borrow().snapshot.services.clone();
    assert!(
        published.iter().all(|s| s.endpoints.is_empty()),
        "no endpoints: {published:?}"
    );
    assert_eq!(count(&cp.pool, "SELECT count(*) FROM workloads").await, 0);
}

#[tokio::test]
async fn calls_without_a_known_credential_are_unauthenticated() {
    let db = db().await;
    let cp = control(&db.pool).await;
    let reviews = hello("reviews-v1", "v1", "reviews", "127.0.0.1:7001");
    let unknown = "0".repeat(64);
    for token in [None, Some("not-a-token"), Some(unknown.as_str())] {
        let status = stream_status(&cp, token, reviews.clone()).await;
        assert_eq!(
            status.code(),
            tonic::Code::Unauthenticated,
            "{token:?}: {status:?}"
        );
        let status = create_certificate(&cp, token, csr(REVIEWS_ID))
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            tonic::Code::Unauthenticated,
            "{token:?}: {status:?}"
        );
    }
    let status = stream_status(&cp, None, reviews.clone()).await;
    assert!(
        status.message().contains("authorization: Bearer"),
        "{status:?}"
    );

    // A replaced token stops working; the new one works.
    cp.declare(&reviews).await;
    let old = cp.token("default", "reviews-v1").await;
    let new = cp.token("default", "reviews-v1").await;
    let status = stream_status(&cp, Some(&old), reviews.clone()).await;
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    let (_tx, mut stream) = Proxy::open_as(&cp, Some(&new), Message::Hello(reviews))
        .await
        .expect("the current token is accepted");
    stream.message().await.unwrap().expect("a snapshot");
    // Tokens are stored hashed.
    let stored: Vec<u8> = sqlx::query_scalar("SELECT token_sha256 FROM workload_tokens")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(stored, loupe_control::authn::hash_token(&new));
    assert!(!stored.windows(new.len()).any(|w| w == new.as_bytes()));
    cp.shutdown().await;
}

#[tokio::test]
async fn a_hello_for_an_identity_its_credential_does_not_name_is_refused() {
    let db = db().await;
    let cp = control(&db.pool).await;
    // ratings' credential, reviews' Hello (both declared).
    cp.declare(&hello("reviews-v1", "v1", "reviews", "127.0.0.1:7001"))
        .await;
    cp.declare(&hello("ratings-v1", "v1", "ratings", "127.0.0.1:7002"))
        .await;
    let ratings_token = cp.token("default", "ratings-v1").await;
    let claimed = hello("reviews-v1", "v1", "reviews", "127.0.0.1:7001");
    let status = stream_status(&cp, Some(&ratings_token), claimed.clone()).await;
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().contains("\"reviews-v1\"")
            && status.message().contains("default/ratings-v1"),
        "the refusal names both: {status:?}"
    );
    // Another namespace.
    let mut elsewhere = hello("ratings-v1", "v1", "ratings", "127.0.0.1:7002");
    elsewhere.namespace = "shop".into();
    let status = stream_status(&cp, Some(&ratings_token), elsewhere).await;
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().contains("namespace \"shop\""),
        "{status:?}"
    );
    nothing_registered(&cp).await;

    // And no certificate for reviews' identity with ratings' credential.
    let refused = create_certificate(&cp, Some(&ratings_token), csr(REVIEWS_ID)).await;
    let status = refused.expect_err("no certificate issued");
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().contains(REVIEWS_ID)
            && status
                .message()
                .contains("spiffe://cluster.local/ns/default/sa/bookinfo-ratings"),
        "{status:?}"
    );
    nothing_registered(&cp).await;
    cp.shutdown().await;
}

#[tokio::test]
async fn oversized_hellos_and_messages_are_refused() {
    let db = db().await;
    let cp = control(&db.pool).await;
    let token = cp.token("default", "reviews-v1").await;
    let mut labelled = hello("reviews-v1", "v1", "reviews", "127.0.0.1:7001");
    labelled.labels = (0..100).map(|i| (format!("k{i}"), "v".into())).collect();
    let status = stream_status(&cp, Some(&token), labelled).await;
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("labels"), "{status:?}");

    let mut huge = hello("reviews-v1", "v1", "reviews", "127.0.0.1:7001");
    huge.metrics_address = "x".repeat(loupe_control::MAX_MESSAGE_SIZE + 1);
    let status = stream_status(&cp, Some(&token), huge).await;
    assert_ne!(status.code(), tonic::Code::Ok, "{status:?}");
    let status = create_certificate(
        &cp,
        Some(&token),
        "x".repeat(loupe_control::MAX_MESSAGE_SIZE + 1),
    )
    .await
    .unwrap_err();
    assert_ne!(status.code(), tonic::Code::Ok, "{status:?}");
    nothing_registered(&cp).await;
    cp.shutdown().await;
}

#[tokio::test]
async fn a_hello_claiming_more_than_its_workload_entry_declares_is_refused() {
    let db = db().await;
    let cp = control(&db.pool).await;
    let declared = hello("reviews-v1", "v1", "reviews", "127.0.0.1:7001");
    cp.declare(&declared).await;
    // Another ServiceEntry, which does not select reviews-v1.
    cp.declare(&hello("ratings-v1", "v1", "ratings", "127.0.0.1:7002"))
        .await;
    let token = cp.token("default", "reviews-v1").await;
    type Edit = Box<dyn Fn(&mut loupe_push::Hello)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "service account",
            Box::new(|h| h.service_account = "bookinfo-productpage".into()),
        ),
        (
            "version=\"v3\"",
            Box::new(|h| {
                h.labels.insert("version".into(), "v3".into());
            }),
        ),
        (
            "has no label istio",
            Box::new(|h| {
                h.labels.insert("istio".into(), "ingressgateway".into());
            }),
        ),
        (
            "has address \"127.0.0.1\"",
            Box::new(|h| h.inbound_address = "10.9.9.9:7001".into()),
        ),
        (
            "declares ports {http: 7001}",
            Box::new(|h| h.inbound_address = "127.0.0.1:7999".into()),
        ),
        (
            "ratings.default.svc.cluster.local",
            Box::new(|h| h.services.push("ratings".into())),
        ),
    ];
    for (named, edit) in cases {
        let mut claimed = declared.clone();
        edit(&mut claimed);
        let status = stream_status(&cp, Some(&token), claimed).await;
        assert_eq!(
            status.code(),
            tonic::Code::PermissionDenied,
            "{named}: {status:?}"
        );
        assert!(
            status.message().contains(named),
            "names {named}: {status:?}"
        );
    }
    nothing_registered(&cp).await;

    // A token whose entry is not declared gets nothing either.
    let orphan = cp.token("default", "ghost").await;
    let status = stream_status(
        &cp,
        Some(&orphan),
        hello("ghost", "v1", "reviews", "127.0.0.1:7001"),
    )
    .await;
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    let status = create_certificate(
        &cp,
        Some(&orphan),
        csr("spiffe://cluster.local/ns/default/sa/ghost"),
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    nothing_registered(&cp).await;
    cp.shutdown().await;
}

#[tokio::test]
async fn the_bound_entry_gets_its_certificate_and_its_declared_endpoint() {
    let db = db().await;
    let cp = control(&db.pool).await;
    let reviews = hello("reviews-v1", "v1", "reviews", "127.0.0.1:7001");
    cp.declare(&reviews).await;
    let token = cp.token("default", "reviews-v1").await;

    let issued = create_certificate(&cp, Some(&token), csr(REVIEWS_ID))
        .await
        .expect("a certificate for the entry's own identity");
    assert_eq!(issued.cert_chain.len(), 1);
    assert_eq!(issued.trust_bundle, std::slice::from_ref(&cp.root));
    let leaf_der = rustls::pki_types::CertificateDer::from(pem_der(&issued.cert_chain[0]));
    let (_, leaf) = x509_parser::parse_x509_certificate(&leaf_der).unwrap();
    let sans: Vec<String> = leaf
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(sans, [format!("URI({REVIEWS_ID})")]);
    let root_der = pem_der(&cp.root);
    let (_, root) = x509_parser::parse_x509_certificate(&root_der).unwrap();
    leaf.verify_signature(Some(root.public_key()))
        .expect("signed by the mesh root");
    let lifetime = leaf.validity().not_after.timestamp() - now();
    assert!(
        (lifetime - 24 * 3600).abs() <= 5,
        "the default 24 h: {lifetime}"
    );

    // A short lifetime on request (tests and rotation use seconds).
    let mut client = CertificatesClient::new(cp.channel().await.unwrap());
    let short = client
        .create_certificate(authorized(
            CertificateRequest {
                csr: csr(REVIEWS_ID),
                validity_duration: 20,
            },
            Some(&token),
        ))
        .await
        .unwrap()
        .into_inner();
    let der = pem_der(&short.cert_chain[0]);
    let (_, leaf) = x509_parser::parse_x509_certificate(&der).unwrap();
    let lifetime = leaf.validity().not_after.timestamp() - now();
    assert!(
        (lifetime - 20).abs() <= 2,
        "20 s asked, 20 s given: {lifetime}"
    );

    // The endpoint is what the entry declares, whatever the Hello leaves out.
    let mut modest = reviews.clone();
    modest.labels.remove("version");
    let mut proxy = Proxy::connect_with_token(&cp, &token, modest).await;
    let s = proxy
        .until(std::time::Duration::from_secs(2), |s| {
            !common::endpoints(s, "reviews.default.svc.cluster.local").is_empty()
        })
        .await;
    let ep = &s.services[0].endpoints[0];
    assert_eq!(ep.address, "127.0.0.1:7001");
    assert_eq!(ep.identity, REVIEWS_ID);
    assert_eq!(
        ep.labels.get("version").map(String::as_str),
        Some("v1"),
        "declared labels"
    );
    // The workloads table still records the connected proxy.
    assert_eq!(
        count(&cp.pool, "SELECT count(*) FROM workloads WHERE connected").await,
        1
    );
    cp.shutdown().await;
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn pem_der(pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}
