//! The demo's workloads and the ports each one uses. Every workload gets a
//! block of four ports from `port_base`: app, sidecar inbound, sidecar
//! outbound, sidecar admin (metrics).

use std::net::{SocketAddr, TcpListener};

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

    /// workload → its sidecar's admin (metrics) address.
    pub fn admin_addresses(&self) -> std::collections::BTreeMap<String, String> {
        self.workloads
            .iter()
            .map(|w| (w.workload.to_string(), w.admin.to_string()))
            .collect()
    }
}

impl WorkloadSpec {
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

    /// `loupe-proxy …` for the workload's sidecar (or the gateway).
    pub fn proxy_args(&self, opts: &DemoOptions) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "--workload".into(),
            self.workload.into(),
            "--namespace".into(),
            self.namespace.into(),
            "--service-account".into(),
            self.service_account.into(),
            "--label".into(),
            format!("app={}", self.app),
            "--inbound".into(),
            self.inbound.to_string(),
            "--app".into(),
            self.app_addr.to_string(),
            "--outbound".into(),
            self.outbound.to_string(),
            "--admin".into(),
            self.admin.to_string(),
            "--control".into(),
            format!("http://{}", opts.control),
            "--otlp".into(),
            format!("http://{}", opts.otlp_grpc),
        ];
        if !self.version.is_empty() {
            a.extend(["--label".into(), format!("version={}", self.version)]);
        }
        if self.role.is_some() {
            a.extend(["--service".into(), self.app.into()]);
        }
        if let Some(listen) = self.gateway_listen {
            a.extend([
                "--gateway".into(),
                "--listen".into(),
                listen.to_string(),
                "--label".into(),
                "istio=ingressgateway".into(),
            ]);
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
}
