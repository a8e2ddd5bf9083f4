//! `loupe dashboard [console]`: the console of the cluster's install on a
//! local port, through a port-forward, as `istioctl dashboard kiali`. Runs
//! until Ctrl-C. The work is in `loupe_cluster::dashboard`.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use loupe_k8s::manifest::{CONSOLE_PORT, NAMESPACE};

use super::runtime;

#[derive(clap::Args)]
pub struct Args {
    /// What to open; only the console (`kiali` is accepted as its Istio name).
    #[arg(default_value = "console", value_parser = ["console", "kiali"])]
    component: String,
    /// The local port.
    #[arg(long, short = 'p', default_value_t = CONSOLE_PORT)]
    port: u16,
    /// The local address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    address: IpAddr,
    /// The install's namespace.
    #[arg(long, short = 'n', default_value = NAMESPACE)]
    namespace: String,
    /// Open the console in a browser (xdg-open), as istioctl does.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    browser: bool,
    /// The kubeconfig context (default: the current one).
    #[arg(long)]
    context: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    runtime::init_logging();
    runtime::block_on(async move {
        let client = loupe_cluster::connect(args.context).await?;
        // Fail now, not at the first request, when nothing is installed.
        let pod = loupe_cluster::dashboard::console_pod(&client, &args.namespace).await?;
        let addr = SocketAddr::new(args.address, args.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr} ({e}); choose another --port"))?;
        let url = format!("http://{}", listener.local_addr()?);
        println!(
            "{url} → pod {}/{pod} port {CONSOLE_PORT} (Ctrl-C to stop)",
            args.namespace
        );
        if args.browser {
            // No browser here is not an error: the URL is printed.
            let _ = std::process::Command::new("xdg-open")
                .arg(&url)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn();
        }
        tokio::select! {
            () = loupe_cluster::dashboard::serve(client, args.namespace, listener) => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        anyhow::Ok(ExitCode::SUCCESS)
    })?
}
