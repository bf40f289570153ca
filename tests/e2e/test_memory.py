#!/usr/bin/env python3
"""Memory stays flat however long the input: the ventilator reads lazily and holds at most
--window tasks (its peak RSS is what it logs at exit with -v). Registered for the normal build only: under AddressSanitizer freed memory sits in
its quarantine, so peak RSS there says nothing about the program."""

import re

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


if __name__ == "__main__":
    main()
