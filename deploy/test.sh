#!/usr/bin/env bash
# The README's test command: installs what it needs, then builds and runs the whole suite twice,
# as a Release build and as an ASan+UBSan build.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

bash deploy/bootstrap.sh test
jobs="$(nproc)"

for preset in release asan; do
  echo "=== $preset: configure and build"
  cmake --preset "$preset" -DLBD_BUILD_TESTS=ON -DLBD_BUILD_BENCH=OFF >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  echo "=== $preset: test"
  ctest --preset "$preset" -j "$jobs"
done
echo "=== all tests passed (release and asan)"
