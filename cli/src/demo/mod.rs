//! `loupe demo`: the whole mesh on this machine, every part its own process
//! talking over real sockets — a private Postgres, the control plane, the
//! collector, the console, the bookinfo workloads each behind its own
//! sidecar, the ingress gateway, and steady load through it.
//!
//! Order matters: Postgres first (everything stores there), then the control
//! plane (proxies connect to it; its CA writes the root proxies trust) and
//! the collector (proxies export to it), the config (so the first snapshot
//! already routes), the workloads' declarations (WorkloadEntry,
//! ServiceEntry) and a bootstrap token each, the console, then apps and
//! sidecars, the gateway, and only then the load.

mod bootstrap;
mod state;
mod supervisor;
mod topology;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;

pub use state::{DemoState, loupe_home};
use supervisor::Supervisor;
use topology::Topology;

/// The demo's mesh configuration, applied at start.
pub const DEMO_CONFIG: &str = include_str!("../../../deploy/demo/bookinfo.yaml");

#[derive(Clone, Debug)]
pub struct DemoOptions {
    pub database_url: Option<String>,
    pub home: PathBuf,
    pub postgres_port: u16,
    pub control: SocketAddr,
    pub otlp_grpc: SocketAddr,
    pub otlp_http: SocketAddr,
    pub console: SocketAddr,
    pub port_base: u16,
    pub rps: f64,
    pub static_dir: Option<PathBuf>,
    pub scrape_interval: String,
    /// Workload certificate lifetime (`loupe control --cert-ttl`).
    pub cert_ttl: String,
    /// Percent of new traces sampled (`loupe control --trace-sampling`).
    pub trace_sampling: String,
}

/// Runs the demo until Ctrl-C or SIGTERM, then stops everything it started.
pub async fn run(opts: DemoOptions) -> anyhow::Result<()> {
    let started = Instant::now();
    let dir = opts.home.join("demo");
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let bins = Binaries::find()?;
    let topology = Topology::bookinfo(opts.port_base);
    topology.check_ports_free(&opts)?;

    let mut progress = Progress::new(9);
    progress.step("Postgres");
    let (database_url, postgres) = match &opts.database_url {
        Some(url) => (url.clone(), None),
        None => {
            let root = dir.join("postgres");
            let port = opts.postgres_port;
            let pg = tokio::task::spawn_blocking(move || {
                loupe_db::PrivatePostgres::start_in(&root, port)
            })
            .await?
            .context("starting the demo's private Postgres")?;
            (pg.url(), Some(std::sync::Arc::new(pg)))
        }
    };
    loupe_db::connect(&database_url, 1)
        .await
        .context("migrating the demo database")?;
    progress.done(&redact(&database_url));
    let (console_login, token) = bootstrap::create_admin(&database_url)
        .await
        .context("creating the console's admin user")?;

    let mut sup = Supervisor::new(logs.clone(), components_record(&opts));
    let result = run_parts(
        &opts,
        &bins,
        &topology,
        &database_url,
        &mut sup,
        &mut progress,
    )
    .await;
    if let Err(err) = result {
        eprintln!("\nloupe demo failed: {err:#}\nlogs: {}", logs.display());
        sup.shutdown().await;
        return Err(err);
    }

    let state = DemoState {
        database_url: database_url.clone(),
        console_url: format!("http://{}", opts.console),
        control_url: format!("https://{}", opts.control),
        ca_root: ca_root(&opts),
        gateway_url: format!("http://{}", topology.gateway_listen),
        pid: std::process::id(),
        logs: logs.clone(),
        workloads: topology.addresses(),
        console_login,
        token,
    };
    state.write(&opts.home)?;
    println!(
        "\nLoupe is running ({:.1}s).\n\n  console:  http://{}\n  login:    user {}, password in {} (console_login.password)\n  gateway:  http://{}/productpage\n  logs:     {}\n\nTry `loupe get vs` or `loupe apply -f FILE`. Press Ctrl-C to stop everything.",
        started.elapsed().as_secs_f64(),
        opts.console,
        bootstrap::ADMIN,
        DemoState::path(&opts.home).display(),
        topology.gateway_listen,
        logs.display()
    );

    tokio::select! {
        _ = shutdown_signal() => {},
        _ = sup.supervise(|restart| {
            eprintln!("  restarted {} (restart #{})", restart.part, restart.restarts);
        }) => {},
        _ = supervise_postgres(postgres.clone()) => {},
    }
    eprintln!("\nstopping the demo…");
    sup.shutdown().await;
    DemoState::remove(&opts.home);
    drop(postgres);
    eprintln!("stopped.");
    Ok(())
}

