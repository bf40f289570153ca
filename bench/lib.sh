# bench/lib.sh: helpers sourced by every bench/NN_*.sh: build the references, start mtask and
# reference jobs on fresh endpoints, time them with the monotonic clock, record each run, check
# outputs, and print the table (bench/report.py does the statistics).
#
# Environment: SMOKE=1 tiny sizes and one repetition (CI); REPS=N repetitions (default 3);
# MTASK_BUILD=DIR where the mtask binaries are (default ../build), or MTASK_BIN=DIR to use them in
# place without a snapshot; JOB_TIMEOUT=S per process (120); RESULTS_DIR (build/results).

set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
PY=/usr/bin/python3
SMOKE=${SMOKE:-0}
if [ "$SMOKE" = 1 ]; then REPS=1; else REPS=${REPS:-3}; fi
JOB_TIMEOUT=${JOB_TIMEOUT:-120}
RESULTS_DIR=${RESULTS_DIR:-$BENCH/build/results}
REF=$BENCH/build/zmq_pipeline
REF_CREDIT=$BENCH/build/zmq_credit
NOW=$BENCH/build/mono_now
BENCH_FAILED=0
STRAY_WORKERS=0 MTASK_JOBS=0 WORKER_EXITS=()
BENCH_PIDS=()
SINK_ARGS=() # extra mtask-sink arguments for mtask_job (case 8: keys, -k)

log() { printf '%s\n' "$*" >&2; }

# pick FULL SMOKE: the size for this mode.
pick() { if [ "$SMOKE" = 1 ]; then echo "$2"; else echo "$1"; fi; }

