#!/usr/bin/python3
"""Turns the measurements bench/lib.sh records (one TSV per case) into the tables it prints.

  report.py [--md] FILE.tsv...     a table per file: group | contender | runs | tasks | median |
                                   min-max | tasks/s | ratio, then the notes (peak RSS, ...)
  report.py --median FILE GROUP CONTENDER     median seconds of one contender, for scripts

Rows are `time GROUP CONTENDER REP SECONDS TASKS STATUS NOTE`, `ref GROUP MODE REF` and
`note GROUP ITEM VALUE`. MODE `rate`: ratio = contender's tasks/s over REF's (a contender), higher is
better. MODE `time`: ratio = contender's median seconds over REF, which is a contender or a number of
seconds (the ideal makespan), lower is better.
"""
import statistics
import sys


def load(path):
    times, refs, notes = {}, {}, []
    order = []
    with open(path) as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if cols[0] == "time":
                _, group, who, _rep, secs, tasks, status, note = (cols + [""] * 8)[:8]
                key = (group, who)
                if key not in times:
                    times[key] = {"secs": [], "tasks": [], "status": [], "notes": []}
                    order.append(key)
                if status == "ok":
                    times[key]["secs"].append(float(secs))
                    times[key]["tasks"].append(int(tasks))
                times[key]["status"].append(status)
                if note:
                    times[key]["notes"].append(note)
            elif cols[0] == "ref":
                refs[cols[1]] = (cols[2], cols[3])
            elif cols[0] == "note":
                notes.append(cols[1:4])
    return times, refs, notes, order


def fmt_secs(s):
    return f"{s:.3f}" if s < 100 else f"{s:.1f}"


def fmt_rate(r):
    if r >= 1e6:
        return f"{r / 1e6:.2f} M"
    if r >= 1e4:
        return f"{r / 1e3:.1f} k"
    return f"{r:.0f}"


def fmt_ratio(x):
    return f"{x:.0f}x" if x >= 100 else f"{x:.3g}x"


def median(key, times):
    t = times.get(key)
    return statistics.median(t["secs"]) if t and t["secs"] else None


def rate_of(key, times):
    t = times.get(key)
    if not t or not t["secs"]:
        return None
    return statistics.median(n / s for n, s in zip(t["tasks"], t["secs"]))


def rows_for(times, refs, order):
    rows = []
    for group, who in order:
        t = times[(group, who)]
        status = t["status"]
        if "na" in status:
            rows.append([group, who, "-", "-", "not built yet", "-", "-", "-"])
            continue
        bad = [s for s in status if s not in ("ok",)]
        if not t["secs"]:
            rows.append([group, who, str(len(status)), "-", "FAILED", "-", "-", "-"])
            continue
        med, lo, hi = statistics.median(t["secs"]), min(t["secs"]), max(t["secs"])
        tasks = sorted(set(t["tasks"]))
        rate = rate_of((group, who), times)
        ratio = "-"
        mode, ref = refs.get(group, ("", ""))
        if mode == "rate" and ref:
            r = rate_of((group, ref), times)
            if ref == who:
                ratio = "reference"
            elif r:
                ratio = fmt_ratio(rate / r)
        elif mode == "time" and ref:
            if ref == who:
                ratio = "reference"
            else:
                try:
                    base = float(ref)
                except ValueError:
                    base = median((group, ref), times)
                if base:
                    ratio = fmt_ratio(med / base)
        runs = f"{len(t['secs'])}" + (f" ({len(bad)} FAILED)" if bad else "")
        rows.append([group, who, runs, ",".join(str(n) for n in tasks), fmt_secs(med),
                     f"{fmt_secs(lo)}-{fmt_secs(hi)}", fmt_rate(rate), ratio])
    return rows


def table(header, rows, md):
    if md:
        out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(out)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda r: "  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip()
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def main(argv):
    if len(argv) >= 1 and argv[0] == "--median":
        times, _, _, _ = load(argv[1])
        m = median((argv[2], argv[3]), times)
        print("" if m is None else f"{m:.6f}")
        return 0
    md = bool(argv) and argv[0] == "--md"
    files = argv[1:] if md else argv
    for path in files:
        times, refs, notes, order = load(path)
        ideal = {g: r for g, (m, r) in refs.items() if m == "time"}
        header = ["group", "contender", "runs", "tasks", "median s", "min-max s", "tasks/s", "ratio"]
        print(table(header, rows_for(times, refs, order), md))
        for g, r in ideal.items():
            try:
                print(f"\n{g}: ratio = median / {float(r):.3f} s (ideal)")
            except ValueError:
                pass
        if notes:
            print()
            print(table(["group", "item", "value"], notes, md))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
