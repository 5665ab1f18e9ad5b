#!/usr/bin/env bash
# Proxy comparison: lbd (1 worker) against nginx (1 worker) and HAProxy (nbthread 1), in one
# run, on the same cores, with equivalent settings. L4 (issue 3) and L7 (issue 4):
#
#   a  L4 ping-pong, 64 connections x 128 B, through the proxy to echo_server:
#      messages/s and proxy CPU µs per message (bench/loadgen)
#   b  L4 bulk: one connection carries BULK_BYTES (2 GiB) to a sink that checks every byte and
#      answers when it has them all (bench/proxy_peer send/sink; one direction, no echo):
#      GiB/s and proxy CPU seconds per GiB
#   c  L4 idle: IDLE_CONNS (9,000) connections through the proxy to a backend that holds them:
#      proxy RSS per idle connection (bench/proxy_peer hold/hold-server)
#   d  L7 keep-alive: wrk -t1 -c64 to http_hello: requests/s, p99, proxy CPU µs per request
#   e  L7 a new connection per request (wrk -H 'Connection: close'): requests/s, CPU µs/request
#   f  L7 idle: IDLE_CONNS keep-alive connections that made one request each: RSS per connection
#
# lbd runs on io_uring and on epoll (`--io epoll`) with its default `forwarding: auto`, and for
# a and b also with `forwarding: copy` and `forwarding: splice`; b adds HAProxy with `option
# splice-auto` for reference. Every proxy runs pinned to PROXY_CPU; load generators and
# backends are pinned to CLIENT_CPU. Each workload runs ROUNDS interleaved rounds (the order of
# the proxies rotates every round); the tables show medians and compare each proxy with the
# better of nginx and HAProxy. The proxy's CPU time is utime + stime from /proc/PID/stat (for
# nginx: its worker process) over the measured window; its memory is VmRSS from /proc/PID/status.
#
# It is a benchmark, not a test: it reports figures, and exits non-zero only when runs could
# not be made or a proxy misbehaved (errors, wrong bytes, dropped connections, a crash); the
# report lists every such problem.
#
#   bench/proxy_compare.sh                         # DURATION=5 ROUNDS=3, all workloads
#   WORKLOADS="a d" ROUNDS=1 bench/proxy_compare.sh
#
# Environment:
#   DURATION     measured seconds of a, d and e (default 5; "5s" works too)
#   WARMUP       seconds of load before measuring a, d and e (default 1)
#   ROUNDS       rounds per workload (default 3)
#   WORKLOADS    which workloads, in order (default "a b c d e f")
#   BULK_BYTES   bytes of b (default 2GiB)
#   IDLE_CONNS   connections of c and f (default 9000)
#   L7_POOL      idle upstream connections each proxy keeps for reuse (default 32: lbd
#                keepalive.max_idle, nginx `keepalive`, HAProxy `pool-max-conn`)
#   PROXY_CPU    CPU the proxies are pinned to (default 0)
#   CLIENT_CPU   CPU load generators and backends are pinned to (default 1)
#   NICE         nice level of everything started (default -20 as root, else 0); see below
#   BUILD_DIR    CMake build directory (default build/bench)
#   OUT_DIR      raw logs and configs (default $BUILD_DIR/proxy_compare/<time>)
#   RESULTS_DIR  where the markdown report goes (default bench/results)
#   BASELINE_LBD another lbd binary (e.g. built from an earlier commit) for an A/B in the same
#                run: every workload gains lbd-uring@base and lbd-epoll@base, run by it with the
#                same configs, in the same interleaved rounds
#   PROXIES      only these proxies, e.g. "lbd-uring lbd-uring@base nginx haproxy" (default all)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DURATION="${DURATION:-5}"
DURATION="${DURATION%s}"
WARMUP="${WARMUP:-1}"
WARMUP="${WARMUP%s}"
ROUNDS="${ROUNDS:-3}"
WORKLOADS="${WORKLOADS:-a b c d e f}"
BULK_BYTES="${BULK_BYTES:-2GiB}"
IDLE_CONNS="${IDLE_CONNS:-9000}"
L7_POOL="${L7_POOL:-32}"
PROXY_CPU="${PROXY_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"
if [ -z "${NICE:-}" ]; then
  if [ "$(id -u)" -eq 0 ]; then NICE=-20; else NICE=0; fi
fi
BUILD_DIR="${BUILD_DIR:-$root/build/bench}"
stamp="${PROXY_COMPARE_STAMP:-$(date +%Y%m%d-%H%M%S)}"
OUT_DIR="${OUT_DIR:-$BUILD_DIR/proxy_compare/$stamp}"
RESULTS_DIR="${RESULTS_DIR:-$root/bench/results}"
BASELINE_LBD="${BASELINE_LBD:-}"
PROXIES="${PROXIES:-}"
if [ -n "$BASELINE_LBD" ]; then
  BASELINE_LBD="$(realpath "$BASELINE_LBD")"
  [ -x "$BASELINE_LBD" ] || { echo "proxy_compare: BASELINE_LBD $BASELINE_LBD is not an executable" >&2; exit 1; }
fi

# With CONFIG_SCHED_AUTOGROUP the scheduler first shares a CPU fairly between sessions, so a
# nice level only counts inside our own session: on a machine where other sessions compile,
# `nice -20` alone still leaves us about a quarter of each CPU. So the run goes into a session
# of its own whose autogroup gets the nice level (as bench/echo_compare.sh does). The caller's
# session is left as it was.
if [ "$NICE" -lt 0 ] && [ "$(id -u)" -eq 0 ] && [ -w /proc/self/autogroup ] &&
   [ "$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null)" = 1 ] && [ -z "${PROXY_COMPARE_INNER:-}" ]; then
  # A background child of a script is no process group leader, so setsid execs in place and
  # $! is the inner script itself.
  PROXY_COMPARE_INNER=1 PROXY_COMPARE_STAMP="$stamp" OUT_DIR="$OUT_DIR" setsid bash "${BASH_SOURCE[0]}" "$@" &
  inner=$!
  trap 'kill -TERM "$inner" 2>/dev/null || true' INT TERM
  rc=0
  while :; do
    wait "$inner" && rc=0 || rc=$?
    kill -0 "$inner" 2>/dev/null || break  # wait was cut short by a trapped signal: wait again
  done
  exit "$rc"
