#!/usr/bin/env python3
"""mtask, a whole job in one command: exact output, the roles' flags handed to their owners, the
sink's exit code, usage errors, and cleanup of everything it started (its children found through
/proc by parent pid, never by name: other tests run mtask-* processes at the same time) on
success, on SIGINT and on its own kill -9, private folder included."""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

from harness import E2E, binary, lines, main, run, tail, wait_until

NUMBERS_1_200 = b"".join(b"%d\n" % i for i in range(1, 201))


def proc_stat(pid):
    """(parent pid, state, start time) of a live process, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2:].split()  # the name may hold spaces and parentheses
    return int(fields[1]), fields[0], int(fields[19])


def descendants(root):
    """{pid: start time} of every process below `root` now (children, their commands...)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st:
                parents[int(entry)] = st
    found, frontier = {}, [root]
    while frontier:
        p = frontier.pop()
        for pid, (ppid, _, start) in parents.items():
            if ppid == p and pid not in found:
                found[pid] = start
                frontier.append(pid)
    return found


def still_running(procs):
    """The pids among {pid: start time} that still run (a zombie has finished; a reused pid is
    another process)."""
    left = []
    for pid, start in procs.items():
        st = proc_stat(pid)
        if st and st[1] != "Z" and st[2] == start:
            left.append(pid)
    return left


