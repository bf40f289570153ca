#!/usr/bin/env bash
# Case 1: no-op tasks. mtask (`mtask-worker --builtin echo`, and with -j 256) against the bare
# libzmq pipeline (bench/ref/zmq_pipeline.cpp) unbatched, and batched 100 tasks a message as the
# ceiling; ipc and tcp; 1, 2 and 4 workers. Target: mtask >= 1.0x the unbatched pipeline's tasks/s.
# bench/ref/zmq_credit.cpp is the same credit scheme as mtask's on bare libzmq (1 and 256 tasks in
# flight per worker): what the design costs before mtask's own overhead.
# Rates include each job's start-up, as a user sees it.
source "$(dirname "$0")/lib.sh"
bench_init 01_noop

N_REF=$(pick 1000000 1000)      # unbatched reference
N_BATCH=$(pick 10000000 1000)   # batched reference: 1 M would be all start-up
N_CREDIT1=$(pick 20000 300)     # bare credit reference, 1 in flight per worker: a round trip a task

# mtask runs 1 M tasks, or fewer when a calibration run (20 000 tasks, 1 worker, ipc) says 1 M would
# take more than MTASK_RUN_S seconds (18 runs per contender must fit the suite's 10 minutes): the
# count is in the table; compare tasks/s.
MTASK_RUN_S=5
seq 1 20000 >"$TMP/in.calib"
mtask_size() { # WORKER ARG...: the task count for this mtask contender
  if [ "$SMOKE" = 1 ]; then echo 300; return; fi
  mtask_job ipc 1 "$TMP/in.calib" "$TMP/out" -- "$@"
  awk -v s="$SECS" -v b="$MTASK_RUN_S" 'BEGIN {
    n = int(20000 / s * b / 10000) * 10000; if (n < 10000) n = 10000; if (n > 1000000) n = 1000000
    printf "%d", n }'
}
N_MTASK=$(mtask_size --builtin echo -j 1)
N_MTASK_J=$(mtask_size --builtin echo -j 256)
log "  mtask task counts: $N_MTASK (default -j), $N_MTASK_J (-j 256)"
for n in "$N_MTASK" "$N_MTASK_J" 1; do seq 1 "$n" >"$TMP/in.$n"; done

ref_unbatched() {
  ref_job "$TR" "$NW" "$N_REF" 1; CHECK=; status_of
  record "$GROUP" "zmq unbatched" "$1" "$SECS" "$N_REF" "$STATUS" "$NOTE"
}
ref_batched() {
  ref_job "$TR" "$NW" "$N_BATCH" 100; CHECK=; status_of
  record "$GROUP" "zmq batched 100/msg" "$1" "$SECS" "$N_BATCH" "$STATUS" "$NOTE"
}
credit_1() {
  ref_credit_job "$TR" "$NW" "$N_CREDIT1" 1; CHECK=; status_of
  record "$GROUP" "zmq credit, 1 in flight" "$1" "$SECS" "$N_CREDIT1" "$STATUS" "$NOTE"
}
credit_256() {
  ref_credit_job "$TR" "$NW" "$N_REF" 256; CHECK=; status_of
  record "$GROUP" "zmq credit, 256 in flight" "$1" "$SECS" "$N_REF" "$STATUS" "$NOTE"
}
mtask_echo() {
  mtask_job "$TR" "$NW" "$TMP/in.$N_MTASK" "$TMP/out" -- --builtin echo -j 1
  check_seq "$TMP/out" "$N_MTASK"; status_of
  record "$GROUP" "mtask --builtin echo" "$1" "$SECS" "$N_MTASK" "$STATUS" "$NOTE"
}
mtask_echo_j() {
  mtask_job "$TR" "$NW" "$TMP/in.$N_MTASK_J" "$TMP/out" -- --builtin echo -j 256
  check_seq "$TMP/out" "$N_MTASK_J"; status_of
  record "$GROUP" "mtask --builtin echo -j 256" "$1" "$SECS" "$N_MTASK_J" "$STATUS" "$NOTE"
}

for TR in ipc tcp; do
  for NW in $(pick "1 2 4" 2); do # SMOKE: each transport once, with 2 workers
    GROUP="$TR, $NW worker(s)"
    reference "$GROUP" rate "zmq unbatched"
    for ((rep = 1; rep <= REPS; rep++)); do
      alternate "$rep" ref_unbatched ref_batched credit_1 credit_256 mtask_echo mtask_echo_j
    done
  done
done

# The fixed cost of a job: one task, one worker, ipc.
GROUP="1 task (job latency), ipc"
reference "$GROUP" time "zmq unbatched"
lat_ref() {
  ref_job ipc 1 1 1; CHECK=; status_of
  record "$GROUP" "zmq unbatched" "$1" "$SECS" 1 "$STATUS" "$NOTE"
}
lat_mtask() {
  mtask_job ipc 1 "$TMP/in.1" "$TMP/out" -- --builtin echo -j 1
  check_seq "$TMP/out" 1; status_of
  record "$GROUP" "mtask --builtin echo" "$1" "$SECS" 1 "$STATUS" "$NOTE"
}
for ((rep = 1; rep <= REPS; rep++)); do alternate "$rep" lat_ref lat_mtask; done

bench_finish