fi
if [ -n "${PROXY_COMPARE_INNER:-}" ]; then
  echo "$NICE" >/proc/self/autogroup
fi

log() { echo "proxy_compare: $*" >&2; }
die() { log "error: $*"; exit 1; }

# Which proxies run in which workload. lbd-uring/lbd-epoll: lbd with `--io io_uring|epoll`;
# no suffix: the default forwarding (auto); "-copy": `forwarding: copy`; "-splice":
# `forwarding: splice`; "-ops": with the admin listener scraped every second and an HTTP health
# check of the endpoint every second (the issue 10 overhead). The baseline of every ratio is the better of nginx and
# haproxy (their default, copying configurations; haproxy-splice is shown for reference only).
declare -A proxies_of=(
  [a]="lbd-uring lbd-epoll lbd-uring-copy lbd-epoll-copy lbd-uring-splice lbd-epoll-splice nginx haproxy"
  [b]="lbd-uring lbd-epoll lbd-uring-copy lbd-epoll-copy lbd-uring-splice lbd-epoll-splice nginx haproxy haproxy-splice"
  [c]="lbd-uring lbd-epoll nginx haproxy"
  [d]="lbd-uring lbd-uring-ops lbd-epoll lbd-epoll-ops nginx haproxy"
  [e]="lbd-uring lbd-epoll nginx haproxy"
  [f]="lbd-uring lbd-epoll nginx haproxy"
)
# BASELINE_LBD: each workload's lbd-uring and lbd-epoll get an "@base" twin right after them.
# PROXIES: keep only the proxies it names.
for wl in "${!proxies_of[@]}"; do
  list=""
  for name in ${proxies_of[$wl]}; do
    list+=" $name"
    if [ -n "$BASELINE_LBD" ] && { [ "$name" = lbd-uring ] || [ "$name" = lbd-epoll ]; }; then list+=" $name@base"; fi
  done
  if [ -n "$PROXIES" ]; then
    kept=""
    for name in $list; do [[ " $PROXIES " == *" $name "* ]] && kept+=" $name"; done
    list="$kept"
  fi
  proxies_of[$wl]="${list# }"
done
declare -A title_of=(
  [a]="(a) L4 ping-pong, 64 connections x 128 B, to echo_server"
  [b]="(b) L4 bulk, $BULK_BYTES over one connection to a checking sink (one direction)"
  [c]="(c) L4 idle, $IDLE_CONNS connections held open through the proxy"
  [d]="(d) L7 keep-alive, wrk -t1 -c64, http_hello backend"
  [e]="(e) L7 new connection per request, wrk -t1 -c64 -H 'Connection: close', http_hello backend"
  [f]="(f) L7 idle keep-alive, $IDLE_CONNS connections after one request each"
)

