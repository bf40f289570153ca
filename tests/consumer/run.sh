#!/bin/sh
# Installs the mtask build tree ($1) into a scratch prefix, builds the consumer project against
# it with find_package(mtask) (public_api.cpp fails to compile if an installed header pulls in
# ZeroMQ, fmt, CLI11 or msgpack), checks that only the public headers are installed, and runs
# a real job with it: the sum of the squares of 1..100.
set -eu
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'kill $worker 2>/dev/null || true; rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$here" -B "$work/consumer" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/consumer" >/dev/null
# Only the public API is installed: no internals (the ledger, the cores, the socket policy).
headers=$(cd "$work/prefix/include/mtask" && ls | tr '\n' ' ')
want_headers="aggregator.hpp error.hpp exit_code.hpp options.hpp sink.hpp ventilator.hpp worker.hpp "
if [ "$headers" != "$want_headers" ]; then
  echo "consumer: installed headers are '$headers', expected '$want_headers'" >&2
  exit 1
fi
"$work/consumer/public_api"
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
