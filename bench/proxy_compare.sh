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
# TLS termination (issue 12; run them with WORKLOADS="g h i"): the proxy terminates TLS with the
# same ECDSA P-256 certificate (made per run, self-signed) and the same OpenSSL, and forwards
# plain HTTP/1.1 to nginx (1 worker, 12-byte return 200) on CLIENT_CPU:
#   g  a new TLS connection per request (wrk https -H 'Connection: close'), a full handshake
#      each: wrk would resume the session of a connection's previous one, so every proxy has
#      resumption off here (lbd ticket_rotation: 0s; nginx ssl_session_tickets off and
#      ssl_session_cache off; HAProxy no-tls-tickets and tune.ssl.cachesize 0): requests/s,
#      proxy CPU µs per connection
#   h  TLS keep-alive, wrk https -t1 -c64: requests/s, p99, proxy CPU µs per request
#   i  TLS idle: IDLE_CONNS TLS keep-alive connections after one request each
#      (bench/tls_hold.py): proxy RSS per connection
# Each proxy must negotiate TLS 1.3 with openssl s_client before its run starts, or the bench
# stops (nginx is given ssl_protocols TLSv1.2 TLSv1.3: bookworm's 1.22 offers no 1.3 otherwise).
#
# lbd runs on io_uring and on epoll (`--io epoll`) with its default `forwarding: auto`, and for
# a and b also with `forwarding: copy` and `forwarding: splice`; b adds HAProxy with `option
# splice-auto` for reference. Every proxy runs pinned to PROXY_CPU; load generators and
# backends are pinned to CLIENT_CPU. Each workload runs ROUNDS interleaved rounds (the order of
# the proxies rotates every round); the tables show medians and compare each proxy with the
# better of nginx and HAProxy. The proxy's CPU time is utime + stime from /proc/PID/stat (for
# nginx: its worker process) over the measured window; its memory is VmRSS from /proc/PID/status.
#
# Load levels and backends (issue 11), for a, d and e: every round runs each backend of BACKENDS
# ("ours": echo_server / http_hello on lbd's runtime; "foreign": c_echo_server, a plain C epoll
# server, for a, and nginx with one worker and a 12-byte `return 200` for d and e, on
# CLIENT_CPU). Per round and backend, first every proxy runs saturated (closed loop: loadgen
# for a, wrk for d and e, or loadgen with SAT_CLIENT=loadgen); then, for each level L of LOADS,
# the offered rate is L % of the better peer's saturated rate in that same round and backend
# (the higher of nginx's and haproxy's; if neither ran, the highest of the proxies), and every
# proxy of LOAD_PROXIES runs open-loop at that rate (bench/loadgen --rate; --http for d,
# --http --new-connection for e). The level tables give each proxy's median CPU per unit of
# work, p99 and achieved rate, and the median over rounds of its same-round ratio to the
# better of nginx and haproxy, with the issue 11 targets marked.
#
# It is a benchmark, not a test: it reports figures, and exits non-zero only when runs could
# not be made or a proxy misbehaved (errors, wrong bytes, dropped connections, a crash); the
# report lists every such problem.
#
#   bench/proxy_compare.sh                         # DURATION=5 ROUNDS=3, all workloads
#   WORKLOADS="a d" ROUNDS=1 bench/proxy_compare.sh
#   QUICK=1 WORKLOADS="a d e" bench/proxy_compare.sh  # a first look: short, one round
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
#   BACKENDS     backends of a, d and e (default "ours foreign"; see above)
#   LOADS        levels of a, d and e in % of the better peer's saturated rate, and "sat"
#                (default "25 50 75 sat"); the saturated runs always happen (the levels need
#                them), "sat" only says whether the level tables show them
#   LOAD_PROXIES the proxies that run at the levels and with the foreign backend (default
#                "lbd-uring lbd-epoll nginx haproxy", plus the @base twins; the copy/splice and
#                -ops variants run only saturated with our backend, as before)
#   SAT_CLIENT   the closed-loop client of d and e: wrk (default, as before) or loadgen
#   QUICK        1: DURATION=2 WARMUP=0.5 ROUNDS=1 LOADS="50 sat" BULK_BYTES=512MiB
#                IDLE_CONNS=2000 unless they are set
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ "${QUICK:-0}" = 1 ]; then
  : "${DURATION:=2}" "${WARMUP:=0.5}" "${ROUNDS:=1}" "${LOADS:=50 sat}" "${BULK_BYTES:=512MiB}" "${IDLE_CONNS:=2000}"
