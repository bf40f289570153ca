#!/usr/bin/env python3
"""Decomposition and aggregation end to end: --range and --block at the ventilator; --reduce,
--reduce-by-key and --jsonl at the sink, exact against references computed here; a C++ worker
on the handler API."""

import collections
import json
import os
import random
import subprocess
from fractions import Fraction

from harness import E2E, BIN_DIR, lines, main


class Decomposition(E2E):
    def test_range_tasks_are_what_seq_prints(self):
        for spec, seq_args in (("1:10", ["1", "10"]), ("10:-5:-3", ["10", "-3", "-5"]), ("0:100:7", ["0", "7", "100"]),
                               ("5:1", ["5", "1"])):
            with self.subTest(spec=spec):
                c = self.cluster()
                c.worker(builtin="echo")
                vent = c.ventilator(args=["--range", spec])
                sink = c.sink(["-k"])
                want = subprocess.run(["seq"] + seq_args, capture_output=True, check=True).stdout
                self.assertEqual(self.finish(sink, vent), want)

    def test_block_tasks_are_whole_records_of_about_the_block_size(self):
        rng = random.Random(5)
        recs = [b"r%d-" % i + b"x" * rng.randint(0, 300) for i in range(2000)]
        data = b"\n".join(recs) + b"\n"
        c = self.cluster()
        # Each task reports its size and its record count, then the records themselves.
        c.worker("sh", "-c", 'wc -c | tr -d " "', jobs=2)
        vent = c.ventilator(data, ["--block", "4k"])
        sink = c.sink(["-k"])
        sizes = [int(x) for x in lines(self.finish(sink, vent))]
        self.assertEqual(sum(sizes), len(data), "every byte in exactly one task")
        self.assertTrue(all(s <= 4096 + 310 for s in sizes), sizes)
        self.assertGreater(len(sizes), len(data) // 4096 - 1)

    def test_block_payloads_reassemble_the_input(self):
        data = b"".join(b"line %d\n" % i for i in range(5000))
        c = self.cluster()
        c.worker("cat", jobs=2)
        vent = c.ventilator(data, ["--block", "1k"])
        sink = c.sink(["-k"])
        self.assertEqual(self.finish(sink, vent), data)


class Reduction(E2E):
    def reduce(self, data, sink_args, worker_cmd=("cat",), expect=0):
        c = self.cluster()
        c.worker(*worker_cmd, jobs=2)
        c.worker(*worker_cmd, jobs=2)
        vent = c.ventilator(data)
        sink = c.sink(sink_args)
        return self.finish(sink, vent, expect=expect), sink

    def test_sum_count_min_max_mean_are_exact_for_integers(self):
        rng = random.Random(3)
        nums = [rng.randint(-10**18, 10**18) for _ in range(2000)] + [2**62, 2**62, 2**62]
        data = b"".join(b"%d\n" % n for n in nums)
        mean = Fraction(sum(nums), len(nums))
        expected = {
            "sum": b"%d\n" % sum(nums),
            "count": b"%d\n" % len(nums),
            "min": b"%d\n" % min(nums),
            "max": b"%d\n" % max(nums),
        }
        for op, want in expected.items():
            with self.subTest(op=op):
                out, _ = self.reduce(data, ["--reduce", op])
                self.assertEqual(out, want)
        # Not an integer: the double nearest the exact mean, in its shortest form.
        self.assertNotEqual(mean.denominator, 1)
        out, _ = self.reduce(data, ["--reduce", "mean"])
        self.assertEqual(float(out), float(mean))

    def test_a_sum_beyond_64_bits_prints_every_digit(self):
        data = b"9223372036854775807\n" * 10
        out, _ = self.reduce(data, ["--reduce", "sum"])
        self.assertEqual(out, b"%d\n" % (9223372036854775807 * 10))

    def test_per_line_reduces_every_line_of_every_result(self):
        # Each task (a number n) yields n lines "1".. "n": the total is the sum of triangular numbers.
        data = b"".join(b"%d\n" % n for n in range(1, 51))
        out, _ = self.reduce(data, ["--reduce", "sum", "--per-line"], worker_cmd=("sh", "-c", "read n; seq 1 $n"))
        self.assertEqual(out, b"%d\n" % sum(n * (n + 1) // 2 for n in range(1, 51)))

    def test_a_result_that_is_not_a_number_is_named_and_left_out(self):
        out, sink = self.reduce(b"1\n2\nthree\n4\n", ["--reduce", "sum"], expect=3)
        self.assertEqual(out, b"7\n")
        self.assertIn("task 2: not a number: 'three'", sink.stderr())

    def test_reduce_by_key_counts_words_like_sort_uniq(self):
        rng = random.Random(8)
        words = [rng.choice(["apple", "pear", "fig", "kiwi", "é-accent", "Zed"]) for _ in range(3000)]
        data = b"".join(w.encode() + b"\n" for w in words)
        out, _ = self.reduce(data, ["--reduce-by-key", "sum"], worker_cmd=("sh", "-c", 'read w; printf "%s\\t1\\n" "$w"'))
        counts = collections.Counter(w.encode() for w in words)
        want = b"".join(b"%s\t%d\n" % (k, counts[k]) for k in sorted(counts))
        self.assertEqual(out, want)

    def test_jsonl_describes_each_result(self):
        c = self.cluster()
        c.worker("sh", "-c", 'read x; [ "$x" = bad ] && { echo oops >&2; exit 2; }; echo "got $x"')
        vent = c.ventilator(b"a\nbad\nc\n")
        sink = c.sink(["--jsonl", "-k"])
        records = [json.loads(l) for l in lines(self.finish(sink, vent, expect=3))]
        self.assertEqual([r["id"] for r in records], [0, 1, 2])
        self.assertEqual([r["status"] for r in records], ["ok", "failed", "ok"])
        self.assertEqual(records[0]["output"], "got a\n")
        self.assertEqual(records[1]["exit_status"], 2)
        self.assertEqual(records[1]["stderr"], "oops\n")
        for r in records:
            self.assertRegex(r["worker"], r"^.+:\d+$")
            self.assertIsInstance(r["runtime_us"], int)
            self.assertEqual(r["attempts"], 1)

    def test_reduce_and_keep_order_do_not_mix(self):
        c = self.cluster()
        sink = c.sink(["--reduce", "sum", "-k"])
        self.assertEqual(sink.wait(10), 2)
        self.assertIn("excludes", sink.stderr())

    def test_unknown_reduce_operation_is_a_usage_error(self):
        c = self.cluster()
        sink = c.sink(["--reduce", "median"])
        self.assertEqual(sink.wait(10), 2)
        self.assertIn("--reduce: unknown operation 'median' (known: sum, count, min, max, mean)", sink.stderr())


class Builtins(E2E):
    def test_builtin_sleep_echoes_its_task_and_fails_on_a_non_number(self):
        c = self.cluster()
        c.worker(builtin="sleep", jobs=3)
        vent = c.ventilator(b"0.01\n0\nsoon\n0.02\n")
        sink = c.sink(["-k"])
        self.assertEqual(self.finish(sink, vent, expect=3), b"0.01\n0\n0.02\n")
        self.assertIn("task 2 failed: exit status 1: sleep: 'soon' is not a number of seconds", sink.stderr())


class HandlerApi(E2E):
    def handler_worker(self, c, jobs=2):
        path = os.path.join(BIN_DIR, "tests", "e2e", "mtask-test-handler-worker")
        argv = [path] + c.common() + ["-j", str(jobs)]
        return c._start("handler-worker", argv)

    def test_a_cpp_handler_serves_tasks_and_its_exceptions_fail_tasks(self):
        c = self.cluster(heartbeat_timeout_ms=600)
        self.handler_worker(c)
        vent = c.ventilator(b"abc\nslow\nboom\nxyz\n", ["-v"])
        sink = c.sink(["-k"])
        self.assertEqual(self.finish(sink, vent, expect=3), b"ABC\nSLOW\nXYZ\n")
        self.assertIn("task 2 failed: exit status 1: boom is not a task", sink.stderr())
        # The 1.5 s handler ran on a thread: heartbeats went on, the worker was never lost.
        self.assertNotIn("lost", vent.stderr())



class Stats(E2E):
    def test_stats_sum_up_the_job_as_json(self):
        """--stats: one JSON document at the end; its totals match the job (a task retried once,
        one failing for good, two workers), read back with Python's json module."""
        c = self.cluster()
        state = os.path.join(c.dir, "state")
        os.mkdir(state)
        # Task 7 fails the first time only; task 13 always fails; the rest echo.
        cmd = ["sh", "-c", f'read x; if [ "$x" = 13 ]; then exit 4; fi; '
                           f'if [ "$x" = 7 ] && [ ! -e {state}/seen ]; then touch {state}/seen; exit 1; fi; echo "$x"']
        c.worker(*cmd, jobs=2)
        c.worker(*cmd, jobs=2)
        vent = c.ventilator(b"".join(b"%d\n" % i for i in range(40)), ["--retries", "1"])
        stats_path = os.path.join(c.dir, "stats.json")
        sink = c.sink(["--stats", stats_path])
        self.finish(sink, vent, expect=3)
        with open(stats_path) as f:
            stats = json.load(f)
        job = stats["job"]
        self.assertEqual(job["tasks"], 40)
        self.assertEqual(job["by_status"]["ok"], 39)
        self.assertEqual(job["by_status"]["failed"], 1)
        self.assertEqual(job["retries"], 2, "task 7 once, task 13 once (its second attempt is final)")
        self.assertEqual(job["malformed_dropped"], 0)
        self.assertGreater(job["wall_seconds"], 0)
        self.assertEqual(len(stats["workers"]), 2)
        self.assertEqual(sum(w["attempts"] for w in stats["workers"]), 42)
        self.assertEqual(sum(w["failures"] for w in stats["workers"]), 3)
        for w in stats["workers"]:
            r = w["runtime_us"]
            self.assertLessEqual(r["p50"], r["p90"])
            self.assertLessEqual(r["p90"], r["p99"])
            self.assertLessEqual(r["p99"], r["max"])
        self.assertLessEqual(len(stats["slowest"]), 10)
        runtimes = [t["runtime_us"] for t in stats["slowest"]]
        self.assertEqual(runtimes, sorted(runtimes, reverse=True))


if __name__ == "__main__":
    main()
