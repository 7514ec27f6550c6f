"""`dcsentry events --jsonl` against a bare loop over evtx.PyEvtxParser, on >= 1 GB of EVTX.

    .venv/bin/python bench/bench_events.py [--gb 1.0]

Prints events/s of both, their ratio (target: dcsentry within 1.5x of the bare parse), and peak
RSS at 1/10 and full size (must not grow with input). Results also go to bench/out/events.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import evtx

from common import dcsentry_cmd, machine, repeated_inputs, run, save


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=1.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        big, size = repeated_inputs(int(args.gb * (1 << 30)), Path(tmp) / "big")
        small, small_size = repeated_inputs(size // 10, Path(tmp) / "small")
        records, bare_s = bare_loop(big)
        cmd = dcsentry_cmd() + ["events", "--jsonl"]
        par = run(cmd + [str(Path(tmp) / "big")])
        one = run(cmd + ["--jobs", "1", str(Path(tmp) / "big")])
        par_small = run(cmd + [str(Path(tmp) / "small")])
        one_small = run(cmd + ["--jobs", "1", str(Path(tmp) / "small")])
    result = {
        "machine": machine(),
        "input_bytes": size,
        "records": records,
        "bare_seconds": round(bare_s, 2),
        "bare_events_per_s": round(records / bare_s),
        "dcsentry_seconds": round(par.seconds, 2),
        "dcsentry_events_per_s": round(records / par.seconds),
        "ratio": round(par.seconds / bare_s, 2),
        "dcsentry_1job_seconds": round(one.seconds, 2),
        "ratio_1job": round(one.seconds / bare_s, 2),
        "peak_rss_mb": {"tenth": round(par_small.max_rss_mb, 1), "full": round(par.max_rss_mb, 1),
                        "tenth_1job": round(one_small.max_rss_mb, 1), "full_1job": round(one.max_rss_mb, 1)},
    }
    save("events", result)
    print(f"input: {size / (1 << 30):.2f} GiB of EVTX, {records} records")
    print(f"bare evtx loop      : {records / bare_s:>10,.0f} events/s ({bare_s:.1f} s)")
    print(f"dcsentry events     : {records / par.seconds:>10,.0f} events/s ({par.seconds:.1f} s)  ratio {result['ratio']}x")
    print(f"dcsentry --jobs 1   : {records / one.seconds:>10,.0f} events/s ({one.seconds:.1f} s)  ratio {result['ratio_1job']}x")
    print(f"peak RSS 1/10 -> full: {par_small.max_rss_mb:.0f} -> {par.max_rss_mb:.0f} MB "
          f"(one job: {one_small.max_rss_mb:.0f} -> {one.max_rss_mb:.0f} MB)")


if __name__ == "__main__":
    main()
