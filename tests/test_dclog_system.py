"""Cover-ups and trusts: log-cleared (1102/104), audit-policy-disabled (4719), trust-created
(4706/4865), their health alerts, and the UserData of 1102/104 through every reader."""

from __future__ import annotations

import json

import pytest

from conftest import corpus, read_file_events
from dclog_systemkit import ADMIN, audit_change, cleared, forest_entry, of, run, trust
from eventfactory import DC, kerberos
from dcsentry.activities.context import DomainContext, Inventory
from dcsentry.activities.dclog.system import LogCleared, SystemReader, policy_changes
from dcsentry.alerts import Alert
from dcsentry.config import Detection
from dcsentry.detectors.engine import DetectionEngine
from dcsentry.formats import ReadStats
from dcsentry.formats.jsonl import from_json_line
from dcsentry.hunt import hunt
from dcsentry.model import WindowsEvent
from dcsentry.sinks.cef import CefFormatter




def hunt_file(rel: str) -> list[Alert]:
    alerts, _ = hunt([str(corpus(rel))], Detection(), ReadStats())
    return alerts


# -- log cleared ---------------------------------------------------------------------------------------
def test_wevtutil_loop_recording_is_one_alert_listing_the_channels() -> None:
    alerts = hunt_file("dc-log/evtx/evtx-to-mitre-attack/ID104-1102-Event log cleared.evtx")
    [a] = of(alerts, "log-cleared")
    assert a.count == 91 and a.severity == "high" and a.technique == "T1070.001"
    assert {"Security", "System", "Application"} <= set(a.details["channels"]) and len(a.details["channels"]) >= 80
    assert a.accounts == ["OFFSEC\\admmig"] and a.dcs == ["FS03"]
    assert "OFFSEC\\admmig cleared" in a.description and "FS03" in a.description
    assert not [x for x in alerts if x.kind == "health"]  # FS03 is a file server, not a DC


@pytest.mark.parametrize("rel", [
    "dc-log/evtx/evtx-attack-samples/DE_104_system_log_cleared.evtx",
    "dc-log/evtx/evtx-attack-samples/DE_1102_security_log_cleared.evtx",
    "evtx/omerbenamram-evtx/system.evtx",
])
def test_single_clears_in_recordings(rel: str) -> None:
    [a] = of(hunt_file(rel), "log-cleared")
    assert a.accounts and a.accounts[0].split("\\")[-1] in ("user01", "tony")


def test_recording_clear_on_a_dc_is_also_a_health_alert_even_when_the_dc_shows_itself_later() -> None:
    """The 1102 is the first record of the cleared log; the DC-only events come after it."""
    alerts = hunt_file("dc-log/evtx/evtx-attack-samples/persistence_security_dcshadow_4742.evtx")
    [a] = of(alerts, "log-cleared")
    [h] = of(alerts, "health:log-cleared")
    assert h.kind == "health" and h.dcs == ["DC1"] and h.severity == "high"
    assert a.details["health_alert"] == h.id and h.details["security_alert"] == a.id


def test_nxlog_json_clears_have_no_fields_but_still_alert() -> None:
    """OTRF NXLog lines carry only the rendered Message for 1102/104: no subject, no cleared channel."""
    alerts = hunt_file("json/otrf-security-datasets/cmd_psexec_lsa_secrets_dump.zip")
    [a] = of(alerts, "log-cleared")
    assert a.count == 2 and set(a.details["channels"]) == {"Security", "unknown log"}
    assert "unknown account" in a.description


