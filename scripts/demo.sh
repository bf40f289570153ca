#!/bin/sh
# Installs dependencies, builds mtask, and runs a real job end to end: two workers, a ventilator
# and a sink on one machine, upper-casing a text, checked against the same job done by `tr`.
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh build
B=build
tmp=$(mktemp -d)
trap 'kill $W1 $W2 2>/dev/null; rm -rf "$tmp"' EXIT
VENT="ipc://$tmp/vent"
SINK="ipc://$tmp/sink"
for f in /usr/share/common-licenses/GPL-3 /usr/share/common-licenses/Apache-2.0; do cat "$f"; done > "$tmp/input.txt"
$B/worker/mtask-worker --ventilator "$VENT" --sink "$SINK" -j 2 -- tr a-z A-Z & W1=$!
$B/worker/mtask-worker --ventilator "$VENT" --sink "$SINK" -j 2 -- tr a-z A-Z & W2=$!
$B/ventilator/mtask-ventilator --ventilator "$VENT" --sink "$SINK" --input "$tmp/input.txt" & V=$!
$B/sink/mtask-sink --ventilator "$VENT" --sink "$SINK" --keep-order > "$tmp/out.txt"
wait $V
tr a-z A-Z < "$tmp/input.txt" > "$tmp/want.txt"
lines=$(wc -l < "$tmp/input.txt")
if cmp -s "$tmp/out.txt" "$tmp/want.txt"; then
  echo "demo: $lines tasks (one per line) through 2 workers x 2 slots: output identical to tr a-z A-Z"
  head -5 "$tmp/out.txt"
else
  echo "demo: output differs from the reference" >&2
  exit 1
fi
