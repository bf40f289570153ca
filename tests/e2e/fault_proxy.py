"""A TCP proxy that breaks the network on demand, for end-to-end tests: it forwards every
connection it accepts on 127.0.0.1 to a target, both ways, and can reset every current connection
(both sides see a RST, and whatever was in flight through it is lost), stop forwarding for a while
(a partition), and count the bytes it forwarded so a test can strike "after N bytes" rather than
after a time. It keeps accepting after a reset, as ZeroMQ reconnects. Stdlib only: one thread runs
a selector loop; the methods below hand their work to it and wait until it is done."""

import errno
import selectors
import socket
import struct
import threading

_CHUNK = 65536
_MAX_BUFFERED = 1 << 20  # per direction: beyond this the proxy stops reading (TCP back-pressure)


class _Pipe:
    """One accepted connection and the connection made for it to the target."""

    def __init__(self, client, upstream):
        self.socks = (client, upstream)
        self.pending = {client: bytearray(), upstream: bytearray()}  # bytes waiting to be written to that socket
        self.eof = set()  # sockets that said they will send nothing more
        self.interest = {}  # socket -> selector events it is registered for (absent or 0: none)

    def peer(self, s):
        return self.socks[1] if s is self.socks[0] else self.socks[0]


class FaultProxy:
    """Starts listening at once; `endpoint` is the tcp:// address to give the connecting side."""

    def __init__(self, target_host, target_port, host="127.0.0.1"):
        self.target = (target_host, int(target_port))
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, 0))
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
            self._update_interest()
            for key, mask in self._sel.select():
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

    def _update_interest(self):
        for s, p in self._pipes.items():
            want = 0
            if not self._paused:
                if s not in p.eof and len(p.pending[p.peer(s)]) < _MAX_BUFFERED:
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
                if data:
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
        if p.eof and not any(p.pending[x] for x in p.socks):
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
