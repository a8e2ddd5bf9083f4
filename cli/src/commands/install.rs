//! `loupe install [--set profile=demo] [--force]`: applies an install to the
//! cluster of the current kubectl context and waits until it is ready, as
//! `istioctl install`; `loupe dashboard` then opens the console. The work
//! is in `loupe_cluster::install`.

use std::process::ExitCode;
use std::time::Duration;

use loupe_cluster::install::{InstallOptions, Progress, install};
use loupe_k8s::manifest::Settings;

use super::runtime;

#[derive(clap::Args)]
pub struct Args {
    /// KEY=VALUE, as `loupe manifest generate`: profile (demo, default),
    /// database (internal, external), hub, tag, controlReplicas. Repeatable.
    #[arg(long = "set", short = 's', value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Install even if an Istio control plane is present, taking over the
    /// objects both write.
    #[arg(long)]
    force: bool,
    /// How long to wait for every Deployment and StatefulSet to be ready
    /// (Istio durations: 300s, 5m); 0s returns once everything is applied.
    #[arg(long, default_value = "300s", value_parser = super::control::parse_duration)]
    wait_timeout: Duration,
    /// The kubeconfig context (default: the current one).
    #[arg(long)]
    context: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let settings = match Settings::from_sets(&args.sets) {
        Ok(s) => s,
        Err(err) => {
            eprintln!("error: {err}");
            return Ok(ExitCode::from(2));
        }
    };
    let options = InstallOptions {
        force: args.force,
        wait: (!args.wait_timeout.is_zero()).then_some(args.wait_timeout),
    };
    runtime::block_on(async move {
        let client = loupe_cluster::connect(args.context).await?;
        let mut report = |p: Progress| match p {
            Progress::Applied(kind, name) => println!("applied {kind} {name}"),
            Progress::Ready(kind, name) => println!("✔ {kind} {name} ready"),
        };
        install(client, &settings, &options, &mut report).await?;
        println!(
            "✔ Loupe installed (profile {}). Label a namespace for injection: kubectl label namespace default istio-injection=enabled; open the console: loupe dashboard",
            settings.profile
        );
        anyhow::Ok(ExitCode::SUCCESS)
    })?
}
