#!/usr/bin/env python3
"""mtask-top (issue 12): a live view of a running job from its ventilator. --once prints one
snapshot (the job's totals and one row per worker); without a terminal it prints a block every
--interval-ms until the job ends; on a terminal (tmux) it redraws full-screen. Asking never makes
the asker a worker, and a ventilator that is not there is named, with exit 1."""

import os
import re
import shlex
import shutil
import subprocess
import time

from harness import E2E, binary, lines, main, run, tail, wait_until

# 300 tasks of 20 ms on 2 workers of 2 slots: the job runs for a second and a half here, longer on a
# slower machine. Tests wait for conditions, never for a time.
TASKS = 300
SLEEPS = b"0.02\n" * TASKS


def top(endpoint, *args, timeout=60):
    return run([binary("mtask-top"), "--ventilator", endpoint] + list(args), timeout=timeout)


class Top(E2E):
    def start_job(self):
        c = self.cluster()
        vent = c.ventilator(SLEEPS, ["-v"])
        workers = [c.worker(builtin="sleep", jobs=2, args=["--once"]) for _ in range(2)]
        sink = c.sink()
        return c, vent, sink, workers

    def snapshot_with_rows(self, endpoint, rows):
        """The first --once snapshot that lists `rows` live workers (they join within moments)."""
        got = {}

        def ready():
            rc, out, err = top(endpoint, "--once")
            got.update(rc=rc, out=out.decode(), err=err)
            return rc == 0 and sum(1 for l in got["out"].splitlines()[3:] if not l.endswith("lost")) == rows
        wait_until(ready, 60, f"a snapshot with {rows} workers", lambda: f"{got}")
        return got["out"]

    def test_once_prints_the_job_and_a_row_per_worker(self):
        c, vent, sink, workers = self.start_job()
        out = self.snapshot_with_rows(c.vent_ep, 2)
        head = out.splitlines()
        self.assertRegex(head[0], rf"^job [0-9a-f]{{16}} at {re.escape(c.vent_ep)}: (running|waiting_for_sink|farewell), "
                         r"\d+ s$")
        self.assertRegex(head[1], r"^tasks: \d+ done of (300|\?) \(\d+ read\), [\d.]+/s \| workers: 2 live, 4 slots, "
                         r"\d busy \| 0 requeued, 0 retried$")
        self.assertEqual(head[2].split(), ["WORKER", "SLOTS", "BUSY", "DONE", "RATE", "LAST", "SEEN"])
        for row in head[3:]:
            name, slots, busy, done, rate, seen = row.split()
            self.assertRegex(name, r"^\S+:\d+$")
            self.assertEqual(slots, "2")
            self.assertIn(int(busy), (0, 1, 2))
            self.assertRegex(done, r"^\d+$")
            self.assertRegex(rate, r"^[\d.]+/s$")
            self.assertRegex(seen, r"^[\d.]+s$")
        self.assertEqual(self.finish(sink, vent), SLEEPS)
        # Asking made nobody a worker: the ventilator saw exactly the two join.
        self.assertEqual(len(re.findall(r"worker \S+ joined", vent.stderr())), 2, tail(vent.stderr()))

    def test_without_a_terminal_it_prints_a_block_per_interval_and_stops_on_sigterm(self):
        c = self.cluster()
        fifo = c.fifo()  # input kept open: the job runs until the test closes it
        vent = c.ventilator(stdin_path=fifo.path)
        fifo.write(b"a\nb\n")
        c.worker(builtin="echo", jobs=2, args=["--once"])
        sink = c.sink()
        out_path = os.path.join(c.dir, "top.out")
        with open(out_path, "wb") as out:
            p = subprocess.Popen([binary("mtask-top"), "--ventilator", c.vent_ep, "--interval-ms", "100"],
                                 stdout=out, stderr=subprocess.PIPE)
        try:
            def blocks():
                with open(out_path) as f:
                    return [b for b in f.read().split("\n\n") if b.strip()]
            wait_until(lambda: len(blocks()) >= 3 and "2 done" in blocks()[-2], 60, "three blocks, the job's two tasks done",
                       lambda: blocks())
            p.send_signal(15)
            _, err = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertEqual(p.returncode, 143, err.decode())
        for b in blocks()[:-1]:  # the last may be cut by the signal
            self.assertTrue(b.startswith("job "), b)
            self.assertIn("WORKER", b)
        fifo.close()
        self.assertSameMultiset(self.finish(sink, vent), b"a\nb\n")

    def test_on_a_terminal_it_redraws_full_screen(self):
        self.assertIsNotNone(shutil.which("tmux"), "tmux is missing: run scripts/install-deps.sh")
        c, vent, sink, workers = self.start_job()
        self.snapshot_with_rows(c.vent_ep, 2)
        server = f"mtask-top-test-{os.getpid()}-{time.monotonic_ns()}"
        tmux = ["tmux", "-L", server]
        self.addCleanup(lambda: subprocess.run(tmux + ["kill-server"], capture_output=True, timeout=30))
        cmd = " ".join(shlex.quote(a) for a in [binary("mtask-top"), "--ventilator", c.vent_ep, "--interval-ms", "100"])
        subprocess.run(tmux + ["new-session", "-d", "-x", "160", "-y", "30", "-s", "top", f"{cmd}; sleep 600"],
                       check=True, timeout=30)
        screens = []

        def drawn():
            screen = subprocess.run(tmux + ["capture-pane", "-p", "-t", "top"], capture_output=True,
                                    timeout=30).stdout.decode()
            screens.append(screen)
            return screen.startswith("job ") and "WORKER" in screen
        wait_until(drawn, 60, "mtask-top to draw its screen", lambda: screens[-1] if screens else "")
        # Full-screen: the view starts on the top line and is drawn once, not scrolled below the last.
        screen = screens[-1]
        self.assertEqual(screen.count("WORKER"), 1, screen)
        self.assertEqual(self.finish(sink, vent), SLEEPS)

    def test_no_ventilator_is_named_with_exit_1_and_bad_flags_are_usage_errors(self):
        endpoint = f"ipc://{self.cluster().dir}/nothing"
        rc, out, err = top(endpoint, "--once", "--timeout-ms", "300")
        self.assertEqual(rc, 1)
        self.assertEqual(out, b"")
        self.assertIn(f"no answer from the ventilator at '{endpoint}' within 300 ms", err)
        for bad in (["--interval-ms", "5"], ["--nonsense"], ["--ventilator-key", "x.key"]):
            rc, out, err = top(endpoint, "--once", *bad)
            self.assertEqual(rc, 2, (bad, err))
            self.assertEqual(len(err.strip().splitlines()), 1, err)


if __name__ == "__main__":
    main()
