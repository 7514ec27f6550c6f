"""Change detectors: sensitive group additions (learning period, learned actor/group pairs, a baseline
that survives a restart), suspicious services on the corpus's real examples and quiet installs, and
remote code execution. Synthetic events come from tests/eventfactory.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcsentry.config import Detection
from dcsentry.detectors.baseline import Baseline
from dcsentry.store.state import load_baseline, save_baseline

from storekit import pg_database, pg_url  # noqa: F401 (fixtures)
from conftest import corpus, jsonl_objects, read_file_events, run_cli
from eventfactory import (DOMAIN_SID, event_xml, group_change, kerberos, ntlm_4776, of_type, run, service_4697,
                          service_7045)

DAY = 86400.0
DA = ("Domain Admins", f"{DOMAIN_SID}-512")
EA = ("Enterprise Admins", f"{DOMAIN_SID}-519")
ADMINS = ("Administrators", "S-1-5-32-544")
SGA = "sensitive-group-addition"
SSC = "suspicious-service-creation"
RCE = "remote-code-execution"


def add(t: float, group: tuple[str, str], actor: str = "dadmin", member: str = "eve", dc: str = "DC01.contoso.local",
        eid: int | None = None):
    """`actor` adds `member` to `group`; the event id follows the group's scope."""
    eid = eid or (4732 if group[1].startswith("S-1-5-32-") else 4756 if group[1].endswith(("-519", "-518")) else 4728)
    return group_change(eid, t, group[0], group[1], member_sid=f"{DOMAIN_SID}-{_rid(member)}",
                        member_name=f"CN={member},CN=Users,DC=contoso,DC=local", actor=actor,
                        actor_sid=f"{DOMAIN_SID}-{_rid(actor)}", dc=dc)


def _rid(name: str) -> int:
    """A stable made-up RID per account name."""
    return 5000 + int.from_bytes(name.encode()[:4].ljust(4, b"\0"), "big") % 90_000


# -- sensitive group additions ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("group,severity", [(DA, "high"), (EA, "high"), (ADMINS, "medium")])
def test_addition_during_learning_is_raised_and_marked(group: tuple[str, str], severity: str) -> None:
    a = of_type(run([add(0, group)]), SGA)
    assert len(a) == 1
    a = a[0]
    assert (a.learning, a.severity, a.count, a.dcs) == (True, severity, 1, ["DC01"])
    assert a.accounts == ["CONTOSO\\dadmin", "eve"] and a.details["changes"][0]["group_sid"] == group[1]
    assert "learning period" in a.description and group[0] in a.description


@pytest.mark.parametrize("group", [("Group01", f"{DOMAIN_SID}-1512"), ("Domain Users", f"{DOMAIN_SID}-513"),
                                   ("Remote Desktop Users", "S-1-5-32-555")])
def test_addition_to_ordinary_group_is_quiet(group: tuple[str, str]) -> None:
    assert run([add(0, group)]).alerts == {}


def test_after_learning_a_learned_pair_is_quiet_and_a_new_actor_raises() -> None:
    engine = run([add(0, DA, "dadmin", "eve"), add(29 * DAY, DA, "dadmin", "frank"),
                  add(29 * DAY + 60, DA, "mallory", "frank"), add(29 * DAY + 120, EA, "dadmin", "frank")])
    alerts = of_type(engine, SGA)
    assert [(a.details["actor"], a.learning, a.details["changes"][0]["group"]) for a in alerts] == [
        ("CONTOSO\\dadmin", True, "Domain Admins"), ("CONTOSO\\mallory", False, "Domain Admins"),
        ("CONTOSO\\dadmin", False, "Enterprise Admins")]
    assert "learning period" not in alerts[1].description


def test_learning_period_is_per_domain_controller() -> None:
    engine = run([add(0, DA, "dadmin"), add(30 * DAY, DA, "mallory", dc="DC02.contoso.local")])
    assert [a.learning for a in of_type(engine, SGA)] == [True, True]


def test_learning_period_from_settings() -> None:
    cfg = Detection()
    cfg.sensitive_group.learning_period = DAY
    engine = run([add(0, ADMINS, "dadmin"), add(2 * DAY, ADMINS, "mallory")], cfg)
    assert [a.learning for a in of_type(engine, SGA)] == [True, False]


def test_burst_of_additions_by_one_actor_is_one_alert() -> None:
    a = of_type(run([add(i * 10, g, "mallory", f"m{i}") for i, g in enumerate((DA, EA, ADMINS))]), SGA)
    assert len(a) == 1 and a[0].count == 3 and a[0].severity == "high"
    assert {c["group"] for c in a[0].details["changes"]} == {"Domain Admins", "Enterprise Admins", "Administrators"}


