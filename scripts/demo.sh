#!/usr/bin/env bash
# The demo on a fresh machine: installs what is missing, builds, and runs
# `loupe demo` (Ctrl-C stops everything). Extra arguments go to `loupe demo`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/env.sh
scripts/setup.sh
echo "==> building (cargo, target dir $CARGO_TARGET_DIR)"
cargo build -q --bins -p loupe -p loupe-proxy -p loupe-samples
scripts/build-frontend.sh
exec "$CARGO_TARGET_DIR/debug/loupe" demo --static-dir "$root/frontend/dist" "$@"
