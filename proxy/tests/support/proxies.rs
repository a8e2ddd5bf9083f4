//! Launching proxies: the real binary, or the same proxy as a task.

#![allow(dead_code)]

use super::*;

/// The flags of one proxy; `args()` renders the exact command line.
#[derive(Clone, Debug)]
pub struct ProxySpec {
    pub workload: String,
    pub app_label: String,
    pub version: String,
    pub inbound: Option<SocketAddr>,
    pub app: Option<SocketAddr>,
    pub outbound: Option<SocketAddr>,
    pub admin: SocketAddr,
    pub control: String,
    pub otlp: Option<String>,
    pub gateway_listen: Option<SocketAddr>,
    pub service_account: String,
    /// With a credential the proxy gets a certificate and speaks mTLS.
    pub token_file: Option<std::path::PathBuf>,
    pub cert_ttl: Option<u64>,
    /// More flags, as given.
    pub extra: Vec<String>,
}

impl ProxySpec {
    pub fn sidecar(workload: &str, app: &str, version: &str, control: &str) -> ProxySpec {
        ProxySpec {
            workload: workload.to_string(),
            app_label: app.to_string(),
            version: version.to_string(),
            inbound: None,
            app: None,
            outbound: None,
            admin: addr(free_port()),
            control: control.to_string(),
            otlp: None,
            gateway_listen: None,
            service_account: format!("bookinfo-{app}"),
            token_file: None,
            cert_ttl: None,
            extra: Vec::new(),
        }
        // The mesh default: every sidecar has an identity and speaks mTLS.
        .with_identity()
    }

    /// A proxy without a credential: no certificate, plaintext only.
    pub fn without_identity(mut self) -> ProxySpec {
        self.token_file = None;
        self
    }

    /// Gives the proxy a credential, so it gets a SPIFFE certificate.
    pub fn with_identity(mut self) -> ProxySpec {
        let dir = std::env::temp_dir().join(format!("loupe-proxy-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("token dir");
        let path = dir.join(format!("{}-{}.token", self.workload, self.admin.port()));
        std::fs::write(&path, "test-token").expect("write token");
        self.token_file = Some(path);
        self
    }

    /// Presents certificates for another service account than its label's.
    pub fn with_service_account(mut self, sa: &str) -> ProxySpec {
        self.service_account = sa.to_string();
        self
    }

    pub fn with_cert_ttl(mut self, seconds: u64) -> ProxySpec {
        self.cert_ttl = Some(seconds);
        self
    }

    pub fn with_inbound(mut self, app: SocketAddr) -> ProxySpec {
        self.inbound = Some(addr(free_port()));
        self.app = Some(app);
        self
    }

    pub fn with_outbound(mut self) -> ProxySpec {
        self.outbound = Some(addr(free_port()));
        self
    }

    /// Adds flags to the command line.
    pub fn with_flags(mut self, flags: &[&str]) -> ProxySpec {
        self.extra.extend(flags.iter().map(|f| f.to_string()));
        self
    }

    pub fn with_otlp(mut self, collector: SocketAddr) -> ProxySpec {
        self.otlp = Some(format!("http://{collector}"));
        self
    }

    pub fn args(&self) -> Vec<String> {
        let mut a = vec![
            "--workload".into(),
            self.workload.clone(),
            "--namespace".into(),
            "default".into(),
            "--service-account".into(),
            self.service_account.clone(),
            "--label".into(),
            format!("app={}", self.app_label),
            "--label".into(),
            format!("version={}", self.version),
            "--admin".into(),
            self.admin.to_string(),
            "--control".into(),
            self.control.clone(),
        ];
        if let (Some(i), Some(app)) = (self.inbound, self.app) {
            a.extend([
                "--inbound".into(),
                i.to_string(),
                "--app".into(),
                app.to_string(),
            ]);
        }
        if let Some(o) = self.outbound {
            a.extend(["--outbound".into(), o.to_string()]);
        }
        if let Some(l) = self.gateway_listen {
            a.extend(["--gateway".into(), "--listen".into(), l.to_string()]);
            a.extend(["--label".into(), "istio=ingressgateway".into()]);
        }
        if let Some(o) = &self.otlp {
            a.extend(["--otlp".into(), o.clone()]);
        }
        if let Some(t) = &self.token_file {
            a.extend(["--token-file".into(), t.display().to_string()]);
        }
        if let Some(ttl) = self.cert_ttl {
            a.extend(["--cert-ttl".into(), ttl.to_string()]);
        }
        a.extend(self.extra.iter().cloned());
        a
    }

    /// Runs the real `loupe-proxy` binary.
    pub fn spawn_binary(&self) -> ProxyProcess {
        let child = Command::new(env!("CARGO_BIN_EXE_loupe-proxy"))
            .args(self.args())
            .env("RUST_LOG", "loupe_proxy=debug,info")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start loupe-proxy");
        ProxyProcess { child }
    }

    /// Runs the same proxy as a task of the test's runtime.
    pub fn spawn_task(&self) -> tokio::task::JoinHandle<()> {
        use clap::Parser;
        let mut argv = vec!["loupe-proxy".to_string()];
        argv.extend(self.args());
        let args = loupe_proxy::cli::Args::try_parse_from(argv).expect("valid args");
        tokio::spawn(async move {
            if let Err(e) = loupe_proxy::run(args, std::future::pending()).await {
                panic!("proxy failed to start: {e}");
            }
        })
    }

    /// Waits until `/ready` says 200.
    pub async fn wait_ready(&self) {
        let admin = self.admin;
        eventually(
            &format!("{} ready", self.workload),
            Duration::from_secs(15),
            || async move {
                let (status, _) = get(admin, "localhost", "/ready").await.ok()?;
                (status == 200).then_some(())
            },
        )
        .await
    }

    pub async fn certs(&self) -> serde_json::Value {
        get(self.admin, "localhost", "/certs")
            .await
            .ok()
            .and_then(|(_, body)| serde_json::from_str(&body).ok())
            .unwrap_or_default()
    }

    pub async fn metrics(&self) -> String {
        get(self.admin, "localhost", "/stats/prometheus")
            .await
            .map(|(_, body)| body)
            .unwrap_or_default()
    }
}

/// A `loupe-proxy` child process, killed when dropped.
pub struct ProxyProcess {
    child: Child,
}

impl ProxyProcess {
    /// The process ID.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM, as Kubernetes and `loupe demo` stop a sidecar.
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// The exit status, if the process ends within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
