//! `loupe-sample`: runs one bookinfo service or the load generator.

use std::net::SocketAddr;

use clap::{Parser, Subcommand};
use loupe_samples::{bookinfo, loadgen};

#[derive(Parser)]
#[command(name = "loupe-sample", about = "Loupe's demo application")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one bookinfo service.
    Serve {
        #[arg(value_enum)]
        role: bookinfo::Role,
        /// The version this instance reports (reviews: v1 calls no ratings; v2, v3 do).
        #[arg(long, default_value = "v1")]
        version: String,
        #[arg(long)]
        listen: SocketAddr,
        /// The sidecar's outbound listener.
        #[arg(long)]
        proxy: SocketAddr,
    },
    /// Send steady traffic to the ingress gateway.
    Load {
        #[arg(long)]
        target: SocketAddr,
        #[arg(long, default_value = "bookinfo.example.com")]
        host: String,
        #[arg(long, default_value = "/productpage")]
        path: String,
        #[arg(long, default_value_t = 10.0)]
        rps: f64,
        #[arg(long, default_value_t = 200)]
        max_in_flight: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Serve {
            role,
            version,
            listen,
            proxy,
        } => bookinfo::run(role, version, listen, proxy).await,
        Command::Load {
            target,
            host,
            path,
            rps,
            max_in_flight,
        } => {
            loadgen::run(loadgen::LoadOptions {
                target,
                host,
                path,
                rps,
                max_in_flight,
            })
            .await
        }
    }
}