# build_refs: compiles bench/ref/*.cpp into bench/build/ when the source is newer.
build_refs() {
  mkdir -p "$BENCH/build"
  local src bin
  for src in "$BENCH"/ref/*.cpp; do
    bin=$BENCH/build/$(basename "$src" .cpp)
    if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ]; then
      g++ -O2 -std=c++20 -Wall -Wextra -o "$bin" "$src" -lzmq
    fi
  done
}

# snapshot_mtask: copies the three binaries into bench/build/mtask/ once per run (run_all.sh
# exports MTASK_BIN), so a rebuild of build/ halfway through cannot mix versions or vanish.
snapshot_mtask() {
  if [ -n "${MTASK_BIN:-}" ]; then return; fi
  local from=${MTASK_BUILD:-$ROOT/build} role
  MTASK_BIN=$BENCH/build/mtask
  mkdir -p "$MTASK_BIN"
  for role in ventilator worker sink; do
    if [ ! -x "$from/$role/mtask-$role" ]; then
      log "bench: $from/$role/mtask-$role is missing: run ./scripts/build.sh build first"
      exit 1
    fi
    cp "$from/$role/mtask-$role" "$MTASK_BIN/mtask-$role.new"
    mv "$MTASK_BIN/mtask-$role.new" "$MTASK_BIN/mtask-$role"
  done
  # mtask (case 10 only) when the build has it.
  rm -f "$MTASK_BIN/mtask"
  if [ -x "$from/mtask/mtask" ]; then
    cp "$from/mtask/mtask" "$MTASK_BIN/mtask.new"
    mv "$MTASK_BIN/mtask.new" "$MTASK_BIN/mtask"
  fi
  # mtask-keygen (case 8 only) when the build has it: older builds stay usable for cases 1-7.
  rm -f "$MTASK_BIN/mtask-keygen"
  if [ -x "$from/keygen/mtask-keygen" ]; then
    cp "$from/keygen/mtask-keygen" "$MTASK_BIN/mtask-keygen.new"
    mv "$MTASK_BIN/mtask-keygen.new" "$MTASK_BIN/mtask-keygen"
  fi
  export MTASK_BIN
}

# bench_init CASE: everything a case script needs; results go to $RESULTS_DIR/CASE.tsv.
bench_init() {
  CASE=$1
  build_refs
  snapshot_mtask
  VENT=$MTASK_BIN/mtask-ventilator WORKER=$MTASK_BIN/mtask-worker SINK=$MTASK_BIN/mtask-sink
  TMP=$(mktemp -d /tmp/mtask-bench.XXXXXX)
  mkdir -p "$TMP/ipc" "$RESULTS_DIR"
  TSV=$RESULTS_DIR/$CASE.tsv
  : >"$TSV"
  EP_SEQ=0
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
  log "== $CASE ($(date -u +%FT%TZ), SMOKE=$SMOKE, REPS=$REPS)"
  LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
}

bench_cleanup() {
  local pid
  for pid in "${BENCH_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "${TMP:?}"
}

now() { "$NOW"; }
secs_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", b - a }'; }

# free_ports N: N free tcp ports on 127.0.0.1, one per line.
free_ports() {
  "$PY" - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
for s in socks: print(s.getsockname()[1])
EOF
}

# endpoints TRANSPORT N: N fresh endpoints (ipc:// paths under $TMP, or free tcp ports) in EPS.
endpoints() {
  EPS=()
  local i port
  if [ "$1" = ipc ]; then
    for ((i = 0; i < $2; i++)); do EPS+=("ipc://$TMP/ipc/$((++EP_SEQ))"); done
  else
    for port in $(free_ports "$2"); do EPS+=("tcp://127.0.0.1:$port"); done
  fi
}

# record GROUP CONTENDER REP SECONDS TASKS STATUS [NOTE]: one measurement (STATUS ok|FAIL|na).
record() {
  printf 'time\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" "${7:-}" >>"$TSV"
  if [ "$6" = FAIL ]; then BENCH_FAILED=1; log "bench: FAIL $1 / $2 (rep $3): ${7:-}"; fi
  if [ "$6" = ok ]; then log "  $1 | $2 | rep $3 | $4 s | $5 tasks"; fi
}
# reference GROUP rate|time REF: how report.py computes the ratio column for GROUP.
reference() { printf 'ref\t%s\t%s\t%s\n' "$1" "$2" "$3" >>"$TSV"; }
# note GROUP ITEM VALUE: a line of the notes table (peak RSS, efficiency, ...).
note() { printf 'note\t%s\t%s\t%s\n' "$1" "$2" "$3" >>"$TSV"; log "  $1 | $2 | $3"; }
median_of() { "$PY" "$BENCH/report.py" --median "$TSV" "$1" "$2"; }

# alternate REP FN...: calls each FN once, starting at a different one each repetition, so slow
# drifts of a noisy machine spread over all contenders.
alternate() {
  local rep=$1; shift
  local n=$# i
  local fns=("$@")
  for ((i = 0; i < n; i++)); do "${fns[$(((i + rep - 1) % n))]}" "$rep"; done
}

# timed OUT CMD...: runs CMD (stdout to OUT, stderr to $TMP/err) under a timeout; sets SECS, RC.
timed() {
  local out=$1 t0 t1; shift
  t0=$(now)
  set +e
  timeout -k 5 "$JOB_TIMEOUT" "$@" >"$out" 2>"$TMP/err"
  RC=$?
  set -e
  t1=$(now)
  SECS=$(secs_between "$t0" "$t1")
  if [ "$RC" != 0 ]; then log "bench: '$*' exited $RC: $(tail -c 600 "$TMP/err")"; fi
}

# wait_pid PID: sets WRC to its exit status, without tripping set -e (not in $(...): a subshell
# cannot wait for its parent's children).
wait_pid() { WRC=0; wait "$1" || WRC=$?; }

# mtask_job TRANSPORT NWORKERS INPUT OUTPUT [VENTILATOR ARG...] -- WORKER ARG...
# Starts NWORKERS `mtask-worker --once`, the sink (with SINK_ARGS), then the ventilator (`-i INPUT`,
# or no input when INPUT is empty, e.g. with --range) on fresh endpoints. SECS is
# from the first start to the exit of both ventilator and sink (the results are all written);
# RC is 0 when both exit 0 (workers: see below). With RSS_DIR set, each process runs under
# /usr/bin/time and its peak RSS (KiB) lands in RSS_DIR/{ventilator,sink,worker1,...}; with
# RSS_SAMPLES=FILE, rss_sampler records into FILE.
mtask_job() {
  local transport=$1 nw=$2 input=$3 output=$4 t0 t1 i vrc src pid
  shift 4
  local vargs=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do vargs+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  endpoints "$transport" 2
  local vep=${EPS[0]} sep=${EPS[1]}
  local wrap=()
  local wpids=()
  : >"$TMP/mtask.err"
  local sampler=
  if [ -n "${RSS_SAMPLES:-}" ]; then
    rss_sampler "$RSS_SAMPLES" "$vep" &
    sampler=$!
    BENCH_PIDS+=($sampler)
  fi
  t0=$(now)
  for ((i = 1; i <= nw; i++)); do
    [ -n "${RSS_DIR:-}" ] && wrap=(/usr/bin/time -f %M -o "$RSS_DIR/worker$i")
    timeout -k 5 "$JOB_TIMEOUT" "${wrap[@]}" "$WORKER" -q --once --ventilator "$vep" --sink "$sep" "$@" \
      2>>"$TMP/mtask.err" &
    wpids+=($!)
    BENCH_PIDS+=($!)
  done
  [ -n "${RSS_DIR:-}" ] && wrap=(/usr/bin/time -f %M -o "$RSS_DIR/sink")
  timeout -k 5 "$JOB_TIMEOUT" "${wrap[@]}" "$SINK" -q --ventilator "$vep" --sink "$sep" "${SINK_ARGS[@]}" \
    >"$output" 2>>"$TMP/mtask.err" &
  local spid=$!
  BENCH_PIDS+=($spid)
  [ -n "${RSS_DIR:-}" ] && wrap=(/usr/bin/time -f %M -o "$RSS_DIR/ventilator")
  vrc=0
  local iargs=()
  [ -n "$input" ] && iargs=(-i "$input")
  timeout -k 5 "$JOB_TIMEOUT" "${wrap[@]}" "$VENT" -q --ventilator "$vep" --sink "$sep" "${iargs[@]}" \
    "${vargs[@]}" 2>>"$TMP/mtask.err" || vrc=$?
  wait_pid "$spid"; src=$WRC
  t1=$(now)
  SECS=$(secs_between "$t0" "$t1")
  if [ -n "$sampler" ]; then kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true; fi
  RC=0
  [ "$vrc" = 0 ] && [ "$src" = 0 ] || RC=1
  # --once workers exit once they hear the job is complete. One that never joined (it can miss a
  # short job: see RESULTS.md) waits for the next job forever: after 5 s it is killed and counted
  # in STRAY_WORKERS. A worker that exits non-zero is counted in WORKER_EXITS. Neither fails the
  # run: the job's output and the ventilator's and sink's exit statuses decide.
  local deadline=$((SECONDS + 5))
  for pid in "${wpids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.05; done
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait_pid "$pid"
      STRAY_WORKERS=$((STRAY_WORKERS + 1))
      log "bench: warning: a --once worker was still running 5 s after the job ended; killed it"
    else
      wait_pid "$pid"
      if [ "$WRC" != 0 ]; then
        WORKER_EXITS+=("$WRC")
        log "bench: warning: a --once worker exited $WRC: $(grep -v '^mtask-' "$TMP/mtask.err" | tail -n 2 | tr '\n' ' ')"
      fi
    fi
  done
  MTASK_JOBS=$((MTASK_JOBS + 1))
  if [ "$RC" != 0 ]; then
    log "bench: mtask job failed (ventilator $vrc, sink $src): $(tail -c 800 "$TMP/mtask.err")"
  fi
}

# ref_job TRANSPORT NWORKERS TOTAL BATCH: the bare libzmq pipeline (bench/ref/zmq_pipeline.cpp).
# SECS from the first start to the exit of ventilator and sink; RC 0 when the sink counted TOTAL
# tasks with the right checksum.
ref_job() {
  local transport=$1 nw=$2 total=$3 batch=$4 t0 t1 i vrc src pid
  endpoints "$transport" $((nw + 2))
  local sep=${EPS[0]} dep=${EPS[1]}
  local weps=("${EPS[@]:2}") vargs=() wpids=()
  t0=$(now)
  for ((i = 0; i < nw; i++)); do
    "$REF" worker --bind "${weps[$i]}" --sink "$sep" 2>>"$TMP/ref.err" &
    wpids+=($!)
    BENCH_PIDS+=($!)
    vargs+=(--worker "${weps[$i]}")
  done
  timeout -k 5 "$JOB_TIMEOUT" "$REF" sink --bind "$sep" --done "$dep" --total "$total" >"$TMP/ref.out" \
    2>>"$TMP/ref.err" &
  local spid=$!
  BENCH_PIDS+=($spid)
  vrc=0
  timeout -k 5 "$JOB_TIMEOUT" "$REF" vent --done "$dep" --total "$total" --batch "$batch" "${vargs[@]}" \
    2>>"$TMP/ref.err" || vrc=$?
  wait_pid "$spid"; src=$WRC
  t1=$(now)
  SECS=$(secs_between "$t0" "$t1")
  for pid in "${wpids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  RC=0
  [ "$vrc" = 0 ] && [ "$src" = 0 ] && grep -q "tasks $total checksum ok" "$TMP/ref.out" || RC=1
  if [ "$RC" != 0 ]; then log "bench: reference job failed: $(cat "$TMP/ref.out") $(tail -c 600 "$TMP/ref.err")"; fi
}

# ref_credit_job TRANSPORT NWORKERS TOTAL SLOTS: the credit-based reference
# (bench/ref/zmq_credit.cpp): a worker holds at most SLOTS tasks, as mtask-worker -j SLOTS does.
ref_credit_job() {
  local transport=$1 nw=$2 total=$3 slots=$4 t0 t1 i vrc src pid
  endpoints "$transport" 3
  local vep=${EPS[0]} sep=${EPS[1]} dep=${EPS[2]} wpids=()
  t0=$(now)
  for ((i = 0; i < nw; i++)); do
    "$REF_CREDIT" worker --vent "$vep" --sink "$sep" --slots "$slots" 2>>"$TMP/ref.err" &
    wpids+=($!)
    BENCH_PIDS+=($!)
  done
  timeout -k 5 "$JOB_TIMEOUT" "$REF_CREDIT" sink --bind "$sep" --done "$dep" --total "$total" \
    >"$TMP/ref.out" 2>>"$TMP/ref.err" &
  local spid=$!
  BENCH_PIDS+=($spid)
  vrc=0
  timeout -k 5 "$JOB_TIMEOUT" "$REF_CREDIT" vent --bind "$vep" --done "$dep" --total "$total" \
    2>>"$TMP/ref.err" || vrc=$?
  wait_pid "$spid"; src=$WRC
  t1=$(now)
  SECS=$(secs_between "$t0" "$t1")
  for pid in "${wpids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  RC=0
  [ "$vrc" = 0 ] && [ "$src" = 0 ] && grep -q "tasks $total checksum ok" "$TMP/ref.out" || RC=1
  if [ "$RC" != 0 ]; then log "bench: credit reference failed: $(cat "$TMP/ref.out") $(tail -c 600 "$TMP/ref.err")"; fi
}

# rss_sampler OUT ENDPOINT: until killed, every 0.5 s appends "SECONDS BINARY PID VmRSS_KiB" for
# each mtask process whose command line holds ENDPOINT (unique per job).
rss_sampler() {
  local out=$1 ep=$2 pid exe rss
  while :; do
    for pid in $(pgrep -f -- "$ep" || true); do
      exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || continue
      case $exe in
        */mtask-*)
          rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status" 2>/dev/null) || continue
          echo "$(now) ${exe##*/} $pid $rss" >>"$out"
          ;;
      esac
    done
    sleep 0.5
  done
}

