"""A TCP proxy that breaks the network on demand, for end-to-end tests: it forwards every
connection it accepts on 127.0.0.1 to a target, both ways, and can reset every current connection
(both sides see a RST, and whatever was in flight through it is lost), stop forwarding for a while
(a partition), and count the bytes it forwarded so a test can strike "after N bytes" rather than
after a time. It keeps accepting after a reset, as ZeroMQ reconnects. With a `Jitter` it also holds
each chunk it reads for a random delay, now and then stalling for much longer (a slow, lossy link;
order is kept, as TCP's). Stdlib only: one thread runs a selector loop; the methods below hand
their work to it and wait until it is done. Run as a program, it is one such proxy in a process of
its own (to put it inside a network namespace): see `main`."""

import argparse
import errno
import random
import selectors
import signal
import socket
import struct
import sys
import threading
import time

_CHUNK = 65536
_MAX_BUFFERED = 1 << 20  # per direction: beyond this the proxy stops reading (TCP back-pressure)


class Jitter:
    """How long a proxy holds each chunk it reads: `delay_ms` ± `spread_ms` (uniform), and with
    probability `stall_chance` a stall of `stall_ms` (a (low, high) range) on top, as a link that
    loses a packet holds everything behind it until the retransmission. Seeded: a run replays."""

    def __init__(self, delay_ms=50, spread_ms=20, stall_chance=0.0, stall_ms=(500, 1000), seed=None):
        self.delay_ms = delay_ms
        self.spread_ms = spread_ms
        self.stall_chance = stall_chance
        self.stall_ms = stall_ms
        self.seed = seed if seed is not None else random.randrange(1 << 32)
        self.rng = random.Random(self.seed)
        self.chunks = 0
        self.stalls = 0

    def hold(self):
        """Seconds to hold the next chunk (called by the proxy's loop thread only)."""
        self.chunks += 1
        ms = self.rng.uniform(self.delay_ms - self.spread_ms, self.delay_ms + self.spread_ms)
        if self.rng.random() < self.stall_chance:
            self.stalls += 1
            ms += self.rng.uniform(*self.stall_ms)
        return max(ms, 0) / 1000


class _Pipe:
    """One accepted connection and the connection made for it to the target."""

    def __init__(self, client, upstream):
        self.socks = (client, upstream)
        self.pending = {client: bytearray(), upstream: bytearray()}  # bytes waiting to be written to that socket
        # With a Jitter: (release time, bytes) to move to `pending` then, in order, per socket.
        self.held = {client: [], upstream: []}
        self.eof = set()  # sockets that said they will send nothing more
        self.interest = {}  # socket -> selector events it is registered for (absent or 0: none)

    def peer(self, s):
        return self.socks[1] if s is self.socks[0] else self.socks[0]

    def queued(self, s):
        """Bytes read for socket `s` and not written to it yet (held or pending)."""
        return len(self.pending[s]) + sum(len(b) for _, b in self.held[s])

    def idle(self):
        return not any(self.pending[x] or self.held[x] for x in self.socks)


