//! `loupe`: one command for the whole mesh. `loupe demo` runs everything on
//! this machine; `analyze`, `route` and `authz check` answer questions about
//! Istio YAML offline; `apply`, `get`, `history` and `audit` work on the
//! config store through the console's API (as kubectl through the API server),
//! `workload token` makes a proxy's bootstrap credential, `user add` and
//! `user token` the console's users and API tokens; `manifest generate`,
//! `install` and `dashboard` put Loupe on Kubernetes and open its console;
//! `control`, `collector` and `console` run each part alone.
//!
//! Each subcommand lives in `commands/` and only parses arguments, calls the
//! crate that owns the work, and prints; exit codes: 0 ok, 1 the command's
//! answer is a failure (e.g. `analyze` found errors), 2 usage errors.
#![deny(rust_2018_idioms)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;
mod demo;

#[derive(Parser)]
#[command(name = "loupe", version, about = "Loupe: a service mesh with a console", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole mesh locally: Postgres, control plane, collector, console, sample app, traffic.
    Demo(commands::demo::Args),
    /// Validate Istio YAML files (schema and cross-resource checks).
    Analyze(commands::analyze::Args),
    /// Where would a request go? Route selection from VirtualServices.
    Route(commands::route::Args),
    /// Authorization questions.
    Authz {
        #[command(subcommand)]
        command: commands::authz::Command,
    },
    /// Apply Istio YAML to the config store (validated first; a new revision per changed resource).
    Apply(commands::config::ApplyArgs),
    /// List the resources in the config store.
    Get(commands::config::GetArgs),
    /// Show the revisions of one resource (KIND/NAMESPACE/NAME).
    History(commands::config::HistoryArgs),
    /// Who changed which config when (the console's audit log).
    Audit(commands::config::AuditArgs),
    /// Every proxy: connected, the config revision it applied, SYNCED or not (as istioctl proxy-status).
    ProxyStatus(commands::proxy_status::Args),
    /// Workload credentials (local mode).
    Workload {
        #[command(subcommand)]
        command: commands::workload::Command,
    },
    /// Console users and their API tokens.
    User {
        #[command(subcommand)]
        command: commands::user::Command,
    },
    /// Kubernetes manifests of an install (CRDs, RBAC, parts, webhooks).
    Manifest {
        #[command(subcommand)]
        command: commands::manifest::Command,
    },
    /// Install Loupe in the cluster of the current kubectl context (as istioctl install).
    Install(commands::install::Args),
    /// Open the console of the cluster's install through a port-forward (as istioctl dashboard kiali).
    Dashboard(commands::dashboard::Args),
    /// Run the control plane alone.
    Control(commands::control::Args),
    /// Run the telemetry collector alone.
    Collector(commands::collector::Args),
    /// Run the console server alone.
    Console(commands::console::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => commands::demo::run(args),
        Command::Analyze(args) => commands::analyze::run(args),
        Command::Route(args) => commands::route::run(args),
        Command::Authz { command } => commands::authz::run(command),
        Command::Apply(args) => commands::config::apply(args),
        Command::Get(args) => commands::config::get(args),
        Command::History(args) => commands::config::history(args),
        Command::Audit(args) => commands::config::audit(args),
        Command::ProxyStatus(args) => commands::proxy_status::run(args),
        Command::Workload { command } => commands::workload::run(command),
        Command::User { command } => commands::user::run(command),
        Command::Manifest { command } => commands::manifest::run(command),
        Command::Install(args) => commands::install::run(args),
        Command::Dashboard(args) => commands::dashboard::run(args),
        Command::Control(args) => commands::control::run(args),
        Command::Collector(args) => commands::collector::run(args),
        Command::Console(args) => commands::console::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}
