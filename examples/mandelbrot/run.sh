#!/bin/sh
# mandelbrot end to end: one task per image row (0 to HEIGHT-1), three mandelbrot_worker processes
# (2 threads each) render rows, and the sink writes them in row order (-k) after the plain PGM
# header printed here. Writes the PGM image on stdout.
# Usage: examples/mandelbrot/run.sh [WIDTH HEIGHT]   (default 400 300)
# Binaries come from $MTASK_BIN_DIR (default: build/ at the repository root).
set -eu
width=${1:-400}
height=${2:-300}
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${MTASK_BIN_DIR:-$root/build}

# Prints the path of binary $1, looked for in $bin/$2/ and then in $bin/.
find_bin() {
  for f in "$bin/$2/$1" "$bin/$1"; do
    if [ -x "$f" ]; then echo "$f"; return 0; fi
  done
  echo "run.sh: $1 not found under $bin (build first, or set MTASK_BIN_DIR)" >&2
  return 1
}
ventilator=$(find_bin mtask-ventilator ventilator)
sink=$(find_bin mtask-sink sink)
mandelbrot_worker=$(find_bin mandelbrot_worker examples/mandelbrot)
# A bad size would only show when the workers start, and the ventilator would then wait a minute
# for a worker: check it now.
"$mandelbrot_worker" --size "${width}x$height" --version > /dev/null

tmp=$(mktemp -d)
pids= # processes to stop on exit
# shellcheck disable=SC2317 # (run by the EXIT trap)
cleanup() {
  # $! too: a signal may come between starting a process and adding it to $pids.
  for pid in $pids ${!:-}; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
vent_ep="ipc://$tmp/vent"
sink_ep="ipc://$tmp/sink"

for _ in 1 2 3; do
  "$mandelbrot_worker" --ventilator "$vent_ep" --sink "$sink_ep" --once -j 2 --size "${width}x$height" &
  pids="$pids $!"
done
"$ventilator" --ventilator "$vent_ep" --sink "$sink_ep" --range "0:$((height - 1))" &
vent_pid=$!
pids="$pids $vent_pid"
printf 'P2\n%d %d\n255\n' "$width" "$height"
"$sink" --ventilator "$vent_ep" --sink "$sink_ep" -k &
sink_pid=$!
pids="$pids $sink_pid"

# Everything runs in the background and the script waits: a signal to the script (Ctrl-C) then
# runs the EXIT trap at once, which stops whatever is still running. The job is done, and its
# result written, once the sink and the ventilator have exited 0. Workers started with --once exit
# by themselves then, except one that had not reached the ventilator before the job ended: that
# one would wait for ever (an mtask limitation), so the EXIT trap stops any still running.
status=0
wait "$sink_pid" || status=$?
wait "$vent_pid" || status=$?
exit "$status"
