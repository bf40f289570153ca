#!/usr/bin/env python3
"""CURVE and allowlists against real processes on tcp:// loopback: keys from mtask-keygen, jobs
that only invited peers can join, forged frames that never reach the output, a packet capture
that holds no payload, and every refusal with its exact message and exit code."""

import os
import re
import shutil
import stat
import subprocess
import tempfile
import time

import zmq

from harness import E2E, binary, free_tcp_port, lines, main, run, tail, wait_until
from test_hostile import PROTOCOL_VERSION as VERSION, msgpack_array, msgpack_decode

WORKER_STATUS, VENT_STATUS, RESULTS, SINK_STATUS = 1, 4, 9, 6


def keygen(path, *args):
    rc, out, err = run([binary("mtask-keygen"), path, *args])
    assert rc == 0, err
    return out, err


def public_key(path):
    """The public key (Z85) in a certificate file."""
    with open(path) as f:
        return re.search(r'public-key = "(.{40})"', f.read()).group(1)


def secret_key(path):
    with open(path) as f:
        return re.search(r'secret-key = "(.{40})"', f.read()).group(1)


def read(path):
    with open(path) as f:
        return f.read()


class Keys:
    """A folder of keys for one job: the ventilator's, the sink's, and workers on the allowlist
    (allow/w1, allow/w2), plus a stranger's key that is on no list."""

    def __init__(self, testcase):
        self.dir = tempfile.mkdtemp(prefix="mtask-keys-")
        testcase.addCleanup(shutil.rmtree, self.dir, True)
        os.mkdir(self.p("allow"))
        for name in ("vent", "sink", "allow/w1", "allow/w2", "stranger"):
            keygen(self.p(name))

    def p(self, name):
        return os.path.join(self.dir, name)

    def ventilator(self):
        return ["--key", self.p("vent.key_secret"), "--sink-key", self.p("sink.key"), "--allow", self.p("allow")]

    def sink(self):
        return ["--key", self.p("sink.key_secret"), "--ventilator-key", self.p("vent.key"), "--allow", self.p("allow")]

    def worker(self, name="allow/w1"):
        return ["--key", self.p(f"{name}.key_secret"), "--ventilator-key", self.p("vent.key"),
                "--sink-key", self.p("sink.key")]


