"""The synthetic traffic through detection: every injected attack is found, the everyday background
raises nothing outside learning, and multi-day runs keep their attacks for the last day.
"""

from __future__ import annotations

import json
from datetime import timedelta

from click.testing import CliRunner

from dcsentry.cli.synth import synth
from dcsentry.config import Detection
from dcsentry.formats import ReadStats
from dcsentry.synth import DEFAULT_START, demo_sample, generate
from synthkit import _alerts_for, _by_label, _missed, day_run


def test_hunting_one_seed_finds_every_attack():
    """A day of a 200-user domain: every injected attack (the DC-log ones included) raises its alert."""
    events, labels = day_run("all")
    alerts = _alerts_for(events, 11, 200)
    assert not _missed(labels, alerts), _missed(labels, alerts)


def test_hunting_the_demo_finds_every_attack(tmp_path):
    """The README's demo file, through the real `hunt` (XML reader and all): every attack type is found."""
    from dcsentry.hunt import hunt

    path = tmp_path / "demo.xml"
    labels = demo_sample(str(path), labels_path=str(tmp_path / "labels.json"))
    cfg = Detection(honeytokens=["sql-admin"])
    alerts, _ = hunt([str(path)], cfg, ReadStats())
    assert not _missed(labels, alerts), _missed(labels, alerts)


def test_an_everyday_day_raises_nothing_outside_learning():
    """The benign background alone: whatever the detectors raise on their first day says `learning`."""
    events, _ = day_run("none")
    loud = [(a.type, a.key, a.description[:160]) for a in _alerts_for(events, 11, 200) if not a.learning]
    assert not loud, loud


def test_attacks_can_wait_for_the_last_day():
    """Multi-day runs for learning detectors: attacks only from `attacks_from`, the background unchanged."""
    last = DEFAULT_START + timedelta(hours=20)
    events, labels = generate(seed=5, hours=24, users=30, attacks="all", attacks_from=last)
    assert labels and all(lb.start >= last for lb in labels)
    quiet, _ = generate(seed=5, hours=24, users=30, attacks="none")
    assert sum(1 for e in events if e.origin is None) == sum(1 for _ in quiet)


def test_one_object_one_guid():
    """The domain root's objectGUID is the same in 4662 (`%{guid}`) and 5136 (`{GUID}`)."""
    events, labels = day_run("all")
    rights = next(lb for lb in labels if lb.type == "dcsync-rights")
    mine = _by_label(events)[rights.id]
    sd = next(e for e in mine if e.event_id == 5136).data["ObjectGUID"].strip("{}").lower()
    assert {e.data["ObjectName"] for e in mine if e.event_id == 4662} == {f"%{{{sd}}}"}
    replication = {e.data["ObjectName"] for e in events if e.event_id == 4662 and e.data["ObjectServer"] == "DS"
                   and e.data["AccessMask"] == "0x100" and e.origin is None}
    assert replication == {f"%{{{sd}}}"}


def test_cli_attacks_from(tmp_path):
    out, lab = tmp_path / "run.xml", tmp_path / "labels.json"
    res = CliRunner().invoke(synth, ["--out", str(out), "--hours", "30", "--users", "15", "--labels", str(lab),
                                     "--attacks", "log-cleared,nopac", "--attacks-from", "2024-03-05"])
    assert res.exit_code == 0, res.output
    doc = json.loads(lab.read_text())
    assert {lb["type"] for lb in doc["labels"]} == {"log-cleared", "nopac"}
    assert all(lb["start"] >= "2024-03-05" for lb in doc["labels"]) and doc["params"]["attacks_from"]

