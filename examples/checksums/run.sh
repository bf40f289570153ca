#!/bin/sh
# checksums end to end: one task per file, a worker running `sha256sum FILE` four at a time, and
# the sink writing the results in the order of the list, so the output is exactly what
# `sha256sum FILE...` prints. Usage: examples/checksums/run.sh [DIR]
# (default /usr/share/common-licenses; every regular file under DIR, sorted by name).
# Binaries come from $MTASK_BIN_DIR (default: build/ at the repository root).
set -eu
dir=${1:-/usr/share/common-licenses}
. "$(dirname "$0")/../common.sh"

# The list of files, each name ended by a NUL byte (-print0), so that any name works, even one
# with spaces or a newline in it; the ventilator reads it with -0.
find "$dir" -type f -print0 | LC_ALL=C sort -z > "$tmp/files"

start "$worker" --ventilator "$vent_ep" --sink "$sink_ep" --once -j 4 -- sha256sum {}
start "$ventilator" --ventilator "$vent_ep" --sink "$sink_ep" -0 --input "$tmp/files"
vent_pid=$started
start "$sink" --ventilator "$vent_ep" --sink "$sink_ep" -k
finish "$vent_pid" "$started"
