#!/bin/sh
# checksums end to end: one task per file, a worker running `sha256sum FILE` four at a time, and
# the sink writing the results in the order of the list, so the output is exactly what
# `sha256sum FILE...` prints. Usage: examples/checksums/run.sh [DIR]
# (default /usr/share/common-licenses; every regular file under DIR, sorted by name).
# Binaries come from $MTASK_BIN_DIR (default: build/ at the repository root).
set -eu
dir=${1:-/usr/share/common-licenses}
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
worker=$(find_bin mtask-worker worker)
sink=$(find_bin mtask-sink sink)

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

# The list of files, each name ended by a NUL byte (-print0), so that any name works, even one
# with spaces or a newline in it; the ventilator reads it with -0.
find "$dir" -type f -print0 | LC_ALL=C sort -z > "$tmp/files"

"$worker" --ventilator "$vent_ep" --sink "$sink_ep" --once -j 4 -- sha256sum {} &
pids=$!
"$ventilator" --ventilator "$vent_ep" --sink "$sink_ep" -0 --input "$tmp/files" &
vent_pid=$!
pids="$pids $vent_pid"
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
