"""`dcsentry hunt` against `dcsentry events` alone on the same input: the cost of detection.

    .venv/bin/python bench/bench_hunt.py [--repeat 10]

Inputs: the corpus EVTX files once and repeated `--repeat` times (peak memory must stay flat), and a
synthetic day of a 2,000-user domain (280k events, evtx JSON lines) where most events are
authentications, which is where detection costs the most. Both commands run single-process
(`events --jobs 1`) so the ratio is the detection overhead, not parallelism. Target: <= 1.3x.
Results also go to bench/out/hunt.json.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

from common import corpus_evtx, dcsentry_cmd, machine, repeated_inputs, run, save


def compare(label: str, path: Path) -> dict:
    ev = run(dcsentry_cmd() + ["events", "--jsonl", "--jobs", "1", str(path)])
    hu = run(dcsentry_cmd() + ["hunt", "--jsonl", str(path)])
    row = {"input": label, "events_s": round(ev.seconds, 2), "hunt_s": round(hu.seconds, 2),
           "ratio": round(hu.seconds / ev.seconds, 2), "events_rss_mb": round(ev.max_rss_mb, 1),
           "hunt_rss_mb": round(hu.max_rss_mb, 1)}
    print(f"{label:<34} events {ev.seconds:6.2f} s  hunt {hu.seconds:6.2f} s  ratio {row['ratio']:4.2f}x  "
          f"peak RSS events {ev.max_rss_mb:5.0f} MB, hunt {hu.max_rss_mb:5.0f} MB")
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        one_size = sum(p.stat().st_size for p in corpus_evtx())
        repeated_inputs(one_size, Path(tmp) / "x1")
        repeated_inputs(one_size * args.repeat, Path(tmp) / f"x{args.repeat}")
        synth = Path(tmp) / "day.jsonl"
        subprocess.run(dcsentry_cmd() + ["synth", "--out", str(synth), "--users", "2000", "--hours", "24",
                                         "--attacks", "all", "--seed", "1"], check=True, capture_output=True)
        rows.append(compare("corpus EVTX x1", Path(tmp) / "x1"))
        rows.append(compare(f"corpus EVTX x{args.repeat}", Path(tmp) / f"x{args.repeat}"))
        rows.append(compare("synthetic day, 2,000 users (JSON)", synth))
    save("hunt", {"machine": machine(), "rows": rows})


if __name__ == "__main__":
    main()
