#!/usr/bin/env bash
# Installs the Debian packages lbd needs, skipping what is already installed.
#   deploy/bootstrap.sh build   # compile lbd
#   deploy/bootstrap.sh test    # build + what the test suite uses
#   deploy/bootstrap.sh bench   # test + nginx, haproxy, wrk, h2load, Boost (comparison peers)
# Idempotent: running it twice installs nothing the second time. Needs root (or sudo).
set -euo pipefail

what="${1:-build}"
build_pkgs=(g++ cmake ninja-build pkg-config git liburing-dev libyaml-cpp-dev libspdlog-dev libcli11-dev
            node-llhttp nlohmann-json3-dev libssl-dev)
test_pkgs=(libgtest-dev libgmock-dev googletest libbenchmark-dev curl nghttp2-client procps
           prometheus chromium openssl)
bench_pkgs=(nginx-light libnginx-mod-stream haproxy wrk libboost-dev linux-perf util-linux python3)

pkgs=("${build_pkgs[@]}")
case "$what" in
  build) ;;
  test) pkgs+=("${test_pkgs[@]}") ;;
  bench|all) pkgs+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  *) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "bootstrap: all ${#pkgs[@]} packages for '$what' are installed"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "bootstrap: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
