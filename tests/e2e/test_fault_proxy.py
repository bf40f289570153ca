#!/usr/bin/env python3
"""The fault proxy the network tests rely on: it forwards both ways, counts what it forwarded,
resets connections so that both peers see a RST, accepts again after a reset, holds bytes back
while paused, and with a Jitter delays every chunk in order. Checked against a plain echo server,
no mtask binary involved."""

import socket
import threading
import time
import unittest

from fault_proxy import FaultProxy, Jitter
from harness import wait_until


class EchoServer:
    """Echoes every connection's bytes back until the peer goes away."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.resets_seen = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn):
        with conn:
            try:
                while data := conn.recv(65536):
                    conn.sendall(data)
            except ConnectionResetError:
                self.resets_seen += 1

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread (close alone would not)
        except OSError:
            pass
        self.sock.close()


def recv_exactly(s, n):
    got = b""
    while len(got) < n:
        chunk = s.recv(n - len(got))
        if not chunk:
            raise AssertionError(f"connection closed after {len(got)} of {n} bytes")
        got += chunk
    return got


class FaultProxyTest(unittest.TestCase):
    def setUp(self):
        self.echo = EchoServer()
        self.addCleanup(self.echo.close)
        self.proxy = FaultProxy("127.0.0.1", self.echo.port)
        self.addCleanup(self.proxy.stop)

    def connect(self):
        s = socket.create_connection((self.proxy.host, self.proxy.port), timeout=10)
        self.addCleanup(s.close)
        return s

    def test_bytes_go_through_both_ways_and_are_counted(self):
        s = self.connect()
        data = bytes(range(256)) * 4096  # 1 MiB: more than one read, more than the socket buffers
        sender = threading.Thread(target=s.sendall, args=(data,))
        sender.start()
        self.assertEqual(recv_exactly(s, len(data)), data)
        sender.join()
        wait_until(lambda: self.proxy.bytes_forwarded() == 2 * len(data), 10, "the byte count")
        self.assertEqual(self.proxy.bytes_forwarded("up"), len(data))
        self.assertEqual(self.proxy.bytes_forwarded("down"), len(data))

    def test_a_reset_is_a_rst_on_both_sides_and_new_connections_still_work(self):
        s = self.connect()
        s.sendall(b"hello")
        self.assertEqual(recv_exactly(s, 5), b"hello")
        self.assertEqual(self.proxy.reset_all(), 1)
        with self.assertRaises(ConnectionResetError):
            s.recv(1)
        wait_until(lambda: self.echo.resets_seen == 1, 10, "the server to see a reset")
        again = self.connect()
        again.sendall(b"again")
        self.assertEqual(recv_exactly(again, 5), b"again")
        self.assertEqual(self.proxy.accepted(), 2)
        self.assertEqual(self.proxy.resets(), 1)

    def test_pause_holds_bytes_back_until_resume(self):
        s = self.connect()
        s.sendall(b"one")
        self.assertEqual(recv_exactly(s, 3), b"one")
        self.proxy.pause()
        s.sendall(b"two")
        s.settimeout(0.3)
        with self.assertRaises(socket.timeout):  # a bounded look for something that must not come
            s.recv(1)
        s.settimeout(10)
        self.proxy.resume()
        self.assertEqual(recv_exactly(s, 3), b"two")

    def test_jitter_holds_every_chunk_at_least_its_least_delay_and_keeps_order(self):
        jitter = Jitter(delay_ms=50, spread_ms=20, stall_chance=0.5, stall_ms=(10, 20), seed=1)
        proxy = FaultProxy("127.0.0.1", self.echo.port, jitter=jitter)
        self.addCleanup(proxy.stop)
        s = socket.create_connection((proxy.host, proxy.port), timeout=10)
        self.addCleanup(s.close)
        started = time.monotonic()
        s.sendall(b"ping")
        self.assertEqual(recv_exactly(s, 4), b"ping")
        # Held twice (there and back), at least 50 - 20 ms each: a lower bound, true at any speed.
        self.assertGreaterEqual(time.monotonic() - started, 0.06)
        data = bytes(range(256)) * 4096  # many chunks, each held for its own random time
        sender = threading.Thread(target=s.sendall, args=(data,))
        sender.start()
        self.assertEqual(recv_exactly(s, len(data)), data)
        sender.join()
        self.assertGreater(jitter.chunks, 2)

    def test_nothing_at_the_target_resets_the_connecting_side(self):
        with socket.socket() as unused:
            unused.bind(("127.0.0.1", 0))  # bound, never listening: connections to it are refused
            proxy = FaultProxy("127.0.0.1", unused.getsockname()[1])
            self.addCleanup(proxy.stop)
            with self.assertRaises(ConnectionResetError):
                # The RST may come before connect() returns, or after.
                with socket.create_connection((proxy.host, proxy.port), timeout=10) as s:
                    s.recv(1)
        self.assertEqual(proxy.connections(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
