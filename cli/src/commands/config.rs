//! `loupe apply`, `loupe get`, `loupe history`, `loupe audit`: the config
//! store from the shell, printed the way kubectl prints.
//!
//! They talk to the console's API (see [`super::console_api`]), so the
//! console's users, roles and audit log apply. With `--database-url` (or
//! `DATABASE_URL`) they work on the store directly instead — bootstrap and
//! offline work, where `--author` says who made the change.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use loupe_api::config::{Applied, Resource, Revision};
use loupe_api::encode;
use loupe_control::{ConfigStore, StoreError, StoredResource};
use loupe_model::{Diagnostic, Kind, ResourceKey};

use super::console_api::{ConsoleApi, ConsoleArgs, Refused};
use super::runtime;

/// Where the config store is: `--database-url`/`DATABASE_URL`.
#[derive(clap::Args, Debug)]
pub struct DatabaseArgs {
    /// Postgres URL of the config store (default: the running `loupe demo`'s database).
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
}

/// The console's API, or (`--database-url`) the store itself.
#[derive(clap::Args, Debug)]
pub struct StoreArgs {
    #[command(flatten)]
    pub console: ConsoleArgs,
    /// Work on the config store's Postgres directly instead of through the
    /// console (bootstrap, offline); `DATABASE_URL` too.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
}

/// Where a command's requests go.
enum Backend {
    Store(String),
    Console(ConsoleApi),
}

impl StoreArgs {
    fn backend(&self) -> anyhow::Result<Backend> {
        match self
            .database_url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
        {
            Some(url) => Ok(Backend::Store(url.to_string())),
            None => Ok(Backend::Console(ConsoleApi::new(&self.console)?)),
        }
    }
}

/// A resource the console listed, as the store's type (one table printer).
fn stored(r: Resource) -> StoredResource {
    StoredResource {
        key: ResourceKey {
            kind: r.kind,
            namespace: r.namespace,
            name: r.name,
        },
        revision: r.revision,
        yaml: r.yaml,
        object: r.object,
        author: r.author,
        created_at: r.created_at,
    }
}

/// A refusal of the console as the CLI reports it: diagnostics for refused
/// config (exit 1), the message otherwise.
pub(crate) fn report(refused: Refused) -> anyhow::Result<ExitCode> {
    if refused.status == 422 {
        eprintln!("error: config refused, nothing was written:");
        print_diagnostics(&refused.diagnostics);
    } else {
        eprintln!("error: {}", refused.message);
    }
    Ok(ExitCode::from(1))
}

