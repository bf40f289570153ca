#!/usr/bin/env python3
"""--report FILE.html (issue 12): mtask writes one self-contained page at the end of a job. The page
is opened in headless Chromium (Debian's `chromium`, from scripts/install-deps.sh): its screenshot
is not blank and shows the bars' colours, the browser logs no console error, and the JSON it embeds
has --stats's totals. A job of 200 000 tasks makes a page under 5 MB. Sized by task counts, with
wide timeouts, so a slow machine only takes longer."""

import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import zlib

from harness import E2E, binary, main, run, tail

CHROMIUM_TIMEOUT = 180  # seconds: a cold start on a slow, loaded machine
BLUE, RED = (0x3A, 0x7B, 0xD5), (0xD9, 0x36, 0x3E)  # the page's bars: ok and failed


def chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def png_pixels(data):
    """The RGB(A) pixels of an 8-bit PNG (colour type 2 or 6), decoded with zlib alone: a list of
    rows, each a bytes object of width * channels."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6), f"unexpected PNG depth {depth} colour type {ctype}"
            channels = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, prev, at = [], bytearray(stride), 0
    for _ in range(height):
        kind, line = raw[at], bytearray(raw[at + 1:at + 1 + stride])
        at += 1 + stride
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, channels, rows


def colours_of(png):
    width, height, channels, rows = png_pixels(png)
    seen = {}
    for row in rows:
        for x in range(0, width * channels, channels):
            px = row[x:x + 3]
            seen[px] = seen.get(px, 0) + 1
    return seen


def has_colour(seen, rgb, tolerance=6, at_least=20):
    return sum(n for px, n in seen.items() if all(abs(px[i] - rgb[i]) <= tolerance for i in range(3))) >= at_least


def embedded_data(page):
    m = re.search(r'<script type="application/json" id="mtask-data">(.*?)</script>', page, re.S)
    assert m, "no mtask-data block in the page"
    return json.loads(m.group(1))


class Report(E2E):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mtask-e2e-report-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.browser = chromium()
        if self.browser is None:
            self.fail("chromium is not installed: run scripts/install-deps.sh (Debian package 'chromium')")

    def chromium(self, *args):
        """Runs headless Chromium on its own profile; returns (exit code, stdout, stderr)."""
        profile = tempfile.mkdtemp(prefix="profile-", dir=self.tmp)
        argv = [self.browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-extensions", "--disable-background-networking", "--disable-sync",
                f"--user-data-dir={profile}", *args]
        r = subprocess.run(argv, capture_output=True, timeout=CHROMIUM_TIMEOUT)
        return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")

    def console_errors(self, path):
        """The console's errors while loading the page: Chromium logs each console message on stderr
        (--enable-logging=stderr) as a line with CONSOLE in it; errors and uncaught exceptions say so."""
        rc, dom, err = self.chromium("--enable-logging=stderr", "--v=0", "--virtual-time-budget=2000",
                                     "--dump-dom", "file://" + path)
        self.assertEqual(rc, 0, tail(err))
        bad = [l for l in err.splitlines()
               if "Uncaught" in l or ("CONSOLE" in l and re.search(r"error", l, re.I))]
        return dom, bad

    def screenshot(self, path):
        shot = os.path.join(self.tmp, os.path.basename(path) + ".png")
        rc, out, err = self.chromium(f"--screenshot={shot}", "--window-size=1200,900", "--hide-scrollbars",
                                     "file://" + path)
        self.assertEqual(rc, 0, tail(err))
        self.assertTrue(os.path.isfile(shot), f"no screenshot written; stderr:\n{tail(err)}")
        with open(shot, "rb") as f:
            return colours_of(f.read())

    def test_the_console_check_sees_an_error_when_there_is_one(self):
        # The check below would pass vacuously if Chromium logged nothing: show that it sees one.
        path = os.path.join(self.tmp, "broken.html")
        with open(path, "w") as f:
            f.write("<!DOCTYPE html><html><body><p>x</p><script>throw new Error('boom');</script></body></html>")
        dom, bad = self.console_errors(path)
        self.assertTrue(any("boom" in l for l in bad), "Chromium's console log was not seen")

    def test_a_small_job_with_failures_renders_and_embeds_the_stats_totals(self):
        report, stats = os.path.join(self.tmp, "report.html"), os.path.join(self.tmp, "stats.json")
        data = b"".join(b"%d\n" % i for i in range(1, 61))
        # Multiples of 5 fail twice (one retry): 12 tasks failed for good, 12 retries. A payload
        # with markup shows it stays text.
        data += b"</script><script>document.title='owned'</script>\n"
        rc, out, err = run([binary("mtask"), "-j", "3", "--retries", "1", "--report", report, "--stats", stats, "--",
                            "sh", "-c", 'case "$1" in *[!0-9]*) exit 0;; esac; sleep 0.0$(( $1 % 7 )); '
                            'exit $(( $1 % 5 == 0 ))', "sh", "{}"], data, timeout=300)
        self.assertEqual(rc, 3, tail(err))
        with open(report, encoding="utf-8") as f:
            page = f.read()
        with open(stats) as f:
            st = json.load(f)
        self.assertFalse(os.path.exists(report + ".tmp"))

        # Self-contained: nothing fetched from anywhere.
        self.assertNotRegex(page, r'(src|href)\s*=|@import|url\(')
        self.assertEqual(page.count("<script"), 1)  # the JSON block, and no payload's

        d = embedded_data(page)
        self.assertEqual(d["job"]["tasks"], st["job"]["tasks"])
        self.assertEqual(d["job"]["tasks"], 61)
        self.assertEqual(d["job"]["by_status"], st["job"]["by_status"])
        self.assertEqual(d["job"]["by_status"]["failed"], 12)
        self.assertEqual(d["job"]["retries"], st["job"]["retries"])
        self.assertEqual(d["job"]["retries"], 12)
        self.assertEqual(d["job"]["id"], st["job"]["id"])
        self.assertEqual({w["name"]: (w["attempts"], w["failures"]) for w in d["workers"]},
                         {w["name"]: (w["attempts"], w["failures"]) for w in st["workers"]})
        self.assertEqual(d["timeline"], "attempts")
        self.assertEqual(d["failures"]["total"], 24)
        self.assertEqual(len(d["failures"]["listed"]), 24)
        self.assertEqual(sum(d["throughput"]["ok"]) + sum(d["throughput"]["failed"]), 73)
        self.assertLessEqual(sum(w["lanes"] for w in d["workers"]), 3)  # never more lanes than slots
        self.assertIn("workers' own clocks", page)
        self.assertEqual(page.count("<title>task "), 73)  # every attempt drawn

        dom, bad = self.console_errors(report)
        self.assertEqual(bad, [], "console errors")
        self.assertIn("mtask report", dom)
        self.assertNotIn("owned", dom.split("<body")[0])  # the payload's script did not run

        seen = self.screenshot(report)
        self.assertGreater(len(seen), 30, "the screenshot is nearly blank")
        self.assertTrue(has_colour(seen, BLUE), "no ok bars in the screenshot")
        self.assertTrue(has_colour(seen, RED), "no failed bars in the screenshot")

    def test_200000_tasks_make_a_page_under_5_mb_drawn_from_buckets(self):
        report, out_path = os.path.join(self.tmp, "report.html"), os.path.join(self.tmp, "out")
        data = b"".join(b"%d\n" % i for i in range(200_000))
        rc, out, err = run([binary("mtask"), "-j", "2", "--builtin", "echo", "--output", out_path, "--report",
                            report], data, timeout=900)
        self.assertEqual(rc, 0, tail(err))
        size = os.path.getsize(report)
        print(f"report of 200000 tasks: {size} bytes", flush=True)
        self.assertLess(size, 5_000_000)
        with open(report, encoding="utf-8") as f:
            d = embedded_data(f.read())
        self.assertEqual(d["job"]["tasks"], 200_000)
        self.assertEqual(d["job"]["by_status"]["ok"], 200_000)
        self.assertEqual(d["timeline"], "buckets")
        seen = self.screenshot(report)
        self.assertGreater(len(seen), 30, "the screenshot is nearly blank")
        self.assertTrue(has_colour(seen, BLUE, tolerance=40), "no busy lanes in the screenshot")


if __name__ == "__main__":
    main()
