#!/usr/bin/env python3
"""mtask against GNU parallel: the same command lines, with replacement strings ({}, {.}, {/}, {//},
{/.}, {#}, {%}, and with --colsep {1}, {-1}, {1.}, {2/}...), run through `parallel -k --will-cite`
and through the real `mtask -k -j 2`, must print the same bytes; so must --dry-run. mtask runs a
command without a shell, as `parallel -q` does, so the command lines whose words a shell would
change (quotes, backslashes, braces, '<') go to parallel with -q. Each command line has a few tasks:
the whole file is sized by count, not by time. Also: a command's words after -- reach the command
verbatim in mtask-worker and mtask (CLI11 used to turn '[x]' into 'x'), and {%} stays within -j."""

import os
import shutil
import subprocess
import tempfile

from harness import E2E, binary, lines, main, tail

# Paths covering parallel's edge cases: several dots, a dot in a directory only, hidden files,
# trailing slashes, no directory, the root, empty, spaces, '.', '..', doubled slashes, UTF-8.
PATHS = ["a.b.c", "dir.x/file", ".hidden", "dir/.hidden", "dir/", "dir/sub/", "file", "/abs/f.txt", "/", "",
         "./x.y", "a b.c", "../up.tar.gz", "x.", ".", "..", "a/b.c/", "d/.e.f", "a//", "//a", "é.txt"]

# Comma-separated rows: empty columns, a missing column, white space to trim, paths in columns.
ROWS = ["a,b,c", "a,,c", ",a", "a,", "one", "", " x , y.z ,w", "p/q.r,s/t/,u.v.w", "a.b.c,dir.x/file,.hidden",
        "x,/,file"]

SHOW = ["printf", "<%s>\\n"]  # each argument on a line of its own, empty ones visible


def text(items, sep="\n"):
    return "".join(i + sep for i in items).encode()