fi
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
BACKENDS="${BACKENDS:-ours foreign}"
LOADS="${LOADS:-25 50 75 sat}"
LOAD_PROXIES="${LOAD_PROXIES:-lbd-uring lbd-uring@base lbd-epoll lbd-epoll@base nginx haproxy}"
SAT_CLIENT="${SAT_CLIENT:-wrk}"
TLS_VERSION=TLSv1.3  # what every proxy must negotiate in g, h and i
for b in $BACKENDS; do
  case "$b" in ours | foreign) ;; *) echo "proxy_compare: BACKENDS: unknown backend $b (ours foreign)" >&2; exit 1 ;; esac
done
for l in $LOADS; do
  [[ "$l" == sat || "$l" =~ ^[0-9]+$ ]] || { echo "proxy_compare: LOADS: $l is neither a percentage nor sat" >&2; exit 1; }
done
case "$SAT_CLIENT" in wrk | loadgen) ;; *) echo "proxy_compare: SAT_CLIENT is wrk or loadgen" >&2; exit 1 ;; esac
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
  [g]="lbd-uring lbd-epoll nginx haproxy"
  [h]="lbd-uring lbd-epoll nginx haproxy"
  [i]="lbd-uring lbd-epoll nginx haproxy"
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
# The proxies of the load levels and of the foreign backend: those of the workload that
# LOAD_PROXIES names, in the workload's order.
declare -A level_proxies_of=()
for wl in a d e; do
  kept=""
  for name in ${proxies_of[$wl]}; do [[ " $LOAD_PROXIES " == *" $name "* ]] && kept+=" $name"; done
  level_proxies_of[$wl]="${kept# }"
done
declare -A title_of=(
  [a]="(a) L4 ping-pong, 64 connections x 128 B"
  [b]="(b) L4 bulk, $BULK_BYTES over one connection to a checking sink (one direction)"
  [c]="(c) L4 idle, $IDLE_CONNS connections held open through the proxy"
  [d]="(d) L7 keep-alive, 64 connections"
  [e]="(e) L7 new connection per request, 64 at a time"
  [f]="(f) L7 idle keep-alive, $IDLE_CONNS connections after one request each"
  [g]="(g) TLS, a new connection (full handshake) per request, 64 at a time"
  [h]="(h) TLS keep-alive, 64 connections"
  [i]="(i) TLS idle keep-alive, $IDLE_CONNS connections after one request each"
)

# What backend KIND (ours|foreign) of workload $1 is, for tables and logs.
backend_label() {
  case "$1:$2" in
    a:ours) echo "echo_server (lbd runtime)" ;;
    a:foreign) echo "c_echo_server (plain C, epoll)" ;;
    *:ours) echo "http_hello (lbd runtime)" ;;
    *:foreign) echo "nginx (1 worker, 12-byte return 200)" ;;
  esac
}
# The client of a saturated run of workload $1, and of a run at an offered rate.
sat_client() {
  case "$1" in
    a) echo "bench/loadgen, closed loop, 64 x 128 B" ;;
    d) [ "$SAT_CLIENT" = wrk ] && echo "wrk -t1 -c64" || echo "bench/loadgen --http, closed loop, 64 connections" ;;
    e) [ "$SAT_CLIENT" = wrk ] && echo "wrk -t1 -c64 -H 'Connection: close'" || echo "bench/loadgen --http --new-connection, closed loop, 64 at a time" ;;
  esac
}
rate_client() {
  case "$1" in
    a) echo "bench/loadgen --rate, 64 x 128 B" ;;
    d) echo "bench/loadgen --http --rate, 64 keep-alive connections" ;;
    e) echo "bench/loadgen --http --new-connection --rate, at most 64 in flight" ;;
  esac
}

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
       cmake --build "$BUILD_DIR" --target lbd loadgen proxy_peer echo_server http_hello c_echo_server >>"$OUT_DIR/cmake.log" 2>&1; then
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
# The HTTP backend that is not ours: nginx, one worker, a 12-byte body from `return`, no
# logging, keep-alive for as long as the proxies keep their upstream connections. Its files
# live apart from the proxy nginx's.
write_nginx_backend_config() {
  local port="$1" dir="$tmp/backend-nginx"
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
worker_rlimit_nofile 20000;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 20000; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  keepalive_timeout 60s;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$port;
    default_type text/plain;
    location / { return 200 "hello world\n"; }
  }
}
EOF
  echo "$dir/nginx.conf"
}

