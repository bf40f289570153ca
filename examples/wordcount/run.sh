#!/bin/sh
# wordcount end to end: the ventilator cuts the text into blocks of whole lines (about 4 KiB),
# two workers count the words of each block with count_words.sh (map), and the sink adds the
# counts per word (reduce). Prints "word<TAB>count" lines sorted by word (bytes, as LC_ALL=C sort).
# Usage: examples/wordcount/run.sh [FILE...]   (default: the GPL-3 and Apache-2.0 licence texts)
# Binaries come from $MTASK_BIN_DIR (default: build/ at the repository root).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${MTASK_BIN_DIR:-$root/build}
[ $# -gt 0 ] || set -- /usr/share/common-licenses/GPL-3 /usr/share/common-licenses/Apache-2.0

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

cat -- "$@" > "$tmp/input.txt"
for _ in 1 2; do
  "$worker" --ventilator "$vent_ep" --sink "$sink_ep" --once -j 2 -- "$here/count_words.sh" &
  pids="$pids $!"
done
"$ventilator" --ventilator "$vent_ep" --sink "$sink_ep" --block 4k --input "$tmp/input.txt" &
vent_pid=$!
pids="$pids $vent_pid"
"$sink" --ventilator "$vent_ep" --sink "$sink_ep" --reduce-by-key sum &
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