class Mtask(E2E):
    def setUp(self):
        # A TMPDIR of our own: the private folder mtask makes must be gone from it at the end.
        self.tmp = tempfile.mkdtemp(prefix="mtask-e2e-launch-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.env = dict(os.environ, TMPDIR=self.tmp)

    def run_mtask(self, args, input_bytes=b"", timeout=120):
        r = subprocess.run([binary("mtask")] + args, input=input_bytes, capture_output=True, timeout=timeout,
                           env=self.env)
        return r.returncode, r.stdout, r.stderr.decode(errors="replace")

    def start_mtask(self, args, input_bytes):
        path = os.path.join(self.tmp, "input")
        with open(path, "wb") as f:
            f.write(input_bytes)
        self.out_path = os.path.join(self.tmp, "out")
        self.err_path = os.path.join(self.tmp, "err")
        with open(path, "rb") as stdin, open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            p = subprocess.Popen([binary("mtask")] + args, stdin=stdin, stdout=out, stderr=err, env=self.env)
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.wait()))
        return p

    def stderr_text(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode(errors="replace")

    def output_lines(self):
        with open(self.out_path, "rb") as f:
            return f.read().count(b"\n")

    def assertNoPrivateFolderLeft(self):
        self.assertEqual([e for e in os.listdir(self.tmp) if e.startswith("mtask-")], [])

    def hanging_job(self):
        """A job whose first 100 tasks answer and whose others hang; returns mtask once 20 results
        are out, and every process it started (the three roles and their commands)."""
        script = 'if [ "$1" -gt 100 ]; then exec sleep 100000; fi; echo "r$1"'
        p = self.start_mtask(["-j", "2", "--", "sh", "-c", script, "_", "{}"], NUMBERS_1_200)
        wait_until(lambda: self.output_lines() >= 20 or p.poll() is not None, 120, "20 results")
        self.assertIsNone(p.poll(), f"mtask exited early; stderr:\n{tail(self.stderr_text())}")
        procs = descendants(p.pid)
        self.assertGreaterEqual(len(procs), 3, "the sink, the ventilator and the worker")
        return p, procs

    def test_a_command_job_gives_the_exact_output_in_order(self):
        rc, out, err = self.run_mtask(["-j", "4", "-k", "--", "sh", "-c", 'echo "x$1"', "_", "{}"], NUMBERS_1_200)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, b"".join(b"x%d\n" % i for i in range(1, 201)))
        self.assertEqual(err, "")
        self.assertNoPrivateFolderLeft()

    def test_a_builtin_job_of_100000_tasks_returns_each_once(self):
        numbers = b"".join(b"%d\n" % i for i in range(100000))
        rc, out, err = self.run_mtask(["--builtin", "echo"], numbers, timeout=300)
        self.assertEqual(rc, 0, err)
        got = lines(out)
        self.assertEqual(len(got), 100000)
        self.assertEqual(sorted(got, key=int), lines(numbers))
        self.assertNoPrivateFolderLeft()

    def test_splitting_flags_go_to_the_ventilator_and_reduce_to_the_sink(self):
        rc, out, err = self.run_mtask(["-j", "2", "--reduce", "sum", "--range", "1:1000", "--builtin", "echo"])
        self.assertEqual((rc, out), (0, b"500500\n"), err)
        # Two lines a task: each result is two numbers, summed line by line.
        rc, out, err = self.run_mtask(["-N", "2", "--reduce", "sum", "--per-line", "--", "cat"], NUMBERS_1_200)
        self.assertEqual((rc, out), (0, b"20100\n"), err)

    def test_every_form_of_j_runs_the_job_within_its_slots(self):
        # {%} is the slot a task ran in: never past what -j asked for (cores from os.cpu_count()).
        cores = os.cpu_count() or 1
        for jobs, most in (("3", 3), ("0", 256), ("50%", max(1, (cores * 50 + 50) // 100)), ("+1", cores + 1),
                           ("-1", max(1, cores - 1)), ("-99", 1)):
            with self.subTest(jobs=jobs):
                rc, out, err = self.run_mtask(["-j", jobs, "--", "echo", "{%}"], b"a\nb\nc\nd\n")
                self.assertEqual(rc, 0, err)
                slots = [int(x) for x in lines(out)]
                self.assertEqual(len(slots), 4)
                self.assertTrue(all(1 <= x <= most for x in slots), f"-j {jobs}: slots {slots}")

    def test_argument_lists_are_the_input_and_stdin_is_not_read(self):
        path = os.path.join(self.tmp, "args")
        with open(path, "wb") as f:
            f.write(b"x\ny\n")
        rc, out, err = self.run_mtask(["-k", "-j", "2", "--", "echo", "{1}{2}", ":::", "a", "b", "::::", path],
                                      b"stdin is not read\n")
        self.assertEqual((rc, out), (0, b"ax\nay\nbx\nby\n"), err)

    def test_persistent_commands_and_an_input_file(self):
        path = os.path.join(self.tmp, "words")
        with open(path, "wb") as f:
            f.write(b"a\nb\nc\n")
        rc, out, err = self.run_mtask(["-j", "2", "-k", "--input", path, "--persistent", "--", "sed", "-u", "s/^/w/"])
        self.assertEqual((rc, out), (0, b"wa\nwb\nwc\n"), err)

    def test_a_failing_task_makes_it_exit_3_and_is_named(self):
        rc, out, err = self.run_mtask(["-j", "2", "-k", "--", "sh", "-c", 'test "$1" -ne 7 && echo "$1"', "_", "{}"],
                                      b"".join(b"%d\n" % i for i in range(1, 11)))
        self.assertEqual(rc, 3, err)
        self.assertEqual(out, b"1\n2\n3\n4\n5\n6\n8\n9\n10\n")
        self.assertIn("task 6 failed: exit status 1", err)
        self.assertNoPrivateFolderLeft()

    def test_a_bad_flag_is_a_one_line_usage_error(self):
        for args, needle in ((["--no-such-flag", "--", "cat"], "--no-such-flag"),
                             (["-j", "5000", "--", "cat"], "-j: 5000 is more than the most slots"),
                             (["--builtin", "echo", "--", "cat"], "not both"),
                             ([], "no command"),
                             (["--reduce", "sum", "-k", "--", "cat"], "excludes")):
            with self.subTest(args=args):
                rc, out, err = self.run_mtask(args)
                self.assertEqual(rc, 2, err)
                self.assertEqual(out, b"")
                self.assertEqual(len(err.strip().splitlines()), 1, err)
                self.assertIn(needle, err)
                self.assertIn("try --help", err)
        self.assertNoPrivateFolderLeft()

    def test_default_slots_follow_the_cpus_we_may_use(self):
        # -j's default is the cores this process may use: its affinity (taskset, a cpuset) and a
        # cgroup CPU quota, as a container's CPU limit sets it (a pod limited to 2 CPUs on a 64-core
        # node must not run 64 tasks at once).
        def default_slots(prefix=()):
            out = subprocess.run(list(prefix) + [binary("mtask-worker"), "--help"], capture_output=True, text=True,
                                 check=True).stdout
            return int(re.search(r"default: one per core \((\d+) here\)", out).group(1))

        self.assertEqual(default_slots(["taskset", "-c", "0"]), 1)
        if os.geteuid() != 0:
            raise AssertionError("this test needs root to make a cgroup with a CPU quota; CI runs as root")
        name = f"mtask-e2e-{os.getpid()}"
        if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):  # cgroup v2
            control = "/sys/fs/cgroup/cgroup.subtree_control"
            with open(control) as f:
                enabled = "cpu" in f.read().split()
            if not enabled:
                try:
                    with open(control, "w") as f:
                        f.write("+cpu")
                except OSError as e:  # a container's root cgroup holding processes: EBUSY
                    raise AssertionError(f"cannot enable the cpu controller here ({e}): run as CI does") from e

                def disable():
                    with open(control, "w") as f:
                        f.write("-cpu")

                self.addCleanup(disable)
            cg = f"/sys/fs/cgroup/{name}"
            os.mkdir(cg)
            self.addCleanup(os.rmdir, cg)
            with open(f"{cg}/cpu.max", "w") as f:
                f.write("150000 100000")  # 1.5 CPUs
        else:  # cgroup v1's cpu controller
            cg = f"/sys/fs/cgroup/cpu/{name}"
            os.mkdir(cg)
            self.addCleanup(os.rmdir, cg)
            with open(f"{cg}/cpu.cfs_period_us", "w") as f:
                f.write("100000")
            with open(f"{cg}/cpu.cfs_quota_us", "w") as f:
                f.write("50000")  # half a CPU
        quota = 2 if cg.startswith("/sys/fs/cgroup/mtask") else 1
        enter = ["sh", "-c", f'echo $$ > {cg}/cgroup.procs && exec "$@"', "sh"]
        self.assertEqual(default_slots(enter), min(quota, len(os.sched_getaffinity(0))))

    def test_ssh_takes_one_login_a_use_so_a_command_without_dashes_still_runs(self):
        # ':' is this machine: no ssh, no TCP; the words after the login are the command.
        code, out, err = run([binary("mtask"), "-S", ":", "-k", "echo", "hi", "{}"], b"a\nb\n")
        self.assertEqual((code, out), (0, b"hi a\nhi b\n"), err)

    def test_help_lists_every_roles_flags(self):
        rc, out, err = self.run_mtask(["--help"])
        self.assertEqual(rc, 0, err)
        for flag in (b"--range", b"--block", b"--jobs", b"--persistent", b"--builtin", b"--keep-order", b"--reduce",
                     b"--journal", b"--retries", b"--task-timeout-ms", b"--failures"):
            self.assertIn(flag, out)
        self.assertNotIn(b"--once", out)  # mtask's worker always leaves with the job

    def test_a_command_that_does_not_exist_is_a_clear_error(self):
        rc, out, err = self.run_mtask(["--", "no-such-command-mtask"], b"a\n", timeout=30)
        self.assertEqual(rc, 1)
        self.assertEqual(out, b"")
        self.assertIn("command 'no-such-command-mtask' not found", err)
        self.assertNoPrivateFolderLeft()

    def test_a_role_that_fails_stops_the_job(self):
        # The ventilator cannot open its input: mtask stops the sink and the worker, not waiting
        # out their --idle-timeout-ms.
        rc, out, err = self.run_mtask(["--input", "/nonexistent/input.txt", "--builtin", "echo"], timeout=60)
        self.assertEqual(rc, 1, err)
        self.assertIn("cannot open '/nonexistent/input.txt'", err)
        self.assertIn("mtask-ventilator exited with status 1; stopping the job", err)
        self.assertNoPrivateFolderLeft()

    def test_sigint_mid_job_stops_everything_and_exits_130(self):
        p, procs = self.hanging_job()
        p.send_signal(signal.SIGINT)
        try:
            rc = p.wait(120)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"mtask did not stop; stderr:\n{tail(self.stderr_text())}") from None
        self.assertEqual(rc, 130, self.stderr_text())
        wait_until(lambda: not still_running(procs), 30, "every process mtask started to exit")
        self.assertNoPrivateFolderLeft()

    def test_kill_9_of_mtask_takes_its_children_down(self):
        p, procs = self.hanging_job()
        p.kill()
        p.wait()
        # PR_SET_PDEATHSIG: each role gets SIGTERM, stops its commands and exits.
        wait_until(lambda: not still_running(procs), 60, f"the processes of a killed mtask to exit ({procs})")
        # The last role to leave removes the private folder.
        wait_until(lambda: not [e for e in os.listdir(self.tmp) if e.startswith("mtask-")], 30,
                   "the private folder to be removed")

    def test_a_journaled_job_killed_with_kill_9_continues_when_run_again(self):
        """The same mtask command run again after its kill -9 resumes: the sink from its journal,
        the ventilator from the sink's claim (issue 11). 4000 tasks of 1 ms on 2 slots take at
        least 2 s, so the kill after 1000 journaled results falls mid-job however fast the machine."""
        from test_journal import journal_ids
        payload = b"0.001\n" * 4000
        out = os.path.join(self.tmp, "results")
        journal = os.path.join(self.tmp, "journal")
        args = ["-j", "2", "-k", "--builtin", "sleep", "--output", out, "--journal", journal]
        p = self.start_mtask(args, payload)
        wait_until(lambda: len(journal_ids(journal)) >= 1000 or p.poll() is not None, 120, "1000 results journaled")
        self.assertIsNone(p.poll(), f"mtask ended before the kill:\n{tail(self.stderr_text())}")
        procs = descendants(p.pid)
        p.kill()
        p.wait()
        wait_until(lambda: not still_running(procs), 60, "the killed job's processes to exit")
        self.assertLess(len(journal_ids(journal)), 4000, "killed mid-job")
        # The same command on the same input file (start_mtask would rewrite it: another mtime).
        with open(os.path.join(self.tmp, "input"), "rb") as stdin, open(self.err_path, "wb") as err:
            again = subprocess.run([binary("mtask")] + args, stdin=stdin, stderr=err, env=self.env, timeout=120)
        self.assertEqual(again.returncode, 0, self.stderr_text())
        self.assertIn("resuming job", self.stderr_text())
        with open(out, "rb") as f:
            self.assertEqual(f.read(), payload, "byte for byte the undisturbed run's output")
        self.assertNoPrivateFolderLeft()


if __name__ == "__main__":
    main()
