#!/usr/bin/env python3
"""Memory stays flat however long the input: the ventilator reads lazily and holds at most
--window tasks, a sink writing in input order (-k) holds a bounded number of bytes of results
behind a slow task, and a worker holds at most --max-output-bytes of a task's output (peak RSS is
what each binary logs at exit with -v). Registered for the normal build only: under
AddressSanitizer freed memory sits in its quarantine, so peak RSS there says nothing about the
program."""

import os
import re
import signal
import time

from harness import E2E, lines, main


def peak_kb(proc):
    m = re.search(r"exit \d+; peak memory (\d+) KB", proc.stderr())
    if m is None:
        raise AssertionError(f"no peak memory line in {proc.name}'s stderr:\n{proc.stderr()}")
    return int(m.group(1))


def wait_until_all_or_settled(count, want, quiet_s, timeout):
    """Waits until count() reaches want, or, once it has started, stops changing for quiet_s
    seconds (something holds the rest back, which is fine), bounded by timeout. Returns the last
    count."""
    deadline = time.monotonic() + timeout
    last, since = count(), time.monotonic()
    while last < want:
        now = time.monotonic()
        if now > deadline:
            raise AssertionError(f"timed out after {timeout}s with {last} of {want}")
        if last > 0 and now - since > quiet_s:
            break
        time.sleep(0.05)  # polling a condition, bounded by the deadline
        n = count()
        if n != last:
            last, since = n, time.monotonic()
    return last


class Memory(E2E):
    def test_ventilator_memory_stays_flat_over_a_long_input(self):
        def peak_rss_kb(n):
            c = self.cluster()
            c.worker(builtin="echo", jobs=4)
            # 100-byte tasks: 200k of them are 20 MB of input, which must never be in memory at once.
            data = b"".join(b"%099d\n" % i for i in range(n))
            # -v: each binary logs its own peak RSS (VmHWM) as it exits. Sampling /proc from here
            # cannot catch a job that finishes between two samples.
            vent = c.ventilator(data, ["--window", "1000", "-v"])
            sink = c.sink()
            self.finish(sink, vent, timeout=120)
            self.assertEqual(len(lines(sink.stdout())), n)
            m = re.search(r"exit 0; peak memory (\d+) KB", vent.stderr())
            self.assertIsNotNone(m, vent.stderr())
            peak = int(m.group(1))
            self.assertGreater(peak, 1000)  # a real reading: the binary and its libraries alone are more
            return peak

        small = peak_rss_kb(10_000)
        big = peak_rss_kb(200_000)
        self.assertLess(big, small + 4096, f"peak RSS {small} KB for 10k tasks, {big} KB for 200k")

    def test_keep_order_holds_results_behind_a_slow_first_task_in_bounded_memory(self):
        """Issue: with -k the reorder buffer must be bounded in bytes: a slow task 0 while hundreds
        of later tasks return 200 KB results each took the sink to ~218 MB of peak RSS (here 300
        results of 400 KB: fewer processes, the same 120 MB)."""
        n = 300  # 120 MB of results behind task 0
        c = self.cluster()
        go = os.path.join(c.dir, "go")
        ran = os.path.join(c.dir, "ran")
        c.cleanups.append(lambda: open(go, "w").close())  # task 0 never outlives the test
        # Task 0 waits until the test says go (a bounded wait, 2 min at most); every other task
        # marks that it ran. Each result is the task id, zero-padded to 400 000 bytes.
        script = (f'read x; if [ "$x" = 0 ]; then i=0; while [ ! -e {go} ] && [ $i -lt 2400 ]; '
                  f'do sleep 0.05; i=$((i+1)); done; else echo >> {ran}; fi; printf "%0400000d\\n" "$x"')
        for _ in range(2):
            c.worker("sh", "-c", script, jobs=2)
        data = b"".join(b"%d\n" % i for i in range(n))
        vent = c.ventilator(data)
        sink = c.sink(["-k", "-v"])
        # Task 0 goes once every other task has run: by count, not by a timer. The 3 s of quiet is
        # the way out for a build that holds the rest back (the bound this test wants); it can only
        # make today's failure less likely on a very slow machine, never fail a good build.
        ran_count = lambda: os.path.getsize(ran) if os.path.exists(ran) else 0
        wait_until_all_or_settled(ran_count, n - 1, quiet_s=3, timeout=120)
        open(go, "w").close()
        out = self.finish(sink, vent, timeout=120)
        self.assertEqual(out, b"".join(b"%0400000d\n" % i for i in range(n)), "every result once, in order")
        peak = peak_kb(sink)
        self.assertLess(peak, 100 * 1024, f"the sink's peak RSS was {peak} KB with {n} x 400 KB results "
                                          f"behind task 0")

    def test_a_task_whose_output_passes_the_limit_fails_alone_and_the_worker_stays_small(self):
        c = self.cluster()
        # Task "big" writes 200 MB; the others a line each.
        cmd = ["sh", "-c", 'read x; if [ "$x" = big ]; then head -c 200000000 /dev/zero; else echo "out $x"; fi']
        # Not --once: a worker that a loaded machine keeps silent past --heartbeat-timeout-ms rejoins
        # instead of giving up. It is stopped once the job is done, and logs its peak RSS as it exits.
        worker = c.worker(*cmd, jobs=2, args=["--max-output-bytes", "1M", "-v"])
        vent = c.ventilator(b"a\nbig\nb\nc\n")
        sink = c.sink(["-k"])
        self.assertEqual(self.finish(sink, vent, expect=3), b"out a\nout b\nout c\n")
        self.assertIn("task 1 failed: too large: output exceeded --max-output-bytes (1048576 bytes)", sink.stderr())
        self.assertIn("1 of 4 task(s) failed", sink.stderr())
        worker.signal(signal.SIGTERM)
        self.assertEqual(worker.wait(), 128 + signal.SIGTERM, worker.stderr())
        m = re.search(r"exit 143; peak memory (\d+) KB", worker.stderr())
        self.assertIsNotNone(m, worker.stderr())
        peak = int(m.group(1))
        self.assertGreater(peak, 1000)  # a real reading
        self.assertLess(peak, 64 * 1024, f"worker peak RSS {peak} KB for a 200 MB output past a 1 MB limit")


if __name__ == "__main__":
    main()
