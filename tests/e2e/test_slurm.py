#!/usr/bin/env python3
"""examples/slurm/mtask.sbatch on a real Slurm: a one-node cluster made from Debian's packages
(munged, slurmctld, slurmd) in a temporary folder, with its own munge key, socket, ports, state
and logs, started for this file and removed after it. Jobs are submitted with sbatch and PATH
pointing at the binaries under test; each job's output is compared exactly with the result
computed here, and its exit codes are read back from slurmctld (scontrol) and slurmd's log (each
task of the workers' step). Needs root and the packages in scripts/install-deps.sh; a cluster
that cannot start fails the test with its daemons' logs, it never skips."""

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from harness import binary, free_tcp_port, tail, wait_until

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SBATCH_SCRIPT = os.path.join(ROOT, "examples", "slurm", "mtask.sbatch")
DEMO_INPUT = "/usr/share/common-licenses/GPL-3"  # the script's default input

# Generous on purpose: a verdict never depends on speed, only a hung job or cluster hits these.
CLUSTER_TIMEOUT = 180
JOB_TIMEOUT = 300
# Above any job here: a worker that is never told the job is over, or a coordinator the script
# does not stop, hangs the job past JOB_TIMEOUT instead of ending by a timeout of its own.
HANG_MS = 1800000

# As the script computes them (README.md beside it).
PORT_BASE, PORT_PAIRS = 10000, 11000
DONE_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
               "BOOT_FAIL", "DEADLINE"}


