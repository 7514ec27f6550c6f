"""Incidents in OCSF (issue 20: "OCSF Incident Finding, class 2005, where OCSF output exists"): each
incident of the corpus is a schema-valid Incident Finding whose `finding_info_list` names its alerts'
Detection Findings by uid, and `serve --forward ocsf:///...` writes them beside the alerts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ocsfkit
from conftest import corpus
from servekit import Serve, corpus_json, frame, send_tcp, wait_for

from dcsentry.config import Detection
from dcsentry.formats import ReadStats
from dcsentry.hunt import hunt, link_incidents
from dcsentry.sinks.ocsf_incident import incident_finding

PLAYBOOK = "json/otrf-security-datasets/purplesharp_ad_playbook_I.zip"


def test_corpus_incidents_are_valid_incident_findings() -> None:
    cfg = Detection()
    for rel in (PLAYBOOK, "dc-log/evtx/evtx-to-mitre-attack/ID4662-DCsync attack using Mimikatz.evtx"):
        alerts, engine = hunt([str(corpus(rel))], cfg, ReadStats())
        incidents = link_incidents(alerts, cfg, engine)
        assert incidents, rel
        for inc in incidents:
            ev = incident_finding(inc)
            assert ocsfkit.errors(ev) == [], rel
            assert ev["class_uid"] == 2005 and ev["metadata"]["correlation_uid"] == inc.id
            assert [f["uid"] for f in ev["finding_info_list"]] == [a.id for a in inc.alerts]
            assert all(f["attacks"][0]["tactic"]["uid"].startswith("TA") for f in ev["finding_info_list"])
    alerts, engine = hunt([str(corpus(PLAYBOOK))], cfg, ReadStats())
    story = [i for i in link_incidents(alerts, cfg, engine) if len(i.alerts) > 1]  # spray, then Kerberoast
    assert story and [f["types"][0] for f in incident_finding(story[0])["finding_info_list"]] == [
        "password-spray", "kerberoasting"]

@pytest.mark.integration
def test_serve_writes_incident_findings_to_the_ocsf_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    svc = Serve(tmp_path / "data", "--forward", f"ocsf://{out}/alerts.ocsf.jsonl").start()
    try:
        send_tcp(svc.ports["tcp"], (frame(m) for m in corpus_json(
            corpus("dc-log/evtx/evtx-to-mitre-attack/ID4662-DCsync attack using Mimikatz.evtx"))))

        def lines() -> list[dict]:
            p = out / "alerts.ocsf.jsonl"
            return [json.loads(ln) for ln in p.read_text().splitlines()] if p.exists() else []

        found = wait_for(lambda: (lambda ls: ls if any(e["class_uid"] == 2005 for e in ls) else None)(lines()),
                         what="an Incident Finding in the OCSF output")
        incidents = [e for e in found if e["class_uid"] == 2005]
        findings = {e["finding_info"]["uid"] for e in found if e["class_uid"] == 2004}
        assert all(ocsfkit.errors(e) == [] for e in incidents)
        assert {f["uid"] for e in incidents for f in e["finding_info_list"]} <= findings
    finally:
        assert svc.stop() == 0
