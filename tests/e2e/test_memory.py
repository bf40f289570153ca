#!/usr/bin/env python3
"""Memory stays flat however long the input: the ventilator reads lazily and holds at most
--window tasks. Registered for the normal build only: under AddressSanitizer freed memory sits in
its quarantine, so peak RSS there says nothing about the program."""

import time

from harness import E2E, lines, main


class Memory(E2E):
    def test_ventilator_memory_stays_flat_over_a_long_input(self):
        def vm_hwm_kb(pid):
            # The process's own peak RSS (rusage would include the forking Python's size).
            try:
                with open(f"/proc/{pid}/status") as f:
                    return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
            except (OSError, StopIteration):
                return 0

        def peak_rss_kb(n):
            c = self.cluster()
            c.worker(builtin="echo", jobs=4)
            # 100-byte tasks: 200k of them are 20 MB of input, which must never be in memory at once.
            data = b"".join(b"%099d\n" % i for i in range(n))
            vent = c.ventilator(data, ["--window", "1000"])
            sink = c.sink()
            peak = 0
            while vent.alive():  # VmHWM only grows: the last reading is the peak so far
                peak = max(peak, vm_hwm_kb(vent.pid))
                time.sleep(0.02)
            self.finish(sink, vent, timeout=120)
            self.assertEqual(len(lines(sink.stdout())), n)
            self.assertGreater(peak, 0)
            return peak

        small = peak_rss_kb(10_000)
        big = peak_rss_kb(200_000)
        self.assertLess(big, small + 4096, f"peak RSS {small} KB for 10k tasks, {big} KB for 200k")


if __name__ == "__main__":
    main()
