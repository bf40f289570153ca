#!/bin/sh
# Builds the wire-decoder fuzzer with clang (libFuzzer + ASan + UBSan) and runs it for
# ${1:-30} seconds on the committed corpus (tests/fuzz/corpus). New inputs go to a scratch
# directory; `./scripts/fuzz.sh 600 --merge` folds the interesting ones back into the corpus.
set -eu
cd "$(dirname "$0")/.."
seconds=${1:-30}
out=build-fuzz
mkdir -p "$out/new"
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Ilib/include -Ilib/src \
  tests/fuzz/wire_fuzz.cpp lib/src/protocol/wire.cpp -lfmt -o "$out/wire_fuzz"
status=0
"$out/wire_fuzz" -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=1024 -print_final_stats=1 \
  "$out/new" tests/fuzz/corpus > "$out/fuzz.log" 2>&1 || status=$?
tail -15 "$out/fuzz.log"
if [ "$status" -ne 0 ]; then
  echo "fuzz: the wire decoder failed (exit $status); the crashing input is named above" >&2
  exit "$status"
fi
if [ "${2:-}" = "--merge" ]; then
  "$out/wire_fuzz" -merge=1 tests/fuzz/corpus "$out/new"
fi
