//! The rendered manifests pass `kubernetes-validate --strict` (PyPI; it ships
//! the Kubernetes OpenAPI schemas, so this runs offline once installed): every
//! builtin kind and the CRDs themselves are checked against Kubernetes 1.33's
//! schemas, unknown properties rejected. (Custom resources cannot be checked by
//! it; there are none in the manifests.)
//!
//! The tool is installed, once, into `$HOME/.cache/loupe/venv-k8s`
//! (`python3 -m venv` + `pip install kubernetes-validate`); `scripts/setup.sh`
//! does the same. If it cannot be installed the test fails, never skips.

mod tools;

use std::path::{Path, PathBuf};
use std::process::Command;

use loupe_k8s::manifest::{Profile, Settings, render};

/// The Kubernetes version of the workspace's `k8s-openapi` feature.
const KUBERNETES_VERSION: &str = "1.33.0";

fn validate(files: &[PathBuf]) {
    let out = Command::new(tools::pypi_tool(
        "kubernetes-validate",
        "kubernetes-validate",
    ))
    .args(["--strict", "--kubernetes-version", KUBERNETES_VERSION])
    .args(files)
    .output()
    .expect("kubernetes-validate runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let passed = stdout
        .lines()
        .filter(|l| l.contains(" passed for resource "))
        .count();
    assert!(
        out.status.success() && !stdout.contains("ERROR") && !stdout.contains("WARN"),
        "kubernetes-validate failed:\n{stdout}\n{stderr}"
    );
    assert!(passed > 30, "only {passed} resources passed:\n{stdout}");
}

#[test]
fn rendered_manifests_pass_kubernetes_validate_strict() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (name, settings) in [
        ("demo", Settings::for_profile(Profile::Demo)),
        ("default", Settings::for_profile(Profile::Default)),
        (
            "demo-external",
            Settings::from_sets(&["profile=demo", "database=external"]).unwrap(),
        ),
    ] {
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, render(&settings)).unwrap();
        files.push(path);
    }
    validate(&files);
}

#[test]
fn committed_manifests_pass_kubernetes_validate_strict() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes");
    validate(&[root.join("demo.yaml"), root.join("default.yaml")]);
}
