#!/bin/sh
# wordcount end to end: the ventilator cuts the text into blocks of whole lines (about 4 KiB),
# two workers count the words of each block with count_words.sh (map), and the sink adds the
# counts per word (reduce). Prints "word<TAB>count" lines sorted by word (bytes, as LC_ALL=C sort).
# Usage: examples/wordcount/run.sh [FILE...]   (default: the GPL-3 and Apache-2.0 licence texts)
# Binaries come from $MTASK_BIN_DIR (default: build/ at the repository root).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
[ $# -gt 0 ] || set -- /usr/share/common-licenses/GPL-3 /usr/share/common-licenses/Apache-2.0
. "$here/../common.sh"

cat -- "$@" > "$tmp/input.txt"
for _ in 1 2; do
  start "$worker" --ventilator "$vent_ep" --sink "$sink_ep" --once -j 2 -- "$here/count_words.sh"
done
start "$ventilator" --ventilator "$vent_ep" --sink "$sink_ep" --block 4k --input "$tmp/input.txt"
vent_pid=$started
start "$sink" --ventilator "$vent_ep" --sink "$sink_ep" --reduce-by-key sum
finish "$vent_pid" "$started"
