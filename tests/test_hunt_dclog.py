"""`hunt` on the DC-log recordings (corpus/expected-dc-log.json), scored as check_alerts.py scores
them, plus: the DC-log types stay quiet on the benign main-corpus files, and every entry is met
through the CLI's JSON lines for a sample of files.

`DCLOG_TYPES=a,b` narrows the scoring to those alert types while detectors are being built; the
default (and CI) scores every type."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from conftest import CORPUS, corpus, jsonl_objects, run_cli
from dcsentry.config import Detection
from dcsentry.formats import ReadStats
from dcsentry.hunt import hunt
from test_hunt_corpus import shape_problems, shortfalls

EXPECTED: list[dict[str, Any]] = json.loads((CORPUS / "expected-dc-log.json").read_text(encoding="utf-8"))
TYPES = set(filter(None, os.environ.get("DCLOG_TYPES", "").split(",")))
DCLOG_TYPES = {t for e in EXPECTED for k in ("must", "must_not") for m in e.get(k, [])
               for t in (m if isinstance(m, list) else [m])}


def narrowed(e: dict[str, Any]) -> dict[str, Any]:
    if not TYPES:
        return e
    return {**e, "must": [t for t in e["must"] if t in TYPES], "must_not": [t for t in e["must_not"] if t in TYPES],
            "max_count": {k: v for k, v in e.get("max_count", {}).items() if k in TYPES}}


def hunt_dicts(rel: str) -> list[dict[str, Any]]:
    alerts, _ = hunt([str(corpus(rel))], Detection(), ReadStats())
    return [a.to_dict() for a in alerts]


@pytest.mark.parametrize("entry", EXPECTED, ids=[e["path"] for e in EXPECTED])
def test_hunt_meets_dc_log_expectations(entry: dict[str, Any]) -> None:
    alerts = hunt_dicts(entry["path"])
    summary = [(a["type"], a["count"], a["severity"]) for a in alerts]
    why = shortfalls(narrowed(entry), alerts)
    assert not why, f"{why}; got {summary}; why labelled: {entry['why']}"
    evtx = entry["path"].endswith(".evtx")
    problems = {a["id"]: p for a in alerts if (p := shape_problems(a, evtx))}
    assert not problems, problems


BENIGN = [e["path"] for e in json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8"))
          if not e.get("attack")]
ALLOWED = {e["path"]: set(e["must"]) for e in EXPECTED}


@pytest.mark.parametrize("rel", BENIGN)
def test_benign_corpus_raises_no_dc_log_alert(rel: str) -> None:
    """What is not an attack raises none of the DC-log types, except what the truth allows (a log
    cleared during a recording is a real log clear)."""
    types = {a["type"] for a in hunt_dicts(rel)} & (TYPES or DCLOG_TYPES)
    assert types <= ALLOWED.get(rel, set()), types


@pytest.mark.integration
@pytest.mark.parametrize("rel", [
    "dc-log/evtx/evtx-to-mitre-attack/ID4662-DCsync attack using Mimikatz.evtx",
    "dc-log/json/otrf-security-datasets/empire_powerview_ldap_ntsecuritydescriptor.zip",
    "dc-log/evtx/evtx-to-mitre-attack/ID104-1102-Event log cleared.evtx",
    "dc-log/evtx/evtx-attack-samples/persistence_security_dcshadow_4742.evtx",  # also a health alert of the DC
])
def test_cli_jsonl_carries_dc_log_alerts(rel: str) -> None:
    """The contract path: the installed CLI's `hunt --jsonl`, MDI and ATT&CK ids on every line."""
    entry = next(e for e in EXPECTED if e["path"] == rel)
    proc = run_cli("hunt", str(corpus(rel)), "--jsonl")
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    alerts = jsonl_objects(proc.stdout)
    assert not shortfalls(narrowed(entry), alerts)
    for a in alerts:
        assert a["technique"].startswith("T") and a["tactic"], a
        assert "xdr_id" in a and "external_id" in a
