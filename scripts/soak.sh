#!/usr/bin/env bash
# Soak test (not in .ci/run): the demo at 500 requests/s through the gateway
# for 30 minutes (SOAK_MINUTES to change), sampling every part's RSS each
# minute. Passes when every part's RSS grew less than 5 % from the first
# sample after warm-up (minute 2) to the last, and the gateway answered
# nothing but 2xx. Prints one line per part: first, last, growth.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/env.sh
minutes=${SOAK_MINUTES:-30}
rps=${SOAK_RPS:-500}
cargo build -q --release --bins
home=$(mktemp -d /tmp/loupe-soak-XXXXXX)
log="$home/demo.out"
"$CARGO_TARGET_DIR/release/loupe" demo --home "$home" --port-base 28000 \
  --console 127.0.0.1:28101 --control 127.0.0.1:28102 --otlp-grpc 127.0.0.1:28103 \
  --otlp-http 127.0.0.1:28104 --postgres-port 28105 --rps "$rps" >"$log" 2>&1 &
demo=$!
trap 'kill -TERM "$demo" 2>/dev/null || true; wait "$demo" 2>/dev/null || true' EXIT
for _ in $(seq 1 240); do
  grep -q "console:" "$log" && break
  kill -0 "$demo" 2>/dev/null || { cat "$log"; echo "loupe demo exited"; exit 1; }
  sleep 0.5
done

# RSS in kB of every process of this demo, by its part name (its log file).
sample() {
  for pid in $(pgrep -f -- "$home|127.0.0.1:28[01][0-9][0-9]"); do
    [[ -r /proc/$pid/status ]] || continue
    name=$(tr '\0' ' ' </proc/$pid/cmdline | awk '{
      for (i = 1; i <= NF; i++) if ($i == "--workload") { print $(i+1) "-proxy"; exit }
      n = split($1, p, "/"); print p[n] "-" $2 }')
    rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
    echo "$name $rss"
  done | sort
}

sleep 120
sample >"$home/first"
for m in $(seq 3 "$minutes"); do
  sleep 60
  sample >"$home/m$m"
  echo "minute $m: $(awk '{s += $2} END {print int(s/1024)}' "$home/m$m") MB in all parts"
done
sample >"$home/last"
failed=0
while read -r name first last; do
  growth=$(awk -v a="$first" -v b="$last" 'BEGIN {printf "%.1f", (b - a) * 100 / a}')
  printf '%-28s %8d kB → %8d kB  %+6s %%\n' "$name" "$first" "$last" "$growth"
  if awk -v g="$growth" 'BEGIN {exit !(g >= 5)}'; then echo "  ^ grew 5 % or more"; failed=1; fi
done < <(join "$home/first" "$home/last")
gateway_admin=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["workloads"]["istio-ingressgateway"]["admin"])' "$home/demo.json")
non2xx=$(curl -s "$gateway_admin/stats/prometheus" 2>/dev/null |
  awk '/^istio_requests_total\{/ && /reporter="source"/ && !/response_code="2/ {s += $NF} END {print s + 0}')
echo "gateway non-2xx responses: $non2xx"
[[ "$non2xx" == 0 && "$failed" == 0 ]]
