#!/usr/bin/env bash
# Builds the Leptos console to frontend/dist/ (index.html, style.css,
# loupe_frontend.js, loupe_frontend_bg.wasm), which `loupe console
# --static-dir frontend/dist` serves.
#
# Idempotent: adds the wasm32 target and installs wasm-bindgen-cli at exactly
# the wasm-bindgen version pinned in Cargo.lock when they are missing (the
# CLI and the library must match, or the generated JS does not load).
#
#   scripts/build-frontend.sh            # release build (small wasm)
#   PROFILE=dev scripts/build-frontend.sh  # faster, larger, with debug info
# wasm-opt (binaryen ≥ 116, e.g. npm `binaryen@132`) is used when on PATH.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
profile="${PROFILE:-release}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
dist="$root/frontend/dist"
export PATH="$HOME/.cargo/bin:$PATH"

step() { printf '==> %s\n' "$*" >&2; }

# 1. The wasm target (rust-toolchain.toml names it; older rustups need asking).
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  step "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# 2. wasm-bindgen-cli at Cargo.lock's wasm-bindgen version.
want="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
if [[ -z "$want" ]]; then
  echo "build-frontend: no wasm-bindgen in Cargo.lock; is this the Loupe workspace?" >&2
  exit 1
fi
have="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
if [[ "$have" != "$want" ]]; then
  step "installing wasm-bindgen-cli $want (found: ${have:-none}); this takes a few minutes once"
  cargo install wasm-bindgen-cli --version "$want" --force
fi

# 3. Build the crate for the browser.
step "building loupe-frontend ($profile) for wasm32-unknown-unknown"
if [[ "$profile" == "release" ]]; then
  cargo build -p loupe-frontend --target wasm32-unknown-unknown --profile wasm-release
  out_dir="$target_dir/wasm32-unknown-unknown/wasm-release"
else
  cargo build -p loupe-frontend --target wasm32-unknown-unknown
  out_dir="$target_dir/wasm32-unknown-unknown/debug"
fi

# 4. JS glue + assets into a fresh dist/ (built in a temp dir under the
#    target dir, then swapped in, so a running console never serves a
#    half-written directory and nothing untracked lands in the source tree).
mkdir -p "$target_dir"
staging="$(mktemp -d "$target_dir/frontend-dist.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
step "running wasm-bindgen"
wasm-bindgen --target web --no-typescript --remove-name-section --remove-producers-section --out-name loupe_frontend --out-dir "$staging" "$out_dir/loupe-frontend.wasm"

if [[ "$profile" == "release" ]] && command -v wasm-opt >/dev/null 2>&1; then
  step "optimizing with $(wasm-opt --version)"
  if wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
      --enable-mutable-globals --enable-reference-types --enable-multivalue \
      -o "$staging/opt.wasm" "$staging/loupe_frontend_bg.wasm"; then
    mv "$staging/opt.wasm" "$staging/loupe_frontend_bg.wasm"
  else
    echo "build-frontend: wasm-opt failed; keeping the unoptimized wasm" >&2
  fi
fi

cp frontend/index.html frontend/style.css "$staging/"
chmod 755 "$staging"
rm -rf "$dist.old"
if [[ -d "$dist" ]]; then mv "$dist" "$dist.old"; fi
mv "$staging" "$dist"
rm -rf "$dist.old"
trap - EXIT

size="$(wc -c < "$dist/loupe_frontend_bg.wasm")"
step "frontend/dist ready: loupe_frontend_bg.wasm is $((size / 1024)) KiB"
