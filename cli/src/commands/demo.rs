//! `loupe demo`: the whole mesh locally (see `crate::demo`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use super::runtime;
use crate::demo;

#[derive(clap::Args)]
pub struct Args {
    /// Use this Postgres instead of starting a private one.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// Where the demo keeps its database, logs and state (default: $LOUPE_HOME or ~/.loupe).
    #[arg(long)]
    home: Option<PathBuf>,
    /// Port of the private Postgres (on its Unix socket only).
    #[arg(long, default_value_t = 15432)]
    postgres_port: u16,
    /// The console (UI and API).
    #[arg(long, default_value = "127.0.0.1:20001")]
    console: SocketAddr,
    /// The control plane's gRPC listener.
    #[arg(long, default_value = "127.0.0.1:15010")]
    control: SocketAddr,
    #[arg(long, default_value = "127.0.0.1:4317")]
    otlp_grpc: SocketAddr,
    #[arg(long, default_value = "127.0.0.1:4318")]
    otlp_http: SocketAddr,
    /// First of the ports given to workloads (4 per workload, the gateway at +80).
    #[arg(long, default_value_t = 21000)]
    port_base: u16,
    /// Requests per second the load generator sends through the gateway.
    #[arg(long, default_value_t = 10.0)]
    rps: f64,
    /// The built frontend (default: frontend/dist of this source tree).
    #[arg(long)]
    static_dir: Option<PathBuf>,
    /// How often the collector scrapes the sidecars.
    #[arg(long, default_value = "5s")]
    scrape_interval: String,
    /// Lifetime of the workload certificates (Istio durations: 24h, 20s);
    /// sidecars renew at half of it.
    #[arg(long, default_value = "24h")]
    cert_ttl: String,
    /// Percent of new traces sampled (`loupe control --trace-sampling`):
    /// 100 as in Istio's demo profile, so every request shows in the
    /// console's traces; Istio's production default is 1.
    #[arg(long, default_value = "100")]
    trace_sampling: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    runtime::init_logging();
    let opts = demo::DemoOptions {
        database_url: args.database_url,
        home: args.home.unwrap_or_else(demo::loupe_home),
        postgres_port: args.postgres_port,
        control: args.control,
        otlp_grpc: args.otlp_grpc,
        otlp_http: args.otlp_http,
        console: args.console,
        port_base: args.port_base,
        rps: args.rps,
        static_dir: args.static_dir,
        scrape_interval: args.scrape_interval,
        cert_ttl: args.cert_ttl,
        trace_sampling: args.trace_sampling,
    };
    runtime::block_on(demo::run(opts))??;
    Ok(ExitCode::SUCCESS)
}
