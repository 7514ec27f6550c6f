"""`dcsentry audit --events`: which required events a DC's logs actually lack, by the rule of the
service's "events missing" health alerts (requirements.overdue), and what the logs prove."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conftest import CORPUS, run_cli
from eventfactory import AUDIT_FAILURE, DC, group_change, ntlm_4776, ntlm_8004
from eventfactory import event_xml as xml_of
from dcsentry.audit.exports import read_exports
from dcsentry.audit.logs import LogEvidence
from dcsentry.audit.requirements import REQUIREMENTS, health_key, overdue
from dcsentry.audit.verdict import decide
from dcsentry.config import Health
from dcsentry.runtime.health import HealthChecker
from dcsentry.store.rows import Batch
from dcsentry.store.store import open_store

DAY = 86400
DA = "S-1-5-21-3457937927-2839227994-823803824-512"


def _xml_4776(t: float, status: str = "0x0") -> str:
    kw = "0x8020000000000000" if status == "0x0" else AUDIT_FAILURE
    return xml_of(4776, {"PackageName": "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0", "TargetUserName": "jdoe",
                         "Workstation": "WS1", "Status": status}, t, keywords=kw)


def _xml_8004(t: float, channel: str = "Microsoft-Windows-NTLM/Operational", event_id: int = 8004) -> str:
    return xml_of(event_id, {"SChannelName": "SRV1", "UserName": "jdoe", "DomainName": "NULL",
                             "WorkstationName": "WS1", "SChannelType": "2"}, t, channel=channel,
                  provider=("Microsoft-Windows-Security-Netlogon", "{e5ba83f6-07d0-46b1-8bc7-7e669a1d31dc}"),
                  keywords="0x8000000000000000", level=4)


def _log(tmp: Path, name: str, pieces: list[str]) -> str:
    p = tmp / name
    p.write_text("<Events>\n" + "\n".join(pieces) + "\n</Events>\n", encoding="utf-8")
    return str(p)


def _audit_events(*paths: str) -> tuple[int, dict]:
    args = ["audit", "--json"]
    for p in paths:
        args += ["--events", p]
    res = run_cli(*args)
    return res.returncode, json.loads(res.stdout)


@pytest.mark.integration
def test_two_days_without_8004_is_missing(tmp_path: Path) -> None:
    log = _log(tmp_path, "security.xml", [_xml_4776(0), _xml_4776(60, "0xc000006a"), _xml_4776(2 * DAY)])
    code, doc = _audit_events(log)
    reqs = doc["logs"]["DC01"]["requirements"]
    assert reqs["ntlm-auditing"]["status"] == "missing"
    assert reqs["ntlm-auditing"]["blind"] == ["honeytoken-activity"]
    assert "Enable all" in reqs["ntlm-auditing"]["fix"][0]
    assert reqs["credential-validation"] == {**reqs["credential-validation"], "status": "seen", "count": 3}
    assert reqs["security-group-management"]["status"] == "too-early"  # 2 days < the 14 allowed
    assert reqs["service-installs"]["status"] == "too-early"
    assert code == 1
    assert doc["events"]["4776"]["status"] == "yes"  # successes and failures seen: proven


@pytest.mark.integration
def test_all_required_seen_exit_zero(tmp_path: Path) -> None:
    sec = _log(tmp_path, "security.xml", [_xml_4776(0), _xml_4776(5, "0xc000006a"), _xml_4776(2 * DAY)])
    ntlm = _log(tmp_path, "ntlm.xml", [_xml_8004(10)])
    code, doc = _audit_events(sec, ntlm)
    assert code == 0
    assert doc["logs"]["DC01"]["requirements"]["ntlm-auditing"] == {
        **doc["logs"]["DC01"]["requirements"]["ntlm-auditing"], "status": "seen", "count": 1}


def test_8004_counts_only_on_the_ntlm_channel_and_8005_counts(tmp_path: Path) -> None:
    ev = LogEvidence()
    ev.extend([ntlm_4776(0, "a"), ntlm_8004(1, "SRV", "a", "WS", channel="Security"), ntlm_4776(2 * DAY, "a")])
    assert [s.status for s in ev.states("DC01") if s.requirement.key == "ntlm-auditing"] == ["missing"]
    ev = LogEvidence()
    ev.extend([ntlm_4776(0, "a"), ntlm_8004(1, "SRV", "a", "WS", event_id=8005), ntlm_4776(2 * DAY, "a")])
    assert [s.status for s in ev.states("DC01") if s.requirement.key == "ntlm-auditing"] == ["seen"]
    assert health_key(8006, "Microsoft-Windows-NTLM/Operational", DC) == ("DC01", 8004)
    assert health_key(8004, "Security", DC) is None


@pytest.mark.integration
def test_short_logs_cannot_tell(tmp_path: Path) -> None:
    code, doc = _audit_events(_log(tmp_path, "s.xml", [_xml_8004(0), _xml_8004(3600)]))
    assert doc["logs"]["DC01"]["requirements"]["credential-validation"]["status"] == "too-early"
    assert code == 0


def test_logs_prove_what_the_exports_cannot(tmp_path: Path) -> None:
    """A GPO without Credential Validation leaves 4776 unknown; the DC's 4776 failures and successes settle it.
    Group changes prove the whole subcategory; successes alone cannot prove Failure auditing."""
    gpo = tmp_path / "audit.csv"
    gpo.write_text("Machine Name,Policy Target,Subcategory,Subcategory GUID,Inclusion Setting,Exclusion Setting,"
                   "Setting Value\r\n,System,Audit Credential Validation,{0cce923f-69ae-11d9-bed3-505054503030},"
                   "No Auditing,,0\r\n")
    exports = read_exports([str(gpo)]).exports
    logs = LogEvidence().extend([ntlm_4776(0, "a"), ntlm_4776(1, "a", status="0xc000006a"),
                                 group_change(4732, 5, "Administrators", "S-1-5-32-544")])
    v = decide(exports, logs)
    assert v.events[4776].status == "yes" and v.events[4776].source == "logs"
    assert any("the exports say no" in c for c in v.conflicts)
    assert all(v.events[e].status == "yes" for e in (4728, 4729, 4732, 4733, 4756, 4757))
    only_success = decide([], LogEvidence().extend([ntlm_4776(0, "a")]))
    assert only_success.events[4776].status == "unknown"
    assert "no failures" in only_success.events[4776].detail


def test_same_rule_as_the_service_health_alerts(tmp_path: Path) -> None:
    """The service's HealthChecker and requirements.overdue agree on what is missing for a DC."""
    store = open_store("sqlite:store.db", tmp_path)
    now = time.time()
    first = now - 3 * DAY
    seen = {4776: 10, 4728: 1}
    batch = Batch()
    for eid, n in seen.items():
        batch.health[("DC01", eid)] = [first, now, datetime(2024, 1, 1, tzinfo=UTC), n]
    store.commit_batch(batch)
    alerts = HealthChecker(store, Health(), lambda: {}, 0).evaluate(now)
    service = {a.type.removeprefix("health:") for a in alerts if a.dcs == ["DC01"]}
    ours = {r.key for r, _ in overdue(seen, first, now)}
    assert service == ours == {"ntlm-auditing"}
    # and over a span long enough for every allowance
    first = now - 40 * DAY
    assert {r.key for r, _ in overdue({4776}, first, now)} == {r.key for r in REQUIREMENTS} - {"credential-validation"}
    store.close()


@pytest.mark.integration
def test_real_corpus_logs(tmp_path: Path) -> None:
    """Real recordings: a Security log (group changes) and a System log (7045 over five months, nothing else)."""
    base = CORPUS / "evtx/omerbenamram-evtx"
    code, doc = _audit_events(str(base / "security.evtx"), str(base / "system.evtx"))
    assert code == 1
    desktop = doc["logs"]["DESKTOP-2KGM189"]
    assert desktop["events"] == {"104": 2, "7045": 44}  # two real log clears (Sysmon's log) count too
    assert desktop["requirements"]["service-installs"]["status"] == "seen"
    assert desktop["requirements"]["credential-validation"]["status"] == "missing"
    assert doc["events"]["4729"]["status"] == "yes"  # proven by the 4728/4732/4733 of the same subcategory
    assert doc["events"]["4776"]["status"] == "unknown"
