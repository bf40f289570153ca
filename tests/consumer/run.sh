#!/bin/sh
# Installs the mtask build tree ($1) into a scratch prefix, builds the consumer project against
# it with find_package(mtask), and runs a real job with it: the sum of the squares of 1..100.
set -eu
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'kill $worker 2>/dev/null || true; rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$here" -B "$work/consumer" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/consumer" >/dev/null
ep="--ventilator ipc://$work/vent --sink ipc://$work/sink"
"$work/consumer/square_worker" $ep -j 2 --once & worker=$!
"$work/prefix/bin/mtask-ventilator" $ep --range 1:100 & vent=$!
got=$("$work/prefix/bin/mtask-sink" $ep --reduce sum)
wait $vent
want=338350
if [ "$got" != "$want" ]; then
  echo "consumer: expected $want, got '$got'" >&2
  exit 1
fi
echo "consumer: installed package works: sum of squares 1..100 = $got"
