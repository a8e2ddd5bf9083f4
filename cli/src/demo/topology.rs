//! The demo's workloads and the ports each one uses. Every workload gets a
//! block of four ports from `port_base`: app, sidecar inbound, sidecar
//! outbound, sidecar admin (metrics). It also declares them to the control
//! plane as Istio would a mesh outside Kubernetes: a WorkloadEntry per
//! workload and a ServiceEntry per service ([`Topology::declarations`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;

use super::DemoOptions;

pub struct WorkloadSpec {
    pub workload: &'static str,
    pub namespace: &'static str,
    pub service_account: &'static str,
    pub app: &'static str,
    pub version: &'static str,
    /// `None` for the ingress gateway, which has no app behind it.
    pub role: Option<&'static str>,
    pub app_addr: SocketAddr,
    pub inbound: SocketAddr,
    pub outbound: SocketAddr,
    pub admin: SocketAddr,
    pub gateway_listen: Option<SocketAddr>,
}

pub struct Topology {
    pub workloads: Vec<WorkloadSpec>,
    pub gateway_listen: SocketAddr,
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

impl Topology {
    /// bookinfo: productpage → details, productpage → reviews v1/v2/v3,
    /// reviews v2/v3 → ratings, and the ingress gateway in front.
    pub fn bookinfo(port_base: u16) -> Topology {
        let specs: [(&str, &str, &str, Option<&str>); 6] = [
            ("productpage-v1", "productpage", "v1", Some("productpage")),
            ("details-v1", "details", "v1", Some("details")),
            ("reviews-v1", "reviews", "v1", Some("reviews")),
            ("reviews-v2", "reviews", "v2", Some("reviews")),
            ("reviews-v3", "reviews", "v3", Some("reviews")),
            ("ratings-v1", "ratings", "v1", Some("ratings")),
        ];
        let mut workloads = Vec::new();
        for (i, (workload, app, version, role)) in specs.into_iter().enumerate() {
            let p = port_base + 10 * i as u16;
            workloads.push(WorkloadSpec {
                workload,
                namespace: "default",
                service_account: match app {
                    "productpage" => "bookinfo-productpage",
                    "details" => "bookinfo-details",
                    "reviews" => "bookinfo-reviews",
                    _ => "bookinfo-ratings",
                },
                app,
                version,
                role,
                app_addr: addr(p),
                inbound: addr(p + 1),
                outbound: addr(p + 2),
                admin: addr(p + 3),
                gateway_listen: None,
            });
        }
        let p = port_base + 80;
        let gateway_listen = addr(p);
        workloads.push(WorkloadSpec {
            workload: "istio-ingressgateway",
            namespace: "istio-system",
            service_account: "istio-ingressgateway-service-account",
            app: "istio-ingressgateway",
            version: "",
            role: None,
            app_addr: addr(p + 4),
            inbound: addr(p + 1),
            outbound: addr(p + 2),
            admin: addr(p + 3),
            gateway_listen: Some(gateway_listen),
        });
        Topology {
            workloads,
            gateway_listen,
        }
    }

    /// Refuses to start when another process (often an earlier demo) holds a port.
    pub fn check_ports_free(&self, opts: &DemoOptions) -> anyhow::Result<()> {
        let mut ports = vec![opts.control, opts.otlp_grpc, opts.otlp_http, opts.console];
        for w in &self.workloads {
            ports.extend([w.inbound, w.outbound, w.admin]);
            if w.role.is_some() {
                ports.push(w.app_addr);
            }
            ports.extend(w.gateway_listen);
        }
        for a in ports {
            if TcpListener::bind(a).is_err() {
                anyhow::bail!(
                    "port {a} is already in use (is another `loupe demo` running? stop it, or choose other ports with --port-base / --console / --control / --otlp-grpc / --otlp-http)"
                );
            }
        }
        Ok(())
    }

    /// workload → its addresses, for `demo.json`.
    pub fn addresses(&self) -> BTreeMap<String, super::state::WorkloadAddresses> {
        self.workloads
            .iter()
            .map(|w| {
                (
                    w.workload.to_string(),
                    super::state::WorkloadAddresses {
                        app: w.role.map(|_| w.app_addr.to_string()),
                        inbound: w.inbound.to_string(),
                        outbound: w.outbound.to_string(),
                        admin: w.admin.to_string(),
                    },
                )
            })
            .collect()
    }

    /// Istio YAML declaring every workload: a WorkloadEntry each (address
    /// 127.0.0.1, port `http` = its sidecar's inbound port, its labels,
    /// service account), and a ServiceEntry per service
    /// (`SVC.default.svc.cluster.local`, port 9080 http, selecting
    /// `app=SVC`). The control plane takes endpoints from these, and checks
    /// each proxy's Hello against its entry.
    pub fn declarations(&self) -> String {
        let mut docs = Vec::new();
        let mut services: Vec<(&str, &str)> = Vec::new();
        for w in &self.workloads {
            let labels: Vec<String> = w
                .labels()
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            let mut doc = String::new();
            let _ = write!(
                doc,
                "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n  name: {}\n  namespace: {}\nspec:\n  address: {}\n  ports:\n    http: {}\n  labels: {{{}}}\n  serviceAccount: {}\n",
                w.workload,
                w.namespace,
                w.inbound.ip(),
                w.inbound.port(),
                labels.join(", "),
                w.service_account
            );
            docs.push(doc);
            if w.role.is_some() && !services.contains(&(w.app, w.namespace)) {
                services.push((w.app, w.namespace));
            }
        }
        for (svc, ns) in services {
            docs.push(format!(
                "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: {svc}\n  namespace: {ns}\nspec:\n  hosts:\n  - {svc}.{ns}.svc.cluster.local\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports:\n  - number: 9080\n    name: http\n    protocol: HTTP\n  workloadSelector:\n    labels:\n      app: {svc}\n"
            ));
        }
        format!(
            "# The demo's workloads, declared as Istio declares workloads outside\n# Kubernetes; written by `loupe demo` for its ports.\n{}",
            docs.join("---\n")
        )
    }
}

impl WorkloadSpec {
    /// The labels its sidecar reports (and its WorkloadEntry declares).
    pub fn labels(&self) -> BTreeMap<&'static str, &'static str> {
        let mut labels = BTreeMap::from([("app", self.app)]);
        if !self.version.is_empty() {
            labels.insert("version", self.version);
        }
        if self.gateway_listen.is_some() {
            labels.insert("istio", "ingressgateway");
        }
        labels
    }

