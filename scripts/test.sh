#!/usr/bin/env bash
# Every test on a fresh machine: installs what is missing, then lints,
# builds (native and wasm32), runs the Rust tests (unit, cross-process,
# whole-demo) and the browser tests in Chromium against a running demo.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/env.sh
start=$(date +%s)
step() { echo; echo "==> $* ($(( $(date +%s) - start ))s)"; }

step "prerequisites"
scripts/setup.sh

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy -D warnings"
cargo clippy -q --workspace --all-targets -- -D warnings

step "loupe-model builds for wasm32"
cargo build -q -p loupe-model --target wasm32-unknown-unknown

step "frontend (WASM)"
scripts/build-frontend.sh

step "cargo test"
cargo build -q --workspace --bins
cargo test --workspace --no-fail-fast

step "browser tests (Playwright, Chromium)"
scripts/test-browser.sh

step "all tests passed"