# check_seq FILE N: FILE holds each of 1..N exactly once, as seq(1) writes them, in any order
# (count and sum; cheap enough for millions of lines). Sets CHECK to a reason when it does not.
check_seq() {
  CHECK=$(awk -v n="$2" '{ s += $1 } END {
    want = n * (n + 1) / 2
    if (NR != n || s != want) printf "%d lines summing to %.0f, want %d summing to %.0f", NR, s, n, want }' "$1")
}

# check_same_lines GOT WANT: the same lines, in any order. Sets CHECK when they differ.
check_same_lines() {
  if cmp -s <(sort "$1") <(sort "$2"); then CHECK=; else
    CHECK="output differs from the expected lines ($(wc -l <"$1") vs $(wc -l <"$2") lines)"
  fi
}

# status_of: ok when RC is 0 and CHECK is empty, else FAIL (the reason in NOTE).
status_of() {
  NOTE=
  if [ "$RC" != 0 ]; then NOTE="exit status $RC"; STATUS=FAIL
  elif [ -n "${CHECK:-}" ]; then NOTE=$CHECK; STATUS=FAIL
  else STATUS=ok; fi
}

# bench_finish: prints the case's table; exits 1 if any contender failed.
bench_finish() {
  note "machine" "load average 1/5/15 min, start / end" "$LOAD_START / $(cut -d' ' -f1-3 /proc/loadavg)"
  if [ "${#WORKER_EXITS[@]}" != 0 ]; then
    note "mtask-worker --once" "exited non-zero (exit status: count)" \
      "$(printf '%s\n' "${WORKER_EXITS[@]}" | sort | uniq -c | awk '{ printf "%s%s: %s", s, $2, $1; s = ", " }') in $MTASK_JOBS job(s)"
  fi
  if [ "$STRAY_WORKERS" != 0 ]; then
    note "mtask-worker --once" "still running 5 s after the job ended (killed)" "$STRAY_WORKERS worker(s) in $MTASK_JOBS job(s)"
  fi
  echo
  echo "## $CASE"
  "$PY" "$BENCH/report.py" "$TSV"
  if [ "$BENCH_FAILED" != 0 ]; then log "bench: $CASE: some runs FAILED (see above)"; exit 1; fi
}
