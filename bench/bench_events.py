"""`dcsentry events --jsonl` against a bare loop over evtx.PyEvtxParser, on >= 1 GB of EVTX.

    .venv/bin/python bench/bench_events.py [--gb 1.0] [--runs 3] [--before /tmp/before/src]

Prints events/s of both, their ratio (target: dcsentry within 1.5x of the bare parse), and peak
RSS at 1/10 and full size (must not grow with input). Results also go to bench/out/events.json.
The commands run `--runs` times interleaved with the bare loop (this 2-core box is shared: a
single run says little); the best and the median of each are kept. `--before DIR` also runs an
older tree's `src` (e.g. `git archive <commit> src | tar -x -C /tmp/before`) in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import evtx
from common import ROOT, Run, dcsentry_cmd, machine, repeated_inputs, run, save


def bare_loop(files: list[Path]) -> tuple[int, float]:
    """The floor: iterate every record the parser renders, do nothing with it."""
    n = 0
    t0 = time.perf_counter()
    for f in files:
        it = evtx.PyEvtxParser(str(f)).records_json()
        while True:
            try:
                next(it)
            except StopIteration:
                break
            except RuntimeError:
                continue
            n += 1
    return n, time.perf_counter() - t0


def _tree_run(cmd: list[str], src: str | None) -> Run:
    """`cmd` with the package taken from `src` (an older tree) when given."""
    if src is None:
        return run(cmd)
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = src
    try:
        return run([sys.executable, "-m", "dcsentry.cli", *cmd[1:]])
    finally:
        if old is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = old


def _summary(runs: list[Run]) -> dict:
    secs = [r.seconds for r in runs]
    return {"best": round(min(secs), 3), "median": round(statistics.median(secs), 3),
            "cpu_median": round(statistics.median(r.cpu_seconds for r in runs), 3),
            "max_rss_mb": round(max(r.max_rss_mb for r in runs), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gb", type=float, default=1.0, help="input size in GiB (corpus files repeated)")
    ap.add_argument("--runs", type=int, default=3, help="interleaved runs of every command")
    ap.add_argument("--before", metavar="DIR", help="an older tree's src folder, run side by side")
    args = ap.parse_args()
    trees: dict[str, str | None] = {"": None}
    if args.before:  # both trees through `python -m` and PYTHONPATH, the same start-up
        trees = {"": str(ROOT / "src"), "before ": args.before}
    cmd = dcsentry_cmd() + ["events", "--jsonl"]
    bare: list[float] = []
    times: dict[str, list[Run]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        big, size = repeated_inputs(int(args.gb * (1 << 30)), Path(tmp) / "big")
        small, _ = repeated_inputs(size // 10, Path(tmp) / "small")
        records = 0
        for _ in range(args.runs):
            records, seconds = bare_loop(big)
            bare.append(seconds)
            for label, src in trees.items():
                for jobs in ("default", "1"):
                    extra = [] if jobs == "default" else ["--jobs", "1"]
                    key = f"{label}jobs {jobs}"
                    times.setdefault(key, []).append(_tree_run(cmd + extra + [str(Path(tmp) / "big")], src))
        small_rss = {f"{label}jobs {jobs}": _tree_run(cmd + extra + [str(Path(tmp) / "small")], src).max_rss_mb
                     for label, src in trees.items()
                     for jobs, extra in (("default", []), ("1", ["--jobs", "1"]))}
    best_bare, median_bare = min(bare), statistics.median(bare)
    result = {
        "machine": machine(), "load_average": os.getloadavg(), "input_bytes": size, "records": records,
        "runs": args.runs, "bare_seconds": {"best": round(best_bare, 3), "median": round(median_bare, 3)},
        "bare_events_per_s": round(records / best_bare),
        "dcsentry": {k: _summary(v) | {"ratio_best": round(min(r.seconds for r in v) / best_bare, 2),
                                       "ratio_median": round(statistics.median(r.seconds for r in v) / median_bare, 2),
                                       "peak_rss_mb_tenth": round(small_rss[k], 1)}
                     for k, v in times.items()},
    }
    save("events", result)
    print(f"input: {size / (1 << 30):.2f} GiB of EVTX, {records} records, {args.runs} interleaved runs")
    print(f"bare evtx loop          : {records / best_bare:>10,.0f} events/s (best {best_bare:.2f} s, "
          f"median {median_bare:.2f} s)")
    for key, s in result["dcsentry"].items():
        print(f"events --jsonl {key:<19}: {records / s['best']:>10,.0f} events/s (best {s['best']:.2f} s, "
              f"median {s['median']:.2f} s, CPU {s['cpu_median']:.2f} s)  ratio best {s['ratio_best']}x, "
              f"median {s['ratio_median']}x; peak RSS 1/10 -> full {s['peak_rss_mb_tenth']:.0f} -> "
              f"{s['max_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
