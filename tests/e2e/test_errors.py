#!/usr/bin/env python3
"""Bad input gets a clear error and loses nothing: usage errors exit 2 with one line, runtime
errors exit 1 with a message naming the culprit, failing tasks make the job exit 3."""

import os

from harness import E2E, binary, lines, main, run, wait_listening

ROLES = ("mtask-ventilator", "mtask-worker", "mtask-sink")


class UsageErrors(E2E):
    def assertUsageError(self, argv, needle):
        rc, out, err = run(argv)
        self.assertEqual(rc, 2, err)
        self.assertEqual(out, b"")
        self.assertEqual(len(err.strip().splitlines()), 1, f"one line expected, got:\n{err}")
        self.assertIn(needle, err)
        self.assertIn("try --help", err)

    def test_unknown_flag_is_a_one_line_usage_error_in_every_binary(self):
        for role in ROLES:
            with self.subTest(role=role):
                self.assertUsageError([binary(role), "--no-such-flag"], "--no-such-flag")

    def test_malformed_endpoint_is_a_usage_error_in_every_binary(self):
        for role in ROLES:
            with self.subTest(role=role):
                self.assertUsageError([binary(role), "--ventilator", "localhost:5557"], "is not an endpoint")
                self.assertUsageError([binary(role), "--sink", "udp://x:1"], "is not an endpoint")

    def test_non_numeric_and_out_of_range_values_are_usage_errors(self):
        for program in (binary("mtask-worker"), binary("mtask")):
            with self.subTest(program=program):
                self.assertUsageError([program, "-j", "many", "--", "cat"], "-j: 'many' is not N, 0, N%, +N or -N")
                self.assertUsageError([program, "-j", "5000", "--", "cat"], "-j: 5000 is more than the most slots")
                self.assertUsageError([program, "-j", "1.5", "--", "cat"], "-j: '1.5'")
        self.assertUsageError([binary("mtask-ventilator"), "-N", "0"], "--lines")
        self.assertUsageError([binary("mtask-sink"), "--heartbeat-ms", "-5"], "--heartbeat-ms")

    def test_heartbeat_timeout_must_exceed_the_interval(self):
        self.assertUsageError([binary("mtask-sink"), "--heartbeat-ms", "500", "--heartbeat-timeout-ms", "400"],
                              "--heartbeat-timeout-ms")

    def test_worker_needs_a_command_or_a_builtin_but_not_both(self):
        self.assertUsageError([binary("mtask-worker")], "no command")
        self.assertUsageError([binary("mtask-worker"), "--builtin", "echo", "--", "cat"], "not both")
        self.assertUsageError([binary("mtask-worker"), "--builtin", "nope"], "unknown built-in 'nope'")

    def test_replacement_string_flags_that_do_not_go_together_are_usage_errors(self):
        for program in (binary("mtask-worker"), binary("mtask")):
            with self.subTest(program=program):
                self.assertUsageError([program, "--colsep", "a(b", "--", "echo", "{1}"],
                                      "--colsep: 'a(b' is not a regular expression")
                self.assertUsageError([program, "--colsep", ",", "--", "cat"], "--colsep needs a replacement string")
                self.assertUsageError([program, "--persistent", "--", "sed", "s/^/{}/"],
                                      "--persistent writes each task to the command's stdin")
                self.assertUsageError([program, "--dry-run", "--builtin", "echo"], "--dry-run needs a command")

    def test_argument_lists_that_cannot_work_are_usage_errors(self):
        for program, command in ((binary("mtask"), ["--", "echo"]), (binary("mtask-ventilator"), [])):
            with self.subTest(program=program):
                self.assertUsageError([program] + command + [":::"], "::: needs at least one argument after it")
                self.assertUsageError([program] + command + [":::", "a", "::::"], ":::: needs a file after it")
                self.assertUsageError([program, "--range", "1:3"] + command + [":::", "a"],
                                      "--range cannot be used with ::: or ::::")
                self.assertUsageError([program, "--input", "x"] + command + [":::", "a"],
                                      "--input cannot be used with ::: or ::::")
                self.assertUsageError([program, "-0"] + command + [":::", "a"], "-0 cannot be used with ::: or ::::")
        self.assertUsageError([binary("mtask"), "--colsep", ",", "--", "echo", "{1}", ":::", "a", ":::", "b"],
                              "--colsep cannot be used with several ::: or :::: groups")
        self.assertUsageError([binary("mtask"), "--builtin", "echo", "--", ":::", "a", ":::", "b"],
                              "several ::: or :::: groups need a command")

    def test_help_goes_to_stdout_and_exits_0(self):
        for role in ROLES:
            with self.subTest(role=role):
                rc, out, err = run([binary(role), "--help"])
                self.assertEqual(rc, 0)
                self.assertEqual(err, "")
                for flag in (b"--ventilator", b"--sink", b"--heartbeat-ms", b"--idle-timeout-ms", b"--verbose"):
                    self.assertIn(flag, out)


