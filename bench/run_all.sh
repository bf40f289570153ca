#!/usr/bin/env bash
# Runs every bench/NN_*.sh in order (SMOKE=1: the tiny versions, for CI) and prints their
# tables; exits 1 if any case failed. All cases measure one snapshot of the mtask binaries.
set -uo pipefail
cd "$(dirname "$0")"
source ./lib.sh
build_refs
snapshot_mtask
echo "# mtask benchmarks, $(date -u +%FT%TZ), SMOKE=$SMOKE REPS=$REPS"
echo "# $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); $(uname -sr)"
echo "# mtask: $("$MTASK_BIN/mtask-worker" --version), git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- lib ventilator worker sink 2>/dev/null || echo ' + uncommitted changes'), binaries copied from ${MTASK_BUILD:-$ROOT/build} (built $(date -u -r "${MTASK_BUILD:-$ROOT/build}/worker/mtask-worker" +%FT%TZ))"
rc=0
start=$SECONDS
for script in [0-9][0-9]_*.sh; do
  ./"$script" || rc=1
done
echo "# $((SECONDS - start)) s in all; exit $rc"
exit "$rc"
