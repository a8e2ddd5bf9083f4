//! `loupe collector`: the telemetry collector alone (OTLP receivers,
//! Prometheus scraper, Postgres writer) until ctrl-c or SIGTERM.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use super::runtime::{block_on, init_logging};

#[derive(clap::Args)]
pub struct Args {
    /// Postgres to write to (migrated on start).
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// OTLP/gRPC listen address.
    #[arg(long, default_value = "127.0.0.1:4317")]
    otlp_grpc: SocketAddr,
    /// OTLP/HTTP listen address (POST /v1/traces, protobuf or JSON).
    #[arg(long, default_value = "127.0.0.1:4318")]
    otlp_http: SocketAddr,
    /// How often every connected proxy's /stats/prometheus is scraped (e.g. 5s, 500ms, 1m).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    scrape_interval: Duration,
    /// Days of spans and metric rollups kept besides today.
    #[arg(long, default_value_t = 7)]
    retention_days: u32,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging();
    let options = loupe_collector::Options {
        database_url: args.database_url,
        otlp_grpc: args.otlp_grpc,
        otlp_http: args.otlp_http,
        scrape_interval: args.scrape_interval,
        retention_days: args.retention_days,
    };
    block_on(loupe_collector::serve(options))?.context("collector failed")?;
    Ok(ExitCode::SUCCESS)
}

/// `500ms`, `5s`, `1m`, or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration: use e.g. 500ms, 5s or 1m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("unknown unit {unit:?} in {text:?}: use ms, s or m")),
    };
    if !(seconds > 0.0 && seconds.is_finite()) {
        return Err(format!("{text:?}: the scrape interval must be positive"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5h").is_err());
    }
}
