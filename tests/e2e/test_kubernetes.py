#!/usr/bin/env python3
"""examples/kubernetes without a cluster or a Docker engine: every manifest parsed as YAML and its
fields that matter checked against each other (kinds, the Service's ports and selector, the
endpoints each role binds and connects to, --once and --linger-ms, restart and retry policies, each
secret key mounted only into its own container); make-secrets.sh run for real; then a job run with
the manifests' exact command lines (only the endpoints, the mount paths and --linger-ms changed),
with the keys from make-secrets.sh laid out as the kubelet mounts a Secret (a timestamped folder,
a ..data symlink, per-file symlinks, mode 0644); and the Dockerfile's build stage run as a script
in a copy of the source tree, its binaries checked and running the same job.

What this cannot check: that a cluster accepts the manifests (no API server here: field names are
checked against what the test expects, not against Kubernetes' schema), the kubelet's real mounts,
DNS and the Service's routing, and the Docker build itself (the base image, COPY semantics,
.dockerignore, the runtime stage)."""

import base64
import glob
import math
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
import unittest

import yaml

from harness import BIN_DIR, Proc, binary, free_tcp_port, main

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
K8S = os.path.join(ROOT, "examples", "kubernetes")
STAMP = "..2026_12_07_09_00_00.123456789"  # the kubelet's folder name for one version of a volume


def load_manifests():
    """Returns {(kind, name): document} over every examples/kubernetes/*.yaml."""
    docs = {}
    for path in sorted(glob.glob(os.path.join(K8S, "*.yaml"))):
        if os.path.basename(path) == "mtask-secrets.yaml":
            continue  # make-secrets.sh's output, if someone made keys in this checkout
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc is None:
                    continue
                key = (doc["kind"], doc["metadata"]["name"])
                assert key not in docs, f"{key} twice"
                docs[key] = doc
    return docs


def pod_spec(job):
    return job["spec"]["template"]["spec"]


def containers(job):
    return {c["name"]: c for c in pod_spec(job)["containers"]}


def cpu_cores(quantity):
    q = str(quantity)
    return int(q[:-1]) / 1000 if q.endswith("m") else float(q)


def expanded_argv(container):
    """The container's command and args with $(VAR) expanded as the kubelet does, from env values
    and from resourceFieldRef limits.cpu (rounded up to whole cores, as divisor 1 does)."""
    env = {}
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
            continue
        ref = e["valueFrom"]["resourceFieldRef"]
        assert ref["resource"] == "limits.cpu" and str(ref.get("divisor", "1")) == "1", ref
        env[e["name"]] = str(math.ceil(cpu_cores(container["resources"]["limits"]["cpu"])))
    argv = list(container.get("command", [])) + list(container.get("args", []))
    return [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], a) for a in argv]


def flag(argv, name):
    """The value after `name` among the options (before `--`), or None."""
    opts = argv[: argv.index("--")] if "--" in argv else argv
    for i, a in enumerate(opts):
        if a == name:
            return opts[i + 1]
        if a.startswith(name + "="):
            return a[len(name) + 1:]
    return None


def endpoint_port(ep):
    return int(ep.rsplit(":", 1)[1])


def endpoint_host(ep):
    return ep[len("tcp://"):].rsplit(":", 1)[0]


def make_secrets(dest_dir):
    """Runs make-secrets.sh with the built mtask-keygen. Returns {secret name: {file: bytes}}."""
    out = os.path.join(dest_dir, "secrets.yaml")
    env = dict(os.environ, MTASK_KEYGEN=binary("mtask-keygen"))
    r = subprocess.run([os.path.join(K8S, "make-secrets.sh"), out], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    with open(out) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    return out, {d["metadata"]["name"]: {k: base64.b64decode(v) for k, v in d["data"].items()} for d in docs}


def secret_volume(dir_path, files, mode):
    """Lays `files` ({name: bytes}) out as the kubelet's AtomicWriter does: the files in a
    timestamped folder, `..data` a symlink to it, each name a symlink through `..data`."""
    os.makedirs(os.path.join(dir_path, STAMP))
    for name, data in files.items():
        path = os.path.join(dir_path, STAMP, name)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)
    os.symlink(STAMP, os.path.join(dir_path, "..data"))
    for name in files:
        os.symlink(os.path.join("..data", name), os.path.join(dir_path, name))


