"""SigmaHQ's own rules (../shared/sigma, Detection Rule License) on the real corpus: how many load,
what is refused and why, and that the service-installation and group-membership rules fire on the
recordings that show that behaviour and stay quiet on the benign baselines."""

from __future__ import annotations

from functools import cache

import pytest
from conftest import CORPUS, SHARED, jsonl_objects, run_cli

from dcsentry.alerts import Alert
from dcsentry.config import Detection
from dcsentry.detectors.engine import DetectionEngine
from dcsentry.detectors.sigma import SigmaRuleset, load_rules
from dcsentry.formats import ReadStats
from dcsentry.sources.files import read_paths_by_time

pytestmark = pytest.mark.timeout(180)

RULES = SHARED / "sigma" / "rules"
UNSUPPORTED = SHARED / "sigma" / "unsupported"
MEASURED_LOADED = 211  # of the 211 rule files in ../shared/sigma/rules, measured with pySigma 2.0
GROUP_IDS = {4728, 4729, 4732, 4733, 4756, 4757}
GLOBAL_GROUP_AUDIT = {"A Member Was Added to a Security-Enabled Global Group",  # every 4728/4729, level low
                      "A Member Was Removed From a Security-Enabled Global Group"}


@cache
def shared_rules() -> SigmaRuleset:
    return load_rules([str(RULES)])


@cache
def sigma_alerts(rel: str) -> tuple[Alert, ...]:
    engine = DetectionEngine(Detection(), sigma=shared_rules())
    for ev in read_paths_by_time([str(CORPUS / rel)], ReadStats()):
        engine.feed(ev)
    engine.finish()
    return tuple(a for a in engine.alerts.values() if a.type.startswith("sigma:"))


def fired(rel: str, event_ids: set[int]) -> dict[str, int]:
    """Title -> matched events, for the rules that look at `event_ids`."""
    wanted = {r.meta.alert_type for r in shared_rules().rules if r.event_ids and r.event_ids & event_ids}
    out: dict[str, int] = {}
    for a in sigma_alerts(rel):
        if a.type in wanted:
            out[a.title] = out.get(a.title, 0) + a.count
    return out


def test_every_shared_rule_loads_or_says_why() -> None:
    rs = shared_rules()
    files = sorted(RULES.rglob("*.yml"))
    print(f"\n{rs.summary()}")
    assert rs.files == len(files) == rs.total
    assert rs.loaded >= MEASURED_LOADED, [str(p) for p in rs.problems]
    assert all(p.reason and p.path for p in rs.problems)
    assert sum(1 for r in rs.rules if r.event_ids) >= rs.loaded - 2  # nearly all are indexed by event id
    assert all(r.channels for r in rs.rules)  # every one by its channel


def test_unsupported_legacy_rules_are_reported_not_crashed() -> None:
    rs = load_rules([str(UNSUPPORTED)])
    assert rs.loaded == 0 and rs.total == 3
    for p in rs.problems:
        assert p.path.endswith(".yml") and p.title and "pipe syntax" in p.reason, p
    assert rs.report()[-1] == "sigma: 0 of 3 Sigma rules loaded (0 correlations) from 3 file(s); 3 not loaded"


SERVICE_FIRES = {
    "evtx/deepbluecli/metasploit-psexec-native-target-system.evtx":
        {"Meterpreter or Cobalt Strike Getsystem Service Installation - System",
         "Uncommon Service Installation Image Path"},
    "evtx/evtx-attack-samples/System_7045_namedpipe_privesc.evtx":
        {"Meterpreter or Cobalt Strike Getsystem Service Installation - System", "Suspicious Service Installation"},
    "evtx/evtx-to-mitre-attack/ID7000,7009,7045-Payload deployed via service - Tchopper.evtx":
        {"PowerShell Scripts Installed as Services", "Suspicious Service Installation Script"},
    "evtx/evtx-to-mitre-attack/ID7045-4697-SMBexec service registration.evtx": {"smbexec.py Service Installation"},
    "evtx/evtx-to-mitre-attack/ID7045-7036 PSexec service installation.evtx": {"PsExec Service Installation"},
    "evtx/evtx-to-mitre-attack/ID7045-New service for Mimikatz +npcap.evtx":
        {"Credential Dumping Tools Service Execution - System", "HackTool Service Registration or Execution"},
    "json/otrf-security-datasets/aptsimulator_cobaltstrike.zip":
        {"Meterpreter or Cobalt Strike Getsystem Service Installation - Security",
         "Meterpreter or Cobalt Strike Getsystem Service Installation - System"},
    "json/otrf-security-datasets/cmd_psexec_lsa_secrets_dump.zip": {"PsExec Service Installation"},
    "json/otrf-security-datasets/empire_psexec_dcerpc_tcp_svcctl.zip":
        {"CobaltStrike Service Installations - System", "CobaltStrike Service Installations - Security",
         "PowerShell Scripts Installed as Services"},
}


