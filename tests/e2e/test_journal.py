#!/usr/bin/env python3
"""The sink's journal (--output FILE --journal FILE) with real processes: the sink killed with
SIGKILL at several points of a job (and made to die between writing results and journaling them)
and restarted with the same command while the ventilator keeps running; the output ends up whole,
and no task the journal held at a kill runs again (counted by a side effect of the worker's
command). A finished journal, torn and corrupt journals, and the flag errors."""

import json
import os
import signal
import struct
import subprocess
import time

from harness import E2E, binary, lines, main, run, tail, wait_until

TASKS = 20000
# Each task appends its payload to SIDE, then answers it: SIDE counts how often each task ran.
SIDE_SCRIPT = 'while read x; do echo "$x" >> "$SIDE"; echo "$x"; done'


def read_journal(path):
    """The task ids a journal holds as final and the output's journaled end (parsed here,
    independently of the sink's reader): records are [u32 length][u32 crc32][body], body[0] the
    type; 2 is a commit: job, output_end, failures_end, written_below, failed (u64 each), runs;
    4 is a batch: the records of one write, each [u32 length][body] inside it."""
    if not os.path.exists(path):
        return set(), 0
    with open(path, "rb") as f:
        data = f.read()
    ids, end = set(), [0]

    def records(data):
        pos = 0
        while pos + 8 <= len(data):
            length, _crc = struct.unpack_from("<II", data, pos)
            if length == 0 or pos + 8 + length > len(data):
                break  # a torn tail
            body = data[pos + 8:pos + 8 + length]
            if body[0] == 2:
                end[0] = struct.unpack_from("<Q", body, 1 + 8)[0]
                nruns = struct.unpack_from("<I", body, 1 + 40)[0]
                for i in range(nruns):
                    first, count = struct.unpack_from("<QQ", body, 1 + 44 + 16 * i)
                    ids.update(range(first, first + count))
            elif body[0] == 4:  # a batch: [u32 length][body] each, no checksum of their own
                inner = 1
                while inner < len(body):
                    (n,) = struct.unpack_from("<I", body, inner)
                    records(struct.pack("<II", n, 0) + body[inner + 4:inner + 4 + n])
                    inner += 4 + n
            pos += 8 + length

    records(data)
    return ids, end[0]


def journal_ids(path):
    return read_journal(path)[0]


def count_lines(path):
    """Lines in a file so far (0 before it exists): how many tasks ran, by their side effect."""
    if not os.path.exists(path):
        return 0
    with open(path, "rb") as f:
        return f.read().count(b"\n")


def report_data(path):
    """The figures a --report page embeds (its mtask-data JSON block)."""
    with open(path, encoding="utf-8") as f:
        page = f.read()
    start = page.index('<script type="application/json" id="mtask-data">')
    start = page.index(">", start) + 1
    return json.loads(page[start:page.index("</script>", start)])


def check_whole_job(test, stats_path, report_path, tasks, failed=0, retries=0, not_before=0.0):
    """--stats and --report of a job whose sink was killed and restarted describe the whole job:
    each task's final attempt once, every attempt counted once (tasks + retries, none of a result
    rerun because a crash lost it before it was journaled), and the wall time from the first
    sink's start (at least `not_before` seconds). `retries`: the failed attempts with retries left,
    or a range of them (a crash can cost a journaled failure its ack: the task runs once more).
    Returns the stats and the report's figures."""
    with open(stats_path) as f:
        stats = json.load(f)
    job = stats["job"]
    test.assertEqual(job["tasks"], tasks)
    test.assertEqual(sum(job["by_status"].values()), tasks)
    test.assertEqual(job["by_status"]["failed"], failed)
    test.assertEqual(job["by_status"]["ok"], tasks - failed)
    if isinstance(retries, range):
        test.assertIn(job["retries"], retries)
        retries = job["retries"]
    test.assertEqual(job["retries"], retries)
    test.assertEqual(sum(w["attempts"] for w in stats["workers"]), tasks + retries, "an attempt counted twice or lost")
    test.assertEqual(sum(w["failures"] for w in stats["workers"]), failed + retries)
    test.assertGreaterEqual(job["wall_seconds"], not_before, "the wall time spans the sinks before the last")
    for t in stats["slowest"]:
        test.assertTrue(0 <= t["id"] < tasks)
    data = report_data(report_path)
    test.assertEqual(data["job"]["tasks"], tasks)
    test.assertEqual(data["job"]["by_status"], job["by_status"])
    test.assertEqual(data["job"]["retries"], retries)
    test.assertEqual(data["job"]["duplicates_dropped"], job["duplicates_dropped"])
    test.assertEqual(data["attempts"], tasks + retries)
    test.assertEqual(sum(w["attempts"] for w in data["workers"]), tasks + retries)
    test.assertEqual(data["failures"]["total"], failed + retries)
    return stats, data


