"""`dcsentry hunt` and `events` against their peers on the same input, side by side in one run.

    .venv/bin/python bench/bench_hunt.py [--repeat 10] [--runs 3] [--big-gb 1.0] [--before DIR]

Peers, on the corpus EVTX files repeated `--repeat` times (symlinks): the bare `evtx` loop (the
`evtx` package iterating records as JSON and doing nothing with them: the floor any Python
consumer pays), `dcsentry events --jsonl`, `dcsentry hunt` with the built-in detectors and with
SigmaHQ's rules (`--sigma ../shared/sigma/rules`), and Zircolite with the same rules when it is
installed next to this script: `ZIRCOLITE="python3 /path/zircolite.py"` (or a `zircolite` on
PATH); `ZIRCOLITE_ARGS` overrides its arguments (default `--evtx {input} --ruleset {rules}
--outfile {out}`). Zircolite is not a test dependency and is not on PyPI: rows say when it was not
found. `--before DIR` also runs an older source tree (`git archive <commit> src | tar -x -C DIR`)
in the same run, for before/after figures. Every command is timed `--runs` times (best wall time
and its CPU time, children included; the machine may be shared) with its peak RSS.

Then `hunt` against `events --jsonl --jobs 1` (the detection overhead, single process) on the
corpus x1, x`--repeat` and a synthetic 2,000-user DC day, and `hunt`'s peak RSS on `--big-gb` GiB
of EVTX. Results also go to bench/out/hunt.json.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import SHARED, Run, corpus_evtx, dcsentry_cmd, machine, repeated_inputs, run, save

RULES = SHARED / "sigma" / "rules"
BARE = """import os, sys, evtx
for f in sorted(os.listdir(sys.argv[1])):
    it = evtx.PyEvtxParser(os.path.join(sys.argv[1], f)).records_json()
    while True:
        try:
            next(it)
        except StopIteration:
            break
        except RuntimeError:
            continue
"""
OLD_CLI = "import sys; sys.argv[0] = 'dcsentry'; from dcsentry.cli import main; main()"


def best(cmd: list[str], runs: int) -> Run:
    """The fastest of `runs` (other jobs on a shared machine only ever slow a run down)."""
    results = [run(cmd) for _ in range(runs)]
    for r in results:
        if r.returncode not in (0, 1):  # 1: hunt found problems in the input (the corpus has damaged files)
            raise SystemExit(f"failed ({r.returncode}): {' '.join(cmd)}")
    return min(results, key=lambda r: r.seconds)


def zircolite(folder: Path, out: Path) -> list[str] | None:
    """Zircolite's command line on `folder` with the SigmaHQ rules, or None when it is not installed."""
    base = os.environ.get("ZIRCOLITE") or shutil.which("zircolite")
    if not base:
        return None
    args = os.environ.get("ZIRCOLITE_ARGS", "--evtx {input} --ruleset {rules} --outfile {out}")
    return shlex.split(base) + shlex.split(args.format(input=folder, rules=RULES, out=out))


def peers(folder: Path, records: int, runs: int, before: Path | None, tmp: Path) -> list[dict]:
    cmds: dict[str, list[str] | None] = {"bare evtx loop": [sys.executable, "-c", BARE, str(folder)]}
    trees = [("", dcsentry_cmd())]
    if before is not None:
        trees.append((" (before)", ["env", f"PYTHONPATH={before}", sys.executable, "-c", OLD_CLI]))
    for tag, dcs in trees:
        cmds[f"dcsentry events --jsonl{tag}"] = dcs + ["events", "--jsonl", str(folder)]
        cmds[f"dcsentry hunt, built-in detectors{tag}"] = dcs + ["hunt", "--jsonl", str(folder)]
        cmds[f"dcsentry hunt --sigma SigmaHQ{tag}"] = dcs + ["hunt", "--jsonl", "--sigma", str(RULES), str(folder)]
    cmds["Zircolite, SigmaHQ rules"] = zircolite(folder, tmp / "zircolite.json")
    rows = []
    bare_s = zirc_rate = None
    for label, cmd in cmds.items():
        if cmd is None:
            print(f"{label:<44} not installed (set ZIRCOLITE to its command line)")
            rows.append({"tool": label, "installed": False})
            continue
        r = best(cmd, runs)
        rate = records / r.seconds
        bare_s = bare_s or r.seconds
        if label.startswith("Zircolite"):
            zirc_rate = rate
        rows.append({"tool": label, "seconds": round(r.seconds, 2), "cpu_seconds": round(r.cpu_seconds, 2),
                     "records_per_s": round(rate), "x_bare_time": round(r.seconds / bare_s, 2),
                     "peak_rss_mb": round(r.max_rss_mb, 1)})
        print(f"{label:<44} {r.seconds:6.2f} s (CPU {r.cpu_seconds:6.2f} s) {rate:>9,.0f} records/s  "
              f"{r.seconds / bare_s:5.2f}x the bare loop's time  peak RSS {r.max_rss_mb:4.0f} MB")
    if zirc_rate:
        for row in rows:
            if "records_per_s" in row:
                row["x_zircolite_rate"] = round(row["records_per_s"] / zirc_rate, 2)
    return rows


