//! `loupe-db` owns Loupe's one Postgres schema — the sqlx migrations in
//! `migrations/` at the workspace root, embedded here — and the way to reach
//! a database: [`connect`] (which migrates) and [`PrivatePostgres`], a
//! throw-away PostgreSQL server in its own directory that `loupe demo` and
//! every test needing a database start. It owns no queries: each part keeps
//! its own (the control plane its config store, the collector its writer).
#![deny(rust_2018_idioms)]

mod private;

pub use private::{PrivatePostgres, PrivatePostgresError};
pub use sqlx::PgPool;

use sqlx::postgres::PgPoolOptions;

/// The schema, embedded from `migrations/`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(
        "cannot connect to Postgres at {url}: {source} (is it running? set DATABASE_URL or run `loupe demo`)"
    )]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("migrating the database at {url} failed: {source}")]
    Migrate {
        url: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
}

/// Connects to `url` and brings the schema up to date.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, DbError> {
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect(url)
        .await
        .map_err(|source| DbError::Connect {
            url: redact(url),
            source,
        })?;
    MIGRATOR
        .run(&pool)
        .await
        .map_err(|source| DbError::Migrate {
            url: redact(url),
            source,
        })?;
    Ok(pool)
}

/// The URL without its password, for messages and logs (the private
/// server's URL has none: it authenticates by peer).
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redact_hides_password_only() {
        assert_eq!(
            super::redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(
            super::redact("postgres:///db?host=/tmp"),
            "postgres:///db?host=/tmp"
        );
    }
}
