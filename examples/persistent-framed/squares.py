#!/usr/bin/env python3
"""A worker for mtask-worker --persistent=framed (README, "Persistent workers"). A task is a group of
integers, one a line; its answer is each integer and its square, one pair a line. A line that is
not an integer fails the task: status 1, and the reason on stderr."""
import sys


def answer(task):
    try:
        return 0, b"".join(b"%d %d\n" % (n, n * n) for n in map(int, task.split(b"\n")))
    except ValueError:
        print(f"not a list of integers: {task!r}", file=sys.stderr, flush=True)
        return 1, b""


tasks, answers = sys.stdin.buffer, sys.stdout.buffer
while header := tasks.readline():  # "<length>\n"; end of input: the worker is done with us
    status, body = answer(tasks.read(int(header)))
    answers.write(b"%d %d\n" % (status, len(body)) + body)  # "<status> <length>\n", then the bytes
    answers.flush()
