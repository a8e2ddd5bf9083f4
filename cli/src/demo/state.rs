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

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_state_file_is_private_and_holds_the_login() {
        let home = tempfile::tempdir().unwrap();
        let state = DemoState {
            database_url: "postgres://x".into(),
            console_url: "http://127.0.0.1:20001".into(),
            control_url: "https://127.0.0.1:15010".into(),
            ca_root: "root.pem".into(),
            gateway_url: "http://127.0.0.1:21080".into(),
            pid: 1,
            logs: "logs".into(),
            workloads: BTreeMap::new(),
            console_login: ConsoleLogin {
                user: "admin".into(),
                password: "secret-password".into(),
            },
            token: "loupe_abc".into(),
        };
        // A stale, world-readable temp file must not keep its mode.
        let tmp = DemoState::path(home.path()).with_extension("json.tmp");
        std::fs::write(&tmp, "old").unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).unwrap();
        state.write(home.path()).unwrap();
        let path = DemoState::path(home.path());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(json["console_login"]["user"], "admin");
        assert_eq!(json["console_login"]["password"], "secret-password");
        assert_eq!(json["token"], "loupe_abc");
    }
}
