#!/usr/bin/env python3
"""A restarted ventilator continues its job (issue 11) with real processes: the ventilator killed
with SIGKILL mid-job and started again with the same command learns from the sink which job it
was and which tasks are done, and dispatches only the rest; both coordinators killed and restarted
in either order; a different input, or a pipe, refused with a clear error and nothing merged.

Every execution appends its task to a side-effect file, so runs are counted: a task the sink held
when the ventilator died never runs again; only tasks in flight at a death may run twice."""

import os
import signal

from harness import E2E, main, tail, wait_until
from test_journal import TASKS, count_lines, journal_ids, side_counts, side_effect_job



def task(i):
    return b"task-%05d\n" % i


class VentilatorRestart(E2E):
    def setup_job(self, keep_order):
        c, side, payload = side_effect_job(self)
        path = os.path.join(c.dir, "input")
        with open(path, "wb") as f:
            f.write(payload)
        vent_args = ["--input", path, "-v"]
        sink_args = ["-k"] if keep_order else []
        return c, payload, side, vent_args, sink_args

    def journaled(self, c, sink_args):
        """The sink's flags with --output and --journal in the cluster's folder: (out, journal, args)."""
        out = os.path.join(c.dir, "out")
        journal = os.path.join(c.dir, "journal")
        return out, journal, sink_args + ["--output", out, "--journal", journal]

    def kill(self, proc):
        self.assertTrue(proc.alive(), f"{proc.name} exited early ({proc.p.poll()}):\n{tail(proc.stderr())}")
        proc.signal(signal.SIGKILL)
        proc.wait(10)

    def check_runs(self, side, held_at_kill, what):
        final = side_counts(side)
        self.assertEqual(len(final), TASKS, "every task ran")
        for held, counts in held_at_kill:
            again = sorted(i for i in held if final.get(task(i), 0) != counts.get(task(i), 0))
            self.assertEqual(again[:10], [], f"a task the sink held when {what} died ran again")
        extra = sum(final.values()) - TASKS
        print(f"\n  {len(held_at_kill)} death(s) survived, {sum(final.values())} runs for {TASKS} tasks "
              f"({extra} run twice: in flight at a death)")

    def ventilator_killed(self, keep_order):
        c, payload, side, vent_args, sink_args = self.setup_job(keep_order)
        sink = c.sink(sink_args)
        vent = c.ventilator(args=vent_args)
        held_at_kill = []  # (ids in the sink's output, side counts) at each death of the ventilator
        for target in (3000, 9000, 15000):
            # Sized by tasks run, never by wall clock.
            wait_until(lambda: count_lines(side) >= target or not vent.alive(), 120, f"{target} tasks run")
            self.kill(vent)
            # What the sink has written is final there: the restarted ventilator must skip it.
            held = {int(line[5:]) for line in sink.stdout().splitlines()}
            held_at_kill.append((held, side_counts(side)))
            vent = c.ventilator(args=vent_args)
        got = self.finish(sink, vent, timeout=120)
        if keep_order:
            self.assertEqual(got, payload, "with -k, byte for byte the undisturbed run's output")
        else:
            self.assertSameMultiset(got, payload)
        self.assertIn("resuming job", vent.stderr())
        self.assertRegex(vent.stderr(), r"resumed the job: [1-9]\d* task\(s\) the sink already held were not run again")
        self.check_runs(side, held_at_kill, "the ventilator")

    def test_ventilator_killed_and_restarted_in_arrival_order(self):
        self.ventilator_killed(keep_order=False)

    def test_ventilator_killed_and_restarted_with_keep_order(self):
        self.ventilator_killed(keep_order=True)

    def test_both_killed_and_restarted_in_either_order(self):
        """The sink journals (--output, --journal); both die, and come back sink first, then
        ventilator first; once the ventilator alone."""
        c, payload, side, vent_args, sink_args = self.setup_job(keep_order=True)
        out, journal, sink_args = self.journaled(c, sink_args)
        sink = c.sink(sink_args)
        vent = c.ventilator(args=vent_args)
        held_at_kill = []
        for target, order in ((3000, "ventilator only"), (8000, "sink first"), (14000, "ventilator first")):
            wait_until(lambda: count_lines(side) >= target or not vent.alive() or not sink.alive(), 120,
                       f"{target} tasks run")
            self.kill(vent)
            if order != "ventilator only":
                self.kill(sink)
            # The journal is what survives: what it holds must never run again.
            held_at_kill.append((journal_ids(journal), side_counts(side)))
            if order == "ventilator only":
                vent = c.ventilator(args=vent_args)
            elif order == "sink first":
                sink = c.sink(sink_args)
                vent = c.ventilator(args=vent_args)
            else:
                vent = c.ventilator(args=vent_args)
                sink = c.sink(sink_args)
        self.assertEqual(self.finish(sink, vent, timeout=120), b"", "results go to --output")
        with open(out, "rb") as f:
            self.assertEqual(f.read(), payload, "with -k, byte for byte the undisturbed run's output")
        self.assertIn("resuming job", vent.stderr())
        self.check_runs(side, held_at_kill, "the coordinators")


    def test_a_journaled_job_stopped_with_sigterm_resumes_when_both_are_started_again(self):
        """SIGTERM (Ctrl-C) on the sink stops the job: the ventilator is told and exits 1. The
        journal stays, so the same two commands run again continue it."""
        c, payload, side, vent_args, sink_args = self.setup_job(keep_order=False)
        out, journal, sink_args = self.journaled(c, sink_args)
        sink = c.sink(sink_args)
        vent = c.ventilator(args=vent_args)
        wait_until(lambda: count_lines(side) >= 6000 or not vent.alive(), 120, "6000 tasks run")
        sink.signal(signal.SIGTERM)
        self.assertEqual(sink.wait(60), 128 + signal.SIGTERM, sink.stderr())
        self.assertEqual(vent.wait(60), 1, vent.stderr())
        self.assertIn("the sink gave up: the sink was stopped by signal 15", vent.stderr())
        held = (journal_ids(journal), side_counts(side))
        self.assertLess(len(held[0]), TASKS, "stopped mid-job")
        sink = c.sink(sink_args)
        vent = c.ventilator(args=vent_args)
        self.assertEqual(self.finish(sink, vent, timeout=120), b"")
        with open(out, "rb") as f:
            self.assertSameMultiset(f.read(), payload)
        self.check_runs(side, [held], "the job stopped")


