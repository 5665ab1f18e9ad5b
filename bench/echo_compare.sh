#!/usr/bin/env bash
# Echo server comparison: lbd's runtime (runtime/examples/echo.cpp on io_uring and on epoll)
# against a Boost.Asio echo server (bench/asio_echo_server.cpp), in one run, on the same cores.
#
#   bench/echo_compare.sh                      # DURATION=5 ROUNDS=3
#   DURATION=10 ROUNDS=5 bench/echo_compare.sh
#
# For each workload (64 connections x 128 B, 1,000 connections x 1 KiB) it runs ROUNDS
# interleaved rounds of the three servers (the order rotates every round, so no server always
# goes first after a quiet or a busy spell). Each server runs pinned to SERVER_CPU and the load
# generator (bench/loadgen.cpp, on lbd's runtime) to LOADGEN_CPU. The figure that matters is
# the server's CPU time per echoed message, from /proc/PID/stat over the measured window; the
# table shows medians over the rounds.
#
# It is a benchmark, not a test: it reports figures and only fails when a run cannot be made
# (build error, a server that does not start, echo errors).
#
# Environment:
#   DURATION     measured seconds per run (default 5; "5s" works too)
#   WARMUP       seconds of load before measuring (default 1)
#   ROUNDS       rounds per workload (default 3)
#   SERVER_CPU   CPU the servers are pinned to (default 0)
#   LOADGEN_CPU  CPU the load generator is pinned to (default 1)
#   LOADGEN_IO   driver of the load generator: io_uring | epoll (default io_uring)
#   NICE         nice level of servers and load generator (default -20 as root, else 0): on a
#                shared machine it keeps other work from taking turns on the two pinned CPUs
#   BUILD_DIR    CMake build directory (default build/bench)
#   OUT_DIR      where raw results and server logs go (default $BUILD_DIR/echo_compare/<time>)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DURATION="${DURATION:-5}"
DURATION="${DURATION%s}"
WARMUP="${WARMUP:-1}"
WARMUP="${WARMUP%s}"
ROUNDS="${ROUNDS:-3}"
SERVER_CPU="${SERVER_CPU:-0}"
LOADGEN_CPU="${LOADGEN_CPU:-1}"
LOADGEN_IO="${LOADGEN_IO:-io_uring}"
if [ -z "${NICE:-}" ]; then
  if [ "$(id -u)" -eq 0 ]; then NICE=-20; else NICE=0; fi
fi
BUILD_DIR="${BUILD_DIR:-$root/build/bench}"
OUT_DIR="${OUT_DIR:-$BUILD_DIR/echo_compare/$(date +%Y%m%d-%H%M%S)}"

# With CONFIG_SCHED_AUTOGROUP the scheduler first shares a CPU fairly between sessions, so a
# nice level only counts inside our own session: on a machine where other sessions compile,
# `nice -20` alone still leaves us about a quarter of each CPU. So the run goes into a session
# of its own whose autogroup gets the nice level. The caller's session is left as it was.
if [ "$NICE" -lt 0 ] && [ "$(id -u)" -eq 0 ] && [ -w /proc/self/autogroup ] &&
   [ "$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null)" = 1 ] && [ -z "${ECHO_COMPARE_INNER:-}" ]; then
  # A background child of a script is no process group leader, so setsid execs in place and
  # $! is the inner script itself.
  ECHO_COMPARE_INNER=1 OUT_DIR="$OUT_DIR" setsid bash "${BASH_SOURCE[0]}" "$@" &
  inner=$!
  trap 'kill -TERM "$inner" 2>/dev/null || true' INT TERM
  rc=0
  while :; do
    wait "$inner" && rc=0 || rc=$?
    kill -0 "$inner" 2>/dev/null || break  # wait was cut short by a trapped signal: wait again
  done
  exit "$rc"
fi
if [ -n "${ECHO_COMPARE_INNER:-}" ]; then
  echo "$NICE" >/proc/self/autogroup
fi

# workload name, connections, message bytes
workloads=("64x128B 64 128" "1000x1KiB 1000 1024")
servers=(lbd-io_uring lbd-epoll asio)

log() { echo "echo_compare: $*" >&2; }
die() { log "error: $*"; exit 1; }

