//! The CA directory, in Istio's `cacerts` layout, and how its files are
//! written: private keys with mode 0600 from their first byte, every file
//! replaced atomically (written beside, then renamed) so a crash never
//! leaves half a key.
//!
//! ```text
//! <ca-dir>/
//!   ca-key.pem      the signing key (0600; never in the database)
//!   ca-cert.pem     the signing certificate (the root itself when generated)
//!   root-cert.pem   the trust bundle: every root a peer's chain may end at
//!   cert-chain.pem  (plugged-in CAs) ca-cert up to the root
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use super::CaError;

pub const CA_KEY: &str = "ca-key.pem";
pub const CA_CERT: &str = "ca-cert.pem";
pub const ROOT_CERT: &str = "root-cert.pem";
pub const CERT_CHAIN: &str = "cert-chain.pem";

/// The files of one CA directory.
#[derive(Clone, Debug)]
pub struct CaDir {
    pub dir: PathBuf,
}

impl CaDir {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        CaDir { dir: dir.into() }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    pub fn exists(&self, file: &str) -> bool {
        self.path(file).exists()
    }

    pub fn read(&self, file: &str) -> Result<String, CaError> {
        let path = self.path(file);
        std::fs::read_to_string(&path).map_err(|source| CaError::Read { path, source })
    }

    /// Creates the directory (mode 0700: it holds a private key).
    pub fn create(&self) -> Result<(), CaError> {
        let write = |source| CaError::Write {
            path: self.dir.clone(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(write)?;
        set_mode(&self.dir, 0o700).map_err(write)
    }

    /// Writes a private key: mode 0600, never readable by others, not even
    /// for a moment.
    pub fn write_private(&self, file: &str, contents: &str) -> Result<(), CaError> {
        self.write_atomic(file, contents, 0o600)
    }

    pub fn write_public(&self, file: &str, contents: &str) -> Result<(), CaError> {
        self.write_atomic(file, contents, 0o644)
    }

    fn write_atomic(&self, file: &str, contents: &str, mode: u32) -> Result<(), CaError> {
        let path = self.path(file);
        let tmp = self.path(&format!(".{file}.tmp"));
        let write = |source| CaError::Write {
            path: path.clone(),
            source,
        };
        let _ = std::fs::remove_file(&tmp);
        let mut f = open_new(&tmp, mode).map_err(write)?;
        f.write_all(contents.as_bytes()).map_err(write)?;
        f.sync_all().map_err(write)?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(write)
    }

    /// Warns when a key file is readable by group or others (a key mounted
    /// from a Kubernetes Secret, say); it is still used.
    pub fn check_private_mode(&self, file: &str) {
        let path = self.path(file);
        if let Some(mode) = mode_of(&path).filter(|m| m & 0o077 != 0) {
            tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "the CA key is readable by other users: chmod 600 it");
        }
    }
}

#[cfg(unix)]
fn open_new(path: &Path, mode: u32) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
}

#[cfg(not(unix))]
fn open_new(path: &Path, _mode: u32) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

/// The permission bits of a file (`None` where there are none to read).
pub fn mode_of(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path)
            .ok()
            .map(|m| m.permissions().mode() & 0o777)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}
