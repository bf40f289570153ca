#!/bin/sh
# One job of 09_journal.py's tiny-task case, for timing from outside (farm-bench): N tasks of
# `--builtin echo`, one worker, over ipc, the sink writing --output to a fresh folder with the
# given flags. '@' at the start of a sink argument is that folder. The output is checked.
#   bench/journal_job.sh BUILD_DIR N [SINK_ARG...]
#   farm-bench -n 11 --vs 'bench/journal_job.sh OLD 1000000 --journal @j' -- bench/journal_job.sh build 1000000 --journal @j
set -eu
build=$1 n=$2
shift 2
d=$(mktemp -d "${TMPDIR:-/tmp}/mtask-journal-job-XXXXXX")
trap 'rm -rf "$d"' EXIT
seq 1 "$n" > "$d/in"
args=""
for a in "$@"; do
  case $a in @*) a="$d/${a#@}" ;; esac
  args="$args $a"
done
c="-q --ventilator ipc://$d/v --sink ipc://$d/s"
"$build/worker/mtask-worker" $c --once --builtin echo &
w=$!
# shellcheck disable=SC2086 # the folder has no spaces
"$build/sink/mtask-sink" $c --output "$d/out" $args &
s=$!
"$build/ventilator/mtask-ventilator" $c < "$d/in"
wait $s
wait $w
[ "$(wc -c < "$d/out")" -eq "$(wc -c < "$d/in")" ] || { echo "wrong output" >&2; exit 1; }
