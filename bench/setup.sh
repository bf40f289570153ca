#!/bin/sh
# Installs what the benchmarks need besides mtask's own build dependencies (scripts/install-deps.sh):
# GNU parallel and xargs as contenders, GNU time for peak RSS, g++ and libzmq for the reference.
set -eu
if [ "$(id -u)" != 0 ]; then echo "bench/setup.sh: run as root (apt-get)" >&2; exit 1; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends parallel time findutils coreutils mawk python3 g++ libzmq3-dev
