#!/bin/sh
# persistent-framed end to end: two workers keep one squares.py process per slot and talk to it in
# framed records (--persistent=framed); each task is LINES lines of the input, each answer as many
# lines; the sink writes the answers in input order.
# Usage: examples/persistent-framed/run.sh [FILE [LINES]]   (defaults: the numbers 1 to 10, 4)
# Binaries come from $MTASK_BIN_DIR (default: build/ at the repository root).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
lines=${2:-4}
. "$here/../common.sh"

if [ $# -gt 0 ]; then
  input=$1
else
  seq 1 10 > "$tmp/input"
  input=$tmp/input
fi
for _ in 1 2; do
  start "$worker" --ventilator "$vent_ep" --sink "$sink_ep" --once -j 2 --persistent=framed -- python3 "$here/squares.py"
done
start "$ventilator" --ventilator "$vent_ep" --sink "$sink_ep" -N "$lines" --input "$input"
vent_pid=$started
start "$sink" --ventilator "$vent_ep" --sink "$sink_ep" -k
finish "$vent_pid" "$started"
