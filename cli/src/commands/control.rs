//! `loupe control`: the control plane alone (certificate authority, config
//! store on Postgres, push stream to proxies over TLS) until Ctrl-C or
//! SIGTERM. With `--kubernetes`, its cluster mode (`loupe-cluster`): config
//! from Istio's CRDs, registry from Services/EndpointSlices/Pods, proxies
//! authenticated by TokenReview, and the admission webhooks on
//! `--webhook-listen`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use loupe_control::ca::{CaOptions, Lifetimes};

use super::{config, runtime};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub db: config::DatabaseArgs,
    /// Where proxies connect (gRPC over TLS).
    #[arg(long, default_value = "127.0.0.1:15010")]
    pub listen: SocketAddr,
    /// The control plane's own files (default: $LOUPE_HOME/control).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The CA's directory, in Istio's `cacerts` layout (default: DATA_DIR/ca).
    /// Empty on first start: a root is generated there. Holding ca-cert.pem,
    /// ca-key.pem, root-cert.pem and cert-chain.pem: that CA signs. Proxies
    /// trust CA_DIR/root-cert.pem.
    #[arg(long)]
    pub ca_dir: Option<PathBuf>,
    /// SPIFFE trust domain of workload identities.
    #[arg(long, default_value = loupe_model::identity::DEFAULT_TRUST_DOMAIN)]
    pub trust_domain: String,
    /// Lifetime of a workload certificate when the proxy asks for none (Istio durations: 24h, 90s).
    #[arg(long, default_value = "24h", value_parser = parse_ttl)]
    pub cert_ttl: Duration,
    /// The longest lifetime a proxy may ask for.
    #[arg(long, default_value = "2160h", value_parser = parse_ttl)]
    pub max_cert_ttl: Duration,
    /// How long a workload whose proxy's stream dropped stays an endpoint,
    /// so that a proxy reconnecting (or a restarted control plane) never
    /// pushes partial endpoint sets; `0s` drops endpoints at once.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub endpoint_grace: Duration,
    /// Percent of new traces sampled mesh-wide (Istio's
    /// `meshConfig.defaultConfig.tracing.sampling`, default 1; its demo
    /// profile uses 100). A Telemetry resource's `randomSamplingPercentage`
    /// overrides it for the workloads it selects.
    #[arg(long, default_value_t = loupe_control::mesh::DEFAULT_TRACE_SAMPLING, value_parser = parse_percent)]
    pub trace_sampling: f64,
    /// Cluster mode: read Istio's CRDs, Services, EndpointSlices and Pods
    /// from the Kubernetes API (in-cluster service account, or KUBECONFIG).
    #[arg(long)]
    pub kubernetes: bool,
    /// Cluster mode: serve the injection and validation webhooks (HTTPS) here.
    #[arg(long, requires = "kubernetes")]
    pub webhook_listen: Option<SocketAddr>,
    /// Cluster mode: the control plane's namespace (its Lease and Events).
    #[arg(long, env = "POD_NAMESPACE", default_value = loupe_k8s::manifest::NAMESPACE)]
    pub namespace: String,
    /// Cluster mode: this replica's name in the leader election.
    #[arg(long, env = "POD_NAME", default_value = "loupe-control")]
    pub identity: String,
}

fn parse_percent(text: &str) -> Result<f64, String> {
    match text.trim_end_matches('%').parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        Ok(p) => Err(format!("{p} is not a percentage between 0 and 100")),
        Err(_) => Err(format!(
            "`{text}` is not a number (a percentage, e.g. 1 or 100)"
        )),
    }
}

pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    loupe_model::duration::parse_duration(text).map_err(|e| e.to_string())
}