class Layout:
    """The manifests made runnable here: a fake mount tree per container, endpoints on free
    loopback ports, and a shorter --linger-ms. Everything else in the argv is the manifest's."""

    def __init__(self, testcase, docs, secrets, mode, linger_ms):
        self.docs = docs
        self.root = tempfile.mkdtemp(prefix="mtask-k8s-")
        testcase.addCleanup(shutil.rmtree, self.root, True)
        service = docs[("Service", "mtask")]
        self.ports = {p["port"]: free_tcp_port() for p in service["spec"]["ports"]}
        self.secrets = secrets
        self.mode = mode
        self.linger_ms = linger_ms

    def argv(self, job_name, container_name, bin_dir, pod):
        job = self.docs[("Job", job_name)]
        c = containers(job)[container_name]
        volumes = {v["name"]: v for v in pod_spec(job)["volumes"]}
        base = os.path.join(self.root, pod, container_name)  # each pod's container has its mounts
        mounts = {}
        for m in c["volumeMounts"]:
            v = volumes[m["name"]]
            target = base + m["mountPath"]
            if "secret" in v:
                files = self.secrets[v["secret"]["secretName"]]
            else:
                files = {k: v.encode() for k, v in self.docs[("ConfigMap", v["configMap"]["name"])]["data"].items()}
            secret_volume(target, files, self.mode)
            mounts[m["mountPath"]] = target
        out = []
        for a in expanded_argv(c):
            for mount_path, target in mounts.items():
                if a.startswith(mount_path + "/") or a == mount_path:
                    a = target + a[len(mount_path):]
            m = re.fullmatch(r"tcp://[^:]+:(\d+)", a)
            if m:
                a = f"tcp://127.0.0.1:{self.ports[int(m.group(1))]}"
            out.append(a)
        if flag(out, "--linger-ms") is not None:
            out[out.index("--linger-ms") + 1] = str(self.linger_ms)
        out[0] = os.path.join(bin_dir, out[0]) if bin_dir else binary(out[0])
        return out


