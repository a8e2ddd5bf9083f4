//! `loupe control`: the control plane alone (config store on Postgres, push
//! stream to proxies) until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::process::ExitCode;

use super::{config, runtime};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub db: config::DatabaseArgs,
    /// Where proxies connect (gRPC).
    #[arg(long, default_value = "127.0.0.1:15010")]
    pub listen: SocketAddr,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    runtime::init_logging();
    let database_url = config::database_url(args.db.database_url.as_deref())?;
    let options = loupe_control::Options {
        database_url,
        listen: args.listen,
    };
    runtime::block_on(loupe_control::serve(options))??;
    Ok(ExitCode::SUCCESS)
}
