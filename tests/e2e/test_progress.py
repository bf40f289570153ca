#!/usr/bin/env python3
"""The sink's progress line (issue 12): in a real terminal (tmux, capture-pane) it updates in place
and ends with the summary, and stdout stays byte-identical; without a terminal it is off unless
--progress asks for it, and then comes as plain lines."""

import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time

from harness import E2E, binary, main, run, tail, wait_until

# 60 tasks that each sleep 0.05 s on 2 slots: the job lasts ~1.5 s here and longer anywhere slower,
# so the line is drawn several times. The test counts what it saw, never how long it took.
TASKS = 60
SLEEP_INPUT = b"0.05\n" * TASKS


class Progress(E2E):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mtask-e2e-progress-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.input = os.path.join(self.tmp, "input")
        with open(self.input, "wb") as f:
            f.write(SLEEP_INPUT)

    def tmux(self, *args, check=True):
        r = subprocess.run(["tmux", "-L", self.server] + list(args), capture_output=True, timeout=30)
        if check:
            self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
        return r.stdout.decode(errors="replace")

    def run_in_terminal(self, mtask_args):
        """Runs mtask in a tmux pane with stdout to a file; returns (exit code, stdout bytes, the
        distinct progress lines seen while it ran, the pane's last screen)."""
        self.assertIsNotNone(shutil.which("tmux"), "tmux is missing: run scripts/install-deps.sh")
        self.server = f"mtask-test-{os.getpid()}-{time.monotonic_ns()}"
        self.addCleanup(lambda: self.tmux("kill-server", check=False))
        out = os.path.join(self.tmp, "out")
        done = os.path.join(self.tmp, "exit")
        cmd = " ".join(shlex.quote(a) for a in [binary("mtask")] + mtask_args)
        script = (f"{cmd} < {shlex.quote(self.input)} > {shlex.quote(out)}; echo $? > {shlex.quote(done)}.tmp; "
                  f"mv {shlex.quote(done)}.tmp {shlex.quote(done)}; sleep 600")
        self.tmux("new-session", "-d", "-x", "200", "-y", "40", "-s", "job", "sh", "-c", script)
        seen = []
        deadline = time.monotonic() + 180
        while not os.path.exists(done):
            self.assertLess(time.monotonic(), deadline, "mtask did not finish in its terminal")
            for line in self.tmux("capture-pane", "-p", "-t", "job").splitlines():
                if " slots | " in line and "done:" not in line and (not seen or seen[-1] != line.strip()):
                    seen.append(line.strip())
            time.sleep(0.02)  # polling the screen, bounded by the deadline
        with open(done) as f:
            code = int(f.read())
        with open(out, "rb") as f:
            stdout = f.read()
        return code, stdout, seen, self.tmux("capture-pane", "-p", "-t", "job")

    def test_in_a_terminal_the_line_updates_in_place_ends_with_the_summary_and_stdout_is_untouched(self):
        code, stdout, seen, screen = self.run_in_terminal(["-k", "-j", "2", "--builtin", "sleep"])
        self.assertEqual(code, 0, screen)
        self.assertEqual(stdout, SLEEP_INPUT)  # sleep's result is its task: any other byte is the line leaking
        # It updated: several different lines, their counts never going back.
        self.assertGreaterEqual(len(seen), 2, f"seen: {seen}\nscreen:\n{screen}")
        counts = [int(re.match(r"(\d+)(?:/| done)", s).group(1)) for s in seen]
        self.assertEqual(counts, sorted(counts), seen)
        for s in seen:
            self.assertRegex(s, r"^(\d+/60 \d+% |\d+ done )[\d.]+/s .*\| \d+ workers \d+ slots \| \d+ failed \d+ retried "
                             r"\d+ requeued$")
        # In place: the screen ends with the summary alone, no leftover progress line above it.
        shown = [l for l in screen.splitlines() if l.strip()]
        self.assertRegex(shown[-1], rf"^mtask-sink: done: {TASKS}/{TASKS} tasks in \d+:\d\d, [\d.]+/s \| 0 failed "
                         r"0 retried 0 requeued$", screen)
        self.assertEqual([l for l in shown if " slots | " in l], [], screen)

    def test_in_a_terminal_results_on_stdout_are_byte_identical_to_a_run_without_progress(self):
        with open(self.input, "wb") as f:
            f.write(b"".join(b"line %d\n" % i for i in range(TASKS)))
        code, stdout, _, screen = self.run_in_terminal(["-k", "-j", "2", "--builtin", "echo"])
        self.assertEqual(code, 0, screen)
        self.assertEqual(stdout, b"".join(b"line %d\n" % i for i in range(TASKS)))
        self.assertIn(f"mtask-sink: done: {TASKS}/{TASKS} tasks", screen)

    def test_no_progress_silences_it_in_a_terminal(self):
        code, _, seen, screen = self.run_in_terminal(["--no-progress", "-j", "2", "--builtin", "sleep"])
        self.assertEqual(code, 0, screen)
        self.assertEqual(seen, [])
        self.assertNotIn("done:", screen)

    def test_without_a_terminal_it_is_off_by_default_and_plain_lines_with_progress(self):
        rc, out, err = run([binary("mtask"), "-j", "2", "--builtin", "sleep"], SLEEP_INPUT, timeout=180)
        self.assertEqual(rc, 0, err)
        self.assertNotIn("progress", err)
        rc, out, err = run([binary("mtask"), "-k", "-j", "2", "--builtin", "echo", "--progress",
                            "--progress-interval-ms", "10"], SLEEP_INPUT, timeout=180)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, SLEEP_INPUT)
        self.assertNotIn("\r", err)
        progress = [l for l in err.splitlines() if l.startswith("mtask-sink: progress: ")]
        self.assertGreaterEqual(len(progress), 1, err)
        self.assertEqual(progress[-1], progress[-1].rstrip())
        self.assertRegex(progress[-1], rf"^mtask-sink: progress: done: {TASKS}/{TASKS} tasks in \d+:\d\d, ")

    def test_failures_and_retries_are_counted_in_the_summary(self):
        # Tasks "0" fail (exit 1 from `test`), the others succeed; each failure is retried once.
        data = b"".join(b"%d\n" % (i % 3) for i in range(30))
        rc, out, err = run([binary("mtask"), "-j", "2", "--retries", "1", "--progress", "--", "test", "{}", "!=", "0"],
                           data, timeout=180)
        self.assertEqual(rc, 3, tail(err))
        self.assertRegex(err, r"mtask-sink: progress: done: 30/30 tasks in \d+:\d\d, [\d.]+/s \| 10 failed 10 retried "
                         r"0 requeued\n")

    def test_progress_and_no_progress_together_are_a_usage_error(self):
        rc, out, err = run([binary("mtask-sink"), "--progress", "--no-progress"])
        self.assertEqual(rc, 2)
        self.assertEqual(out, b"")
        self.assertEqual(len(err.splitlines()), 1, err)


if __name__ == "__main__":
    main()
