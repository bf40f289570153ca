#!/usr/bin/env python3
"""mtask across hosts on real network stacks: ventilator (host A), sink (B) and two workers (C, D),
each in a Linux network namespace of its own (netns.py), while cables are pulled, hosts partitioned
and a link slowed. Every link is CURVE (keys made by mtask-keygen for the test), as a job across
real hosts must be. Needs root, as CI has. Faults are placed by progress (results written), never
by time."""

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import netns
from harness import Fifo, binary, lines, tail, wait_until

VENT_PORT = 5557  # every host is a fresh namespace: fixed ports cannot collide with anything
SINK_PORT = 5558
RELAY_VENT_PORT = 6557  # fault_proxy relays on a worker host's loopback
RELAY_SINK_PORT = 6558

# Generous on purpose: a verdict never depends on speed, only a hung job hits these.
JOB_TIMEOUT = 180
EVENT_TIMEOUT = 90


def sleep_tasks(n, first=0):
    """Tasks for `--builtin sleep` of about 10 ms each, all distinct; each result is its payload. A
    job of these lasts long enough that a fault placed by progress lands while tasks, results and
    acknowledgements are on the wire."""
    return [b"0.01%06d" % i for i in range(first, first + n)]


def text(payloads):
    return b"".join(p + b"\n" for p in payloads)


