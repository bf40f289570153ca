#!/usr/bin/env python3
"""mtask --ssh and --listen for real: Debian's sshd in two network namespaces acting as hosts (B at
198.18.0.2, C at .3), mtask on a third (A, .1), a key pair made by the test for ssh, CURVE keys made
by mtask for the job. Checks the exact output, that every host named ran tasks, that a host that
cannot start is named and the job goes on, that a `kill -9` of mtask ends every remote worker, and
that a worker started by hand with the line --listen prints joins. Needs root, as CI has; removes
the namespaces, the sshd processes and its files afterwards."""

import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import unittest

import netns
from harness import Proc, binary, tail, wait_until

SSHD = "/usr/sbin/sshd"
JOB_TIMEOUT = 240  # generous: only a hung job reaches it
BARRIER_TIMEOUT_S = 120  # how long a task waits for the other host's first task, in the task itself

# A task that ends only once two tasks have started, counting the markers every task leaves in
# $1: with one slot on each of two hosts, its end proves that both hosts ran a task. It prints
# its payload, so the output is exact whatever ran where.
BARRIER = (
    'touch "$1/started.$2"; n=0; '
    'while [ "$(ls "$1" | grep -c "^started")" -lt 2 ]; do '
    f'n=$((n+1)); [ $n -gt {BARRIER_TIMEOUT_S * 20} ] && exit 9; sleep 0.05; done; echo "$2"'
)


def worker_pids(host):
    """The mtask-worker processes, their scripts and their tasks running in `host`'s namespace."""
    found = []
    for pid in netns._pids_in(host.ns):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "mtask-worker" in cmd or "mtask-remote-worker" in cmd or cmd.startswith("sleep 600"):
            found.append((pid, cmd))
    return found