class Manifests(unittest.TestCase):
    """The manifests, parsed once, and a job run with their command lines (no test here)."""

    @classmethod
    def setUpClass(cls):
        cls.docs = load_manifests()
        cls.coordinator = cls.docs[("Job", "mtask-coordinator")]
        cls.workers = cls.docs[("Job", "mtask-workers")]
        cls.service = cls.docs[("Service", "mtask")]
        cls.vent = expanded_argv(containers(cls.coordinator)["ventilator"])
        cls.sink = expanded_argv(containers(cls.coordinator)["sink"])
        cls.worker = expanded_argv(containers(cls.workers)["worker"])

    def secrets(self):
        d = tempfile.mkdtemp(prefix="mtask-k8s-secrets-")
        self.addCleanup(shutil.rmtree, d, True)
        return make_secrets(d)

    def run_job(self, bin_dir=None, workers=2):
        """Runs the manifests' commands here, keys from make-secrets.sh in Secret layouts of mode
        0644 (the default the loader must accept), and checks the output and every exit code."""
        _, secrets = self.secrets()
        # A linger long enough for the late worker below to start on a slow machine.
        lay = Layout(self, self.docs, secrets, mode=0o644, linger_ms=15000)
        work = lay.root
        procs = []

        def start(job, name, pod):
            p = Proc(lay.argv(job, name, bin_dir, pod), work, f"{pod}.{name}")
            procs.append(p)
            return p

        self.addCleanup(lambda: [p.close() for p in procs])
        vent = start("mtask-coordinator", "ventilator", "coordinator")
        sink = start("mtask-coordinator", "sink", "coordinator")
        ws = [start("mtask-workers", "worker", f"worker{i}") for i in range(workers)]
        self.assertEqual(sink.wait(120), 0, sink.stderr())
        for w in ws:
            self.assertEqual(w.wait(60), 0, w.stderr())
        # A worker pod that starts after the job ended, while the ventilator lingers: exits 0 at once.
        self.assertTrue(vent.alive(), "the ventilator lingers")
        t0 = time.monotonic()
        late = start("mtask-workers", "worker", "late")
        self.assertEqual(late.wait(60), 0, late.stderr())
        # "At once": well within the linger, against --idle-timeout-ms's 15 minutes without it.
        self.assertLess(time.monotonic() - t0, 10, "a late worker hears at once that the job is over")
        self.assertEqual(vent.wait(60), 0, vent.stderr())
        text = self.docs[("ConfigMap", "mtask-input")]["data"]["input.txt"]
        self.assertEqual(sink.stdout().decode(), text.upper())  # -k: input order; tr a-z A-Z
        # The Secret's default mode 0644 is accepted, with the warning ssh would give.
        self.assertIn("vent.key_secret' is readable by others (mode 644)", vent.stderr())
        self.assertEqual(sink.stderr(), "")  # -q
        return lay