# start_backend KIND LOG: echo (echo_server), cecho (c_echo_server), sink, hold (proxy_peer),
# http (http_hello), nginx (nginx as an HTTP backend). Sets backend_pid and backend_port.
start_backend() {
  local kind="$1" logf="$2" try cmd
  for try in 1 2 3 4 5; do
    backend_port="$(free_port)" || die "no free loopback port"
    case "$kind" in
      echo) cmd=("$BUILD_DIR/runtime/examples/echo_server" --port "$backend_port") ;;
      cecho) cmd=("$BUILD_DIR/bench/c_echo_server" --port "$backend_port") ;;
      sink) cmd=("$BUILD_DIR/bench/proxy_peer" sink --port "$backend_port") ;;
      hold) cmd=("$BUILD_DIR/bench/proxy_peer" hold-server --port "$backend_port") ;;
      http) cmd=("$BUILD_DIR/runtime/examples/http_hello" --port "$backend_port" --id backend) ;;
      nginx) cmd=(nginx -p "$tmp/backend-nginx/" -c "$(write_nginx_backend_config "$backend_port")") ;;
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
          # g: no resumption, so that every connection is a full handshake (see tls_resumption).
          if [ "$layer" = l7tls ]; then echo "    tls: { cert: $tmp/tls/cert.pem, key: $tmp/tls/key.pem$([ "$tls_resumption" = 0 ] && echo ", ticket_rotation: 0s") }"; fi
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
    listen 127.0.0.1:$port$([ "$layer" = l7tls ] && echo " ssl");
$([ "$layer" = l7tls ] && echo "    ssl_certificate $tmp/tls/cert.pem; ssl_certificate_key $tmp/tls/key.pem;")
$([ "$layer" = l7tls ] && echo "    ssl_protocols TLSv1.2 TLSv1.3;")
$([ "$layer" = l7tls ] && [ "$tls_resumption" = 0 ] && echo "    ssl_session_tickets off; ssl_session_cache off;")
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
        if [ "$layer" = l7tls ] && [ "$tls_resumption" = 0 ]; then echo "  tune.ssl.cachesize 0"; fi
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
  bind 127.0.0.1:$port$([ "$layer" = l7tls ] && echo " ssl crt $tmp/tls/combined.pem")$([ "$layer" = l7tls ] && [ "$tls_resumption" = 0 ] && echo " no-tls-tickets")
  maxconn 19000
  option forwardfor
  http-request set-header X-Forwarded-Proto $([ "$layer" = l7tls ] && echo https || echo http)
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
      if [ "$layer" = l7tls ]; then
        # Every proxy must negotiate the same version with the same client. (nginx 1.22,
        # Debian bookworm's, offers no TLS 1.3 unless ssl_protocols says so; it joined nginx's
        # default in 1.23.4. Before that line, nginx served these workloads in TLS 1.2.)
        local proto
        proto="$(openssl s_client -connect "127.0.0.1:$proxy_port" </dev/null 2>/dev/null | sed -n 's/^New, \(TLSv[0-9.]*\), .*/\1/p' | head -1)"
        [ "$proto" = "$TLS_VERSION" ] || die "$name negotiated ${proto:-nothing} with openssl s_client, not $TLS_VERSION"
        echo "$tag $name negotiated $proto" >>"$OUT_DIR/tls_versions.txt"
      fi
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

# Appends the result line of a loadgen run (output $5, exit status $6) to $results as series
# $1, proxy $2, round $3; $4 is the run's tag. Units: a message or a request.
record_loadgen() {
  local series="$1" name="$2" round="$3" tag="$4" out="$5" rc="$6" line
  line="$(grep '^result ' <<<"$out" || true)"
  if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
    problem "$tag: loadgen through $name failed (exit $rc): $(grep -v '^result ' <<<"$out" | tail -2 | tr '\n' ' ')"
    [ -z "$line" ] && return 0
  fi
  echo "$series $name $round rate=$(kv rate "$line") cpu=$(kv server_cpu_us_per_msg "$line")" \
       "util=$(kv server_cpu_util "$line") p99=$(kv p99_us "$line") p999=$(kv p999_us "$line")" \
       "offered=$(kv rate_offered "$line") late=$(kv late "$line") errors=$(kv errors "$line")" >>"$results"
  log "$tag: $(grep '^loadgen: ' <<<"$out" | sed 's/^loadgen: [^ ]* //')"
}

# The tag of a run: its series (workload:backend:level) and proxy and round, for file names.
# Today's runs (our backend, saturated) keep their old names.
run_tag() {
  local series="$1" name="$2" round="$3"
  case "$series" in
    *:ours:sat) echo "${series%%:*}.$name.r$round" ;;
    *) echo "${series//:/.}.$name.r$round" ;;
  esac
}