class Ssh(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Not a skip: a skipped test would pass in silence wherever it cannot run.
        if os.geteuid() != 0:
            raise AssertionError("test_ssh needs root (network namespaces, sshd); CI runs as root")
        if not os.path.exists(SSHD) or not shutil.which("ssh"):
            raise AssertionError("test_ssh needs openssh-server and openssh-client: run scripts/install-deps.sh")
        cls.tmp = tempfile.mkdtemp(prefix="mtask-ssh-")
        os.chmod(cls.tmp, 0o755)
        cls.made_run_sshd = not os.path.isdir("/run/sshd")  # sshd's privilege separation folder
        cls.net = None
        try:
            cls._start_hosts()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def _start_hosts(cls):
        if cls.made_run_sshd:
            os.makedirs("/run/sshd", mode=0o755)
        key = os.path.join(cls.tmp, "id")
        for path in (key, os.path.join(cls.tmp, "host_key")):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path], check=True)
        shutil.copy(key + ".pub", os.path.join(cls.tmp, "authorized_keys"))
        cls.ssh_command = (
            f"ssh -i {key} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "
            "-o ConnectTimeout=30"
        )
        cls.net = netns.Network()
        cls.a = cls.net.host("a", 1)
        cls.b = cls.net.host("b", 2)
        cls.c = cls.net.host("c", 3)
        for h in (cls.b, cls.c):
            config = os.path.join(cls.tmp, f"sshd_config_{h.name}")
            with open(config, "w") as f:
                f.write(
                    f"ListenAddress {h.address}\nPort 22\nHostKey {cls.tmp}/host_key\n"
                    f"AuthorizedKeysFile {cls.tmp}/authorized_keys\nPermitRootLogin prohibit-password\n"
                    "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
                    f"PidFile {cls.tmp}/sshd_{h.name}.pid\nLogLevel ERROR\n"
                )
            h.sshd = h.start([SSHD, "-D", "-e", "-f", config], cls.tmp, f"sshd-{h.name}")
        for h in (cls.b, cls.c):
            probe = cls.a.argv(shlex.split(cls.ssh_command) + ["-o", "BatchMode=yes", h.address, "true"])
            wait_until(
                lambda: subprocess.run(probe, capture_output=True, timeout=60).returncode == 0,
                60,
                f"sshd on {h.address}",
                lambda h=h: h.sshd.stderr(),
            )

    @classmethod
    def tearDownClass(cls):
        if cls.net is not None:
            cls.net.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if cls.made_run_sshd:
            shutil.rmtree("/run/sshd", ignore_errors=True)

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mtask-ssh-job-", dir=self.tmp)
        self.leftover_before = self.remote_tmp_dirs()

    def tearDown(self):
        for h in (self.b, self.c):
            for pid, _ in worker_pids(h):
                os.kill(pid, signal.SIGKILL)

    def remote_tmp_dirs(self):
        return {d for d in os.listdir("/tmp") if d.startswith("mtask-worker.")}

    def mtask(self, args, input_bytes=b"", name="mtask"):
        argv = [
            binary("mtask"),
            "--ssh-command",
            self.ssh_command,
            "--remote-worker",
            binary("mtask-worker"),
        ] + args
        return self.a.start(argv, self.dir, name, stdin_bytes=input_bytes)

    def assert_clean(self):
        """No worker left on any host, no key folder left in /tmp."""
        for h in (self.b, self.c):
            wait_until(lambda h=h: not worker_pids(h), 60, f"the workers on {h.name} to end", lambda h=h: worker_pids(h))
        # The script removes its key folder right after its worker ends.
        wait_until(lambda: not self.remote_tmp_dirs() - self.leftover_before, 30, "the remote key folders to go",
                   lambda: self.remote_tmp_dirs() - self.leftover_before)

    def test_two_hosts_share_the_job_and_leave_nothing_behind(self):
        markers = os.path.join(self.dir, "markers")
        os.mkdir(markers)
        logins = os.path.join(self.dir, "logins")
        with open(logins, "w") as f:
            f.write(f"# the second host, from a file, with its own -j\n\n1/{self.c.address}  # C\n")
        want = b"".join(b"%d\n" % i for i in range(1, 41))
        joblog = os.path.join(self.dir, "joblog")
        p = self.mtask(
            ["--ssh", self.b.address, "--sshloginfile", logins, "-j", "1", "-k", "--joblog", joblog, "--",
             "sh", "-c", BARRIER, "sh", markers, "{}"],
            want,
        )
        self.assertEqual(p.wait(JOB_TIMEOUT), 0, tail(p.stderr()))
        self.assertEqual(p.stdout(), want)
        with open(joblog) as f:
            hosts = {line.split("\t")[1].split("@")[0] for line in f.read().splitlines()[1:]}
        # Every task ran on B or C (no worker on A: ':' was not listed), each under its own key.
        self.assertEqual(hosts, {self.b.address, self.c.address})
        self.assertIn("serving workers of other hosts: ventilator tcp://198.18.0.1:", p.stderr())
        self.assert_clean()

    def test_a_host_that_cannot_start_is_named_and_the_job_goes_on(self):
        want = b"".join(b"line %d\n" % i for i in range(200))
        refused = f"-p 2222 {self.c.address}"  # no sshd there on that port
        p = self.mtask(["--ssh", f"{self.b.address},{refused}", "-k", "--", "tr", "a-z", "A-Z"], want)
        self.assertEqual(p.wait(JOB_TIMEOUT), 0, tail(p.stderr()))
        self.assertEqual(p.stdout(), want.upper())
        self.assertRegex(
            p.stderr(),
            re.escape(f"mtask: warn: the worker on '{refused}' exited with status 255; the job goes on with the "
                      "other workers"),
        )
        self.assert_clean()

    def test_no_host_can_start_the_job_fails_at_once(self):
        p = self.mtask(["--ssh", f"-p 2222 {self.b.address},-p 2222 {self.c.address}", "--", "cat"], b"x\n")
        self.assertEqual(p.wait(JOB_TIMEOUT), 1, tail(p.stderr()))
        self.assertEqual(p.stdout(), b"")
        self.assertIn("no worker is left: stopping the job", p.stderr())
        self.assertEqual(netns._pids_in(self.a.ns), [], "nothing of the job is left on A")

    def kill_mtask_and_check_the_hosts(self, p):
        p.signal(signal.SIGKILL)
        p.wait(30)
        wait_until(lambda: not netns._pids_in(self.a.ns), 60, "mtask's children on A to die with it",
                   lambda: netns._pids_in(self.a.ns))
        self.assert_clean()

    def test_kill_9_of_mtask_ends_every_remote_worker_and_its_commands(self):
        # Commands of ten minutes, running on both hosts (each leaves a marker; at most two run on a
        # host): only the end of the ssh sessions can stop them in time.
        markers = os.path.join(self.dir, "markers")
        os.mkdir(markers)
        p = self.mtask(["--ssh", f"{self.b.address},{self.c.address}", "-j", "2", "--",
                        "sh", "-c", 'touch "$1/$$"; exec sleep 600', "sh", markers], b"x\n" * 8)
        wait_until(lambda: len(os.listdir(markers)) >= 4, JOB_TIMEOUT, "two commands running on each host",
                   lambda: tail(p.stderr()))
        self.kill_mtask_and_check_the_hosts(p)

    def test_kill_9_of_mtask_ends_a_remote_worker_busy_with_a_builtin_task(self):
        # A built-in task cannot be interrupted: the worker finishes it before it heeds SIGTERM, so
        # the remote script follows with SIGKILL. (The tasks start as soon as the workers join.)
        p = self.mtask(["-v", "--ssh", f"{self.b.address},{self.c.address}", "-j", "2", "--builtin", "sleep"],
                       b"600\n" * 8)
        wait_until(lambda: p.stderr().count(" joined (2 slots)") >= 2, JOB_TIMEOUT, "both workers joining",
                   lambda: tail(p.stderr()))
        self.kill_mtask_and_check_the_hosts(p)

    def test_a_stray_word_in_a_login_is_refused_before_anything_starts(self):
        p = self.mtask(["--ssh", f"root {self.b.address}", "--", "cat"], b"x\n")
        self.assertEqual(p.wait(JOB_TIMEOUT), 2, p.stderr())
        self.assertIn("'root' is not an ssh option", p.stderr())

    def test_listen_serves_a_worker_started_by_hand_with_the_printed_line(self):
        keygen = binary("mtask-keygen")
        allow = os.path.join(self.dir, "allowed")
        os.mkdir(allow)
        subprocess.run([keygen, os.path.join(allow, "hand")], check=True, capture_output=True)
        secret = os.path.join(self.dir, "hand.key_secret")
        os.rename(os.path.join(allow, "hand.key_secret"), secret)
        markers = os.path.join(self.dir, "markers")
        os.mkdir(markers)
        want = b"".join(b"%d\n" % i for i in range(1, 31))
        p = self.mtask(["--listen", self.a.address, "--allow", allow, "-j", "1", "-k", "--",
                        "sh", "-c", BARRIER, "sh", markers, "{}"], want)
        wait_until(lambda: "a worker joins with: " in p.stderr() or not p.alive(), JOB_TIMEOUT, "the join line")
        line = re.search(r"a worker joins with: (.*)", p.stderr()).group(1)
        self.assertIn("--key YOUR.key_secret [-j N]", line)
        line = line.replace("YOUR.key_secret", shlex.quote(secret)).replace("[-j N]", "-j 1")
        # The line as printed, typed on host B: the worker on A and this one both run a task.
        hand = self.b.start(shlex.split(line), self.dir, "hand-worker")
        self.assertEqual(p.wait(JOB_TIMEOUT), 0, tail(p.stderr()))
        self.assertEqual(p.stdout(), want)
        self.assertEqual(hand.wait(60), 0, tail(hand.stderr()))


if __name__ == "__main__":
    unittest.main(verbosity=2)