class Kubernetes(Manifests):
    def test_manifests_are_the_expected_kinds(self):
        self.assertEqual(sorted(self.docs), [("ConfigMap", "mtask-input"), ("Job", "mtask-coordinator"),
                                             ("Job", "mtask-workers"), ("Service", "mtask")])
        for (kind, _), doc in self.docs.items():
            self.assertEqual(doc["apiVersion"], "batch/v1" if kind == "Job" else "v1")
        self.assertEqual(sorted(containers(self.coordinator)), ["sink", "ventilator"])
        self.assertEqual(list(containers(self.workers)), ["worker"])
        for job in (self.coordinator, self.workers):
            for c in containers(job).values():
                self.assertTrue(c["image"].startswith("mtask:"), c["image"])

    def test_the_service_selects_the_coordinator_and_its_ports_are_the_roles_endpoints(self):
        selector = self.service["spec"]["selector"]
        labels = self.coordinator["spec"]["template"]["metadata"]["labels"]
        self.assertTrue(selector.items() <= labels.items(), (selector, labels))
        worker_labels = self.workers["spec"]["template"]["metadata"]["labels"]
        self.assertFalse(selector.items() <= worker_labels.items(), "the Service must not select workers")
        container_ports = {p["name"]: p["containerPort"] for c in containers(self.coordinator).values()
                           for p in c.get("ports", [])}
        ports = {p["name"]: p for p in self.service["spec"]["ports"]}
        self.assertEqual(sorted(ports), ["sink", "ventilator"])
        for name, p in ports.items():
            self.assertEqual(container_ports[p["targetPort"]], p["port"], name)
        svc = self.service["metadata"]["name"]
        vent_port, sink_port = ports["ventilator"]["port"], ports["sink"]["port"]
        # Who binds what: the ventilator and the sink on every interface of the pod, at the ports
        # their containers declare.
        self.assertEqual(flag(self.vent, "--ventilator"), f"tcp://0.0.0.0:{vent_port}")
        self.assertEqual(flag(self.sink, "--sink"), f"tcp://0.0.0.0:{sink_port}")
        self.assertEqual(container_ports["ventilator"], vent_port)
        self.assertEqual(container_ports["sink"], sink_port)
        # Who connects where: the sink to the ventilator in its own pod, workers through the Service.
        self.assertEqual(flag(self.sink, "--ventilator"), f"tcp://127.0.0.1:{vent_port}")
        self.assertEqual(flag(self.worker, "--ventilator"), f"tcp://{svc}:{vent_port}")
        self.assertEqual(flag(self.worker, "--sink"), f"tcp://{svc}:{sink_port}")
        self.assertEqual(flag(self.vent, "--sink"), f"tcp://{svc}:{sink_port}")

    def test_workers_leave_with_the_job_and_nothing_is_left_running_or_failed(self):
        self.assertIn("--once", self.worker)
        self.assertGreater(int(flag(self.worker, "--idle-timeout-ms")), 0)
        # Long enough for pods that start seconds, even a minute, apart.
        self.assertGreaterEqual(int(flag(self.vent, "--linger-ms")), 30000)
        for job in (self.coordinator, self.workers):
            self.assertEqual(pod_spec(job)["restartPolicy"], "Never")
        self.assertEqual(self.coordinator["spec"]["backoffLimit"], 0)
        w = self.workers["spec"]
        self.assertEqual(w["completionMode"], "Indexed")
        self.assertEqual(w["parallelism"], w["completions"], "the one scale knob: keep them equal")
        self.assertEqual(w["successPolicy"], {"rules": [{"succeededCount": 1}]})
        self.assertGreaterEqual(w["backoffLimit"], 1)
        self.assertEqual(w["podFailurePolicy"]["rules"][0]["action"], "Ignore")
        self.assertNotIn("ttlSecondsAfterFinished", self.coordinator["spec"], "its logs hold the output")
        # The sink's stdout is the output (kubectl logs): stderr only errors and failed tasks.
        self.assertIn("-q", self.sink)
        self.assertEqual(flag(self.sink, "--failures"), "/dev/stderr")
        self.assertIsNone(flag(self.sink, "--output"))

    def test_worker_slots_come_from_the_cpu_limit(self):
        c = containers(self.workers)["worker"]
        raw = c["command"]
        self.assertEqual(raw[raw.index("-j") + 1], "$(MTASK_SLOTS)")
        env = {e["name"]: e for e in c["env"]}
        self.assertEqual(env["MTASK_SLOTS"]["valueFrom"]["resourceFieldRef"]["resource"], "limits.cpu")
        self.assertEqual(c["resources"]["requests"]["cpu"], c["resources"]["limits"]["cpu"])
        self.assertEqual(flag(self.worker, "-j"), str(math.ceil(cpu_cores(c["resources"]["limits"]["cpu"]))))

    def test_make_secrets_writes_five_secrets_and_refuses_to_overwrite(self):
        path, secrets = self.secrets()
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        self.assertEqual(sorted((name, sorted(files)) for name, files in secrets.items()), [
            ("mtask-allowed-workers", ["worker.key"]),
            ("mtask-public-keys", ["sink.key", "vent.key"]),
            ("mtask-sink-key", ["sink.key_secret"]),
            ("mtask-ventilator-key", ["vent.key_secret"]),
            ("mtask-worker-key", ["worker.key_secret"]),
        ])
        for name, files in secrets.items():
            for f, data in files.items():
                self.assertEqual(b"secret-key" in data, f.endswith(".key_secret"), (name, f))
        env = dict(os.environ, MTASK_KEYGEN=binary("mtask-keygen"))
        r = subprocess.run([os.path.join(K8S, "make-secrets.sh"), path], env=env, capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("exists", r.stderr)
        with open(os.path.join(K8S, ".gitignore")) as f:
            self.assertIn("mtask-secrets.yaml", f.read().split())

    def test_each_secret_half_is_mounted_only_into_its_own_container(self):
        _, secrets = self.secrets()
        owners = {}  # secret name -> [(job, container)]
        for job in (self.coordinator, self.workers):
            volumes = {v["name"]: v for v in pod_spec(job)["volumes"]}
            for cname, c in containers(job).items():
                argv = expanded_argv(c)
                mounted = {}
                for m in c["volumeMounts"]:
                    self.assertTrue(m.get("readOnly"), (cname, m))
                    v = volumes[m["name"]]
                    if "secret" in v:
                        name = v["secret"]["secretName"]
                        owners.setdefault(name, []).append((job["metadata"]["name"], cname))
                        mounted.update({f"{m['mountPath']}/{f}": name for f in secrets[name]})
                        if any(f.endswith("_secret") for f in secrets[name]):
                            self.assertEqual(v["secret"]["defaultMode"], 0o400)
                # Every key flag names a file of a Secret mounted into this very container.
                for key_flag in ("--key", "--ventilator-key", "--sink-key"):
                    if flag(argv, key_flag):
                        self.assertIn(flag(argv, key_flag), mounted, (cname, key_flag))
                self.assertTrue(flag(argv, "--key").endswith(".key_secret"))
                allow = flag(argv, "--allow")
                if allow:
                    self.assertEqual(sorted(p for p in mounted if p.startswith(allow + "/")), [f"{allow}/worker.key"])
        self.assertEqual(owners["mtask-ventilator-key"], [("mtask-coordinator", "ventilator")])
        self.assertEqual(owners["mtask-sink-key"], [("mtask-coordinator", "sink")])
        self.assertEqual(owners["mtask-worker-key"], [("mtask-workers", "worker")])
        # And the secret each --key names is the pair its peers pin (README, "Across machines").
        self.assertEqual(flag(self.vent, "--key"), "/keys/own/vent.key_secret")
        self.assertEqual(flag(self.sink, "--ventilator-key"), "/keys/public/vent.key")
        self.assertEqual(flag(self.worker, "--ventilator-key"), "/keys/public/vent.key")
        self.assertEqual(flag(self.vent, "--sink-key"), "/keys/public/sink.key")
        self.assertEqual(flag(self.worker, "--sink-key"), "/keys/public/sink.key")

    def test_a_job_runs_with_the_manifests_commands_and_keys_in_secret_layouts(self):
        self.run_job()


class KubernetesImage(Manifests):
    """The Dockerfile's build stage, run as a script: a CTest entry of its own (e2e.test_kubernetes_image),
    run once, not again under the sanitizers (it builds its own Release binaries)."""

    def test_the_dockerfile_build_stage_builds_binaries_that_run_the_job(self):
        stages = parse_dockerfile(os.path.join(K8S, "Dockerfile"))
        self.assertEqual([s["from"] for s in stages], ["debian:12 AS build", "debian:bookworm-slim"])
        build, runtime = stages
        tmp = tempfile.mkdtemp(prefix="mtask-k8s-docker-")
        self.addCleanup(shutil.rmtree, tmp, True)
        root = os.path.join(tmp, "fs")  # the image's / : absolute paths in the Dockerfile go under it

        def host(path, cwd):
            return os.path.join(root, os.path.join(cwd, path).lstrip("/"))

        cwd = "/"
        env = dict(os.environ, MTASK_JOBS="2")  # keep CI's cost down; the image uses every core
        t0 = time.monotonic()
        for op, arg in build["steps"]:
            if op == "WORKDIR":
                cwd = os.path.join(cwd, arg)
                os.makedirs(host(".", cwd), exist_ok=True)
            elif op == "ENV" or op == "ARG":
                k, _, v = arg.partition("=")
                env.setdefault(k, v) if op == "ARG" else env.__setitem__(k, v)
            elif op == "COPY":
                self.assertEqual(arg, ". .", "the build stage copies the build context")
                copy_context(host(".", cwd))
            elif op == "RUN":
                if os.geteuid() != 0 and "install-deps" in arg:
                    continue  # needs root; the packages are there or the build below fails
                r = subprocess.run(["/bin/sh", "-c", arg], cwd=host(".", cwd), env=env, capture_output=True,
                                   text=True, timeout=1500)
                self.assertEqual(r.returncode, 0, f"RUN {arg}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
            else:
                self.fail(f"the test does not know how to run {op} in the build stage")
        print(f"\n  the Dockerfile's build stage took {time.monotonic() - t0:.0f} s here", flush=True)
        copies = [a for op, a in runtime["steps"] if op == "COPY"]
        self.assertEqual(len(copies), 1)
        src = copies[0].split()
        self.assertEqual(src[0], "--from=build")
        bin_dir = host(src[1], "/")
        names = sorted(os.listdir(bin_dir))
        for name in ("mtask-keygen", "mtask-sink", "mtask-ventilator", "mtask-worker"):
            self.assertIn(name, names)
            r = subprocess.run([os.path.join(bin_dir, name), "--version"], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout, r"\d+\.\d+\.\d+")
        # The runtime stage installs the package of every library the binaries link directly
        # (libc, libstdc++ and libgcc are in debian:bookworm-slim already).
        runs = " ".join(a for op, a in runtime["steps"] if op == "RUN")
        installed = set(re.search(r"apt-get install ([^&]*)", runs).group(1).split()) - {"-y", "-qq",
                                                                                          "--no-install-recommends"}
        for name in names:
            for pkg in linked_packages(os.path.join(bin_dir, name)):
                self.assertIn(pkg, installed | {"libc6", "libstdc++6", "libgcc-s1"}, name)
        self.run_job(bin_dir=bin_dir)


def parse_dockerfile(path):
    """Returns the stages: [{"from": "IMAGE [AS NAME]", "steps": [(INSTRUCTION, text)]}]."""
    with open(path) as f:
        text = f.read()
    lines, current = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") and not current:
            continue
        if line.lstrip().startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        if current.strip():
            lines.append(current.strip())
        current = ""
    stages = []
    for line in lines:
        op, _, arg = line.partition(" ")
        op, arg = op.upper(), " ".join(arg.split()) if op.upper() == "COPY" else arg.strip()
        if op == "FROM":
            stages.append({"from": arg, "steps": []})
        elif op in ("USER", "CMD", "ENTRYPOINT", "LABEL", "EXPOSE"):
            continue  # image metadata: nothing to run
        else:
            stages[-1]["steps"].append((op, arg))
    return stages


def copy_context(dest):
    """The build context as Dockerfile.dockerignore leaves it: the source tree's files (tracked
    and untracked, without git's ignored ones), no .git, no build folders."""
    r = subprocess.run(["git", "-C", ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                       capture_output=True, check=True)
    with open(os.path.join(K8S, "Dockerfile.dockerignore")) as f:
        ignore = f.read().split()
    assert ".git" in ignore and "build*" in ignore, ignore
    for rel in r.stdout.decode().split("\0"):
        if not rel or rel.startswith("build") or not os.path.lexists(os.path.join(ROOT, rel)):
            continue
        os.makedirs(os.path.join(dest, os.path.dirname(rel)), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, rel), os.path.join(dest, rel), follow_symlinks=False)


def linked_packages(path):
    """Debian packages of the libraries `path` links directly (readelf's NEEDED, found by ldd)."""
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]",
                        subprocess.run(["readelf", "-d", path], capture_output=True, text=True, check=True).stdout)
    found = dict(re.findall(r"^\s*(\S+) => (\S+)", subprocess.run(["ldd", path], capture_output=True, text=True,
                                                                   check=True).stdout, re.M))
    pkgs = set()
    for lib in needed:
        real = found[lib]
        candidates = {real, os.path.realpath(real)}
        candidates |= {"/usr" + c for c in candidates if not c.startswith("/usr/")}
        for c in candidates:
            r = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True)
            if r.returncode == 0:
                pkgs.add(r.stdout.split(":")[0])
                break
        else:
            raise AssertionError(f"{path}: no package holds {lib} ({real})")
    return pkgs


if __name__ == "__main__":
    main()