# run_a NAME ROUND [SERIES BACKEND RATE]: ping-pong through the proxy to an echo backend
# (echo_server, or c_echo_server for "foreign"); closed loop, or open loop at RATE msg/s.
run_a() {
  local name="$1" round="$2" series="${3:-a:ours:sat}" backend="${4:-ours}" rate="${5:-}" tag
  tag="$(run_tag "$series" "$name" "$round")"
  local kind=echo
  [ "$backend" = foreign ] && kind=cecho
  start_backend "$kind" "$OUT_DIR/$tag.backend.log"
  start_proxy "$name" l4 "$backend_port" "$tag"
  local out rc=0 open_loop=()
  [ -n "$rate" ] && open_loop=(--rate "$rate")
  out="$(on_client "$BUILD_DIR/bench/loadgen" --target "127.0.0.1:$proxy_port" --connections 64 --size 128 \
           --duration "$DURATION" --warmup "$WARMUP" --server-pid "$proxy_pid" "${open_loop[@]}" 2>&1)" || rc=$?
  echo "$out" >"$OUT_DIR/$tag.client.log"
  stop_proxy "$name" "$tag"
  stop_pid "$backend_pid"
  record_loadgen "$series" "$name" "$round" "$tag" "$out" "$rc"
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
  local holder=("$BUILD_DIR/bench/proxy_peer" hold)
  [ "$holder_tls" = 1 ] && holder=(python3 "$root/bench/tls_hold.py")
  launch "$CLIENT_CPU" "$holder_out" "${holder[@]}" "$@"
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
  holder_tls=0
  if [ "$wl" = i ]; then layer=l7tls; holder_tls=1; fi
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

# -ops proxies: Prometheus' way, one GET /metrics a second, from the client's CPU, while the
# measured load runs. Sets scraper (empty when there is none).
start_scraper() {
  scraper=""
  [[ "$1" == *-ops ]] || return 0
  on_client bash -c "while sleep 1; do curl -s -o /dev/null http://127.0.0.1:$admin_port/metrics; done" &
  scraper=$!
}
stop_scraper() {
  if [ -n "${scraper:-}" ]; then kill "$scraper" 2>/dev/null || true; wait "$scraper" 2>/dev/null || true; fi
  scraper=""
}

latency_us() {  # "1.23ms" -> 1230
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "us") print n; else if (u == "ms") print n * 1000; else if (u == "s") print n * 1e6;
    else if (u == "m") print n * 6e7; else print "nan" }'
}
# run_wrk WL NAME ROUND [SERIES BACKEND RATE]: an L7 run, d keep-alive or e Connection: close,
# to http_hello or (BACKEND foreign) nginx. Saturated: wrk (or loadgen with SAT_CLIENT=loadgen);
# with RATE: loadgen --http at RATE requests/s.
run_wrk() {
  local wl="$1" name="$2" round="$3" series="${4:-$1:ours:sat}" backend="${5:-ours}" rate="${6:-}" tag hdr=()
  tag="$(run_tag "$series" "$name" "$round")"
  [ "$wl" = e ] || [ "$wl" = g ] && hdr=(-H 'Connection: close')
  local kind=http layer=l7 scheme=http
  [ "$backend" = foreign ] && kind=nginx
  if [ "$wl" = g ] || [ "$wl" = h ]; then layer=l7tls; scheme=https; fi
  # wrk keeps a connection's TLS session for its next one (SSL_clear) and so resumes some of
  # them; g measures full handshakes, so there every proxy has resumption off.
  tls_resumption=1
  [ "$wl" = g ] && tls_resumption=0
  start_backend "$kind" "$OUT_DIR/$tag.backend.log"
  start_proxy "$name" "$layer" "$backend_port" "$tag"
  local url="$scheme://127.0.0.1:$proxy_port/" out rc=0 c0 c1
  if [ -n "$rate" ] || [ "$SAT_CLIENT" = loadgen ]; then
    local args=(--http --connections 64 --duration "$DURATION" --warmup "$WARMUP" --server-pid "$proxy_pid")
    [ "$wl" = e ] && args+=(--new-connection)
    [ -n "$rate" ] && args+=(--rate "$rate")
    start_scraper "$name"
    out="$(on_client "$BUILD_DIR/bench/loadgen" --target "127.0.0.1:$proxy_port" "${args[@]}" 2>&1)" || rc=$?
    stop_scraper
    echo "$out" >"$OUT_DIR/$tag.client.log"
    stop_proxy "$name" "$tag"
    stop_pid "$backend_pid"
    record_loadgen "$series" "$name" "$round" "$tag" "$out" "$rc"
    return 0
  fi
  on_client wrk -t1 -c64 -d"${WARMUP}s" "${hdr[@]}" "$url" >"$OUT_DIR/$tag.warmup.log" 2>&1 || true
  start_scraper "$name"
  c0="$(cpu_us "$proxy_pid")"
  out="$(on_client wrk -t1 -c64 -d"${DURATION}s" --latency "${hdr[@]}" "$url" 2>&1)" || rc=$?
  c1="$(cpu_us "$proxy_pid")"
  stop_scraper
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
  echo "$series $name $round rate=$rps cpu=$cpu util=$(awk -v a="$c0" -v b="$c1" -v d="$DURATION" 'BEGIN { printf "%.3f", (b - a) / (d * 1e6) }')" \
       "p99=$p99 errors=$(( ${errs:-0} + ${non2xx:-0} ))" >>"$results"
  log "$tag: $rps req/s, p99 ${p99} us, proxy CPU $cpu us/request, errors ${errs:-0}, non-2xx ${non2xx:-0}"
}

