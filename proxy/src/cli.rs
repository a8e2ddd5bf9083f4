//! The command line (every flag also from a `LOUPE_PROXY_*` variable).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use clap::Parser;

/// The Loupe sidecar proxy (or, with `--gateway`, an ingress gateway).
#[derive(Parser, Debug, Clone)]
#[command(name = "loupe-proxy", version, about)]
pub struct Args {
    /// The workload this proxy runs beside (`reviews-v1`).
    #[arg(long, env = "LOUPE_PROXY_WORKLOAD")]
    pub workload: String,
    #[arg(long, env = "LOUPE_PROXY_NAMESPACE", default_value = "default")]
    pub namespace: String,
    #[arg(long, env = "LOUPE_PROXY_SERVICE_ACCOUNT", default_value = "default")]
    pub service_account: String,
    /// A workload label, `KEY=VALUE`; repeat for more.
    #[arg(long = "label", env = "LOUPE_PROXY_LABELS", value_delimiter = ',', value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// A service (short name) this workload is an endpoint of; repeat for
    /// more. Default: the `app` label (none for a gateway).
    #[arg(long = "service", env = "LOUPE_PROXY_SERVICES", value_delimiter = ',')]
    pub services: Vec<String>,
    /// Where other proxies reach this workload (the inbound listener).
    #[arg(long, env = "LOUPE_PROXY_INBOUND")]
    pub inbound: Option<SocketAddr>,
    /// The local app the inbound listener forwards to (`127.0.0.1:9080`).
    #[arg(long, env = "LOUPE_PROXY_APP")]
    pub app: Option<String>,
    /// Where the local app sends its outgoing requests.
    #[arg(long, env = "LOUPE_PROXY_OUTBOUND")]
    pub outbound: Option<SocketAddr>,
    /// The admin listener: /stats/prometheus, /ready, /config_dump
    /// (default with --capture: 0.0.0.0:15090).
    #[arg(long, env = "LOUPE_PROXY_ADMIN")]
    pub admin: Option<SocketAddr>,
    /// Transparent capture (after `loupe-proxy iptables` in this network
    /// namespace): Istio's ports — outbound 15001, inbound 15006, DNS 15053,
    /// metrics 15090, health 15021 — on every address; the app's ports and
    /// services come from the registry, no --inbound/--app/--outbound. Run
    /// the proxy as UID 1337 so its own traffic is not captured.
    #[arg(long, env = "LOUPE_PROXY_CAPTURE")]
    pub capture: bool,
    /// This workload's IP (Istio's INSTANCE_IP): where the collector scrapes
    /// its metrics in capture mode.
    #[arg(long, env = "INSTANCE_IP")]
    pub pod_ip: Option<std::net::IpAddr>,
    /// With --capture: what happens to traffic for destinations that are no
    /// service of the mesh (Istio's `outboundTrafficPolicy.mode`).
    #[arg(
        long,
        env = "LOUPE_PROXY_OUTBOUND_TRAFFIC_POLICY",
        value_enum,
        default_value = "ALLOW_ANY"
    )]
    pub outbound_traffic_policy: crate::capture::outbound::OutboundTrafficPolicy,
    /// With --capture: where the DNS proxy forwards names that are no
    /// service (default: the first nameserver of /etc/resolv.conf).
    #[arg(long, env = "LOUPE_PROXY_DNS_UPSTREAM")]
    pub dns_upstream: Option<SocketAddr>,
    /// The control plane (`https://127.0.0.1:15012`; `http://` only for
    /// tests without TLS).
    #[arg(long, env = "LOUPE_PROXY_CONTROL")]
    pub control: String,
    /// The mesh's root certificate(s), PEM: what the control plane's TLS
    /// certificate must chain to (`<ca-dir>/root-cert.pem`).
    #[arg(long, env = "LOUPE_PROXY_CA_ROOT")]
    pub ca_root: Option<std::path::PathBuf>,
    /// The workload's credential for the control plane (the bootstrap
    /// token from `loupe workload token NS/NAME`). With it the proxy gets a
    /// SPIFFE certificate and speaks mTLS to other sidecars; without it the
    /// proxy has no identity and speaks plaintext.
    #[arg(long, env = "LOUPE_PROXY_TOKEN_FILE")]
    pub token_file: Option<std::path::PathBuf>,
    /// The SPIFFE trust domain of this workload's identity.
    #[arg(
        long,
        env = "LOUPE_PROXY_TRUST_DOMAIN",
        default_value = "cluster.local"
    )]
    pub trust_domain: String,
    /// Requested certificate lifetime in seconds (the CA caps it; default:
    /// the CA's). Renewed at half-life.
    #[arg(long, env = "LOUPE_PROXY_CERT_TTL")]
    pub cert_ttl: Option<u64>,
    /// The OTLP/gRPC collector for spans (`http://127.0.0.1:4317`); no spans without it.
    #[arg(long, env = "LOUPE_PROXY_OTLP")]
    pub otlp: Option<String>,
    /// Run as an ingress gateway: route with the Gateways selecting this
    /// proxy's labels, on `--listen`.
    #[arg(long, env = "LOUPE_PROXY_GATEWAY")]
    pub gateway: bool,
    /// The gateway's listener.
    #[arg(long, env = "LOUPE_PROXY_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// How long a client may take to send a request's headers, on every
    /// listener (Istio durations: 10s, 500ms).
    #[arg(long, env = "LOUPE_PROXY_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: std::time::Duration,
    /// Open connections per listener at most; more are closed on arrival (counted).
    #[arg(long, env = "LOUPE_PROXY_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Worker threads of the data path, each with its own runtime, its own
    /// sockets on every traffic listener (SO_REUSEPORT) and its own
    /// upstream connections, as Envoy's `--concurrency` (Istio's proxy
    /// `concurrency`: default 2; 0 = one per core).
    #[arg(long, env = "LOUPE_PROXY_CONCURRENCY", default_value_t = 2)]
    pub concurrency: usize,
}