# --- packages -------------------------------------------------------------------------------
# The bootstrap script's "bench" set brings the build packages, the test packages (GoogleTest:
# the top-level CMakeLists includes the test helper even with LBD_BUILD_TESTS=OFF), nginx-light
# with the stream module, haproxy, wrk, Boost, perf and util-linux (taskset); iproute2 gives ss.
ensure_packages() {
  bash "$root/deploy/bootstrap.sh" bench >&2
  local missing=() p
  for p in iproute2 procps; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# --- build ----------------------------------------------------------------------------------
# Other engineers edit the tree while this runs: a failed configure or build is retried.
build() {
  local attempt
  for attempt in 1 2 3 4 5; do
    if cmake -S "$root" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLBD_BUILD_TESTS=OFF \
         -DLBD_BUILD_BENCH=ON >"$OUT_DIR/cmake.log" 2>&1 &&
       cmake --build "$BUILD_DIR" --target lbd loadgen proxy_peer echo_server http_hello >>"$OUT_DIR/cmake.log" 2>&1; then
      return 0
    fi
    log "build attempt $attempt failed (see $OUT_DIR/cmake.log); retrying in 60s"
    sleep 60
  done
  tail -30 "$OUT_DIR/cmake.log" >&2
  die "build failed"
}

# --- processes ------------------------------------------------------------------------------
started_pids=()
cleanup() {
  local pid
  for pid in "${started_pids[@]+"${started_pids[@]}"}"; do
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  started_pids=()
  if [ -n "${tmp:-}" ]; then rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'log "error: line $LINENO: \"$BASH_COMMAND\" failed"' ERR

forget_pid() {
  local kept=() p
  for p in "${started_pids[@]+"${started_pids[@]}"}"; do [ "$p" != "$1" ] && kept+=("$p"); done
  started_pids=("${kept[@]+"${kept[@]}"}")
}

# Stops process $1 with signal $2 (default TERM), then KILL if it is still there after 10 s.
stop_pid() {
  local pid="$1" sig="${2:-TERM}" _
  [ -z "$pid" ] && return 0
  kill "-$sig" "$pid" 2>/dev/null || true
  for _ in $(seq 400); do
    kill -0 "$pid" 2>/dev/null || break
    # A zombie child counts as gone.
    [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ] && break
    sleep 0.025
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  forget_pid "$pid"
}

# A loopback port nobody uses, below the ephemeral range (the clients' own ports).
free_port() {
  local lo p _
  read -r lo _ </proc/sys/net/ipv4/ip_local_port_range
  local base=$(( lo > 12000 ? lo - 11000 : 20000 ))
  for _ in $(seq 100); do
    p=$(( base + RANDOM % 10000 ))
    if [ -z "$(ss -Htan "( sport = :$p or dport = :$p )")" ]; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

listening() { [ -n "$(ss -Htln "sport = :$1")" ]; }
established() { ss -Htn state established "( sport = :$1 )" | wc -l; }
at_least_established() { [ "$(established "$1")" -ge "$2" ]; }
none_established() { [ "$(established "$1")" -eq 0 ]; }
kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }  # value of key $1 in line $2
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
clk_tck="$(getconf CLK_TCK)"
cpu_us() {  # utime + stime of process $1 in µs (fields 14 and 15 of /proc/PID/stat)
  awk -v hz="$clk_tck" '{ sub(/^.*\) /, ""); printf "%.0f\n", ($12 + $13) * 1e6 / hz }' "/proc/$1/stat"
}

# wait_for PID SECONDS CMD...: waits (bounded) for CMD to succeed while process PID lives.
wait_for() {
  local pid="$1" limit="$2" _
  shift 2
  for _ in $(seq $((limit * 20))); do
    "$@" && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# Runs a command in the foreground, pinned to CLIENT_CPU.
on_client() { nice -n "$NICE" taskset -c "$CLIENT_CPU" "$@"; }
# launch CPU LOG CMD...: starts CMD in the background pinned to CPU, output to LOG; sets
# launched_pid. nice and taskset exec CMD, so that is CMD's own pid (a function or subshell in
# between would make $! the pid of a shell instead).
launch() {
  local cpu="$1" logf="$2"
  shift 2
  nice -n "$NICE" taskset -c "$cpu" "$@" >"$logf" 2>&1 &
  launched_pid=$!
  started_pids+=("$launched_pid")
}

# --- backends -------------------------------------------------------------------------------
# start_backend KIND LOG: echo (echo_server), sink, hold (proxy_peer), http (http_hello).
# Sets backend_pid and backend_port.
start_backend() {
  local kind="$1" logf="$2" try cmd
  for try in 1 2 3 4 5; do
    backend_port="$(free_port)" || die "no free loopback port"
    case "$kind" in
      echo) cmd=("$BUILD_DIR/runtime/examples/echo_server" --port "$backend_port") ;;
      sink) cmd=("$BUILD_DIR/bench/proxy_peer" sink --port "$backend_port") ;;
      hold) cmd=("$BUILD_DIR/bench/proxy_peer" hold-server --port "$backend_port") ;;
      http) cmd=("$BUILD_DIR/runtime/examples/http_hello" --port "$backend_port" --id backend) ;;
    esac
    launch "$CLIENT_CPU" "$logf" "${cmd[@]}"
    backend_pid=$launched_pid
    if wait_for "$backend_pid" 10 listening "$backend_port"; then return 0; fi
    stop_pid "$backend_pid" KILL
    log "backend $kind did not come up on port $backend_port (try $try): $(tail -3 "$logf")"
  done
  die "backend $kind would not start"
}

# --- proxies --------------------------------------------------------------------------------
# write_config NAME LAYER(l4|l7) PROXY_PORT BACKEND_PORT FILE
write_config() {
  local name="${1%@base}" layer="$2" port="$3" bport="$4" f="$5"
  case "$name" in
    lbd-*)
      local forwarding=""  # empty: lbd's default (auto)
      [[ "$name" == *-copy ]] && forwarding=copy
      [[ "$name" == *-splice ]] && forwarding=splice
      {
        echo "workers: 1"
        echo "log: { level: info, access_log: \"off\", error_log: stderr }"
        # -ops: what an operator runs beside the traffic (issue 10): the admin listener, scraped
        # every second by run_wrk, and an HTTP health check of the endpoint every second.
        if [[ "$name" == *-ops ]]; then
          admin_port="$(free_port)" || die "no free loopback port"
          echo "admin: { listen: 127.0.0.1:$admin_port }"
        fi
        echo "shutdown: { drain_timeout: 0s }"
        echo "listeners:"
        echo "  - name: bench"
        echo "    listen: 127.0.0.1:$port"
        if [ "$layer" = l4 ]; then
          echo "    protocol: tcp"
          if [ -n "$forwarding" ]; then echo "    forwarding: $forwarding"; fi
        else
          echo "    protocol: http"
        fi
        echo "    cluster: backend"
        echo "    max_connections: 20000"
        echo "clusters:"
        echo "  - name: backend"
        echo "    endpoints: [127.0.0.1:$bport]"
        if [ "$layer" = l7 ]; then echo "    keepalive: { max_idle: $L7_POOL, idle_timeout: 60s }"; fi
        if [[ "$name" == *-ops ]]; then
          echo "    health_check: { type: http, path: /healthz, interval: 1s }"
        fi
      } >"$f"
      ;;
    nginx)
      {
        if [ "$layer" = l4 ]; then echo "load_module /usr/lib/nginx/modules/ngx_stream_module.so;"; fi
        echo "worker_processes 1;"
        echo "worker_rlimit_nofile 20000;"
        echo "daemon off;"
        echo "pid $tmp/nginx.pid;"
        echo "error_log $tmp/nginx-error.log warn;"
        echo "events { worker_connections 20000; }"
        if [ "$layer" = l4 ]; then
          cat <<EOF
stream {
  access_log off;
  upstream backend { server 127.0.0.1:$bport; }
  server {
    listen 127.0.0.1:$port;
    proxy_pass backend;
    proxy_connect_timeout 5s;
    proxy_timeout 10m;
  }
}
EOF
        else
          cat <<EOF
http {
  access_log off;
  client_body_temp_path $tmp/nginx-body;
  proxy_temp_path $tmp/nginx-proxy;
  fastcgi_temp_path $tmp/nginx-fastcgi;
  uwsgi_temp_path $tmp/nginx-uwsgi;
  scgi_temp_path $tmp/nginx-scgi;
  keepalive_timeout 60s;
  keepalive_requests 1000000;
  upstream backend {
    server 127.0.0.1:$bport;
    keepalive $L7_POOL;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
  }
  server {
    listen 127.0.0.1:$port;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$http_host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Forwarded-Host \$http_host;
    }
  }
}
EOF
        fi
      } >"$f"
      ;;
    haproxy*)
      {
        # maxconn 19000 makes HAProxy ask for 2 x 19000 fds; the hard limit is 20000, which is
        # enough for 9,000 proxied connections, so `no strict-limits` lets it start anyway.
        cat <<EOF
global
  nbthread 1
  maxconn 19000
  no strict-limits
EOF
        if [ "$layer" = l4 ]; then
          cat <<EOF
defaults
  mode tcp
  timeout connect 5s
  timeout client 10m
  timeout server 10m
EOF
          if [ "$name" = haproxy-splice ]; then echo "  option splice-auto"; fi
          cat <<EOF
frontend bench
  bind 127.0.0.1:$port
  maxconn 19000
  default_backend backend
backend backend
  server s1 127.0.0.1:$bport
EOF
        else
          cat <<EOF
defaults
  mode http
  option http-keep-alive
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-request 60s
  timeout http-keep-alive 60s
frontend bench
  bind 127.0.0.1:$port
  maxconn 19000
  option forwardfor
  http-request set-header X-Forwarded-Proto http
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
  default_backend backend
backend backend
  http-reuse always
  server s1 127.0.0.1:$bport pool-max-conn $L7_POOL
EOF
        fi
      } >"$f"
      ;;
  esac
}