@pytest.mark.parametrize("group,remove_id", [(ADMINS, 4733), (DA, 4729), (EA, 4757)], ids=["4733", "4729", "4757-synthetic"])
def test_removal_after_addition_is_noted(group: tuple[str, str], remove_id: int) -> None:
    """A quick add-remove (4757: synthetic, no public recording)."""
    added = add(0, group, "mallory", "eve")
    removed = group_change(remove_id, 90, group[0], group[1], member_sid=added.data["MemberSid"],
                           member_name=added.data["MemberName"], actor="mallory", actor_sid=added.data["SubjectUserSid"])
    a = of_type(run([added, removed]), SGA)
    assert len(a) == 1 and a[0].details["removed_again"] == [f"eve from {group[0]}"]
    assert "Removed again" in a[0].description and a[0].revision == 1


def test_removal_alone_is_quiet() -> None:
    assert run([group_change(4729, 0, *DA)]).alerts == {}


def test_user_defined_sensitive_group_from_settings() -> None:
    engine = run([add(0, ("Tier0-Ops", f"{DOMAIN_SID}-4100"))], Detection(sensitive_groups=["tier0-ops"]))
    assert len(of_type(engine, SGA)) == 1
    assert run([add(0, ("Tier0-Ops", f"{DOMAIN_SID}-4100"))]).alerts == {}


def test_baseline_survives_a_restart(tmp_path: Path) -> None:
    """Day 0 on one engine, saved; day 30 on a new engine loaded from the store."""
    db = tmp_path / "state.db"
    first = run([add(0, DA, "dadmin", "eve")])
    save_baseline(db, first.baseline)
    later = [add(30 * DAY, DA, "dadmin", "frank"), add(30 * DAY + 60, DA, "mallory", "frank")]
    restarted = run(later, baseline=load_baseline(db))
    assert [(a.details["actor"], a.learning) for a in of_type(restarted, SGA)] == [("CONTOSO\\mallory", False)]
    amnesiac = run(later)  # without the store: learning starts again and both additions are raised
    assert [a.learning for a in of_type(amnesiac, SGA)] == [True, True]
    assert load_baseline(tmp_path / "fresh.db").group_changes == Baseline().group_changes


