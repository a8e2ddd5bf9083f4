//! A private PostgreSQL server: its own data directory, its own Unix socket
//! directory and port, no TCP listener. Started with `initdb` + `pg_ctl`
//! from the Debian packages (`apt-get install -y postgresql`), stopped when
//! dropped. As root, the server runs as the `postgres` user (initdb refuses root).
//! Only the OS user who started it can connect (peer authentication on the
//! socket, mapped to the `postgres` role); its directories are `0700`.

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
    ///
    /// Only the OS user who calls this can connect: peer authentication on
    /// the socket, mapped to the `postgres` role. As root the server runs as
    /// `postgres`, which must reach its files without anyone's permissions
    /// being widened: if `postgres` cannot already traverse to `root` (root's
    /// home is `0700`), the files live instead under
    /// `/var/lib/loupe-postgres/<hash of root>`, a `postgres`-owned `0700`
    /// directory, and `root/LOCATION` says where.
    pub fn start_in(root: &Path, port: u16) -> Result<Self, PrivatePostgresError> {
        let bin = find_bin_dir().ok_or(PrivatePostgresError::NotInstalled)?;
        let as_postgres_user = is_root();
        let client = os_user_name()?;
        create_private_dir(root)?;
        let home = if as_postgres_user && !traversable_by_others(root) {
            let home = relocated(root)?;
            let location = root.join("LOCATION");
            std::fs::write(&location, format!("{}\n", home.display())).map_err(|source| {
                PrivatePostgresError::Io {
                    dir: location,
                    source,
                }
            })?;
            home
        } else {
            root.to_path_buf()
        };
        let data_dir = home.join("data");
        let socket_dir = home.join("run");
        create_private_dir(&socket_dir)?;
        let pg = PrivatePostgres {
            bin,
            data_dir,
            socket_dir,
            port,
            as_postgres_user,
            _temp: None,
        };
        if as_postgres_user {
            // The server runs as `postgres`: it must own its directories.
            pg.run(
                "chown",
                &["-R", "postgres:postgres", &home.to_string_lossy()],
                false,
            )?;
        }
        if !pg.data_dir.join("PG_VERSION").exists() {
            let initdb = pg.bin.join("initdb").to_string_lossy().into_owned();
            let data = pg.data_dir.to_string_lossy().into_owned();
            pg.run(
                &initdb,
                &[
                    "-D",
                    &data,
                    "--auth-local=peer",
                    "--auth-host=reject",
                    "-U",
                    "postgres",
                    "--no-sync",
                    "-E",
                    "UTF8",
                ],
                true,
            )?;
        }
        // Written on every start, so a data directory initialized by an
        // older Loupe with `trust` is closed too.
        pg.write_config("pg_hba.conf", &hba_conf())?;
        pg.write_config("pg_ident.conf", &ident_conf(&client))?;
        pg.pg_ctl_start()?;
        Ok(pg)
    }

    /// The data directory (mode `0700`).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The directory of the server's Unix socket (mode `0700`).
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    fn write_config(&self, name: &str, text: &str) -> Result<(), PrivatePostgresError> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.data_dir.join(name);
        let io = |source| PrivatePostgresError::Io {
            dir: self.data_dir.clone(),
            source,
        };
        std::fs::write(&path, text).map_err(io)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        if self.as_postgres_user {
            self.run(
                "chown",
                &["postgres:postgres", &path.to_string_lossy()],
                false,
            )?;
        }
        Ok(())
    }

    fn pg_ctl_start(&self) -> Result<(), PrivatePostgresError> {
        let pg_ctl = self.bin.join("pg_ctl").to_string_lossy().into_owned();
        let data = self.data_dir.to_string_lossy().into_owned();
        let log = self
            .data_dir
            .join("server.log")
            .to_string_lossy()
            .into_owned();
        // `fsync=off`: a commit survives the death of any process (the OS
        // holds its WAL), not a crash of the machine — enough for a local
        // mesh, and fast. `synchronous_commit` stays on: off, a commit is
        // acknowledged before its WAL reaches the OS, so `kill -9` of
        // Postgres lost spans the collector had already acknowledged (the
        // fault suite counted 202 of 43,512).
        let opts = format!(
            "-k {} -p {} -c listen_addresses='' -c unix_socket_permissions=0700 -c fsync=off -c full_page_writes=off -c max_connections=200",
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

    /// Whether the server is running (`pg_ctl status`: its postmaster alive).
    pub fn is_running(&self) -> bool {
        let pg_ctl = self.bin.join("pg_ctl").to_string_lossy().into_owned();
        let data = self.data_dir.to_string_lossy().into_owned();
        self.run(&pg_ctl, &["-D", &data, "status"], true).is_ok()
    }

    /// Starts a server that died (`kill -9`, OOM) again on the same files
    /// and port; Postgres replays its write-ahead log first. Fails while
    /// the dead server's backends still hold its shared memory: retry.
    pub fn restart(&self) -> Result<(), PrivatePostgresError> {
        self.pg_ctl_start()
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

/// Only Unix-socket connections, only by peer (the client's OS user, as the
/// kernel tells it), only as mapped in `pg_ident.conf`.
fn hba_conf() -> String {
    "# Written by loupe-db on every start: the OS user who started this server,\n\
     # over its Unix socket, and no one else. No TCP listener is configured.\n\
     local all all peer map=loupe\n"
        .to_string()
}

fn ident_conf(client: &str) -> String {
    format!(
        "# Written by loupe-db on every start.\n# MAP  OS-USER  ROLE\nloupe {client} postgres\n"
    )
}

/// The name of the OS user running this process, as peer authentication sees it.
fn os_user_name() -> Result<String, PrivatePostgresError> {
    let out = Command::new("id")
        .arg("-un")
        .stdin(Stdio::null())
        .output()
        .map_err(|source| PrivatePostgresError::Io {
            dir: PathBuf::from("."),
            source,
        })?;
    let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || name.is_empty() || name.contains(char::is_whitespace) {
        return Err(PrivatePostgresError::Command {
            command: "id -un".into(),
            dir: PathBuf::from("."),
            output: String::from_utf8_lossy(&[out.stdout, out.stderr].concat())
                .trim()
                .to_string(),
        });
    }
    Ok(name)
}

/// Creates `dir` and any missing parents `0700` (existing parents are left
/// as they are), and makes `dir` itself `0700`.
fn create_private_dir(dir: &Path) -> Result<(), PrivatePostgresError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let io = |source| PrivatePostgresError::Io {
        dir: dir.to_path_buf(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)
}

/// Whether every directory above `dir` lets others through (`o+x`) already,
/// so `postgres` reaches `dir` without a permission being changed. A home
/// directory is never used in place, even if it was opened up.
fn traversable_by_others(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let Ok(dir) = dir.canonicalize() else {
        return false;
    };
    if home.as_deref().is_some_and(|h| dir.starts_with(h)) {
        return false;
    }
    dir.ancestors()
        .skip(1)
        .all(|d| std::fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
}

/// Where root's server keeps the files of `root`: a `postgres`-owned `0700`
/// directory under `/var/lib`, one per `root` path.
fn relocated(root: &Path) -> Result<PathBuf, PrivatePostgresError> {
    let base = PathBuf::from(RELOCATED_BASE);
    create_private_dir(&base)?;
    let status = Command::new("chown")
        .args(["postgres:postgres", RELOCATED_BASE])
        .stdin(Stdio::null())
        .status()
        .map_err(|source| PrivatePostgresError::Io {
            dir: base.clone(),
            source,
        })?;
    if !status.success() {
        return Err(PrivatePostgresError::Command {
            command: format!("chown postgres:postgres {RELOCATED_BASE}"),
            dir: base,
            output: status.to_string(),
        });
    }
    let canonical = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let home = base.join(format!(
        "{:016x}",
        fnv1a(canonical.as_os_str().as_encoded_bytes())
    ));
    create_private_dir(&home)?;
    Ok(home)
}

const RELOCATED_BASE: &str = "/var/lib/loupe-postgres";

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
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
