"""Hosts for multi-host end-to-end tests: Linux network namespaces, each joined by a veth pair to a
bridge in a namespace of its own, so nothing touches the root namespace's networking. Needs root
and iproute2 (ip, tc). Processes started on a host are killed before its namespace is removed."""

import atexit
import itertools
import os
import re
import signal
import subprocess
import time

from harness import Proc

# Every name this module creates starts with this, then the creating process's pid: runs in
# parallel never collide, and namespaces left by a run that was SIGKILLed are found and removed.
PREFIX = "mtask-e2e-"

# 198.18.0.0/15 is set aside for benchmarking network devices (RFC 2544, RFC 5735): no address
# here can be anyone's real one, so a mistake cannot send traffic to another machine.
SUBNET = "198.18.0"
PREFIX_LEN = 24

_open = set()  # networks not closed yet: closed at exit whatever happened to the test
_ids = itertools.count()


def run(*argv, check=True):
    """Runs one iproute2 command; raises with its stderr on failure. Returns its stdout."""
    r = subprocess.run(list(argv), capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def namespaces():
    """Names of every network namespace on the machine."""
    return [line.split()[0] for line in run("ip", "netns", "list").splitlines() if line.strip()]


def _pids_in(ns):
    out = run("ip", "netns", "pids", ns, check=False)
    return [int(p) for p in out.split()]


def _delete_namespace(ns, timeout=10.0):
    """Kills whatever still runs in `ns` (children a test never knew about, say a worker's `sh -c`),
    waits until nothing does (bounded), then deletes it."""
    deadline = time.monotonic() + timeout
    while pids := _pids_in(ns):
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes {pids} still run in namespace {ns} after {timeout}s")
        time.sleep(0.02)  # polling for the kernel to reap them, bounded by the deadline
    run("ip", "netns", "delete", ns)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def remove_stale():
    """Removes namespaces left by runs of this module whose process is gone (killed by a test
    runner's timeout, which leaves no chance to clean up). Another live run's are left alone."""
    for ns in namespaces():
        if not ns.startswith(PREFIX):
            continue
        try:
            owner = int(ns[len(PREFIX):].split("-", 1)[0])
        except ValueError:
            continue
        if not _pid_alive(owner):
            try:
                _delete_namespace(ns)
            except RuntimeError:
                if ns in namespaces():  # not just another run sweeping the same one first
                    raise


def _close_all():
    for net in list(_open):
        net.close()


def _on_sigterm(signum, frame):
    # Unwind like ^C does, so the test's cleanups and the atexit hook still remove the namespaces.
    raise KeyboardInterrupt(f"signal {signum}")


atexit.register(_close_all)
if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
    signal.signal(signal.SIGTERM, _on_sigterm)


class Network:
    """A bridge in a namespace of its own and the hosts joined to it. close() (idempotent) kills
    every process started on a host and removes every namespace."""

    def __init__(self):
        remove_stale()
        self.prefix = f"{PREFIX}{os.getpid()}-{next(_ids)}"
        self.bridge_ns = f"{self.prefix}-bridge"
        self.hosts = []
        self._namespaces = []  # created so far, deleted in reverse order
        _open.add(self)
        try:
            self._add_namespace(self.bridge_ns)
            run("ip", "-n", self.bridge_ns, "link", "add", "br0", "type", "bridge")
            run("ip", "-n", self.bridge_ns, "link", "set", "br0", "up")
        except BaseException:
            self.close()
            raise

    def _add_namespace(self, ns):
        run("ip", "netns", "add", ns)
        self._namespaces.append(ns)
        run("ip", "-n", ns, "link", "set", "lo", "up")

    def host(self, name, number):
        """A new host `name` (a short tag: it names the bridge's port too) at SUBNET.number."""
        h = Host(self, name, f"{SUBNET}.{number}")
        self._add_namespace(h.ns)
        # Both ends are created straight in their namespaces: the root namespace never sees them.
        run("ip", "-n", h.ns, "link", "add", "eth0", "type", "veth", "peer", "name", h.port, "netns", self.bridge_ns)
        run("ip", "-n", h.ns, "addr", "add", f"{h.address}/{PREFIX_LEN}", "dev", "eth0")
        run("ip", "-n", h.ns, "link", "set", "eth0", "up")
        run("ip", "-n", self.bridge_ns, "link", "set", h.port, "master", "br0")
        run("ip", "-n", self.bridge_ns, "link", "set", h.port, "up")
        self.hosts.append(h)
        return h

    def close(self):
        if self not in _open:
            return
        _open.discard(self)
        errors = []
        for h in self.hosts:
            for p in h.procs:
                p.close()
        for ns in reversed(self._namespaces):
            try:
                _delete_namespace(ns)
            except Exception as e:  # keep removing the others
                errors.append(str(e))
        if errors:
            raise RuntimeError("; ".join(errors))


class Host:
    """One network namespace on the bridge: eth0 at `address`, the bridge's side is `port`."""

    def __init__(self, network, name, address):
        self.network = network
        self.name = name
        self.ns = f"{network.prefix}-{name}"
        self.address = address
        self.port = f"to-{name}"  # in the bridge's namespace, where it cannot collide
        self.procs = []

    def argv(self, argv):
        """`argv` run inside this host's namespace (ip netns exec execs it: the pid is argv's)."""
        return ["ip", "netns", "exec", self.ns] + [str(a) for a in argv]

    def start(self, argv, workdir, name, **kw):
        """A harness.Proc running `argv` on this host, killed when the network closes."""
        p = Proc(self.argv(argv), workdir, name, **kw)
        self.procs.append(p)
        return p

    def link(self, up):
        """Plugs (up=True) or pulls (False) this host's cable at the bridge: packets in either
        direction are lost, and its own stack sees the carrier go."""
        run("ip", "-n", self.network.bridge_ns, "link", "set", self.port, "up" if up else "down")

    def block(self, other):
        """Drops every packet between this host and `other` (a blackhole route on each side, for
        the other's address only), leaving both their other paths alone."""
        run("ip", "-n", self.ns, "route", "add", "blackhole", f"{other.address}/32")
        run("ip", "-n", other.ns, "route", "add", "blackhole", f"{self.address}/32")

    def unblock(self, other):
        run("ip", "-n", self.ns, "route", "del", "blackhole", f"{other.address}/32")
        run("ip", "-n", other.ns, "route", "del", "blackhole", f"{self.address}/32")

    def shape(self, rate="4mbit", burst="32kb", limit="64kb"):
        """A token-bucket limit on this host's link, both ways: slower, and packets beyond `limit`
        queued are dropped (real loss, which TCP must repair; this kernel has no netem)."""
        tbf = ["root", "tbf", "rate", rate, "burst", burst, "limit", limit]
        run("tc", "-n", self.ns, "qdisc", "add", "dev", "eth0", *tbf)
        run("tc", "-n", self.network.bridge_ns, "qdisc", "add", "dev", self.port, *tbf)

    def shaping_drops(self):
        """Packets the token buckets of shape() dropped so far, both ways."""
        total = 0
        for ns, dev in ((self.ns, "eth0"), (self.network.bridge_ns, self.port)):
            out = run("tc", "-s", "-n", ns, "qdisc", "show", "dev", dev)
            total += sum(int(n) for n in re.findall(r"\(dropped (\d+),", out))
        return total