def test_synthetic_clear_on_a_dc_raises_linked_security_and_health_alerts() -> None:
    alerts = run([cleared(1102, 0), cleared(104, 5, channel="System")], dcs=["DC01"])
    [a] = of(alerts, "log-cleared")
    [h] = of(alerts, "health:log-cleared")
    assert a.count == 2 and a.details["channels"] == ["Security", "System"] and a.details["dc"] is True
    assert h.kind == "health" and h.title == "dcsentry is going blind on DC01: event log cleared"
    assert h.details["class"] == "EventLogClearedMonitoringAlert" and h.details["channels"] == ["Security", "System"]
    assert a.details["health_alert"] == h.id and h.details["security_alert"] == a.id
    assert h.technique.startswith("T") and h.evidence and h.count == 2
    assert "domain controller DC01" in a.description and "health alert" in a.description
    cef = CefFormatter("https://dcsentry.local").format(h)
    assert cef.startswith("CEF:0|") and "|EventLogClearedMonitoringAlert|EventLogClearedMonitoringAlert|10|" in cef
    assert f"cs1=https://dcsentry.local/health/{h.id}" in cef


def test_synthetic_dc_learned_after_the_clear_gets_its_health_alert() -> None:
    alerts = run([cleared(1102, 0), kerberos(4768, 30, "alice", "0x0")])  # only DCs log 4768
    assert of(alerts, "health:log-cleared") and of(alerts, "log-cleared")[0].details["dc"] is True


def test_synthetic_wevtutil_loop_on_a_dc_health_lists_only_logs_dcsentry_reads() -> None:
    names = ["Application", "System", "Security", *(f"Microsoft-Windows-Thing{i}/Operational" for i in range(87))]
    alerts = run([cleared(104, i * 0.6, channel=c) for i, c in enumerate(names)], dcs=["DC01"])
    [a] = of(alerts, "log-cleared")
    [h] = of(alerts, "health:log-cleared")
    assert a.count == 90 and len(a.details["channels"]) == 90 and len(a.evidence) <= 50
    assert h.details["channels"] == ["System", "Security"]


def test_synthetic_clear_of_an_unread_log_on_a_dc_is_no_health_alert() -> None:
    alerts = run([cleared(104, 0, channel="Microsoft-Windows-PowerShell/Operational")], dcs=["DC01"])
    assert of(alerts, "log-cleared") and not of(alerts, "health:log-cleared")


def test_synthetic_clears_far_apart_are_two_incidents_and_hosts_apart() -> None:
    alerts = run([cleared(1102, 0), cleared(1102, 4 * 3600), cleared(1102, 10, host="SRV02.contoso.local")])
    assert sorted(a.key for a in of(alerts, "log-cleared")) == ["DC01", "DC01", "SRV02"]


def test_synthetic_backup_path_is_reported() -> None:
    [a] = of(run([cleared(104, 0, channel="System", backup=r"C:\\logs\\sys.evtx")]), "log-cleared")
    assert "archived" in a.description and a.details["backups"]


def test_userdata_through_winlogbeat_and_nxlog_json() -> None:
    wlb = {"@timestamp": "2024-03-04T09:00:00Z", "winlog": {
        "event_id": 104, "provider_name": "Microsoft-Windows-Eventlog", "channel": "System", "computer_name": DC,
        "record_id": 7, "user_data": {"xml_name": "LogFileCleared", "SubjectUserName": "dadmin",
                                      "SubjectDomainName": "CONTOSO", "Channel": "Security", "BackupPath": ""}}}
    ev = from_json_line(json.dumps(wlb).encode(), None)
    [act] = [x for x in _acts(ev) if isinstance(x, LogCleared)]
    assert act.channel == "Security" and act.actor == "dadmin"
    nx = {"EventID": 104, "SourceName": "Microsoft-Windows-Eventlog", "Channel": "System", "Hostname": DC,
          "EventTime": "2024-03-04 09:00:00",
          "Message": "The Microsoft-Windows-PowerShell/Operational log file was cleared."}
    [act] = [x for x in _acts(from_json_line(json.dumps(nx).encode(), None)) if isinstance(x, LogCleared)]
    assert act.channel == "" and act.subject == "unknown log"


def _acts(ev: WindowsEvent) -> list:
    return SystemReader(DomainContext()).feed(ev)