#[derive(clap::Args, Debug)]
pub struct ApplyArgs {
    /// YAML or JSON file with Istio resources (`-` for stdin); repeatable. All
    /// files are applied together or not at all.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// Who made the change, for the history and audit log (default: $USER).
    /// Only with --database-url: through the console, the token's user is.
    #[arg(long)]
    pub author: Option<String>,
    /// Validate and show what would change, writing nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(clap::Args, Debug)]
pub struct GetArgs {
    /// Kind to list (`virtualservices`, `vs`, `DestinationRule`, …); all kinds if omitted.
    pub kind: Option<String>,
    /// Only the resource(s) of this name (needs KIND).
    #[arg(requires = "kind")]
    pub name: Option<String>,
    /// Only this namespace (default: all namespaces).
    #[arg(short, long)]
    pub namespace: Option<String>,
    #[arg(short, long, value_enum, default_value_t = GetOutput::Text)]
    pub output: GetOutput,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum GetOutput {
    Text,
    Yaml,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    /// KIND/NAMESPACE/NAME (or KIND/NAME in `default`), e.g. `vs/default/reviews`.
    pub resource: String,
    #[arg(short, long, value_enum, default_value_t = HistoryOutput::Text)]
    pub output: HistoryOutput,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum HistoryOutput {
    Text,
    Json,
}

pub fn apply(args: ApplyArgs) -> anyhow::Result<ExitCode> {
    let mut texts = Vec::with_capacity(args.files.len());
    for file in &args.files {
        texts.push((file.display().to_string(), read_input(file)?));
    }
    let api = match args.store.backend()? {
        Backend::Store(url) => return apply_to_store(&url, &texts, args.author, args.dry_run),
        Backend::Console(api) => api,
    };
    if args.author.is_some() {
        eprintln!("warning: --author is ignored: the console records the user of the API token");
    }
    // All files as one multi-document body: one all-or-nothing change.
    let body = texts
        .iter()
        .map(|(_, t)| t.trim_end_matches('\n'))
        .collect::<Vec<_>>()
        .join("\n---\n");
    let source = texts
        .iter()
        .map(|(s, _)| s.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let dry_run = if args.dry_run { "true" } else { "false" };
    let answer = runtime::block_on(async move {
        api.call::<Vec<Applied>>(
            reqwest::Method::POST,
            "/api/config",
            &[("source", source.as_str()), ("dry_run", dry_run)],
            Some(body),
        )
        .await
    })??;
    let applied = match answer {
        Ok(a) => a,
        Err(refused) => return report(refused),
    };
    let texts: Vec<(&str, &str)> = texts
        .iter()
        .map(|(s, t)| (s.as_str(), t.as_str()))
        .collect();
    print_parse_warnings(&texts);
    if applied.is_empty() {
        eprintln!("no Istio resources found in the given files");
    }
    let dry = if args.dry_run { " (dry run)" } else { "" };
    for a in applied {
        println!(
            "{} {}/{} {} (revision {}){dry}",
            a.kind.as_str().to_ascii_lowercase(),
            a.namespace,
            a.name,
            a.outcome,
            a.revision
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `loupe apply --database-url`: straight into the store, as `author`.
fn apply_to_store(
    url: &str,
    texts: &[(String, String)],
    author: Option<String>,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    let author = author
        .or_else(|| std::env::var("USER").ok().filter(|a| !a.is_empty()))
        .or_else(|| std::env::var("LOGNAME").ok().filter(|a| !a.is_empty()))
        .unwrap_or_else(|| "unknown".to_string());
    runtime::block_on(async move {
        let store = connect(url).await?;
        let texts: Vec<(&str, &str)> = texts
            .iter()
            .map(|(s, t)| (s.as_str(), t.as_str()))
            .collect();
        let result = if dry_run {
            store.dry_run(&texts, &author).await
        } else {
            store.apply_all(&texts, &author).await
        };
        let dry = if dry_run { " (dry run)" } else { "" };
        match result {
            Ok(applied) => {
                print_parse_warnings(&texts);
                if applied.is_empty() {
                    eprintln!("no Istio resources found in the given files");
                }
                for a in applied {
                    println!(
                        "{} {}/{} {} (revision {}){dry}",
                        a.key.kind.as_str().to_ascii_lowercase(),
                        a.key.namespace,
                        a.key.name,
                        a.outcome,
                        a.revision
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(StoreError::Invalid { diagnostics }) => {
                eprintln!("error: config refused, nothing was written:");
                print_diagnostics(&diagnostics);
                Ok(ExitCode::from(1))
            }
            Err(e) => Err(e.into()),
        }
    })?
}

pub fn get(args: GetArgs) -> anyhow::Result<ExitCode> {
    let kind = args.kind.as_deref().map(parse_kind).transpose()?;
    let mut resources = match args.store.backend()? {
        Backend::Store(url) => runtime::block_on(async move {
            let store = connect(&url).await?;
            anyhow::Ok(store.list(kind).await?)
        })??,
        Backend::Console(api) => {
            let path = match kind {
                Some(k) => format!("/api/config?kind={}", k.as_str()),
                None => "/api/config".to_string(),
            };
            match runtime::block_on(async move { api.get::<Vec<Resource>>(&path).await })?? {
                Ok(listed) => listed.into_iter().map(stored).collect(),
                Err(refused) => return report(refused),
            }
        }
    };
    resources.retain(|r| {
        args.name.as_ref().is_none_or(|n| &r.key.name == n)
            && args
                .namespace
                .as_ref()
                .is_none_or(|ns| &r.key.namespace == ns)
    });
    if resources.is_empty() && args.name.is_some() {
        eprintln!(
            "error: no {} named {} in the config store",
            args.kind.as_deref().unwrap_or_default(),
            args.name.as_deref().unwrap_or_default()
        );
        return Ok(ExitCode::from(1));
    }
    match args.output {
        GetOutput::Text if resources.is_empty() => eprintln!("No resources found."),
        GetOutput::Text => print_table(&resources),
        GetOutput::Yaml => {
            let docs: Vec<&str> = resources.iter().map(|r| r.yaml.trim_end()).collect();
            if !docs.is_empty() {
                println!("{}", docs.join("\n---\n"));
            }
        }
        GetOutput::Json => {
            // kubectl's shape for a list of objects.
            let items: Vec<&serde_json::Value> = resources.iter().map(|r| &r.object).collect();
            let list = serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": items });
            println!("{}", serde_json::to_string_pretty(&list)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn history(args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let key = parse_key(&args.resource)?;
    let revisions = match args.store.backend()? {
        Backend::Store(url) => {
            let revisions = runtime::block_on(async move {
                let store = connect(&url).await?;
                anyhow::Ok(store.history(&key).await)
            })??;
            match revisions {
                Ok(r) => r
                    .into_iter()
                    .map(loupe_server::config::revision_json)
                    .collect(),
                Err(e @ StoreError::NotFound { .. }) => {
                    eprintln!("error: {e}");
                    return Ok(ExitCode::from(1));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Backend::Console(api) => {
            let path = format!(
                "/api/config/{}/{}/{}/history",
                key.kind.as_str(),
                encode(&key.namespace),
                encode(&key.name)
            );
            match runtime::block_on(async move { api.get::<Vec<Revision>>(&path).await })?? {
                Ok(r) => r,
                Err(refused) => return report(refused),
            }
        }
    };
    match args.output {
        HistoryOutput::Json => println!("{}", serde_json::to_string_pretty(&revisions)?),
        HistoryOutput::Text => {
            let rows: Vec<[String; 4]> = revisions
                .iter()
                .map(|r| {
                    let change = if r.deleted {
                        format!("{} (deleted)", r.message)
                    } else {
                        r.message.clone()
                    };
                    [
                        r.revision.to_string(),
                        r.created_at.format("%Y-%m-%d %H:%M:%SZ").to_string(),
                        r.author.clone(),
                        change,
                    ]
                })
                .collect();
            print_columns(["REVISION", "CREATED", "AUTHOR", "CHANGE"], &rows);
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args, Debug)]
pub struct AuditArgs {
    /// Only the changes of this user.
    #[arg(long)]
    pub user: Option<String>,
    /// Only resources of this kind (`vs`, `DestinationRule`, …).
    #[arg(long)]
    pub kind: Option<String>,
    /// Only resources in this namespace.
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// At most this many entries, newest first.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    #[arg(short, long, value_enum, default_value_t = HistoryOutput::Text)]
    pub output: HistoryOutput,
    #[command(flatten)]
    pub console: ConsoleArgs,
}

/// `loupe audit`: who changed what when (`GET /api/audit`).
pub fn audit(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let kind = args.kind.as_deref().map(parse_kind).transpose()?;
    let api = ConsoleApi::new(&args.console)?;
    let limit = args.limit.to_string();
    let mut query = vec![("limit", limit.as_str())];
    if let Some(user) = &args.user {
        query.push(("user", user));
    }
    if let Some(kind) = kind {
        query.push(("kind", kind.as_str()));
    }
    if let Some(ns) = &args.namespace {
        query.push(("namespace", ns));
    }
    let answer = runtime::block_on(api.call::<Vec<loupe_api::audit::AuditEntry>>(
        reqwest::Method::GET,
        "/api/audit",
        &query,
        None,
    ))??;
    let entries = match answer {
        Ok(e) => e,
        Err(refused) => return report(refused),
    };
    match args.output {
        HistoryOutput::Json => println!("{}", serde_json::to_string_pretty(&entries)?),
        HistoryOutput::Text if entries.is_empty() => eprintln!("No changes found."),
        HistoryOutput::Text => {
            let rows: Vec<[String; 5]> = entries
                .iter()
                .map(|e| {
                    [
                        e.at.format("%Y-%m-%d %H:%M:%SZ").to_string(),
                        e.actor.clone(),
                        e.action.clone(),
                        e.resource.clone(),
                        e.revision.map(|r| r.to_string()).unwrap_or_default(),
                    ]
                })
                .collect();
            print_columns(["TIME", "USER", "ACTION", "RESOURCE", "REVISION"], &rows);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The config store's database: the flag or `DATABASE_URL`, else the
/// running demo's (`$LOUPE_HOME/demo.json`, `LOUPE_HOME` defaulting to
/// `~/.loupe`, as `loupe demo` writes it).
pub fn database_url(explicit: Option<&str>) -> anyhow::Result<String> {
    if let Some(url) = explicit.filter(|u| !u.trim().is_empty()) {
        return Ok(url.to_string());
    }
    let state = crate::demo::DemoState::path(&crate::demo::loupe_home());
    let text = std::fs::read_to_string(&state).map_err(|_| {
        anyhow::anyhow!(
            "no database given: pass --database-url, set DATABASE_URL, or start `loupe demo` (no {} found)",
            state.display()
        )
    })?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", state.display()))?;
    json.get("database_url")
        .and_then(|u| u.as_str())
        .map(str::to_string)
        .with_context(|| {
            format!(
                "{} has no \"database_url\"; pass --database-url or set DATABASE_URL",
                state.display()
            )
        })
}

async fn connect(url: &str) -> anyhow::Result<ConfigStore> {
    Ok(ConfigStore::new(loupe_db::connect(url, 2).await?))
}

fn read_input(file: &Path) -> anyhow::Result<String> {
    if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading stdin")?;
        return Ok(text);
    }
    std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))
}

fn parse_kind(s: &str) -> anyhow::Result<Kind> {
    Kind::parse(s).with_context(|| {
        let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        format!(
            "unknown kind `{s}`: use one of {} (or gw, vs, dr, pa, ap)",
            kinds.join(", ")
        )
    })
}

/// `KIND/NAMESPACE/NAME`, or `KIND/NAME` in the default namespace.
fn parse_key(s: &str) -> anyhow::Result<ResourceKey> {
    let parts: Vec<&str> = s.split('/').collect();
    let (kind, namespace, name) = match parts.as_slice() {
        [kind, ns, name] if !ns.is_empty() && !name.is_empty() => (*kind, *ns, *name),
        [kind, name] if !name.is_empty() => (*kind, loupe_model::meta::DEFAULT_NAMESPACE, *name),
        _ => anyhow::bail!("`{s}` is not KIND/NAMESPACE/NAME (e.g. vs/default/reviews)"),
    };
    Ok(ResourceKey {
        kind: parse_kind(kind)?,
        namespace: namespace.to_string(),
        name: name.to_string(),
    })
}

fn print_table(resources: &[StoredResource]) {
    let rows: Vec<[String; 6]> = resources
        .iter()
        .map(|r| {
            [
                r.key.kind.as_str().to_string(),
                r.key.namespace.clone(),
                r.key.name.clone(),
                r.revision.to_string(),
                r.author.clone(),
                r.created_at.format("%Y-%m-%d %H:%M:%SZ").to_string(),
            ]
        })
        .collect();
    print_columns(
        ["KIND", "NAMESPACE", "NAME", "REVISION", "AUTHOR", "UPDATED"],
        &rows,
    );
}

/// Left-aligned columns, three spaces apart, like kubectl.
pub(crate) fn print_columns<const N: usize>(header: [&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == N {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}   "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Warnings of the parser (unknown fields, skipped documents), which do not
/// stop an apply but usually mean a typo.
fn print_parse_warnings(texts: &[(&str, &str)]) {
    let warnings: Vec<Diagnostic> = texts
        .iter()
        .flat_map(|(source, text)| loupe_model::parse_documents(source, text).diagnostics)
        .filter(|d| d.severity == loupe_model::Severity::Warning)
        .collect();
    print_diagnostics(&warnings);
}

fn print_diagnostics(diagnostics: &[Diagnostic]) {
    for d in diagnostics {
        let severity = match d.severity {
            loupe_model::Severity::Error => "error",
            loupe_model::Severity::Warning => "warning",
        };
        if d.path.is_empty() {
            eprintln!("  {severity}: {}: {}", d.resource, d.message);
        } else {
            eprintln!("  {severity}: {} {}: {}", d.resource, d.path, d.message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_in_kubectl_forms() {
        let k = parse_key("vs/default/reviews").unwrap();
        assert_eq!(k.kind, Kind::VirtualService);
        assert_eq!(
            (k.namespace.as_str(), k.name.as_str()),
            ("default", "reviews")
        );
        let k = parse_key("DestinationRule/reviews").unwrap();
        assert_eq!(
            (k.kind, k.namespace.as_str()),
            (Kind::DestinationRule, "default")
        );
        assert!(parse_key("reviews").is_err());
        let err = parse_key("pods/default/x").unwrap_err().to_string();
        assert!(err.contains("unknown kind `pods`"), "{err}");
    }
}
