#!/usr/bin/env python3
"""--halt (issue 14), as GNU parallel has it: soon (no new task; running ones finish) or now
(running ones are cancelled), on failures, successes or tasks done, as a count or a percentage.
Here: what the processes say, cancellation, the three binaries by hand, and usage errors; the
byte-for-byte comparison of eight policies with parallel itself is in test_parallel_compat.py."""


from harness import E2E, binary, lines, main, run, tail

SEQ_1_10 = b"".join(b"%d\n" % i for i in range(1, 11))


class Halt(E2E):
    def mtask(self, args, data, expect):
        rc, out, err = run([binary("mtask"), "-k", "-j", "1", "--prefetch", "0"] + args, data, timeout=120)
        self.assertEqual(rc, expect, tail(err))
        return out, err

    def test_the_ventilator_names_the_policy_and_the_sink_what_it_wrote(self):
        _, err = self.mtask(["--halt", "soon,fail=1", "--", "sh", "-c", "echo {}; exit $(( {} == 3 ))"], SEQ_1_10, 3)
        self.assertIn("mtask-ventilator: warn: halting: 1 task(s) failed (--halt soon,fail=1): no new task starts; "
                      "running ones finish", err)
        self.assertIn("mtask-sink: warn: the job was halted: 1 task(s) failed (--halt soon,fail=1); writing the 3 "
                      "result(s) received", err)

    def test_now_cancels_running_tasks_and_soon_lets_them_finish(self):
        # Task 1 fails at once; the others would sleep for ten minutes: only cancelling ends the job
        # within the timeout.
        data = b"1\n2\n3\n"
        cmd = ["sh", "-c", "if [ {} = 1 ]; then exit 1; fi; sleep 600; echo {}"]
        rc, out, err = run([binary("mtask"), "-k", "-j", "3", "--halt", "now,fail=1", "--"] + cmd, data, timeout=120)
        self.assertEqual(rc, 3, tail(err))
        self.assertEqual(out, b"")
        # soon: the running ones finish and are written (short sleeps here), nothing new starts.
        cmd = ["sh", "-c", "if [ {} = 1 ]; then exit 1; fi; sleep 0.2; echo {}"]
        rc, out, err = run([binary("mtask"), "-k", "-j", "3", "--prefetch", "0", "--halt", "soon,fail=1", "--"] + cmd,
                           b"1\n2\n3\n4\n5\n6\n", timeout=120)
        self.assertEqual(rc, 3, tail(err))
        # Tasks 2 and 3 were running when task 1 failed (3 slots, all started together).
        self.assertEqual(out, b"2\n3\n")

    def test_three_binaries_by_hand_halt_together_and_keep_order_past_the_gaps(self):
        c = self.cluster()
        data = b"".join(b"%d\n" % i for i in range(1, 41))
        vent = c.ventilator(data, ["--halt", "soon,fail=1"])
        # Task 20 fails; slow tasks keep some others running when it does.
        workers = [c.worker("sh", "-c", "[ {} != 20 ] || exit 7; echo {}", jobs=2, args=["--once"]) for _ in range(2)]
        sink = c.sink(["-k"])
        out = self.finish(sink, vent, expect=3)
        got = [int(x) for x in lines(out)]
        self.assertEqual(got, sorted(got))  # in input order, past any task that never ran
        self.assertNotIn(20, got)
        self.assertLess(len(got), 40)  # it did stop early
        for w in workers:
            self.assertEqual(w.wait(60), 0, tail(w.stderr()))

    def test_a_bad_policy_is_a_usage_error(self):
        for bad in ("sometimes", "soon,fail=0", "now,fail=101%", "soon,maybe=1"):
            with self.subTest(halt=bad):
                rc, out, err = run([binary("mtask"), "--halt", bad, "--builtin", "echo"], b"a\n", timeout=60)
                self.assertEqual(rc, 2)
                self.assertEqual(out, b"")
                self.assertEqual(len(err.strip().splitlines()), 1, err)
                self.assertIn(f"--halt: '{bad}' is not a halt policy", err)


if __name__ == "__main__":
    main()
