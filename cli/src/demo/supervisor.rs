//! The demo's child processes: started with their output in a log file each,
//! tied to the demo's life (they get SIGTERM if `loupe demo` dies), waited
//! for until ready, and all stopped — SIGTERM, then SIGKILL after a grace
//! period — so nothing of the demo is left running.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

pub struct Supervisor {
    logs: PathBuf,
    children: Vec<(String, Child)>,
}

impl Supervisor {
    pub fn new(logs: PathBuf) -> Self {
        Supervisor {
            logs,
            children: Vec::new(),
        }
    }

    fn command(&self, name: &str, program: &str, args: &[&str]) -> anyhow::Result<Command> {
        let log_path = self.logs.join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        die_with_parent(&mut cmd);
        Ok(cmd)
    }

    pub fn spawn(&mut self, name: &str, program: &str, args: &[&str]) -> anyhow::Result<()> {
        let child = self
            .command(name, program, args)?
            .spawn()
            .with_context(|| format!("starting {name} ({program})"))?;
        self.children.push((name.to_string(), child));
        Ok(())
    }

    /// Waits until `addr` accepts connections, failing early if `name` exited.
    pub async fn wait_tcp(
        &mut self,
        name: &str,
        addr: SocketAddr,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(());
            }
            self.check_alive(name)?;
            anyhow::ensure!(
                Instant::now() < deadline,
                "{name} did not listen on {addr} within {timeout:?}; see {}",
                self.logs.join(format!("{name}.log")).display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the proxy of `workload` answers 200 on `/ready` (its first config is applied).
    pub async fn wait_ready(
        &mut self,
        workload: &str,
        admin: SocketAddr,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let name = format!("{workload}-proxy");
        loop {
            if http_get(admin, "/ready", "localhost").await == Some(200) {
                return Ok(());
            }
            self.check_alive(&name)?;
            anyhow::ensure!(
                Instant::now() < deadline,
                "the sidecar of {workload} was not ready within {timeout:?}; see {}",
                self.logs.join(format!("{name}.log")).display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn check_alive(&mut self, name: &str) -> anyhow::Result<()> {
        for (n, child) in &mut self.children {
            if n != name {
                continue;
            }
            if let Ok(Some(status)) = child.try_wait() {
                anyhow::bail!(
                    "{name} exited ({status}); see {}",
                    self.logs.join(format!("{name}.log")).display()
                );
            }
        }
        Ok(())
    }

    /// Resolves when any child exits, naming it.
    pub async fn wait_any_exit(&mut self) -> String {
        loop {
            for (name, child) in &mut self.children {
                if let Ok(Some(status)) = child.try_wait() {
                    return format!("{name} exited unexpectedly ({status})");
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// SIGTERM to every child (newest first), SIGKILL to those still running after 5 s.
    pub async fn shutdown(&mut self) {
        for (_, child) in self.children.iter().rev() {
            if let Some(pid) = child.id() {
                terminate(pid);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for (name, child) in &mut self.children {
            let left = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left, child.wait()).await.is_err() {
                tracing::warn!(%name, "did not stop on SIGTERM; killing");
                let _ = child.kill().await;
            }
        }
        self.children.clear();
    }
}

/// GET `path` on `addr` with a plain HTTP/1.1 request; the status code, if any answer came.
pub async fn http_get(addr: SocketAddr, path: &str, host: &str) -> Option<u16> {
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut buf = [0u8; 64];
        let mut n = 0;
        while n < 12 {
            let m = s.read(&mut buf[n..]).await.ok()?;
            if m == 0 {
                break;
            }
            n += m;
        }
        let line = std::str::from_utf8(&buf[..n]).ok()?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .ok()
        .flatten()
}

#[allow(unsafe_code)]
fn terminate(pid: u32) {
    // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped); no memory involved.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGTERM);
    }
}

#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls
    // prctl(2), which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
}
