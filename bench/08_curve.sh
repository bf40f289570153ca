#!/usr/bin/env bash
# Case 8: CURVE against plaintext, both over tcp on 127.0.0.1 (issue 10). The same jobs twice, once
# plaintext and once with every socket under CURVE (keys from mtask-keygen; the ventilator and the
# sink are CURVE servers with an --allow list, the worker pins both server keys):
#   tiny tasks: `--range 1:N`, `--builtin echo -j 2`, 1 and 2 workers (N = 1 M; a worker key is
#     per host, so both workers use the same one, as two workers on one machine would);
#   bytes: a file of base64 text (192 MiB of /dev/urandom: 256 MiB of letters plus newlines, new
#     data each time the script runs) split with `--block 1M`, `--builtin echo -j 2`,
#     the sink with -k so that its stdout must equal the input byte for byte (cmp).
# Target: CURVE under 2x plaintext's time for tiny tasks (batching amortises the per-message box).
# Ratio = median time over plaintext's, lower is better. For the bytes rows, tasks are 1 MiB
# blocks, so tasks/s is close to MiB/s; the notes give MiB/s from the input's exact size.
# SMOKE=1: 20 000 tiny tasks and 4 MiB of blocks, each once (2-4 s); any wrong output exits 1.
source "$(dirname "$0")/lib.sh"
bench_init 08_curve

KEYGEN=$MTASK_BIN/mtask-keygen
if [ ! -x "$KEYGEN" ]; then
  log "bench: mtask-keygen is missing from ${MTASK_BUILD:-$ROOT/build}/keygen/: rebuild mtask"
  exit 1
fi

N=$(pick 1000000 20000)       # tiny tasks
MIB=$(pick 192 3)             # MiB of random bytes, base64-encoded into the bytes job's input (x 4/3)

# Keys: the ventilator's, the sink's, and one worker key on the allowlist.
K=$TMP/keys
mkdir -p "$K/allow"
for name in vent sink w1; do
  "$KEYGEN" "$K/$name" >"$TMP/keygen.log" 2>&1 || { log "bench: mtask-keygen failed: $(cat "$TMP/keygen.log")"; exit 1; }
done
cp "$K/w1.key" "$K/allow/w1.key"
VENT_CURVE=(--key "$K/vent.key_secret" --sink-key "$K/sink.key" --allow "$K/allow")
SINK_CURVE=(--key "$K/sink.key_secret" --ventilator-key "$K/vent.key" --allow "$K/allow")
WORKER_CURVE=(--key "$K/w1.key_secret" --ventilator-key "$K/vent.key" --sink-key "$K/sink.key")

head -c $((MIB << 20)) /dev/urandom | base64 -w 76 >"$TMP/bytes.in"
BYTES=$(stat -c %s "$TMP/bytes.in")
# Tasks: --block 1M takes the whole 77-byte lines that fit in 1 MiB, 13 617 of them a task.
BLOCKS=$(awk -v l="$(wc -l <"$TMP/bytes.in")" 'BEGIN { b = int(1048576 / 77); printf "%d", int((l + b - 1) / b) }')
log "  tiny: $N tasks; bytes: $BYTES bytes of base64 lines, --block 1M"

# tiny SEC NW: --range 1:N through NW workers, plaintext (SEC=plain) or CURVE.
tiny() {
  local sec=$1 nw=$2 vargs=() wargs=()
  SINK_ARGS=()
  if [ "$sec" = curve ]; then vargs=("${VENT_CURVE[@]}") wargs=("${WORKER_CURVE[@]}") SINK_ARGS=("${SINK_CURVE[@]}"); fi
  mtask_job tcp "$nw" "" "$TMP/out" --range "1:$N" "${vargs[@]}" -- "${wargs[@]}" --builtin echo -j 2
  check_seq "$TMP/out" "$N"; status_of
}
bytes() {
  local sec=$1 vargs=() wargs=()
  SINK_ARGS=(-k)
  if [ "$sec" = curve ]; then vargs=("${VENT_CURVE[@]}") wargs=("${WORKER_CURVE[@]}") SINK_ARGS+=("${SINK_CURVE[@]}"); fi
  mtask_job tcp 1 "$TMP/bytes.in" "$TMP/out" --block 1M "${vargs[@]}" -- "${wargs[@]}" --builtin echo -j 2
  CHECK=
  cmp -s "$TMP/out" "$TMP/bytes.in" || CHECK="output differs from the input ($(stat -c %s "$TMP/out") vs $BYTES bytes)"
  status_of
}

G1="tiny: --range 1:$N, echo -j 2, 1 worker, tcp"
G2="tiny: --range 1:$N, echo -j 2, 2 workers, tcp"
G3="bytes: $((BYTES >> 20)) MiB, --block 1M, echo -j 2, -k, 1 worker, tcp"
tiny1_plain() { tiny plain 1; record "$G1" "plaintext" "$1" "$SECS" "$N" "$STATUS" "$NOTE"; }
tiny1_curve() { tiny curve 1; record "$G1" "CURVE" "$1" "$SECS" "$N" "$STATUS" "$NOTE"; }
tiny2_plain() { tiny plain 2; record "$G2" "plaintext" "$1" "$SECS" "$N" "$STATUS" "$NOTE"; }
tiny2_curve() { tiny curve 2; record "$G2" "CURVE" "$1" "$SECS" "$N" "$STATUS" "$NOTE"; }
bytes_plain() { bytes plain; record "$G3" "plaintext" "$1" "$SECS" "$BLOCKS" "$STATUS" "$NOTE"; }
bytes_curve() { bytes curve; record "$G3" "CURVE" "$1" "$SECS" "$BLOCKS" "$STATUS" "$NOTE"; }

for g in "$G1" "$G2" "$G3"; do reference "$g" time "plaintext"; done
for ((rep = 1; rep <= REPS; rep++)); do alternate "$rep" tiny1_plain tiny1_curve; done
for ((rep = 1; rep <= REPS; rep++)); do alternate "$rep" tiny2_plain tiny2_curve; done
for ((rep = 1; rep <= REPS; rep++)); do alternate "$rep" bytes_plain bytes_curve; done

for who in plaintext CURVE; do
  m=$(median_of "$G3" "$who")
  [ -n "$m" ] && note "$G3" "$who, MiB/s (input bytes / median s)" \
    "$(awk -v b="$BYTES" -v s="$m" 'BEGIN { printf "%.0f", b / 1048576 / s }')"
done

bench_finish
