//! RequestAuthentication `jwksUri`: the control plane fetches the key set
//! from the issuer (here a JWKS served on loopback) and pushes it with the
//! snapshot, so proxies never fetch; an issuer that cannot be reached is
//! left out (its tokens get 401 at the proxies) and the config still goes
//! out.

mod common;

use std::time::Duration;

use common::{control, db};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","x":"WKn-ZIGevcwGIyyrzFoZNBdaq9_TsqzGl96oc0CWuis","y":"y77t-RvAHRKTsSGdIYUfweuOvwrvDD-Q3Hv5J0fSKbE"}]}"#;

/// Serves `JWKS` for every request; returns the URI.
async fn issuer() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind issuer");
    let addr = listener.local_addr().expect("issuer addr");
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{JWKS}",
                    JWKS.len()
                );
                let _ = conn.write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/.well-known/jwks.json")
}

fn request_authentication(uris: &[&str]) -> String {
    let rules: Vec<String> = uris
        .iter()
        .enumerate()
        .map(|(i, uri)| {
            format!("  - issuer: https://issuer{i}.test\n    jwksUri: {uri}\n    timeout: 1s\n")
        })
        .collect();
    format!(
        "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata:\n  name: jwt\n  namespace: default\nspec:\n  jwtRules:\n{}",
        rules.concat()
    )
}

#[tokio::test]
async fn the_control_plane_fetches_jwks_and_pushes_them() {
    let db = db().await;
    let cp = control(&db.pool).await;
    let uri = issuer().await;
    let dead = "http://127.0.0.1:9/jwks.json";
    cp.store
        .apply("jwt.yaml", &request_authentication(&[&uri, dead]), "alice")
        .await
        .expect("apply");
    let mut published = cp.published.clone();
    let snapshot = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let current = published.borrow_and_update().snapshot.clone();
            if current
                .resources
                .iter()
                .any(|r| r.kind == "RequestAuthentication")
            {
                return current;
            }
            published.changed().await.expect("publisher alive");
        }
    })
    .await
    .expect("a snapshot with the RequestAuthentication");
    assert_eq!(snapshot.jwks.get(&uri).map(String::as_str), Some(JWKS));
    assert!(!snapshot.jwks.contains_key(dead), "{:?}", snapshot.jwks);
}