def side_counts(path):
    counts = {}
    if os.path.exists(path):
        with open(path, "rb") as f:
            for line in f:
                counts[line] = counts.get(line, 0) + 1
    return counts


def side_effect_job(test):
    """A cluster with two persistent workers (-j 2) that append each task to SIDE as they run it,
    and the payload of TASKS tasks: returns (cluster, SIDE's path, payload)."""
    c = test.cluster(heartbeat_ms=50, heartbeat_timeout_ms=1000)
    side = os.path.join(c.dir, "side")
    os.environ["SIDE"] = side  # inherited by the workers' commands
    test.addCleanup(os.environ.pop, "SIDE", None)
    payload = b"".join(b"task-%05d\n" % i for i in range(TASKS))
    for _ in range(2):
        c.worker("sh", "-c", SIDE_SCRIPT, jobs=2, args=["--persistent"])
    return c, side, payload


class SinkRestart(E2E):
    def job(self, keep_order):
        c, side, payload = side_effect_job(self)
        vent = c.ventilator(payload, ["--idle-timeout-ms", "60000"])
        out = os.path.join(c.dir, "out")
        journal = os.path.join(c.dir, "journal")
        args = ["--output", out, "--journal", journal, "--idle-timeout-ms", "60000"] + (["-k"] if keep_order else [])
        return c, vent, payload, out, journal, side, args

    def kill_and_restart(self, keep_order):
        c, vent, payload, out, journal, side, args = self.job(keep_order)
        joblog = os.path.join(c.dir, "joblog")
        stats = os.path.join(c.dir, "stats.json")
        report = os.path.join(c.dir, "report.html")
        args = args + ["--joblog", joblog, "--stats", stats, "--report", report]
        kills = 0
        held_at_kill = []  # (ids the journal held, side counts) at each death of the sink
        first_start = time.monotonic()
        sink = c.sink(args)
        # SIGKILL at several points, sized by tasks run (never by wall clock; not by the output's
        # lines either: with -k a task lost at a kill holds the output back, then the rest comes at once).
        for target in (2000, 6000, 10000, 14000):
            wait_until(lambda: count_lines(side) >= target or not sink.alive(), 120, f"{target} tasks run")
            self.assertTrue(sink.alive(), f"the sink exited early ({sink.p.poll()}):\n{tail(sink.stderr())}")
            sink.signal(signal.SIGKILL)
            sink.wait(10)
            kills += 1
            held_at_kill.append((journal_ids(journal), side_counts(side)))
            sink = c.sink(args)
        # Dying between writing a group's bytes and journaling them (the test-only hook).
        env = dict(os.environ, MTASK_TEST_CRASH_AFTER_WRITES="1500")
        sink.signal(signal.SIGKILL)
        sink.wait(10)
        held_at_kill.append((journal_ids(journal), side_counts(side)))
        hooked = c._start("sink", [binary("mtask-sink")] + c.common() + args, env=env)
        self.assertEqual(hooked.wait(120), 137, f"the hook's exit code; stderr:\n{tail(hooked.stderr())}")
        self.assertIn("MTASK_TEST_CRASH_AFTER_WRITES: dying after", hooked.stderr())
        kills += 2
        written_not_journaled = os.path.getsize(out) - read_journal(journal)[1]
        held_at_kill.append((journal_ids(journal), side_counts(side)))
        # A torn last record, as a power cut leaves it: recovered with a warning.
        with open(journal, "ab") as f:
            f.write(struct.pack("<II", 4000, 12345) + b"\x02partial")
        last_start = time.monotonic()
        sink = c.sink(args)
        self.assertEqual(self.finish(sink, vent, timeout=120), b"", "results go to --output, not stdout")
        self.assertIn("ended in a torn record: recovered to its last whole one", sink.stderr())

        # The joblog went on across the six deaths: its header once, at the top; a line for every
        # task; no attempt twice (a rerun after a crash is another attempt: its own start time).
        with open(joblog) as f:
            log_lines = f.read().splitlines()
        self.assertEqual(log_lines[0].split("\t")[0], "Seq")
        self.assertEqual(sum(1 for l in log_lines if l.startswith("Seq\t")), 1)
        attempts = [tuple(l.split("\t")[:3]) for l in log_lines[1:]]
        self.assertEqual(len(attempts), len(set(attempts)), "an attempt logged twice")
        self.assertEqual({int(a[0]) for a in attempts}, set(range(1, TASKS + 1)))

        with open(out, "rb") as f:
            got = f.read()
        if keep_order:
            self.assertEqual(got, payload, "with -k, the output is byte for byte the undisturbed run's")
        else:
            self.assertSameMultiset(got, payload)
        self.assertGreater(written_not_journaled, 0, "the hook left results written and not journaled")
        if "MTASK_TEST_JOURNAL_COMPACT_BYTES" in os.environ:
            self.assertLess(os.path.getsize(journal), 64 << 10, "compaction keeps the journal small")
        final = side_counts(side)
        self.assertEqual(len(final), TASKS, "every task ran")
        # --stats and --report count the whole job across the deaths, each attempt once.
        st, _ = check_whole_job(self, stats, report, TASKS, not_before=last_start - first_start)
        self.assertLessEqual(st["job"]["duplicates_dropped"], sum(final.values()) - TASKS)
        for ids, counts in held_at_kill:
            again = [i for i in ids if final.get(b"task-%05d\n" % i, 0) != counts.get(b"task-%05d\n" % i, 0)]
            self.assertEqual(again, [], "a task the journal held at a kill ran again")
        extra = sum(final.values()) - TASKS
        print(f"\n  {'-k' if keep_order else 'arrival order'}: {kills} sink deaths survived, "
              f"{sum(final.values())} runs for {TASKS} tasks ({extra} run twice: in flight at a death)")
        return extra

    def test_sink_killed_and_restarted_in_arrival_order(self):
        self.kill_and_restart(keep_order=False)

    def test_sink_killed_and_restarted_with_keep_order_and_compaction(self):
        os.environ["MTASK_TEST_JOURNAL_COMPACT_BYTES"] = "4096"  # compacts every few groups
        self.addCleanup(os.environ.pop, "MTASK_TEST_JOURNAL_COMPACT_BYTES", None)
        self.kill_and_restart(keep_order=True)


