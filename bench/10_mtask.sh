#!/usr/bin/env bash
# Case 10: `mtask`, the whole job in one command (issue 13), against the three binaries started by
# hand on ipc, as the other cases start them: the same worker slots (-j 2), the same tasks. A 1-task
# job (start-up and shutdown: mtask adds a fork per role and its private folder) and 1 M
# `--builtin echo` tasks (`--range 1:1000000`). Target: equal within noise (ratio ~1.0).
source "$(dirname "$0")/lib.sh"
bench_init 10_mtask
MTASK=$MTASK_BIN/mtask
if [ ! -x "$MTASK" ]; then log "bench: $MTASK is missing: build the mtask target"; exit 1; fi

N=$(pick 1000000 1000)
SLOTS=2

by_hand() { # N LABEL REP
  mtask_job ipc 1 "" "$TMP/out" --range "1:$1" -- --builtin echo -j "$SLOTS"
  check_seq "$TMP/out" "$1"; status_of
  record "$GROUP" "three binaries by hand" "$3" "$SECS" "$1" "$STATUS" "$NOTE"
}
one_command() { # N LABEL REP
  timed "$TMP/out" "$MTASK" -q -j "$SLOTS" --range "1:$1" --builtin echo
  check_seq "$TMP/out" "$1"; status_of
  record "$GROUP" "mtask" "$3" "$SECS" "$1" "$STATUS" "$NOTE"
}

GROUP="1 task (job latency), ipc"
reference "$GROUP" time "three binaries by hand"
hand_1() { by_hand 1 "" "$1"; }
mtask_1() { one_command 1 "" "$1"; }
for ((rep = 1; rep <= REPS; rep++)); do alternate "$rep" hand_1 mtask_1; done

GROUP="$N x --builtin echo, ipc, -j $SLOTS"
reference "$GROUP" rate "three binaries by hand"
hand_n() { by_hand "$N" "" "$1"; }
mtask_n() { one_command "$N" "" "$1"; }
for ((rep = 1; rep <= REPS; rep++)); do alternate "$rep" hand_n mtask_n; done

bench_finish