# start_proxy NAME LAYER BACKEND_PORT TAG. Sets proxy_port, proxy_main (the process to
# signal) and proxy_pid (the process doing the work: nginx's worker, else the same).
start_proxy() {
  local name="$1" layer="$2" bport="$3" tag="$4" try cfg logf cmd
  logf="$OUT_DIR/$tag.proxy.log"
  for try in 1 2 3 4 5; do
    proxy_port="$(free_port)" || die "no free loopback port"
    case "$name" in
      lbd-*) cfg="$tmp/lbd.yaml" ;;
      nginx) cfg="$tmp/nginx.conf" ;;
      haproxy*) cfg="$tmp/haproxy.cfg" ;;
    esac
    write_config "$name" "$layer" "$proxy_port" "$bport" "$cfg"
    cp "$cfg" "$OUT_DIR/$tag.${cfg##*/}"
    local lbd_bin="$BUILD_DIR/cmd/lbd"
    [[ "$name" == *@base ]] && lbd_bin="$BASELINE_LBD"
    case "$name" in
      lbd-uring*) cmd=("$lbd_bin" --config "$cfg" --io io_uring) ;;
      lbd-epoll*) cmd=("$lbd_bin" --config "$cfg" --io epoll) ;;
      nginx) cmd=(nginx -p "$tmp/" -c "$cfg") ;;
      haproxy*) cmd=(haproxy -db -f "$cfg") ;;
    esac
    : >"$tmp/nginx-error.log"
    launch "$PROXY_CPU" "$logf" "${cmd[@]}"
    proxy_main=$launched_pid
    proxy_pid=$proxy_main
    if wait_for "$proxy_main" 10 listening "$proxy_port"; then
      case "$name" in
        nginx)
          proxy_pid=""
          local _
          for _ in $(seq 200); do
            proxy_pid="$(cat "/proc/$proxy_main/task/$proxy_main/children" 2>/dev/null | awk '{print $1}')"
            [ -n "$proxy_pid" ] && break
            sleep 0.025
          done
          [ -n "$proxy_pid" ] || die "nginx started no worker: $(cat "$tmp/nginx-error.log")"
          ;;
        lbd-*)
          local io=io_uring
          [[ "$name" == lbd-epoll* ]] && io=epoll
          # The driver must be the one asked for, not a fallback.
          wait_for "$proxy_main" 5 grep -q "I/O driver $io" "$logf" ||
            die "$name did not start on $io: $(tail -5 "$logf")"
          ;;
      esac
      return 0
    fi
    stop_pid "$proxy_main" KILL
    log "$name did not come up on port $proxy_port (try $try): $(tail -3 "$logf")"
  done
  die "$name would not start"
}

# Stops the proxy; a proxy that died during the run is a problem worth reporting.
stop_proxy() {
  local name="$1" tag="$2"
  if ! kill -0 "$proxy_main" 2>/dev/null || [ "$(awk '{print $3}' "/proc/$proxy_main/stat" 2>/dev/null)" = Z ]; then
    problem "$tag: $name exited during the run: $(tail -3 "$OUT_DIR/$tag.proxy.log" | tr '\n' ' ')"
  fi
  case "$name" in
    lbd-*) stop_pid "$proxy_main" INT ;;  # SIGTERM would drain
    *) stop_pid "$proxy_main" TERM ;;
  esac
  if [ "$name" = nginx ]; then cat "$tmp/nginx-error.log" >>"$OUT_DIR/$tag.proxy.log"; fi
  # Warnings and errors the proxy logged, for the report.
  # HAProxy's complaint about maxconn 19000 vs the fd limit is expected (see write_config).
  local lines
  lines="$(grep -iE '\[(warn|warning|error|err|critical|alert|crit|emerg)\]' "$OUT_DIR/$tag.proxy.log" |
           grep -vE 'FD limit|Cannot raise FD' || true)"
  if [ -n "$lines" ]; then
    log "$tag: $name logged $(wc -l <<<"$lines") warning/error line(s), first: $(head -1 <<<"$lines")"
  fi
}

problems=()
problem() {
  log "PROBLEM: $*"
  problems+=("$*")
}

# --- workloads ------------------------------------------------------------------------------
# Each run_X appends "X proxy round key=value ..." to $results.

