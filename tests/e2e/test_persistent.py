#!/usr/bin/env python3
"""Persistent mode: one long-lived command per slot answering a line per task; a command that
dies, or answers a line past --max-output-bytes, fails only the task it was answering and is
restarted; multi-line tasks are refused."""

from harness import E2E, lines, main


def numbered(n):
    return b"".join(b"%d\n" % i for i in range(n))


class Persistent(E2E):
    def test_a_line_filter_answers_every_task_in_order(self):
        data = numbered(20000)
        c = self.cluster()
        c.worker("sed", "-u", "s/^/n=/", jobs=2, args=["--persistent"])
        c.worker("sed", "-u", "s/^/n=/", jobs=1, args=["--persistent"])
        vent = c.ventilator(data)
        sink = c.sink(["-k"])
        self.assertEqual(self.finish(sink, vent), b"".join(b"n=" + l + b"\n" for l in lines(data)))

    def test_a_command_that_dies_fails_that_task_only_and_is_restarted(self):
        c = self.cluster()
        # Exits (status 5) on "die"; every other line is echoed with a prefix. (sh's read takes one
        # line at a time from a pipe; mawk, Debian's awk, would wait for a whole block.)
        script = 'while IFS= read -r x; do [ "$x" = die ] && exit 5; echo "ok $x"; done'
        c.worker("sh", "-c", script, jobs=1, args=["--persistent"])
        vent = c.ventilator(b"a\nb\ndie\nc\nd\n")
        sink = c.sink(["-k"])
        self.assertEqual(self.finish(sink, vent, expect=3), b"ok a\nok b\nok c\nok d\n")
        self.assertIn("task 2 failed: exit status 5: the persistent command exited while answering this task",
                      sink.stderr())

    def test_an_answer_past_the_output_limit_fails_that_task_only_and_the_command_is_restarted(self):
        c = self.cluster()
        script = ('while IFS= read -r x; do if [ "$x" = big ]; then head -c 100000 /dev/zero | tr "\\0" x; echo; '
                  'else echo "ok $x"; fi; done')
        c.worker("sh", "-c", script, jobs=1, args=["--persistent", "--max-output-bytes", "64k"])
        vent = c.ventilator(b"a\nbig\nc\nd\n")
        sink = c.sink(["-k"])
        self.assertEqual(self.finish(sink, vent, expect=3), b"ok a\nok c\nok d\n")
        self.assertIn("task 1 failed: too large: output exceeded --max-output-bytes (65536 bytes)", sink.stderr())
        self.assertIn("1 of 4 task(s) failed", sink.stderr())

    def test_retries_rerun_a_task_whose_persistent_command_died(self):
        c = self.cluster()
        marker = c.dir + "/died-once"
        # Dies the first time it sees "x", answers it after a restart.
        script = (f'while IFS= read -r x; do if [ "$x" = x ] && [ ! -e {marker} ]; then touch {marker}; exit 1; fi; '
                  'echo "$x"; done')
        c.worker("sh", "-c", script, args=["--persistent"])
        vent = c.ventilator(b"a\nx\nb\n", ["--retries", "1"])
        sink = c.sink(["-k"])
        self.assertEqual(self.finish(sink, vent), b"a\nx\nb\n")

    def test_multi_line_tasks_are_refused_with_a_clear_error(self):
        c = self.cluster()
        c.worker("cat", args=["--persistent"])
        vent = c.ventilator(b"1\n2\n3\n", ["-N", "2"])
        sink = c.sink()
        self.finish(sink, vent, expect=3)
        self.assertIn("--persistent takes one-line tasks; this one contains a newline", sink.stderr())

    def test_a_persistent_task_that_hangs_times_out_and_the_rest_go_on(self):
        c = self.cluster()
        script = 'while IFS= read -r x; do [ "$x" = hang ] && sleep 30; echo "$x"; done'
        c.worker("sh", "-c", script, args=["--persistent", "--task-timeout-ms", "300"])
        vent = c.ventilator(b"a\nhang\nb\n")
        sink = c.sink(["-k"])
        self.assertEqual(self.finish(sink, vent, expect=3, timeout=25), b"a\nb\n")
        self.assertIn("task 1 failed: timed out: timed out after 300 ms", sink.stderr())


if __name__ == "__main__":
    main()
