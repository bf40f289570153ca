#!/usr/bin/env python3
"""Hostile input on the wire: thousands of garbage frames to every bound socket during a job
(random bytes, valid msgpack of the wrong shape, wrong protocol version, unknown job ids,
oversized frames, extra frames, raw non-ZMTP bytes). The job's output must not change, every
process must survive, and the drops must be counted."""

import random
import re
import socket
import struct
import threading

import zmq

from harness import E2E, main, wait_until

PROTOCOL_VERSION = 4  # what the binaries speak (4: the fleet in job_info for the progress line, issue 12)
WRONG_VERSION = 11  # message type: "your version is not mine", [version, 11, job]


def msgpack_array(*items):
    """A tiny msgpack encoder for the few shapes we need (ints, bools, short str, bytes, arrays)."""
    def enc(x):
        if isinstance(x, bool):
            return b"\xc3" if x else b"\xc2"
        if isinstance(x, int):
            if 0 <= x < 128:
                return bytes([x])
            if x < 0:
                return b"\xd3" + struct.pack(">q", x)
            return b"\xcf" + struct.pack(">Q", x)
        if isinstance(x, str) and len(x.encode()) < 32:
            return bytes([0xa0 | len(x.encode())]) + x.encode()  # fixstr
        if isinstance(x, bytes):
            return b"\xc5" + struct.pack(">H", len(x)) + x
        if isinstance(x, list):
            head = bytes([0x90 | len(x)]) if len(x) < 16 else b"\xdc" + struct.pack(">H", len(x))
            return head + b"".join(enc(i) for i in x)
        raise TypeError(x)
    return enc(list(items))


def garbage_frames(rng, oversized):
    """One round of every kind of bad frame."""
    frames = [
        [bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64)))],  # random bytes
        [b""],  # empty frame
        [b"\x81\xa1a\x01"],  # a msgpack map
        [b"\xa5hello"],  # a msgpack string
        [msgpack_array(7, 1, 1, b"x", 1, 1, 1, 0)],  # unsupported protocol version
        [msgpack_array(1, 99, 1)],  # unknown message type
        [msgpack_array(1, 1)],  # too short
        [msgpack_array(1, 9, 123456789, b"w", [[0, 1, 0, 0, b"FORGED", b"", 0, 0, b""]])],  # results of an unknown job
        [msgpack_array(1, 6, 987654321, 0, [])],  # a sink status for another job
        [msgpack_array(1, 1, 0, b"evil", b"not-a-number", 1, 0, 0)],  # worker status, wrong field types
        [b"\x91\x01", b"extra frame", b"and another"],  # multi-frame
        [oversized],  # beyond --max-message-bytes: the connection is dropped by libzmq
    ]
    return frames


def msgpack_decode(data):
    """A minimal msgpack decoder for the shapes mtask sends (ints, bools, str, bin, arrays)."""
    pos = 0

    def take(n):
        nonlocal pos
        chunk = data[pos:pos + n]
        pos += n
        return chunk

    def value():
        b = take(1)[0]
        if b <= 0x7f:
            return b
        if 0x90 <= b <= 0x9f:
            return [value() for _ in range(b & 0x0f)]
        if 0xa0 <= b <= 0xbf:
            return take(b & 0x1f)
        if b == 0xc2 or b == 0xc3:
            return b == 0xc3
        sizes = {0xcc: (">B", 1), 0xcd: (">H", 2), 0xce: (">I", 4), 0xcf: (">Q", 8),
                 0xd0: (">b", 1), 0xd1: (">h", 2), 0xd2: (">i", 4), 0xd3: (">q", 8)}
        if b in sizes:
            fmt, n = sizes[b]
            return struct.unpack(fmt, take(n))[0]
        if b in (0xc4, 0xd9):
            return take(take(1)[0])
        if b in (0xc5, 0xda):
            return take(struct.unpack(">H", take(2))[0])
        if b in (0xc6, 0xdb):
            return take(struct.unpack(">I", take(4))[0])
        if b == 0xdc:
            return [value() for _ in range(struct.unpack(">H", take(2))[0])]
        if b == 0xdd:
            return [value() for _ in range(struct.unpack(">I", take(4))[0])]
        raise ValueError(f"msgpack byte {b:#x} not handled here")

    return value()


