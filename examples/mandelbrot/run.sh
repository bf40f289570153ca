#!/bin/sh
# mandelbrot end to end: one task per image row (0 to HEIGHT-1), three mandelbrot_worker processes
# (2 threads each) render rows, and the sink writes them in row order (-k) after the plain PGM
# header printed here. Writes the PGM image on stdout.
# Usage: examples/mandelbrot/run.sh [WIDTH HEIGHT]   (default 400 300)
# Binaries come from $MTASK_BIN_DIR (default: build/ at the repository root).
set -eu
width=${1:-400}
height=${2:-300}
. "$(dirname "$0")/../common.sh"
mandelbrot_worker=$(find_bin mandelbrot_worker examples/mandelbrot)
# A bad size would only show when the workers start, and the ventilator would then wait a minute
# for a worker: check it now.
"$mandelbrot_worker" --size "${width}x$height" --version > /dev/null

for _ in 1 2 3; do
  start "$mandelbrot_worker" --ventilator "$vent_ep" --sink "$sink_ep" --once -j 2 --size "${width}x$height"
done
start "$ventilator" --ventilator "$vent_ep" --sink "$sink_ep" --range "0:$((height - 1))"
vent_pid=$started
printf 'P2\n%d %d\n255\n' "$width" "$height"
start "$sink" --ventilator "$vent_ep" --sink "$sink_ep" -k
finish "$vent_pid" "$started"