@pytest.fixture(params=["path", "sqlite-url", "postgresql"])
def state_where(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """`hunt --state` takes a bare SQLite path (as before store URLs) or any store URL `serve --store`
    takes: a `sqlite:///` URL, or a PostgreSQL schema of this test run."""
    if request.param == "path":
        return str(tmp_path / "state.db")
    if request.param == "sqlite-url":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("pg_url")


@pytest.mark.integration
def test_hunt_state_flag_keeps_learning_between_runs(tmp_path: Path, state_where: str) -> None:
    """The same through the real CLI: `hunt --state` over two XML files a month apart."""
    db, day0, day30 = state_where, tmp_path / "day0.xml", tmp_path / "day30.xml"

    def write(path: Path, events: list) -> None:
        xml = [event_xml(e.event_id, e.data, e.time, computer=e.computer) for e in events]
        path.write_text("<Events>\n" + "\n".join(xml) + "\n</Events>\n", encoding="utf-8")

    write(day0, [add(0, DA, "dadmin", "eve")])
    write(day30, [add(30 * DAY, DA, "dadmin", "frank"), add(30 * DAY + 60, DA, "mallory", "frank")])
    run0 = run_cli("hunt", str(day0), "--jsonl", "--state", db)
    run30 = run_cli("hunt", str(day30), "--jsonl", "--state", db)
    assert run0.returncode == 0 and run30.returncode == 0, (run0.stderr, run30.stderr)
    out0, out30 = jsonl_objects(run0.stdout), jsonl_objects(run30.stdout)
    assert [(a["type"], a["learning"]) for a in out0] == [(SGA, True)]
    assert [(a["details"]["actor"], a["learning"]) for a in out30] == [("CONTOSO\\mallory", False)]
    assert load_baseline(db).group_changes == restarted_baseline(day0, day30).group_changes


def restarted_baseline(*files: Path) -> Baseline:
    """What the two runs learned, computed in this process from the same files in one engine."""
    events = [e for f in files for e in read_file_events(f)[0]]
    return run(events).baseline


@pytest.mark.integration
def test_hunt_state_errors_are_plain(tmp_path: Path) -> None:
    """A URL of another kind is a usage error; an unreachable PostgreSQL says so, without a traceback."""
    day0 = tmp_path / "day0.xml"
    day0.write_text("<Events>" + event_xml(*_sga_xml_args()) + "</Events>", encoding="utf-8")
    bad = run_cli("hunt", str(day0), "--jsonl", "--state", "mysql://db/x")
    assert bad.returncode == 2 and b"store URL must be" in bad.stderr
    down = run_cli("hunt", str(day0), "--jsonl", "--state", "postgresql://127.0.0.1:1/none?connect_timeout=2")
    assert down.returncode == 1 and b"cannot open the --state store" in down.stderr
    assert b"Traceback" not in down.stderr


def _sga_xml_args() -> tuple:
    e = add(0, DA, "dadmin", "eve")
    return e.event_id, e.data, e.time


# -- suspicious services: the corpus's real examples -----------------------------------------------------------------
FLAGGED = [
    ("evtx/evtx-attack-samples/LM_Remote_Service02_7045.evtx", ["spoolfool", "spoolsv", "remotesvc"]),
    ("evtx/evtx-attack-samples/System_7045_namedpipe_privesc.evtx", ["WinPwnage"]),
    ("evtx/deepbluecli/metasploit-psexec-native-target-system.evtx", ["KgXItsbKgTJzdzwl", "hgabms"]),
    ("evtx/evtx-to-mitre-attack/ID7045-4697-SMBexec service registration.evtx", ["BTOBTO"]),
    ("evtx/evtx-to-mitre-attack/ID47x,4661-4662,5136,4688,4697-SAM the admin (CVE-2021-42287).evtx", ["BTOBTO"]),
    ("evtx/evtx-to-mitre-attack/ID7045-7036 PSexec service installation.evtx", ["PSEXESVC"]),
    ("evtx/evtx-to-mitre-attack/ID7045-New service for Mimikatz +npcap.evtx", ["WCESERVICE", "mimikatz driver (mimidrv)"]),
    ("json/otrf-security-datasets/aptsimulator_cobaltstrike.zip", ["tbbd05"]),
    ("json/otrf-security-datasets/cmd_psexec_lsa_secrets_dump.zip", ["PSEXESVC"]),
    ("json/otrf-security-datasets/empire_psexec_dcerpc_tcp_svcctl.zip", ["Updater"]),
]


def flagged_services(rel: str) -> list[str]:
    events, _ = read_file_events(corpus(rel))
    return [s["name"] for a in of_type(run(events), SSC) for s in a.details["services"]]


@pytest.mark.parametrize("rel,names", FLAGGED, ids=[Path(r).stem[:40] for r, _ in FLAGGED])
def test_real_malicious_services_are_flagged(rel: str, names: list[str]) -> None:
    assert set(names) <= set(flagged_services(rel))


@pytest.mark.parametrize("rel", ["evtx/evtx-to-mitre-attack/ID7045-4697-SMBexec service registration.evtx",
                                 "json/otrf-security-datasets/cmd_psexec_lsa_secrets_dump.zip",
                                 "json/otrf-security-datasets/aptsimulator_cobaltstrike.zip"])
def test_real_install_logged_as_7045_and_4697_is_one_service(rel: str) -> None:
    events, _ = read_file_events(corpus(rel))
    assert sorted(e.event_id for e in events if e.event_id in (7045, 4697)) == [4697, 7045]
    assert len(flagged_services(rel)) == 1


def test_tchopper_every_payload_service_is_counted() -> None:
    rel = "evtx/evtx-to-mitre-attack/ID7000,7009,7045-Payload deployed via service - Tchopper.evtx"
    events, _ = read_file_events(corpus(rel))
    alerts = of_type(run(events), SSC)
    assert sum(a.count for a in alerts) == sum(1 for e in events if e.event_id == 7045) == 244
    assert all(a.severity == "high" for a in alerts)


@pytest.mark.parametrize("rel,quiet", [
    ("evtx/evtx-to-mitre-attack/ID7045-New service for Mimikatz +npcap.evtx",
     ["Microsoft Office Click-to-Run Service", "Microsoft Search in Bing", "Npcap Packet Driver (NPCAP)"]),
    ("evtx/omerbenamram-evtx/system.evtx", ["MpKsl", "VMware", "Bluetooth", "Microsoft Streaming", "vm3dmp",
                                            "Google Update", "Mozilla", "Sysmon", "Printer Extensions"]),
], ids=["mimikatz-neighbours", "system-evtx"])
def test_ordinary_installs_are_quiet(rel: str, quiet: list[str]) -> None:
    got = flagged_services(rel)
    assert not [n for n in got for q in quiet if n.startswith(q)], got
    if rel.endswith("system.evtx"):
        events, _ = read_file_events(corpus(rel))
        drivers = [e for e in events if e.event_id == 7045 and "\\drivers\\" in e.data["ImagePath"].lower()]
        assert len(drivers) >= 20 and not {e.data["ServiceName"] for e in drivers} & set(got)
        assert len([e for e in events if e.data.get("ServiceName", "").startswith("MpKsl")]) >= 12
        assert got in ([], ["Pathfinder"])  # a test agent run from a user Temp folder may fairly be flagged


@pytest.mark.parametrize("image", [
    r"\SystemRoot\System32\drivers\WUDFRd.sys", r"System32\drivers\vmci.sys", r"system32\DRIVERS\vmhgfs.sys",
    r"C:\ProgramData\Microsoft\Windows Defender\Definition Updates\{972CA50B-64EC-45FC-A57E-68F894ED5B68}\MpKsl1bb57ead.sys",
    r'"C:\Program Files\VMware\VMware Tools\vmtoolsd.exe"', r"%SystemRoot%\system32\svchost.exe -k print",
])
def test_synthetic_quiet_images(image: str) -> None:
    assert run([service_7045(0, "SomeService", image)]).alerts == {}


@pytest.mark.parametrize("name,image", [
    ("mimidrv", r"\SystemRoot\system32\DRIVERS\mimidrv.sys"),  # a known tool is not excused by the driver folder
    ("WinDefendUpd", r"%COMSPEC% /c powershell -nop -w hidden -enc SQBFAFgA & rem "
                     r"C:\ProgramData\Microsoft\Windows Defender\Definition Updates\x"),
    ("drvsvc", r"\SystemRoot\system32\drivers\..\..\Temp\evil.exe"),
    ("svc1", r"C:\Windows\Temp\svc1.exe"), ("upd", r"powershell.exe -ExecutionPolicy Bypass -e SQBFAFgA"),
    ("notepadsvc", "notepad.exe"),
])
def test_synthetic_malicious_images_are_flagged(name: str, image: str) -> None:
    """Also: an allow-listed folder merely mentioned in a command line does not excuse it."""
    alerts = of_type(run([service_7045(0, name, image)]), SSC)
    assert len(alerts) == 1 and alerts[0].details["services"][0]["reasons"]


def test_services_on_one_host_grow_one_alert_with_the_creator() -> None:
    engine = run([service_7045(0, "a1", r"C:\Windows\Temp\a1.exe", user_sid="S-1-5-21-1-2-3-500"),
                  service_4697(60, "a2", r"C:\Windows\Temp\a2.exe", subject="mallory")])
    a = of_type(engine, SSC)
    assert len(a) == 1 and a[0].count == 2 and a[0].accounts == ["S-1-5-21-1-2-3-500", "mallory"]


# -- remote code execution -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,image", [
    ("PSEXESVC", r"%SystemRoot%\PSEXESVC.exe"), ("PAExec-4242-ADMINPC", r"%SystemRoot%\PAExec-4242-ADMINPC.exe"),
    ("RemComSvc", r"%SystemRoot%\RemComSvc.exe"), ("winexesvc", r"winexesvc.exe"),
    ("BTOBTO", r"%COMSPEC% /Q /c echo cd  ^> \\127.0.0.1\C$\__output 2^>^&1 > %TEMP%\execute.bat"),
])
def test_remote_execution_tools(name: str, image: str) -> None:
    engine = run([service_7045(0, name, image, host="SRV07.contoso.local")])
    a = of_type(engine, RCE)
    assert len(a) == 1 and a[0].severity == "medium" and a[0].hosts == ["SRV07"] and a[0].dcs == []
    assert a[0].outcome == "Success" and name in a[0].description