/// More worker threads than this is a typo, not a machine.
const MAX_CONCURRENCY: usize = 256;

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    match loupe_model::duration::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("must be above zero".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

impl Args {
    /// Each listener's limits, from the flags.
    pub fn limits(&self) -> crate::listen::Limits {
        crate::listen::Limits {
            header_read_timeout: self.header_read_timeout,
            max_connections: self.max_connections.max(1),
        }
    }

    pub fn labels(&self) -> BTreeMap<String, String> {
        self.labels.iter().cloned().collect()
    }

    /// `--service`, else (for a sidecar) the app label. A gateway is an
    /// endpoint only of the services it is told.
    pub fn services(&self) -> Vec<String> {
        if !self.services.is_empty() || self.gateway {
            return self.services.clone();
        }
        self.labels
            .iter()
            .find(|(k, _)| k == "app")
            .map(|(_, v)| vec![v.clone()])
            .unwrap_or_default()
    }

    /// How many data-path workers `--concurrency` asks for.
    pub fn workers(&self) -> usize {
        match self.concurrency {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// The admin listener's address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
            .unwrap_or(SocketAddr::from(([0, 0, 0, 0], crate::capture::ADMIN_PORT)))
    }

    /// Which listeners the flags ask for, or what is missing.
    pub fn check(&self) -> Result<(), String> {
        if self.capture {
            if self.gateway
                || self.inbound.is_some()
                || self.app.is_some()
                || self.outbound.is_some()
            {
                return Err("--capture takes Istio's ports itself: leave out --gateway, --inbound, --app and --outbound".into());
            }
        } else if self.admin.is_none() {
            return Err("--admin ADDR is needed (without --capture)".into());
        } else if self.gateway {
            if self.listen.is_none() {
                return Err("--gateway needs --listen ADDR".into());
            }
        } else if self.inbound.is_some() != self.app.is_some() {
            return Err("--inbound and --app go together (inbound forwards to the app)".into());
        } else if self.inbound.is_none() && self.outbound.is_none() {
            return Err(
                "a sidecar needs --inbound/--app, --outbound, or both (or --capture)".into(),
            );
        }
        if self.concurrency > MAX_CONCURRENCY {
            return Err(format!(
                "--concurrency {} is above {MAX_CONCURRENCY}; give the number of worker threads (0 = one per core)",
                self.concurrency
            ));
        }
        if self.control.starts_with("https://") && self.ca_root.is_none() {
            return Err(
                "an https:// --control needs --ca-root FILE (the mesh root certificate)".into(),
            );
        }
        Ok(())
    }
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("label {s:?} is not KEY=VALUE")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_demo_command_line() {
        let args = Args::try_parse_from([
            "loupe-proxy",
            "--workload",
            "reviews-v1",
            "--namespace",
            "default",
            "--service-account",
            "bookinfo-reviews",
            "--label",
            "app=reviews",
            "--label",
            "version=v1",
            "--inbound",
            "127.0.0.1:15006",
            "--app",
            "127.0.0.1:9080",
            "--outbound",
            "127.0.0.1:15001",
            "--admin",
            "127.0.0.1:15090",
            "--control",
            "http://127.0.0.1:15010",
        ])
        .expect("parses");
        assert_eq!(args.services(), vec!["reviews".to_string()]);
        assert_eq!(args.labels().get("version").map(String::as_str), Some("v1"));
        assert!(args.check().is_ok());
        assert!(
            Args::try_parse_from([
                "loupe-proxy",
                "--workload",
                "x",
                "--label",
                "novalue",
                "--admin",
                "127.0.0.1:1",
                "--control",
                "http://x"
            ])
            .is_err()
        );
    }
}
