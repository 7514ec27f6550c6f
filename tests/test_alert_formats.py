"""OCSF and ECS: every alert `hunt` raises on the corpus, and every catalogue type, a Sigma alert and a
health alert, valid against the OCSF 1.8.0 schema compiled from its source (ocsfkit) and the ECS 9.4
field reference (ecskit); ATT&CK and Defender for Identity ids on each; file and TCP sinks; the
Navigator layer's shape."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import ecskit
import ocsfkit
import pytest

from dcsentry.alerts import ALERT_TYPES, Alert, Evidence
from dcsentry.attack import TACTICS, TECHNIQUES
from dcsentry.sinks.ecs import EcsFormatter
from dcsentry.sinks.forward import open_sink
from dcsentry.sinks.ocsf import OcsfFormatter

SHARED = Path(__file__).resolve().parents[2] / "shared"
CORPUS = [SHARED / "corpus" / "dc-log", SHARED / "corpus" / "evtx", SHARED / "corpus" / "json"]
DCSENTRY = [sys.executable, "-m", "dcsentry.cli"]
T0 = datetime(2026, 3, 5, 14, 0, tzinfo=timezone.utc)


def hunt(mode: str, *extra: str) -> list[dict]:
    out = subprocess.run([*DCSENTRY, "hunt", f"--{mode}", *map(str, CORPUS), *extra], capture_output=True,
                         timeout=600, env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    return [json.loads(line) for line in out.stdout.splitlines()]


@pytest.fixture(scope="module")
def corpus() -> dict[str, list[dict]]:
    return {mode: hunt(mode) for mode in ("jsonl", "ocsf", "ecs")}


def make_alert(type_: str, **kw: object) -> Alert:
    at = ALERT_TYPES.get(type_)
    base: dict = {"type": type_, "key": "k", "title": at.title if at else "Custom", "description": "d",
                  "severity": at.severity if at else "medium", "technique": at.technique if at else "",
                  "start": T0, "end": T0 + timedelta(minutes=5), "count": 4, "accounts": ["CONTOSO\\jdoe"],
                  "hosts": ["ws1.contoso.com", "10.0.0.7"], "dcs": ["dc01.contoso.com"],
                  "evidence": [Evidence(4769, "dc01.contoso.com", 77, T0, "wef")], "outcome": "failure"}
    base.update(kw)
    return Alert(**base)


def sigma_alert() -> Alert:
    return make_alert("sigma:0b4d1a6c-0000-4000-8000-000000000001", title="Mimikatz DC Sync", technique="T1003.006",
                      details={"sigma": {"id": "0b4d1a6c-0000-4000-8000-000000000001", "level": "critical",
                                         "tags": ["attack.credential-access", "attack.t1003.006",
                                                  "attack.s0002", "attack.privilege-escalation"]}})


def health_alert() -> Alert:
    return make_alert("health:no-events", kind="health", title="DC01 stopped sending events", technique="",
                      accounts=[], hosts=[], details={"class": "WindowsEventsMissingMonitoringAlert"})


def every_kind() -> list[Alert]:
    out = [make_alert(t, revision=r) for t in ALERT_TYPES for r in (0, 2)]
    out += [make_alert("brute-force", accounts=["a", "b@contoso.com"], hosts=[], dcs=["10.0.0.1"], status="closed"),
            make_alert("kerberoasting", learning=True, status="suppressed", evidence=[]), sigma_alert(), health_alert()]
    return out


@pytest.mark.parametrize("alert", every_kind(), ids=lambda a: f"{a.type}-r{a.revision}-{a.status}")
def test_every_alert_kind_is_valid_ocsf_and_ecs(alert: Alert) -> None:
    ev = OcsfFormatter().format(alert)
    assert ocsfkit.errors(ev) == []
    doc = EcsFormatter().format(alert)
    assert ecskit.errors(doc) == []
    assert doc["event"]["id"] == alert.id and doc["event"]["kind"] == "alert"
    if alert.kind == "health":
        assert (ev["class_uid"], ev["activity_id"], ev["type_uid"]) == (6008, 1, 600801)
        assert ev["metadata"]["correlation_uid"] == alert.id and ev["device"]["hostname"] == "dc01.contoso.com"
        return
    fi = ev["finding_info"]
    assert (ev["class_uid"], ev["category_uid"]) == (2004, 2) and ev["type_uid"] == 200400 + ev["activity_id"]
    assert fi["uid"] == alert.id and ev["metadata"]["uid"] == f"{alert.id}:{alert.revision}"
    want_activity = 3 if alert.status == "closed" else (1 if alert.revision == 0 else 2)
    assert ev["activity_id"] == want_activity
    assert ev["status_id"] == {"open": 1, "suppressed": 3, "closed": 4}[alert.status]
    assert ev["severity_id"] == {"low": 2, "medium": 3, "high": 4}[alert.severity]
    tech = alert.technique
    attacks = ev["attacks"]
    got = {a.get("sub_technique", a.get("technique"))["uid"] for a in attacks}
    assert tech in got and all(a["tactic"]["uid"].startswith("TA") for a in attacks)
    assert doc["threat"]["framework"] == "MITRE ATT&CK"
    ids = doc["threat"]["technique"]["id"] + doc["threat"]["technique"].get("subtechnique", {}).get("id", [])
    assert tech in ids and tech.split(".")[0] in doc["threat"]["technique"]["id"]
    at = ALERT_TYPES.get(alert.type)
    if at is not None:
        assert {a["tactic"]["name"] for a in attacks} == {at.tactic} and doc["threat"]["tactic"]["name"] == [at.tactic]
        related = {(r["category"], r["uid"]) for r in fi["analytic"].get("related_analytics", [])}
        if at.external_id:
            assert ("Microsoft Defender for Identity", str(at.external_id)) in related
            assert doc["labels"]["mdi_external_id"] == str(at.external_id) == doc["rule"]["uuid"]
        if at.xdr_id:
            assert ("Microsoft Defender XDR", at.xdr_id) in related and doc["labels"]["xdr_detector_id"] == at.xdr_id
    if len(alert.accounts) == 1:
        assert ev["actor"]["user"] == {"name": "jdoe", "domain": "CONTOSO", "type_id": 0, "type": "Unknown"}
        assert doc["user"] == {"name": "jdoe", "domain": "CONTOSO"}
    if alert.hosts:
        assert doc["source"]["address"] == alert.hosts[0]


def test_sigma_alert_claims_every_tactic_and_its_rule() -> None:
    ev = OcsfFormatter().format(sigma_alert())
    assert {a["tactic"]["uid"] for a in ev["attacks"]} == {"TA0006", "TA0004"}
    assert {a["sub_technique"]["uid"] for a in ev["attacks"]} == {"T1003.006"}
    assert ev["finding_info"]["analytic"]["uid"] == "0b4d1a6c-0000-4000-8000-000000000001"
    doc = EcsFormatter().format(sigma_alert())
    assert doc["rule"]["ruleset"] == "sigma" and doc["threat"]["technique"]["subtechnique"]["name"] == ["DCSync"]


@pytest.mark.integration
def test_hunt_ocsf_ecs_and_jsonl_agree_on_the_corpus_and_are_schema_valid(corpus: dict[str, list[dict]]) -> None:
    plain, ocsf, ecs = corpus["jsonl"], corpus["ocsf"], corpus["ecs"]
    assert len(plain) >= 30 and len(plain) == len(ocsf) == len(ecs)
    for a, o, e in zip(plain, ocsf, ecs):
        assert ocsfkit.errors(o) == [], a["type"]
        assert ecskit.errors(e) == [], a["type"]
        uid = o["metadata"]["correlation_uid"]
        assert uid == a["id"] == e["event"]["id"]
        if a["kind"] == "security":
            assert o["finding_info"]["uid"] == a["id"] and o["finding_info"]["title"] == a["title"]
            assert a["technique"] in json.dumps(o["attacks"]) and a["tactic"] in json.dumps(o["attacks"])
            assert a["technique"] in json.dumps(e["threat"]) and a["tactic"] in e["threat"]["tactic"]["name"]
    types = {a["type"] for a in plain}
    assert len(types & set(ALERT_TYPES)) >= 20 and any(t.startswith("health:") for t in types)


def test_file_sink_rotates_by_size_and_keeps_every_line(tmp_path: Path) -> None:
    path = tmp_path / "alerts.ocsf.jsonl"
    sink = open_sink(f"ocsf://{path}?rotate=4k&keep=3")
    alerts = [make_alert("dcsync", key=f"k{i}") for i in range(12)]
    for a in alerts:
        sink.send(a)
    sink.close()
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == ["alerts.ocsf.jsonl", "alerts.ocsf.jsonl.1", "alerts.ocsf.jsonl.2",
                                       "alerts.ocsf.jsonl.3"]
    assert all(f.stat().st_size <= 4096 for f in files) and oct(path.stat().st_mode)[-3:] == "600"
    lines = [json.loads(x) for f in files for x in f.read_text().splitlines()]
    kept = {ev["finding_info"]["uid"] for ev in lines}
    assert kept <= {a.id for a in alerts} and alerts[-1].id in kept and sink.stats.sent == 12
    assert all(ocsfkit.errors(ev) == [] for ev in lines)


@pytest.mark.integration
def test_ecs_over_tcp_is_newline_delimited_json() -> None:
    srv = socket.create_server(("127.0.0.1", 0))
    got: list[bytes] = []

    def accept() -> None:
        conn, _ = srv.accept()
        with conn:
            while chunk := conn.recv(65536):
                got.append(chunk)

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    sink = open_sink(f"ecs+tcp://127.0.0.1:{srv.getsockname()[1]}")
    alerts = [make_alert("golden-ticket", key=str(i), description="line one\nline two") for i in range(3)]
    for a in alerts:
        sink.send(a)
    assert sink.flush(force=True)
    sink.close()
    t.join(5)
    srv.close()
    docs = [json.loads(line) for line in b"".join(got).splitlines()]
    assert [d["event"]["id"] for d in docs] == [a.id for a in alerts]
    assert all(ecskit.errors(d) == [] for d in docs)


@pytest.mark.integration
def test_attack_layer_is_a_navigator_layer_of_builtin_types_and_sigma_rules() -> None:
    out = subprocess.run([*DCSENTRY, "attack-layer", "--sigma", str(SHARED / "sigma" / "rules")],
                         capture_output=True, timeout=300)
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    layer = json.loads(out.stdout)
    assert layer["domain"] == "enterprise-attack" and layer["versions"]["layer"] == "4.5"
    assert {"name", "versions", "techniques", "gradient", "description"} <= set(layer)
    shorts = {s for _, s in TACTICS.values()}
    by_tech: dict[str, set[str]] = {}
    for t in layer["techniques"]:
        assert set(t) <= {"techniqueID", "tactic", "score", "color", "comment", "enabled", "metadata",
                          "showSubtechniques", "links"}
        assert t["techniqueID"][:1] == "T" and t["techniqueID"][1:5].isdigit()
        assert t.get("tactic", "credential-access") in shorts  # no tactic: every tactic of the technique
        assert t["score"] == len(t["metadata"]) >= 1 and all(m["name"] == "alert type" for m in t["metadata"])
        by_tech.setdefault(t["techniqueID"], set()).update(m["value"] for m in t["metadata"])
    for at in ALERT_TYPES.values():
        assert at.type in by_tech[at.technique] and at.technique in TECHNIQUES
    assert any(v.startswith("sigma:") for vs in by_tech.values() for v in vs)
    assert "dcsync" in by_tech["T1003.006"] and len(by_tech) > len({a.technique for a in ALERT_TYPES.values()})
