#!/usr/bin/env bash
# Kernel work per request of lbd as an HTTP keep-alive proxy in front of nginx (issue 11):
# SQEs, CQEs and io_uring_enter calls (io_uring driver) and all syscalls (both drivers) per
# request, counted with perf's tracepoints on the lbd process while bench/loadgen drives a
# fixed offered rate. Counts, not times: they do not depend on how busy the machine is.
#
#   bench/syscall_counts.sh LBD_BINARY [LBD_BINARY...]
#
# Environment: BUILD_DIR (loadgen; default build/bench), RATE (requests/s, default 10000),
# CONNS (default 4), DURATION (s, default 5), IOS (default "io_uring epoll"), PROXY_CPU (0),
# CLIENT_CPU (1). One worker, keepalive.max_idle 32, as bench/proxy_compare.sh runs it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$root/build/bench}"
RATE="${RATE:-10000}"
CONNS="${CONNS:-4}"
DURATION="${DURATION:-5}"
IOS="${IOS:-io_uring epoll}"
PROXY_CPU="${PROXY_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"
tmp="$(mktemp -d /tmp/lbd-counts-XXXXXX)"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_listening() {
  local port="$1" i
  for i in $(seq 100); do
    ss -Htln "sport = :$port" | grep -q . && return 0
    sleep 0.05
  done
  return 1
}

bport="$(free_port)"
mkdir -p "$tmp/nginx"
cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  keepalive_timeout 60s;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$bport; default_type text/plain; location / { return 200 "hello world\n"; } }
}
EOF
taskset -c "$CLIENT_CPU" nginx -p "$tmp/nginx/" -c "$tmp/nginx/nginx.conf" &
pids+=($!)
wait_listening "$bport" || { echo "nginx did not start" >&2; exit 1; }

echo "# $(date -u +%FT%TZ) rate=$RATE conns=$CONNS duration=${DURATION}s load: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '| binary | io | requests | SQEs/req | CQEs/req | io_uring_enter/req | syscalls/req |\n|---|---|---:|---:|---:|---:|---:|\n'
for bin in "$@"; do
  for io in $IOS; do
    port="$(free_port)"
    cat >"$tmp/lbd.yaml" <<EOF
workers: 1
log: { level: info, access_log: "off", error_log: stderr }
shutdown: { drain_timeout: 0s }
listeners:
  - name: bench
    listen: 127.0.0.1:$port
    protocol: http
    cluster: backend
clusters:
  - name: backend
    endpoints: [127.0.0.1:$bport]
    keepalive: { max_idle: 32, idle_timeout: 60s }
EOF
    taskset -c "$PROXY_CPU" "$bin" --config "$tmp/lbd.yaml" --io "$io" 2>"$tmp/lbd.log" &
    lpid=$!
    pids+=($lpid)
    wait_listening "$port" || { echo "lbd did not start: $(tail -3 "$tmp/lbd.log")" >&2; exit 1; }
    # Warm the pool first, so the count covers the steady state only.
    taskset -c "$CLIENT_CPU" "$BUILD_DIR/bench/loadgen" --target "127.0.0.1:$port" --http --connections "$CONNS" \
      --duration 1 --rate "$RATE" >/dev/null
    perf stat -x, -o "$tmp/perf.txt" -p "$lpid" \
      -e io_uring:io_uring_submit_req,io_uring:io_uring_complete,syscalls:sys_enter_io_uring_enter,raw_syscalls:sys_enter -- \
      taskset -c "$CLIENT_CPU" "$BUILD_DIR/bench/loadgen" --target "127.0.0.1:$port" --http --connections "$CONNS" \
      --duration "$DURATION" --warmup 0 --rate "$RATE" >"$tmp/loadgen.txt"
    kill "$lpid"; wait "$lpid" 2>/dev/null || true
    result="$(grep '^result' "$tmp/loadgen.txt")"
    errors="$(sed -n 's/.* errors=\([0-9]*\).*/\1/p' <<<"$result")"
    reqs="$(sed -n 's/.* messages=\([0-9]*\).*/\1/p' <<<"$result")"
    count() { awk -F, -v e="$1" '$3 == e { print $1 }' "$tmp/perf.txt"; }
    per() { awk -v n="$1" -v r="$reqs" 'BEGIN { printf "%.2f", n / r }'; }
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$bin" "$io" "$reqs" \
      "$(per "$(count io_uring:io_uring_submit_req)")" "$(per "$(count io_uring:io_uring_complete)")" \
      "$(per "$(count syscalls:sys_enter_io_uring_enter)")" "$(per "$(count raw_syscalls:sys_enter)")"
    [ "${errors:-0}" = 0 ] || echo "  ($bin $io: loadgen errors=$errors)"
  done
done
