#!/usr/bin/env bash
# Makes docs/status-page.png, the README's picture of the admin status page, from a real lbd:
# 2 workers in front of three http_hello backends, one of which is stopped (its check fails:
# DOWN) and one drained through the admin API (DRAIN), with wrk load running while Chromium
# renders the page. Needs a Release build (cmake --preset release; cmake --build --preset
# release --target lbd http_hello), wrk and chromium.
#
#   bash docs/status-page.sh [OUT.png]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/docs/status-page.png}"
build="${BUILD_DIR:-$root/build/release}"
for p in wrk chromium curl; do command -v "$p" >/dev/null || { echo "status-page: $p is not installed" >&2; exit 1; }; done

dir="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

for i in 1 2 3; do
  "$build/runtime/examples/http_hello" --port "1901$i" --id "backend-$i" >"$dir/backend-$i.log" 2>&1 &
  pids+=($!)
done
cat >"$dir/lb.yaml" <<'EOF'
workers: 2
log: { level: warn, access_log: "off" }
admin: { listen: 127.0.0.1:19900 }
listeners:
  - { name: public-http, protocol: http, listen: 127.0.0.1:19080, cluster: web }
  - { name: db, protocol: tcp, listen: 127.0.0.1:19432, cluster: db }
clusters:
  - name: web
    balance: least_conn
    endpoints: [127.0.0.1:19011, 127.0.0.1:19012, 127.0.0.1:19013]
    health_check: { type: http, path: /healthz, interval: 500ms, rise: 2, fall: 2 }
  - name: db
    endpoints: [127.0.0.1:19011]
    health_check: { type: tcp, interval: 1s }
EOF
"$build/cmd/lbd" --config "$dir/lb.yaml" >"$dir/lbd.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fs -o /dev/null http://127.0.0.1:19900/ready && break; sleep 0.1; done
curl -fs -o /dev/null http://127.0.0.1:19900/ready || { cat "$dir/lbd.log" >&2; exit 1; }

kill "${pids[2]}"  # backend-3 stops: its check fails, it goes DOWN
curl -fs -X POST http://127.0.0.1:19900/clusters/web/endpoints/127.0.0.1:19012/drain >/dev/null
wrk -t1 -c16 -d8s http://127.0.0.1:19080/ >"$dir/wrk.log" 2>&1 &
pids+=($!)
sleep 3  # the page shows rates: let load and checks run for a few samples first
profile="$dir/profile"
chromium --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
  --user-data-dir="$profile" --hide-scrollbars --window-size=1400,620 --virtual-time-budget=4500 \
  --screenshot="$out" http://127.0.0.1:19900/status 2>"$dir/chromium.log" || { cat "$dir/chromium.log" >&2; exit 1; }
echo "status-page: wrote $out"
