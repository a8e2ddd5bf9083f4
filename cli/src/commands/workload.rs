//! `loupe workload token NS/NAME`: a bootstrap credential for the proxy of
//! one WorkloadEntry (local mode). The proxy sends it on every call to the
//! control plane (`loupe-proxy --token-file`); the control plane keeps
//! only its hash.

use std::process::ExitCode;

use loupe_control::authn::BootstrapTokens;

use super::{config, runtime};

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Print a new bootstrap token for WorkloadEntry NS/NAME (or NAME in
    /// `default`); the entry's previous token stops working.
    Token(TokenArgs),
}

#[derive(clap::Args, Debug)]
pub struct TokenArgs {
    /// The WorkloadEntry: NAMESPACE/NAME, or NAME in the default namespace.
    pub entry: String,
    #[command(flatten)]
    pub db: config::DatabaseArgs,
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Token(args) => token(args),
    }
}

fn token(args: TokenArgs) -> anyhow::Result<ExitCode> {
    let (namespace, name) = parse_entry(&args.entry)?;
    let url = config::database_url(args.db.database_url.as_deref())?;
    let (token, declared) = runtime::block_on(async move {
        let pool = loupe_db::connect(&url, 1).await?;
        let entries = loupe_control::ConfigStore::new(pool.clone())
            .list(Some(loupe_model::Kind::WorkloadEntry))
            .await?;
        let declared = entries
            .iter()
            .any(|e| e.key.namespace == namespace && e.key.name == name);
        let token = BootstrapTokens::new(pool).issue(&namespace, &name).await?;
        anyhow::Ok((token, declared))
    })??;
    if !declared {
        eprintln!(
            "warning: there is no WorkloadEntry {} in the config store yet: the control plane refuses this token's proxy until one is applied",
            args.entry
        );
    }
    eprintln!(
        "bootstrap token for WorkloadEntry {}: shown once; any earlier token of this entry no longer works",
        args.entry
    );
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

/// `NS/NAME` or `NAME` (in `default`), each a Kubernetes name.
fn parse_entry(s: &str) -> anyhow::Result<(String, String)> {
    let (namespace, name) = match s.split_once('/') {
        Some((ns, name)) => (ns, name),
        None => (loupe_model::meta::DEFAULT_NAMESPACE, s),
    };
    let valid = |part: &str| {
        !part.is_empty()
            && part.len() <= 253
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    };
    if !valid(namespace) || !valid(name) {
        anyhow::bail!(
            "`{s}` is not NAMESPACE/NAME of a WorkloadEntry (lowercase letters, digits, `-`, `.`; e.g. default/reviews-v1)"
        );
    }
    Ok((namespace.to_string(), name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_as_kubectl_names() {
        assert_eq!(
            parse_entry("shop/cart-v1").unwrap(),
            ("shop".to_string(), "cart-v1".to_string())
        );
        assert_eq!(
            parse_entry("reviews-v1").unwrap(),
            ("default".to_string(), "reviews-v1".to_string())
        );
        for bad in ["", "a/", "/b", "a/b/c", "Reviews", "a b"] {
            assert!(parse_entry(bad).is_err(), "{bad:?}");
        }
    }
}
