"""Detection quality on the synthetic domain: recall per attack type and false positives per day.

    .venv/bin/python bench/eval_detection.py [--users 2000] [--days 1] [--seeds 1,2,3] [--learning DAYS]
                                             [--format xml] [--jobs 3]

For each seed, one continuous run of `--days` simulated days of a domain's everyday traffic with every
attack scenario laid out over the LAST day only, so the detectors learn on the first days (the
everyday population is the same every day). The stream is fed in process to the detection engine
(one baseline for the whole run), straight as the generator's events (the synth tests prove every
format reads back to exactly these), or with `--format` rendered and parsed back through that reader.

- Recall: an injected attack is found when an alert of its type (or one its label allows in `also`)
  overlaps its time span; learning-mode alerts count (the attack was seen).
- False positives: every alert that matches no label and is not flagged `learning`, per simulated
  day, each listed with its day, type, key and description (to diagnose generator vs detector).
  `--learning DAYS` shortens every detector's learning period (weeks by default) so that a run of a
  few days measures what stays after learning: e.g. `--days 3 --learning 2`.

Honeytokens and the Entra Connect connector (replication allowed from its server) are configured
from the generator's domain, as a deployment would. Results: bench/out/detection.json and stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import functools
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from common import machine, save  # noqa: E402

from dcsentry.alerts import Alert  # noqa: E402
from dcsentry.config import Detection  # noqa: E402
from dcsentry.detectors.engine import DetectionEngine  # noqa: E402
from dcsentry.synth import DEFAULT_START, build_domain, generate, render  # noqa: E402
from dcsentry.synth.attacks import Label  # noqa: E402


def config_for(seed: int, users: int, learning_days: float | None = None) -> Detection:
    d = build_domain(seed, users, 2)
    cfg = Detection(honeytokens=[a.sam for a in d.honeytokens])
    if learning_days is not None:  # every detector's learning period (weeks by default) shortened alike
        for part in vars(cfg).values():
            if dataclasses.is_dataclass(part):
                for f in dataclasses.fields(part):
                    if "learning" in f.name and isinstance(getattr(part, f.name), float):
                        setattr(part, f.name, learning_days * 86400.0)
    if d.msol and d.aadc:  # the deployment guide's step: allow the connector, pinned to its server
        cfg.replication_allowed = [f"{d.msol.sam}={d.aadc.ip}"]
        cfg.dcsync.allowed = list(cfg.replication_allowed)
    return cfg


def _reader(fmt: str | None):
    """Identity, or render + parse back through the reader of `fmt` (slower, exercises the readers)."""
    if not fmt:
        return lambda ev: ev
    if fmt == "xml":
        from dcsentry.formats.xml import parse_event_xml

        return lambda ev: parse_event_xml(render(ev, "xml"))
    from dcsentry.formats.jsonl import from_winlogbeat
    from dcsentry.formats.evtx import from_evtx_json

    if fmt == "jsonl":
        return lambda ev: from_evtx_json(render(ev, "jsonl"))
    return lambda ev: from_winlogbeat(json.loads(render(ev, "winlogbeat")), None)


HEALTH_TWINS = {"health:ca-audit-filter": "adcs-config-change"}  # else health:<type> is the twin of <type>


def matches(a: Alert, lb: Label) -> bool:
    """Same type (or allowed by the label, or the health twin of a cover-up: a cleared log, an audit policy or
    CA filter turned off also opens a health alert) and overlapping times."""
    kind = HEALTH_TWINS.get(a.type) or a.type.removeprefix("health:")
    return kind in (lb.type, *lb.also) and a.start <= lb.end and lb.start <= a.end


def evaluate(seed: int, users: int, days: int, fmt: str | None = None, learning_days: float | None = None) -> dict:
    start = DEFAULT_START
    last_day = start + timedelta(days=days - 1)
    events, labels = generate(seed=seed, hours=24.0 * days, users=users, attacks="all", start=start,
                              attacks_from=last_day)
    engine = DetectionEngine(config_for(seed, users, learning_days))
    read = _reader(fmt)
    t0, n = time.perf_counter(), 0
    for ev in events:
        engine.feed(read(ev))
        n += 1
    engine.finish()
    elapsed = time.perf_counter() - t0
    alerts = sorted(engine.alerts.values(), key=lambda a: (a.start, a.type))
    found: dict[str, list[bool]] = defaultdict(list)
    matched: set[str] = set()
    missed: list[str] = []
    for lb in labels:
        ok = [a.id for a in alerts if matches(a, lb)]
        found[lb.type].append(bool(ok))
        matched.update(ok)
        if not ok:
            missed.append(lb.id)
    fps = [a for a in alerts if a.id not in matched and not a.learning]
    return {
        "seed": seed, "events": n, "seconds": round(elapsed, 1), "labels": len(labels),
        "found": {t: [sum(v), len(v)] for t, v in sorted(found.items())},
        "missed": missed,
        "alerts": len(alerts), "learning_alerts": Counter(a.type for a in alerts if a.learning and a.id not in matched),
        "false_positives": [{"day": (a.start - start).days + 1, "type": a.type, "key": a.key, "severity": a.severity,
                             "start": a.start.isoformat(), "count": a.count, "description": a.description}
                            for a in fps],
    }


def summarise(runs: list[dict], days: int, learning: float | None) -> dict:
    """Recall per type; false positives per simulated day, over the whole run and over the days after
    the (shortened) learning period when `--learning` says when that ends."""
    types: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    fp_all: Counter = Counter()
    fp_after: Counter = Counter()
    after = int(learning) if learning is not None and learning < days else 0  # whole days spent learning
    for r in runs:
        for t, (ok, n) in r["found"].items():
            types[t][0] += ok
            types[t][1] += n
        fp_all.update(fp["type"] for fp in r["false_positives"])
        fp_after.update(fp["type"] for fp in r["false_positives"] if fp["day"] > after)
    sim_days, scored_days = len(runs) * days, len(runs) * (days - after)
    every = sorted(set(types) | set(fp_all))
    per_type = {t: {"recall": round(types[t][0] / types[t][1], 2) if types[t][1] else None,
                    "found": types[t][0], "injected": types[t][1],
                    "fp_per_day": round(fp_after[t] / scored_days, 2)} for t in every}
    total = [sum(v[0] for v in types.values()), sum(v[1] for v in types.values())]
    return {"per_type": per_type, "recall": round(total[0] / total[1], 3) if total[1] else None,
            "scored_days": scored_days, "false_positives_per_day": round(sum(fp_after.values()) / scored_days, 2),
            "false_positives_per_day_whole_run": round(sum(fp_all.values()) / sim_days, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--days", type=int, default=1, help="simulated days; attacks on the last one, learning before")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--format", choices=("xml", "jsonl", "winlogbeat"),
                    help="round-trip every event through this reader")
    ap.add_argument("--learning", type=float, metavar="DAYS",
                    help="set every detector's learning period to DAYS (default: theirs, 5-30 days), so a short run "
                         "measures the false positives after learning")
    ap.add_argument("--jobs", type=int, default=1, help="seeds evaluated in parallel processes")
    args = ap.parse_args()
    if args.days < 1:
        ap.error("--days must be at least 1")
    seeds = [int(s) for s in args.seeds.split(",")]
    job = functools.partial(evaluate, users=args.users, days=args.days, fmt=args.format, learning_days=args.learning)
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            runs = list(pool.map(job, seeds))
    else:
        runs = [job(s) for s in seeds]
    result = {"machine": machine(), "users": args.users, "days": args.days, "learning_days": args.learning,
              "format": args.format or "direct",
              **summarise(runs, args.days, args.learning), "runs": runs}
    save("detection", result)
    print(f"{args.users} users, {args.days} day(s) per seed (attacks on the last), seeds {args.seeds}, "
          f"learning periods: {f'{args.learning} day(s)' if args.learning is not None else 'the defaults'}")
    print(f"{'type':32} {'recall':>7} {'found':>9} {'FP/day after learning':>22}")
    for t, v in result["per_type"].items():
        rec = "-" if v["recall"] is None else f"{v['recall']:.2f}"
        print(f"{t:32} {rec:>7} {v['found']:>4}/{v['injected']:<4} {v['fp_per_day']:>22}")
    print(f"recall {result['recall']}, false positives per simulated day after learning "
          f"({result['scored_days']} day(s) scored): {result['false_positives_per_day']} "
          f"(whole run: {result['false_positives_per_day_whole_run']})")
    for r in runs:
        print(f"\nseed {r['seed']}: {r['events']} events in {r['seconds']}s; missed {r['missed'] or 'none'}; "
              f"learning-mode alerts (unmatched): {dict(r['learning_alerts']) or 'none'}")
        for fp in r["false_positives"]:
            print(f"  FP day {fp['day']} {fp['type']} [{fp['severity']}] key={fp['key']} x{fp['count']}: "
                  f"{fp['description'][:300]}")


if __name__ == "__main__":
    main()
