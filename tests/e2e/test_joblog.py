#!/usr/bin/env python3
"""--joblog (issue 12): one line per attempt in GNU parallel's format, read back with awk as
parallel's readers would; the details it needs are asked for by the sink and passed on by the
ventilator, so the three binaries started by hand write it as mtask does."""

import os
import re
import shutil
import subprocess
import tempfile
import time

from harness import E2E, binary, main, run, tail

HEADER = "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand"


def awk_fields(path, fields):
    """The joblog's data lines as awk splits them on tabs: one tuple of `fields` ($N) per line."""
    prog = "NR > 1 { print " + ", ".join(f"${n}" for n in fields) + " }"
    r = subprocess.run(["awk", "-F", "\t", "-v", "OFS=\t", prog, path], capture_output=True, check=True, timeout=30)
    return [tuple(l.split("\t")) for l in r.stdout.decode().splitlines()]


class Joblog(E2E):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mtask-e2e-joblog-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.path = os.path.join(self.tmp, "joblog")

    def check_common_columns(self, started, ended, hosts_like=r"^\S+:\d+$"):
        with open(self.path) as f:
            text = f.read()
        self.assertEqual(text.splitlines()[0], HEADER)
        for seq, host, start, runtime in awk_fields(self.path, (1, 2, 3, 4)):
            self.assertRegex(host, hosts_like)
            self.assertRegex(start, r"^\d+\.\d{3}$")
            # The worker's clock, on this host: within the run (a second's slack for rounding).
            self.assertGreaterEqual(float(start), started - 1, seq)
            self.assertLessEqual(float(start), ended + 1, seq)
            self.assertEqual(len(runtime), 10, f"JobRuntime is %10.3f: {runtime!r}")
            self.assertGreaterEqual(float(runtime), 0)
        return text

    def test_three_binaries_log_every_attempt_retries_included(self):
        c = self.cluster()
        started = time.time()
        vent = c.ventilator(b"1\n2\n3\n4\n5\n6\n", ["--retries", "1"])
        # Multiples of 3 fail (exit 1): each is tried twice.
        c.worker("sh", "-c", "echo {}; exit $(({} % 3 == 0))", jobs=2)
        sink = c.sink(["-k", "--joblog", self.path])
        out = self.finish(sink, vent, expect=3)
        ended = time.time()
        self.assertEqual(out, b"1\n2\n3\n4\n5\n6\n")
        self.check_common_columns(started, ended)
        # Seq, Send, Receive, Exitval, Signal, Command: one line per attempt, 8 in all.
        got = sorted(awk_fields(self.path, (1, 5, 6, 7, 8, 9)), key=lambda t: (int(t[0]), t[3]))
        want = []
        for i in range(1, 7):
            line = (str(i), "1", "2", "1" if i % 3 == 0 else "0", "0", f"sh -c echo {i}; exit $(({i} % 3 == 0))")
            want += [line] * (2 if i % 3 == 0 else 1)
        self.assertEqual(got, want)

    def test_mtask_logs_builtins_with_their_payload_as_the_command(self):
        data = b"".join(b"task %d\n" % i for i in range(50))
        started = time.time()
        rc, out, err = run([binary("mtask"), "-k", "-j", "2", "--builtin", "echo", "--joblog", self.path], data,
                           timeout=120)
        ended = time.time()
        self.assertEqual(rc, 0, tail(err))
        self.assertEqual(out, data)
        self.check_common_columns(started, ended)
        got = sorted(awk_fields(self.path, (1, 5, 6, 7, 8, 9)), key=lambda t: int(t[0]))
        self.assertEqual(got, [(str(i + 1), str(len(b"task %d" % i)), str(len(b"task %d" % i)), "0", "0", f"task {i}")
                               for i in range(50)])

    def test_a_task_killed_by_a_signal_has_parallels_exitval_and_signal(self):
        rc, out, err = run([binary("mtask"), "-j", "1", "--joblog", self.path, "--", "sh", "-c", "kill -9 $$; #{}"],
                           b"x\n", timeout=120)
        self.assertEqual(rc, 3, tail(err))
        self.assertEqual(awk_fields(self.path, (7, 8)), [("0", "9")])

    def test_delay_spaces_the_starts_on_a_worker(self):
        # --delay 0.2 on 4 slots: the starts, read back from the joblog, are at least 0.2 s apart
        # (a slower machine only spaces them further; a millisecond's slack for the clock's rounding).
        for runner in (["--", "echo", "{}"], ["--builtin", "echo"]):
            with self.subTest(runner=runner[1]):
                rc, out, err = run([binary("mtask"), "-k", "-j", "4", "--delay", "0.2", "--joblog", self.path] + runner,
                                   b"1\n2\n3\n4\n", timeout=120)
                self.assertEqual(rc, 0, tail(err))
                self.assertEqual(out, b"1\n2\n3\n4\n")
                starts = sorted(float(s) for (s,) in awk_fields(self.path, (3,)))
                self.assertEqual(len(starts), 4)
                for a, b in zip(starts, starts[1:]):
                    self.assertGreaterEqual(b - a, 0.199, starts)

    def test_a_results_folder_that_cannot_be_written_fails_the_job_naming_it(self):
        blocker = os.path.join(self.tmp, "a-file")
        with open(blocker, "w") as f:
            f.write("not a folder")
        rc, out, err = run([binary("mtask"), "--results", blocker, "--builtin", "echo"], b"a\n", timeout=120)
        self.assertEqual(rc, 1, tail(err))
        self.assertIn(f"--results: cannot write '{blocker}/1/a'", err)

    def test_an_empty_job_leaves_the_header_alone(self):
        rc, out, err = run([binary("mtask"), "--builtin", "echo", "--joblog", self.path], b"", timeout=120)
        self.assertEqual(rc, 0, tail(err))
        with open(self.path) as f:
            self.assertEqual(f.read(), HEADER + "\n")

    def test_an_unwritable_joblog_is_named(self):
        # (--joblog with --journal: test_journal's sink kills, where the joblog goes on across them.)
        missing = os.path.join(self.tmp, "no", "such", "dir", "joblog")
        rc, out, err = run([binary("mtask"), "--builtin", "echo", "--joblog", missing], b"a\n", timeout=120)
        self.assertEqual(rc, 1)
        self.assertIn(f"cannot open '{missing}' for writing", err)


if __name__ == "__main__":
    main()
