"""The "events missing" health alerts for the DC-log detections' events: 4768/4769 (a day) and
4662/5136 (a week) alert once a DC has sent them and then stops while it keeps sending others;
never having sent them is shown, not alerted (their volume depends on the domain and its SACLs).
The service (HealthChecker), the console's DC health and `audit --events` share one rule."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from eventfactory import kerberos, ntlm_4776
from dcsentry.audit.logs import LogEvidence
from dcsentry.audit.silence import Seen, requirement_states
from dcsentry.config import Health
from dcsentry.runtime.health import HealthChecker
from dcsentry.store.rows import Batch
from dcsentry.store.store import open_store
from dcsentry.web.readiness import dc_health

DAY = 86400.0
HOUR = 3600.0


def _rows(store, dc: str, rows: dict[int, tuple[float, float, int]]) -> None:
    batch = Batch()
    for eid, (first, last, n) in rows.items():
        batch.health[(dc, eid)] = [first, last, datetime(2024, 1, 1, tzinfo=UTC), n]
    store.commit_batch(batch)


def _alerts(store, now: float, checker: HealthChecker | None = None) -> tuple[HealthChecker, dict[str, object]]:
    checker = checker or HealthChecker(store, Health(), lambda: {}, 0)
    alerts = checker.evaluate(now)
    return checker, {a.type.removeprefix("health:"): a for a in alerts if a.dcs == ["DC01"]}


def test_kerberos_events_that_stop_raise_a_health_alert_and_close_when_back(tmp_path: Path) -> None:
    store = open_store("sqlite:store.db", tmp_path)
    now = time.time()
    first = now - 3 * DAY
    # every required event seen; 4768 stopped 30 h ago while 4776 kept coming; 4769 still flowing
    _rows(store, "DC01", {4776: (first, now, 500), 8004: (first, now, 90), 4728: (first, first + 60, 1),
                          7045: (first, first + 90, 1), 4768: (first, now - 30 * HOUR, 4000),
                          4769: (first, now - HOUR, 9000)})
    checker, found = _alerts(store, now)
    assert set(found) == {"kerberos-authentication"}
    a = found["kerberos-authentication"]
    assert a.details["subcategory"] == "Audit Kerberos Authentication Service"
    assert "although it sent 4000 before" in a.description and "asrep-roasting" in a.description
    assert a.details["class"] == "DirectoryServicesAdvancedAuditingNotEnabledMonitoringAlert"
    assert abs(a.start.timestamp() - (now - 30 * HOUR + DAY)) < 1e-3  # stable id: silence start + allowance
    _rows(store, "DC01", {4768: (now, now, 1)})  # auditing is back
    _, found = _alerts(store, now + 60, checker)
    assert found == {}
    assert store.query("SELECT status FROM alerts WHERE id = ?", (a.id,))[0][0] == "closed"
    store.close()


def test_a_week_for_directory_events_and_never_for_never_seen(tmp_path: Path) -> None:
    store = open_store("sqlite:store.db", tmp_path)
    now = time.time()
    first = now - 40 * DAY
    base = {4776: (first, now, 500), 8004: (first, now, 90), 4728: (first, now, 3), 7045: (first, now, 2)}
    _rows(store, "DC01", {**base, 4662: (first, now - 6 * DAY, 70), 5136: (first, now - 8 * DAY, 12)})
    _, found = _alerts(store, now)
    assert set(found) == {"directory-service-changes"}  # 6 days of no 4662 is within its week; 4768 never seen
    assert "Write SACLs" in found["directory-service-changes"].description
    page = {r["key"]: r for r in dc_health(store, now=now)[0]["requirements"]}
    assert page["directory-service-changes"]["state"] == "missing"
    assert page["directory-service-access"]["state"] == "seen"
    kas = page["kerberos-authentication"]
    assert kas["state"] == "not-seen" and kas["alerts"] == "stopped"
    assert page["directory-service-access"]["subcategory"] == "Audit Directory Service Access"
    assert page["ntlm-auditing"]["subcategory"].startswith("Network security: Restrict NTLM")
    assert page["security-log-cleared"]["subcategory"] == "none (always logged)"
    store.close()


def test_a_dc_gone_silent_is_not_an_audit_policy_problem() -> None:
    """4768 stopped together with everything else: the forwarding alert's business, not this one."""
    now = 10 * DAY
    seen = {4776: Seen(10, 2 * DAY), 4768: Seen(10, 2 * DAY)}
    states = {s.requirement.key: s.status for s in requirement_states(seen, 0.0, 2 * DAY, now)}
    assert states["kerberos-authentication"] == "seen"


def test_a_certification_authority_is_not_held_to_dc_requirements(tmp_path: Path) -> None:
    store = open_store("sqlite:store.db", tmp_path)
    now = time.time()
    first = now - 40 * DAY
    _rows(store, "CA01", {4886: (first, now, 40), 4887: (first, now, 40), 4624: (first, now, 900)})
    alerts = HealthChecker(store, Health(), lambda: {}, 0).evaluate(now)
    assert [a for a in alerts if a.dcs == ["CA01"]] == []
    (ca,) = dc_health(store, now=now)
    assert {r["key"] for r in ca["requirements"]} == {"ca-requests", "ca-security", "ca-audit-filter",
                                                       "ca-rows-deleted", "ca-templates"}
    store.close()


def test_logs_show_kerberos_auditing_stopped_without_failing_the_audit() -> None:
    """Over logs the same rule: 4768 for a while, then two days of NTLM only."""
    evs = [kerberos(4768, h * HOUR, "jdoe", "0x0") for h in range(5)]
    evs += [ntlm_4776(h * HOUR, "jdoe") for h in range(0, 60, 2)]
    logs = LogEvidence().extend(evs)
    states = {s.requirement.key: s for s in logs.states("DC01")}
    assert states["kerberos-authentication"].status == "missing"
    assert states["kerberos-service-tickets"].status == "not-seen"
    assert states["credential-validation"].status == "seen"
    # context: shown, but `audit --events` fails only on required settings (here 8004, never sent)
    assert {s.requirement.key for s in logs.missing()["DC01"]} == {"ntlm-auditing"}
