#!/usr/bin/env python3
"""The protocol survives the network: connections reset under a running job (through
fault_proxy.FaultProxy, on tcp://), and frames bigger than --max-message-bytes. Each reset is
placed by progress, never by time: the input comes through a named pipe, a part at a time, and
the connection is reset once the sink has written half of the part in flight, so the job cannot
finish without the connections made after the reset however fast or slow the machine is."""

import re

from harness import E2E, lines, main, wait_until


def sleep_tasks(n):
    """n distinct tasks for `--builtin sleep`, about 1 ms each (a job that cannot end in an instant,
    so a reset lands while tasks, results and acks are on the wire); the result is the payload."""
    return [b"0.001%06d" % i for i in range(n)]


class NetworkFaults(E2E):
    transport = "tcp"

    def feed_with_resets(self, fifo, sink, payloads, proxy, resets):
        """Writes the input in resets + 1 parts; after each part but the last, resets every
        connection through `proxy` once the sink has written half of that part, then writes the
        next. Closes the input at the end."""
        n = len(payloads)
        bounds = [n * i // (resets + 1) for i in range(resets + 2)]
        for i in range(resets + 1):
            part = payloads[bounds[i]:bounds[i + 1]]
            fifo.write(b"".join(p + b"\n" for p in part))
            if i < resets:
                target = bounds[i] + len(part) // 2
                wait_until(lambda: sink.stdout_lines() >= target, 30, f"the sink to write {target} results")
                self.assertGreater(proxy.reset_all(), 0, "a reset must cut a live connection")
        fifo.close()

    def test_a_reset_between_sink_and_ventilator_loses_and_repeats_nothing(self):
        """Issue: "the sink reconnects with a new routing id and the ventilator logs `ignoring a
        second sink` until both exit 1 after --idle-timeout-ms": the job must go on instead."""
        c = self.cluster()
        payloads = sleep_tasks(4000)
        # Shortened only so that today's failure (both give up) comes quickly: a passing run
        # never waits for it.
        patience = ["--idle-timeout-ms", "20000"]
        proxy = c.proxy(c.vent_ep)
        fifo = c.fifo()
        for _ in range(2):
            c.worker(builtin="sleep", jobs=4)
        vent = c.ventilator(args=patience, stdin_path=fifo.path)
        sink = c.sink(["-k"] + patience, ventilator=proxy.endpoint)
        self.feed_with_resets(fifo, sink, payloads, proxy, resets=1)
        out = self.finish(sink, vent, timeout=60)
        self.assertEqual(out, b"".join(p + b"\n" for p in payloads))

    def test_resets_between_workers_and_ventilator_lose_and_repeat_nothing(self):
        """Issue: tasks, credit and acks lost on a dropped worker connection must neither hang the
        job nor change its output."""
        c = self.cluster()
        payloads = sleep_tasks(4000)
        proxy = c.proxy(c.vent_ep)
        fifo = c.fifo()
        for _ in range(2):
            c.worker(builtin="sleep", jobs=4, ventilator=proxy.endpoint)
        vent = c.ventilator(stdin_path=fifo.path)
        sink = c.sink(["-k"])
        self.feed_with_resets(fifo, sink, payloads, proxy, resets=3)
        out = self.finish(sink, vent, timeout=60)
        self.assertEqual(out, b"".join(p + b"\n" for p in payloads))

    def test_resets_between_workers_and_sink_lose_and_repeat_nothing(self):
        """Issue: results lost on a dropped worker-to-sink connection are run again, and a copy that
        arrives after all is written once."""
        c = self.cluster()
        payloads = sleep_tasks(4000)
        proxy = c.proxy(c.sink_ep)
        fifo = c.fifo()
        for _ in range(2):
            c.worker(builtin="sleep", jobs=4, sink=proxy.endpoint)
        vent = c.ventilator(stdin_path=fifo.path)
        sink = c.sink(["-k"])
        self.feed_with_resets(fifo, sink, payloads, proxy, resets=2)
        out = self.finish(sink, vent, timeout=60)
        self.assertEqual(out, b"".join(p + b"\n" for p in payloads))


class MessageSizeLimit(E2E):
    """--max-message-bytes bounds a frame; a batch of tasks or results must fit it, and a single
    task or result that cannot fit fails alone, saying why."""

    LIMIT = ["--max-message-bytes", "200000"]

    def test_batches_are_cut_to_fit_max_message_bytes(self):
        """Issue: a batch of several 64 KiB tasks (or their results) is bigger than a 200 000-byte
        limit, and the frame is dropped with its connection: the job fails with exit 1 (today
        once the ventilator's --idle-timeout-ms, 60 s, runs out; the test gives up at 30 s)."""
        data = b"".join(b"%099d\n" % i for i in range(40_000))  # 4 MB, about 62 tasks of 64 KiB
        c = self.cluster()
        c.worker("cat", jobs=4, args=self.LIMIT)
        vent = c.ventilator(data, ["--block", "64k", "-v"] + self.LIMIT)
        # The sink last: until it confirms, the ventilator only reads ahead as far as the worker's
        # credit, so its first batch is sure to be a full credit (4 x 64 KiB).
        wait_until(lambda: "joined" in vent.stderr(), 30, "the worker to join")
        sink = c.sink(["-k"] + self.LIMIT)
        self.assertEqual(self.finish(sink, vent, timeout=30), data)

    def test_a_task_bigger_than_max_message_bytes_fails_alone_naming_the_limit(self):
        """Issue: a task that cannot fit in a frame fails alone (exit 3, naming --max-message-bytes)
        instead of dropping the connection that carries it."""
        small = [b"line %d" % i for i in range(2000)]
        big_at = 1000
        payloads = small[:big_at] + [b"x" * 300_000] + small[big_at:]
        c = self.cluster()
        c.worker(builtin="echo", jobs=2, args=self.LIMIT)
        vent = c.ventilator(b"".join(p + b"\n" for p in payloads), self.LIMIT)
        sink = c.sink(["-k"] + self.LIMIT)
        out = self.finish(sink, vent, expect=3, timeout=30)
        self.assertEqual(out, b"".join(p + b"\n" for p in small))
        self.assertRegex(sink.stderr(), rf"task {big_at} failed: .*--max-message-bytes")
        self.assertEqual(len(re.findall(r"task \d+ failed", sink.stderr())), 1, sink.stderr())

    def test_a_result_bigger_than_max_message_bytes_fails_alone_naming_the_limit(self):
        """Issue: a result that cannot fit in a frame fails its task (naming --max-message-bytes)
        instead of being dropped with the connection and run again for ever."""
        payloads = [b"line %d" % i for i in range(20)]
        payloads[7] = b"big"
        c = self.cluster()
        c.worker("sh", "-c", 'read x; if [ "$x" = big ]; then head -c 300000 /dev/zero; else echo "$x"; fi',
                 jobs=2, args=self.LIMIT)
        vent = c.ventilator(b"".join(p + b"\n" for p in payloads), self.LIMIT)
        sink = c.sink(["-k"] + self.LIMIT)
        out = self.finish(sink, vent, expect=3, timeout=30)
        self.assertEqual(lines(out), payloads[:7] + payloads[8:])
        self.assertRegex(sink.stderr(), r"task 7 failed: .*--max-message-bytes")


if __name__ == "__main__":
    main()
