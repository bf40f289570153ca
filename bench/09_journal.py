#!/usr/bin/env python3
"""Case 8: the sink's journal (issue 11). Paired, alternating runs of one job with two sinks, and
the median time of each and their ratio: `--output FILE` against `--output FILE --journal J`
(tiny tasks: 1 M `--builtin echo`; big ones: `--block 1M` over 256 MiB), and, for regressions,
the sink of another build against this one's with no journal (stdout to a file).

    bench/09_journal.py [--reps 7] [--base DIR]   # DIR: mtask-{ventilator,worker,sink} of another build

Times are wall clock from starting the first process to the exit of ventilator and sink. Every run
checks its output (line count, or byte count for blocks)."""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("MTASK_BUILD", os.path.join(HERE, "..", "build"))


def bins(d):
    found = {}
    for name in ("mtask-ventilator", "mtask-worker", "mtask-sink"):
        for sub in ("", name.replace("mtask-", "") + "/"):
            if os.path.exists(os.path.join(d, sub, name)):
                found[name] = os.path.join(d, sub, name)
    return found


CPU = {}  # contender -> CPU seconds of its jobs' three processes, per run


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def job(b, input_path, vent_args, sink_args, tmp, expect_bytes):
    """Runs one job; returns its wall time in seconds (its CPU time goes to job.cpu)."""
    cpu0 = children_cpu()
    for f in ("out", "journal"):
        if os.path.exists(os.path.join(tmp, f)):
            os.unlink(os.path.join(tmp, f))
    v, s = f"ipc://{tmp}/v", f"ipc://{tmp}/s"
    common = ["-q", "--ventilator", v, "--sink", s]
    start = time.monotonic()
    with open(os.path.join(tmp, "stdout"), "wb") as out, open(input_path, "rb") as inp:
        w = subprocess.Popen([b["mtask-worker"]] + common + ["--once", "--builtin", "echo"])
        sink = subprocess.Popen([b["mtask-sink"]] + common + sink_args, stdout=out)
        vent = subprocess.Popen([b["mtask-ventilator"]] + common + vent_args, stdin=inp)
        rc = (sink.wait(300), vent.wait(300))
    took = time.monotonic() - start
    w.wait(30)
    job.cpu = children_cpu() - cpu0
    if rc != (0, 0):
        sys.exit(f"job failed: {rc}")
    got = os.path.join(tmp, "out") if "--output" in sink_args else os.path.join(tmp, "stdout")
    if os.path.getsize(got) != expect_bytes:
        sys.exit(f"wrong output: {os.path.getsize(got)} bytes, expected {expect_bytes}")
    return took


def compare(title, contenders, reps):
    times = {name: [] for name, _ in contenders}
    cpu = {name: [] for name, _ in contenders}
    for r in range(reps):
        order = contenders[r % len(contenders):] + contenders[:r % len(contenders)]
        for name, fn in order:
            times[name].append(fn())
            cpu[name].append(job.cpu)
    base = statistics.median(times[contenders[0][0]])
    print(f"\n{title}\n")
    base_cpu = statistics.median(cpu[contenders[0][0]])
    print(f"1-minute load average at the end: {os.getloadavg()[0]:.1f}\n")
    print("| contender | runs | median s | min-max s | ratio | CPU s (3 processes), median | CPU ratio |")
    print("|---|---|---|---|---|---|---|")
    for name, _ in contenders:
        t = times[name]
        m = statistics.median(t)
        c = statistics.median(cpu[name])
        print(f"| {name} | {len(t)} | {m:.3f} | {min(t):.3f}-{max(t):.3f} | {m / base:.2f}x | {c:.3f} | "
              f"{c / base_cpu:.2f}x |")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--base", help="another build's binaries, for the no-journal regression check")
    ap.add_argument("--tasks", type=int, default=1_000_000)
    ap.add_argument("--block-mib", type=int, default=256)
    a = ap.parse_args()
    b = bins(BUILD)
    with tempfile.TemporaryDirectory(prefix="mtask-bench-journal-") as tmp:
        seq = os.path.join(tmp, "seq")
        with open(seq, "wb") as f:
            subprocess.run(["seq", "1", str(a.tasks)], stdout=f, check=True)
        seq_bytes = os.path.getsize(seq)
        out, jnl = os.path.join(tmp, "out"), os.path.join(tmp, "journal")

        if a.base:
            base = bins(a.base)
            compare(f"{a.tasks} x --builtin echo, no journal, sink to stdout: this build vs {a.base}", [
                ("this build", lambda: job(b, seq, [], [], tmp, seq_bytes)),
                ("base build", lambda: job(base, seq, [], [], tmp, seq_bytes)),
            ], a.reps)

        compare(f"{a.tasks} x --builtin echo: --output vs --output --journal", [
            ("--output", lambda: job(b, seq, [], ["--output", out], tmp, seq_bytes)),
            ("--output --journal", lambda: job(b, seq, [], ["--output", out, "--journal", jnl], tmp, seq_bytes)),
        ], a.reps)
        # Acks wait for the fsyncs, so the ventilator's window bounds the rate: window / ack latency.
        wide = ["--window", "131072"]
        compare(f"{a.tasks} x --builtin echo, ventilator --window 131072: --output vs --output --journal", [
            ("--output", lambda: job(b, seq, wide, ["--output", out], tmp, seq_bytes)),
            ("--output --journal", lambda: job(b, seq, wide, ["--output", out, "--journal", jnl], tmp, seq_bytes)),
        ], a.reps)

        data = os.path.join(tmp, "data")
        with open(data, "wb") as f:
            line = b"x" * 99 + b"\n"
            f.write(line * (a.block_mib * (1 << 20) // len(line)))
        data_bytes = os.path.getsize(data)
        compare(f"--block 1M over {a.block_mib} MiB, --builtin echo: --output vs --output --journal", [
            ("--output", lambda: job(b, data, ["--block", "1M"], ["--output", out, "-k"], tmp, data_bytes)),
            ("--output --journal", lambda: job(b, data, ["--block", "1M"],
                                                ["--output", out, "-k", "--journal", jnl], tmp, data_bytes)),
        ], a.reps)


if __name__ == "__main__":
    main()