run_a() {  # ping-pong through the proxy to echo_server
  local name="$1" round="$2" tag="a.$1.r$2"
  start_backend echo "$OUT_DIR/$tag.backend.log"
  start_proxy "$name" l4 "$backend_port" "$tag"
  local out rc=0
  out="$(on_client "$BUILD_DIR/bench/loadgen" --target "127.0.0.1:$proxy_port" --connections 64 --size 128 \
           --duration "$DURATION" --warmup "$WARMUP" --server-pid "$proxy_pid" 2>&1)" || rc=$?
  echo "$out" >"$OUT_DIR/$tag.client.log"
  stop_proxy "$name" "$tag"
  stop_pid "$backend_pid"
  local line
  line="$(grep '^result ' <<<"$out" || true)"
  if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
    problem "$tag: loadgen through $name failed (exit $rc): $(grep -v '^result ' <<<"$out" | tail -2 | tr '\n' ' ')"
    [ -z "$line" ] && return 0
  fi
  echo "a $name $round rate=$(kv msgs_per_s "$line") cpu=$(kv server_cpu_us_per_msg "$line")" \
       "util=$(kv server_cpu_util "$line") p99=$(kv p99_us "$line")" \
       "errors=$(( $(kv mismatches "$line") + $(kv io_errors "$line") ))" >>"$results"
  log "$tag: $(grep '^loadgen: ' <<<"$out" | sed 's/^loadgen: [^ ]* //')"
}

run_b() {  # bulk: BULK_BYTES one way to a checking sink
  local name="$1" round="$2" tag="b.$1.r$2"
  start_backend sink "$OUT_DIR/$tag.backend.log"
  start_proxy "$name" l4 "$backend_port" "$tag"
  local out rc=0
  out="$(on_client "$BUILD_DIR/bench/proxy_peer" send --target "127.0.0.1:$proxy_port" --bytes "$BULK_BYTES" \
           --proxy-pid "$proxy_pid" 2>&1)" || rc=$?
  echo "$out" >"$OUT_DIR/$tag.client.log"
  stop_proxy "$name" "$tag"
  stop_pid "$backend_pid"
  local line
  line="$(grep '^result ' <<<"$out" || true)"
  if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
    problem "$tag: bulk transfer through $name failed (exit $rc): $(grep -v '^result ' <<<"$out" | tail -2 | tr '\n' ' ')"
    [ -z "$line" ] && return 0
  fi
  echo "b $name $round rate=$(kv gib_per_s "$line") cpu=$(kv proxy_cpu_s_per_gib "$line")" \
       "util=$(kv proxy_cpu_util "$line") errors=$(kv bad_reads "$line")" >>"$results"
  log "$tag: $(grep '^proxy_peer: send: ' <<<"$out" | sed 's/^proxy_peer: send: //')"
}

# Starts `proxy_peer hold` (args "$@") and waits for its "ready" line; sets holder_pid and
# holder_out. Returns 1 when it did not get ready.
start_holder() {
  holder_out="$1"
  shift
  launch "$CLIENT_CPU" "$holder_out" "$BUILD_DIR/bench/proxy_peer" hold "$@"
  holder_pid=$launched_pid
  wait_for "$holder_pid" 180 grep -q '^result ready' "$holder_out"
}

# Waits until the proxy's RSS stops moving (the same value 4 reads in a row, 100 ms apart,
# at most 10 s) and prints it.
settled_rss() {
  local pid="$1" last="" same=0 cur _
  for _ in $(seq 100); do
    cur="$(rss_kb "$pid")"
    if [ "$cur" = "$last" ]; then same=$((same + 1)); else same=0; fi
    last="$cur"
    [ "$same" -ge 3 ] && break
    sleep 0.1
  done
  echo "$last"
}

# Idle connections: c (L4, backend holds them) and f (L7, one request each, http_hello).
# Before measuring, 512 connections (at most a quarter of IDLE_CONNS) go through the proxy the
# same way and are closed again, so that one-time costs (buffer rings, allocator arenas,
# first-use page faults) land in "before".
run_idle() {
  local wl="$1" name="$2" round="$3" tag="$1.$2.r$3" layer backend_kind http=() count_port
  if [ "$wl" = c ]; then layer=l4; backend_kind=hold; else layer=l7; backend_kind=http; http=(--http); fi
  start_backend "$backend_kind" "$OUT_DIR/$tag.backend.log"
  start_proxy "$name" "$layer" "$backend_port" "$tag"
  # c: connections the backend holds (one per proxied session); f: the proxy's client side.
  if [ "$wl" = c ]; then count_port="$backend_port"; else count_port="$proxy_port"; fi
  local target="127.0.0.1:$proxy_port" ok=1

  local warm=$(( IDLE_CONNS / 4 < 512 ? IDLE_CONNS / 4 : 512 ))
  if start_holder "$OUT_DIR/$tag.warmup.log" --target "$target" --connections "$((warm > 0 ? warm : 1))" "${http[@]}"; then
    stop_pid "$holder_pid" TERM
    wait_for "$proxy_main" 30 none_established "$count_port" ||
      log "$tag: warm-up connections still open after 30s: $(established "$count_port")"
  else
    problem "$tag: warm-up holder through $name did not get ready: $(tail -2 "$OUT_DIR/$tag.warmup.log" | tr '\n' ' ')"
    stop_pid "$holder_pid" TERM
    ok=0
  fi
  local rss0 rss1="" est=0 settle_s=0 t0
  rss0="$(settled_rss "$proxy_pid")"
  t0=$(date +%s.%N)
  if [ "$ok" = 1 ] && start_holder "$OUT_DIR/$tag.client.log" --target "$target" --connections "$IDLE_CONNS" "${http[@]}"; then
    # Settled when every connection is established where it counts, then RSS stops moving.
    wait_for "$proxy_main" 60 at_least_established "$count_port" "$IDLE_CONNS" || true
    est="$(established "$count_port")"
    rss1="$(settled_rss "$proxy_pid")"
    settle_s="$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
    [ "$est" -ge "$IDLE_CONNS" ] || problem "$tag: only $est of $IDLE_CONNS connections established through $name"
  else
    problem "$tag: holder through $name did not get ready: $(tail -2 "$OUT_DIR/$tag.client.log" | tr '\n' ' ')"
  fi
  stop_pid "$holder_pid" TERM
  stop_proxy "$name" "$tag"
  stop_pid "$backend_pid"
  local line
  line="$(grep '^result done' "$OUT_DIR/$tag.client.log" || true)"
  local held failed dropped
  held="$(kv held "$line")"
  failed="$(kv failed "$line")"
  dropped="$(kv dropped "$line")"
  if [ -z "$line" ] || [ "${failed:-1}" -ne 0 ] || [ "${dropped:-1}" -ne 0 ] || [ "${held:-0}" -ne "$IDLE_CONNS" ]; then
    problem "$tag: $name: held ${held:-?} of $IDLE_CONNS, failed ${failed:-?}, dropped while idle ${dropped:-?}: $(grep '^proxy_peer' "$OUT_DIR/$tag.client.log" | tail -2 | tr '\n' ' ')"
  fi
  [ -z "$rss1" ] && return 0
  local per
  per="$(awk -v a="$rss0" -v b="$rss1" -v n="$IDLE_CONNS" 'BEGIN { printf "%.0f", (b - a) * 1024 / n }')"
  echo "$wl $name $round rss0=$rss0 rss1=$rss1 per=$per est=$est dropped=${dropped:-nan} settle=$settle_s" >>"$results"
  log "$tag: RSS $rss0 -> $rss1 KiB with $est connections: $per B per idle connection (settled in ${settle_s}s)"
}

