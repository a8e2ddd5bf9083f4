#!/usr/bin/env bash
# Regenerates push/src/gen/ from push/proto/push.proto (needs protoc: apt protobuf-compiler).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src" "$tmp/gen"
cat >"$tmp/Cargo.toml" <<TOML
[package]
name = "gen-push"
version = "0.0.0"
edition = "2024"
[build-dependencies]
tonic-prost-build = "0.14"
TOML
echo 'fn main() {}' >"$tmp/src/main.rs"
cat >"$tmp/build.rs" <<RS
fn main() {
    tonic_prost_build::configure()
        .out_dir("$tmp/gen")
        .compile_protos(&["$root/push/proto/push.proto"], &["$root/push/proto"])
        .expect("compile push.proto");
}
RS
(cd "$tmp" && cargo build -q)
cp "$tmp/gen/loupe.push.v1.rs" "$root/push/src/gen/"
echo "regenerated push/src/gen/loupe.push.v1.rs"
