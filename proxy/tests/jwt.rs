//! RequestAuthentication at a real sidecar, with tokens signed here (ES256)
//! and keys given inline or as the JWKS the control plane fetched for a
//! `jwksUri`: valid tokens pass and their claims reach authorization,
//! invalid ones (expired, wrong issuer, wrong audience, bad signature) get
//! 401, a request without a token passes authentication and the
//! AuthorizationPolicy decides.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use loupe_push::{Resource, Snapshot};
use serde_json::json;
use support::*;

const ISSUER: &str = "https://issuer.test";
const JWKS_URI: &str = "https://issuer.test/.well-known/jwks.json";

struct Signer {
    key: EncodingKey,
    jwks: String,
}

impl Signer {
    fn new(kid: &str) -> Signer {
        let pair = rcgen::KeyPair::generate().expect("P-256 key");
        let raw = pair.public_key_raw();
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let jwks = json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
            "x": b64(&raw[1..33]), "y": b64(&raw[33..65]),
        }]})
        .to_string();
        Signer {
            key: EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).expect("EC key"),
            jwks,
        }
    }

    fn token(&self, claims: serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("k1".into());
        jsonwebtoken::encode(&header, &claims, &self.key).expect("sign")
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn claims(iss: &str, aud: &str, exp: u64, groups: &[&str]) -> serde_json::Value {
    json!({"iss": iss, "sub": "alice", "aud": aud, "exp": exp, "groups": groups})
}

fn request_authentication(jwt_rule: serde_json::Value) -> Resource {
    resource(
        "RequestAuthentication",
        "ratings-jwt",
        json!({
            "apiVersion": "security.istio.io/v1",
            "kind": "RequestAuthentication",
            "metadata": {"name": "ratings-jwt", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "ratings"}}, "jwtRules": [jwt_rule]},
        }),
    )
}

/// ALLOW for tokens of the issuer whose `groups` claim holds `admins`.
fn admins_only() -> Resource {
    resource(
        "AuthorizationPolicy",
        "ratings-admins",
        json!({
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": {"name": "ratings-admins", "namespace": "default"},
            "spec": {
                "selector": {"matchLabels": {"app": "ratings"}},
                "action": "ALLOW",
                "rules": [{
                    "from": [{"source": {"requestPrincipals": [format!("{ISSUER}/*")]}}],
                    "when": [{"key": "request.auth.claims[groups]", "values": ["admins"]}],
                }],
            },
        }),
    )
}

async fn start(resources: Vec<Resource>, jwks: &[(&str, &str)]) -> (ControlPlane, App, ProxySpec) {
    let control = ControlPlane::start().await;
    let app = App::start("ratings-v1").await;
    let ratings =
        ProxySpec::sidecar("ratings-v1", "ratings", "v1", &control.url()).with_inbound(app.addr);
    ratings.spawn_task();
    control.push(Snapshot {
        version: 1,
        resources,
        services: vec![],
        mesh: None,
        jwks: jwks
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    });
    control.wait_ack(1, 1).await;
    ratings.wait_ready().await;
    (control, app, ratings)
}

async fn call(ratings: &ProxySpec, token: Option<&str>) -> (u16, String) {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = bearer
        .as_deref()
        .map(|b| vec![("authorization", b)])
        .unwrap_or_default();
    let (status, _, body) = request(
        ratings.inbound.expect("inbound"),
        "ratings:9080",
        "/ratings/0",
        &headers,
    )
    .await
    .expect("request");
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_verified_and_their_claims_decide() {
    let signer = Signer::new("k1");
    let rule = json!({
        "issuer": ISSUER,
        "audiences": ["ratings"],
        "jwks": signer.jwks,
        "outputClaimToHeaders": [{"header": "x-jwt-groups", "claim": "groups"}],
    });
    let (_control, app, ratings) =
        start(vec![request_authentication(rule), admins_only()], &[]).await;
    let later = now() + 3600;

    let admin = signer.token(claims(ISSUER, "ratings", later, &["admins"]));
    assert_eq!(
        call(&ratings, Some(&admin)).await,
        (200, "ratings-v1".into())
    );
    let seen = app.last().expect("the app got the request");
    assert!(
        seen.headers.get("authorization").is_none(),
        "the token is not forwarded by default"
    );
    assert_eq!(
        seen.headers
            .get("x-jwt-groups")
            .and_then(|v| v.to_str().ok()),
        Some("admins")
    );

    let user = signer.token(claims(ISSUER, "ratings", later, &["users"]));
    assert_eq!(
        call(&ratings, Some(&user)).await.0,
        403,
        "claims[groups] decides"
    );
    assert_eq!(
        call(&ratings, None).await.0,
        403,
        "no token: no request principal"
    );

    let expired = signer.token(claims(ISSUER, "ratings", now() - 3600, &["admins"]));
    assert_eq!(
        call(&ratings, Some(&expired)).await,
        (401, "Jwt is expired\n".into())
    );
    let foreign = signer.token(claims("https://other.test", "ratings", later, &["admins"]));
    assert_eq!(
        call(&ratings, Some(&foreign)).await,
        (401, "Jwt issuer is not configured\n".into())
    );
    let wrong_audience = signer.token(claims(ISSUER, "reviews", later, &["admins"]));
    assert_eq!(
        call(&ratings, Some(&wrong_audience)).await,
        (401, "Audiences in Jwt are not allowed\n".into())
    );
    let forged = Signer::new("k1").token(claims(ISSUER, "ratings", later, &["admins"]));
    let (status, body) = call(&ratings, Some(&forged)).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.starts_with("Jwt verification fails"), "{body}");
    assert_eq!(app.count(), 1, "only the admin's request reached the app");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_come_from_the_jwks_the_control_plane_fetched() {
    let signer = Signer::new("k1");
    let rule = json!({"issuer": ISSUER, "jwksUri": JWKS_URI, "forwardOriginalToken": true});
    let (_control, app, ratings) = start(
        vec![request_authentication(rule)],
        &[(JWKS_URI, &signer.jwks)],
    )
    .await;
    let token = signer.token(claims(ISSUER, "any", now() + 600, &[]));
    // No AuthorizationPolicy: a valid token and no token both pass.
    assert_eq!(call(&ratings, Some(&token)).await.0, 200);
    assert_eq!(
        app.last()
            .and_then(|s| s.headers.get("authorization").cloned())
            .and_then(|v| v.to_str().ok().map(str::to_string)),
        Some(format!("Bearer {token}")),
        "forwardOriginalToken keeps it"
    );
    assert_eq!(call(&ratings, None).await.0, 200);
    let other = Signer::new("k1").token(claims(ISSUER, "any", now() + 600, &[]));
    assert_eq!(call(&ratings, Some(&other)).await.0, 401);
}
