"""Test driver for mtask's end-to-end tests: starts the real binaries as separate processes on
endpoints of their own (a fresh ipc:// directory or free tcp ports per test), captures stdout and
stderr to files, and kills whatever is still running when a test ends. A test can put a fault
proxy in front of an endpoint and feed the ventilator through a named pipe, a part at a time.
Nothing here sleeps to synchronise: tests wait for processes to exit or for a condition, each
wait bounded by a timeout."""

import os
import random
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from fault_proxy import FaultProxy

BIN_DIR = os.environ.get("MTASK_BIN_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))


def binary(name):
    for sub in ("", name.replace("mtask-", "") + "/"):
        path = os.path.join(BIN_DIR, sub, name)
        if os.path.isfile(path):  # build/mtask is the folder of the mtask binary
            return path
    raise FileNotFoundError(f"{name} not found under {BIN_DIR} (set MTASK_BIN_DIR)")


def free_tcp_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(endpoint, timeout=10.0):
    """Returns once something accepts connections at a tcp:// endpoint (polls connect, bounded)."""
    host, port = endpoint[len("tcp://"):].rsplit(":", 1)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing listens at {endpoint} after {timeout}s")
            time.sleep(0.01)  # polling a condition, bounded by the deadline


class Proc:
    """A started binary with its output going to files (so a chatty process never blocks on a pipe)."""

    def __init__(self, argv, workdir, name, stdin_bytes=None, stdin_path=None, env=None):
        self.name = name
        self.argv = argv
        self.out_path = os.path.join(workdir, f"{name}.out")
        self.err_path = os.path.join(workdir, f"{name}.err")
        if stdin_bytes is not None:
            stdin_path = os.path.join(workdir, f"{name}.in")
            with open(stdin_path, "wb") as f:
                f.write(stdin_bytes)
        self._in = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
        self._out = open(self.out_path, "wb")
        self._err = open(self.err_path, "wb")
        self.p = subprocess.Popen(argv, stdin=self._in, stdout=self._out, stderr=self._err, env=env)
        self.pid = self.p.pid

    def wait(self, timeout=30):
        """Returns the exit code; fails the test (after killing) if it does not exit in time."""
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise AssertionError(f"{self.name} did not exit within {timeout}s; stderr:\n{tail(self.stderr())}")

    def alive(self):
        return self.p.poll() is None

    def signal(self, sig):
        if self.alive():
            self.p.send_signal(sig)

    def stdout(self):
        self._out.flush()
        with open(self.out_path, "rb") as f:
            return f.read()

    def stdout_lines(self):
        """Lines written to stdout so far (to wait for progress while a job runs)."""
        with open(self.out_path, "rb") as f:
            return f.read().count(b"\n")

    def stderr(self):
        self._err.flush()
        with open(self.err_path, "rb") as f:
            return f.read().decode(errors="replace")

    def close(self):
        if self.alive():
            self.p.kill()
            self.p.wait()
        for f in (self._out, self._err):
            f.close()
        if self._in is not subprocess.DEVNULL:
            self._in.close()


class Cluster:
    """One test's ventilator, sink and workers, on endpoints no other test uses."""

    def __init__(self, testcase, transport="ipc", heartbeat_ms=50, heartbeat_timeout_ms=1000):
        self.dir = tempfile.mkdtemp(prefix="mtask-e2e-")
        if transport == "ipc":
            self.vent_ep = f"ipc://{self.dir}/vent"
            self.sink_ep = f"ipc://{self.dir}/sink"
        else:
            self.vent_ep = f"tcp://127.0.0.1:{free_tcp_port()}"
            self.sink_ep = f"tcp://127.0.0.1:{free_tcp_port()}"
        self.heartbeat = ["--heartbeat-ms", str(heartbeat_ms), "--heartbeat-timeout-ms", str(heartbeat_timeout_ms)]
        self.procs = []
        self.cleanups = []  # run before the processes are killed
        self.counter = 0
        testcase.addCleanup(self.close)

    def common(self, ventilator=None, sink=None):
        """Flags every role gets; `ventilator`/`sink` replace the endpoint this process connects to
        (a fault proxy in front of the real one, say)."""
        return ["--ventilator", ventilator or self.vent_ep, "--sink", sink or self.sink_ep] + self.heartbeat

    def _start(self, name, argv, **kw):
        self.counter += 1
        p = Proc(argv, self.dir, f"{self.counter:02d}-{name}", **kw)
        self.procs.append(p)
        return p

    def worker(self, *command, jobs=1, args=(), builtin=None, ventilator=None, sink=None):
        argv = [binary("mtask-worker")] + self.common(ventilator, sink) + ["-j", str(jobs)] + list(args)
        argv += ["--builtin", builtin] if builtin else ["--"] + list(command)
        return self._start("worker", argv)

    def ventilator(self, input_bytes=b"", args=(), stdin_path=None):
        argv = [binary("mtask-ventilator")] + self.common() + list(args)
        if stdin_path:
            return self._start("ventilator", argv, stdin_path=stdin_path)
        return self._start("ventilator", argv, stdin_bytes=input_bytes)

    def sink(self, args=(), ventilator=None):
        return self._start("sink", [binary("mtask-sink")] + self.common(ventilator) + list(args))

    def proxy(self, endpoint):
        """A FaultProxy in front of a tcp:// endpoint, stopped when the test ends."""
        p = FaultProxy.in_front_of(endpoint)
        self.cleanups.append(p.stop)
        return p

    def fifo(self, name="input"):
        """A named pipe for the ventilator's input, written by the test while the job runs."""
        return Fifo(os.path.join(self.dir, name), self.cleanups)

    def close(self):
        for fn in reversed(self.cleanups):
            fn()
        for p in self.procs:
            p.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Fifo:
    """A named pipe the test writes while a process reads it (pass `path` as stdin_path). The test
    holds it open read-write, so opening either end never blocks, and the reader sees end of input
    only at close()."""

    def __init__(self, path, cleanups):
        os.mkfifo(path)
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
        cleanups.append(self.close)

    def write(self, data, timeout=60):
        """Returns once the reader has room for all of `data`; fails the test if it has not within
        `timeout` (a reader that stopped reading)."""
        view = memoryview(data)
        deadline = time.monotonic() + timeout
        while view:
            if not select.select([], [self.fd], [], 0.1)[1]:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{self.path}: {len(view)} bytes still unread after {timeout}s")
                continue
            try:
                view = view[os.write(self.fd, view):]
            except BlockingIOError:
                pass

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def run(argv, input_bytes=b"", timeout=30):
    """Runs one binary to completion; returns (exit code, stdout bytes, stderr text)."""
    r = subprocess.run(argv, input=input_bytes, capture_output=True, timeout=timeout)
    return r.returncode, r.stdout, r.stderr.decode(errors="replace")


def wait_until(predicate, timeout, what, detail=None):
    """Polls a condition (not a sleep to synchronise: it returns as soon as the condition holds).
    `detail`, if given, is called on timeout for what to add to the failure (a process's stderr)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            extra = f"\n{detail()}" if detail else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{extra}")
        time.sleep(0.02)


def tail(text, n=30):
    """The last n lines of a log, for failure messages (a chaos run can log thousands)."""
    all_lines = text.splitlines()
    cut = f"[{len(all_lines) - n} earlier lines]\n" if len(all_lines) > n else ""
    return cut + "\n".join(all_lines[-n:])


def lines(data):
    return data.split(b"\n")[:-1] if data.endswith(b"\n") else data.split(b"\n")


class E2E(unittest.TestCase):
    """Base class: a cluster per test and helpers that state results exactly."""

    transport = "ipc"

    def cluster(self, **kw):
        kw.setdefault("transport", self.transport)
        return Cluster(self, **kw)

    def finish(self, sink, vent, expect=0, timeout=60):
        """Waits for sink and ventilator; both must exit with `expect`. Returns the sink's stdout."""
        try:
            rc = sink.wait(timeout)
        except AssertionError as e:
            raise AssertionError(f"{e}\nventilator stderr:\n{tail(vent.stderr())}") from None
        self.assertEqual(rc, expect, f"sink exit code; stderr:\n{tail(sink.stderr())}")
        rc = vent.wait(timeout)
        self.assertEqual(rc, expect, f"ventilator exit code; stderr:\n{tail(vent.stderr())}")
        return sink.stdout()

    def assertSameMultiset(self, got, want):
        self.assertEqual(sorted(lines(got)), sorted(lines(want)))


def main():
    unittest.main(verbosity=2)
