#!/bin/sh
# Installs dependencies, builds with warnings as errors and runs every test; then runs the whole
# suite again under AddressSanitizer + UBSan, and fuzzes the wire decoder for 30 seconds; checks
# the C++ layout (.clang-format) first.
# This is what .ci/run calls.
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
# Layout first: it takes a second and says exactly which file is off.
clang-format --dry-run --Werror $(git ls-files '*.cpp' '*.hpp')
./scripts/build.sh build
ctest --test-dir build --output-on-failure -j 2
if [ "${MTASK_SKIP_SANITIZERS:-0}" != 1 ]; then
  ./scripts/build.sh build-asan -DCMAKE_BUILD_TYPE=Debug -DMTASK_SANITIZE=ON
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j 2
fi
./scripts/fuzz.sh 30
# The benchmarks, tiny, so they do not rot: exits non-zero if any contender's output is wrong.
bench/setup.sh >/dev/null
SMOKE=1 bench/run_all.sh
echo "all tests passed"