async fn run_parts(
    opts: &DemoOptions,
    bins: &Binaries,
    topology: &Topology,
    database_url: &str,
    sup: &mut Supervisor,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let loupe = bins.loupe.to_string_lossy().into_owned();

    progress.step("control plane");
    let control_dir = opts.home.join("demo").join("control");
    // The store's URL (it may hold a password) goes in the environment.
    let db_env = [("DATABASE_URL", database_url)];
    sup.spawn_with_env(
        "control",
        &loupe,
        &[
            "control",
            "--listen",
            &opts.control.to_string(),
            "--data-dir",
            &control_dir.to_string_lossy(),
            "--cert-ttl",
            &opts.cert_ttl,
            "--trace-sampling",
            &opts.trace_sampling,
        ],
        &db_env,
    )?;
    sup.wait_tcp("control", opts.control, Duration::from_secs(30))
        .await?;
    progress.done(&format!("grpc {}", opts.control));

    progress.step("collector");
    sup.spawn_with_env(
        "collector",
        &loupe,
        &[
            "collector",
            "--otlp-grpc",
            &opts.otlp_grpc.to_string(),
            "--otlp-http",
            &opts.otlp_http.to_string(),
            "--scrape-interval",
            &opts.scrape_interval,
        ],
        &db_env,
    )?;
    sup.wait_tcp("collector", opts.otlp_grpc, Duration::from_secs(30))
        .await?;
    progress.done(&format!(
        "otlp grpc {} http {}",
        opts.otlp_grpc, opts.otlp_http
    ));

    progress.step("mesh config");
    let config_file = opts.home.join("demo").join("bookinfo.yaml");
    std::fs::write(&config_file, DEMO_CONFIG)
        .with_context(|| format!("writing {}", config_file.display()))?;
    bootstrap::apply_config(database_url, &config_file.to_string_lossy(), DEMO_CONFIG).await?;
    progress.done("deploy/demo/bookinfo.yaml applied");

    progress.step("workload declarations and tokens");
    let declarations = opts.home.join("demo").join("workloads.yaml");
    std::fs::write(&declarations, topology.declarations())
        .with_context(|| format!("writing {}", declarations.display()))?;
    bootstrap::apply_config(
        database_url,
        &declarations.to_string_lossy(),
        &topology.declarations(),
    )
    .await?;
    let tokens = write_tokens(topology, database_url, &tokens_dir(opts)).await?;
    progress.done(&format!(
        "{} WorkloadEntries, a token each in {}",
        topology.workloads.len(),
        tokens.display()
    ));

    progress.step("console");
    let static_dir = opts.static_dir.clone().or_else(find_static_dir);
    let mut console_args = vec![
        "console".to_string(),
        "--listen".into(),
        opts.console.to_string(),
        "--components-file".into(),
        components_record(opts).to_string_lossy().into_owned(),
    ];
    match &static_dir {
        Some(dir) => {
            console_args.push("--static-dir".into());
            console_args.push(dir.to_string_lossy().into_owned());
        }
        None => eprintln!(
            "\n  warning: no built frontend found (frontend/dist); the console serves only its API. Build it with scripts/build-frontend.sh"
        ),
    }
    let console_refs: Vec<&str> = console_args.iter().map(String::as_str).collect();
    sup.spawn_with_env("console", &loupe, &console_refs, &db_env)?;
    sup.wait_tcp("console", opts.console, Duration::from_secs(30))
        .await?;
    progress.done(&format!("http://{}", opts.console));

    progress.step("bookinfo workloads and sidecars");
    let proxy = bins.proxy.to_string_lossy().into_owned();
    let sample = bins.sample.to_string_lossy().into_owned();
    for w in &topology.workloads {
        if let Some(app_args) = w.app_args() {
            let refs: Vec<&str> = app_args.iter().map(String::as_str).collect();
            sup.spawn(&format!("{}-app", w.workload), &sample, &refs)?;
        }
        let token_file = tokens_dir(opts).join(format!("{}.token", w.workload));
        let proxy_args = w.proxy_args(opts, &ca_root(opts), &token_file);
        let refs: Vec<&str> = proxy_args.iter().map(String::as_str).collect();
        sup.spawn(&format!("{}-proxy", w.workload), &proxy, &refs)?;
    }
    for w in &topology.workloads {
        sup.wait_ready(w.workload, w.admin, Duration::from_secs(30))
            .await?;
    }
    progress.done(&format!(
        "{} workloads, each with its sidecar, all ready",
        topology.workloads.len()
    ));

    progress.step("load");
    sup.spawn(
        "loadgen",
        &sample,
        &[
            "load",
            "--target",
            &topology.gateway_listen.to_string(),
            "--rps",
            &opts.rps.to_string(),
        ],
    )?;
    progress.done(&format!("{} rps through the gateway", opts.rps));
    progress.step("first traffic through the mesh");
    wait_first_request(topology.gateway_listen).await;
    progress.done("ok");
    Ok(())
}

