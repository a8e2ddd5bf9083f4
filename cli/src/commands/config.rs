//! `loupe apply`, `loupe get`, `loupe history` (skeleton).

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct ApplyArgs {}
#[derive(clap::Args)]
pub struct GetArgs {}
#[derive(clap::Args)]
pub struct HistoryArgs {}

pub fn apply(_args: ApplyArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet implemented")
}
pub fn get(_args: GetArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet implemented")
}
pub fn history(_args: HistoryArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet implemented")
}