# run_one WL NAME ROUND [SERIES BACKEND RATE]; the last three only for a, d and e.
run_one() {
  case "$1" in
    a) run_a "$2" "$3" "${4:-}" "${5:-}" "${6:-}" ;;
    b) run_b "$2" "$3" ;;
    c | f | i) run_idle "$1" "$2" "$3" ;;
    d | e) run_wrk "$1" "$2" "$3" "${4:-}" "${5:-}" "${6:-}" ;;
    g | h) run_wrk "$1" "$2" "$3" "$1:foreign:sat" foreign ;;
  esac
}

# The saturated rate the levels of series $1 (WL:BACKEND:sat) are relative to in round $2: the
# higher of nginx's and haproxy's; the highest of any proxy when neither ran; nan when none did.
peer_rate() {
  awk -v s="$1" -v r="$2" '
    $1 == s && $3 == r { v = 0; for (i = 4; i <= NF; i++) if ($i ~ /^rate=/) v = substr($i, 6) + 0
                         if (($2 == "nginx" || $2 == "haproxy") && v > peer) peer = v
                         if (v > any) any = v }
    END { if (peer > 0) print peer; else if (any > 0) print any; else print "nan" }' "$results"
}

# One round of workload $1 (a, d or e) in round $2: for every backend, first every proxy
# saturated, then every level of LOADS at that percentage of this round's peer_rate. The order
# of the proxies rotates each round, as for the other workloads.
run_levels_round() {
  local wl="$1" round="$2" backend best level rate k names=() sat_names=()
  read -r -a names <<<"${level_proxies_of[$wl]}"
  for backend in $BACKENDS; do
    if [ "$backend" = ours ]; then read -r -a sat_names <<<"${proxies_of[$wl]}"; else sat_names=("${names[@]+"${names[@]}"}"); fi
    [ ${#sat_names[@]} -gt 0 ] || continue
    for ((k = 0; k < ${#sat_names[@]}; ++k)); do
      run_one "$wl" "${sat_names[$(( (k + round - 1) % ${#sat_names[@]} ))]}" "$round" "$wl:$backend:sat" "$backend"
    done
    [ ${#names[@]} -gt 0 ] || continue
    best="$(peer_rate "$wl:$backend:sat" "$round")"
    if [ "$best" = nan ]; then
      problem "$wl round $round, backend $backend: no saturated rate to derive the load levels from"
      continue
    fi
    for level in $LOADS; do
      [ "$level" = sat ] && continue
      rate="$(awk -v b="$best" -v l="$level" 'BEGIN { printf "%.0f", b * l / 100 }')"
      log "$wl round $round, backend $backend: level $level % = $rate/s of the better peer's saturated $best/s"
      for ((k = 0; k < ${#names[@]}; ++k)); do
        run_one "$wl" "${names[$(( (k + round - 1) % ${#names[@]} ))]}" "$round" "$wl:$backend:$level" "$backend" "$rate"
      done
    done
  done
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
  local sr="${1:-a:ours:sat}" best name cpu r
  best="$(best_of "$sr" cpu)"
  echo "| proxy | msgs/s | proxy CPU µs/msg | (rounds) | vs better of nginx/haproxy | proxy CPU util | p99 µs | target | met |"
  echo "|---|---:|---:|---:|---:|---:|---:|---|---|"
  for name in ${proxies_of[a]}; do
    cpu="$(med_of "$sr" "$name" cpu)"
    r="$(ratio "$cpu" "$best")"
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$(fmt "$(med_of "$sr" "$name" rate)" %.0f)" \
      "$(fmt "$cpu" %.2f)" "$(range_of "$sr" "$name" cpu %.1f)" "$r" "$(fmt "$(awk -v u="$(med_of "$sr" "$name" util)" 'BEGIN { print u * 100 }')" %.0f%%)" \
      "$(fmt "$(med_of "$sr" "$name" p99)" %.0f)" "$([[ $name == lbd* ]] && echo '<= 0.75x' || echo '(baseline)')" \
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
  local wl="$1" name per best
  best="$(best_of "$wl" per)"
  echo "| proxy | RSS before (KiB) | RSS with $IDLE_CONNS idle (KiB) | bytes per idle connection | (rounds) | target | met |"
  echo "|---|---:|---:|---:|---:|---|---|"
  for name in ${proxies_of[$wl]}; do
    per="$(med_of "$wl" "$name" per)"
    local target="" met=""
    local limit=2560
    [ "$wl" = i ] && limit="$best"  # issue 12: at most the better peer's
    [[ $name == lbd* ]] && { target="<= $(fmt "$limit" %.0f) B"; met="$(awk -v p="$per" -v l="$limit" 'BEGIN { if (p == "nan" || l == "nan") print "n/a"; else print (p + 0 <= l + 0 ? "yes" : "**no**") }')"; }
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$(fmt "$(med_of "$wl" "$name" rss0)" %.0f)" \
      "$(fmt "$(med_of "$wl" "$name" rss1)" %.0f)" "$(fmt "$per" %.0f)" "$(range_of "$wl" "$name" per %.0f)" "$target" "$met"
  done
}

report_d() {
  local sr="${1:-d:ours:sat}" wl="${2:-d}" limit="${3:-0.75}" best bestp name cpu r p99 rp
  best="$(best_of "$sr" cpu)"
  bestp="$(best_of "$sr" p99)"
  echo "| proxy | requests/s | p99 µs | p99 vs better | proxy CPU µs/request | (rounds) | vs better of nginx/haproxy | proxy CPU util | target | met |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---|---|"
  for name in ${proxies_of[$wl]}; do
    cpu="$(med_of "$sr" "$name" cpu)"
    p99="$(med_of "$sr" "$name" p99)"
    r="$(ratio "$cpu" "$best")"
    rp="$(ratio "$p99" "$bestp")"
    local target="(baseline)" met=""
    if [[ $name == lbd* ]]; then
      target="CPU <= ${limit}x, p99 <= 1.00x"
      met="$(awk -v a="$(meets "$r" "$limit")" -v b="$(meets "$rp" 1.0)" 'BEGIN { print (a == "yes" && b == "yes") ? "yes" : "**no**" }')"
    fi
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$(fmt "$(med_of "$sr" "$name" rate)" %.0f)" \
      "$(fmt "$p99" %.0f)" "$rp" "$(fmt "$cpu" %.2f)" "$(range_of "$sr" "$name" cpu %.1f)" "$r" \
      "$(fmt "$(awk -v u="$(med_of "$sr" "$name" util)" 'BEGIN { print u * 100 }')" %.0f%%)" "$target" "$met"
  done
  # The operator's overhead: -ops against the same lbd in the same round (target <= 1.03x).
  local io ops paired
  for io in uring epoll; do
    ops="lbd-$io-ops"
    [[ " ${proxies_of[$wl]} " == *" $ops "* ]] || continue
    paired="$(awk -v s="$sr" -v p="lbd-$io" -v o="$ops" '
      $1 == s { for (i = 4; i <= NF; i++) if ($i ~ /^cpu=/) { c = substr($i, 5) }
                  if ($2 == p) plain[$3] = c; if ($2 == o) with[$3] = c }
      END { for (r in with) if ((r in plain) && plain[r] > 0) print with[r] / plain[r] }' "$results" | median)"
    echo
    echo "$ops (admin listener scraped every 1 s, HTTP health check every 1 s) vs lbd-$io, median of same-round ratios: $(fmt "$paired" %.3fx) (target <= 1.03x)"
  done
}

report_e() {
  local sr="${1:-e:ours:sat}" wl="${2:-e}" limit="${3:-0.85}" best name cpu r
  best="$(best_of "$sr" cpu)"
  echo "| proxy | requests/s | proxy CPU µs/request (= per connection) | (rounds) | vs better of nginx/haproxy | proxy CPU util | p99 µs | target | met |"
  echo "|---|---:|---:|---:|---:|---:|---:|---|---|"
  for name in ${proxies_of[$wl]}; do
    cpu="$(med_of "$sr" "$name" cpu)"
    r="$(ratio "$cpu" "$best")"
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$(fmt "$(med_of "$sr" "$name" rate)" %.0f)" \
      "$(fmt "$cpu" %.2f)" "$(range_of "$sr" "$name" cpu %.1f)" "$r" "$(fmt "$(awk -v u="$(med_of "$sr" "$name" util)" 'BEGIN { print u * 100 }')" %.0f%%)" \
      "$(fmt "$(med_of "$sr" "$name" p99)" %.0f)" "$([[ $name == lbd* ]] && echo "<= ${limit}x" || echo '(baseline)')" \
      "$([[ $name == lbd* ]] && meets "$r" "$limit")"
  done
}

# The median over rounds of proxy $2's key $3 over the better (lower) of nginx's and haproxy's
# in the same round of series $1: each round's ratio first, then the median (as report_d's
# -ops ratio), so that a round where the whole machine was slower cancels out.
same_round_ratio() {
  awk -v s="$1" -v p="$2" -v k="$3" '
    $1 == s { v = ""; for (i = 4; i <= NF; i++) if (index($i, k "=") == 1) v = substr($i, length(k) + 2)
              if (v == "" || v == "nan" || v + 0 <= 0) next
              if ($2 == p) mine[$3] = v + 0
              if (($2 == "nginx" || $2 == "haproxy") && (!($3 in peer) || v + 0 < peer[$3])) peer[$3] = v + 0 }
    END { for (r in mine) if (r in peer) print mine[r] / peer[r] }' "$results" | median
}
# Issue 11's CPU target for proxy $1 in workload $2 (a ratio), or empty for the peers.
level_target() {
  case "$1" in
    lbd-uring*) [ "$2" = e ] && echo 0.85 || echo 0.75 ;;
    lbd-epoll*) echo 1.0 ;;
  esac
}

# report_levels WL BACKEND: a table per workload and backend, one row per level and proxy.
# Counts the lbd rows that meet their target into levels_met / levels_rows.
report_levels() {
  local wl="$1" backend="$2" level sr name cpu r p99 rp t met offered
  echo "| level | offered /s | proxy | achieved /s | proxy CPU µs/unit | (rounds) | vs better of nginx/haproxy (same-round median) | p99 µs | p99 vs better (same-round median) | late > 1 ms | target | met |"
  echo "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---|"
  for level in $LOADS; do
    sr="$wl:$backend:$level"
    for name in ${level_proxies_of[$wl]}; do
      [ "$(rounds_of "$sr" "$name")" -gt 0 ] || continue
      cpu="$(med_of "$sr" "$name" cpu)"
      p99="$(med_of "$sr" "$name" p99)"
      r="$(ratio "$(same_round_ratio "$sr" "$name" cpu)" 1)"
      rp="$(ratio "$(same_round_ratio "$sr" "$name" p99)" 1)"
      if [ "$level" = sat ]; then offered="closed loop"; else offered="$(fmt "$(med_of "$sr" "$name" offered)" %.0f)"; fi
      t="$(level_target "$name" "$wl")"
      met=""
      if [ -n "$t" ]; then
        met="$(meets "$r" "$t")"
        # (a) and (d): p99 no worse than the better peer's too.
        if [ "$wl" != e ] && [ "$met" = yes ]; then met="$(meets "$rp" 1.0)"; fi
        levels_rows=$((levels_rows + 1))
        [ "$met" = yes ] && levels_met=$((levels_met + 1))
        if [ "$wl" = e ]; then t="CPU <= ${t}x"; else t="CPU <= ${t}x, p99 <= 1.00x"; fi
      else
        t="(baseline)"
      fi
      printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$level" "$offered" "$name" \
        "$(fmt "$(med_of "$sr" "$name" rate)" %.0f)" "$(fmt "$cpu" %.2f)" "$(range_of "$sr" "$name" cpu %.1f)" "$r" \
        "$(fmt "$p99" %.0f)" "$rp" "$([ "$level" = sat ] && echo n/a || fmt "$(med_of "$sr" "$name" late)" %.0f)" "$t" "$met"
    done
  done
}

report() {
  echo "# Proxy comparison: lbd vs nginx vs HAProxy"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); command: \`DURATION=$DURATION WARMUP=$WARMUP ROUNDS=$ROUNDS WORKLOADS=\"$WORKLOADS\" BACKENDS=\"$BACKENDS\" LOADS=\"$LOADS\" SAT_CLIENT=$SAT_CLIENT BULK_BYTES=$BULK_BYTES IDLE_CONNS=$IDLE_CONNS L7_POOL=$L7_POOL${BASELINE_LBD:+ BASELINE_LBD=$BASELINE_LBD}${PROXIES:+ PROXIES=\"$PROXIES\"} bench/proxy_compare.sh\`"
  echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), kernel $(uname -r)"
  echo "- load average at start: $load_start; at end: $(cut -d' ' -f1-3 /proc/loadavg); nice $NICE in a session of its own: $(cat /proc/self/autogroup 2>/dev/null || echo 'no autogroup')"
  echo "- versions: lbd $(git -C "$root" rev-parse --short HEAD 2>/dev/null)$(git -C "$root" diff --quiet HEAD -- runtime proxy cmd config 2>/dev/null || echo ' (+ uncommitted changes in the tree)'); $(nginx -v 2>&1 | sed 's/.*version: //'); HAProxy $(haproxy -v | sed -n 's/^HAProxy version \([^ ]*\).*/\1/p'); wrk $(dpkg-query -W -f='${Version}' wrk 2>/dev/null)"
  if [ -n "$BASELINE_LBD" ]; then echo "- baseline (the @base rows): \`$BASELINE_LBD\`, $("$BASELINE_LBD" --version 2>&1 | head -1)"; fi
  echo "- proxies pinned to CPU $PROXY_CPU, clients and backends to CPU $CLIENT_CPU; medians of $ROUNDS interleaved rounds; raw logs in \`${OUT_DIR#"$root"/}\`"
  echo
  local wl backend
  levels_met=0
  levels_rows=0
  for wl in $WORKLOADS; do
    echo "## ${title_of[$wl]}"
    echo
    case "$wl" in
      a | d | e)
        if [[ " $BACKENDS " == *" ours "* ]]; then
          echo "### Saturated, backend $(backend_label "$wl" ours); client: $(sat_client "$wl")"
          echo
          "report_$wl" "$wl:ours:sat"
          echo
        fi
        for backend in $BACKENDS; do
          echo "### Load levels, backend $(backend_label "$wl" "$backend")"
          echo
          echo "Levels: % of the better peer's saturated rate in the same round and backend; client: $(rate_client "$wl") (sat: $(sat_client "$wl"))."
          echo
          report_levels "$wl" "$backend"
          echo
        done
        ;;
      b) report_b ;;
      c | f | i) report_idle "$wl" ;;
      g)
        echo "Backend $(backend_label g foreign); client: wrk -t1 -c64 -H 'Connection: close' over https (a full handshake per request). Target (issue 12): CPU per connection <= 1.0x the better peer."
        echo
        report_e g:foreign:sat g 1.0
        ;;
      h)
        echo "Backend $(backend_label h foreign); client: wrk -t1 -c64 over https. Target (issue 12): CPU per request <= 0.8x the better peer, p99 no worse."
        echo
        report_d h:foreign:sat h 0.8
        ;;
    esac
    echo
  done
  if [ "$levels_rows" -gt 0 ]; then
    echo "## Issue 11 targets at the load levels"
    echo
    echo "$levels_met of $levels_rows lbd rows (workload x backend x level x driver) meet their target (io_uring <= 0.75x for a and d, <= 0.85x for e; epoll <= 1.00x; a and d also p99 <= 1.00x; ratios are same-round medians against the better of nginx and haproxy)."
    echo
  fi
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
holder_tls=0
tls_resumption=1
# g, h and i: one ECDSA P-256 certificate for every proxy; HAProxy takes it and its key in one file.
if [[ " $WORKLOADS " == *" g "* || " $WORKLOADS " == *" h "* || " $WORKLOADS " == *" i "* ]]; then
  mkdir -p "$tmp/tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 -subj /CN=bench.lbd.test \
    -addext "subjectAltName=DNS:bench.lbd.test,IP:127.0.0.1" -keyout "$tmp/tls/key.pem" -out "$tmp/tls/cert.pem" \
    >"$OUT_DIR/openssl.log" 2>&1 || die "cannot make the TLS certificate: $(tail -2 "$OUT_DIR/openssl.log")"
  cat "$tmp/tls/cert.pem" "$tmp/tls/key.pem" >"$tmp/tls/combined.pem"
fi
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"

log "kernel $(uname -r), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
log "load average at start: $load_start; nice $NICE ($(cat /proc/self/autogroup 2>/dev/null || echo 'no autogroup')); raw output in $OUT_DIR"
for wl in $WORKLOADS; do
  [ -n "${proxies_of[$wl]:-}" ] || die "unknown workload $wl (a b c d e f g h i)"
  read -r -a names <<<"${proxies_of[$wl]}"
  for ((round = 1; round <= ROUNDS; ++round)); do
    case "$wl" in
      a | d | e) run_levels_round "$wl" "$round" ;;
      *)
        # Rotate the order each round: round 1 p q r, round 2 q r p, ...
        for ((k = 0; k < ${#names[@]}; ++k)); do
          run_one "$wl" "${names[$(( (k + round - 1) % ${#names[@]} ))]}" "$round"
        done
        ;;
    esac
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