# wrk through an L7 proxy: d keep-alive, e Connection: close.
latency_us() {  # "1.23ms" -> 1230
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "us") print n; else if (u == "ms") print n * 1000; else if (u == "s") print n * 1e6;
    else if (u == "m") print n * 6e7; else print "nan" }'
}
run_wrk() {
  local wl="$1" name="$2" round="$3" tag="$1.$2.r$3" hdr=()
  [ "$wl" = e ] && hdr=(-H 'Connection: close')
  start_backend http "$OUT_DIR/$tag.backend.log"
  start_proxy "$name" l7 "$backend_port" "$tag"
  local url="http://127.0.0.1:$proxy_port/" out rc=0 c0 c1
  on_client wrk -t1 -c64 -d"${WARMUP}s" "${hdr[@]}" "$url" >"$OUT_DIR/$tag.warmup.log" 2>&1 || true
  local scraper=""
  if [[ "$name" == *-ops ]]; then
    # Prometheus' way: one GET /metrics a second, from the client's CPU.
    on_client bash -c "while sleep 1; do curl -s -o /dev/null http://127.0.0.1:$admin_port/metrics; done" &
    scraper=$!
  fi
  c0="$(cpu_us "$proxy_pid")"
  out="$(on_client wrk -t1 -c64 -d"${DURATION}s" --latency "${hdr[@]}" "$url" 2>&1)" || rc=$?
  c1="$(cpu_us "$proxy_pid")"
  if [ -n "$scraper" ]; then kill "$scraper" 2>/dev/null || true; wait "$scraper" 2>/dev/null || true; fi
  echo "$out" >"$OUT_DIR/$tag.client.log"
  stop_proxy "$name" "$tag"
  stop_pid "$backend_pid"
  local reqs rps p99 errs non2xx
  reqs="$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' <<<"$out")"
  rps="$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' <<<"$out")"
  p99="$(latency_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")"
  errs="$(sed -n 's/.*Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\).*/\1 \2 \3 \4/p' <<<"$out" |
          awk '{print $1 + $2 + $3 + $4}')"
  non2xx="$(sed -n 's/.*Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' <<<"$out")"
  if [ "$rc" -ne 0 ] || [ -z "$reqs" ] || [ "$reqs" -eq 0 ]; then
    problem "$tag: wrk through $name failed (exit $rc): $(tail -3 <<<"$out" | tr '\n' ' ')"
    return 0
  fi
  if [ "${errs:-0}" -gt 0 ] || [ "${non2xx:-0}" -gt 0 ]; then
    problem "$tag: wrk through $name: $(grep -E 'Socket errors|Non-2xx' <<<"$out" | tr '\n' ' ' | sed 's/  */ /g')"
  fi
  local cpu
  cpu="$(awk -v a="$c0" -v b="$c1" -v n="$reqs" 'BEGIN { printf "%.3f", (b - a) / n }')"
  echo "$wl $name $round rate=$rps cpu=$cpu util=$(awk -v a="$c0" -v b="$c1" -v d="$DURATION" 'BEGIN { printf "%.3f", (b - a) / (d * 1e6) }')" \
       "p99=$p99 errors=$(( ${errs:-0} + ${non2xx:-0} ))" >>"$results"
  log "$tag: $rps req/s, p99 ${p99} us, proxy CPU $cpu us/request, errors ${errs:-0}, non-2xx ${non2xx:-0}"
}

run_one() {
  case "$1" in
    a) run_a "$2" "$3" ;;
    b) run_b "$2" "$3" ;;
    c | f) run_idle "$1" "$2" "$3" ;;
    d | e) run_wrk "$1" "$2" "$3" ;;
  esac
}