def compare(label: str, path: Path, runs: int) -> dict:
    ev = best(dcsentry_cmd() + ["events", "--jsonl", "--jobs", "1", str(path)], runs)
    hu = best(dcsentry_cmd() + ["hunt", "--jsonl", str(path)], runs)
    row = {"input": label, "events_s": round(ev.seconds, 2), "hunt_s": round(hu.seconds, 2),
           "hunt_cpu_s": round(hu.cpu_seconds, 2), "ratio": round(hu.seconds / ev.seconds, 2),
           "events_rss_mb": round(ev.max_rss_mb, 1), "hunt_rss_mb": round(hu.max_rss_mb, 1)}
    print(f"{label:<34} events {ev.seconds:6.2f} s  hunt {hu.seconds:6.2f} s (CPU {hu.cpu_seconds:6.2f} s)  "
          f"ratio {row['ratio']:4.2f}x  peak RSS events {ev.max_rss_mb:5.0f} MB, hunt {hu.max_rss_mb:5.0f} MB")
    return row


def count_records(folder: Path) -> int:
    code = BARE.replace("next(it)", "next(it); n += 1").replace("import os, sys, evtx", "import os, sys, evtx\nn = 0")
    out = subprocess.run([sys.executable, "-c", code + "print(n)\n", str(folder)], capture_output=True, text=True,
                         check=True)
    return int(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--big-gb", type=float, default=1.0, help="hunt's peak RSS on this much EVTX (0: skip)")
    ap.add_argument("--before", type=Path, help="an older source tree (its src/) to run side by side")
    args = ap.parse_args()
    before = args.before.resolve() if args.before else None
    result: dict = {"machine": machine(), "load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        one_size = sum(p.stat().st_size for p in corpus_evtx())
        repeated_inputs(one_size, tmp / "x1")
        big = tmp / f"x{args.repeat}"
        repeated_inputs(one_size * args.repeat, big)
        records = count_records(big)
        print(f"corpus EVTX x{args.repeat}: {records:,} records")
        result["peers"] = {"input": f"corpus EVTX x{args.repeat}", "records": records,
                           "rows": peers(big, records, args.runs, before, tmp)}
        synth = tmp / "day.jsonl"
        subprocess.run(dcsentry_cmd() + ["synth", "--out", str(synth), "--users", "2000", "--hours", "24",
                                         "--attacks", "all", "--seed", "1"], check=True, capture_output=True)
        result["overhead"] = [compare("corpus EVTX x1", tmp / "x1", args.runs),
                              compare(f"corpus EVTX x{args.repeat}", big, args.runs),
                              compare("synthetic day, 2,000 users (JSON)", synth, args.runs)]
        if args.big_gb:
            huge = tmp / "big"
            _, size = repeated_inputs(int(args.big_gb * (1 << 30)), huge)
            rows = []
            for label, extra in (("built-in", []), ("SigmaHQ", ["--sigma", str(RULES)])):
                r = run(dcsentry_cmd() + ["hunt", "--jsonl", *extra, str(huge)])
                rows.append({"rules": label, "bytes": size, "seconds": round(r.seconds, 2),
                             "peak_rss_mb": round(r.max_rss_mb, 1)})
                print(f"hunt ({label}) on {size / (1 << 30):.2f} GiB of EVTX: {r.seconds:.1f} s, "
                      f"peak RSS {r.max_rss_mb:.0f} MB")
            result["big"] = rows
    result["load_after"] = os.getloadavg()
    save("hunt", result)


if __name__ == "__main__":
    main()
