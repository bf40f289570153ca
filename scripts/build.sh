#!/bin/sh
# Configures and builds mtask into build/ (or $1), warnings as errors. Extra args go to cmake.
set -eu
cd "$(dirname "$0")/.."
dir=${1:-build}
[ $# -gt 0 ] && shift
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMTASK_WERROR=ON "$@" >/dev/null
cmake --build "$dir" -j "$(nproc)"