# --- report ---------------------------------------------------------------------------------
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }  # value of key $1 in each line of stdin
median() { grep -v '^nan$' | sort -g | awk '{v[NR]=$1} END {if (NR == 0) print "nan"; else if (NR % 2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
med_of() { grep "^$1 $2 " "$results" | field "$3" | median; }
# "min-max" of key $3 over the rounds, formatted with printf format $4.
range_of() {
  grep "^$1 $2 " "$results" | field "$3" | grep -v '^nan$' | sort -g |
    awk -v f="$4" '{v[NR]=$1} END { if (NR == 0) print "n/a"; else printf(f "–" f "\n", v[1], v[NR]) }'
}
# The better (lower) of nginx's and haproxy's medians of key $2 in workload $1.
best_of() {
  local n h
  n="$(med_of "$1" nginx "$2")"
  h="$(med_of "$1" haproxy "$2")"
  awk -v n="$n" -v h="$h" 'BEGIN {
    if (n == "nan" && h == "nan") print "nan"; else if (n == "nan") print h; else if (h == "nan") print n;
    else print (n + 0 < h + 0 ? n : h) }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan" || b + 0 == 0) print "n/a"; else printf "%.2fx", a / b }'; }
meets() {  # ratio ("0.61x") <= limit
  awk -v r="${1%x}" -v t="$2" 'BEGIN { if (r == "n/a") print "n/a"; else print (r + 0 <= t + 0 ? "yes" : "**no**") }'
}
fmt() { awk -v v="$1" -v f="$2" 'BEGIN { if (v == "nan" || v == "") print "n/a"; else printf f, v }'; }
rounds_of() { grep -c "^$1 $2 " "$results" || true; }

report_a() {
  local best name cpu r
  best="$(best_of a cpu)"
  echo "| proxy | msgs/s | proxy CPU µs/msg | (rounds) | vs better of nginx/haproxy | proxy CPU util | p99 µs | target | met |"
  echo "|---|---:|---:|---:|---:|---:|---:|---|---|"
  for name in ${proxies_of[a]}; do
    cpu="$(med_of a "$name" cpu)"
    r="$(ratio "$cpu" "$best")"
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$(fmt "$(med_of a "$name" rate)" %.0f)" \
      "$(fmt "$cpu" %.2f)" "$(range_of a "$name" cpu %.1f)" "$r" "$(fmt "$(awk -v u="$(med_of a "$name" util)" 'BEGIN { print u * 100 }')" %.0f%%)" \
      "$(fmt "$(med_of a "$name" p99)" %.0f)" "$([[ $name == lbd* ]] && echo '<= 0.75x' || echo '(baseline)')" \
      "$([[ $name == lbd* ]] && meets "$r" 0.75)"
  done
}

report_b() {
  local best name cpu r
  best="$(best_of b cpu)"
  echo "| proxy | GiB/s | proxy CPU s/GiB | (rounds) | vs better of nginx/haproxy | proxy CPU util | target | met |"
  echo "|---|---:|---:|---:|---:|---:|---|---|"
  for name in ${proxies_of[b]}; do
    cpu="$(med_of b "$name" cpu)"
    r="$(ratio "$cpu" "$best")"
    local target="(baseline)" met=""
    [[ $name == lbd* ]] && { target="<= 0.75x"; met="$(meets "$r" 0.75)"; }
    [ "$name" = haproxy-splice ] && target="(reference)"
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$(fmt "$(med_of b "$name" rate)" %.3f)" \
      "$(fmt "$cpu" %.3f)" "$(range_of b "$name" cpu %.2f)" "$r" "$(fmt "$(awk -v u="$(med_of b "$name" util)" 'BEGIN { print u * 100 }')" %.0f%%)" \
      "$target" "$met"
  done
}

report_idle() {
  local wl="$1" name per
  echo "| proxy | RSS before (KiB) | RSS with $IDLE_CONNS idle (KiB) | bytes per idle connection | (rounds) | target | met |"
  echo "|---|---:|---:|---:|---:|---|---|"
  for name in ${proxies_of[$wl]}; do
    per="$(med_of "$wl" "$name" per)"
    local target="" met=""
    [[ $name == lbd* ]] && { target="<= 2560 B"; met="$(awk -v p="$per" 'BEGIN { if (p == "nan") print "n/a"; else print (p + 0 <= 2560 ? "yes" : "**no**") }')"; }
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$(fmt "$(med_of "$wl" "$name" rss0)" %.0f)" \
      "$(fmt "$(med_of "$wl" "$name" rss1)" %.0f)" "$(fmt "$per" %.0f)" "$(range_of "$wl" "$name" per %.0f)" "$target" "$met"
  done
}

report_d() {
  local best bestp name cpu r p99 rp
  best="$(best_of d cpu)"
  bestp="$(best_of d p99)"
  echo "| proxy | requests/s | p99 µs | p99 vs better | proxy CPU µs/request | (rounds) | vs better of nginx/haproxy | proxy CPU util | target | met |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---|---|"
  for name in ${proxies_of[d]}; do
    cpu="$(med_of d "$name" cpu)"
    p99="$(med_of d "$name" p99)"
    r="$(ratio "$cpu" "$best")"
    rp="$(ratio "$p99" "$bestp")"
    local target="(baseline)" met=""
    if [[ $name == lbd* ]]; then
      target="CPU <= 0.75x, p99 <= 1.00x"
      met="$(awk -v a="$(meets "$r" 0.75)" -v b="$(meets "$rp" 1.0)" 'BEGIN { print (a == "yes" && b == "yes") ? "yes" : "**no**" }')"
    fi
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$(fmt "$(med_of d "$name" rate)" %.0f)" \
      "$(fmt "$p99" %.0f)" "$rp" "$(fmt "$cpu" %.2f)" "$(range_of d "$name" cpu %.1f)" "$r" \
      "$(fmt "$(awk -v u="$(med_of d "$name" util)" 'BEGIN { print u * 100 }')" %.0f%%)" "$target" "$met"
  done
  # The operator's overhead: -ops against the same lbd in the same round (target <= 1.03x).
  local io ops paired
  for io in uring epoll; do
    ops="lbd-$io-ops"
    [[ " ${proxies_of[d]} " == *" $ops "* ]] || continue
    paired="$(awk -v p="lbd-$io" -v o="$ops" '
      $1 == "d" { for (i = 4; i <= NF; i++) if ($i ~ /^cpu=/) { c = substr($i, 5) }
                  if ($2 == p) plain[$3] = c; if ($2 == o) with[$3] = c }
      END { for (r in with) if ((r in plain) && plain[r] > 0) print with[r] / plain[r] }' "$results" | median)"
    echo
    echo "$ops (admin listener scraped every 1 s, HTTP health check every 1 s) vs lbd-$io, median of same-round ratios: $(fmt "$paired" %.3fx) (target <= 1.03x)"
  done
}

report_e() {
  local best name cpu r
  best="$(best_of e cpu)"
  echo "| proxy | requests/s | proxy CPU µs/request | (rounds) | vs better of nginx/haproxy | proxy CPU util | p99 µs | target | met |"
  echo "|---|---:|---:|---:|---:|---:|---:|---|---|"
  for name in ${proxies_of[e]}; do
    cpu="$(med_of e "$name" cpu)"
    r="$(ratio "$cpu" "$best")"
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$(fmt "$(med_of e "$name" rate)" %.0f)" \
      "$(fmt "$cpu" %.2f)" "$(range_of e "$name" cpu %.1f)" "$r" "$(fmt "$(awk -v u="$(med_of e "$name" util)" 'BEGIN { print u * 100 }')" %.0f%%)" \
      "$(fmt "$(med_of e "$name" p99)" %.0f)" "$([[ $name == lbd* ]] && echo '<= 0.85x' || echo '(baseline)')" \
      "$([[ $name == lbd* ]] && meets "$r" 0.85)"
  done
}

report() {
  echo "# Proxy comparison: lbd vs nginx vs HAProxy"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); command: \`DURATION=$DURATION WARMUP=$WARMUP ROUNDS=$ROUNDS WORKLOADS=\"$WORKLOADS\" BULK_BYTES=$BULK_BYTES IDLE_CONNS=$IDLE_CONNS L7_POOL=$L7_POOL${BASELINE_LBD:+ BASELINE_LBD=$BASELINE_LBD}${PROXIES:+ PROXIES=\"$PROXIES\"} bench/proxy_compare.sh\`"
  echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), kernel $(uname -r)"
  echo "- load average at start: $load_start; at end: $(cut -d' ' -f1-3 /proc/loadavg); nice $NICE in a session of its own: $(cat /proc/self/autogroup 2>/dev/null || echo 'no autogroup')"
  echo "- versions: lbd $(git -C "$root" rev-parse --short HEAD 2>/dev/null)$(git -C "$root" diff --quiet HEAD -- runtime proxy cmd config 2>/dev/null || echo ' (+ uncommitted changes in the tree)'); $(nginx -v 2>&1 | sed 's/.*version: //'); HAProxy $(haproxy -v | sed -n 's/^HAProxy version \([^ ]*\).*/\1/p'); wrk $(dpkg-query -W -f='${Version}' wrk 2>/dev/null)"
  if [ -n "$BASELINE_LBD" ]; then echo "- baseline (the @base rows): \`$BASELINE_LBD\`, $("$BASELINE_LBD" --version 2>&1 | head -1)"; fi
  echo "- proxies pinned to CPU $PROXY_CPU, clients and backends to CPU $CLIENT_CPU; medians of $ROUNDS interleaved rounds; raw logs in \`${OUT_DIR#"$root"/}\`"
  echo
  local wl
  for wl in $WORKLOADS; do
    echo "## ${title_of[$wl]}"
    echo
    case "$wl" in
      a) report_a ;;
      b) report_b ;;
      c | f) report_idle "$wl" ;;
      d) report_d ;;
      e) report_e ;;
    esac
    echo
  done
  echo "## Problems"
  echo
  if [ ${#problems[@]} -eq 0 ]; then
    echo "None: no errors, wrong bytes, dropped connections or crashes."
  else
    local p
    for p in "${problems[@]}"; do echo "- $p"; done
  fi
  echo
  echo "## Raw runs"
  echo
  echo '```'
  cat "$results"
  echo '```'
}

