#!/usr/bin/env python3
"""The examples end to end: each examples/<name>/run.sh runs the real binaries (MTASK_BIN_DIR) and
its stdout is compared exactly with the same result computed here without mtask: word counts in
Python, pi from a Python splitmix64, the Mandelbrot image from the single-process reference, the
checksums from sha256sum itself, the persistent worker's squares in Python."""

import collections
import fractions
import hashlib
import math
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import time
import unittest
import zlib

from harness import BIN_DIR, main

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EXAMPLES = os.path.join(ROOT, "examples")
LICENSES = "/usr/share/common-licenses"


def run_example(name, *args, timeout=60, bin_dir=None):
    """Runs examples/<name>/run.sh in a process group of its own, output to files (a pipe would
    stay open while any leftover process lives); kills the whole group when done or after
    `timeout` seconds. Returns (exit code, stdout bytes, stderr text)."""
    env = dict(os.environ, MTASK_BIN_DIR=os.path.abspath(bin_dir or BIN_DIR))
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen([os.path.join(EXAMPLES, name, "run.sh"), *map(str, args)], env=env,
                             stdout=out, stderr=err, start_new_session=True)
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = None
        finally:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read().decode(errors="replace")
    if rc is None:
        raise AssertionError(f"{name}/run.sh did not finish within {timeout}s; stderr:\n{stderr}")
    return rc, stdout, stderr


def example_binary(example, name):
    for path in (os.path.join(BIN_DIR, "examples", example, name), os.path.join(BIN_DIR, name)):
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"{name} not found under {BIN_DIR} (set MTASK_BIN_DIR)")


def live_processes_in_group(pgid):
    """Pids of the processes in process group `pgid` that are not zombies (from /proc)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # exited meanwhile
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state ppid pgrp ...
        if fields[0] != "Z" and int(fields[2]) == pgid:
            pids.append(int(entry))
    return pids


def command_lines(pids):
    lines = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                lines.append(f"{pid}: " + f.read().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            lines.append(f"{pid}: (exited)")
    return lines


class Example(unittest.TestCase):
    def run_ok(self, name, *args, **kw):
        rc, out, err = run_example(name, *args, **kw)
        self.assertEqual(rc, 0, f"{name}/run.sh exit code; stderr:\n{err}")
        return out

    def scratch_dir(self):
        d = tempfile.mkdtemp(prefix="mtask-examples-")
        self.addCleanup(shutil.rmtree, d, ignore_errors=True)
        return d


def word_counts(text):
    """The README's definition: a word is a maximal run of ASCII letters, lower-cased; one line
    "word<TAB>count" per word, sorted by bytes."""
    counts = collections.Counter(w.lower() for w in re.findall(rb"[A-Za-z]+", text))
    return b"".join(b"%s\t%d\n" % (w, n) for w, n in sorted(counts.items()))


class Wordcount(Example):
    def test_the_two_licences_give_exactly_the_reference_counts(self):
        files = [f"{LICENSES}/GPL-3", f"{LICENSES}/Apache-2.0"]
        text = b""
        for path in files:
            with open(path, "rb") as f:
                text += f.read()
        out = self.run_ok("wordcount")
        self.assertEqual(out, word_counts(text))
        self.assertIn(b"the\t", out)

    def test_punctuation_digits_case_and_non_ascii_bytes_split_words_as_documented(self):
        d = self.scratch_dir()
        path = os.path.join(d, "tricky.txt")
        text = ("  -- GPL-3.0, gpl; Gpl\r\nl'été don't\n\n\n123 x1y2Z \t\n"
                + "Lorem ipsum dolor sit amet.\n" * 500 + "no final newline").encode()
        with open(path, "wb") as f:
            f.write(text)
        self.assertEqual(self.run_ok("wordcount", path), word_counts(text))

    def test_a_text_without_words_prints_nothing(self):
        d = self.scratch_dir()
        path = os.path.join(d, "digits.txt")
        with open(path, "wb") as f:
            f.write(b"1 2 3\n--\n")
        self.assertEqual(self.run_ok("wordcount", path), b"")


def splitmix64(seed):
    mask = (1 << 64) - 1
    state = seed & mask
    while True:
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        yield z ^ (z >> 31)


def pi_reference(tasks, points):
    """The mean of the per-seed estimates 4*inside/points for seeds 1..tasks, exactly."""
    total = 0
    for seed in range(1, tasks + 1):
        rng = splitmix64(seed)
        for _ in range(points):
            r = next(rng)
            x, y = r >> 33, (r >> 2) & ((1 << 31) - 1)
            total += x * x + y * y < (1 << 62)
    return fractions.Fraction(4 * total, points * tasks)


class Pi(Example):
    def test_one_and_three_workers_print_the_same_estimate_close_to_pi(self):
        one = self.run_ok("pi", 200, 1)
        three = self.run_ok("pi", 200, 3)
        self.assertEqual(one, three)
        estimate = float(one)
        self.assertEqual(one, (repr(estimate) + "\n").encode())  # one number, shortest form
        # 200 * 2^20 points: the standard error is 1.1e-4; 1e-3 is nine of them.
        self.assertLess(abs(estimate - math.pi), 1e-3, one)

    def test_a_small_run_equals_a_python_reimplementation_exactly(self):
        # 8 seeds of 1024 points: the mean is a multiple of 1/2048, so it prints exactly.
        want = pi_reference(8, 1024)
        self.assertEqual(want.denominator & (want.denominator - 1), 0)
        out = self.run_ok("pi", 8, 2, 1024)
        self.assertEqual(fractions.Fraction(out.decode().strip()), want)

    def test_points_that_are_not_a_power_of_two_are_a_usage_error(self):
        r = subprocess.run([example_binary("pi", "pi_worker"), "--points", "1000"], capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"--points: '1000' is not a power of two", r.stderr)


def png_pixels(data):
    """(width, height, pixel bytes) of an 8-bit greyscale PNG with no filtering, as pgm2png writes."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour = header[:4]
    assert (depth, colour) == (8, 0)
    raw = zlib.decompress(idat)
    rows = [raw[y * (width + 1):(y + 1) * (width + 1)] for y in range(height)]
    assert all(r[0] == 0 for r in rows)
    return width, height, b"".join(r[1:] for r in rows)


