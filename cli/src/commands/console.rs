//! `loupe console`: the console server alone (the API and the built
//! frontend), e.g. as its own Deployment. `loupe demo` runs the same thing.

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
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging();
    let options = loupe_server::Options {
        database_url: args.database_url,
        listen: args.listen,
        static_dir: args.static_dir,
    };
    block_on(loupe_server::serve(options))?.context("console server")?;
    Ok(ExitCode::SUCCESS)
}
