//! `$LOUPE_HOME/demo.json`: where a running demo is, so `loupe apply`,
//! `loupe get` and tests find its database and console without flags, and
//! the console's admin login and API token. It holds secrets, so it is
//! mode 0600 from its first byte.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub struct DemoState {
    pub database_url: String,
    pub console_url: String,
    /// The control plane's gRPC port (TLS).
    pub control_url: String,
    /// The mesh's trust bundle, to verify the control plane and the sidecars.
    pub ca_root: PathBuf,
    pub gateway_url: String,
    pub pid: u32,
    pub logs: PathBuf,
    /// workload → where it listens.
    pub workloads: BTreeMap<String, WorkloadAddresses>,
    /// The console's admin user, to log in with in the browser.
    pub console_login: ConsoleLogin,
    /// An API token of that admin, which the CLI sends by itself.
    pub token: String,
}

/// A console user and password.
#[derive(Debug, Serialize, Deserialize)]
pub struct ConsoleLogin {
    pub user: String,
    pub password: String,
}

/// One workload's addresses (`host:port`).
#[derive(Debug, Serialize, Deserialize)]
pub struct WorkloadAddresses {
    /// The application itself (`None` for the ingress gateway, which has none).
    pub app: Option<String>,
    /// Its sidecar's inbound listener (what other sidecars call).
    pub inbound: String,
    /// Its sidecar's outbound listener (what the app calls).
    pub outbound: String,
    /// Its sidecar's admin port (`/stats/prometheus`, readiness).
    pub admin: String,
}

/// `$LOUPE_HOME`, else `$HOME/.loupe`.
pub fn loupe_home() -> PathBuf {
    if let Some(h) = std::env::var_os("LOUPE_HOME") {
        return PathBuf::from(h);
    }
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(".loupe")
}

impl DemoState {
    pub fn path(home: &Path) -> PathBuf {
        home.join("demo.json")
    }

    pub fn write(&self, home: &Path) -> anyhow::Result<()> {
        let path = Self::path(home);
        let tmp = path.with_extension("json.tmp");
        write_private(&tmp, &serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    pub fn remove(home: &Path) {
        let _ = std::fs::remove_file(Self::path(home));
    }
}

/// Writes a new file only its owner can read, from its first byte.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let _ = std::fs::remove_file(path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents)
}
