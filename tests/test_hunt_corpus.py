"""`dcsentry hunt --jsonl` on every labelled recording of the shared corpus (corpus/expected.json),
scored the way ../shared/tools/check_alerts.py scores it, plus the shape every alert line must have.

A detector that misses a labelled attack fails here; nothing is skipped."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from conftest import CORPUS, corpus, jsonl_objects, run_cli

RANK = {"informational": 0, "info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
EXPECTED: list[dict[str, Any]] = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
KEYS = ("type", "title", "description", "severity", "technique", "start", "end", "entities", "count", "evidence")


def shortfalls(e: dict[str, Any], alerts: list[dict[str, Any]]) -> list[str]:
    """What the alerts lack against one expectation, in check_alerts.py's words."""
    types = {a.get("type") for a in alerts}
    worst = max((RANK.get(str(a.get("severity", "")).lower(), 0) for a in alerts), default=-1)
    why = []
    for t in e.get("must", []):
        options = t if isinstance(t, list) else [t]  # a list inside `must`: any one of them
        if not types.intersection(options):
            why.append("missing " + " or ".join(options))
    why += [f"unwanted {t}" for t in e.get("must_not", []) if t in types]
    for t, n in e.get("max_count", {}).items():
        got = sum(1 for a in alerts if a.get("type") == t)
        if got > n:
            why.append(f"{got} {t} alerts (at most {n})")
    if "max_severity" in e and worst > RANK[e["max_severity"]]:
        why.append(f"severity above {e['max_severity']}")
    return why


def shape_problems(a: dict[str, Any], evtx: bool) -> list[str]:
    """The keys and value types a SIEM integration relies on."""
    bad = [f"no {k}" for k in KEYS if k not in a]
    if bad:
        return bad
    if not all(isinstance(a[k], str) and a[k] for k in ("type", "title", "description", "technique")):
        bad.append("empty text field")
    if a["severity"] not in ("low", "medium", "high"):
        bad.append(f"severity {a['severity']!r}")
    if not a["technique"].startswith("T"):
        bad.append(f"technique {a['technique']!r}")
    start, end = (datetime.fromisoformat(a[k].replace("Z", "+00:00")) for k in ("start", "end"))
    if start > end:
        bad.append("start after end")
    if not (isinstance(a["count"], int) and a["count"] >= 1):
        bad.append(f"count {a['count']!r}")
    ent = a["entities"]
    if not (isinstance(ent, dict) and all(isinstance(ent.get(k), list) for k in ("accounts", "hosts", "dcs"))):
        bad.append(f"entities {ent!r}")
    ev = a["evidence"]
    if not (isinstance(ev, list) and ev):
        return bad + ["no evidence"]
    for item in ev:
        if "record_id" not in item or not (isinstance(item.get("computer"), str) and item["computer"]):
            bad.append(f"evidence item {item}")
        elif evtx and not isinstance(item["record_id"], int):  # EVTX always has record ids
            bad.append(f"evidence without record id {item}")
    if len(ev) > a["count"] * 2:  # at most the counted events and their joined twins
        bad.append(f"{len(ev)} evidence items for count {a['count']}")
    return bad


@pytest.mark.integration
@pytest.mark.parametrize("entry", EXPECTED, ids=[e["path"] for e in EXPECTED])
def test_hunt_meets_corpus_expectations(entry: dict[str, Any]) -> None:
    path = corpus(entry["path"])
    proc = run_cli("hunt", str(path), "--jsonl")
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    alerts = jsonl_objects(proc.stdout)
    summary = [(a.get("type"), a.get("count"), a.get("severity")) for a in alerts]
    assert not shortfalls(entry, alerts), f"{shortfalls(entry, alerts)}; got {summary}; why labelled: {entry['why']}"
    evtx = entry["path"].endswith(".evtx")
    problems = {a.get("id", "?"): p for a in alerts if (p := shape_problems(a, evtx))}
    assert not problems, problems
    ids = [a["id"] for a in alerts]
    assert len(ids) == len(set(ids)), f"one alert reported twice: {ids}"


def test_expectations_cover_every_labelled_kind() -> None:
    """The expectations themselves: every alert type the corpus can show is demanded somewhere."""
    demanded = {t for e in EXPECTED for m in e.get("must", []) for t in (m if isinstance(m, list) else [m])}
    assert {"brute-force", "password-spray", "sensitive-group-addition", "suspicious-service-creation",
            "remote-code-execution"} <= demanded
    assert all((CORPUS / e["path"]).is_file() for e in EXPECTED)


def test_scoring_rejects_what_check_alerts_rejects() -> None:
    """The scorer above must be able to fail: each rule on a made-up alert list."""
    a = [{"type": "brute-force", "severity": "high"}, {"type": "brute-force", "severity": "high"}]
    assert shortfalls({"must": ["password-spray"]}, a) == ["missing password-spray"]
    assert shortfalls({"must": [["password-spray", "brute-force"]]}, a) == []
    assert shortfalls({"must_not": ["brute-force"]}, a) == ["unwanted brute-force"]
    assert shortfalls({"max_count": {"brute-force": 1}}, a) == ["2 brute-force alerts (at most 1)"]
    assert shortfalls({"max_severity": "medium"}, a) == ["severity above medium"]
    assert shape_problems({"type": "x"}, True)[0] == "no title"
