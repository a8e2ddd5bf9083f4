//! `loupe-proxy`: the sidecar / ingress gateway binary, and with
//! `loupe-proxy iptables` the capture init command. See the crate docs of
//! `loupe_proxy`, `loupe-proxy --help` and `loupe-proxy iptables --help`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use loupe_proxy::cli::Args;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour only on a terminal: the demo writes proxy logs to files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // `loupe-proxy iptables …`: the capture init command, then exit.
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == "iptables") {
        let init = loupe_proxy::capture::iptables::Args::parse_from(&argv[1..]);
        return match init.run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("loupe-proxy iptables: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let args = Args::parse();
    // The main thread runs the control-plane client, the span exporter and
    // admin; the data path runs on worker threads of its own (`--concurrency`).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("loupe-proxy: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async {
        match loupe_proxy::run(args, shutdown()).await {
            Ok(()) => {
                tracing::info!("loupe-proxy stopped");
                ExitCode::SUCCESS
            }
            Err(error) => {
                tracing::error!(%error, "loupe-proxy cannot start");
                eprintln!("loupe-proxy: {error}");
                ExitCode::FAILURE
            }
        }
    });
    // Connections that outlived the drain are not waited for.
    runtime.shutdown_background();
    code
}

/// Ctrl-C or SIGTERM.
async fn shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