# --- packages -------------------------------------------------------------------------------
# The tree's build packages come from the project's bootstrap script; on top of them: GoogleTest
# (the top-level CMakeLists includes the test helper even with LBD_BUILD_TESTS=OFF), Boost
# (Asio, header-only), util-linux (taskset) and iproute2 (ss). apt-get update runs only when
# something is missing.
ensure_packages() {
  bash "$root/deploy/bootstrap.sh" build >&2
  local missing=() p
  for p in libgtest-dev libboost-dev util-linux iproute2; do
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
build() {
  local attempt
  for attempt in 1 2 3; do
    if cmake -S "$root" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLBD_BUILD_TESTS=OFF \
         -DLBD_BUILD_BENCH=ON >"$OUT_DIR/cmake.log" 2>&1 &&
       cmake --build "$BUILD_DIR" --target loadgen echo_server asio_echo_server >>"$OUT_DIR/cmake.log" 2>&1; then
      return 0
    fi
    log "build attempt $attempt failed (see $OUT_DIR/cmake.log); retrying in 30s"
    sleep 30
  done
  tail -30 "$OUT_DIR/cmake.log" >&2
  die "build failed"
}

# --- servers --------------------------------------------------------------------------------
server_pids=()
cleanup() {
  local pid
  for pid in "${server_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  server_pids=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A loopback port nobody uses, below the ephemeral range (the load generator's own ports).
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

server_cmd() {  # name port -> the command line in array `cmd`
  case "$1" in
    lbd-io_uring) cmd=("$BUILD_DIR/runtime/examples/echo_server" --port "$2" --io io_uring) ;;
    lbd-epoll) cmd=("$BUILD_DIR/runtime/examples/echo_server" --port "$2" --io epoll) ;;
    asio) cmd=("$BUILD_DIR/bench/asio_echo_server" --port "$2") ;;
  esac
}

# Starts server $1 pinned to SERVER_CPU; sets server_pid and server_port. A port taken between
# the check and the bind gets another try.
start_server() {
  local name="$1" logf="$2" try _
  for try in 1 2 3 4 5; do
    server_port="$(free_port)" || die "no free loopback port"
    server_cmd "$name" "$server_port"
    # nice and taskset exec the server, so $! is the server's own pid.
    nice -n "$NICE" taskset -c "$SERVER_CPU" "${cmd[@]}" >"$logf" 2>&1 &
    server_pid=$!
    server_pids+=("$server_pid")
    for _ in $(seq 200); do
      if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
      if [ -n "$(ss -Htln "sport = :$server_port")" ]; then
        case "$name" in  # the runtime must run the driver we asked for, not a fallback
          lbd-*) grep -q "driver ${name#lbd-})" "$logf" || die "$name did not start on ${name#lbd-}: $(cat "$logf")" ;;
        esac
        return 0
      fi
      sleep 0.025
    done
    stop_server
    log "$name did not come up on port $server_port (try $try): $(tail -3 "$logf")"
  done
  die "$name would not start"
}

stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  local kept=() pid
  for pid in "${server_pids[@]}"; do [ "$pid" != "$server_pid" ] && kept+=("$pid"); done
  server_pids=("${kept[@]+"${kept[@]}"}")
}

# --- one run --------------------------------------------------------------------------------
# Appends "workload server round key=value..." to $results.
run_one() {
  local wl="$1" conns="$2" size="$3" name="$4" round="$5"
  local tag="$wl.$name.r$round"
  start_server "$name" "$OUT_DIR/$tag.server.log"
  local out rc=0
  out="$(nice -n "$NICE" taskset -c "$LOADGEN_CPU" "$BUILD_DIR/bench/loadgen" --target "127.0.0.1:$server_port" \
           --connections "$conns" --size "$size" --duration "$DURATION" --warmup "$WARMUP" \
           --io "$LOADGEN_IO" --server-pid "$server_pid" 2>&1)" || rc=$?
  stop_server
  echo "$out" >"$OUT_DIR/$tag.loadgen.log"
  local line
  line="$(grep '^result ' <<<"$out" || true)"
  if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
    log "$tag: load generator failed (exit $rc): $(tail -3 <<<"$out")"
    failures=$((failures + 1))
    return 0
  fi
  echo "$wl $name $round ${line#result }" >>"$results"
  log "$tag: $(grep '^loadgen: ' <<<"$out" | sed 's/^loadgen: [^ ]* //')"
}

# --- report ---------------------------------------------------------------------------------
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }  # value of key $1 in each line of stdin
median() { sort -g | awk '{v[NR]=$1} END {if (NR == 0) print "nan"; else if (NR % 2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
med_of() { grep "^$1 $2 " "$results" | field "$3" | median; }
# Median over rounds of server $2's CPU/msg divided by Asio's in the same round: the servers of
# a round run back to back, so on a machine whose speed drifts this pairs like with like.
paired_ratio() {
  awk -v wl="$1" -v s="$2" '$1 == wl && ($2 == s || $2 == "asio") {
      for (i = 4; i <= NF; ++i) if (split($i, kv, "=") == 2 && kv[1] == "server_cpu_us_per_msg") v[$2, $3] = kv[2]
      rounds[$3] = 1
    } END { for (r in rounds) if (v[s, r] > 0 && v["asio", r] > 0) print v[s, r] / v["asio", r] }' "$results" | median
}