class Hostile(E2E):
    def test_a_worker_that_swallows_its_tasks_cannot_hang_the_job(self):
        # A well-behaved-looking peer: it heartbeats, takes tasks, says it holds nothing, and
        # never sends a result (as if every result were lost on the way to the sink).
        data = b"".join(b"%d\n" % i for i in range(200))
        c = self.cluster()
        vent = c.ventilator(data, ["-v"])
        stop = threading.Event()
        swallowed = {"tasks": 0}

        def swallow():
            ctx = zmq.Context()
            s = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.connect(c.vent_ep)
            job, next_seq = 0, 1
            try:
                while not stop.is_set():
                    # [version, type=worker_status, job, name, slots, free, next_seq, completed_job, busy, lost, done, failed]
                    try:
                        s.send(msgpack_array(PROTOCOL_VERSION, 1, job, b"swallower", 4, 4, next_seq, 0, 0, [], 0, 0), zmq.NOBLOCK)
                    except zmq.Again:
                        pass  # not connected yet
                    if s.poll(50):
                        msg = msgpack_decode(s.recv())
                        if msg[1] == 3:  # tasks: [version, 3, job, seq, terminator, sink, details, [task...]]
                            if msg[2] != job:
                                job, next_seq = msg[2], 1
                            next_seq = msg[3] + 1
                            swallowed["tasks"] += len(msg[7])
            finally:
                s.close()
                ctx.term()

        t = threading.Thread(target=swallow)
        t.start()
        try:
            # The swallower is a worker before any real one: it is sure to be handed tasks (the
            # ventilator dispatches only once the sink has confirmed, so nothing went out yet).
            wait_until(lambda: "worker swallower joined" in vent.stderr(), 20, "the swallower to join")
            c.worker("cat", jobs=2)
            sink = c.sink(["-k"])
            out = self.finish(sink, vent, timeout=60)
        finally:
            stop.set()
            t.join()
        self.assertEqual(out, data)
        self.assertGreater(swallowed["tasks"], 0, "the swallower must actually have taken tasks")
        self.assertIn("were never acknowledged", vent.stderr())

    def test_garbage_on_every_bound_port_changes_nothing(self):
        data = b"".join(b"line %d\n" % i for i in range(3000))
        c = self.cluster(transport="tcp")
        limit = ["--max-message-bytes", "65536"]
        for _ in range(2):
            c.worker("tr", "a-z", "A-Z", jobs=2, args=limit)
        vent = c.ventilator(data, limit + ["-v"])
        sink = c.sink(limit + ["-k", "-v"])

        stop = threading.Event()
        sent = {"frames": 0, "raw": 0}

        def attack():
            rng = random.Random(99)
            ctx = zmq.Context()
            oversized = b"\x00" * 100_000
            socks = []
            for kind, ep in ((zmq.DEALER, c.vent_ep), (zmq.PUSH, c.sink_ep)):
                s = ctx.socket(kind)
                s.setsockopt(zmq.LINGER, 0)
                s.setsockopt(zmq.SNDHWM, 100000)
                s.connect(ep)
                socks.append((s, kind, ep))
            try:
                while not stop.is_set():
                    for s, kind, ep in socks:
                        for frames in garbage_frames(rng, oversized):
                            if frames[0] is oversized:
                                # A separate connection: libzmq drops the connection that sent it.
                                one = ctx.socket(kind)
                                one.setsockopt(zmq.LINGER, 0)
                                one.connect(ep)
                                try:
                                    one.send(oversized, zmq.NOBLOCK)
                                except zmq.Again:
                                    pass
                                one.close()
                                continue
                            try:
                                s.send_multipart(frames, zmq.NOBLOCK)
                                sent["frames"] += 1
                            except zmq.Again:
                                pass
                        # Raw bytes that are not ZMTP at all.
                        host, port = ep[len("tcp://"):].rsplit(":", 1)
                        try:
                            with socket.create_connection((host, int(port)), timeout=1) as raw:
                                raw.sendall(bytes(rng.getrandbits(8) for _ in range(200)))
                                sent["raw"] += 1
                        except OSError:
                            pass
            finally:
                for s, _, _ in socks:
                    s.close()
                ctx.term()

        threads = [threading.Thread(target=attack) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            out = self.finish(sink, vent, timeout=120)
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertEqual(out, data.translate(bytes.maketrans(b"abcdefghijklmnopqrstuvwxyz",
                                                             b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")))
        self.assertGreater(sent["frames"], 1000, "the attack must actually have sent thousands of frames")
        for w in c.procs:
            if "worker" in w.name:
                self.assertTrue(w.alive(), f"{w.name} died:\n{w.stderr()}")
        self.assertRegex(vent.stderr(), r"dropped \d+ malformed or foreign message")
        self.assertRegex(sink.stderr(), r"dropped \d+ malformed and \d+ foreign message")


class ProtocolVersion(E2E):
    """Issue: the protocol version became 2 (now 3); a frame of another version gets a clear error
    at hello (a `wrong_version` reply, type 11), not silence."""

    def test_a_worker_of_version_1_is_told_wrong_version_and_the_ventilator_names_both(self):
        """Issue: a version-1 worker_status must receive `[4, 11, 0]`, and the ventilator's stderr
        must name both versions (at the default verbosity: whoever started the old worker must
        see why it is refused)."""
        c = self.cluster()
        vent = c.ventilator(b"a\n")
        ctx = zmq.Context()
        self.addCleanup(ctx.term)
        s = ctx.socket(zmq.DEALER)
        self.addCleanup(s.close)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.ROUTING_ID, b"wfake-version-1")
        s.connect(c.vent_ep)
        # [version 1, worker_status, job 0, name, slots, free, received, completed_job, busy]
        s.send(msgpack_array(1, 1, 0, "fake", 1, 1, 0, 0, 0))
        self.assertTrue(s.poll(20_000), f"no reply within 20 s; ventilator stderr:\n{vent.stderr()}")
        reply = msgpack_decode(s.recv())
        self.assertIsInstance(reply, list, reply)
        self.assertEqual(reply[:3], [PROTOCOL_VERSION, WRONG_VERSION, 0], f"reply {reply}")
        ours = rf"\b{PROTOCOL_VERSION}\b"
        wait_until(lambda: any(re.search(r"\b1\b", l) and re.search(ours, l) and "version" in l
                               for l in vent.stderr().splitlines()), 20,
                   f"the ventilator to log a line naming versions 1 and {PROTOCOL_VERSION}")

    def test_a_worker_answered_in_another_version_exits_1_naming_both(self):
        """Issue: a ventilator answering `[99, 4, 0, false]` makes `mtask-worker --once` exit 1
        within a few seconds, with a one-line error naming versions 99 and ours."""
        c = self.cluster()
        ctx = zmq.Context()
        self.addCleanup(ctx.term)
        fake = ctx.socket(zmq.ROUTER)
        self.addCleanup(fake.close)
        fake.setsockopt(zmq.LINGER, 0)
        fake.bind(c.vent_ep)
        stop = threading.Event()
        answered = {"frames": 0}

        def answer():
            while not stop.is_set():
                if fake.poll(50):
                    peer, *_ = fake.recv_multipart()
                    # [version 99, vent_status, job 0, complete false]
                    fake.send_multipart([peer, msgpack_array(99, 4, 0, False)])
                    answered["frames"] += 1

        t = threading.Thread(target=answer)
        t.start()
        try:
            w = c.worker(builtin="echo", args=["--once"])
            rc = w.wait(20)
        finally:
            stop.set()
            t.join()
        self.assertGreater(answered["frames"], 0, "the worker must have spoken first")
        self.assertEqual(rc, 1, w.stderr())
        named = [l for l in w.stderr().splitlines() if re.search(r"\b99\b", l)]
        self.assertEqual(len(named), 1, f"one line naming version 99:\n{w.stderr()}")
        self.assertRegex(named[0], rf"\b{PROTOCOL_VERSION}\b", "the line names this build's version too")


if __name__ == "__main__":
    main()
