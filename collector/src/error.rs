//! The collector's one error type: what failed, with which input.

use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    #[error(transparent)]
    Database(#[from] loupe_db::DbError),
    #[error(
        "cannot listen for OTLP/{protocol} on {addr}: {source} (is the port in use? pass another address)"
    )]
    Bind {
        protocol: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("OTLP/{protocol} server failed: {message}")]
    Serve {
        protocol: &'static str,
        message: String,
    },
    #[error("managing partitions of {table} failed: {source}")]
    Partition {
        table: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("{what} failed: {source}")]
    Sql {
        what: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot install the {signal} handler: {source}")]
    Signal {
        signal: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("building the scrape HTTP client failed: {0}")]
    HttpClient(#[source] reqwest::Error),
}

impl CollectorError {
    pub(crate) fn sql(what: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| CollectorError::Sql { what, source }
    }
}