# (name, parallel's flags, mtask's flags, command, input): mtask's flags go before its --.
CASES = [
    ("{} is the whole task", [], [], ["echo", "{}"], text(["a", "b c", "d.e"])),
    ("--tag prefixes each line with its task", ["--tag"], ["--tag"], ["echo", "{}", "{.}"], text(["a.b", "c d", "e"])),
    ("{} keeps white space and empty tasks", ["-q"], [], SHOW + ["{}"], text([" a ", "\tb", "", "c"])),
    ("{.} over every path", ["-q"], [], SHOW + ["{.}"], text(PATHS)),
    ("{/} over every path", ["-q"], [], SHOW + ["{/}"], text(PATHS)),
    ("{//} over every path", ["-q"], [], SHOW + ["{//}"], text(PATHS)),
    ("{/.} over every path", ["-q"], [], SHOW + ["{/.}"], text(PATHS)),
    ("path forms in one plain command line", [], [], ["echo", "{.}", "{/}", "{//}", "{/.}"],
     text(["a.b.c", "dir.x/file", "d/.e.f"])),
    ("replacement strings inside words", ["-q"], [], SHOW + ["pre{}post", "x{.}y{/}z", "{{}}", "{}{}"],
     text(["d/a.b", "c"])),
    ("{#} counts tasks from 1", [], [], ["echo", "{#}", "{}"], text(["a", "b", "c", "d", "e"])),
    ("{%} is the slot, 1 with -j 1", ["-j", "1"], ["-j", "1"], ["echo", "{%}", "{}"], text(["a", "b", "c"])),
    ("{} as the command itself", [], [], ["{}", "hello"], text(["echo", "/bin/echo"])),
    ("literal braces are no replacement strings", ["-q"], [], SHOW + ["{a,b}", "{x}", "{-}", "{ 1}", "[x]", "{}"],
     text(["t"])),
    ("-0: multi-line tasks and path forms", ["-q", "-0"], ["-0"], SHOW + ["{}", "{.}", "{/}", "{//}", "{/.}"],
     text(["x\na/b\nc/d.e", "nodir\nline.two", "a/b\n/c", "p/q\n"], "\0")),
    ("{2} and {-2} without --colsep", ["-q"], [], SHOW + ["{1}", "{2}", "{-1}", "{-2}", "{-3}", "{1.}"],
     text(["d/a.b", "x,y"])),
    ("--colsep: columns, empty ones and one past the end", ["-q", "--colsep", ","], ["--colsep", ","],
     SHOW + ["{1}", "{2}", "{3}", "{4}"], text(ROWS)),
    ("--colsep: from the end, wrapping as parallel does", ["-q", "--colsep", ","], ["--colsep", ","],
     SHOW + ["{-1}", "{-2}", "{-3}", "{-4}", "{-7}"], text(ROWS)),
    ("--colsep: {N.}", ["-q", "--colsep", ","], ["--colsep", ","], SHOW + ["{1.}", "{2.}", "{-1.}"], text(ROWS)),
    ("--colsep: {N/}", ["-q", "--colsep", ","], ["--colsep", ","], SHOW + ["{1/}", "{2/}", "{-1/}"], text(ROWS)),
    ("--colsep: {N//}", ["-q", "--colsep", ","], ["--colsep", ","], SHOW + ["{1//}", "{2//}", "{-1//}"], text(ROWS)),
    ("--colsep: {N/.}", ["-q", "--colsep", ","], ["--colsep", ","], SHOW + ["{1/.}", "{2/.}", "{3/.}"], text(ROWS)),
    ("--colsep: {} {.} and X{}Y give each column its own argument", ["-q", "--colsep", ","], ["--colsep", ","],
     SHOW + ["{}", "{.}", "X{}Y"], text(["a.x, b/c.y ,d", "one"])),
    ("--colsep: {#} with columns", ["--colsep", ","], ["--colsep", ","], ["echo", "{#}", "{2}"], text(["a,b", "c,d"])),
    ("--colsep: a tab", ["--colsep", "\t"], ["--colsep", "\t"], ["echo", "{2}", "{1}"], text(["a\tb", "c d\te"])),
    ("--colsep: a regular expression", ["-q", "--colsep", "\\s*[,;]\\s*"], ["--colsep", "\\s*[,;]\\s*"],
     SHOW + ["{1}", "{2}", "{3}"], text(["a ; b,c", "x,,y", ";"])),
    ("--colsep: white space, leading and trailing", ["-q", "--colsep", "\\s+"], ["--colsep", "\\s+"],
     SHOW + ["{1}", "{2}", "{3}", "{4}"], text([" a  b c ", "d"])),
    ("--colsep: a capture group is a column too", ["-q", "--colsep", "([,;])"], ["--colsep", "([,;])"],
     SHOW + ["{1}", "{2}", "{3}"], text(["a;b", "c,d"])),
    ("--colsep: parallel's spellings {0} {01} {1 }", ["-q", "--colsep", ","], ["--colsep", ","],
     SHOW + ["{0}", "{01}", "{2 }", "{2 .}"], text(["a,b.c"])),
    ("--dry-run quotes what a shell would change", ["--dry-run"], ["--dry-run"], ["echo", "{}", "{#}", "x{.}"],
     text(["plain", "a b", "it's", "$HOME", "", "[x]", "-n"])),
    ("--dry-run with --colsep", ["--dry-run", "--colsep", ","], ["--dry-run", "--colsep", ","],
     ["cp", "{1}", "{2//}/{1/}"], text(["a.txt,out/x", "b c,dir/"])),
    ("--dry-run of words a shell would change", ["-q", "--dry-run"], ["--dry-run"], ["printf", "%s\\n", "{}", "[y]"],
     text(["a", "b'c"])),
]

# Argument lists (::: and ::::): (name, parallel's flags, mtask's flags, command with its groups).
# "@F1", "@F2" stand for files written in the test: F1 has "x", "y z"; F2 has "1", "", "2" (no final
# newline). No input on stdin: the lists are the input.
ARG_FILES = {"@F1": b"x\ny z\n", "@F2": b"1\n\n2"}
ARG_CASES = [
    ("::: one group", [], [], ["echo", "{}", ":::", "a", "b c", "d.e"]),
    ("::: one group keeps white space and empty arguments", ["-q"], [], SHOW + ["{}", ":::", " a ", "", "b"]),
    ("::: two groups with {1} {2}, the first varying slowest", [], [], ["echo", "{2}", "{1}", ":::", "a", "b", ":::",
                                                                         "1", "2", "3"]),
    ("::: {} of two groups is every argument", ["-q"], [], SHOW + ["{}", "X{}Y", ":::", "a", " b ", ":::", "1"]),
    ("::: path forms and {#} over two groups", ["-q"], [], SHOW + ["{#}", "{1.}", "{2/}", "{.}", ":::", "a.x", "b.y",
                                                                 ":::", "d/e.f"]),
    ("::: a group number past the last is empty", ["-q"], [], SHOW + ["{3}", "{1}", ":::", "a", ":::", "1"]),
    ("::: no replacement string: the arguments are appended", ["-q"], [], SHOW + ["<", ":::", "a", "b", ":::", "1"]),
    ("::: no replacement string, one group", [], [], ["echo", "x", ":::", "a", "b"]),
    (":::: a file", ["-q"], [], SHOW + ["{}", "::::", "@F2"]),
    (":::: two files", [], [], ["echo", "{1}-{2}", "::::", "@F1", "::::", "@F2"]),
    (":::: two files after one ::::", [], [], ["echo", "{1}-{2}", "::::", "@F1", "@F2"]),
    ("::: and :::: mixed", [], [], ["echo", "{2}", "{1}", "{3}", ":::", "a", "b", "::::", "@F1", ":::", "k"]),
    ("::: with --dry-run", ["--dry-run"], ["--dry-run"], ["echo", "{1}", "{2}", ":::", "a b", "c", ":::", "$x"]),
    ("--tag over two groups", ["--tag"], ["--tag"], ["echo", "{2}", "{1}", ":::", "a", "b c", ":::", "1", "2"]),
    ("--tag on every line of a result, none for an empty one", ["--tag", "-q"], ["--tag"],
     ["sh", "-c", "[ \"$1\" = e ] || printf '%s\\n' x \"$1\"", "_", "{}", ":::", "a", "e", "b"]),
]