def test_evtx_userdata_is_flattened_to_bare_names() -> None:
    events, _ = read_file_events(corpus("dc-log/evtx/evtx-attack-samples/DE_104_system_log_cleared.evtx"))
    assert events[0].data["Channel"] == "System" and events[0].data["SubjectUserName"] == "user01"


# -- audit policy -----------------------------------------------------------------------------------------
def test_policy_change_codes_and_words() -> None:
    assert policy_changes("%%8448, %%8450") == (["success", "failure"], [])
    assert policy_changes("%%8449, %%8451") == ([], ["success", "failure"])
    assert policy_changes("Success removed, Failure added") == (["success"], ["failure"])
    assert policy_changes("-") == ([], [])


def test_audit_policy_deactivation_recording() -> None:
    alerts = hunt_file("dc-log/evtx/evtx-to-mitre-attack/ID4719-Audit policy deactivation.evtx")
    [a] = of(alerts, "audit-policy-disabled")
    assert a.severity == "high" and a.accounts == ["OFFSEC\\admmig"]
    assert "Security System Extension" in a.details["removed"] and "Logon" in a.details["removed"]
    assert "subcategories" in a.description and "auditpol /set" in a.description


def test_auditpol_clear_recording_also_raises_log_cleared() -> None:
    rel = "dc-log/json/otrf-security-datasets/auditpol_system_user_auditpolicy_modification.zip"
    types = {a.type for a in hunt_file(rel)}
    assert {"audit-policy-disabled", "log-cleared"} <= types


def test_synthetic_adding_auditing_only_is_quiet() -> None:
    alerts = run([audit_change(0, "Credential Validation", "%%8449, %%8451"),
                  audit_change(1, "Security Group Management", "Success added")], dcs=["DC01"])
    assert not alerts


def test_synthetic_unwatched_subcategory_and_lockout_failure_are_quiet() -> None:
    alerts = run([audit_change(0, "File System", "%%8448, %%8450"), audit_change(1, "Account Lockout", "%%8450")])
    assert not alerts


def test_synthetic_lockout_success_removed_is_medium() -> None:
    [a] = run([audit_change(0, "Account Lockout", "%%8448")])
    assert a.type == "audit-policy-disabled" and a.severity == "medium"


def test_synthetic_rendered_words_on_a_dc_open_a_health_alert_that_closes_when_restored() -> None:
    alerts = run([audit_change(0, "Credential Validation", "Success removed, Failure removed"),
                  audit_change(5, "Directory Service Changes", "%%8448"),
                  audit_change(60, "Credential Validation", "%%8449, %%8451")], dcs=["DC01"])
    [a] = of(alerts, "audit-policy-disabled")
    [h] = of(alerts, "health:audit-policy-disabled")
    assert a.severity == "high" and h.status == "open"  # Directory Service Changes is still off
    assert h.details["missing"] == {"Directory Service Changes": ["success"]}
    assert h.details["class"] == "DirectoryServicesAdvancedAuditingNotEnabledMonitoringAlert"
    alerts = run([audit_change(0, "Credential Validation", "%%8448, %%8450"),
                  audit_change(60, "Credential Validation", "%%8449"),
                  audit_change(61, "Credential Validation", "%%8451")], dcs=["DC01"])
    [a] = of(alerts, "audit-policy-disabled")
    [h] = of(alerts, "health:audit-policy-disabled")
    assert h.status == "closed" and "back" in h.description and a.details["restored"]
    assert a.details["health_alert"] == h.id and h.details["security_alert"] == a.id


def test_synthetic_gpo_refresh_by_the_dc_account_is_reported_as_a_gpo() -> None:
    [a] = run([audit_change(0, "Security Group Management", "%%8448", actor=("DC01$", "S-1-5-18"))])
    assert "Group Policy" in a.description


def test_synthetic_extra_subcategory_from_settings() -> None:
    cfg = Detection()
    cfg.tampering.audit_subcategories = ["{0cce921d-69ae-11d9-bed3-505054503030}"]
    [a] = run([audit_change(0, "File System", "%%8448")], cfg)
    assert a.severity == "medium"


