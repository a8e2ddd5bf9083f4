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
    assert!(cp.registry.services().is_empty(), "no endpoints");
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
    // ratings' credential, reviews' Hello.
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
    assert_ne!(status.code(), tonic::Code::Ok);
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