def test_remote_execution_on_a_domain_controller_is_high() -> None:
    engine = run([ntlm_4776(0, "dadmin", "ADMINPC"), kerberos(4768, 1, "dadmin", "0x0"),
                  service_7045(10, "PSEXESVC", r"%SystemRoot%\PSEXESVC.exe")])
    a = of_type(engine, RCE)
    assert len(a) == 1 and (a[0].severity, a[0].dcs) == ("high", ["DC01"])
    assert "domain controller" in a[0].description


def test_remote_execution_seen_by_7045_and_4697_is_one_attempt() -> None:
    image = r"%SystemRoot%\PSEXESVC.exe"
    engine = run([service_7045(0, "PSEXESVC", image), service_4697(0.004, "PSEXESVC", image)])
    assert [a.count for a in of_type(engine, RCE)] == [1]
    assert [a.count for a in of_type(engine, SSC)] == [1]


@pytest.mark.parametrize("name,image", [("Spooler", r"%SystemRoot%\System32\spoolsv.exe"),
                                        ("gupdate", r'"C:\Program Files (x86)\Google\Update\GoogleUpdate.exe" /svc'),
                                        ("wuauserv", r"%systemroot%\system32\svchost.exe -k netsvcs -p")])
def test_ordinary_services_are_not_remote_execution(name: str, image: str) -> None:
    assert of_type(run([service_7045(0, name, image)]), RCE) == []


def test_real_psexec_recording_raises_remote_execution() -> None:
    events, _ = read_file_events(corpus("evtx/evtx-to-mitre-attack/ID7045-7036 PSexec service installation.evtx"))
    a = of_type(run(events), RCE)
    assert len(a) == 1 and "PSEXESVC" in a[0].description and a[0].evidence[0].record_id == 471480
