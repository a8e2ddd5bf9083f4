#!/usr/bin/env bash
# Runs the Playwright tests in Chromium against a real `loupe demo` started
# here on its own ports and home, then stops it and checks that nothing of
# it is left running. Arguments go to Playwright (`scripts/test-browser.sh
# big-trace` runs that file only).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/env.sh
home=$(mktemp -d /tmp/loupe-browser-XXXXXX)
console=127.0.0.1:25101
log="$home/demo.out"
"$CARGO_TARGET_DIR/debug/loupe" demo --home "$home" --static-dir "$root/frontend/dist" \
  --port-base 25000 --console "$console" --control 127.0.0.1:25102 \
  --otlp-grpc 127.0.0.1:25103 --otlp-http 127.0.0.1:25104 --postgres-port 25105 \
  --rps 20 --scrape-interval 2s >"$log" 2>&1 &
demo=$!
cleanup() {
  kill -TERM "$demo" 2>/dev/null || true
  wait "$demo" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 1 240); do
  grep -q "console:" "$log" && break
  kill -0 "$demo" 2>/dev/null || { cat "$log"; echo "loupe demo exited"; exit 1; }
  sleep 0.5
done
grep -q "console:" "$log" || { cat "$log"; echo "loupe demo did not come up"; exit 1; }
cat "$log"
# A viewer for the test that a viewer cannot save (the demo made the admin).
printf 'viewer-password\n' >"$home/viewer.pw"
LOUPE_HOME="$home" "$CARGO_TARGET_DIR/debug/loupe" user add viewer --role viewer \
  --password-file "$home/viewer.pw"
status=0
(cd playwright && LOUPE_URL="http://$console" LOUPE_DEMO_STATE="$home/demo.json" \
  LOUPE_OTLP_HTTP="http://127.0.0.1:25104" \
  LOUPE_VIEWER_USER=viewer LOUPE_VIEWER_PASSWORD=viewer-password npx playwright test "$@") || status=$?
cleanup
trap - EXIT
sleep 1
left=0
for f in /proc/[0-9]*/cmdline; do
  cmd=$(tr '\0' ' ' <"$f" 2>/dev/null) || continue
  if [[ "$cmd" == *"$home"* || "$cmd" == *127.0.0.1:250[0-9][0-9]* || "$cmd" == *127.0.0.1:251[0-9][0-9]* ]]; then
    echo "left running after the demo stopped: $cmd"; left=1
  fi
done
[ $left = 0 ] || status=1
[ $status = 0 ] && rm -rf "$home"
exit $status
