#!/usr/bin/env bash
# Case 6: memory while streaming. 1 M tasks, then 10 M or as many as the 1 M run's rate gets
# through in about 60 s (the count is in the table), through `mtask-worker --builtin echo -j 256`
# (one worker, ipc; -j 256 because the default -j 1 manages thousands of tasks a second, not
# millions), each process under /usr/bin/time for its peak RSS (VmHWM) and sampled every 0.5 s.
# Target: flat (the same at both sizes and through the run) and under 50 MB per process.
source "$(dirname "$0")/lib.sh"
bench_init 06_memory

SMALL=$(pick 1000000 1000)
BIG=$(pick 10000000 10000)
BUDGET_S=60
JOB_TIMEOUT=${JOB_TIMEOUT_MEMORY:-300}
G="--builtin echo -j 256, 1 worker, ipc"
reference "$G" rate ""

for n in "$SMALL" "$BIG"; do
  if [ "$n" = "$BIG" ] && [ "$SMOKE" != 1 ]; then
    # As many as fit in BUDGET_S at the small run's rate, in whole millions, at most BIG.
    n=$(awk -v r="$(awk -v n="$SMALL" -v s="$SECS" 'BEGIN { print n / s }')" -v b="$BUDGET_S" -v max="$BIG" \
      'BEGIN { n = int(r * b / 1e6) * 1e6; if (n < 2e6) n = 2e6; if (n > max) n = max; printf "%d", n }')
    log "  the big run: $n tasks"
  fi
  seq 1 "$n" >"$TMP/in"
  RSS_DIR=$TMP/rss.$n RSS_SAMPLES=$TMP/samples.$n
  mkdir -p "$RSS_DIR"
  mtask_job ipc 1 "$TMP/in" "$TMP/out" -- --builtin echo -j 256
  check_seq "$TMP/out" "$n"; status_of
  record "$G" "mtask, $n tasks" 1 "$SECS" "$n" "$STATUS" "$NOTE"
  for role in ventilator sink worker1; do
    kib=$(tail -n 1 "$RSS_DIR/$role" 2>/dev/null || echo "?")
    note "peak RSS, $n tasks" "mtask-$role" "$(awk -v k="$kib" 'BEGIN { printf "%.1f MB", k / 1024 }')"
    echo "$n $role $kib" >>"$TMP/rss"
  done
  # VmRSS sampled every 0.5 s: flat means no growth between the middle and the end of the run.
  "$PY" - "$RSS_SAMPLES" <<'PYEOF' | while IFS=$'\t' read -r who what; do note "VmRSS during the $n-task run" "$who" "$what"; done
import os, sys
by = {}
for line in open(sys.argv[1]) if os.path.exists(sys.argv[1]) else []:
    t, exe, pid, kib = line.split()
    by.setdefault(exe, []).append((float(t), int(kib)))
for exe, s in sorted(by.items()):
    t0, t1 = s[0][0], s[-1][0]
    at = lambda f: [k for t, k in s if t <= t0 + f * (t1 - t0)][-1] / 1024
    print(f"{exe}\tat 25/50/75/100 % of {t1 - t0:.1f} s: "
          + " / ".join(f"{at(f):.1f}" for f in (0.25, 0.5, 0.75, 1.0)) + " MB")
PYEOF
  rm -f "$TMP/in" "$TMP/out"
done
unset RSS_DIR RSS_SAMPLES

# Flat: no process grows by more than 10 % and 2 MB from the smallest run to the biggest (a
# one-off step of a buffer, seen with the ventilator, shows in the samples above as a plateau).
verdict=$("$PY" - "$TMP/rss" <<'PYEOF'
import sys
rss = {}
for line in open(sys.argv[1]):
    n, role, kib = line.split()
    rss.setdefault(role, {})[int(n)] = int(kib) if kib.isdigit() else None
bad = []
for role, by_n in rss.items():
    small, big = by_n[min(by_n)], by_n[max(by_n)]
    if small is None or big is None:
        bad.append(f"{role}: no figure")
        continue
    if big > 50 * 1024:
        bad.append(f"{role} over 50 MB")
    if big - small > 2048 and big > 1.1 * small:
        bad.append(f"{role} grew from {small} to {big} KiB")
print("; ".join(bad) if bad else "flat, every process under 50 MB")
PYEOF
)
note "verdict" "peak RSS" "$verdict"

bench_finish
