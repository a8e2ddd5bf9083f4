//! Starts a real private server, migrates it, and queries it.

#[tokio::test]
async fn private_postgres_starts_migrates_and_answers() {
    let pg = loupe_db::PrivatePostgres::start_temporary().expect("start private postgres");
    let pool = loupe_db::connect(&pg.url(), 2)
        .await
        .expect("connect + migrate");
    let (n,): (i64,) = sqlx::query_as("select count(*) from _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .expect("query");
    assert!(n >= 1, "migrations recorded: {n}");
}

#[tokio::test]
async fn connect_to_dead_server_names_the_url() {
    let err = loupe_db::connect(
        "postgres://postgres@localhost/x?host=/nonexistent&port=1",
        1,
    )
    .await
    .expect_err("no server there");
    let msg = err.to_string();
    assert!(msg.contains("/nonexistent"), "{msg}");
}