class RuntimeErrors(E2E):
    def test_missing_input_file_is_a_clear_error(self):
        rc, out, err = run([binary("mtask-ventilator"), "--ventilator", "ipc:///tmp/mtask-unused-vent",
                            "--input", "/nonexistent/input.txt"])
        self.assertEqual(rc, 1)
        self.assertIn("cannot open '/nonexistent/input.txt': No such file or directory", err)

    def test_missing_argument_file_is_a_clear_error(self):
        for argv in ([binary("mtask"), "--", "echo", "::::", "/nonexistent/args.txt"],
                     [binary("mtask-ventilator"), "--ventilator", "ipc:///tmp/mtask-unused-vent", "::::",
                      "/nonexistent/args.txt"]):
            with self.subTest(program=argv[0]):
                rc, out, err = run(argv)
                self.assertEqual(rc, 1, err)
                self.assertEqual(out, b"")
                self.assertIn("cannot open '/nonexistent/args.txt': No such file or directory", err)

    def test_command_that_does_not_exist_fails_fast_and_nothing_hangs(self):
        c = self.cluster()
        w = c.worker("no-such-command-mtask")
        self.assertEqual(w.wait(10), 1)
        self.assertIn("command 'no-such-command-mtask' not found", w.stderr())
        # With no worker able to serve, the ventilator and the sink give up in bounded time.
        vent = c.ventilator(b"a\nb\n", ["--idle-timeout-ms", "1500"])
        sink = c.sink(["--idle-timeout-ms", "3000"])
        self.assertEqual(vent.wait(20), 1)
        self.assertIn("without a live worker", vent.stderr())
        # The ventilator tells the sink why it gave up, so the sink does not wait out its own timeout.
        self.assertEqual(sink.wait(20), 1)
        self.assertIn("the ventilator gave up: giving up after 1500 ms without a live worker", sink.stderr())

    def test_unreachable_ventilator_makes_the_sink_give_up_with_a_message(self):
        c = self.cluster()
        sink = c.sink(["--idle-timeout-ms", "500"])
        self.assertEqual(sink.wait(20), 1)
        self.assertIn(f"giving up after 500 ms without a ventilator at '{c.vent_ep}'", sink.stderr())

    def test_missing_sink_makes_the_ventilator_give_up_with_a_message(self):
        c = self.cluster()
        vent = c.ventilator(b"x\n", ["--idle-timeout-ms", "500"])
        self.assertEqual(vent.wait(20), 1)
        self.assertIn("without a sink", vent.stderr())

    def test_endpoint_in_use_is_a_clear_error(self):
        c = self.cluster(transport="tcp")
        first = c.sink()
        wait_listening(c.sink_ep)
        second = c.sink()
        self.assertEqual(second.wait(10), 1)
        self.assertIn(f"cannot bind '{c.sink_ep}': Address already in use", second.stderr())
        self.assertTrue(first.alive())

    def test_failing_tasks_are_named_and_the_job_exits_3(self):
        c = self.cluster()
        script = 'read x; case "$x" in *3) echo "bad $x" >&2; exit 4;; esac; echo "ok $x"'
        c.worker("sh", "-c", script, jobs=2)
        vent = c.ventilator(b"".join(b"%d\n" % i for i in range(20)))
        sink = c.sink(["-k"])
        out = self.finish(sink, vent, expect=3)
        self.assertEqual(lines(out), [b"ok %d" % i for i in range(20) if i % 10 != 3])
        err = sink.stderr()
        self.assertIn("task 3 failed: exit status 4: bad 3", err)
        self.assertIn("task 13 failed: exit status 4: bad 13", err)
        self.assertIn("2 of 20 task(s) failed", err)

    def test_a_task_over_max_output_bytes_fails_once_even_with_retries(self):
        """--retries reruns failures, but not one whose output passed --max-output-bytes: a rerun
        would write as much again (it used to run 1 + retries times)."""
        c = self.cluster()
        side = os.path.join(c.dir, "runs")
        script = f'read x; echo "$x" >> {side}; if [ "$x" = big ]; then head -c 100 /dev/zero | tr "\\0" x; fi; echo "$x"'
        c.worker("sh", "-c", script, jobs=2, args=["--max-output-bytes", "10"])
        vent = c.ventilator(b"a\nbig\nb\n", args=["--retries", "2"])
        sink = c.sink(["-k"])
        self.assertEqual(self.finish(sink, vent, expect=3), b"a\nb\n")
        self.assertIn("task 1 failed: too large: output exceeded --max-output-bytes (10 bytes)", sink.stderr())
        with open(side, "rb") as f:
            self.assertEqual(sorted(lines(f.read())), [b"a", b"b", b"big"])

    def test_a_task_killed_by_a_signal_is_a_failure(self):
        c = self.cluster()
        c.worker("sh", "-c", 'read x; [ "$x" = die ] && kill -9 $$; echo "$x"')
        vent = c.ventilator(b"a\ndie\nb\n")
        sink = c.sink(["-k"])
        self.assertEqual(self.finish(sink, vent, expect=3), b"a\nb\n")
        self.assertIn("task 1 failed: killed by signal 9", sink.stderr())

    def test_closed_stdout_is_reported_not_a_silent_death(self):
        c = self.cluster()
        c.worker(builtin="echo")
        vent = c.ventilator(b"x\n" * 10)
        rfd, wfd = os.pipe()
        os.close(rfd)  # nobody will read the sink's output
        import subprocess
        sink = subprocess.Popen([binary("mtask-sink")] + c.common(), stdout=wfd, stderr=subprocess.PIPE)
        os.close(wfd)
        _, err = sink.communicate(timeout=20)
        self.assertEqual(sink.returncode, 1)
        self.assertIn(b"cannot write to stdout: Broken pipe", err)
        vent.wait(20)


if __name__ == "__main__":
    main()
