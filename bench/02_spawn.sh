#!/usr/bin/env bash
# Case 2: one process per task. `true` and `echo {}` run once per input line, 2 at a time:
# mtask (`mtask-worker -j 2 -- CMD`) against GNU parallel -j2 and xargs -P2 -n1.
# Target: mtask >= 3x GNU parallel's tasks/s.
source "$(dirname "$0")/lib.sh"
bench_init 02_spawn

N=$(pick 1500 100)
seq 1 "$N" >"$TMP/in"

# true: the output is empty for every contender; the exit status is the check.
mtask_true() {
  mtask_job ipc 1 "$TMP/in" "$TMP/out" -- -j 2 -- true
  CHECK=; [ -s "$TMP/out" ] && CHECK="unexpected output"; status_of
  record "true" "mtask -j 2 -- true" "$1" "$SECS" "$N" "$STATUS" "$NOTE"
}
parallel_true() {
  timed "$TMP/out" parallel --will-cite -j2 true <"$TMP/in"
  CHECK=; [ -s "$TMP/out" ] && CHECK="unexpected output"; status_of
  record "true" "parallel -j2 true" "$1" "$SECS" "$N" "$STATUS" "$NOTE"
}
xargs_true() {
  timed "$TMP/out" xargs -P2 -n1 true <"$TMP/in"
  CHECK=; [ -s "$TMP/out" ] && CHECK="unexpected output"; status_of
  record "true" "xargs -P2 -n1 true" "$1" "$SECS" "$N" "$STATUS" "$NOTE"
}
# echo {}: every input line comes back once, in any order.
mtask_echo() {
  mtask_job ipc 1 "$TMP/in" "$TMP/out" -- -j 2 -- echo {}
  check_same_lines "$TMP/out" "$TMP/in"; status_of
  record "echo {}" "mtask -j 2 -- echo {}" "$1" "$SECS" "$N" "$STATUS" "$NOTE"
}
parallel_echo() {
  timed "$TMP/out" parallel --will-cite -j2 echo {} <"$TMP/in"
  check_same_lines "$TMP/out" "$TMP/in"; status_of
  record "echo {}" "parallel -j2 echo {}" "$1" "$SECS" "$N" "$STATUS" "$NOTE"
}
xargs_echo() {
  timed "$TMP/out" xargs -P2 -n1 echo <"$TMP/in"
  check_same_lines "$TMP/out" "$TMP/in"; status_of
  record "echo {}" "xargs -P2 -n1 echo" "$1" "$SECS" "$N" "$STATUS" "$NOTE"
}

reference "true" rate "parallel -j2 true"
reference "echo {}" rate "parallel -j2 echo {}"
for ((rep = 1; rep <= REPS; rep++)); do
  alternate "$rep" mtask_true parallel_true xargs_true
  alternate "$rep" mtask_echo parallel_echo xargs_echo
done

bench_finish
