#!/usr/bin/env bash
# The README's run command. On a fresh Debian bookworm machine, as root, from anywhere:
#   bash deploy/quickstart.sh
# It installs the build dependencies (deploy/bootstrap.sh build), builds lbd and the demo
# backend (Release, build/release), starts two demo backends on 127.0.0.1:9001 and :9002, and
# runs lbd in the foreground with deploy/lb.example.yaml. Ctrl-C stops lbd (SIGINT) and the
# backends are stopped with it.
#
# Environment: LBD_IO=epoll forces the epoll driver (lbd and the backends); JOBS=N sets the
# build parallelism; LBD_BUILD_DIR=DIR builds somewhere else than build/release (same preset).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
config="deploy/lb.example.yaml"
build="${LBD_BUILD_DIR:-build/release}"
backends=("9001 backend-1" "9002 backend-2")

say() { printf 'quickstart: %s\n' "$*"; }
die() { printf 'quickstart: %s\n' "$*" >&2; exit 1; }

# True when something accepts TCP connections on 127.0.0.1:$1 (bash's /dev/tcp: no nc needed).
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- 1. dependencies and build ---------------------------------------------------------------
bash deploy/bootstrap.sh build
say "configuring and building (Release, tests and benchmarks off) in $build"
# Tests and benchmarks are off: their packages are not installed by `bootstrap.sh build`.
cmake --preset release -B "$build" -DLBD_BUILD_TESTS=OFF -DLBD_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j "${JOBS:-$(nproc)}" --target lbd http_hello
lbd="$build/cmd/lbd"
hello="$build/runtime/examples/http_hello"

# --- 2. check the config -------------------------------------------------------------------
# `lbd -t` validates the file and summarises it; its "listener NAME ADDRESS PROTOCOL" lines are
# where the hints below get their addresses, so they stay true when the config changes.
summary="$("$lbd" -t --config "$config")" || { printf '%s\n' "$summary"; die "$config is not valid"; }
printf '%s\n' "$summary"
listeners="$(awk '$1 == "listener" {print $4, $3, $2}' <<<"$summary")"
admin="$(sed -n 's/^.*, admin \([^ ,]*\).*$/\1/p' <<<"$summary" | head -n 1)"

# --- 3. demo backends --------------------------------------------------------------------------
pids=()     # the backends
lbd_pid=""
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  local pid
  [ -z "$lbd_pid" ] || kill -TERM "$lbd_pid" 2>/dev/null || true
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

for spec in "${backends[@]}"; do
  read -r port id <<<"$spec"
  port_open "$port" && die "127.0.0.1:$port is already in use (an earlier quick start still running?)"
  "$hello" --port "$port" --id "$id" &
  pids+=("$!")
done
# Wait (bounded) until both accept connections; a backend that exited has failed to start.
for spec in "${backends[@]}"; do
  read -r port id <<<"$spec"
  for _ in $(seq 50); do
    port_open "$port" && break
    sleep 0.1
  done
  port_open "$port" || die "backend $id did not start on 127.0.0.1:$port"
done

# --- 4. lbd in the foreground ------------------------------------------------------------------
cat <<EOF

quickstart: backends 127.0.0.1:9001 (backend-1) and 127.0.0.1:9002 (backend-2) are up.
quickstart: starting lbd with $config. In another terminal, try:
EOF
hint() { printf '  %-32s # %s\n' "$1" "$2"; }
while read -r proto addr name; do
  case "$proto" in
    http) hint "curl http://$addr/" "listener $name (HTTP/1.1)" ;;
    tcp)  hint "nc ${addr%:*} ${addr##*:}" "listener $name (TCP); type GET / HTTP/1.0, Enter twice"
          hint "curl http://$addr/" "the same TCP listener, relaying curl's bytes" ;;
  esac
done <<<"$listeners"
if [[ -n "$admin" && "$admin" != unix:* ]]; then
  hint "curl http://$admin/metrics" "the admin listener: Prometheus metrics (also /stats, /ready)"
  hint "http://$admin/status" "the live status page, in a browser"
fi
cat <<EOF
Each answer names the backend that served it ("hello from backend-1").
Ctrl-C stops lbd at once (SIGINT) and then the backends; SIGTERM to this script drains first,
SIGHUP reloads $config. lbd's log follows.

EOF

# lbd runs as a child so that this script can pass signals on and still clean up after it.
"$lbd" --config "$config" &
lbd_pid=$!
for sig in INT TERM HUP USR1; do
  # shellcheck disable=SC2064  # expanded now on purpose: the signal and pid are fixed
  trap "kill -$sig $lbd_pid 2>/dev/null || true" "$sig"
done
while :; do
  # `wait` also returns when a trapped signal arrives; only a finished lbd ends the loop (a
  # zombie still answers kill -0, so its exit status is collected by the next wait).
  status=0
  wait "$lbd_pid" || status=$?
  kill -0 "$lbd_pid" 2>/dev/null || break
done
lbd_pid=""
exit "$status"
