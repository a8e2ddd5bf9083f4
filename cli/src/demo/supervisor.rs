//! The demo's child processes: started with their output in a log file each,
//! tied to the demo's life (they get SIGTERM if `loupe demo` dies), waited
//! for until ready, restarted like a kubelet restarts a container — a part
//! that exits is started again after a backoff (doubling from
//! [`BACKOFF_MIN`] to [`BACKOFF_MAX`], reset once it has run for
//! [`BACKOFF_RESET`]), the restart logged to the demo's output and the
//! part's log, nothing else stopped — and all stopped at the end (SIGTERM,
//! then SIGKILL after a grace period) so nothing of the demo is left running.
//! Every change is also written to a record the console serves at
//! `/api/components` ([`loupe_server::components`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// The first restart's delay; each further restart of the same part doubles it.
pub const BACKOFF_MIN: Duration = Duration::from_millis(250);
/// The longest delay between two restarts (a part that keeps crashing).
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// A part that ran this long before exiting restarts after [`BACKOFF_MIN`] again.
pub const BACKOFF_RESET: Duration = Duration::from_secs(60);

/// One supervised process: how to start it, and its current run.
struct Part {
    name: String,
    program: String,
    args: Vec<String>,
    /// Environment besides the demo's own: secrets such as `DATABASE_URL`
    /// go here, never on the command line, which every local user can read
    /// (`ps`, `/proc/PID/cmdline`).
    env: Vec<(String, String)>,
    /// `None` while waiting to be restarted.
    child: Option<Child>,
    started: Instant,
    restarts: u32,
    backoff: Duration,
    /// When a part that exited is started again.
    restart_at: Option<Instant>,
    started_at: chrono::DateTime<chrono::Utc>,
    last_exit: Option<(String, chrono::DateTime<chrono::Utc>)>,
}

pub struct Supervisor {
    logs: PathBuf,
    parts: Vec<Part>,
    /// Where the record of the parts goes (see [`Supervisor::save`]).
    record: PathBuf,
}

impl Supervisor {
    /// Logs in `logs/NAME.log`, the parts' record in `record`.
    pub fn new(logs: PathBuf, record: PathBuf) -> Self {
        Supervisor {
            logs,
            parts: Vec::new(),
            record,
        }
    }

    /// Writes the parts' record for the console; a failure is only logged
    /// (the demo runs on without it).
    fn save(&self) {
        let record = loupe_api::mesh::Components {
            supervised: true,
            parts: self
                .parts
                .iter()
                .map(|p| loupe_api::mesh::Part {
                    name: p.name.clone(),
                    pid: p.child.as_ref().and_then(Child::id),
                    running: p.child.is_some(),
                    restarts: p.restarts,
                    started_at: p.started_at,
                    last_exit: p.last_exit.as_ref().map(|(s, _)| s.clone()),
                    last_exit_at: p.last_exit.as_ref().map(|(_, at)| *at),
                })
                .collect(),
        };
        if let Err(error) = loupe_server::components::write(&record, &self.record) {
            tracing::warn!(%error, path = %self.record.display(), "cannot write the parts' record");
        }
    }