class MultiHost(unittest.TestCase):
    # Task counts. Verdicts compare exact output, so any machine passes at any speed; these only
    # size how long a job runs.
    COUNT = 20000  # --builtin echo tasks of the plain job
    SLOW = 600  # 10 ms tasks of a job that has a middle to strike in

    @classmethod
    def setUpClass(cls):
        # Not a skip: a skipped test would pass in silence wherever it cannot run.
        if os.geteuid() != 0:
            raise AssertionError("test_multihost needs root (network namespaces); CI runs as root")
        cls.keys = tempfile.mkdtemp(prefix="mtask-multihost-keys-")
        os.mkdir(os.path.join(cls.keys, "allow"))
        for name in ("vent", "sink", "allow/c", "allow/d"):
            subprocess.run([binary("mtask-keygen"), os.path.join(cls.keys, name)], check=True, capture_output=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.keys, ignore_errors=True)

    def security_args(self, role, host=None):
        """The CURVE flags of `role` ("ventilator", "sink", or "worker" on `host`): the ONE place
        that says how this file's processes secure their tcp:// links. Each worker host has a key
        of its own (named after the host) on the ventilator's and the sink's --allow list."""
        k = lambda name: os.path.join(self.keys, name)
        if role == "ventilator":
            return ["--key", k("vent.key_secret"), "--sink-key", k("sink.key"), "--allow", k("allow")]
        if role == "sink":
            return ["--key", k("sink.key_secret"), "--ventilator-key", k("vent.key"), "--allow", k("allow")]
        return ["--key", k(f"allow/{host.name}.key_secret"), "--ventilator-key", k("vent.key"), "--sink-key",
                k("sink.key")]

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mtask-multihost-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.net = netns.Network()
        # Registered after the directory's removal, so it runs first: processes die before their
        # output files go, and before their namespaces do.
        self.addCleanup(self.net.close)
        self.a = self.net.host("a", 1)
        self.b = self.net.host("b", 2)
        self.c = self.net.host("c", 3)
        self.d = self.net.host("d", 4)
        self.vent_ep = f"tcp://{self.a.address}:{VENT_PORT}"
        self.sink_ep = f"tcp://{self.b.address}:{SINK_PORT}"
        self.counter = 0

    # --- processes --------------------------------------------------------------------------

    def _start(self, host, role, argv, **kw):
        self.counter += 1
        return host.start(argv, self.dir, f"{self.counter:02d}-{role}-{host.name}", **kw)

    def ventilator(self, args=(), input_bytes=None, stdin_path=None):
        argv = [binary("mtask-ventilator"), "--ventilator", self.vent_ep, "--sink", self.sink_ep, "-v"]
        argv += self.security_args("ventilator") + list(args)
        if input_bytes is not None:
            return self._start(self.a, "ventilator", argv, stdin_bytes=input_bytes)
        return self._start(self.a, "ventilator", argv, stdin_path=stdin_path)

    def sink(self, args=()):
        argv = [binary("mtask-sink"), "--ventilator", self.vent_ep, "--sink", self.sink_ep, "-v"]
        return self._start(self.b, "sink", argv + self.security_args("sink") + list(args))

    def worker(self, host, args, ventilator=None, sink=None):
        argv = [binary("mtask-worker"), "--ventilator", ventilator or self.vent_ep, "--sink", sink or self.sink_ep]
        w = self._start(host, "worker", argv + self.security_args("worker", host) + list(args))
        w.key_name = host.name
        return w

    @staticmethod
    def name(worker):
        """The name a worker goes by: its key's name (which the servers vouch for), then host name
        and pid (namespaces share the host name, and `ip netns exec` execs the binary, so the pid is
        the one we started)."""
        return f"{worker.key_name}@{socket.gethostname()}:{worker.pid}"

    def start_job(self, workers, vent_args=(), sink_args=(), input_bytes=None, stdin_path=None):
        """Starts the ventilator, waits until every worker has joined it, then starts the sink:
        dispatch waits for the sink, so every worker has credit when the first tasks go out and
        each gets a share, however slowly any of them started."""
        vent = self.ventilator(vent_args, input_bytes=input_bytes, stdin_path=stdin_path)
        for w in workers:
            try:
                self.wait_log(vent, f"worker {self.name(w)} joined")
            except AssertionError as e:
                raise AssertionError(f"{e}\n{w.name} (exit {w.p.poll()}) stderr:\n{tail(w.stderr())}") from None
        return vent, self.sink(sink_args)

    def wait_log(self, proc, pattern, timeout=EVENT_TIMEOUT):
        """Waits until `proc`'s stderr matches the regex `pattern`; returns the match."""
        found = []

        def seen():
            m = re.search(pattern, proc.stderr())
            if m:
                found.append(m)
            return m is not None

        try:
            wait_until(seen, timeout, f"{proc.name} to log {pattern!r}")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{proc.name} stderr:\n{tail(proc.stderr())}") from None
        return found[0]

    def finish(self, sink, vent):
        """Waits for sink and ventilator: both must exit 0. Returns the sink's stdout."""
        for p in (sink, vent):
            try:
                rc = p.wait(JOB_TIMEOUT)
            except AssertionError as e:
                others = "".join(f"\n{q.name} stderr:\n{tail(q.stderr())}" for q in (sink, vent) if q is not p)
                raise AssertionError(f"{e}{others}") from None
            self.assertEqual(rc, 0, f"{p.name} exit code; stderr:\n{tail(p.stderr())}")
        return sink.stdout()

    def records(self, out, payloads):
        """The sink's --jsonl -k output, checked exactly against `payloads` (one result per task,
        in task order, each ok and equal to its task); returns the parsed records."""
        recs = [json.loads(line) for line in lines(out)]
        self.assertEqual([r["id"] for r in recs], list(range(len(payloads))), "one result per task, none twice")
        self.assertEqual([r["output"].encode() for r in recs], payloads)
        self.assertEqual({r["status"] for r in recs}, {"ok"})
        return recs

    def note(self, what):
        """For the record (the brief asks for these figures): stderr, next to unittest's lines."""
        print(f"\n    [{self.id().rsplit('.', 1)[-1]}] {what}", file=sys.stderr, flush=True)

    def duplicates(self, sink):
        m = re.search(r"dropped (\d+) duplicate result", sink.stderr())
        return int(m.group(1)) if m else 0

    # --- cases ------------------------------------------------------------------------------

    def test_a_job_across_four_hosts_writes_exactly_the_expected_output(self):
        """Ventilator on A, sink on B, workers on C and D: the output is byte for byte the job's."""
        workers = [self.worker(h, ["--builtin", "echo", "-j", "2"]) for h in (self.c, self.d)]
        vent, sink = self.start_job(workers, ["--range", f"1:{self.COUNT}"], ["-k"])
        started = time.monotonic()
        out = self.finish(sink, vent)
        self.note(f"{self.COUNT} echo tasks in {time.monotonic() - started:.2f} s")
        self.assertEqual(out, b"".join(b"%d\n" % i for i in range(1, self.COUNT + 1)))

    def test_a_worker_host_whose_cable_is_pulled_mid_job_has_its_tasks_rerun_on_the_other(self):
        """Host C's cable is pulled at the bridge once the sink has written a quarter of the job,
        and never plugged back: the tasks C held are rerun on D after the heartbeat timeout and
        the output is exact."""
        payloads = sleep_tasks(self.SLOW)
        wc, wd = (self.worker(h, ["--builtin", "sleep", "-j", "4"]) for h in (self.c, self.d))
        vent, sink = self.start_job([wc, wd], sink_args=["--jsonl", "-k"], input_bytes=text(payloads))
        wait_until(lambda: sink.stdout_lines() >= self.SLOW // 4, EVENT_TIMEOUT, "a quarter of the results")
        self.c.link(up=False)
        out = self.finish(sink, vent)
        recs = self.records(out, payloads)
        lost = re.search(rf"worker {self.name(wc)} lost \(silent for \d+ ms\): (\d+) task\(s\) back", vent.stderr())
        self.assertIsNotNone(lost, f"the ventilator lost C holding tasks; its stderr:\n{tail(vent.stderr())}")
        rerun = [r for r in recs if r["attempts"] > 1]
        self.note(f"C lost with {lost.group(1)} task(s); {len(rerun)} result(s) from a second attempt; "
                  f"C wrote {sum(r['worker'] == self.name(wc) for r in recs)}, D {sum(r['worker'] == self.name(wd) for r in recs)}; "
                  f"{self.duplicates(sink)} duplicate(s) dropped")
        self.assertGreater(int(lost.group(1)), 0, "C held tasks when its cable was pulled")
        # What C was running when the cable went can only have come back from D.
        self.assertTrue(rerun, "some task of C's was run again")
        self.assertEqual({r["worker"] for r in rerun}, {self.name(wd)})

    def test_a_worker_host_partitioned_past_the_heartbeat_timeout_rejoins_and_gets_work(self):
        """Host D is cut off (default heartbeats: lost after 3 s of silence) and plugged back: no
        result is written twice, and D, back, runs tasks of input read after its return."""
        part1, part2 = sleep_tasks(self.SLOW // 2), sleep_tasks(self.SLOW // 2, first=self.SLOW // 2)
        fifo = self.fifo()
        wc, wd = (self.worker(h, ["--builtin", "sleep", "-j", "4"]) for h in (self.c, self.d))
        vent, sink = self.start_job([wc, wd], sink_args=["--jsonl", "-k"], stdin_path=fifo.path)
        fifo.write(text(part1))
        wait_until(lambda: sink.stdout_lines() >= len(part1) // 4, EVENT_TIMEOUT, "a quarter of the first part")
        self.d.link(up=False)
        # Partitioned "past the heartbeat timeout" means until the ventilator has given D up: a
        # condition, not a duration, so a slow machine cannot heal it too early.
        self.wait_log(vent, rf"worker {self.name(wd)} (lost|left) \(silent for")
        self.d.link(up=True)
        self.wait_log(vent, rf"worker {self.name(wd)} is back")
        # Only now does the rest of the input exist: whatever D runs of it, it ran after its return.
        fifo.write(text(part2))
        fifo.close()
        recs = self.records(self.finish(sink, vent), part1 + part2)
        d_after = [r for r in recs[len(part1):] if r["worker"] == self.name(wd)]
        self.note(f"D ran {len(d_after)} of the {len(part2)} tasks read after its return; "
                  f"{self.duplicates(sink)} duplicate(s) dropped")
        self.assertTrue(d_after, "D got work after it rejoined")

    def test_the_sink_cut_off_from_the_ventilator_for_1s_changes_nothing(self):
        """Only A<->B traffic is dropped for 1 s while the job runs and new input arrives; workers
        still reach both. The output is exact."""
        self.sink_cut_off(1)

    def test_the_sink_cut_off_from_the_ventilator_for_5s_changes_nothing(self):
        """As above for 5 s, past the heartbeat timeout (the sink's connection is dropped and made
        again): this used to fail the job with 'ignoring a second sink'."""
        self.sink_cut_off(5)

    def sink_cut_off(self, seconds):
        payloads = sleep_tasks(self.SLOW)
        half = len(payloads) // 2
        fifo = self.fifo()
        workers = [self.worker(h, ["--builtin", "sleep", "-j", "4"]) for h in (self.c, self.d)]
        vent, sink = self.start_job(workers, sink_args=["-k"], stdin_path=fifo.path)
        fifo.write(text(payloads[:half]))
        wait_until(lambda: sink.stdout_lines() >= half // 2, EVENT_TIMEOUT, "half of the first part")
        self.a.block(self.b)
        # The second part goes out to the workers, and its results to the sink, while nothing
        # passes between ventilator and sink.
        fifo.write(text(payloads[half:]))
        time.sleep(seconds)  # the length of the fault itself, not a wait for anything
        self.a.unblock(self.b)
        fifo.close()
        out = self.finish(sink, vent)
        self.note(f"{self.duplicates(sink)} duplicate(s) dropped; ventilator: "
                  f"{len(re.findall('ignoring a second sink', vent.stderr()))} 'ignoring a second sink'")
        self.assertEqual(out, text(payloads))
        self.assertNotIn("ignoring a second sink", vent.stderr())
        # The sink had every result; only its acknowledgements were held up. A ventilator that
        # reran the idle workers' unacknowledged tasks while the sink was silent did 400 of 600
        # tasks twice here.
        self.assertNotIn("were never acknowledged", vent.stderr())

    def test_a_worker_behind_a_slow_lossy_link_still_gives_exact_output(self):
        """Worker C reaches ventilator and sink through relays on its host that hold each chunk
        50 ms +- 20 ms and now and then stall 0.5-1 s, over a 2 Mbit/s link whose short queue
        drops what overflows it. The job is exact; the slowdown against the same job without the
        relays and the shaping is printed."""
        # Tasks of 100 ms, so that C, a round trip of 100 ms or more behind, still runs a good
        # share, each carrying 2 kB each way (zeros that do not change the number), so that C's
        # batches overflow its link's short queue.
        payloads = [b"0.1" + b"0" * 2000 + b"%06d" % i for i in range(self.SLOW // 3)]
        # The same job twice in the same conditions: first direct (the baseline), then with C
        # behind the relays and the shaping.
        plain = self.timed_job(payloads, relayed=False)
        self.c.shape(rate="2mbit", burst="4kb", limit="8kb")
        slow = self.timed_job(payloads, relayed=True)
        self.note(f"{len(payloads)} tasks: {plain:.2f} s direct, {slow:.2f} s with C behind the relays "
                  f"({slow / plain:.1f}x); C's token buckets dropped {self.c.shaping_drops()} packet(s)")

    def timed_job(self, payloads, relayed):
        """Runs one job (sink --jsonl -k) with workers on C and D, checks it exactly and that both
        workers ran tasks, stops the workers, and returns the time from the sink's start to its
        exit."""
        ventilator = sink = None
        relays = []
        if relayed:
            # MTASK_SEED=N replays a run's delays and stalls (as far as the traffic is the same).
            seed = int(os.environ.get("MTASK_SEED") or random.randrange(1 << 31))
            self.note(f"relays' seed {seed} (MTASK_SEED={seed} to replay)")
            for i, (port, target) in enumerate(((RELAY_VENT_PORT, self.vent_ep), (RELAY_SINK_PORT, self.sink_ep))):
                relays.append(self.relay(self.c, port, target[len("tcp://"):], seed + i))
            ventilator = f"tcp://127.0.0.1:{RELAY_VENT_PORT}"
            sink = f"tcp://127.0.0.1:{RELAY_SINK_PORT}"
        wc = self.worker(self.c, ["--builtin", "sleep", "-j", "8"], ventilator=ventilator, sink=sink)
        wd = self.worker(self.d, ["--builtin", "sleep", "-j", "8"])
        vent, sink_p = self.start_job([wc, wd], sink_args=["--jsonl", "-k"], input_bytes=text(payloads))
        started = time.monotonic()
        recs = self.records(self.finish(sink_p, vent), payloads)
        elapsed = time.monotonic() - started
        ran = {w: sum(r["worker"] == self.name(w) for r in recs) for w in (wc, wd)}
        self.assertTrue(all(ran.values()), f"both workers ran tasks: {ran}")
        for p in [wc, wd] + relays:
            p.signal(signal.SIGTERM)
            p.wait(EVENT_TIMEOUT)
        for r in relays:
            self.note(r.stderr().strip().replace("\n", "; "))
        self.note(f"{'relayed' if relayed else 'direct'}: C ran {ran[wc]} tasks, D {ran[wd]}; "
                  f"{sum(r['attempts'] > 1 for r in recs)} on a second attempt; "
                  f"{self.duplicates(sink_p)} duplicate(s) dropped; {elapsed:.2f} s")
        return elapsed

    def relay(self, host, port, target, seed):
        """A fault_proxy on `host`'s loopback, forwarding to `target` with the slow link's jitter."""
        argv = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "fault_proxy.py"),
                "--listen", f"127.0.0.1:{port}", "--target", target,
                "--delay-ms", "50", "--spread-ms", "20", "--stall-chance", "0.05", "--stall-ms", "500:1000",
                "--seed", str(seed)]
        p = self._start(host, "relay", argv)
        wait_until(lambda: b"listening on" in p.stdout() or not p.alive(), EVENT_TIMEOUT, f"relay {port} to listen")
        self.assertTrue(p.alive(), f"relay {port} died: {p.stderr()}")
        return p

    def fifo(self):
        """The ventilator's input as a named pipe, written by the test while the job runs."""
        cleanups = []
        f = Fifo(os.path.join(self.dir, f"input-{self.counter}"), cleanups)
        self.addCleanup(lambda: [fn() for fn in cleanups])
        return f


if __name__ == "__main__":
    unittest.main(verbosity=2)
