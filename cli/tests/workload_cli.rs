//! `loupe workload token`: the built binary against a private Postgres.

use std::process::Command;

#[test]
fn workload_token_prints_a_new_token_and_stores_only_its_hash() {
    let pg = loupe_db::PrivatePostgres::start_temporary().expect("private postgres");
    let home = tempfile::tempdir().unwrap();
    let run = |entry: &str| {
        Command::new(env!("CARGO_BIN_EXE_loupe"))
            .args(["workload", "token", entry])
            .env("DATABASE_URL", pg.url())
            .env("LOUPE_HOME", home.path())
            .output()
            .expect("run loupe")
    };
    let out = run("default/reviews-v1");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(first.len(), 64, "32 random bytes in hex: {first}");
    assert!(first.bytes().all(|b| b.is_ascii_hexdigit()));
    let second = String::from_utf8(run("reviews-v1").stdout)
        .unwrap()
        .trim()
        .to_string();
    assert_ne!(first, second, "a new token each time");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let rows: Vec<(String, String, Vec<u8>)> = rt.block_on(async {
        let pool = loupe_db::connect(&pg.url(), 1).await.unwrap();
        sqlx::query_as("SELECT namespace, name, token_sha256 FROM workload_tokens")
            .fetch_all(&pool)
            .await
            .unwrap()
    });
    assert_eq!(
        rows.len(),
        1,
        "one token per entry: the second replaced the first"
    );
    assert_eq!(
        (rows[0].0.as_str(), rows[0].1.as_str()),
        ("default", "reviews-v1")
    );
    assert_eq!(rows[0].2, loupe_control::authn::hash_token(&second));

    let bad = run("Not/A Name");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("NAMESPACE/NAME"));
}