def upper(data):
    """What `tr a-z A-Z` writes for `data`."""
    return data.translate(bytes.maketrans(b"abcdefghijklmnopqrstuvwxyz", b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"))


def processes_in(folder):
    """Pids of the processes whose command line, working directory or an open file is in `folder`:
    whatever this file's cluster started, daemons, slurmstepd and the jobs' mtask processes
    included (slurmstepd writes slurmd's log), and nothing else on the machine."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) == os.getpid():
            continue
        try:
            paths = [os.readlink(f"/proc/{pid}/cwd")]
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                paths += f.read().decode(errors="replace").split("\0")
            fds = f"/proc/{pid}/fd"
            paths += [os.readlink(os.path.join(fds, fd)) for fd in os.listdir(fds)]
        except OSError:
            continue  # gone meanwhile
        if any(p == folder or p.startswith(folder + "/") or f"={folder}/" in p for p in paths):
            found.append(int(pid))
    return found


def listening(port):
    """Whether a TCP socket on this machine listens on `port` (read from /proc, so that nothing
    connects to the job's CURVE sockets without a key)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = [line.split() for line in f.readlines()[1:]]
        except OSError:
            continue
        if any(int(r[1].rsplit(":", 1)[1], 16) == port and r[3] == "0A" for r in rows):  # 0A: LISTEN
            return True
    return False


def taken_port(offset):
    """A socket listening on one port of a pair (offset 0: the first, 1: the second) whose other
    port is free; returns (that socket, the pair's first port)."""
    while True:
        taken = socket.socket()
        taken.bind(("0.0.0.0", 0))
        base = taken.getsockname()[1] - offset
        try:
            with socket.socket() as other:
                other.bind(("0.0.0.0", base + 1 - offset))
        except OSError:
            taken.close()
            continue
        taken.listen()
        return taken, base


def command_of(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "(gone)"


class SlurmCluster:
    """munged, slurmctld and slurmd for one node, this machine, everything under `dir`."""

    def __init__(self, dir):
        self.dir = dir
        self.daemons = []
        self.node = socket.gethostname().split(".")[0]
        # The script takes its ports from the job id: a cluster of another run of this file, at
        # the same time on this machine, starts elsewhere in the cycle of port pairs.
        self.first_job_id = random.randrange(1, 1000000)
        self.conf = os.path.join(dir, "slurm.conf")
        self.munge_socket = os.path.join(dir, "munge", "munge.socket")
        self.logs = {name: os.path.join(dir, "log", f"{name}.log") for name in ("munged", "slurmctld", "slurmd")}

    def env(self, **extra):
        """The environment for Slurm's commands: this cluster's configuration, and no SLURM_*
        variable from outside (the test might itself run inside a Slurm job)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
        env.update(SLURM_CONF=self.conf, **extra)
        return env

    def start(self):
        path = os.environ.get("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin"  # daemons live in sbin
        found = {d: shutil.which(d, path=path) for d in ("munged", "slurmctld", "slurmd", "sbatch", "srun",
                                                         "scontrol", "sinfo", "squeue", "scancel")}
        missing = [d for d, where in found.items() if not where]
        if missing:
            raise AssertionError(f"{', '.join(missing)} not installed: apt-get install munge slurmctld slurmd "
                                 "slurm-client (scripts/install-deps.sh)")
        os.chmod(self.dir, 0o711)  # munged wants every folder above its socket open to all
        for sub in ("munge", "munge/key", "log", "state", "spool"):
            os.mkdir(os.path.join(self.dir, sub), 0o700)
        os.chmod(os.path.join(self.dir, "munge"), 0o755)  # the socket's folder: every user may connect
        key = os.path.join(self.dir, "munge", "key", "munge.key")
        with open(os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400), "wb") as f:
            f.write(os.urandom(1024))
        m = os.path.join(self.dir, "munge")
        self.spawn("munged", [found["munged"], "--foreground", f"--socket={self.munge_socket}",
                              f"--key-file={key}", f"--pid-file={m}/munged.pid", f"--seed-file={m}/munged.seed",
                              f"--log-file={self.logs['munged']}"])
        wait_until(lambda: self.check_daemons() and os.path.exists(self.munge_socket), CLUSTER_TIMEOUT,
                   "munged's socket", detail=self.log_tails)
        self.write_conf()
        self.spawn("slurmctld", [found["slurmctld"], "-D", "-f", self.conf])
        self.spawn("slurmd", [found["slurmd"], "-D", "-f", self.conf, "-N", self.node])
        wait_until(self.node_idle, CLUSTER_TIMEOUT, f"node {self.node} idle in sinfo", detail=self.log_tails)

    def write_conf(self):
        d = self.dir
        # Four CPUs at least, whatever this machine has (config_overrides lets slurmd believe it):
        # the tests run two one-CPU jobs at once, and a job whose step holds two workers.
        cpus = max(4, os.cpu_count() or 1)
        with open(self.conf, "w") as f:
            f.write(f"""\
ClusterName=mtasktest
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={free_tcp_port()}
SlurmdPort={free_tcp_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={self.logs['slurmctld']}
SlurmdLogFile={self.logs['slurmd']}
SlurmctldDebug=info
SlurmdDebug=verbose
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=3600
FirstJobId={self.first_job_id}
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=1000 State=UNKNOWN
PartitionName=test Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
""")

    def spawn(self, name, argv):
        out = open(os.path.join(self.dir, "log", f"{name}.stderr"), "wb")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=self.env(),
                             start_new_session=True)
        out.close()
        self.daemons.append((name, p))

    def run(self, *argv, check=True, timeout=60):
        r = subprocess.run(list(argv), capture_output=True, text=True, env=self.env(), timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr.strip()}\n{self.log_tails()}")
        return r.stdout

    def check_daemons(self):
        """Fails at once, with the logs, if a daemon has exited; returns True otherwise."""
        for name, p in self.daemons:
            if p.poll() is not None:
                raise AssertionError(f"{name} exited with {p.returncode} while the cluster started\n{self.log_tails()}")
        return True

    def node_idle(self):
        self.check_daemons()
        r = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %T"], capture_output=True, text=True, env=self.env(),
                           timeout=60)
        return r.returncode == 0 and r.stdout.split() == [self.node, "idle"]

    def log_tails(self):
        said = []
        for name in ("munged", "slurmctld", "slurmd"):
            for path in (self.logs[name], os.path.join(self.dir, "log", f"{name}.stderr")):
                if os.path.exists(path):
                    with open(path, errors="replace") as f:
                        said.append(f"--- {path}:\n{tail(f.read(), 20)}")
        return "\n".join(said)

    def stop(self):
        """Stops every job, then the daemons; returns the commands of processes that were still
        left after that and had to be killed (none, normally)."""
        if any(n == "slurmctld" and p.poll() is None for n, p in self.daemons):
            self.run("scancel", "--full", "--partition=test", check=False)
            try:
                wait_until(lambda: not self.run("squeue", "-h", check=False).strip(), 60, "squeue to empty")
            except AssertionError:
                pass  # killed below, and reported
        for name, p in reversed(self.daemons):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(60)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        try:  # a slurmstepd may still be finishing its job's end
            wait_until(lambda: not processes_in(self.dir), 60, "the cluster's processes to end")
        except AssertionError:
            pass  # killed below, and reported
        left = processes_in(self.dir)
        commands = [f"{pid}: {command_of(pid)}" for pid in left]
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return commands


class Slurm(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Not a skip: a skipped test would pass in silence wherever it cannot run.
        if os.geteuid() != 0:
            raise AssertionError("test_slurm needs root (it starts munged, slurmctld and slurmd); CI runs as root")
        cls.dir = tempfile.mkdtemp(prefix="mtask-slurm-")
        cls.cluster = SlurmCluster(cls.dir)
        try:
            cls.cluster.start()
            # The binaries under test, on PATH for the jobs (sbatch passes the environment on).
            cls.bin = os.path.join(cls.dir, "bin")
            os.mkdir(cls.bin)
            for name in ("mtask-ventilator", "mtask-worker", "mtask-sink", "mtask-keygen"):
                os.symlink(os.path.abspath(binary(name)), os.path.join(cls.bin, name))
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        left = cls.cluster.stop()
        wait_until(lambda: not processes_in(cls.dir), 60, "the killed processes to go")
        shutil.rmtree(cls.dir, ignore_errors=True)
        if left:
            raise AssertionError("processes left after the daemons stopped:\n" + "\n".join(left))

    def submit(self, name, *args, env=None, bin_dir=None, sbatch_args=()):
        """Submits mtask.sbatch from a fresh submit folder; returns (job id, that folder)."""
        submit_dir = os.path.join(self.dir, "jobs", name)
        os.makedirs(submit_dir)
        path = f"{bin_dir or self.bin}:{os.environ.get('PATH', '/usr/bin:/bin')}"
        r = subprocess.run(["sbatch", "--parsable", f"--chdir={submit_dir}", *sbatch_args, SBATCH_SCRIPT, *args],
                           capture_output=True, text=True, env=self.cluster.env(PATH=path, **(env or {})),
                           cwd=submit_dir, timeout=60)
        self.assertEqual(r.returncode, 0, f"sbatch: {r.stderr}\n{self.cluster.log_tails()}")
        return int(r.stdout.strip().split(";")[0]), submit_dir

    def job(self, job_id):
        """scontrol's fields of a job, as a dict. Callers poll it: at most 10 asks a second, so
        that polling does not load slurmctld on a slow machine."""
        time.sleep(0.1)
        text = self.cluster.run("scontrol", "show", "job", "-d", "-o", str(job_id))
        return dict(re.findall(r"(\w+)=(\S*)", text))

    def wait_job(self, job_id, submit_dir):
        """Waits until the job has ended (polling slurmctld); returns its fields."""
        fields = {}

        def ended():
            fields.update(self.job(job_id))
            return fields.get("JobState") in DONE_STATES

        wait_until(ended, JOB_TIMEOUT, f"job {job_id} to end",
                   detail=lambda: f"{self.batch_log(job_id, submit_dir)}\n{self.cluster.log_tails()}")
        return fields

    def wait_listening(self, job_id, submit_dir):
        """Waits until the job's ventilator and sink listen on the ports the script derives from
        its id; fails at once if the job ends first."""
        port = PORT_BASE + 2 * (job_id % PORT_PAIRS)

        def up():
            if listening(port) and listening(port + 1):
                return True
            state = self.job(job_id).get("JobState")
            if state in DONE_STATES:
                raise AssertionError(f"job {job_id} ended ({state}) before listening on ports {port} and {port + 1}"
                                     f"\n{self.batch_log(job_id, submit_dir)}")
            return False

        wait_until(up, JOB_TIMEOUT, f"job {job_id} to listen on ports {port} and {port + 1}",
                   detail=lambda: self.batch_log(job_id, submit_dir))

    def batch_log(self, job_id, submit_dir):
        path = os.path.join(submit_dir, f"mtask-{job_id}.log")
        if not os.path.exists(path):
            return f"(no {path})"
        with open(path, errors="replace") as f:
            return f"--- {path}:\n{f.read()}"

    def step_tasks(self, job_id, step=0):
        """How each task of a step ended, from slurmd's log: ['exit code 0', 'Killed by signal 9'...]."""
        with open(self.cluster.logs["slurmd"], errors="replace") as f:
            log = f.read()
        return re.findall(rf"\[{job_id}\.{step}\] task \d+ \(\d+\) exited(?: with|\.) (.*?)\.?$", log, re.M)

    def assert_job_ok(self, job_id, submit_dir, tasks=1):
        """The batch script exited 0 and every task of the workers' step (step 0) exited 0."""
        fields = self.wait_job(job_id, submit_dir)
        log = self.batch_log(job_id, submit_dir)
        self.assertEqual((fields["JobState"], fields["ExitCode"]), ("COMPLETED", "0:0"), log)
        # The highest exit code of the job's steps: a cancelled or failed worker step shows here.
        self.assertEqual(fields["DerivedExitCode"], "0:0", log)
        self.assertEqual(self.step_tasks(job_id), ["exit code 0"] * tasks, log)
        self.assertIn(f"job {job_id} complete: sink exit 0, workers' step exit 0", log)
        self.assertNotIn("srun: error", log)
        # A good job logs no warning: the script ending the ventilator's linger is no failure.
        self.assertNotIn(": warn:", log)
        self.assertFalse(os.path.exists(os.path.join(submit_dir, f".mtask-{job_id}")), "the job's keys are removed")
        return log

    def output(self, job_id, submit_dir):
        with open(os.path.join(submit_dir, f"mtask-{job_id}.out"), "rb") as f:
            return f.read()

    def assert_nothing_running(self):
        self.assertEqual(self.cluster.run("squeue", "-h").strip(), "")
        wait_until(lambda: not [p for p in processes_in(os.path.join(self.dir, "jobs"))], 60,
                   "the jobs' processes to end",
                   detail=lambda: "\n".join(command_of(p) for p in processes_in(os.path.join(self.dir, "jobs"))))

    def test_the_demo_job_upper_cases_its_input_and_every_step_exits_0(self):
        # As README.md beside the script says: no arguments, the default input and command.
        job_id, submit_dir = self.submit("demo")
        self.assert_job_ok(job_id, submit_dir)
        with open(DEMO_INPUT, "rb") as f:
            self.assertEqual(self.output(job_id, submit_dir), upper(f.read()))
        self.assert_nothing_running()

    def test_two_jobs_on_one_node_at_once_do_not_collide(self):
        # Both jobs' tasks wait at a gate that opens only once all four ports (two per job) are
        # listening: the two jobs' coordinators are up on this node at the same time.
        gate = os.path.join(self.dir, "gate")
        os.mkdir(os.path.join(self.dir, "inputs"))
        jobs = []
        for name in ("first", "second"):
            path = os.path.join(self.dir, "inputs", name)
            with open(path, "wb") as f:
                f.write(b"".join(b"task %d of the %s job\n" % (i, name.encode()) for i in range(300)))
            # The second asks for two tasks' CPUs: still one worker on the node (one task in step 0).
            jobs.append(self.submit(name, "--", "sh", "-c", 'while [ ! -e "$GATE" ]; do sleep 0.05; done; '
                                    "exec tr a-z A-Z", env={"MTASK_INPUT": path, "GATE": gate},
                                    sbatch_args=["--ntasks=2"] if name == "second" else []))
        for job_id, submit_dir in jobs:
            self.wait_listening(job_id, submit_dir)
        open(gate, "w").close()
        for (job_id, submit_dir), name in zip(jobs, ("first", "second")):
            self.assert_job_ok(job_id, submit_dir)
            with open(os.path.join(self.dir, "inputs", name), "rb") as f:
                self.assertEqual(self.output(job_id, submit_dir), upper(f.read()))
        self.assert_nothing_running()

    def test_a_worker_that_starts_after_the_job_is_complete_exits_0(self):
        # srun starts workers seconds apart on a large allocation. Here the step holds two
        # workers; the second (a wrapper stands in for a slow node) starts only once the first has
        # left with the job complete, and must be told so by the lingering ventilator and exit 0
        # at once: with the idle timeout this long, a worker left waiting would hang the job.
        late_bin = os.path.join(self.dir, "bin-late")
        os.mkdir(late_bin)
        for name in ("mtask-ventilator", "mtask-sink", "mtask-keygen"):
            os.symlink(os.path.abspath(binary(name)), os.path.join(late_bin, name))
        ended = os.path.join(self.dir, "late-workers-ended")
        wrapper = os.path.join(late_bin, "mtask-worker")
        with open(wrapper, "w") as f:
            f.write(f"""#!/bin/sh
if [ "$SLURM_PROCID" != 0 ]; then
  until grep -q '^0 ' '{ended}' 2>/dev/null; do sleep 0.05; done
fi
start=$(date +%s.%N)
'{os.path.abspath(binary("mtask-worker"))}' "$@"
rc=$?
echo "$SLURM_PROCID $rc $start $(date +%s.%N)" >> '{ended}'
exit $rc
""")
        os.chmod(wrapper, 0o755)
        job_id, submit_dir = self.submit("late", bin_dir=late_bin, env={
            "MTASK_SRUN_ARGS": "--ntasks=2 --ntasks-per-node=2 --overcommit", "MTASK_IDLE_TIMEOUT_MS": str(HANG_MS)})
        self.assert_job_ok(job_id, submit_dir, tasks=2)
        with open(DEMO_INPUT, "rb") as f:
            self.assertEqual(self.output(job_id, submit_dir), upper(f.read()))
        with open(ended) as f:
            ends = {int(w[0]): (int(w[1]), float(w[3]) - float(w[2])) for w in map(str.split, f)}
        self.assertEqual(sorted(ends), [0, 1])
        self.assertEqual(ends[1][0], 0, "the late worker's exit code")
        print(f"late worker: exit 0 after {ends[1][1]:.2f}s", flush=True)
        self.assert_nothing_running()

    def test_scancel_stops_the_job_and_removes_its_keys(self):
        # Tasks that never finish (their gate never opens): the job only ends by scancel.
        gate = os.path.join(self.dir, "never")
        job_id, submit_dir = self.submit("cancelled", "--", "sh", "-c", 'until [ -e "$GATE" ]; do sleep 0.05; done',
                                         env={"GATE": gate, "MTASK_IDLE_TIMEOUT_MS": str(HANG_MS)})
        self.wait_listening(job_id, submit_dir)
        self.cluster.run("scancel", str(job_id))
        fields = self.wait_job(job_id, submit_dir)
        self.assertEqual(fields["JobState"], "CANCELLED", self.batch_log(job_id, submit_dir))
        self.assert_nothing_running()
        self.assertFalse(os.path.exists(os.path.join(submit_dir, f".mtask-{job_id}")), "the job's keys are removed")

    def assert_cannot_bind_fails_the_job(self, role, offset):
        """Takes the port of `role` (offset 0: the ventilator's, 1: the sink's; MTASK_PORT_PAIRS=1
        pins them): the script must stop the other coordinator and the workers' step at once, not
        leave them waiting for their idle timeout (set to hang here)."""
        taken, base = taken_port(offset)
        port = base + offset
        with taken:
            job_id, submit_dir = self.submit(f"unbound-{role}", env={
                "MTASK_PORT_BASE": str(base), "MTASK_PORT_PAIRS": "1", "MTASK_IDLE_TIMEOUT_MS": str(HANG_MS)})
            fields = self.wait_job(job_id, submit_dir)
        log = self.batch_log(job_id, submit_dir)
        self.assertEqual((fields["JobState"], fields["ExitCode"]), ("FAILED", "1:0"), log)
        self.assertIn(f"mtask-{role}: error: cannot bind 'tcp://0.0.0.0:{port}': Address already in use", log)
        others = "the sink and the workers" if role == "ventilator" else "the ventilator and the workers"
        self.assertIn(f"the {role} failed (exit 1): stopping {others}", log)
        self.assertFalse(os.path.exists(os.path.join(submit_dir, f".mtask-{job_id}")), "the job's keys are removed")
        self.assert_nothing_running()

    def test_workers_that_cannot_start_fail_the_job_at_once(self):
        # A flag mtask-worker refuses (exit 2): the step fails before the job is complete, and the
        # script must stop the coordinators rather than let them wait for workers (idle timeout
        # set to hang here).
        job_id, submit_dir = self.submit("no-workers", "--no-such-flag", "--", "tr", "a-z", "A-Z",
                                         env={"MTASK_IDLE_TIMEOUT_MS": str(HANG_MS)})
        fields = self.wait_job(job_id, submit_dir)
        log = self.batch_log(job_id, submit_dir)
        self.assertEqual((fields["JobState"], fields["ExitCode"]), ("FAILED", "1:0"), log)
        self.assertEqual(self.step_tasks(job_id), ["exit code 2"], log)
        self.assertIn("the workers' step failed (srun exit 2) before the job was complete: stopping", log)
        self.assertFalse(os.path.exists(os.path.join(submit_dir, f".mtask-{job_id}")), "the job's keys are removed")
        self.assert_nothing_running()

    def test_a_ventilator_that_cannot_bind_fails_the_job_at_once(self):
        self.assert_cannot_bind_fails_the_job("ventilator", 0)

    def test_a_sink_that_cannot_bind_fails_the_job_at_once(self):
        self.assert_cannot_bind_fails_the_job("sink", 1)

if __name__ == "__main__":
    unittest.main(verbosity=2)