/// Watches the demo's private Postgres (none: an external database, not
/// ours to restart) and starts it again when it died, with the supervisor's
/// backoff; the other parts reconnect by themselves. Never returns.
async fn supervise_postgres(pg: Option<std::sync::Arc<loupe_db::PrivatePostgres>>) {
    let Some(pg) = pg else {
        return std::future::pending().await;
    };
    let mut backoff = supervisor::BACKOFF_MIN;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let check = pg.clone();
        if tokio::task::spawn_blocking(move || check.is_running())
            .await
            .unwrap_or(true)
        {
            backoff = supervisor::BACKOFF_MIN;
            continue;
        }
        eprintln!("  postgres exited; restarting");
        loop {
            let again = pg.clone();
            match tokio::task::spawn_blocking(move || again.restart()).await {
                Ok(Ok(())) => {
                    eprintln!("  restarted postgres");
                    break;
                }
                Ok(Err(error)) => {
                    tracing::warn!(%error, ?backoff, "postgres did not start; retrying");
                }
                Err(error) => tracing::warn!(%error, "postgres restart task failed"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(supervisor::BACKOFF_MAX);
        }
    }
}

/// The root the control plane's CA writes (its `--data-dir` is the demo's
/// `control/`), which every sidecar trusts.
fn ca_root(opts: &DemoOptions) -> PathBuf {
    opts.home
        .join("demo")
        .join("control")
        .join("ca")
        .join(loupe_control::ca::files::ROOT_CERT)
}

/// The supervisor's record of the parts, which the console serves.
fn components_record(opts: &DemoOptions) -> PathBuf {
    opts.home.join("demo").join("parts.json")
}

fn tokens_dir(opts: &DemoOptions) -> PathBuf {
    opts.home.join("demo").join("tokens")
}

/// A new bootstrap token per workload, each in `dir/WORKLOAD.token`
/// (mode 0600, in a 0700 directory), where its sidecar reads it.
async fn write_tokens(
    topology: &Topology,
    database_url: &str,
    dir: &std::path::Path,
) -> anyhow::Result<PathBuf> {
    let pool = loupe_db::connect(database_url, 1).await?;
    let tokens = loupe_control::authn::BootstrapTokens::new(pool);
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    set_mode(dir, 0o700)?;
    for w in &topology.workloads {
        let token = tokens.issue(w.namespace, w.workload).await?;
        write_secret(&dir.join(format!("{}.token", w.workload)), &token)?;
    }
    Ok(dir.to_path_buf())
}

/// Writes a file only its owner can read, from its first byte.
fn write_secret(path: &std::path::Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let _ = std::fs::remove_file(path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(contents.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn set_mode(path: &std::path::Path, mode: u32) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("chmod {mode:o} {}", path.display()))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// One request through the gateway so the first edges appear at once.
async fn wait_first_request(gateway: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if supervisor::http_get(gateway, "/productpage", "bookinfo.example.com")
            .await
            .is_some_and(|s| s == 200)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The executables the demo starts: this `loupe`, and `loupe-proxy` and
/// `loupe-sample` from the same directory (cargo builds them side by side).
struct Binaries {
    loupe: PathBuf,
    proxy: PathBuf,
    sample: PathBuf,
}

impl Binaries {
    fn find() -> anyhow::Result<Self> {
        let loupe = std::env::current_exe().context("locating the loupe executable")?;
        let dir = loupe.parent().map(PathBuf::from).unwrap_or_default();
        let find = |name: &str| -> anyhow::Result<PathBuf> {
            let p = dir.join(name);
            anyhow::ensure!(
                p.exists(),
                "{} not found next to {}; build it with `cargo build -p {}` (or run scripts/demo.sh)",
                name,
                loupe.display(),
                if name == "loupe-proxy" {
                    "loupe-proxy"
                } else {
                    "loupe-samples"
                }
            );
            Ok(p)
        };
        Ok(Binaries {
            proxy: find("loupe-proxy")?,
            sample: find("loupe-sample")?,
            loupe,
        })
    }
}

/// `frontend/dist` in the working directory or in the source tree this binary was built from.
fn find_static_dir() -> Option<PathBuf> {
    let candidates = [
        PathBuf::from("frontend/dist"),
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../frontend/dist")),
    ];
    candidates
        .into_iter()
        .find(|p| p.join("index.html").exists())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn redact(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_string()
}

/// `[3/8] console … done (0.4s) http://…`, one line per step.
struct Progress {
    total: usize,
    n: usize,
    at: Instant,
}

impl Progress {
    fn new(total: usize) -> Self {
        Progress {
            total,
            n: 0,
            at: Instant::now(),
        }
    }

    fn step(&mut self, what: &str) {
        use std::io::Write;
        self.n += 1;
        self.at = Instant::now();
        print!("[{}/{}] {what} … ", self.n, self.total);
        let _ = std::io::stdout().flush();
    }

    fn done(&self, detail: &str) {
        println!("done ({:.1}s) {detail}", self.at.elapsed().as_secs_f64());
    }
}