@pytest.mark.parametrize("rel", sorted(SERVICE_FIRES))
def test_service_installation_rules_fire_on_service_attacks(rel: str) -> None:
    got = fired(rel, {7045, 4697})
    assert SERVICE_FIRES[rel] <= set(got), got


def test_tchopper_is_one_growing_alert_per_rule() -> None:
    rel = "evtx/evtx-to-mitre-attack/ID7000,7009,7045-Payload deployed via service - Tchopper.evtx"
    assert fired(rel, {7045})["PowerShell Scripts Installed as Services"] == 244
    a = next(a for a in sigma_alerts(rel) if a.title == "PowerShell Scripts Installed as Services")
    assert a.count == 244 and len(a.evidence) == 50 and a.technique == "T1569.002" and a.severity == "high"


def test_service_rules_quiet_on_57_routine_installs() -> None:
    """The benign System log: only the AppData\\Temp test agent trips a rule, the one rule made for it
    (expected.json allows the built-in detector the same)."""
    got = fired("evtx/omerbenamram-evtx/system.evtx", {7045, 4697})
    assert got == {"Service Installation in Suspicious Folder": 1}
    a = next(a for a in sigma_alerts("evtx/omerbenamram-evtx/system.evtx")
             if a.title == "Service Installation in Suspicious Folder")
    assert "\\AppData\\Local\\Temp\\" in a.details["fields"]["ImagePath"]


GROUP_FIRES = {
    "evtx/evtx-attack-samples/Network_Service_Guest_added_to_admins_4732.evtx": {"User Added to Local Administrator Group"},
    "evtx/evtx-to-mitre-attack/ID4732-4733-Quick added-removed user from local group.evtx":
        {"User Added to Local Administrator Group"},
    "evtx/evtx-to-mitre-attack/ID472, 4728 Hidden user creation.evtx":
        {"User Added to Local Administrator Group", "A Member Was Added to a Security-Enabled Global Group"},
    "evtx/evtx-to-mitre-attack/ID4728-4756-Member added to sensitive domain groups.evtx":
        {"A Member Was Added to a Security-Enabled Global Group"},
}
GROUP_BENIGN = ("evtx/evtx-to-mitre-attack/ID4720-Local user created.evtx",
                "evtx/evtx-to-mitre-attack/ID4728-Massive account group membership change.evtx",
                "json/otrf-security-datasets/empire_wmic_add_user_backdoor.zip",
                "evtx/omerbenamram-evtx/Security_with_size_t.evtx")


@pytest.mark.parametrize("rel", sorted(GROUP_FIRES))
def test_group_membership_rules_fire_on_group_changes(rel: str) -> None:
    got = fired(rel, GROUP_IDS)
    assert GROUP_FIRES[rel] <= set(got), got


@pytest.mark.parametrize("rel", GROUP_BENIGN)
def test_group_rules_quiet_on_ordinary_group_changes(rel: str) -> None:
    """Additions to Users, Domain Users and Group01..11: only the audit-every-change rules (level low)."""
    got = fired(rel, GROUP_IDS)
    assert set(got) <= GLOBAL_GROUP_AUDIT, got
    assert all(a.severity == "low" for a in sigma_alerts(rel) if a.title in GLOBAL_GROUP_AUDIT)


@pytest.mark.integration
def test_hunt_cli_runs_rules_and_reports_what_did_not_load() -> None:
    psexec = CORPUS / "evtx/evtx-to-mitre-attack/ID7045-7036 PSexec service installation.evtx"
    r = run_cli("hunt", "--jsonl", "--sigma", str(RULES), "--sigma", str(UNSUPPORTED), str(psexec))
    assert r.returncode == 0, r.stderr
    err = r.stderr.decode()
    assert f"sigma: {MEASURED_LOADED} of {MEASURED_LOADED + 3} Sigma rules loaded" in err
    not_loaded = [line for line in err.splitlines() if line.startswith("sigma: not loaded: ")]
    assert len(not_loaded) == 3 and all("unsupported/windows/" in line and "pipe syntax" in line for line in not_loaded)
    alerts = {a["type"]: a for a in jsonl_objects(r.stdout)}
    a = alerts["sigma:42c575ea-e41e-41f1-b248-8093c3e82a28"]
    assert a["title"] == "PsExec Service Installation" and a["severity"] == "medium" and a["count"] == 1
    assert a["external_id"] is None and a["evidence"][0]["event_id"] == 7045
    assert {"suspicious-service-creation", "remote-code-execution"} <= set(alerts)  # the built-ins still run
    cef = run_cli("hunt", "--cef", "--sigma", str(RULES), str(psexec)).stdout.decode()
    assert "|sigma:42c575ea-e41e-41f1-b248-8093c3e82a28|PsExec Service Installation|5|" in cef


@pytest.mark.integration
def test_hunt_cli_refuses_a_missing_rule_path(tmp_path) -> None:
    r = run_cli("hunt", "--sigma", str(tmp_path / "nope"), str(CORPUS / "evtx/deepbluecli/new-user-security.evtx"))
    assert r.returncode == 2 and b"no such file" in r.stderr