report() {
  echo
  echo "### Echo ping-pong: median of $ROUNDS rounds, ${DURATION}s each (server on CPU $SERVER_CPU, load generator on CPU $LOADGEN_CPU)"
  echo
  echo "| workload | server | msgs/s | server CPU µs/msg | CPU/msg vs Asio | same-round vs Asio | server CPU util | p99 µs | target | met |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---|---|"
  local w wl name rate cpu asio_cpu ratio paired util p99 target met
  for w in "${workloads[@]}"; do
    read -r wl _ _ <<<"$w"
    asio_cpu="$(med_of "$wl" asio server_cpu_us_per_msg)"
    for name in "${servers[@]}"; do
      rate="$(med_of "$wl" "$name" msgs_per_s)"
      cpu="$(med_of "$wl" "$name" server_cpu_us_per_msg)"
      util="$(med_of "$wl" "$name" server_cpu_util)"
      p99="$(med_of "$wl" "$name" p99_us)"
      ratio="$(awk -v a="$cpu" -v b="$asio_cpu" 'BEGIN { if (b + 0 > 0 && a != "nan") printf "%.2fx", a / b; else print "n/a" }')"
      paired="$(paired_ratio "$wl" "$name" | awk '{ if ($1 == "nan") print "n/a"; else printf "%.2fx", $1 }')"
      case "$name" in
        lbd-io_uring) target="<= 0.75x" ;;
        lbd-epoll) target="<= 1.00x" ;;
        *) target="(baseline)" ;;
      esac
      met=""
      if [ "$name" != asio ]; then
        met="$(awk -v r="${ratio%x}" -v t="${target#<= }" 'BEGIN { t += 0; if (r == "n/a") print "n/a"; else print (r + 0 <= t ? "yes" : "no") }')"
      fi
      printf '| %s | %s | %.0f | %.2f | %s | %s | %.0f%% | %.0f | %s | %s |\n' "$wl" "$name" "$rate" "$cpu" "$ratio" "$paired" \
        "$(awk -v u="$util" 'BEGIN { print u * 100 }')" "$p99" "$target" "$met"
    done
  done
  # A server that is not kept busy waits between small batches and pays more per message than a
  # saturated one; io_uring servers suffer most, as their saving is per batch.
  local notes="" idle_rounds
  for w in "${workloads[@]}"; do
    read -r wl _ _ <<<"$w"
    for name in "${servers[@]}"; do
      idle_rounds="$(grep "^$wl $name " "$results" | field server_cpu_util | awk '$1 + 0 < 0.9' | wc -l)"
      if [ "$idle_rounds" -gt 0 ]; then
        notes+="- $wl $name: in $idle_rounds of $ROUNDS rounds the server was busy less than 90% of the time: there the load generator, not the server, set the pace, and the server's CPU/msg is higher than when it is saturated."$'\n'
      fi
    done
  done
  if [ -n "$notes" ]; then
    echo
    printf '%s' "$notes"
  fi
  echo
  echo "Raw runs (msgs/s, server CPU µs/msg, server CPU util, load generator CPU util):"
  echo
  echo '```'
  awk '{
    for (i = 4; i <= NF; ++i) { split($i, kv, "="); f[kv[1]] = kv[2] }
    printf "%-10s %-13s round %s  %9.0f msg/s  %7.3f us/msg  server %3.0f%%  loadgen %3.0f%%\n",
           $1, $2, $3, f["msgs_per_s"], f["server_cpu_us_per_msg"], f["server_cpu_util"] * 100, f["loadgen_cpu_util"] * 100
  }' "$results"
  echo '```'
}

# --- main -----------------------------------------------------------------------------------
mkdir -p "$OUT_DIR"
ensure_packages
build
results="$OUT_DIR/results.txt"
: >"$results"
failures=0

log "kernel $(uname -r), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
log "load average at start: $(cut -d' ' -f1-3 /proc/loadavg); nice $NICE ($(cat /proc/self/autogroup 2>/dev/null || echo 'no autogroup')); raw output in $OUT_DIR"
for w in "${workloads[@]}"; do
  read -r wl conns size <<<"$w"
  for ((round = 1; round <= ROUNDS; ++round)); do
    # Rotate the order each round: round 1 a b c, round 2 b c a, ...
    for ((k = 0; k < ${#servers[@]}; ++k)); do
      name="${servers[$(( (k + round - 1) % ${#servers[@]} ))]}"
      run_one "$wl" "$conns" "$size" "$name" "$round"
    done
  done
done
log "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

report | tee "$OUT_DIR/report.md"
if [ "$failures" -gt 0 ]; then
  die "$failures run(s) failed; see $OUT_DIR"
fi
