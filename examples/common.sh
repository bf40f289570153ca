# Shared by the examples' run.sh scripts (sourced, POSIX sh): where the binaries are, a scratch
# directory with the job's two ipc:// endpoints, starting processes in the background, and
# stopping whatever still runs when the script exits (Ctrl-C included).
# Sets: root, bin, tmp, vent_ep, sink_ep, ventilator, worker, sink.
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

# start CMD [ARG...]: runs it in the background, to be stopped on exit; its pid is in $started.
start() {
  "$@" &
  started=$!
  pids="$pids $started"
}

# finish VENT_PID SINK_PID: waits for the sink and the ventilator and exits with the job's status
# (0, or 3 when some task failed). Everything runs in the background so that a signal to the
# script runs the EXIT trap at once. --once workers exit by themselves when the job is complete;
# the trap stops any that are still waiting (one that reached the ventilator too late).
finish() {
  status=0
  wait "$2" || status=$?
  wait "$1" || status=$?
  exit "$status"
}
