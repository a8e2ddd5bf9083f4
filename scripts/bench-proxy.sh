#!/usr/bin/env bash
# Load harness for the whole data path: the same app (bookinfo `details`)
# reached three ways in one run, with wrk on loopback:
#   direct       wrk → app
#   nginx x2     wrk → nginx → nginx → app          (baseline: two plain proxy hops)
#   loupe mesh   wrk → outbound sidecar → inbound sidecar → app
#                (routing, metrics and spans on, as in the demo)
# Prints requests/s and latency percentiles for each, and Loupe's ratio to
# the nginx baseline. Release build. Usage: scripts/bench-proxy.sh [SECONDS] [CONNECTIONS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/env.sh
secs=${1:-10}
conns=${2:-16}
command -v wrk >/dev/null && command -v nginx >/dev/null || {
  echo "==> apt-get install wrk nginx-light"; apt-get install -y -q wrk nginx-light >/dev/null; }
echo "==> building (release)"
cargo build -q --release -p loupe -p loupe-proxy -p loupe-samples

work=$(mktemp -d /tmp/loupe-bench-XXXXXX)
base=27000
app=127.0.0.1:$((base + 10))          # details-v1's app (topology: workload 1)
outbound=127.0.0.1:$((base + 2))      # productpage-v1's outbound sidecar
"$CARGO_TARGET_DIR/release/loupe" demo --home "$work" --port-base $base \
  --console 127.0.0.1:27101 --control 127.0.0.1:27102 --otlp-grpc 127.0.0.1:27103 \
  --otlp-http 127.0.0.1:27104 --postgres-port 27105 --rps 0.2 >"$work/demo.out" 2>&1 &
demo=$!
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes 1;
error_log $work/nginx/error.log;
pid $work/nginx/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  upstream app { server $app; keepalive 64; }
  upstream hop { server 127.0.0.1:27201; keepalive 64; }
  server { listen 127.0.0.1:27200; location / { proxy_pass http://hop; proxy_http_version 1.1; proxy_set_header Connection ""; } }
  server { listen 127.0.0.1:27201; location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; } }
}
NGINX
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx"
cleanup() { nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" -s stop 2>/dev/null || true; kill -TERM $demo 2>/dev/null || true; wait $demo 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 1 120); do grep -q "console:" "$work/demo.out" && break; sleep 0.5; done
grep -q "console:" "$work/demo.out" || { cat "$work/demo.out"; exit 1; }

run() { # name url [host]
  local out
  if [ -n "${3:-}" ]; then out=$(wrk -t1 -c"$conns" -d"${secs}s" --latency -H "Host: $3" "$2"); else out=$(wrk -t1 -c"$conns" -d"${secs}s" --latency "$2"); fi
  local rps p50 p99 errs
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errs=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  printf '%-12s %10s req/s   p50 %-9s p99 %-9s non-2xx %s\n' "$1" "$rps" "$p50" "$p99" "${errs:-0}"
  echo "$rps" >"$work/$1.rps"
}
echo "==> wrk, 1 thread, $conns connections, ${secs}s each, 2 cores shared by wrk, proxies and app"
run direct "http://$app/details/0"
run nginx-x2 "http://127.0.0.1:27200/details/0"
run loupe-mesh "http://$outbound/details/0" "details:9080"
awk -v l="$(cat "$work/loupe-mesh.rps")" -v n="$(cat "$work/nginx-x2.rps")" -v d="$(cat "$work/direct.rps")" \
  'BEGIN { printf "loupe mesh / nginx x2 throughput: %.2f   loupe mesh / direct: %.2f\n", l / n, l / d }'
