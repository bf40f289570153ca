#!/usr/bin/env bash
# Case 7: scaling over worker processes. The same CPU-bound task (a `sh -c` busy loop of about
# 20 ms that prints its count) with 1 and 2 mtask workers of one slot each:
# efficiency = (time with 1 / time with 2) / 2. xargs -P1 / -P2 on the same task says what this
# machine allows (2 cores, shared with the ventilator and the sink).
source "$(dirname "$0")/lib.sh"
bench_init 07_scaling

N=$(pick 150 10)
LOOP=20000
TASK=(sh -c "i=0; while [ \$i -lt $LOOP ]; do i=\$((i+1)); done; echo \$i")
seq 1 "$N" >"$TMP/in"
awk -v n="$N" -v l="$LOOP" 'BEGIN { for (i = 0; i < n; i++) print l }' >"$TMP/want"
G="$N x ~20 ms busy loop"

mtask_1() {
  mtask_job ipc 1 "$TMP/in" "$TMP/out" -- -j 1 -- "${TASK[@]}"
  check_same_lines "$TMP/out" "$TMP/want"; status_of
  record "$G" "mtask, 1 worker" "$1" "$SECS" "$N" "$STATUS" "$NOTE"
}
mtask_2() {
  mtask_job ipc 2 "$TMP/in" "$TMP/out" -- -j 1 -- "${TASK[@]}"
  check_same_lines "$TMP/out" "$TMP/want"; status_of
  record "$G" "mtask, 2 workers" "$1" "$SECS" "$N" "$STATUS" "$NOTE"
}
xargs_1() {
  timed "$TMP/out" xargs -P1 -n1 "${TASK[@]}" <"$TMP/in"
  check_same_lines "$TMP/out" "$TMP/want"; status_of
  record "$G" "xargs -P1" "$1" "$SECS" "$N" "$STATUS" "$NOTE"
}
xargs_2() {
  timed "$TMP/out" xargs -P2 -n1 "${TASK[@]}" <"$TMP/in"
  check_same_lines "$TMP/out" "$TMP/want"; status_of
  record "$G" "xargs -P2" "$1" "$SECS" "$N" "$STATUS" "$NOTE"
}

reference "$G" time "mtask, 1 worker"
for ((rep = 1; rep <= REPS; rep++)); do
  alternate "$rep" mtask_1 mtask_2 xargs_1 xargs_2
done

efficiency() {
  local one two
  one=$(median_of "$G" "$1") two=$(median_of "$G" "$2")
  if [ -n "$one" ] && [ -n "$two" ]; then
    awk -v a="$one" -v b="$two" 'BEGIN { printf "%.2f (%.3f s / %.3f s / 2)", a / b / 2, a, b }'
  else
    echo "-"
  fi
}
note "$G" "mtask efficiency, 2 workers" "$(efficiency "mtask, 1 worker" "mtask, 2 workers")"
note "$G" "xargs efficiency, -P2" "$(efficiency "xargs -P1" "xargs -P2")"

bench_finish
