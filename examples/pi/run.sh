#!/bin/sh
# pi end to end: WORKERS pi_worker processes (2 threads each) estimate pi from TASKS seeds of
# POINTS points each; mtask-sink --reduce mean prints the estimate on stdout.
# Usage: examples/pi/run.sh [TASKS [WORKERS [POINTS]]]   (defaults: 200 2 1048576)
# Binaries come from $MTASK_BIN_DIR (default: build/ at the repository root).
set -eu
tasks=${1:-200}
workers=${2:-2}
points=${3:-1048576}
. "$(dirname "$0")/../common.sh"
pi_worker=$(find_bin pi_worker examples/pi)
# A bad --points would only show when the workers start, and the ventilator would then wait a
# minute for a worker: check it now.
"$pi_worker" --points "$points" --version > /dev/null

i=0
while [ "$i" -lt "$workers" ]; do
  start "$pi_worker" --ventilator "$vent_ep" --sink "$sink_ep" --once -j 2 --points "$points"
  i=$((i + 1))
done
start "$ventilator" --ventilator "$vent_ep" --sink "$sink_ep" --range "1:$tasks"
vent_pid=$started
start "$sink" --ventilator "$vent_ep" --sink "$sink_ep" --reduce mean
finish "$vent_pid" "$started"
