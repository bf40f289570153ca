#!/usr/bin/env bash
# Case 5: skewed tasks on 4 slots: 400 tasks, every 50th (ids 0, 50, ..., 350) sleeps 0.5 s, the
# rest 0.005 s. Makespan against the ideal (total work / 4 slots, at least the longest task), and
# GNU parallel -j4, xargs -P4. Target: mtask <= 1.15x the ideal.
# The long tasks come first in each block of 50, so a dispatcher that hands out tasks in input
# order as slots free up can reach the ideal; the note "greedy in input order" is that bound
# (list scheduling with zero overhead), computed for the input actually used.
source "$(dirname "$0")/lib.sh"
bench_init 05_skew

N=$(pick 400 40)
LONG=$(pick 0.5 0.1)
SHORT=0.005
SLOTS=4
awk -v n="$N" -v l="$LONG" -v s="$SHORT" 'BEGIN { for (i = 0; i < n; i++) print (i % 50 == 0 ? l : s) }' \
  >"$TMP/in"
read -r IDEAL GREEDY < <("$PY" - "$TMP/in" "$SLOTS" <<'PYEOF'
import heapq, sys
tasks = [float(x) for x in open(sys.argv[1])]
slots = int(sys.argv[2])
ideal = max(sum(tasks) / slots, max(tasks))
free = [0.0] * slots  # greedy: each task in input order to the slot that frees first
for t in tasks:
    heapq.heappush(free, heapq.heappop(free) + t)
print(f"{ideal:.3f} {max(free):.3f}")
PYEOF
)
G="$N tasks, every 50th ${LONG} s, 4 slots"

mtask_skew() {
  mtask_job ipc 1 "$TMP/in" "$TMP/out" -- -j "$SLOTS" -- sleep {}
  CHECK=; [ -s "$TMP/out" ] && CHECK="unexpected output"; status_of
  record "$G" "mtask -j 4" "$1" "$SECS" "$N" "$STATUS" "$NOTE"
}
mtask_skew_2x2() {
  mtask_job ipc 2 "$TMP/in" "$TMP/out" -- -j 2 -- sleep {}
  CHECK=; [ -s "$TMP/out" ] && CHECK="unexpected output"; status_of
  record "$G" "mtask 2 workers x -j 2" "$1" "$SECS" "$N" "$STATUS" "$NOTE"
}
mtask_skew_builtin() { # the same durations without a process start: scheduling alone
  mtask_job ipc 1 "$TMP/in" "$TMP/out" -- -j "$SLOTS" --builtin sleep
  CHECK=; [ "$(wc -l <"$TMP/out")" -eq "$N" ] || CHECK="expected $N lines"; status_of
  record "$G" "mtask -j 4, --builtin sleep" "$1" "$SECS" "$N" "$STATUS" "$NOTE"
}
parallel_skew() {
  timed "$TMP/out" parallel --will-cite -j"$SLOTS" sleep <"$TMP/in"
  CHECK=; [ -s "$TMP/out" ] && CHECK="unexpected output"; status_of
  record "$G" "parallel -j4" "$1" "$SECS" "$N" "$STATUS" "$NOTE"
}
xargs_skew() {
  timed "$TMP/out" xargs -P"$SLOTS" -n1 sleep <"$TMP/in"
  CHECK=; [ -s "$TMP/out" ] && CHECK="unexpected output"; status_of
  record "$G" "xargs -P4" "$1" "$SECS" "$N" "$STATUS" "$NOTE"
}

reference "$G" time "$IDEAL"
note "$G" "ideal: max(total / 4, longest)" "$IDEAL s"
note "$G" "greedy in input order, zero overhead" "$GREEDY s"
for ((rep = 1; rep <= REPS; rep++)); do
  alternate "$rep" mtask_skew mtask_skew_2x2 parallel_skew xargs_skew mtask_skew_builtin
done

bench_finish