class Mandelbrot(Example):
    def reference(self, width, height):
        r = subprocess.run([example_binary("mandelbrot", "mandelbrot_worker"), "--reference", "--size",
                            f"{width}x{height}"], capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_the_image_is_byte_identical_to_the_single_process_reference(self):
        out = self.run_ok("mandelbrot")
        self.assertEqual(out, self.reference(400, 300))
        lines = out.split(b"\n")
        self.assertEqual(lines[:3], [b"P2", b"400 300", b"255"])
        self.assertLessEqual(max(map(len, lines)), 70)
        self.assertEqual(len(b" ".join(lines[3:]).split()), 400 * 300)

    def test_an_odd_size_is_byte_identical_too(self):
        self.assertEqual(self.run_ok("mandelbrot", 123, 45), self.reference(123, 45))

    def test_the_committed_png_shows_the_image_the_pipeline_renders(self):
        out = self.run_ok("mandelbrot")
        values = bytes(int(v) for v in b" ".join(out.split(b"\n")[3:]).split())
        with open(os.path.join(EXAMPLES, "mandelbrot", "mandelbrot.png"), "rb") as f:
            self.assertEqual(png_pixels(f.read()), (400, 300, values))


class Checksums(Example):
    def sha256sum(self, directory):
        """sha256sum itself over every regular file under `directory`, sorted by name bytes."""
        files = sorted(os.path.join(dirpath, name).encode()
                       for dirpath, _, names in os.walk(directory) for name in names
                       if os.path.isfile(os.path.join(dirpath, name)) and not os.path.islink(os.path.join(dirpath, name)))
        r = subprocess.run(["sha256sum", "--", *files], capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_the_licences_checksums_equal_sha256sum_over_the_same_list(self):
        out = self.run_ok("checksums")
        self.assertEqual(out, self.sha256sum(LICENSES))
        with open(f"{LICENSES}/GPL-3", "rb") as f:
            self.assertIn(f"{hashlib.sha256(f.read()).hexdigest()}  {LICENSES}/GPL-3\n".encode(), out)

    def test_names_with_spaces_newlines_and_backslashes_survive(self):
        d = self.scratch_dir()
        os.mkdir(os.path.join(d, "sub dir"))
        for i, name in enumerate(["plain", "with space", "new\nline", "back\\slash", "-dash", "sub dir/empty"]):
            with open(os.path.join(d, name), "wb") as f:
                f.write(b"x" * i * 1000)
        out = self.run_ok("checksums", d)
        self.assertEqual(out, self.sha256sum(d))
        self.assertEqual(out.count(b"\n"), 6)  # one line a file: sha256sum escapes a newline in a name
        self.assertIn(b"/new\\nline\n", out)


def squares(numbers):
    """The persistent-framed example's README: each number and its square, one pair a line."""
    return b"".join(b"%d %d\n" % (n, n * n) for n in numbers)


class PersistentFramed(Example):
    def test_the_default_run_prints_the_squares_of_1_to_10(self):
        self.assertEqual(self.run_ok("persistent-framed"), squares(range(1, 11)))

    def test_any_group_size_gives_the_same_bytes(self):
        d = self.scratch_dir()
        path = os.path.join(d, "numbers.txt")
        numbers = list(range(-500, 1500, 7))
        with open(path, "wb") as f:
            f.write(b"".join(b"%d\n" % n for n in numbers))
        for lines in (1, 3, 50, 1000):
            with self.subTest(lines=lines):
                self.assertEqual(self.run_ok("persistent-framed", path, lines), squares(numbers))

    def test_a_group_that_is_not_all_integers_fails_with_status_1_and_the_rest_is_printed(self):
        d = self.scratch_dir()
        path = os.path.join(d, "numbers.txt")
        with open(path, "wb") as f:
            f.write(b"1\n2\nthree\n4\n5\n")
        rc, out, err = run_example("persistent-framed", path, 2)
        self.assertEqual(rc, 3, err)
        self.assertEqual(out, squares([1, 2, 5]))
        self.assertIn("task 1 failed: exit status 1: not a list of integers: b'three\\n4'", err)
        self.assertIn("1 of 3 task(s) failed", err)


def unreadable_file_dir(scratch):
    """A directory holding a regular file that sha256sum cannot read, or None: a mode-000 file
    when not root, else sysfs's write-only /sys/bus/pci (root cannot read `rescan` either)."""
    if os.geteuid() != 0:
        path = os.path.join(scratch, "locked")
        with open(path, "wb") as f:
            f.write(b"secret")
        os.chmod(path, 0)
        with open(os.path.join(scratch, "open"), "wb") as f:
            f.write(b"public")
        return scratch
    try:
        with open("/sys/bus/pci/rescan", "rb"):
            return None
    except PermissionError:
        return "/sys/bus/pci"
    except OSError:
        return None


class Failures(Example):
    def test_a_failed_task_makes_run_sh_exit_3_like_the_sink(self):
        d = unreadable_file_dir(self.scratch_dir())
        if d is None:
            self.skipTest("no regular file that sha256sum cannot read")
        rc, out, err = run_example("checksums", d)
        self.assertEqual(rc, 3, err)
        self.assertRegex(err, r"task \d+ failed: exit status 1: sha256sum: .*: Permission denied")

    def test_a_signal_to_run_sh_stops_every_process_it_started(self):
        env = dict(os.environ, MTASK_BIN_DIR=os.path.abspath(BIN_DIR))
        err_path = os.path.join(self.scratch_dir(), "stderr")
        # A million seeds: minutes of work, so the job is certainly running when the signal comes.
        # stderr goes to a file: a pipe would stay open as long as any leftover process lives.
        with open(err_path, "wb") as err:
            p = subprocess.Popen([os.path.join(EXAMPLES, "pi", "run.sh"), "1000000", "2"], env=env,
                                 stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        try:
            deadline = time.monotonic() + 10
            while len(live_processes_in_group(p.pid)) < 5:  # run.sh, 2 workers, ventilator, sink
                self.assertLess(time.monotonic(), deadline, "run.sh did not start its processes")
                time.sleep(0.02)  # polling a condition, bounded by the deadline
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(timeout=10), 143)
            # Wide: a worker finishes the handler call it is in (a million points: over a second
            # under the sanitizers on a loaded machine) before it exits; 10 s was once not enough.
            deadline = time.monotonic() + 60
            while live_processes_in_group(p.pid):
                self.assertLess(time.monotonic(), deadline, f"left running: {command_lines(live_processes_in_group(p.pid))}")
                time.sleep(0.02)  # polling a condition, bounded by the deadline
        finally:
            try:
                os.killpg(p.pid, signal.SIGKILL)  # whatever a failed test left behind
            except ProcessLookupError:
                pass
            p.wait()

    def test_a_bad_argument_for_a_cpp_worker_fails_at_once_not_after_the_ventilators_wait(self):
        for name, args, message in (("pi", (10, 1, 1000), "--points: '1000' is not a power of two"),
                                    ("mandelbrot", (0, 10), "--size: '0x10' is not WxH")):
            with self.subTest(example=name):
                rc, out, err = run_example(name, *args, timeout=10)
                self.assertEqual(rc, 2, err)
                self.assertEqual(out, b"")
                self.assertIn(message, err)

    def test_every_run_sh_fails_with_a_message_when_the_binaries_are_missing(self):
        empty = self.scratch_dir()
        for name in ("wordcount", "pi", "mandelbrot", "checksums", "persistent-framed"):
            with self.subTest(example=name):
                rc, out, err = run_example(name, bin_dir=empty)
                self.assertNotEqual(rc, 0)
                self.assertEqual(out, b"")
                self.assertIn(f"not found under {empty}", err)


if __name__ == "__main__":
    main()