# -- trusts -----------------------------------------------------------------------------------------------
def test_trust_recording_is_high_with_forest_entries() -> None:
    alerts = hunt_file("dc-log/evtx/evtx-to-mitre-attack/ID 4865 4706 - trust added.evtx")
    [a] = of(alerts, "trust-created")
    assert a.severity == "high" and a.count == 4 and a.key == "rootblue.lan"
    assert a.details["direction"] == "two-way" and a.details["attributes"] == ["forest trust"]
    assert len(a.details["forest_entries"]) == 3 and "MYPARTNER\\Administrator" in a.description


@pytest.mark.parametrize(("direction", "attributes", "severity"), [
    ("1", "0", "high"),  # inbound external trust, no SID filtering
    ("3", "8", "high"),  # two-way forest trust
    ("2", "0", "medium"),  # outbound only
    ("3", "4", "medium"),  # quarantined
    ("3", "72", "medium"),  # forest + treat as external (0x48)
    ("3", "32", "medium"),  # within the forest
])
def test_synthetic_trust_severity(direction: str, attributes: str, severity: str) -> None:
    [a] = run([trust(0, direction=direction, attributes=attributes)])
    assert a.type == "trust-created" and a.severity == severity


def test_synthetic_planned_trust_stays_medium() -> None:
    cfg = Detection()
    cfg.tampering.planned_trusts = ["FABRIKAM"]
    [a] = run([trust(0)], cfg)
    assert a.severity == "medium" and "planned" in a.description


def test_synthetic_forest_entry_alone_is_medium() -> None:
    [a] = run([forest_entry(0)])
    assert a.type == "trust-created" and a.severity == "medium" and "child.fabrikam.local" in a.description


def test_synthetic_trust_subject_is_the_actor() -> None:
    [a] = run([trust(0)])
    assert a.accounts == ["CONTOSO\\Administrator"] and a.dcs == ["DC01"] and ADMIN[0] not in a.accounts


def test_health_alerts_reach_the_store_as_health_and_close_there(tmp_path) -> None:
    """The serve path: the pipeline stores the detector's health alert with kind "health", linked to
    its security alert, and its closing when auditing is back."""
    from dcsentry.runtime.step import DetectionStep
    from dcsentry.store.rows import Batch
    from dcsentry.store.store import open_store

    store = open_store("sqlite:t.db", tmp_path)
    inv = Inventory()
    inv.add_dc("DC01")
    pipe = DetectionStep(DetectionEngine(Detection(), inventory=inv))
    for ev in (audit_change(0, "Credential Validation", "%%8448, %%8450"), cleared(1102, 1)):
        batch = Batch()
        pipe.process(batch, ev, 0.0)
        store.commit_batch(batch)
    health = {a["type"]: a for a in store.alerts(kind="health")}
    assert set(health) == {"health:audit-policy-disabled", "health:log-cleared"}
    assert all(a["status"] == "open" and a["kind"] == "health" for a in health.values())
    security = {a["type"]: a for a in store.alerts(kind="security")}
    assert security["log-cleared"]["details"]["health_alert"] == health["health:log-cleared"]["id"]
    batch = Batch()
    pipe.process(batch, audit_change(60, "Credential Validation", "%%8449, %%8451"), 0.0)
    store.commit_batch(batch)
    [closed] = store.alerts(kind="health", type_="health:audit-policy-disabled")
    assert closed["status"] == "closed"


def test_synthetic_audit_policy_on_a_host_later_known_as_dc_gets_its_health_alert() -> None:
    alerts = run([audit_change(0, "Credential Validation", "%%8448"), kerberos(4768, 30, "alice", "0x0")])
    [h] = of(alerts, "health:audit-policy-disabled")
    assert h.details["missing"] == {"Credential Validation": ["success"]}
    assert of(alerts, "audit-policy-disabled")[0].details["dc"] is True
