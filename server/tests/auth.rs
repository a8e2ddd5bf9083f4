//! Logins, roles, CSRF and the same-origin check, API tokens, the audit
//! log, and the body limits — against the real server on a loopback port,
//! over a private Postgres, with reqwest as the browser and the CLI.

mod common;

use std::time::Duration;

use common::Harness;
use loupe_server::auth::{AuthConfig, Role, Users};
use reqwest::StatusCode;
use serde_json::{Value, json};

const DR: &str = r#"apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
"#;

fn vs(v1: u32) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews, namespace: default}}
spec:
  hosts: [reviews]
  http:
  - route:
    - {{destination: {{host: reviews, subset: v1}}, weight: {v1}}}
    - {{destination: {{host: reviews, subset: v2}}, weight: {}}}
",
        100 - v1
    )
}

const VS_PATH: &str = "/api/config/VirtualService/default/reviews";

/// A console on a loopback port over the harness's database, with a
/// viewer, an editor and the harness's admin; stopped when dropped.
struct Console {
    h: Harness,
    base: String,
    origin: String,
    client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Console {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A browser session: its cookie and CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

async fn console(auth: AuthConfig, max_body_bytes: usize) -> Console {
    let h = Harness::start().await;
    let users = Users::new(h.pool.clone());
    users
        .add("vera", Role::Viewer, "viewer-password")
        .await
        .unwrap();
    users
        .add("eddie", Role::Editor, "editor-password")
        .await
        .unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut options =
        loupe_server::Options::new(h.pg.url(), format!("127.0.0.1:{port}").parse().unwrap());
    options.auth = auth;
    options.limits.max_body_bytes = max_body_bytes;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(loupe_server::serve_until(options, async move {
        let _ = stopped.await;
    }));
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client
            .get(format!("{base}/api/health"))
            .send()
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // The DestinationRule the VirtualService's subsets need.
    let c = Console {
        origin: base.clone(),
        base,
        client,
        stop: Some(stop),
        h,
    };
    let r = c
        .client
        .post(format!("{}/api/config", c.base))
        .bearer_auth(&c.h.token)
        .header("content-type", "application/yaml")
        .body(format!("{DR}---\n{}", vs(100)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    c
}

impl Console {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn login(&self, user: &str, password: &str) -> Result<Session, (StatusCode, Value)> {
        self.login_with(&self.client, user, password).await
    }

    /// Logs in through `client` (e.g. one bound to another source address).
    async fn login_with(
        &self,
        client: &reqwest::Client,
        user: &str,
        password: &str,
    ) -> Result<Session, (StatusCode, Value)> {
        let r = client
            .post(self.url("/api/login"))
            .header("origin", &self.origin)
            .json(&json!({ "user": user, "password": password }))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let cookie = r
            .headers()
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().to_string());
        let body: Value = r.json().await.unwrap();
        if status != StatusCode::OK {
            return Err((status, body));
        }
        let cookie = cookie.expect("a session cookie");
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(cookie.contains(attribute), "{cookie}");
        }
        assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
        Ok(Session {
            cookie: cookie.split(';').next().unwrap().to_string(),
            csrf: body["csrf_token"].as_str().expect("csrf_token").to_string(),
        })
    }

    /// `PUT` the VirtualService with `v1` percent to v1, as a browser session.
    async fn put_as(
        &self,
        s: &Session,
        content_type: &str,
        origin: Option<&str>,
        csrf: Option<&str>,
        v1: u32,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .put(self.url(VS_PATH))
            .header("cookie", &s.cookie)
            .header("content-type", content_type)
            .body(vs(v1));
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        if let Some(csrf) = csrf {
            req = req.header("x-csrf-token", csrf);
        }
        answer(req.send().await.unwrap()).await
    }

    async fn stored_v1_weight(&self) -> i64 {
        let r = self
            .client
            .get(self.url(VS_PATH))
            .bearer_auth(&self.h.token)
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        body["object"]["spec"]["http"][0]["route"][0]["weight"]
            .as_i64()
            .unwrap()
    }
}

async fn answer(r: reqwest::Response) -> (StatusCode, Value) {
    let status = r.status();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn without_credentials_every_api_route_but_login_and_health_is_401() {
    let c = console(AuthConfig::default(), 1 << 20).await;
    let put = c
        .client
        .put(c.url(VS_PATH))
        .header("content-type", "application/yaml")
        .body(vs(50))
        .send()
        .await
        .unwrap();
    let (status, body) = answer(put).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body["error"].as_str().unwrap().contains("log in"), "{body}");
    for path in [
        "/api/graph",
        "/api/config",
        "/api/audit",
        "/api/whoami",
        "/api/nope",
    ] {
        let r = c.client.get(c.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    let r = c.client.get(c.url("/api/health")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // A made-up token is refused, not taken for anonymity.
    let r = c
        .client
        .get(c.url("/api/config"))
        .bearer_auth("loupe_0000")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(c.stored_v1_weight().await, 100, "nothing was written");
}

#[tokio::test]
async fn a_wrong_password_or_user_says_only_invalid_and_is_slowed() {
    let c = console(AuthConfig::default(), 1 << 20).await;
    for (user, password) in [("eddie", "wrong-password"), ("nobody", "editor-password")] {
        let started = std::time::Instant::now();
        let Err((status, body)) = c.login(user, password).await else {
            panic!("{user} logged in with a wrong password");
        };
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"], "invalid user or password");
        assert!(started.elapsed() >= Duration::from_millis(300), "slowed");
    }
    // Repeated failures lock the name (from this address) for a while, even for the right password.
    for _ in 0..4 {
        assert!(c.login("eddie", "wrong-password").await.is_err());
    }
    let Err((status, _)) = c.login("eddie", "editor-password").await else {
        panic!("a locked name logged in");
    };
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        c.login("vera", "viewer-password").await.is_ok(),
        "others are not locked"
    );
    // The lock is for that name from that address: a guesser elsewhere
    // cannot lock eddie out of his own machine.
    let elsewhere = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    assert!(
        c.login_with(&elsewhere, "eddie", "editor-password")
            .await
            .is_ok(),
        "eddie logs in from another address"
    );
}

#[tokio::test]
async fn a_viewer_reads_but_cannot_write() {
    let c = console(AuthConfig::default(), 1 << 20).await;
    let s = c.login("vera", "viewer-password").await.unwrap();
    let r = c
        .client
        .get(c.url("/api/whoami"))
        .header("cookie", &s.cookie)
        .send()
        .await
        .unwrap();
    let (status, me) = answer(r).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (me["user"].as_str(), me["role"].as_str()),
        (Some("vera"), Some("viewer"))
    );
    assert_eq!(me["csrf_token"], s.csrf.as_str());
    let (status, body) = c
        .put_as(
            &s,
            "application/yaml",
            Some(&c.origin.clone()),
            Some(&s.csrf),
            50,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["error"].as_str().unwrap().contains("editor"), "{body}");
    assert_eq!(c.stored_v1_weight().await, 100);
}

#[tokio::test]
async fn an_editor_session_writes_only_from_the_consoles_origin_with_the_csrf_token() {
    let c = console(AuthConfig::default(), 1 << 20).await;
    let s = c.login("eddie", "editor-password").await.unwrap();
    let own = c.origin.clone();
    let evil = "http://evil.example";

    // The classic cross-site form: text/plain, foreign origin, no token.
    let (status, body) = c.put_as(&s, "text/plain", Some(evil), None, 10).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // Even with the right CSRF token, a foreign origin is refused.
    let (status, body) = c
        .put_as(&s, "application/yaml", Some(evil), Some(&s.csrf), 10)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["error"].as_str().unwrap().contains("origin"), "{body}");
    // The right origin without the token, or with a wrong one.
    let (status, _) = c.put_as(&s, "application/yaml", Some(&own), None, 10).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = c
        .put_as(&s, "application/yaml", Some(&own), Some("0000"), 10)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // No Origin and no Referer at all.
    let (status, _) = c
        .put_as(&s, "application/yaml", None, Some(&s.csrf), 10)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(c.stored_v1_weight().await, 100, "nothing was written");

    // Everything right, but a body type the API does not read.
    let (status, body) = c
        .put_as(&s, "text/plain", Some(&own), Some(&s.csrf), 10)
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("application/yaml"),
        "{body}"
    );

    // Everything right.
    let (status, body) = c
        .put_as(
            &s,
            "application/yaml; charset=utf-8",
            Some(&own),
            Some(&s.csrf),
            10,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(c.stored_v1_weight().await, 10);
    // A Referer from the console itself will do when there is no Origin.
    let r = c
        .client
        .put(c.url(VS_PATH))
        .header("cookie", &s.cookie)
        .header("content-type", "application/json")
        .header("referer", format!("{own}/config"))
        .header("x-csrf-token", &s.csrf)
        .body(serde_json::to_string(&serde_yaml_ng::from_str::<Value>(&vs(20)).unwrap()).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Logout ends the session for good.
    let r = c
        .client
        .post(c.url("/api/logout"))
        .header("cookie", &s.cookie)
        .header("origin", &own)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = c
        .client
        .get(c.url("/api/whoami"))
        .header("cookie", &s.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_bearer_token_writes_without_csrf_and_the_audit_log_names_the_user() {
    let c = console(AuthConfig::default(), 1 << 20).await;
    let token = Users::new(c.h.pool.clone())
        .issue_token("eddie", "ci")
        .await
        .unwrap();
    let r = c
        .client
        .put(c.url(VS_PATH))
        .bearer_auth(&token)
        .header("content-type", "application/yaml")
        .body(vs(70))
        .send()
        .await
        .unwrap();
    let (status, body) = answer(r).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(c.stored_v1_weight().await, 70);

    // And a session write, also eddie's.
    let s = c.login("eddie", "editor-password").await.unwrap();
    let (status, _) = c
        .put_as(
            &s,
            "application/yaml",
            Some(&c.origin.clone()),
            Some(&s.csrf),
            60,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let r = c
        .client
        .get(c.url("/api/audit?user=eddie&kind=vs&namespace=default"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (status, audit) = answer(r).await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let entries = audit.as_array().unwrap();
    assert_eq!(entries.len(), 2, "{audit}");
    for e in entries {
        assert_eq!(e["actor"], "eddie");
        assert_eq!(e["resource"], "VirtualService/default/reviews");
    }
    assert_eq!(entries[0]["revision"], 3, "newest first: {audit}");
    // The initial apply was the admin's; other filters exclude it.
    let r = c
        .client
        .get(c.url("/api/audit?kind=DestinationRule"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (_, audit) = answer(r).await;
    let entries = audit.as_array().unwrap();
    assert_eq!(entries.len(), 1, "{audit}");
    assert_eq!(entries[0]["actor"], "tester");
    // The revision's author is eddie too.
    let r = c
        .client
        .get(c.url(VS_PATH))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (_, detail) = answer(r).await;
    assert_eq!(detail["author"], "eddie");
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let c = console(AuthConfig::default(), 4096).await;
    let big = format!("{}\n# {}\n", vs(50), "x".repeat(8192));
    let r = c
        .client
        .put(c.url(VS_PATH))
        .bearer_auth(&c.h.token)
        .header("content-type", "application/yaml")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(c.stored_v1_weight().await, 100);
}

#[tokio::test]
async fn the_anonymous_viewer_reads_only_when_enabled_and_cookies_can_be_secure() {
    let auth = AuthConfig {
        anonymous_viewer: true,
        secure_cookies: true,
        ..AuthConfig::default()
    };
    let c = console(auth, 1 << 20).await;
    let r = c.client.get(c.url("/api/whoami")).send().await.unwrap();
    let (status, me) = answer(r).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["role"], "viewer");
    let r = c.client.get(c.url("/api/config")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = c
        .client
        .put(c.url(VS_PATH))
        .header("content-type", "application/yaml")
        .header("origin", &c.origin)
        .body(vs(0))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(c.stored_v1_weight().await, 100);

    // Behind TLS (`--secure-cookies`) the session cookie is `Secure`.
    let r = c
        .client
        .post(c.url("/api/login"))
        .json(&json!({ "user": "eddie", "password": "editor-password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
}

#[tokio::test]
async fn only_admins_manage_users() {
    let c = console(AuthConfig::default(), 1 << 20).await;
    let editor = Users::new(c.h.pool.clone())
        .issue_token("eddie", "ci")
        .await
        .unwrap();
    let new_user = json!({ "name": "nora", "role": "viewer", "password": "nora-password" });
    let add = |token: String| {
        c.client
            .post(c.url("/api/users"))
            .bearer_auth(token)
            .json(&new_user)
            .send()
    };
    assert_eq!(
        add(editor.clone()).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let r = c
        .client
        .get(c.url("/api/users"))
        .bearer_auth(&editor)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        add(c.h.token.clone()).await.unwrap().status(),
        StatusCode::CREATED
    );
    assert_eq!(
        add(c.h.token.clone()).await.unwrap().status(),
        StatusCode::CONFLICT
    );
    let r = c
        .client
        .get(c.url("/api/users"))
        .bearer_auth(&c.h.token)
        .send()
        .await
        .unwrap();
    let (_, users) = answer(r).await;
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["eddie", "nora", "tester", "vera"]);
    assert!(c.login("nora", "nora-password").await.is_ok());
}

#[tokio::test]
async fn a_removed_user_and_a_revoked_token_are_refused_from_the_next_request() {
    let c = console(AuthConfig::default(), 1 << 20).await;
    let users = Users::new(c.h.pool.clone());
    let ci = users.issue_token("eddie", "ci").await.unwrap();
    let laptop = users.issue_token("eddie", "laptop").await.unwrap();
    let whoami = |auth: (&'static str, String)| {
        c.client
            .get(c.url("/api/whoami"))
            .header(auth.0, auth.1)
            .send()
    };
    let bearer = |t: &str| ("authorization", format!("Bearer {t}"));
    assert_eq!(whoami(bearer(&ci)).await.unwrap().status(), StatusCode::OK);
    let names: Vec<String> = users
        .tokens("eddie")
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["ci", "laptop"]);

    assert_eq!(users.revoke_tokens("eddie", "ci").await.unwrap(), 1);
    assert_eq!(
        whoami(bearer(&ci)).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        whoami(bearer(&laptop)).await.unwrap().status(),
        StatusCode::OK
    );

    // An admin removes eddie: his open session and his last token stop working.
    let session = c.login("eddie", "editor-password").await.unwrap();
    let cookie = ("cookie", session.cookie.clone());
    assert_eq!(
        whoami(cookie.clone()).await.unwrap().status(),
        StatusCode::OK
    );
    let remove = |name: &str, token: &str| {
        c.client
            .delete(c.url(&format!("/api/users/{name}")))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(
        remove("eddie", &laptop).await.unwrap().status(),
        StatusCode::FORBIDDEN,
        "an editor removes no one"
    );
    assert_eq!(
        remove("eddie", &c.h.token).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        remove("eddie", &c.h.token).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        remove("tester", &c.h.token).await.unwrap().status(),
        StatusCode::CONFLICT,
        "not oneself"
    );
    assert_eq!(
        whoami(cookie).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        whoami(bearer(&laptop)).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert!(c.login("eddie", "editor-password").await.is_err());
}

#[tokio::test]
async fn over_tls_the_console_serves_https_and_the_cookie_is_secure() {
    let h = Harness::start().await;
    let dir = tempfile_dir("loupe-console-tls");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_pem, key_pem) = (cert.cert.pem(), cert.signing_key.serialize_pem());
    std::fs::write(dir.join("cert.pem"), &cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), &key_pem).unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut options =
        loupe_server::Options::new(h.pg.url(), format!("127.0.0.1:{port}").parse().unwrap());
    options.tls = Some(loupe_server::tls::TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(loupe_server::serve_until(options, async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .resolve("localhost", format!("127.0.0.1:{port}").parse().unwrap())
        .build()
        .unwrap();
    let base = format!("https://localhost:{port}");
    let mut health = None;
    for _ in 0..200 {
        if let Ok(r) = client.get(format!("{base}/api/health")).send().await {
            health = Some(r.status());
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(health, Some(StatusCode::OK));
    let login = client
        .post(format!("{base}/api/login"))
        .json(&serde_json::json!({"user": "tester", "password": "tester-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("Secure"), "{cookie}");
    // Plaintext on the same port gets no HTTP answer.
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/api/health")).await;
    assert!(plain.is_err(), "{plain:?}");
    let _ = stop.send(());
    let _ = std::fs::remove_dir_all(dir);
}

fn tempfile_dir(prefix: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