class Refusals(E2E):
    def started_job(self, journal=False):
        """A job of 50 tasks whose ventilator is killed before any worker came: the sink serves it."""
        c = self.cluster()
        path = os.path.join(c.dir, "input")
        payload = b"".join(b"line-%d\n" % i for i in range(50))
        with open(path, "wb") as f:
            f.write(payload)
        sink = c.sink(["-v"])
        vent = c.ventilator(args=["--input", path])
        wait_until(lambda: "serving job" in sink.stderr(), 60, "the sink to serve the job")
        self.kill(vent)
        return c, sink, path, payload

    def kill(self, proc):
        proc.signal(signal.SIGKILL)
        proc.wait(10)

    def test_a_different_input_is_refused_and_the_same_one_then_continues(self):
        c, sink, path, payload = self.started_job()
        other = os.path.join(c.dir, "other")
        with open(other, "wb") as f:
            f.write(b"something else\n")
        stranger = c.ventilator(args=["--input", other])
        self.assertEqual(stranger.wait(60), 1, stranger.stderr())
        self.assertIn("refusing to merge another input into its output", stranger.stderr())
        self.assertTrue(sink.alive(), "the sink keeps waiting for its own job's ventilator")
        # The job's own input, unchanged, continues it: the refusal changed nothing.
        c.worker(builtin="echo")
        vent = c.ventilator(args=["--input", path])
        got = self.finish(sink, vent)
        self.assertSameMultiset(got, payload)
        self.assertIn("resuming job", vent.stderr())

    def test_an_input_changed_since_the_job_began_is_refused(self):
        c, sink, path, payload = self.started_job()
        with open(path, "ab") as f:  # its size and hash change
            f.write(b"line-50\n")
        changed = c.ventilator(args=["--input", path])
        self.assertEqual(changed.wait(60), 1, changed.stderr())
        self.assertIn("refusing to merge another input into its output", changed.stderr())
        # Put back byte for byte: its mtime is another now, and mtime is part of the fingerprint
        # (documented: an input rewritten since the job began is not trusted to be the same).
        with open(path, "wb") as f:
            f.write(payload)
        again = c.ventilator(args=["--input", path])
        self.assertEqual(again.wait(60), 1, again.stderr())
        self.assertTrue(sink.alive())
        self.assertEqual(sink.stdout(), b"", "nothing of another input reached the output")

    def test_resuming_from_a_pipe_is_refused(self):
        c, sink, path, payload = self.started_job()
        fifo = c.fifo("pipe")  # the same bytes, but through a pipe
        piped = c.ventilator(args=["--input", fifo.path])
        fifo.write(payload)  # left open: a pipe whose writer has gone loses what it held
        self.assertEqual(piped.wait(60), 1, piped.stderr())
        self.assertIn("reads a pipe, which cannot be checked to be the same input", piped.stderr())
        self.assertTrue(sink.alive())


if __name__ == "__main__":
    main()
