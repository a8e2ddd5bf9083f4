//! `loupe authz check` (skeleton).

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Would this request be allowed by these AuthorizationPolicies?
    Check(CheckArgs),
}

#[derive(clap::Args)]
pub struct CheckArgs {}

pub fn run(_command: Command) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet implemented")
}
