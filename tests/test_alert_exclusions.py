"""Alert exclusions (Defender for Identity's, per alert type: accounts, sources, destinations): the rule
language, `hunt` with them in the configuration, and a running `dcsentry serve` where an exclusion set
through the REST API (audited) stores the alert as suppressed and keeps it out of the OCSF sink."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import SHARED
from servekit import wait_for
from webkit import BRUTE, GROUP, client, send_corpus, start, wait_alert

from dcsentry.alerts import Alert
from dcsentry.detectors.exclusions import Exclusions, parse
from dcsentry.store.rows import Batch
from dcsentry.store.store import open_store

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def alert(type_: str = "brute-force", accounts: tuple[str, ...] = ("CONTOSO\\jdoe",),
          hosts: tuple[str, ...] = ("ws1.contoso.com",), dcs: tuple[str, ...] = ("DC01",), **kw: object) -> Alert:
    base: dict = {"key": "k", "title": "t", "description": "d", "severity": "medium", "technique": "T1110.001",
                  "start": T0, "end": T0, **kw}
    return Alert(type=type_, accounts=list(accounts), hosts=list(hosts), dcs=list(dcs), **base)


def test_rules_parse_or_say_why() -> None:
    r = parse("  Brute-Force   SOURCE = WS1* ")
    assert (r.alert_type, r.kind, r.pattern) == ("brute-force", "source", "ws1*")
    for bad in ("brute-force", "brute-force host=x", "account=x", "* account=", "a b c"):
        with pytest.raises(ValueError, match="expected"):
            parse(bad)


def test_what_a_rule_covers() -> None:
    ex = Exclusions(["brute-force source=WS1", "sigma:* destination=10.0.0.9", "* account=svc_backup",
                     "password-spray account=CONTOSO\\a", "password-spray account=b@contoso.com"])
    assert ex.matching(alert()) == ["brute-force source=WS1"]  # a host's first label
    assert ex.matching(alert(hosts=("ws2.contoso.com",))) == []
    assert ex.matching(alert("kerberoasting", hosts=("ws1",))) == []  # another type
    assert ex.matching(alert("dcsync", accounts=("CONTOSO\\SVC_BACKUP",))) == ["* account=svc_backup"]  # bare name
    assert ex.matching(alert("sigma:abc", hosts=("src", "10.0.0.9"), dcs=())) == ["sigma:* destination=10.0.0.9"]
    assert ex.matching(alert("sigma:abc", hosts=("src", "10.0.0.9"), dcs=("DC01",))) == []  # DC01 not covered
    spray = alert("password-spray", accounts=("CONTOSO\\a", "b@contoso.com"))
    assert ex.matching(spray) == ["password-spray account=CONTOSO\\a", "password-spray account=b@contoso.com"]
    real = alert("password-spray", accounts=("CONTOSO\\a", "CONTOSO\\ceo"))
    assert ex.matching(real) == []  # a spray that also hits a real account is never hidden
    health = alert("health:no-events", kind="health", accounts=("svc_backup",))
    assert not ex.mark(health) and health.status == "open"
    a = alert("dcsync", accounts=("svc_backup",))
    assert ex.mark(a) and a.status == "suppressed" and a.details["suppressed_by"] == ["* account=svc_backup"]
    closed = alert("dcsync", accounts=("svc_backup",), status="closed")
    assert not ex.mark(closed) and closed.status == "closed"  # a status someone set stays


def test_a_suppressed_alert_is_stored_but_not_queued_for_the_sinks(tmp_path: Path) -> None:
    store = open_store("sqlite:s.db", tmp_path)
    b = Batch()
    kept, hidden = alert(key="kept"), alert(key="hidden", status="suppressed")
    b.alerts = {kept.id: kept, hidden.id: hidden}
    store.commit_batch(b)
    assert dict(store.query("SELECT id, status FROM alerts")) == {kept.id: "open", hidden.id: "suppressed"}
    assert [body["id"] for _, body in store.outbox_take()] == [kept.id]
    store.close()


@pytest.mark.integration
def test_hunt_marks_what_the_configuration_excludes(tmp_path: Path) -> None:
    cfg = tmp_path / "dcsentry.toml"
    cfg.write_text('[detection]\nalert_exclusions = ["dcsync account=*", "log-cleared destination=nonesuch"]\n')
    out = subprocess.run([sys.executable, "-m", "dcsentry.cli", "hunt", "--jsonl", "--config", str(cfg),
                          str(SHARED / "corpus" / "dc-log")], capture_output=True, timeout=300)
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    alerts = [json.loads(x) for x in out.stdout.splitlines()]
    dcsync = [a for a in alerts if a["type"] == "dcsync"]
    assert dcsync and all(a["status"] == "suppressed" and a["details"]["suppressed_by"] == ["dcsync account=*"]
                          for a in dcsync)
    assert {a["status"] for a in alerts if a["type"] != "dcsync"} == {"open"}
    assert any(a["type"] == "log-cleared" for a in alerts)


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_an_exclusion_set_through_the_api_suppresses_and_keeps_the_alert_from_the_sinks(tmp_path: Path) -> None:
    ocsf = tmp_path / "alerts.ocsf.jsonl"
    svc = start(tmp_path / "data", "--forward", f"ocsf://{ocsf}")
    try:
        with client(svc, svc.token) as api:
            bad = api.put("/api/v1/settings/alert_exclusions", json={"values": ["sensitive-group-addition guest"]})
            assert bad.status_code == 422 and "expected" in bad.text
            rule = "sensitive-group-addition account=*"
            r = api.put("/api/v1/settings/alert_exclusions", json={"values": [rule], "comment": "lab group churn"})
            assert r.status_code == 200 and r.json()["added"] == [rule]
            view = api.get("/api/v1/settings").json()
            assert view["settings"]["alert_exclusions"]["effective"] == [rule]
            entry = view["audit"][0]
            assert entry["target"] == "settings:alert_exclusions" and entry["detail"]["comment"] == "lab group churn"
            time.sleep(2.5)  # the processor looks at the run-time settings every 2 s
            send_corpus(svc, GROUP)
            send_corpus(svc, BRUTE, {4625})
            group = wait_alert(api, "the suppressed group alert", type="sensitive-group-addition")
            assert group["status"] == "suppressed"
            detail = api.get(f"/api/v1/alerts/{group['id']}").json()["alert"]
            assert detail["details"]["suppressed_by"] == [rule]
            brute = wait_alert(api, "the brute-force alert", type="brute-force")
            assert brute["status"] == "open"

            def forwarded() -> set[str]:
                if not ocsf.exists():
                    return set()
                lines = [json.loads(x) for x in ocsf.read_text().splitlines()]
                # Detection Findings, and the alerts named by the Incident Findings beside them (class 2005)
                return {e["finding_info"]["uid"] for e in lines if e["class_uid"] == 2004} | {
                    f["uid"] for e in lines if e["class_uid"] == 2005 for f in e["finding_info_list"]}

            wait_for(lambda: brute["id"] in forwarded(), what="the brute-force alert in the OCSF file")
            assert group["id"] not in forwarded()
        with client(svc) as console:  # the console's settings page lists the rule with the others
            base = str(console.base_url).rstrip("/")
            console.post("/login", data={"token": svc.token, "next": "/settings"}, headers={"Origin": base})
            page = console.get("/settings").text
            assert 'id="setting-alert_exclusions"' in page and rule in page and "lab group churn" in page
    finally:
        assert svc.stop() == 0
