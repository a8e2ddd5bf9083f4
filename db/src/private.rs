//! A private PostgreSQL server: its own data directory, its own Unix socket
//! directory and port, no TCP listener. Started with `initdb` + `pg_ctl`
//! from the Debian packages (`apt-get install -y postgresql`), stopped when
//! dropped. As root, the server runs as the `postgres` user (initdb refuses root).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum PrivatePostgresError {
    #[error(
        "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin; install them with `apt-get install -y postgresql` (or run scripts/setup.sh)"
    )]
    NotInstalled,
    #[error("`{command}` failed for data directory {dir}: {output}")]
    Command {
        command: String,
        dir: PathBuf,
        output: String,
    },
    #[error("cannot prepare {dir}: {source}")]
    Io {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A running private server. Dropping it stops the server (and, for a
/// temporary one, removes its files).
#[derive(Debug)]
pub struct PrivatePostgres {
    bin: PathBuf,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    port: u16,
    as_postgres_user: bool,
    _temp: Option<tempfile::TempDir>,
}

impl PrivatePostgres {
    /// Starts a server in a fresh temporary directory (for tests).
    pub fn start_temporary() -> Result<Self, PrivatePostgresError> {
        let temp = tempfile::Builder::new()
            .prefix("loupe-pg-")
            .tempdir()
            .map_err(|source| PrivatePostgresError::Io {
                dir: std::env::temp_dir(),
                source,
            })?;
        let root = temp.path().to_path_buf();
        let mut pg = Self::start_in(&root, free_port())?;
        pg._temp = Some(temp);
        Ok(pg)
    }

    /// Starts (initializing on first use) the server whose files live under
    /// `root` (`root/data`, `root/run`), listening on `port` on its socket only.
    pub fn start_in(root: &Path, port: u16) -> Result<Self, PrivatePostgresError> {
        let bin = find_bin_dir().ok_or(PrivatePostgresError::NotInstalled)?;
        let as_postgres_user = is_root();
        let data_dir = root.join("data");
        let socket_dir = root.join("run");
        for dir in [root, &socket_dir] {
            std::fs::create_dir_all(dir).map_err(|source| PrivatePostgresError::Io {
                dir: dir.to_path_buf(),
                source,
            })?;
        }
        let pg = PrivatePostgres {
            bin,
            data_dir,
            socket_dir,
            port,
            as_postgres_user,
            _temp: None,
        };
        if as_postgres_user {
            // The server runs as `postgres`: it must own (and reach) its directories.
            pg.run(
                "chown",
                &["-R", "postgres:postgres", &root.to_string_lossy()],
                false,
            )?;
            let mut dir = Some(root);
            while let Some(d) = dir {
                let _ = pg.run("chmod", &["o+x", &d.to_string_lossy()], false);
                dir = d.parent();
            }
        }
        if !pg.data_dir.join("PG_VERSION").exists() {
            let initdb = pg.bin.join("initdb").to_string_lossy().into_owned();
            let data = pg.data_dir.to_string_lossy().into_owned();
            pg.run(
                &initdb,
                &[
                    "-D",
                    &data,
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "--no-sync",
                    "-E",
                    "UTF8",
                ],
                true,
            )?;
        }
        pg.pg_ctl_start()?;
        Ok(pg)
    }

    fn pg_ctl_start(&self) -> Result<(), PrivatePostgresError> {
        let pg_ctl = self.bin.join("pg_ctl").to_string_lossy().into_owned();
        let data = self.data_dir.to_string_lossy().into_owned();
        let log = self
            .data_dir
            .join("server.log")
            .to_string_lossy()
            .into_owned();
        let opts = format!(
            "-k {} -p {} -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
            self.socket_dir.display(),
            self.port
        );
        // A stale server from a killed run would hold the port: stop it first.
        let _ = self.run(&pg_ctl, &["-D", &data, "-m", "immediate", "stop"], true);
        self.run(
            &pg_ctl,
            &["-D", &data, "-l", &log, "-o", &opts, "-w", "start"],
            true,
        )
    }

    /// The sqlx URL (over the Unix socket).
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@localhost/postgres?host={}&port={}",
            self.socket_dir.display(),
            self.port
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server now (also done on drop).
    pub fn stop(&self) {
        let pg_ctl = self.bin.join("pg_ctl").to_string_lossy().into_owned();
        let data = self.data_dir.to_string_lossy().into_owned();
        let _ = self.run(&pg_ctl, &["-D", &data, "-m", "fast", "-w", "stop"], true);
    }

    fn run(
        &self,
        program: &str,
        args: &[&str],
        as_postgres: bool,
    ) -> Result<(), PrivatePostgresError> {
        let mut cmd = if as_postgres && self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", program]);
            c
        } else {
            Command::new(program)
        };
        let out = cmd
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| PrivatePostgresError::Io {
                dir: self.data_dir.clone(),
                source,
            })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(PrivatePostgresError::Command {
                command: format!("{program} {}", args.join(" ")),
                dir: self.data_dir.clone(),
                output: String::from_utf8_lossy(&[out.stdout, out.stderr].concat())
                    .trim()
                    .to_string(),
            })
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

fn find_bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("pg_ctl").exists())
        .collect();
    dirs.sort();
    dirs.pop()
}

fn is_root() -> bool {
    // SAFETY-free: geteuid has no preconditions; wrapped to keep `unsafe` out of the crate.
    nix_geteuid() == 0
}

#[allow(unsafe_code)]
fn nix_geteuid() -> u32 {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

/// A port no one is listening on now (the server binds it on its socket).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(54329)
}