class FaultProxy:
    """Starts listening at once; `endpoint` is the tcp:// address to give the connecting side."""

    def __init__(self, target_host, target_port, host="127.0.0.1", port=0, jitter=None):
        self.target = (target_host, int(target_port))
        self.jitter = jitter
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, port))
        self._listener.listen(64)
        self._listener.setblocking(False)
        self.host, self.port = self._listener.getsockname()
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._sel.register(self._listener, selectors.EVENT_READ, "accept")
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._lock = threading.Lock()
        self._commands = []  # (function, done event) run by the loop thread
        self._pipes = {}  # socket -> _Pipe, both sockets of every pipe
        self._paused = False
        self._forwarded = {"up": 0, "down": 0}  # client -> target, target -> client; never reset
        self._accepted = 0
        self._resets = 0
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name=f"fault-proxy:{self.port}", daemon=True)
        self._thread.start()

    @classmethod
    def in_front_of(cls, endpoint):
        """A proxy for a tcp://HOST:PORT endpoint."""
        host, port = endpoint[len("tcp://"):].rsplit(":", 1)
        return cls(host, int(port))

    @property
    def endpoint(self):
        return f"tcp://{self.host}:{self.port}"

    # --- what tests call (any thread) ------------------------------------------------------

    def bytes_forwarded(self, direction=None):
        """Bytes written on so far: "up" (to the target), "down" (to the clients), or both."""
        with self._lock:
            return self._forwarded[direction] if direction else self._forwarded["up"] + self._forwarded["down"]

    def accepted(self):
        """Connections accepted so far (a reconnect after a reset counts again)."""
        with self._lock:
            return self._accepted

    def connections(self):
        """Connections open now."""
        return self._call(lambda: len(self._pipes) // 2)

    def reset_all(self):
        """Closes every current connection with SO_LINGER 0, so both peers see a RST and whatever
        the proxy or the kernel still held for them is lost. Returns how many were reset."""

        def reset():
            pipes = {id(p): p for p in self._pipes.values()}.values()
            for p in pipes:
                self._close(p, abort=True)
            self._resets += len(pipes)
            return len(pipes)

        return self._call(reset)

    def resets(self):
        with self._lock:
            return self._resets

    def pause(self):
        """Stops forwarding in both directions (a partition): connections stay open, bytes wait."""
        self._call(lambda: setattr(self, "_paused", True))

    def resume(self):
        self._call(lambda: setattr(self, "_paused", False))

    def stop(self):
        """Resets every connection, stops listening and ends the loop thread. Idempotent."""
        if self._stopped:
            return
        self.reset_all()
        self._call(lambda: setattr(self, "_stopped", True))
        self._thread.join(10)
        self._sel.close()
        for s in (self._listener, self._wake_r, self._wake_w):
            s.close()

    # --- the loop thread ---------------------------------------------------------------------

    def _call(self, fn, timeout=10):
        if self._stopped:
            raise RuntimeError("the proxy is stopped")
        done = threading.Event()
        box = {}

        def run():
            box["value"] = fn()

        with self._lock:
            self._commands.append((run, done))
        self._wake_w.send(b"x")
        if not done.wait(timeout):
            raise AssertionError("the fault proxy's loop did not answer")
        return box.get("value")

    def _loop(self):
        while not self._stopped:
            timeout = self._release_held()
            self._update_interest()
            for key, mask in self._sel.select(timeout):
                if key.data == "wake":
                    self._run_commands()
                elif key.data == "accept":
                    self._accept()
                elif key.fileobj in self._pipes:  # it may have been closed by an earlier event
                    self._serve(key.fileobj, mask)

    def _run_commands(self):
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            commands, self._commands = self._commands, []
        for run, done in commands:
            run()
            done.set()

    def _accept(self):
        try:
            client, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            # Nothing at the target (not started yet, or gone): the connecting side sees a RST and
            # retries, as it would without the proxy.
            _abort(client)
            return
        for s in (client, upstream):
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        p = _Pipe(client, upstream)
        for s in p.socks:
            self._pipes[s] = p
        with self._lock:
            self._accepted += 1

    def _release_held(self):
        """Moves held chunks whose time has come to `pending` and writes them; returns the seconds
        until the next one is due (None: nothing held), for the selector's timeout."""
        if self.jitter is None:
            return None
        now = time.monotonic()
        next_due = None
        for p in {id(p): p for p in self._pipes.values()}.values():
            for s in p.socks:
                held = p.held[s]
                while held and held[0][0] <= now:
                    p.pending[s] += held.pop(0)[1]
                if held:
                    next_due = held[0][0] if next_due is None else min(next_due, held[0][0])
            try:
                for s in p.socks:
                    if p.pending[s] and not self._paused:
                        self._flush(p, s)
            except OSError:
                self._close(p, abort=True)
                continue
            if p.eof and p.idle():
                self._close(p, abort=False)
        return None if next_due is None else max(next_due - now, 0)

    def _update_interest(self):
        for s, p in self._pipes.items():
            want = 0
            if not self._paused:
                if s not in p.eof and p.queued(p.peer(s)) < _MAX_BUFFERED:
                    want |= selectors.EVENT_READ
                if p.pending[s]:
                    want |= selectors.EVENT_WRITE
            have = p.interest.get(s, 0)
            if want == have:
                continue
            # Paused or full: unregistered, the socket is left to the kernel's buffers.
            if have == 0:
                self._sel.register(s, want)
            elif want == 0:
                self._sel.unregister(s)
            else:
                self._sel.modify(s, want)
            p.interest[s] = want

    def _serve(self, s, mask):
        p = self._pipes[s]
        try:
            if mask & selectors.EVENT_READ:
                data = s.recv(_CHUNK)
                if data and self.jitter:
                    # Never before what was read earlier in the same direction: a FIFO link.
                    held = p.held[p.peer(s)]
                    due = time.monotonic() + self.jitter.hold()
                    held.append((max(due, held[-1][0]) if held else due, data))
                elif data:
                    p.pending[p.peer(s)] += data
                else:
                    p.eof.add(s)
            for x in p.socks:
                if p.pending[x]:
                    self._flush(p, x)
        except OSError:
            self._close(p, abort=True)  # one side reset or failed: so does the other
            return
        # One side closed and everything it sent is delivered: close the pair.
        if p.eof and p.idle():
            self._close(p, abort=False)

    def _flush(self, p, s):
        buf = p.pending[s]
        try:
            n = s.send(buf)
        except (BlockingIOError, InterruptedError):
            return
        del buf[:n]
        with self._lock:
            self._forwarded["up" if s is p.socks[1] else "down"] += n

    def _close(self, p, abort):
        for s in p.socks:
            if self._pipes.pop(s, None) is not None and p.interest.get(s, 0):
                self._sel.unregister(s)
            p.interest[s] = 0
            if abort:
                _abort(s)
            else:
                s.close()


def _abort(s):
    """Closes a socket so that its peer gets a RST rather than a FIN."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError as e:
        if e.errno not in (errno.EBADF, errno.ENOTCONN, errno.EINVAL):
            raise
    s.close()


def main(argv=None):
    """One proxy in a process of its own: prints `listening on tcp://HOST:PORT` on stdout once it
    accepts, forwards until SIGTERM or SIGINT, then prints what its jitter did on stderr."""
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--listen", required=True, help="HOST:PORT to accept on (PORT 0: any free one)")
    ap.add_argument("--target", required=True, help="HOST:PORT to forward to")
    ap.add_argument("--delay-ms", type=float, default=0)
    ap.add_argument("--spread-ms", type=float, default=0)
    ap.add_argument("--stall-chance", type=float, default=0, help="per chunk read")
    ap.add_argument("--stall-ms", default="500:1000", help="LOW:HIGH")
    ap.add_argument("--seed", type=int)
    a = ap.parse_args(argv)
    host, port = a.listen.rsplit(":", 1)
    thost, tport = a.target.rsplit(":", 1)
    low, high = (float(x) for x in a.stall_ms.split(":"))
    jitter = None
    if a.delay_ms or a.spread_ms or a.stall_chance:
        jitter = Jitter(a.delay_ms, a.spread_ms, a.stall_chance, (low, high), a.seed)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    proxy = FaultProxy(thost, int(tport), host=host, port=int(port), jitter=jitter)
    print(f"listening on {proxy.endpoint}", flush=True)
    if jitter:
        print(f"fault_proxy {a.listen} -> {a.target}: seed {jitter.seed}", file=sys.stderr, flush=True)
    while not stop.wait(1):
        pass
    proxy.stop()
    done = f"{jitter.chunks} chunks held, {jitter.stalls} stalls" if jitter else "no jitter"
    print(f"fault_proxy {a.listen} -> {a.target}: {done}, {proxy.bytes_forwarded()} bytes forwarded, "
          f"{proxy.accepted()} connections accepted", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