class Curve(E2E):
    transport = "tcp"

    def curve_cluster(self):
        """A cluster on tcp:// loopback with the product's default heartbeats (as a user runs it)."""
        c = self.cluster(heartbeat_ms=250, heartbeat_timeout_ms=3000)
        return c, Keys(self)

    def test_mtask_top_is_answered_only_with_a_key_on_the_allowlist(self):
        """Issue 12: mtask-top asks the ventilator like any client, so under CURVE only a key on
        --allow gets an answer; a stranger's key and no key get none (exit 1, named)."""
        c, k = self.curve_cluster()
        fifo = c.fifo()  # the job runs until the test closes its input
        vent = c.ventilator(stdin_path=fifo.path, args=k.ventilator())
        fifo.write(b"a\n")
        sink = c.sink(k.sink())
        c.worker(builtin="echo", jobs=1, args=["--once"] + k.worker("allow/w1"))
        top = [binary("mtask-top"), "--ventilator", c.vent_ep, "--once"]
        rc, out, err = run(top + ["--key", k.p("allow/w2.key_secret"), "--ventilator-key", k.p("vent.key")],
                           timeout=60)
        self.assertEqual(rc, 0, err)
        self.assertTrue(out.startswith(b"job "), out)
        stranger = public_key(k.p("stranger.key"))
        for keys, why in ((["--key", k.p("stranger.key_secret"), "--ventilator-key", k.p("vent.key")],
                           f"refused (400): our key '{stranger}' is not on its --allow list"),
                          ([], "it runs with --key: this process needs --key and --ventilator-key too")):
            rc, out, err = run(top + keys, timeout=60)
            self.assertEqual(rc, 1, (keys, err))
            self.assertEqual(out, b"")
            self.assertIn(f"cannot join the ventilator at '{c.vent_ep}': {why}", err)
        fifo.close()
        self.assertEqual(self.finish(sink, vent), b"a\n")

    def test_a_curve_job_writes_the_same_output_and_names_workers_by_their_keys(self):
        """Issue: CURVE on every TCP connection; a worker's name in --jsonl is its key's name plus
        host:pid."""
        c, k = self.curve_cluster()
        n = 3000
        c.worker(builtin="echo", jobs=2, args=k.worker("allow/w1"))
        c.worker(builtin="echo", jobs=2, args=k.worker("allow/w2"))
        vent = c.ventilator(args=["--range", f"1:{n}"] + k.ventilator())
        sink = c.sink(["-k"] + k.sink())
        out = self.finish(sink, vent)
        self.assertEqual(out, b"".join(b"%d\n" % i for i in range(1, n + 1)))

        vent = c.ventilator(args=["--range", "1:200"] + k.ventilator())
        sink = c.sink(["--jsonl"] + k.sink())
        out = self.finish(sink, vent)
        names = {re.search(rb'"worker":"([^"]*)"', l).group(1).decode() for l in lines(out)}
        self.assertTrue(names, out)
        for name in names:
            self.assertRegex(name, r"^w[12]@[^:]+:\d+$")

    def test_workers_without_a_key_or_with_a_key_not_on_the_list_receive_no_task(self):
        """Issue: a worker with no key receives no task; the same holds for a worker whose key is
        not on the allowlist. The ventilator's and the sink's counters say so."""
        c, k = self.curve_cluster()
        vent = c.ventilator(args=["--range", "1:500", "-v"] + k.ventilator())
        sink = c.sink(["--jsonl", "-v"] + k.sink())
        stranger_key = public_key(k.p("stranger.key"))

        def worker(key_args, ventilator, sink=None):
            # A worker refused by the sink leaves at once (its results could never be delivered),
            # so each server is tried by workers of its own: those for the ventilator get no --sink
            # (they would learn it with their first tasks), those for the sink a ventilator
            # endpoint where nothing listens.
            argv = [binary("mtask-worker"), "--ventilator", ventilator, "--builtin", "echo", "-j", "4", "-v"]
            return c._start("worker", argv + (["--sink", sink] if sink else []) + key_args)

        nowhere = f"tcp://127.0.0.1:{free_tcp_port()}"
        plain = worker([], c.vent_ep)
        stranger = worker(k.worker("stranger"), c.vent_ep)
        plain_s = worker([], nowhere, c.sink_ep)
        stranger_s = worker(k.worker("stranger"), nowhere, c.sink_ep)
        # Each is refused at the handshake and says why, at once, before any good worker starts:
        # had either of the ventilator's got a task, it would hold it now.
        wait_until(lambda: f"cannot join the ventilator at '{c.vent_ep}': it runs with --key: this process needs --key "
                   "and --ventilator-key too" in plain.stderr(), 60, "the keyless worker to name its failure",
                   lambda: plain.stderr())
        wait_until(lambda: f"cannot join the ventilator at '{c.vent_ep}': refused (400)" in stranger.stderr(), 60,
                   "the stranger to say the ventilator refused its key",
                   lambda: f"stranger:\n{tail(stranger.stderr())}\nventilator:\n{tail(vent.stderr())}")
        for w in (plain_s, stranger_s):
            self.assertEqual(w.wait(60), 1, w.stderr())
            self.assertIn("giving up: the sink will not take our results", w.stderr())
        self.assertIn(f"cannot join the sink at '{c.sink_ep}': it runs with --key: this process needs --key and "
                      "--sink-key too", plain_s.stderr())
        self.assertIn(f"cannot join the sink at '{c.sink_ep}': refused (400)", stranger_s.stderr())
        for p in (vent, sink):
            wait_until(lambda: f"refused a client at 127.0.0.1 with key '{stranger_key}'" in p.stderr(), 60,
                       f"{p.name} to log the stranger's key")
        good = c.worker(builtin="echo", jobs=2, args=["--once"] + k.worker("allow/w1"))
        out = self.finish(sink, vent)
        self.assertEqual(len(lines(out)), 500)
        workers = {re.search(rb'"worker":"([^@"]*)@', l).group(1) for l in lines(out)}
        self.assertEqual(workers, {b"w1"})
        # The ventilator (at -v) saw one worker join: w1.
        joined = re.findall(r"worker (\S+) joined", vent.stderr())
        self.assertEqual(len(joined), 1, vent.stderr())
        self.assertTrue(joined[0].startswith("w1@"), joined)
        self.assertIn(f"refused a client at 127.0.0.1 with key '{stranger_key}': not on the --allow list",
                      vent.stderr())
        for p in (vent, sink):
            m = re.search(r"refused (\d+) handshake\(s\): clients without CURVE or not on --allow", p.stderr())
            self.assertTrue(m, tail(p.stderr()))
            self.assertGreaterEqual(int(m.group(1)), 2)  # at least one of each worker
        good.wait(30)

    def forge(self, c, k, job, curve_key=None):
        """The attack of the issue: hello to the ventilator as a worker with no free slots (and learn
        the job id from the reply if one comes), then push 50 forged results to the sink's PULL.
        Returns: the job id the ventilator told us, or None."""
        ctx = zmq.Context()
        self.addCleanup(ctx.term)
        socks = []

        def sock(kind, ep, server_key):
            s = ctx.socket(kind)
            socks.append(s)
            s.setsockopt(zmq.LINGER, 0)
            if curve_key:
                s.curve_publickey, s.curve_secretkey = curve_key
                s.curve_serverkey = public_key(server_key).encode()
            s.connect(ep)
            return s

        dealer = sock(zmq.DEALER, c.vent_ep, k.p("vent.key"))
        push = sock(zmq.PUSH, c.sink_ep, k.p("sink.key"))
        told = None
        deadline = time.monotonic() + 5
        while told is None and time.monotonic() < deadline:
            try:  # without a completed handshake there is no peer: a blocking send would wait forever
                dealer.send(msgpack_array(VERSION, WORKER_STATUS, 0, "evil", 0, 0, 1, 0, 0, [], 0, 0), zmq.NOBLOCK)
            except zmq.Again:
                pass
            if dealer.poll(200):
                msg = msgpack_decode(dealer.recv())
                if msg[1] == VENT_STATUS:
                    told = msg[2]
        forged = [[i, 1, 0, 0, b"FORGED %d" % i, b"", 0, 0, b"", 0, 0, b""] for i in range(50)]
        try:
            push.send(msgpack_array(VERSION, RESULTS, told or job, "evil", forged), zmq.NOBLOCK)
        except zmq.Again:
            pass  # no connection to queue it on: nothing was sent
        # Queued for the connection until the handshake completes, or never sent.
        time.sleep(1)  # the attack's own length: let what can go out go out before the job starts
        for s in socks:
            s.close()
        return told

    def serving(self, sink):
        """Waits until the sink serves the job: forged results sent before it knows the job would
        be dropped as another job's, and prove nothing."""
        wait_until(lambda: "serving job" in sink.stderr(), 60, "the sink to serve the job")

    def job_id(self, vent):
        m = None
        wait_until(lambda: re.search(r"job ([0-9a-f]{16}): bound", vent.stderr()), 30, "the job id")
        m = re.search(r"job ([0-9a-f]{16}): bound", vent.stderr())
        return int(m.group(1), 16)

    def test_forged_results_reach_the_output_of_a_plaintext_job_but_never_a_curve_one(self):
        """Issue: a forged `results` frame from a client that is not allowed never reaches the output;
        the script that forged 50 lines into a plaintext job fails at the handshake. Run first
        against plaintext, where it succeeds, to prove the attack is real."""
        want = b"".join(b"%d\n" % i for i in range(1, 301))
        # Plaintext: the attack works (this is what CURVE is for).
        c = self.cluster(heartbeat_ms=250, heartbeat_timeout_ms=3000)
        k = Keys(self)
        vent = c.ventilator(args=["--range", "1:300", "-v"])
        sink = c.sink(["-v"])
        self.serving(sink)
        told = self.forge(c, k, self.job_id(vent))
        self.assertEqual(told, self.job_id(vent))
        c.worker(builtin="echo", jobs=2)
        out = self.finish(sink, vent)
        self.assertEqual(sum(l.startswith(b"FORGED") for l in lines(out)), 50, out[:400])

        # CURVE, attacked without keys and with a key of its own: nothing forged gets in, even
        # though the attacker knows the job id.
        for key in (None, zmq.curve_keypair()):
            c, k = self.curve_cluster()
            vent = c.ventilator(args=["--range", "1:300", "-v"] + k.ventilator())
            sink = c.sink(["-k", "-v"] + k.sink())
            self.serving(sink)
            told = self.forge(c, k, self.job_id(vent), curve_key=key)
            self.assertIsNone(told, "the ventilator answered a client that is not allowed")
            c.worker(builtin="echo", jobs=2, args=k.worker())
            out = self.finish(sink, vent)
            self.assertEqual(out, want)

    def test_only_the_sink_key_may_act_as_the_sink(self):
        """Issue: the ventilator uses --sink-key to know which client may act as the sink: no
        other key can take that role, not even an allowed worker's."""
        c, k = self.curve_cluster()
        vent = c.ventilator(args=["--range", "1:100"] + k.ventilator())
        ctx = zmq.Context()
        self.addCleanup(ctx.term)
        s = ctx.socket(zmq.DEALER)
        self.addCleanup(s.close)
        s.setsockopt(zmq.LINGER, 0)
        s.curve_publickey = public_key(k.p("allow/w2.key")).encode()
        s.curve_secretkey = secret_key(k.p("allow/w2.key_secret")).encode()
        s.curve_serverkey = public_key(k.p("vent.key")).encode()
        s.connect(c.vent_ep)
        # [version, sink_status, job 0 (hello), written_below, done_below, held_bytes, held_back, acks, done,
        #  claim, fingerprint]
        s.send(msgpack_array(VERSION, SINK_STATUS, 0, 0, 0, 0, False, [], [], False, "", False, 0, 0))
        wait_until(lambda: "dropped a sink's message from a client whose key is not --sink-key" in vent.stderr(),
                   30, "the ventilator to drop the impostor's sink_status")
        self.assertFalse(s.poll(500), "the ventilator answered the impostor as if it were the sink")
        # The real sink still gets the job.
        c.worker(builtin="echo", args=k.worker())
        sink = c.sink(k.sink())
        out = self.finish(sink, vent)
        self.assertEqual(out.count(b"\n"), 100)

    def test_a_routing_id_stays_with_the_key_that_first_used_it(self):
        """Issue: a routing id is bound to the key that first used it, so one allowed worker
        cannot take over another's identity after a reconnect."""
        c, k = self.curve_cluster()
        vent = c.ventilator(args=["--range", "1:10", "-v"] + k.ventilator())
        ctx = zmq.Context()
        self.addCleanup(ctx.term)
        for who in ("allow/w1", "allow/w2"):
            s = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.ROUTING_ID, b"wsame")
            s.curve_publickey = public_key(k.p(f"{who}.key")).encode()
            s.curve_secretkey = secret_key(k.p(f"{who}.key_secret")).encode()
            s.curve_serverkey = public_key(k.p("vent.key")).encode()
            s.connect(c.vent_ep)
            s.send(msgpack_array(VERSION, WORKER_STATUS, 0, "x", 0, 0, 1, 0, 0, [], 0, 0))
            answered = s.poll(10_000)
            s.close()
            if who == "allow/w1":
                self.assertTrue(answered, tail(vent.stderr()))
        wait_until(lambda: "dropped frames of a client that took another key's routing id" in vent.stderr(), 30,
                   "the ventilator to refuse w2 speaking as w1's routing id")

    def test_a_packet_capture_of_a_curve_job_holds_no_payload_and_of_a_plaintext_one_does(self):
        """Issue: a packet capture (tcpdump on lo) of a CURVE job contains none of the task
        payloads; the same capture of a plaintext job does, which proves the check can fail."""
        if not shutil.which("tcpdump"):
            self.fail("tcpdump is missing: scripts/install-deps.sh installs it")
        payloads = b"".join(b"payload-in-the-clear-%04d\n" % i for i in range(300))
        for curve in (False, True):
            c, k = self.curve_cluster()
            ports = [ep.rsplit(":", 1)[1] for ep in (c.vent_ep, c.sink_ep)]
            pcap = os.path.join(c.dir, "capture.pcap")
            # --immediate-mode: each packet is handed over as it comes (libpcap otherwise hands
            # them over in blocks, and what a block holds when tcpdump stops is lost).
            dump = subprocess.Popen(["tcpdump", "-i", "lo", "--immediate-mode", "-U", "-s", "0", "-w", pcap,
                                     f"tcp port {ports[0]} or tcp port {ports[1]}"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                # tcpdump says "listening on lo" once it captures.
                line = dump.stderr.readline()
                self.assertIn(b"listening on", line)
                sec = (k.ventilator(), k.sink(), k.worker()) if curve else ([], [], [])
                c.worker(builtin="echo", jobs=2, args=sec[2])
                vent = c.ventilator(payloads, args=sec[0])
                sink = c.sink(sec[1])
                out = self.finish(sink, vent)
                self.assertSameMultiset(out, payloads)
            finally:
                time.sleep(0.5)  # let tcpdump write out the last packets before it stops
                dump.terminate()
                dump.wait(30)
            with open(pcap, "rb") as f:
                captured = f.read()
            self.assertGreater(len(captured), 10_000, "the capture saw the job's traffic")
            seen = captured.count(b"payload-in-the-clear-")
            if curve:
                self.assertEqual(seen, 0, "a CURVE job's payload crossed the wire in the clear")
            else:
                self.assertGreaterEqual(seen, 300, "the plaintext capture should show every payload")


class Refusals(E2E):
    """Every refusal: one line naming what is wrong, and the exit code."""

    def setUp(self):
        self.k = Keys(self)

    def check(self, argv, code, message):
        rc, out, err = run(argv, timeout=60)
        self.assertEqual(rc, code, err)
        self.assertEqual(out, b"")
        self.assertIn(message, err)
        return err

    def test_a_plaintext_bind_beyond_loopback_is_refused_naming_keygen_and_insecure(self):
        """Issue: a ventilator or sink asked to bind a TCP address outside 127.0.0.0/8 and ::1
        without --key refuses to start, with a one-line error naming mtask-keygen and --insecure."""
        for host in ("0.0.0.0", "*"):
            ep = f"tcp://{host}:5599"
            err = self.check([binary("mtask-ventilator"), "--ventilator", ep, "--range", "1:3"], 2,
                             f"mtask-ventilator: error: refusing to bind --ventilator '{ep}' in plaintext beyond "
                             "loopback: make keys with mtask-keygen and pass --key, --allow and the peers' keys, "
                             "or pass --insecure (try --help)")
            self.assertEqual(err.count("\n"), 1, err)
            self.check([binary("mtask-sink"), "--sink", ep], 2,
                       f"mtask-sink: error: refusing to bind --sink '{ep}' in plaintext beyond loopback")

    def test_insecure_allows_a_plaintext_bind_beyond_loopback(self):
        c = self.cluster(transport="tcp")
        port = c.vent_ep.rsplit(":", 1)[1]
        c.worker(builtin="echo")
        # Bound on every address, reached through loopback.
        vent = c._start("ventilator", [binary("mtask-ventilator"), "--ventilator", f"tcp://0.0.0.0:{port}",
                                       "--sink", c.sink_ep, "--range", "1:50", "--insecure"])
        sink = c.sink()
        out = self.finish(sink, vent)
        self.assertEqual(sorted(lines(out), key=int), [b"%d" % i for i in range(1, 51)])

    def test_key_files_that_are_missing_public_or_not_certificates_are_named(self):
        k = self.k
        w = [binary("mtask-worker"), "--builtin", "echo", "--once", "--idle-timeout-ms", "500",
             "--ventilator-key", k.p("vent.key"), "--sink-key", k.p("sink.key")]
        self.check(w + ["--key", k.p("nope")], 1,
                   f"mtask-worker: error: cannot read key '{k.p('nope')}': No such file or directory")
        self.check(w + ["--key", k.p("vent.key")], 1,
                   f"cannot read key '{k.p('vent.key')}': no secret-key: this is a public certificate, "
                   "give the '_secret' file")
        junk = k.p("junk")
        with open(junk, "w") as f:
            f.write("hello\n")
        self.check(w + ["--key", junk], 1, f"cannot read key '{junk}': not a ZeroMQ certificate (no 'curve' section)")
        self.check([binary("mtask-sink"), "--key", k.p("sink.key_secret"), "--ventilator-key", k.p("vent.key"),
                    "--allow", k.p("nowhere")], 1,
                   f"mtask-sink: error: cannot read --allow '{k.p('nowhere')}': No such file or directory")

    def test_flags_that_do_not_go_together_are_usage_errors(self):
        k = self.k
        self.check([binary("mtask-worker"), "--builtin", "echo", "--key", k.p("allow/w1.key_secret")], 2,
                   "mtask-worker: error: --key needs --ventilator-key and --sink-key: a worker pins both servers "
                   "it talks to (try --help)")
        self.check([binary("mtask-ventilator"), "--range", "1:2", "--sink-key", k.p("sink.key")], 2,
                   "mtask-ventilator: error: --sink-key needs --key (this process's own secret certificate)")
        self.check([binary("mtask-sink"), "--key", k.p("sink.key_secret"), "--ventilator-key", k.p("vent.key")], 2,
                   "--key needs --ventilator-key (the server it joins) and --allow DIR (the workers it accepts)")

    def test_a_secret_key_readable_by_others_is_used_with_a_warning(self):
        k = self.k
        os.chmod(k.p("allow/w1.key_secret"), 0o644)
        err = self.check([binary("mtask-worker"), "--builtin", "echo", "--once", "--idle-timeout-ms", "300",
                          "--ventilator", "tcp://127.0.0.1:1"] + k.worker(), 1,
                         f"mtask-worker: warn: secret key '{k.p('allow/w1.key_secret')}' is readable by others "
                         "(mode 644): chmod 600 it")
        self.assertIn("giving up after 300 ms without a ventilator", err)

    def test_a_wrong_server_key_or_an_unlisted_key_is_named_at_once_and_the_worker_exits_1(self):
        """Issue: a server key that does not match: the client logs the failure at once, and exits 1
        after --idle-timeout-ms where one is set. A client that is not allowed: the server logs its
        public key, once per key, at -v."""
        c = self.cluster(transport="tcp", heartbeat_ms=250, heartbeat_timeout_ms=3000)
        k = self.k
        vent = c.ventilator(args=["--range", "1:5", "-v"] + k.ventilator())
        wrong = ["--key", k.p("allow/w1.key_secret"), "--ventilator-key", k.p("sink.key"), "--sink-key",
                 k.p("sink.key")]
        w = c.worker(builtin="echo", args=["--once", "--idle-timeout-ms", "3000"] + wrong)
        self.assertEqual(w.wait(60), 1)
        self.assertIn(f"mtask-worker: warn: cannot join the ventilator at '{c.vent_ep}' yet: the CURVE handshake "
                      "failed 3 times in a row: is --ventilator-key its key? (a proxy with nothing behind it does "
                      "the same)", w.stderr())
        self.assertEqual(w.stderr().count("CURVE handshake failed"), 1, w.stderr())  # once, not per retry
        self.assertIn("giving up after 3000 ms without a ventilator", w.stderr())
        s = c.worker(builtin="echo", args=["--once", "--idle-timeout-ms", "3000"] + k.worker("stranger"))
        self.assertEqual(s.wait(60), 1)
        key = public_key(k.p("stranger.key"))
        self.assertIn(f"cannot join the ventilator at '{c.vent_ep}': refused (400): our key '{key}' is not on its "
                      "--allow list", s.stderr())
        self.assertEqual(vent.stderr().count(f"with key '{key}'"), 1, vent.stderr())  # once per key
        vent.signal(15)
        vent.wait(30)

    def test_a_curve_worker_told_of_a_plaintext_ventilator_says_so(self):
        c = self.cluster(transport="tcp", heartbeat_ms=250, heartbeat_timeout_ms=3000)
        vent = c.ventilator(args=["--range", "1:5"])
        w = c.worker(builtin="echo", args=["--once", "--idle-timeout-ms", "2000"] + self.k.worker())
        self.assertEqual(w.wait(60), 1)
        self.assertIn(f"cannot join the ventilator at '{c.vent_ep}': it runs without --key (plaintext), and this "
                      "process with it", w.stderr())
        vent.signal(15)
        vent.wait(30)

    def test_a_worker_the_sink_refuses_leaves_and_its_tasks_run_elsewhere(self):
        """Issue: never a hang. A worker whose key the ventilator allows but the sink does not
        would hold its results for ever and look busy to the ventilator; it says why, says bye
        and exits 1, and the job finishes on the other worker."""
        c = self.cluster(transport="tcp", heartbeat_ms=250, heartbeat_timeout_ms=3000)
        k = self.k
        vent_allow = k.p("allow_vent")
        shutil.copytree(k.p("allow"), vent_allow)
        keygen(os.path.join(vent_allow, "ventonly"))
        vent = c.ventilator(args=["--range", "1:400", "-v", "--key", k.p("vent.key_secret"), "--sink-key",
                                  k.p("sink.key"), "--allow", vent_allow])
        sink = c.sink(k.sink())
        # Without --sink: it learns the sink's endpoint with its first tasks, so it holds tasks
        # when the sink refuses it.
        half = c._start("worker", [binary("mtask-worker"), "--ventilator", c.vent_ep, "--builtin", "echo", "-j", "2",
                                   "--once", "--key", os.path.join(vent_allow, "ventonly.key_secret"),
                                   "--ventilator-key", k.p("vent.key"), "--sink-key", k.p("sink.key")])
        wait_until(lambda: "joined" in vent.stderr(), 60, "the half-allowed worker to join")
        self.assertEqual(half.wait(60), 1)
        good = c.worker(builtin="echo", jobs=2, args=["--once"] + k.worker())
        out = self.finish(sink, vent)
        self.assertEqual(sorted(lines(out), key=int), [b"%d" % i for i in range(1, 401)])
        self.assertIn(f"cannot join the sink at '{c.sink_ep}': refused (400)", half.stderr())
        self.assertIn("giving up: the sink will not take our results", half.stderr())
        self.assertRegex(vent.stderr(), r"worker ventonly@\S+ lost \(said goodbye\): [1-9]\d* task\(s\) back")
        self.assertEqual(good.wait(60), 0)


class Keygen(E2E):
    def test_keygen_writes_a_public_and_a_0600_secret_certificate_and_prints_no_key(self):
        """Issue: mtask-keygen PATH writes PATH.key (public) and PATH.key_secret (secret, mode
        0600) in ZeroMQ's certificate format, with a name (default: the base name); never prints
        a secret key."""
        d = tempfile.mkdtemp(prefix="mtask-keygen-")
        self.addCleanup(shutil.rmtree, d, True)
        old = os.umask(0)
        try:
            out, err = keygen(os.path.join(d, "node7"))
        finally:
            os.umask(old)
        self.assertEqual(out, b"")
        pub, sec = os.path.join(d, "node7.key"), os.path.join(d, "node7.key_secret")
        self.assertEqual(stat.S_IMODE(os.stat(sec).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(pub).st_mode), 0o644)
        self.assertNotIn(secret_key(sec), err)
        self.assertNotIn(secret_key(sec), read(pub))
        text = read(sec)
        self.assertRegex(text, r'(?m)^metadata\n    name = "node7"\ncurve\n    public-key = ".{40}"\n'
                               r'    secret-key = ".{40}"\n')
        # The keys are a real CURVE pair: libzmq derives the public key from the secret one.
        self.assertEqual(zmq.curve_public(secret_key(sec).encode()).decode(), public_key(pub))
        keygen(os.path.join(d, "other"), "--name", "gpu-box-1")
        self.assertIn('name = "gpu-box-1"', read(os.path.join(d, "other.key")))
        rc, _, err = run([binary("mtask-keygen"), os.path.join(d, "node7")])
        self.assertEqual(rc, 1)
        self.assertIn(f"cannot write '{sec}': File exists", err)
        rc, _, err = run([binary("mtask-keygen")])
        self.assertEqual((rc, err), (2, "mtask-keygen: error: PATH is required (try --help)\n"))


if __name__ == "__main__":
    main()