class ReductionRestart(E2E):
    """--reduce and --reduce-by-key with --journal: the running total is journaled with each group
    of results, so a sink killed and restarted counts every result exactly once."""

    def killed_twice(self, sink_args, payload):
        c = self.cluster(heartbeat_ms=50, heartbeat_timeout_ms=1000)
        for _ in range(2):
            c.worker(builtin="echo", jobs=2)
        # The input comes through a pipe a quarter at a time, so the job cannot end before the kills
        # however fast the machine is: each kill falls while a quarter of the tasks is in flight.
        fifo = c.fifo()
        vent = c.ventilator(args=["--idle-timeout-ms", "60000"], stdin_path=fifo.path)
        out = os.path.join(c.dir, "out")
        journal = os.path.join(c.dir, "journal")
        args = ["--output", out, "--journal", journal, "--idle-timeout-ms", "60000"] + sink_args
        sink = c.sink(args)
        tasks = payload.splitlines(keepends=True)
        quarter = len(tasks) // 4
        fifo.write(b"".join(tasks[:2 * quarter]))
        for k in (1, 2):
            wait_until(lambda: len(journal_ids(journal)) >= k * quarter or not sink.alive(), 120,
                       f"{k * quarter} results journaled")
            self.assertTrue(sink.alive(), f"the sink exited early:\n{tail(sink.stderr())}")
            sink.signal(signal.SIGKILL)
            sink.wait(10)
            sink = c.sink(args)
            fifo.write(b"".join(tasks[(k + 1) * quarter:(k + 2) * quarter] if k == 1 else tasks[3 * quarter:]))
        fifo.close()
        self.assertEqual(self.finish(sink, vent, timeout=120), b"")
        with open(out, "rb") as f:
            return f.read()

    def test_a_sum_resumes_exactly_across_sink_kills(self):
        n = 20000
        got = self.killed_twice(["--reduce", "sum"], b"".join(b"%d\n" % i for i in range(1, n + 1)))
        self.assertEqual(got, b"%d\n" % (n * (n + 1) // 2))

    def test_totals_by_key_resume_exactly_across_sink_kills(self):
        n = 20000
        payload = b"".join(b"key%02d\t%d\n" % (i % 40, i) for i in range(n))
        got = self.killed_twice(["--reduce-by-key", "sum"], payload)
        want = b"".join(b"key%02d\t%d\n" % (k, sum(range(k, n, 40))) for k in range(40))
        self.assertEqual(got, want)

    def test_a_reduction_refuses_a_journal_of_plain_results_and_the_reverse(self):
        c = self.cluster()
        c.worker(builtin="echo")
        vent = c.ventilator(b"".join(b"%d\n" % i for i in range(30)))
        out = os.path.join(c.dir, "out")
        journal = os.path.join(c.dir, "journal")
        # A job of plain results, killed after the journal holds some.
        sink = c.sink(["--output", out, "--journal", journal])
        self.assertEqual(self.finish(sink, vent), b"")
        os.remove(journal)
        sink = c.sink(["--output", out, "--journal", journal, "--reduce", "sum"])
        vent = c.ventilator(b"".join(b"%d\n" % i for i in range(30)))
        self.assertEqual(self.finish(sink, vent), b"")
        with open(out, "rb") as f:
            self.assertEqual(f.read(), b"435\n")
        # The complete journal of a sum, run without --reduce: refused before anything is touched.
        rc, stdout, stderr = run([binary("mtask-sink")] + c.common() + ["--output", out, "--journal", journal],
                                 timeout=30)
        self.assertEqual(rc, 1, stderr)
        self.assertIn("is of a reduction (--reduce, --reduce-by-key): run the sink with the same flags", stderr)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), b"435\n", "nothing changed")


