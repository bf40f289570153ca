#!/usr/bin/env python3
"""Memory stays flat however long the input: the ventilator reads lazily and holds at most
--window tasks, and a worker holds at most --max-output-bytes of a task's output (peak RSS is
what each binary logs at exit with -v). Registered for the normal build only: under AddressSanitizer freed memory sits in
its quarantine, so peak RSS there says nothing about the program."""

import re
import signal

from harness import E2E, lines, main


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