class ParallelCompat(E2E):
    def setUp(self):
        self.parallel = shutil.which("parallel")
        if not self.parallel:
            self.fail("GNU parallel is not installed: run scripts/install-deps.sh (it installs Debian's parallel)")
        self.tmp = tempfile.mkdtemp(prefix="mtask-e2e-parallel-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        # parallel reads ~/.parallel/config and $PARALLEL: neither may change what it does here.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PARALLEL")}
        self.env.update(HOME=self.tmp, TMPDIR=self.tmp, SHELL="/bin/sh", LC_ALL="C")

    def run_tool(self, argv, input_bytes):
        r = subprocess.run(argv, input=input_bytes, capture_output=True, timeout=120, env=self.env)
        return r.returncode, r.stdout, r.stderr.decode(errors="replace")

    def test_the_same_command_lines_print_the_same_bytes(self):
        self.assertGreaterEqual(len(CASES), 20)
        for name, parallel_flags, mtask_flags, command, input_bytes in CASES:
            with self.subTest(name):
                jobs = [] if "-j" in mtask_flags else ["-j", "2"]
                rc, want, err = self.run_tool([self.parallel, "-k", "--will-cite"] + jobs + parallel_flags + command,
                                              input_bytes)
                self.assertEqual(rc, 0, f"parallel failed:\n{err}")
                rc, got, err = self.run_tool([binary("mtask"), "-k"] + jobs + mtask_flags + ["--"] + command,
                                             input_bytes)
                self.assertEqual(rc, 0, f"mtask failed:\n{tail(err)}")
                self.assertEqual(got, want, f"mtask {' '.join(mtask_flags + ['--'] + command)}")

    def test_the_same_argument_lists_print_the_same_bytes(self):
        self.assertGreaterEqual(len(ARG_CASES), 6)
        files = {}
        for name, data in ARG_FILES.items():
            files[name] = os.path.join(self.tmp, name[1:])
            with open(files[name], "wb") as f:
                f.write(data)
        for name, parallel_flags, mtask_flags, command in ARG_CASES:
            command = [files.get(w, w) for w in command]
            with self.subTest(name):
                rc, want, err = self.run_tool([self.parallel, "-k", "--will-cite", "-j", "2"] + parallel_flags + command,
                                              b"")
                self.assertEqual(rc, 0, f"parallel failed:\n{err}")
                rc, got, err = self.run_tool([binary("mtask"), "-k", "-j", "2"] + mtask_flags + ["--"] + command,
                                             b"ignored\n")
                self.assertEqual(rc, 0, f"mtask failed:\n{tail(err)}")
                self.assertEqual(got, want, f"mtask {' '.join(mtask_flags + ['--'] + command)}")

    def test_results_folders_are_laid_out_as_parallel_lays_them_out(self):
        # One group and two groups, an argument with a '/': the same folders; in each, the same seq
        # and stdout (stderr is the tail the worker keeps; status is mtask's own file).
        for args in ([":::", "a", "b/c", "d e"], [":::", "a", "b", ":::", "1", "x/y"]):
            with self.subTest(args=args):
                command = ["sh", "-c", "echo out \"$@\"; echo err >&2", "_", "{}"] if len(args) == 4 else \
                    ["sh", "-c", "echo out \"$@\"; echo err >&2", "_", "{1}", "{2}"]
                want_dir = os.path.join(self.tmp, f"p{len(args)}")
                got_dir = os.path.join(self.tmp, f"m{len(args)}")
                rc, _, err = self.run_tool([self.parallel, "--will-cite", "-q", "--results", want_dir] + command + args,
                                           b"")
                self.assertEqual(rc, 0, err)
                rc, _, err = self.run_tool([binary("mtask"), "-j", "2", "--results", got_dir, "--"] + command + args, b"")
                self.assertEqual(rc, 0, tail(err))

                def files(root):
                    found = {}
                    for d, _, names in os.walk(root):
                        for n in names:
                            with open(os.path.join(d, n), "rb") as f:
                                found[os.path.relpath(os.path.join(d, n), root)] = f.read()
                    return found
                want, got = files(want_dir), files(got_dir)
                folders = {os.path.dirname(p) for p in want}
                self.assertEqual({os.path.dirname(p) for p in got}, folders)
                for folder in folders:
                    for name in ("seq", "stdout"):
                        self.assertEqual(got[os.path.join(folder, name)], want[os.path.join(folder, name)],
                                         os.path.join(folder, name))
                    self.assertEqual(got[os.path.join(folder, "status")], b"ok\n")
                    self.assertIn(b"err", got[os.path.join(folder, "stderr")])

    def test_halt_policies_stop_where_parallel_stops(self):
        # One slot and no prefetch: the order is fixed, so the output must be parallel's byte for
        # byte. (policy, command, mtask's exit code): parallel exits with a count of failures,
        # mtask with 3 when any task failed, else 0.
        seq = b"".join(b"%d\n" % i for i in range(1, 11))
        cases = [
            ("soon,fail=1", "echo {}; exit $(( {} == 3 ))", 3),
            ("now,fail=1", "echo {}; exit $(( {} == 3 ))", 3),
            ("soon,fail=2", "echo {}; exit $(( {} % 3 == 0 ))", 3),
            ("soon,fail=20%", "echo {}; exit $(( {} <= 2 ))", 3),
            ("now,success=3", "echo {}", 0),
            ("soon,done=4", "echo {}", 0),
            ("2", "echo {}; exit $(( {} == 5 ))", 3),
            ("never", "echo {}; exit $(( {} == 5 ))", 3),
        ]
        for policy, command, code in cases:
            with self.subTest(halt=policy):
                _, want, err = self.run_tool([self.parallel, "--will-cite", "-k", "-j", "1", "--halt", policy, command],
                                             seq)
                rc, got, err = self.run_tool([binary("mtask"), "-k", "-j", "1", "--prefetch", "0", "--halt", policy,
                                              "--", "sh", "-c", command], seq)
                self.assertEqual(rc, code, tail(err))
                self.assertEqual(got, want, err)

    def test_every_slot_number_is_within_jobs(self):
        # Which slot a task gets depends on timing (as in parallel); only the range is certain.
        rc, out, err = self.run_tool([binary("mtask"), "-j", "2", "--", "echo", "{%}"], text(["a", "b", "c", "d"]))
        self.assertEqual(rc, 0, err)
        got = lines(out)
        self.assertEqual(len(got), 4)
        self.assertLessEqual(set(got), {b"1", b"2"})


