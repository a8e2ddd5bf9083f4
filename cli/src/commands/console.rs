//! `loupe console`: the console server alone (the API and the built
//! frontend), e.g. as its own Deployment. `loupe demo` runs the same thing.
//! Every API call needs a login or an API token (`loupe user add`, `loupe
//! user token`; see docs/console-auth.md), unless `--anonymous-viewer` lets
//! anyone read.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::runtime::{block_on, init_logging};

#[derive(clap::Args)]
pub struct Args {
    /// Postgres holding config, spans and metric rollups (migrated on start).
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// Address to serve HTTP on.
    #[arg(long, default_value = "127.0.0.1:20001")]
    pub listen: SocketAddr,
    /// The built frontend (e.g. `frontend/dist`); without it only `/api` is served.
    #[arg(long)]
    pub static_dir: Option<PathBuf>,
    /// Let anyone read without logging in (Kiali's anonymous strategy,
    /// read-only); writes still need a user with the editor role.
    #[arg(long)]
    pub anonymous_viewer: bool,
    /// Mark the session cookie `Secure`: the console is reached over HTTPS
    /// (e.g. behind a TLS-terminating ingress).
    #[arg(long)]
    pub secure_cookies: bool,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub max_body: usize,
    /// Longest a request may take before its answer starts, in seconds.
    #[arg(long, default_value_t = 30)]
    pub request_timeout: u64,
    /// Connections served at once (more wait to be accepted).
    #[arg(long, default_value_t = 1024)]
    pub max_connections: usize,
    /// A supervisor's record of the mesh's parts and their restarts, served
    /// at `/api/components` (`loupe demo` passes its own).
    #[arg(long)]
    pub components_file: Option<PathBuf>,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key); the
    /// session cookie is then `Secure`.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging();
    let mut options = loupe_server::Options::new(args.database_url, args.listen);
    options.static_dir = args.static_dir;
    options.auth.anonymous_viewer = args.anonymous_viewer;
    options.auth.secure_cookies = args.secure_cookies;
    options.limits.max_body_bytes = args.max_body;
    options.limits.request_timeout = std::time::Duration::from_secs(args.request_timeout.max(1));
    options.max_connections = args.max_connections;
    options.components_file = args.components_file;
    options.tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(loupe_server::tls::TlsFiles { cert, key }),
        _ => None,
    };
    block_on(loupe_server::serve(options))?.context("console server")?;
    Ok(ExitCode::SUCCESS)
}
