#!/usr/bin/env bash
# Case 3: a line-oriented filter. mtask's planned persistent mode (one long-lived filter process
# per slot, a task a line) against GNU parallel starting the filter once per line
# (`parallel -q -j2 --pipe -N1 FILTER`; -q: no shell in between). mtask's per-task mode runs too.
# Target: mtask --persistent >= 50x GNU parallel's tasks/s.
# --persistent is not built yet: its row reads "not built yet" until `mtask-worker --help`
# mentions it. The flags it is run with are a guess, in PERSISTENT_FLAGS.
source "$(dirname "$0")/lib.sh"
bench_init 03_persistent

N_SPAWN=$(pick 500 50)          # a process per line: GNU parallel and mtask's per-task mode
N_PERSIST=$(pick 100000 500)    # a process per slot
PERSISTENT_FLAGS=(--persistent -j 2)
FILTER=(sed -u 's/.*/<&>/')     # -u: one output line per input line, flushed at once
seq 1 "$N_SPAWN" >"$TMP/in.spawn"
seq 1 "$N_PERSIST" >"$TMP/in.persist"
"${FILTER[@]}" <"$TMP/in.spawn" >"$TMP/want.spawn"
"${FILTER[@]}" <"$TMP/in.persist" >"$TMP/want.persist"
G="filter (sed -u)"

mtask_persistent() {
  if ! "$WORKER" --help | grep -q -- --persistent; then
    record "$G" "mtask ${PERSISTENT_FLAGS[*]} -- sed -u" "$1" 0 "$N_PERSIST" na "not built yet"
    return
  fi
  mtask_job ipc 1 "$TMP/in.persist" "$TMP/out" -- "${PERSISTENT_FLAGS[@]}" -- "${FILTER[@]}"
  check_same_lines "$TMP/out" "$TMP/want.persist"; status_of
  record "$G" "mtask ${PERSISTENT_FLAGS[*]} -- sed -u" "$1" "$SECS" "$N_PERSIST" "$STATUS" "$NOTE"
}
mtask_per_task() {
  mtask_job ipc 1 "$TMP/in.spawn" "$TMP/out" -- -j 2 -- "${FILTER[@]}"
  check_same_lines "$TMP/out" "$TMP/want.spawn"; status_of
  record "$G" "mtask -j 2 -- sed -u (per task)" "$1" "$SECS" "$N_SPAWN" "$STATUS" "$NOTE"
}
parallel_pipe() {
  timed "$TMP/out" parallel --will-cite -q -j2 --pipe -N1 "${FILTER[@]}" <"$TMP/in.spawn"
  check_same_lines "$TMP/out" "$TMP/want.spawn"; status_of
  record "$G" "parallel -j2 --pipe -N1 sed -u" "$1" "$SECS" "$N_SPAWN" "$STATUS" "$NOTE"
}

reference "$G" rate "parallel -j2 --pipe -N1 sed -u"
for ((rep = 1; rep <= REPS; rep++)); do
  alternate "$rep" mtask_persistent mtask_per_task parallel_pipe
done

bench_finish
