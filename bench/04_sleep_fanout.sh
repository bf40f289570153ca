#!/usr/bin/env bash
# Case 4: 2 000 tasks of 10 ms (`sleep 0.01`) over 50 slots (5 workers x -j 10): makespan against
# the ideal 2 000 x 0.01 s / 50 = 0.4 s, and GNU parallel -j50, xargs -P50 on the same input.
# Target: mtask <= 1.1x the ideal. The same job with `true` instead of `sleep 0.01` shows the floor
# that starting 2 000 processes on this machine sets, sleeping aside.
source "$(dirname "$0")/lib.sh"
bench_init 04_sleep_fanout

N=$(pick 2000 100)
seq 1 "$N" >"$TMP/in"
awk -v n="$N" 'BEGIN { for (i = 0; i < n; i++) print "0.01" }' >"$TMP/in_secs" # for --builtin sleep: each task is its duration
IDEAL=$(awk -v n="$N" 'BEGIN { printf "%.3f", n * 0.01 / 50 }')
G="$N x sleep 0.01, 50 slots"

mtask_sleep() {
  mtask_job ipc 5 "$TMP/in" "$TMP/out" -- -j 10 -- sleep 0.01
  CHECK=; [ -s "$TMP/out" ] && CHECK="unexpected output"; status_of
  record "$G" "mtask 5 workers x -j 10" "$1" "$SECS" "$N" "$STATUS" "$NOTE"
}
mtask_true() {
  mtask_job ipc 5 "$TMP/in" "$TMP/out" -- -j 10 -- true
  CHECK=; [ -s "$TMP/out" ] && CHECK="unexpected output"; status_of
  record "$G" "mtask 5 workers x -j 10, true (floor)" "$1" "$SECS" "$N" "$STATUS" "$NOTE"
}
mtask_builtin() { # the same 10 ms without a process start: dispatch alone
  mtask_job ipc 5 "$TMP/in_secs" "$TMP/out" -- -j 10 --builtin sleep
  CHECK=; [ "$(wc -l <"$TMP/out")" -eq "$N" ] || CHECK="expected $N lines"; status_of
  record "$G" "mtask 5 workers x -j 10, --builtin sleep" "$1" "$SECS" "$N" "$STATUS" "$NOTE"
}
parallel_sleep() { # -N0: read a line per job, pass none of it
  timed "$TMP/out" parallel --will-cite -j50 -N0 sleep 0.01 <"$TMP/in"
  CHECK=; [ -s "$TMP/out" ] && CHECK="unexpected output"; status_of
  record "$G" "parallel -j50" "$1" "$SECS" "$N" "$STATUS" "$NOTE"
}
xargs_sleep() { # -I{} without {} in the command: a line per job, none of it passed
  timed "$TMP/out" xargs -P50 -I{} sleep 0.01 <"$TMP/in"
  CHECK=; [ -s "$TMP/out" ] && CHECK="unexpected output"; status_of
  record "$G" "xargs -P50" "$1" "$SECS" "$N" "$STATUS" "$NOTE"
}

reference "$G" time "$IDEAL"
for ((rep = 1; rep <= REPS; rep++)); do
  alternate "$rep" mtask_sleep mtask_true mtask_builtin parallel_sleep xargs_sleep
done

bench_finish
