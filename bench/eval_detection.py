"""Detection quality on the synthetic domain: attacks found (recall) and false positives.

    .venv/bin/python bench/eval_detection.py [--users 2000] [--hours 24] [--seeds 1,2,3]

For each seed: one everyday-only day (every alert is a false positive) and the same day with the
attack scenarios mixed in (an alert matches a label of its type, or a type the label allows in
`also`, when their time spans overlap). Honeytokens come from the generator's domain. Results go
to bench/out/detection.json and stdout.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

from common import dcsentry_cmd, machine, save


def _run(args: list[str], **kw) -> str:
    return subprocess.run(dcsentry_cmd() + args, check=True, capture_output=True, text=True, **kw).stdout


def _overlap(a: dict, label: dict) -> bool:
    return a["start"] <= label["end"] and label["start"] <= a["end"]


def evaluate(seed: int, users: int, hours: float, tmp: Path) -> dict:
    labels_path, events_path = tmp / f"labels-{seed}.json", tmp / f"attacks-{seed}.jsonl"
    _run(["synth", "--out", str(events_path), "--labels", str(labels_path), "--seed", str(seed),
          "--users", str(users), "--hours", str(hours), "--attacks", "all"])
    doc = json.loads(labels_path.read_text())
    cfg = tmp / f"cfg-{seed}.toml"
    cfg.write_text("[detection]\nhoneytokens = %s\n" % json.dumps(doc["domain"]["honeytokens"]))
    alerts = [json.loads(l) for l in _run(["hunt", "--jsonl", "--config", str(cfg), str(events_path)]).splitlines()]
    found, matched = Counter(), set()
    for label in doc["labels"]:
        ok = [i for i, a in enumerate(alerts)
              if a["type"] in {label["type"], *label.get("also", [])} and _overlap(a, label)]
        found[label["type"], bool(ok)] += 1
        matched.update(ok)
    unmatched = [a for i, a in enumerate(alerts) if i not in matched]
    everyday = tmp / f"everyday-{seed}.jsonl"
    _run(["synth", "--out", str(everyday), "--seed", str(seed), "--users", str(users), "--hours", str(hours),
          "--attacks", "none"])
    quiet = [json.loads(l) for l in _run(["hunt", "--jsonl", "--config", str(cfg), str(everyday)]).splitlines()]
    return {
        "seed": seed,
        "labels": len(doc["labels"]),
        "detected": sum(n for (t, ok), n in found.items() if ok),
        "missed": sorted(t for (t, ok), n in found.items() if not ok for _ in range(n)),
        "alerts": len(alerts),
        "alerts_not_matching_a_label": Counter(a["type"] for a in unmatched),
        "everyday_false_positives": Counter(a["type"] for a in quiet if not a["learning"]),
        "everyday_learning_alerts": Counter(a["type"] for a in quiet if a["learning"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--seeds", default="1,2,3")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = [evaluate(int(s), args.users, args.hours, Path(tmp)) for s in args.seeds.split(",")]
    labels = sum(r["labels"] for r in runs)
    detected = sum(r["detected"] for r in runs)
    fp_days = sum(sum(r["everyday_false_positives"].values()) for r in runs)
    result = {"machine": machine(), "users": args.users, "hours": args.hours, "runs": runs,
              "recall": round(detected / labels, 3) if labels else None,
              "false_positives_per_day": round(fp_days / (len(runs) * args.hours / 24), 2)}
    save("detection", result)
    for r in runs:
        print(f"seed {r['seed']}: {r['detected']}/{r['labels']} attacks found, missed {r['missed'] or 'none'}; "
              f"{r['alerts']} alerts, not matching a label: {dict(r['alerts_not_matching_a_label']) or 'none'}; "
              f"everyday-only false positives: {dict(r['everyday_false_positives']) or 'none'} "
              f"(+ raised while learning: {dict(r['everyday_learning_alerts']) or 'none'})")
    print(f"recall {result['recall']}, false positives per simulated day ({args.users} users): "
          f"{result['false_positives_per_day']}")


if __name__ == "__main__":
    main()