    /// `loupe-sample serve …` for the app, `None` for the gateway.
    pub fn app_args(&self) -> Option<Vec<String>> {
        let role = self.role?;
        Some(vec![
            "serve".into(),
            role.into(),
            "--version".into(),
            self.version.into(),
            "--listen".into(),
            self.app_addr.to_string(),
            "--proxy".into(),
            self.outbound.to_string(),
        ])
    }

    /// `loupe-proxy …` for the workload's sidecar (or the gateway): it
    /// reaches the control plane over TLS trusting `ca_root`, with the
    /// bootstrap token in `token_file`.
    pub fn proxy_args(&self, opts: &DemoOptions, ca_root: &Path, token_file: &Path) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "--workload".into(),
            self.workload.into(),
            "--namespace".into(),
            self.namespace.into(),
            "--service-account".into(),
            self.service_account.into(),
        ];
        for (k, v) in self.labels() {
            a.extend(["--label".into(), format!("{k}={v}")]);
        }
        a.extend([
            "--inbound".into(),
            self.inbound.to_string(),
            "--app".into(),
            self.app_addr.to_string(),
            "--outbound".into(),
            self.outbound.to_string(),
            "--admin".into(),
            self.admin.to_string(),
            "--control".into(),
            format!("https://{}", opts.control),
            "--ca-root".into(),
            ca_root.to_string_lossy().into_owned(),
            "--token-file".into(),
            token_file.to_string_lossy().into_owned(),
            "--otlp".into(),
            format!("http://{}", opts.otlp_grpc),
        ]);
        if self.role.is_some() {
            a.extend(["--service".into(), self.app.into()]);
        }
        if let Some(listen) = self.gateway_listen {
            a.extend(["--gateway".into(), "--listen".into(), listen.to_string()]);
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_do_not_overlap() {
        let t = Topology::bookinfo(21000);
        let mut all = Vec::new();
        for w in &t.workloads {
            all.extend([w.app_addr, w.inbound, w.outbound, w.admin]);
            all.extend(w.gateway_listen);
        }
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "every port is used once");
        assert_eq!(t.workloads.len(), 7);
    }

    #[test]
    fn declarations_are_valid_istio_and_back_every_sidecars_hello() {
        let t = Topology::bookinfo(21000);
        let yaml = format!("{}---\n{}", super::super::DEMO_CONFIG, t.declarations());
        let parsed = loupe_model::parse_documents("demo", &yaml);
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        let errors: Vec<_> = loupe_model::analyze(&parsed.resources)
            .into_iter()
            .filter(|d| d.severity == loupe_model::Severity::Error)
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
        let kinds =
            |k: loupe_model::Kind| parsed.resources.iter().filter(|r| r.kind() == k).count();
        assert_eq!(kinds(loupe_model::Kind::WorkloadEntry), 7);
        assert_eq!(kinds(loupe_model::Kind::ServiceEntry), 4);

        // Each sidecar's flags describe exactly its entry.
        let services = loupe_model::registry::service_endpoints(&parsed.resources);
        let reviews: Vec<String> = services
            .iter()
            .filter(|s| s.host == "reviews.default.svc.cluster.local")
            .flat_map(|s| {
                s.endpoints
                    .iter()
                    .map(|e| format!("{}:{}", e.address, e.port))
            })
            .collect();
        let inbound = |name: &str| {
            t.workloads
                .iter()
                .find(|w| w.workload == name)
                .unwrap()
                .inbound
                .to_string()
        };
        assert_eq!(
            reviews,
            [
                inbound("reviews-v1"),
                inbound("reviews-v2"),
                inbound("reviews-v3")
            ]
        );
        let opts = test_options();
        let gw = t
            .workloads
            .iter()
            .find(|w| w.gateway_listen.is_some())
            .unwrap();
        let args = gw.proxy_args(&opts, Path::new("/ca/root-cert.pem"), Path::new("/t"));
        for label in ["app=istio-ingressgateway", "istio=ingressgateway"] {
            assert!(args.iter().any(|a| a == label), "{args:?}");
        }
        let pos = |flag: &str| args.iter().position(|a| a == flag).unwrap() + 1;
        assert_eq!(args[pos("--control")], "https://127.0.0.1:15010");
        assert_eq!(args[pos("--ca-root")], "/ca/root-cert.pem");
        assert_eq!(args[pos("--token-file")], "/t");
    }

    fn test_options() -> DemoOptions {
        DemoOptions {
            database_url: None,
            home: "/tmp/loupe-test-home".into(),
            postgres_port: 15432,
            control: "127.0.0.1:15010".parse().unwrap(),
            otlp_grpc: "127.0.0.1:4317".parse().unwrap(),
            otlp_http: "127.0.0.1:4318".parse().unwrap(),
            console: "127.0.0.1:20001".parse().unwrap(),
            port_base: 21000,
            rps: 1.0,
            static_dir: None,
            scrape_interval: "5s".into(),
            cert_ttl: "24h".into(),
            trace_sampling: "100".into(),
        }
    }
}