    /// `name`'s command, its output going to `logs/NAME.log` (appended to
    /// when `append`, for a restart).
    fn command(
        &self,
        name: &str,
        program: &str,
        args: &[&str],
        env: &[(String, String)],
        append: bool,
    ) -> anyhow::Result<Command> {
        let log_path = self.logs.join(format!("{name}.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        die_with_parent(&mut cmd);
        Ok(cmd)
    }

    /// Starts `name` and supervises it from now on.
    pub fn spawn(&mut self, name: &str, program: &str, args: &[&str]) -> anyhow::Result<()> {
        self.spawn_with_env(name, program, args, &[])
    }

    /// [`Supervisor::spawn`], with `env` added to the part's environment
    /// (at every restart too).
    pub fn spawn_with_env(
        &mut self,
        name: &str,
        program: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let child = self
            .command(name, program, args, &env, false)?
            .spawn()
            .with_context(|| format!("starting {name} ({program})"))?;
        self.parts.push(Part {
            name: name.to_string(),
            program: program.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env,
            child: Some(child),
            started: Instant::now(),
            restarts: 0,
            backoff: BACKOFF_MIN,
            restart_at: None,
            started_at: chrono::Utc::now(),
            last_exit: None,
        });
        self.save();
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

    /// While the demo starts, a part that exits fails the start (its log says why).
    fn check_alive(&mut self, name: &str) -> anyhow::Result<()> {
        for part in &mut self.parts {
            if part.name != name {
                continue;
            }
            if let Some(Ok(Some(status))) = part.child.as_mut().map(Child::try_wait) {
                anyhow::bail!(
                    "{name} exited ({status}); see {}",
                    self.logs.join(format!("{name}.log")).display()
                );
            }
        }
        Ok(())
    }

    /// Watches every part for ever: one that exits is restarted after its
    /// backoff, and `on_restart` hears of it. Never returns; drop the future
    /// (e.g. in a `select!` with the shutdown signal) to stop supervising.
    pub async fn supervise(&mut self, mut on_restart: impl FnMut(Restart)) {
        loop {
            let now = Instant::now();
            for i in 0..self.parts.len() {
                let (changed, restart) = self.tend(i, now);
                if let Some(restart) = restart {
                    on_restart(restart);
                }
                if changed {
                    self.save();
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Notices part `i` exiting (and schedules its restart), or restarts it
    /// when its backoff is over; whether anything changed, and the restart.
    fn tend(&mut self, i: usize, now: Instant) -> (bool, Option<Restart>) {
        let part = &mut self.parts[i];
        if let Some(child) = &mut part.child {
            let Ok(Some(status)) = child.try_wait() else {
                return (false, None);
            };
            part.last_exit = Some((status.to_string(), chrono::Utc::now()));
            if now.duration_since(part.started) >= BACKOFF_RESET {
                part.backoff = BACKOFF_MIN;
            }
            part.child = None;
            part.restart_at = Some(now + part.backoff);
            let name = &part.name;
            tracing::warn!(part = %name, %status, backoff = ?part.backoff, "exited; restarting after the backoff");
            eprintln!(
                "  {name} exited ({status}); restarting in {:.1}s",
                part.backoff.as_secs_f64()
            );
            return (true, None);
        }
        let due = part.restart_at.is_some_and(|at| at <= now);
        if !due {
            return (false, None);
        }
        let (name, program, args) = (part.name.clone(), part.program.clone(), part.args.clone());
        let env = part.env.clone();
        let backoff = part.backoff;
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let spawned = self
            .command(&name, &program, &refs, &env, true)
            .and_then(|mut cmd| Ok(cmd.spawn()?));
        let part = &mut self.parts[i];
        part.backoff = (backoff * 2).min(BACKOFF_MAX);
        match spawned {
            Ok(child) => {
                part.child = Some(child);
                part.started = now;
                part.started_at = chrono::Utc::now();
                part.restart_at = None;
                part.restarts += 1;
                (
                    true,
                    Some(Restart {
                        part: part.name.clone(),
                        restarts: part.restarts,
                    }),
                )
            }
            Err(error) => {
                eprintln!("  cannot restart {name}: {error:#}; retrying");
                part.restart_at = Some(now + part.backoff);
                (false, None)
            }
        }
    }

    /// SIGTERM to every child (newest first), SIGKILL to those still running after 5 s.
    pub async fn shutdown(&mut self) {
        for part in self.parts.iter().rev() {
            if let Some(pid) = part.child.as_ref().and_then(Child::id) {
                terminate(pid);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for part in &mut self.parts {
            let Some(child) = &mut part.child else {
                continue;
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left, child.wait()).await.is_err() {
                tracing::warn!(name = %part.name, "did not stop on SIGTERM; killing");
                let _ = child.kill().await;
            }
        }
        self.parts.clear();
    }
}

/// A part the supervisor just started again.
#[derive(Clone, Debug)]
pub struct Restart {
    pub part: String,
    /// How often it has been restarted so far, this one included.
    pub restarts: u32,
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