# --- main -----------------------------------------------------------------------------------
mkdir -p "$OUT_DIR" "$RESULTS_DIR"
tmp="$(mktemp -d /tmp/proxy_compare.XXXXXX)"
ensure_packages
build
# The idle workloads need IDLE_CONNS fds in the client, twice that in the proxy.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((2 * IDLE_CONNS + 200)) ]; then
  log "warning: fd limit $(ulimit -n) is low for 2 x $IDLE_CONNS proxied connections"
fi
results="$OUT_DIR/results.txt"
: >"$results"
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"

log "kernel $(uname -r), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
log "load average at start: $load_start; nice $NICE ($(cat /proc/self/autogroup 2>/dev/null || echo 'no autogroup')); raw output in $OUT_DIR"
for wl in $WORKLOADS; do
  [ -n "${proxies_of[$wl]:-}" ] || die "unknown workload $wl (a b c d e f)"
  read -r -a names <<<"${proxies_of[$wl]}"
  for ((round = 1; round <= ROUNDS; ++round)); do
    # Rotate the order each round: round 1 p q r, round 2 q r p, ...
    for ((k = 0; k < ${#names[@]}; ++k)); do
      run_one "$wl" "${names[$(( (k + round - 1) % ${#names[@]} ))]}" "$round"
    done
  done
done
log "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

report_file="$RESULTS_DIR/proxy_compare-$stamp.md"
report | tee "$OUT_DIR/report.md" >"$report_file"
cat "$report_file"
log "report written to $report_file"
if [ ${#problems[@]} -gt 0 ]; then
  die "${#problems[@]} problem(s); see the report and $OUT_DIR"
fi