# Words that CLI11 used to rewrite ('[x]' became 'x') or that look like flags of our own.
VERBATIM = ["[x]", "{a,b}", "-x", "--flag", "[a,b]", "--", "-j"]


class CommandWordsVerbatim(E2E):
    def test_mtask_passes_every_word_after_the_separator_verbatim(self):
        for command in (["printf", "%s\\n"] + VERBATIM,  # to stdin: no replacement string
                        ["printf", "%s\\n"] + VERBATIM + ["{}"]):
            with self.subTest(command=command):
                r = subprocess.run([binary("mtask"), "-j", "1", "--"] + command, input=b"t\n", capture_output=True,
                                   timeout=120)
                self.assertEqual(r.returncode, 0, r.stderr)
                want = VERBATIM + (["t"] if command[-1] == "{}" else [])
                self.assertEqual(r.stdout, text(want))

    def test_mtask_worker_passes_every_word_after_the_separator_verbatim(self):
        c = self.cluster()
        c.worker("printf", "%s\\n", *VERBATIM, "{}", args=["--once"])
        vent = c.ventilator(b"t\n")
        sink = c.sink()
        self.assertEqual(self.finish(sink, vent), text(VERBATIM + ["t"]))


class ArgumentListsOnTheVentilator(E2E):
    def test_mtask_ventilator_takes_argument_lists_for_workers_with_colsep_x1f(self):
        c = self.cluster()
        c.worker("printf", "<%s>\\n", "{2}", "{1}", "{}", jobs=2, args=["--once", "--colsep", "\\x1f"])
        vent = c.ventilator(b"stdin is not read\n", args=[":::", "a", " b ", ":::", "1"])
        sink = c.sink(["-k"])
        self.assertEqual(self.finish(sink, vent), b"<1>\n<a>\n<a>\n<1>\n<1>\n< b >\n< b >\n<1>\n")


if __name__ == "__main__":
    main()