fn parse_ttl(text: &str) -> Result<Duration, String> {
    match loupe_model::duration::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("a certificate lifetime must be above zero".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

impl Args {
    /// The CA's options from the flags.
    pub fn ca_options(&self) -> anyhow::Result<CaOptions> {
        if self.cert_ttl > self.max_cert_ttl {
            anyhow::bail!(
                "--cert-ttl {:?} is above --max-cert-ttl {:?}",
                self.cert_ttl,
                self.max_cert_ttl
            );
        }
        let data_dir = self
            .data_dir
            .clone()
            .unwrap_or_else(|| crate::demo::loupe_home().join("control"));
        Ok(CaOptions {
            dir: self.ca_dir.clone().unwrap_or_else(|| data_dir.join("ca")),
            trust_domain: self.trust_domain.clone(),
            lifetimes: Lifetimes {
                default: self.cert_ttl,
                max: self.max_cert_ttl,
            },
        })
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    runtime::init_logging();
    let database_url = config::database_url(args.db.database_url.as_deref())?;
    if args.kubernetes {
        let options = loupe_cluster::Options {
            database_url,
            listen: args.listen,
            webhook_listen: args.webhook_listen,
            ca: args.ca_options()?,
            endpoint_grace: args.endpoint_grace,
            trace_sampling: args.trace_sampling,
            namespace: args.namespace.clone(),
            identity: args.identity.clone(),
        };
        runtime::block_on(loupe_cluster::serve(options))??;
        return Ok(ExitCode::SUCCESS);
    }
    let options = loupe_control::Options {
        database_url,
        listen: args.listen,
        ca: args.ca_options()?,
        endpoint_grace: args.endpoint_grace,
        trace_sampling: args.trace_sampling,
    };
    runtime::block_on(loupe_control::serve(options))??;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use loupe_control::ca::lifetime;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn ca_flags_default_to_istio_and_a_dir_under_the_data_dir() {
        let cli = Cli::parse_from(["control", "--data-dir", "/srv/loupe"]);
        let ca = cli.args.ca_options().unwrap();
        assert_eq!(ca.dir, PathBuf::from("/srv/loupe/ca"));
        assert_eq!(ca.trust_domain, "cluster.local");
        assert_eq!(ca.lifetimes.default, lifetime::DEFAULT_TTL);
        assert_eq!(ca.lifetimes.max, lifetime::DEFAULT_MAX_TTL);

        let cli = Cli::parse_from([
            "control",
            "--ca-dir",
            "/etc/cacerts",
            "--cert-ttl",
            "90s",
            "--trust-domain",
            "corp.example",
        ]);
        let ca = cli.args.ca_options().unwrap();
        assert_eq!(ca.dir, PathBuf::from("/etc/cacerts"));
        assert_eq!(ca.lifetimes.default, Duration::from_secs(90));
        assert_eq!(ca.trust_domain, "corp.example");

        let cli = Cli::parse_from([
            "control",
            "--kubernetes",
            "--listen=0.0.0.0:15012",
            "--webhook-listen=0.0.0.0:15017",
        ]);
        assert!(cli.args.kubernetes);
        assert_eq!(
            cli.args.webhook_listen,
            Some("0.0.0.0:15017".parse().unwrap())
        );
        assert!(Cli::try_parse_from(["control", "--webhook-listen=0.0.0.0:15017"]).is_err());

        let cli = Cli::parse_from(["control", "--cert-ttl", "48h", "--max-cert-ttl", "24h"]);
        assert!(cli.args.ca_options().is_err());
        assert!(Cli::try_parse_from(["control", "--cert-ttl", "0s"]).is_err());
    }

    #[test]
    fn the_install_manifests_control_plane_arguments_parse() {
        use loupe_k8s::manifest::{Profile, Settings, generate};
        for profile in Profile::ALL {
            let objects = generate(&Settings::for_profile(profile));
            let deployment = objects
                .iter()
                .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "loupe-control")
                .expect("the control plane's Deployment");
            let args: Vec<String> = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
                .as_array()
                .expect("args")
                .iter()
                .map(|a| a.as_str().expect("string").to_string())
                .collect();
            assert_eq!(args[0], "control");
            let cli = Cli::try_parse_from(&args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert!(cli.args.kubernetes, "{args:?}");
            assert!(cli.args.webhook_listen.is_some(), "{args:?}");
        }
    }
}
