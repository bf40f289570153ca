#!/usr/bin/env bash
# Case 11: what watching a job costs (issue 12): `mtask` with --joblog FILE --stats FILE against
# the same job without them, on tiny tasks (1 M `--builtin echo`: every result then carries its
# start time, payload size and command, and the sink formats a joblog line) and on 1 ms tasks
# (`--builtin sleep` of 0.001 s, 2 slots). Target: at most 5 % on tasks of 1 ms; the tiny-task
# figure is reported as it is. The flags-off cost against the previous protocol is measured with
# farm-bench by hand (see RESULTS.md).
source "$(dirname "$0")/lib.sh"
bench_init 11_observe
MTASK=$MTASK_BIN/mtask
if [ ! -x "$MTASK" ]; then log "bench: $MTASK is missing: build the mtask target"; exit 1; fi

N=$(pick 1000000 1000)
SLEEPS=$(pick 2000 20)
SLOTS=2

plain() { # N ARGS... : runs mtask on --range 1:N with ARGS
  local n=$1; shift
  timed "$TMP/out" "$MTASK" -q -j "$SLOTS" --range "1:$n" "$@"
}
watched() {
  local n=$1; shift
  timed "$TMP/out" "$MTASK" -q -j "$SLOTS" --range "1:$n" --joblog "$TMP/joblog" --stats "$TMP/stats" "$@"
}

GROUP="$N x --builtin echo, -j $SLOTS"
reference "$GROUP" rate "no --joblog/--stats"
echo_plain() {
  plain "$N" --builtin echo; check_seq "$TMP/out" "$N"; status_of
  record "$GROUP" "no --joblog/--stats" "$1" "$SECS" "$N" "$STATUS" "$NOTE"
}
echo_watched() {
  watched "$N" --builtin echo; check_seq "$TMP/out" "$N"; status_of
  if [ "$(wc -l <"$TMP/joblog")" != $((N + 1)) ]; then STATUS=FAIL; NOTE="joblog lines"; fi
  record "$GROUP" "--joblog --stats" "$1" "$SECS" "$N" "$STATUS" "$NOTE"
}
for ((rep = 1; rep <= REPS; rep++)); do alternate "$rep" echo_plain echo_watched; done

# 1 ms tasks: the range's numbers are the payloads, so feed sleep its seconds from a file instead.
GROUP="$SLEEPS x 1 ms --builtin sleep, -j $SLOTS"
reference "$GROUP" rate "no --joblog/--stats"
awk -v n="$SLEEPS" 'BEGIN { for (i = 0; i < n; i++) print "0.001" }' >"$TMP/sleeps"
sleep_run() { # LABEL REP ARGS...
  local label=$1 rep=$2; shift 2
  timed "$TMP/out" "$MTASK" -q -j "$SLOTS" --builtin sleep "$@" <"$TMP/sleeps"
  check_same_lines "$TMP/out" "$TMP/sleeps"; status_of
  record "$GROUP" "$label" "$rep" "$SECS" "$SLEEPS" "$STATUS" "$NOTE"
}
sleep_plain() { sleep_run "no --joblog/--stats" "$1"; }
sleep_watched() { sleep_run "--joblog --stats" "$1" --joblog "$TMP/joblog" --stats "$TMP/stats"; }
for ((rep = 1; rep <= REPS; rep++)); do alternate "$rep" sleep_plain sleep_watched; done

bench_finish