class Journals(E2E):
    def small_job(self, extra_args=(), tasks=50):
        c = self.cluster()
        c.worker(builtin="echo")
        vent = c.ventilator(b"".join(b"%d\n" % i for i in range(tasks)))
        out = os.path.join(c.dir, "out")
        journal = os.path.join(c.dir, "journal")
        args = ["--output", out, "--journal", journal] + list(extra_args)
        sink = c.sink(args)
        self.finish(sink, vent)
        return c, out, journal, args

    def sink_argv(self, c, args):
        return [binary("mtask-sink")] + c.common() + list(args)

    def test_a_finished_journal_prints_the_summary_and_runs_nothing(self):
        c, out, journal, args = self.small_job()
        with open(out, "rb") as f:
            before = f.read()
        self.assertEqual(sorted(lines(before)), sorted(b"%d" % i for i in range(50)))
        rc, stdout, stderr = run(self.sink_argv(c, args), timeout=10)
        self.assertEqual(rc, 0, stderr)
        self.assertEqual(stdout, b"")
        self.assertIn(f"mtask-sink: warn: journal '{journal}': job ", stderr)
        self.assertIn(" is already complete (50 task(s), 0 failed); nothing to do", stderr)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), before)

    def test_a_journal_corrupt_in_the_middle_is_an_error_and_nothing_is_overwritten(self):
        c, out, journal, args = self.small_job()
        with open(journal, "r+b") as f:
            f.seek(20)  # inside the header, with whole records after it
            b = f.read(1)
            f.seek(20)
            f.write(bytes([b[0] ^ 0x10]))
        with open(out, "rb") as f:
            before = f.read()
        rc, _, stderr = run(self.sink_argv(c, args), timeout=10)
        self.assertEqual(rc, 1)
        self.assertEqual(stderr, f"mtask-sink: error: journal '{journal}' is corrupt at byte 0: a damaged record "
                                 "with whole records after it; nothing was changed\n")
        with open(out, "rb") as f:
            self.assertEqual(f.read(), before)

    def test_a_journal_of_another_output_is_an_error(self):
        c, out, journal, args = self.small_job()
        other = os.path.join(c.dir, "other")
        rc, _, stderr = run(self.sink_argv(c, ["--output", other, "--journal", journal]), timeout=10)
        self.assertEqual(rc, 1)
        self.assertEqual(stderr, f"mtask-sink: error: journal '{journal}' belongs to output '{out}', not '{other}'\n")
        self.assertFalse(os.path.exists(other))

    def test_a_second_sink_on_the_same_journal_fails_at_once(self):
        c = self.cluster()
        out = os.path.join(c.dir, "out")
        journal = os.path.join(c.dir, "journal")
        first = c.sink(["--output", out, "--journal", journal])
        wait_until(lambda: os.path.exists(journal), 10, "the first sink's journal")
        rc, _, stderr = run(self.sink_argv(c, ["--output", out, "--journal", journal]), timeout=10)
        self.assertEqual(rc, 1)
        self.assertEqual(stderr, f"mtask-sink: error: journal '{journal}' is in use by another sink\n")
        self.assertTrue(first.alive())

    def test_flag_errors(self):
        sink = binary("mtask-sink")
        rc, _, stderr = run([sink, "--journal", "/tmp/j"], timeout=10)
        self.assertEqual(rc, 2)
        self.assertEqual(stderr, "mtask-sink: error: --journal needs --output FILE (the journal says where results "
                                 "end in it) (try --help)\n")

    def test_failures_file_keeps_what_it_had_and_gets_no_duplicates_across_a_crash(self):
        c = self.cluster()
        # Every 7th task fails for good (exit 3); a process per task.
        c.worker("sh", "-c", 'read x; if [ $((x % 7)) = 0 ]; then exit 3; fi; echo "$x"', jobs=4)
        tasks = 700
        # Each failing task is tried twice: its first attempt is one the journal must count once.
        vent = c.ventilator(b"".join(b"%d\n" % i for i in range(tasks)), ["--idle-timeout-ms", "60000", "--retries", "1"])
        out = os.path.join(c.dir, "out")
        journal = os.path.join(c.dir, "journal")
        failures = os.path.join(c.dir, "failures")
        stats = os.path.join(c.dir, "stats.json")
        report = os.path.join(c.dir, "report.html")
        args = ["--output", out, "--journal", journal, "--failures", failures, "--stats", stats, "--report", report]
        env = dict(os.environ, MTASK_TEST_CRASH_AFTER_WRITES="300")
        hooked = c._start("sink", [binary("mtask-sink")] + c.common() + args, env=env)
        self.assertEqual(hooked.wait(120), 137, tail(hooked.stderr()))
        sink = c.sink(args)
        self.finish(sink, vent, expect=3, timeout=120)
        self.assertIn(f"{tasks // 7} of {tasks} task(s) failed", sink.stderr())
        with open(out, "rb") as f:
            self.assertSameMultiset(f.read(), b"".join(b"%d\n" % i for i in range(tasks) if i % 7 != 0))
        with open(failures, "rb") as f:
            payloads = sorted(int(json.loads(line)["payload"]) for line in f)
        self.assertEqual(payloads, [i for i in range(tasks) if i % 7 == 0], "each failure once")
        # A failure journaled just before the kill whose ack never left: the ventilator runs that
        # task once more (a lost ack does not use up a retry), and both failed attempts count.
        _, data = check_whole_job(self, stats, report, tasks, failed=tasks // 7, retries=range(tasks // 7, tasks // 7 + 50))
        # Each failing task's failed attempts listed once each: retries, then the final one last.
        # (An attempt lost with the killed sink is not counted; the task's next attempt then has a
        # higher number.)
        by_task = {}
        for a in data["failures"]["listed"]:
            by_task.setdefault(a["id"], []).append((a["attempt"], a["final"]))
        self.assertEqual(sorted(by_task), [i for i in range(tasks) if i % 7 == 0])
        for i, got in by_task.items():
            got.sort()
            self.assertEqual(len(got), len(set(got)), f"task {i}: an attempt counted twice: {got}")
            self.assertEqual([f for _, f in got], [False] * (len(got) - 1) + [True], f"task {i}: {got}")
        # Run again: the summary, exit 3 as the job had, and nothing touched; --stats and --report
        # (gone, as if the sink had died before writing them) come back from the journal alone.
        with open(stats) as f:
            first = json.load(f)
        os.unlink(stats)
        os.unlink(report)
        with open(out, "rb") as f:
            out_before = f.read()
        rc, _, stderr = run(self.sink_argv(c, args), timeout=10)
        self.assertEqual(rc, 3, stderr)
        self.assertIn(f"is already complete ({tasks} task(s), {tasks // 7} failed)", stderr)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), out_before)
        again, _ = check_whole_job(self, stats, report, tasks, failed=tasks // 7, retries=first["job"]["retries"])
        for key in ("by_status", "retries", "requeues", "duplicates_dropped", "malformed_dropped"):
            self.assertEqual(again["job"][key], first["job"][key], key)
        strip = lambda ws: [{k: v for k, v in w.items() if k != "busy_share"} for w in ws]  # over the wall time
        self.assertEqual(strip(again["workers"]), strip(first["workers"]))
        self.assertEqual(again["slowest"], first["slowest"])
        self.assertGreater(again["job"]["wall_seconds"], 0)
        self.assertLessEqual(again["job"]["wall_seconds"], first["job"]["wall_seconds"])

    def test_output_without_a_journal_goes_to_the_file(self):
        c = self.cluster()
        c.worker(builtin="echo")
        vent = c.ventilator(b"a\nb\n")
        out = os.path.join(c.dir, "out")
        sink = c.sink(["--output", out, "-k"])
        self.assertEqual(self.finish(sink, vent), b"")
        with open(out, "rb") as f:
            self.assertEqual(f.read(), b"a\nb\n")


if __name__ == "__main__":
    main()
