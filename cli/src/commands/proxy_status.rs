//! `loupe proxy-status`: every proxy the control plane has seen, as
//! `istioctl proxy-status` shows them — connected or not, the config
//! revision it applied and whether that is the newest (SYNCED, STALE,
//! NACKED with the proxy's reason, DISCONNECTED), last seen. From the
//! console's `GET /api/proxy-status`.

use std::process::ExitCode;

use loupe_api::mesh::{ProxyStatusList, Sync};

use super::config::{HistoryOutput, print_columns, report};
use super::console_api::{ConsoleApi, ConsoleArgs};
use super::runtime;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(short, long, value_enum, default_value_t = HistoryOutput::Text)]
    pub output: HistoryOutput,
    #[command(flatten)]
    pub console: ConsoleArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let api = ConsoleApi::new(&args.console)?;
    let answer = runtime::block_on(api.get::<ProxyStatusList>("/api/proxy-status"))??;
    let list = match answer {
        Ok(l) => l,
        Err(refused) => return report(refused),
    };
    if matches!(args.output, HistoryOutput::Json) {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    let revision = |r: Option<i64>| r.map(|r| r.to_string()).unwrap_or_else(|| "-".into());
    let rows: Vec<[String; 6]> = list
        .proxies
        .iter()
        .map(|p| {
            let sync = match p.sync {
                Sync::Synced => "SYNCED".to_string(),
                Sync::Stale => "STALE".to_string(),
                Sync::Nacked => format!(
                    "NACKED ({})",
                    p.nack_error.as_deref().unwrap_or("no reason given")
                ),
                Sync::Disconnected => "DISCONNECTED".to_string(),
            };
            [
                format!("{}.{}", p.workload, p.namespace),
                p.address.clone(),
                sync,
                revision(p.acked_revision),
                revision(p.nacked_revision),
                p.last_seen.format("%Y-%m-%d %H:%M:%SZ").to_string(),
            ]
        })
        .collect();
    print_columns(
        ["NAME", "ADDRESS", "SYNC", "ACKED", "NACKED", "LAST SEEN"],
        &rows,
    );
    println!(
        "\nconfig revision {}: applied by {} of {} connected proxies",
        list.config_revision, list.synced, list.connected
    );
    Ok(ExitCode::SUCCESS)
}
