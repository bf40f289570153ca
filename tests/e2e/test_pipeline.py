#!/usr/bin/env python3
"""The pipeline end to end: exact output with real workers, every start order, both transports,
empty and huge input, arbitrary bytes, -N and -0, {} substitution, jobs in a row."""

import itertools
import os
import random
import signal

from harness import E2E, lines, main

UPPER = bytes.maketrans(b"abcdefghijklmnopqrstuvwxyz", b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def numbered(n, prefix=b"line"):
    return b"".join(b"%s %d\n" % (prefix, i) for i in range(n))


class Pipeline(E2E):
    def run_upper(self, n_workers, jobs, data, sink_args=()):
        c = self.cluster()
        for _ in range(n_workers):
            c.worker("tr", "a-z", "A-Z", jobs=jobs)
        vent = c.ventilator(data)
        sink = c.sink(sink_args)
        return self.finish(sink, vent)

    def test_one_worker_unordered_output_is_the_reference_as_a_multiset(self):
        data = numbered(300)
        self.assertSameMultiset(self.run_upper(1, 1, data), data.translate(UPPER))

    def test_three_workers_unordered_output_is_the_reference_as_a_multiset(self):
        data = numbered(1000)
        self.assertSameMultiset(self.run_upper(3, 2, data), data.translate(UPPER))

    def test_keep_order_output_equals_the_reference_exactly(self):
        data = numbered(1000)
        self.assertEqual(self.run_upper(3, 2, data, ["-k"]), data.translate(UPPER))

    def test_keep_order_with_one_worker(self):
        data = numbered(200)
        self.assertEqual(self.run_upper(1, 1, data, ["--keep-order"]), data.translate(UPPER))

    def test_every_start_order_gives_the_same_output(self):
        data = numbered(50)
        want = data.translate(UPPER)
        for order in itertools.permutations(["worker", "ventilator", "sink"]):
            with self.subTest(order=order):
                c = self.cluster()
                started = {}
                for role in order:
                    if role == "worker":
                        started[role] = c.worker("tr", "a-z", "A-Z", jobs=2)
                    elif role == "ventilator":
                        started[role] = c.ventilator(data)
                    else:
                        started[role] = c.sink(["-k"])
                self.assertEqual(self.finish(started["sink"], started["ventilator"]), want)

    def test_workers_started_after_the_job_began_still_serve_it(self):
        data = numbered(100)
        c = self.cluster()
        vent = c.ventilator(data)
        sink = c.sink(["-k"])
        c.worker("tr", "a-z", "A-Z")
        c.worker("tr", "a-z", "A-Z")
        self.assertEqual(self.finish(sink, vent), data.translate(UPPER))

    def test_empty_input_finishes_with_no_output_even_without_workers(self):
        c = self.cluster()
        vent = c.ventilator(b"")
        sink = c.sink()
        self.assertEqual(self.finish(sink, vent), b"")

    def test_a_one_mebibyte_line_comes_back_whole(self):
        rng = random.Random(7)
        big = bytes(rng.choice(b"abcdefghij") for _ in range(1 << 20))
        data = b"short\n" + big + b"\nend\n"
        self.assertEqual(self.run_upper(2, 1, data, ["-k"]), data.translate(UPPER))

    def test_non_utf8_bytes_pass_through_unchanged(self):
        rng = random.Random(11)
        alphabet = bytes(b for b in range(256) if b != 10)
        recs = [bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 80))) for _ in range(200)]
        data = b"\n".join(recs) + b"\n"
        c = self.cluster()
        c.worker("cat", jobs=2)
        vent = c.ventilator(data)
        sink = c.sink(["-k"])
        self.assertEqual(self.finish(sink, vent), data)

    def test_last_line_without_newline_is_a_task(self):
        self.assertEqual(self.run_upper(1, 1, b"a\nb\nc", ["-k"]), b"A\nB\nC\n")

    def test_lines_per_task_groups_n_lines(self):
        c = self.cluster()
        # Each task's stdin holds its three lines; wc -l counts them.
        c.worker("wc", "-l", jobs=2)
        vent = c.ventilator(numbered(10), ["-N", "3"])
        sink = c.sink(["-k"])
        self.assertEqual([int(x) for x in lines(self.finish(sink, vent))], [3, 3, 3, 1])

    def test_null_separated_records(self):
        c = self.cluster()
        c.worker("sh", "-c", "tr '\\0' '|'")
        vent = c.ventilator(b"a b\0c\nd\0e\0", ["-0"])
        sink = c.sink(["-k"])
        # Each record reaches stdin with its NUL terminator, which tr turns into '|'.
        self.assertEqual(self.finish(sink, vent), b"a b|\nc\nd|\ne|\n")

    def test_braces_are_replaced_by_the_task(self):
        c = self.cluster()
        c.worker("echo", "item={}", "{}{}", jobs=2)
        vent = c.ventilator(b"x\ny z\n")
        sink = c.sink(["-k"])
        self.assertEqual(self.finish(sink, vent), b"item=x xx\nitem=y z y zy z\n")

    def test_input_file_flag_reads_the_file(self):
        c = self.cluster()
        path = os.path.join(c.dir, "input.txt")
        with open(path, "wb") as f:
            f.write(numbered(20))
        c.worker("tr", "a-z", "A-Z")
        vent = c.ventilator(args=["--input", path])
        sink = c.sink(["-k"])
        self.assertEqual(self.finish(sink, vent), numbered(20).translate(UPPER))

    def test_output_rule_empty_results_write_nothing_and_newlines_are_added(self):
        c = self.cluster()
        # "skip" prints nothing; others print without a trailing newline.
        c.worker("sh", "-c", 'read x; [ "$x" = skip ] || printf "%s" "$x"')
        vent = c.ventilator(b"a\nskip\nb\n")
        sink = c.sink(["-k"])
        self.assertEqual(self.finish(sink, vent), b"a\nb\n")

    def test_builtin_echo_returns_each_task(self):
        data = numbered(5000)
        c = self.cluster()
        c.worker(builtin="echo", jobs=4)
        vent = c.ventilator(data)
        sink = c.sink(["-k"])
        self.assertEqual(self.finish(sink, vent), data)

    def test_progress_never_waits_for_a_heartbeat(self):
        # With heartbeats 30 s apart, a job that only moved on heartbeats would take minutes; every
        # step must be driven by the messages themselves (start order included).
        data = numbered(20000)
        c = self.cluster(heartbeat_ms=30000, heartbeat_timeout_ms=60000)
        c.worker(builtin="echo", jobs=2)
        vent = c.ventilator(data)
        sink = c.sink(["-k"])
        self.assertEqual(self.finish(sink, vent, timeout=25), data)

    def test_two_jobs_in_a_row_through_the_same_workers(self):
        c = self.cluster()
        w1 = c.worker("tr", "a-z", "A-Z", jobs=2)
        w2 = c.worker("tr", "a-z", "A-Z", jobs=2)
        for n, prefix in ((100, b"first"), (150, b"second")):
            data = numbered(n, prefix)
            vent = c.ventilator(data)
            sink = c.sink(["-k"])
            self.assertEqual(self.finish(sink, vent), data.translate(UPPER))
        self.assertTrue(w1.alive() and w2.alive(), "workers are long-lived")

    def test_once_workers_exit_cleanly_when_the_job_completes(self):
        c = self.cluster()
        workers = [c.worker("tr", "a-z", "A-Z", args=["--once"]) for _ in range(2)]
        vent = c.ventilator(numbered(30))
        sink = c.sink()
        self.finish(sink, vent)
        for w in workers:
            self.assertEqual(w.wait(10), 0, w.stderr())

    def test_late_once_workers_exit_0_while_the_ventilator_lingers(self):
        # srun and Kubernetes start workers seconds apart: one that arrives after the job ended, or
        # that never got a task, must end 0 at once, not wait out --idle-timeout-ms and fail.
        c = self.cluster()
        early = c.worker(builtin="echo", args=["--once"])
        vent = c.ventilator(numbered(3), args=["--linger-ms", "60000"])
        sink = c.sink()
        self.assertEqual(sink.wait(60), 0, sink.stderr())
        self.assertEqual(early.wait(60), 0, early.stderr())
        self.assertTrue(vent.alive(), "the ventilator lingers")
        # Never heard the job, idle timeout at its default: exits 0 as soon as it is told.
        late = [c.worker(builtin="echo", args=["--once"]) for _ in range(2)]
        for w in late:
            self.assertEqual(w.wait(30), 0, w.stderr())
        self.assertTrue(vent.alive(), "the linger is not over yet")
        vent.signal(signal.SIGTERM)
        vent.wait(30)


class PipelineOverTcp(Pipeline):
    transport = "tcp"


if __name__ == "__main__":
    main()
