//! `loupe manifest generate [--set profile=demo] [--set database=external]`:
//! prints the Kubernetes manifests of an install (as `istioctl manifest
//! generate`). The objects are built in loupe-k8s.

use std::process::ExitCode;

use loupe_k8s::manifest::{Settings, render};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Print every object of an install as multi-document YAML.
    Generate(GenerateArgs),
}

#[derive(clap::Args)]
pub struct GenerateArgs {
    /// KEY=VALUE: profile (demo, default), database (internal, external),
    /// hub, tag, controlReplicas. Repeatable.
    #[arg(long = "set", short = 's', value_name = "KEY=VALUE")]
    sets: Vec<String>,
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Generate(args) => {
            let settings = match Settings::from_sets(&args.sets) {
                Ok(s) => s,
                Err(err) => {
                    eprintln!("error: {err}");
                    return Ok(ExitCode::from(2));
                }
            };
            print!("{}", render(&settings));
            Ok(ExitCode::SUCCESS)
        }
    }
}
