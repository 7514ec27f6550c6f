"""Directory access (4662) and lateral movement: dcsync, dpapi-backup-key, pass-the-hash and
remote-service-installation, on the public recordings and on synthetic edges of the reference's
layouts (reference/dc-log-alerts.md A1, A9, B1, B7, B16)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

import pytest

from conftest import corpus
from dclog_accesskit import (FILTERED_SET, GET_CHANGES, GROUP_CLASS, SERVER, access, installed_4697,
                             logon, pipe_write, secret_read)
from dclog_accountskit import account as account_event
from eventfactory import T0, kerberos, ntlm_4776, service_7045
from dcsentry.activities.builder import ActivityBuilder
from dcsentry.activities.context import Inventory
from dcsentry.activities.dclog.access import DirectoryAccess
from dcsentry.alerts import Alert
from dcsentry.config import Detection
from dcsentry.detectors.baseline import Baseline
from dcsentry.detectors.engine import DetectionEngine
from dcsentry.formats import ReadStats
from dcsentry.hunt import hunt
from dcsentry.model import WindowsEvent

DAY = 86400.0
EVTX = "dc-log/evtx/evtx-to-mitre-attack/"
SAMPLES = "dc-log/evtx/evtx-attack-samples/"
OTRF = "dc-log/json/otrf-security-datasets/"


def run(events: Iterable[WindowsEvent], cfg: Detection | None = None, baseline: Baseline | None = None,
        inventory: Inventory | None = None) -> DetectionEngine:
    engine = DetectionEngine(cfg or Detection(), baseline, inventory=inventory)
    for ev in events:
        engine.feed(ev)
    engine.finish()
    return engine


def alerts(engine: DetectionEngine, type_: str) -> list[Alert]:
    return sorted((a for a in engine.alerts.values() if a.type == type_), key=lambda a: a.start)


def hunted(rel: str, type_: str) -> list[Alert]:
    found, _ = hunt([str(corpus(rel))], Detection(), ReadStats())
    return [a for a in found if a.type == type_]


def learned(scope: str, days: float) -> Baseline:
    """A baseline whose learning for `scope` started `days` before T0."""
    b = Baseline()
    b.clock.started[scope] = (T0 - timedelta(days=days)).timestamp()
    return b


# -- the reader ---------------------------------------------------------------------------------

def test_reader_drops_zero_mask_reads_and_parses_the_rest() -> None:
    b = ActivityBuilder()
    assert [a for a in b.feed(access(0, mask="0x0")) if isinstance(a, DirectoryAccess)] == []
    b.feed(logon(0.5, ip="10.0.0.66"))
    (act,) = [a for a in b.feed(access(1)) if isinstance(a, DirectoryAccess)]
    assert act.object_type == "19195a5b-6da0-11d0-afd3-00c04fd930c9"
    assert act.object_name == "0b32719a-29a5-4ad5-b9dc-56200eba0ce0"
    assert act.access_mask == 0x100 and act.object_server == "DS" and act.operation == "Object Access"
    assert act.rights == ["%%7688", "1131f6ad-9c07-11d1-f79f-00c04fc2dcd2", "19195a5b-6da0-11d0-afd3-00c04fd930c9"]
    assert act.session is not None and act.source == "10.0.0.66"
    assert "DC01" in b.ctx.inventory.dc_names and act.kind == "access" and act.subject == act.object_name
    b.feed(access(2, server="WMI", object_type="WMI Namespace", object_name="ROOT\\CIMV2", dc=SERVER))
    assert "SRV01" not in b.ctx.inventory.dc_names  # WMI auditing logs 4662 on any host


# -- dcsync: corpus -----------------------------------------------------------------------------

@pytest.mark.parametrize("rel, who, source, count", [
    (EVTX + "ID4662-5145-DCSync attack using SecretDump.evtx", "OFFSEC\\hack1", "10.23.123.11", 207),
    (EVTX + "ID4662-DCsync attack using Mimikatz.evtx", "OFFSEC\\admmig", "10.23.23.9", 3),
    (OTRF + "covenant_dcsync_dcerpc_drsuapi_DsGetNCChanges.zip", "THESHIRE\\pgustavo", "172.18.39.5", 3),
])
def test_dcsync_recordings_raise_one_high_alert_with_the_source(rel: str, who: str, source: str, count: int) -> None:
    (a,) = hunted(rel, "dcsync")  # Mimikatz: ROOTDC2$ is a DC partner; SecretDump: PRTG-MON$ 0x0 reads
    assert a.accounts == [who] and a.hosts == [source] and a.severity == "high" and a.count == count
    assert "DS-Replication-Get-Changes-All" in a.details["rights"] and a.dcs
    assert who in a.description and source in a.description and "krbtgt" in a.description


@pytest.mark.parametrize("rel", [
    EVTX + "ID4662-4624-Honeypot account property read.evtx",
    EVTX + "ID4662-Domain group enumeration CME.evtx",
    OTRF + "empire_mimikatz_backupkeys_dcerpc_smb_lsarpc.zip",
    EVTX + "ID5136-Permission change on top root AD (DCsync).evtx",
    "evtx/evtx-attack-samples/privexchange_dirkjan.evtx",
])
def test_dcsync_look_alike_recordings_stay_quiet(rel: str) -> None:
    assert hunted(rel, "dcsync") == []


# -- dcsync: synthetic edges --------------------------------------------------------------------

def test_dcsync_synthetic_get_changes_alone_is_medium_then_grows_high() -> None:
    e = run([logon(0), access(1, right=GET_CHANGES)])
    (a,) = alerts(e, "dcsync")
    assert a.severity == "medium" and a.hosts == ["10.0.0.66"] and a.learning
    e = run([logon(0), access(1, right=GET_CHANGES), access(1.1, right=FILTERED_SET)])
    (a,) = alerts(e, "dcsync")
    assert a.severity == "high" and a.count == 2
    assert a.details["rights"] == ["DS-Replication-Get-Changes", "DS-Replication-Get-Changes-In-Filtered-Set"]


def test_dcsync_synthetic_rendered_names_count() -> None:
    ev = access(1, object_type="domainDNS", right="Replicating Directory Changes All")
    (a,) = alerts(run([ev]), "dcsync")
    assert a.details["rights"] == ["DS-Replication-Get-Changes-All"] and a.hosts == []
    assert "source unknown" in a.description


def test_dcsync_synthetic_other_objects_and_reads_are_quiet() -> None:
    e = run([access(1, object_type=GROUP_CLASS), access(2, mask="0x0"), access(3, mask="0x10"),
             access(4, right="{1131f6ac-9c07-11d1-f79f-00c04fc2dcd2}")])  # Manage-Topology is not DCSync
    assert alerts(e, "dcsync") == []


def test_dcsync_synthetic_computer_accounts_empty_inventory_vs_known_non_dc() -> None:
    assert alerts(run([access(1, actor="DC02$", rid=1001)]), "dcsync") == []  # a DC partner, as far as we know
    created = account_event(4741, 0, "EVIL$", "S-1-5-21-3457937927-2839227994-823803824-1301", actor=("eve", "x"))
    (a,) = alerts(run([created, access(1, actor="EVIL$", rid=1301)]), "dcsync")
    assert a.accounts == ["CONTOSO\\EVIL$"]
    inv = Inventory()
    inv.imported = True
    inv.learn("DC02$", kind="computer", source="imported").dc = True  # type: ignore[union-attr]
    inv.learn("SRV9$", kind="computer", source="imported")
    e = run([access(1, actor="DC02$", rid=1001), access(2, actor="SRV9$", rid=1302, logon_id="0x77")], inventory=inv)
    assert [a.key for a in alerts(e, "dcsync")] == ["srv9$"]


def test_dcsync_synthetic_allow_list_exact_name_and_address() -> None:
    cfg = Detection()
    cfg.dcsync.allowed = ["MSOL_0a1b2c3d", "svc_backup=10.0.0.9"]
    e = run([logon(0, "MSOL_0a1b2c3d", 1700, "0x10"), access(1, "MSOL_0a1b2c3d", 1700, "0x10"),
             logon(2, "svc_backup", 1701, "0x11", ip="10.0.0.9"), access(3, "svc_backup", 1701, "0x11"),
             logon(4, "MSOL_ffff", 1702, "0x12"), access(5, "MSOL_ffff", 1702, "0x12")], cfg)
    assert [a.key for a in alerts(e, "dcsync")] == ["msol_ffff"]  # a prefix is not an allow-list
    e = run([logon(0, "svc_backup", 1701, "0x11", ip="10.0.0.66"), access(1, "svc_backup", 1701, "0x11")], cfg)
    assert [a.hosts for a in alerts(e, "dcsync")] == [["10.0.0.66"]]  # pinned to 10.0.0.9: elsewhere alerts


def test_dcsync_synthetic_run_time_allow_list_from_the_console() -> None:
    """`replication_allowed` (the console's run-time list) joins the file's list, also when it changes
    while the engine runs (settings_watch calls `configure`)."""
    cfg = Detection()
    cfg.replication_allowed = ["MSOL_0a1b2c3d"]
    e = run([logon(0, "MSOL_0a1b2c3d", 1700, "0x10"), access(1, "MSOL_0a1b2c3d", 1700, "0x10")], cfg)
    assert alerts(e, "dcsync") == []
    from dcsentry.detectors.engine import DetectionEngine

    engine = DetectionEngine(Detection())
    engine.update_lists(cfg)
    for ev in (logon(0, "MSOL_0a1b2c3d", 1700, "0x10"), access(1, "MSOL_0a1b2c3d", 1700, "0x10")):
        engine.feed(ev)
    engine.finish()
    assert not [a for a in engine.alerts.values() if a.type == "dcsync"]


def test_dcsync_synthetic_learned_actor_quiet_after_learning_new_source_alerts() -> None:
    b = Baseline()
    e = run([logon(0, "svc_sync", 1800, "0x20", ip="10.0.0.7"), access(1, "svc_sync", 1800, "0x20")], baseline=b)
    assert [a.learning for a in alerts(e, "dcsync")] == [True]
    b = Baseline.load(b.dump())  # what a restarted sensor knows
    later = 16 * DAY
    e = run([logon(later, "svc_sync", 1800, "0x21", ip="10.0.0.7"), access(later + 1, "svc_sync", 1800, "0x21"),
             logon(later + 2, "eve", 1601, "0x22", ip="10.0.0.66"), access(later + 3, "eve", 1601, "0x22"),
             logon(later + 4, "svc_sync", 1800, "0x23", ip="10.0.0.99"), access(later + 5, "svc_sync", 1800, "0x23")],
            baseline=b)
    got = {(a.key, tuple(a.hosts), a.learning) for a in alerts(e, "dcsync")}
    assert got == {("eve", ("10.0.0.66",), False), ("svc_sync", ("10.0.0.99",), False)}
    assert b.table("dcsync_actors")["svc_sync"] == ["10.0.0.7"]


# -- dpapi-backup-key ---------------------------------------------------------------------------

def test_dpapi_backup_key_recording() -> None:
    (a,) = hunted(OTRF + "empire_mimikatz_backupkeys_dcerpc_smb_lsarpc.zip", "dpapi-backup-key")
    assert a.accounts == ["THESHIRE\\pgustavo"] and a.hosts == ["172.18.39.5"] and a.dcs == ["MORDORDC"]
    assert a.count == 4 and a.severity == "high" and "DPAPI" in a.description


def test_dpapi_synthetic_dc_allowed_and_other_secrets_quiet() -> None:
    cfg = Detection()
    cfg.dcsync.dpapi_allowed = ["recovery_admin"]
    e = run([secret_read(1, actor="DC02$", rid=1001), secret_read(2, actor="recovery_admin", rid=1900),
             secret_read(3, secret="Policy\\Secrets\\$MACHINE.ACC"), secret_read(4, actor="eve")], cfg)
    (a,) = alerts(e, "dpapi-backup-key")
    assert a.key == "eve" and a.count == 1


# -- pass-the-hash ------------------------------------------------------------------------------

def test_pass_the_hash_recordings() -> None:
    (a,) = hunted(EVTX + "ID4624-Mimikatz Pass the hash.evtx", "pass-the-hash")
    assert a.details["variant"] == "injected" and a.severity == "high" and "admmig" in a.accounts[0]
    (a,) = hunted(SAMPLES + "ImpersonateUser-via local Pass The Hash Sysmon and Security.evtx", "pass-the-hash")
    assert a.details["variant"] == "keyless" and a.hosts == ["localhost"] and a.severity == "high"
    assert not a.learning


@pytest.mark.parametrize("rel", [
    EVTX + "ID4688,4648,4624-Runas execution with different user.evtx",  # runas: type 2, a typed password
    SAMPLES + "privesc_KrbRelayUp_windows_4624.evtx",  # Kerberos, not NTLM
])
def test_pass_the_hash_look_alike_recordings_stay_quiet(rel: str) -> None:
    assert hunted(rel, "pass-the-hash") == []


def test_pass_the_hash_synthetic_injected_vs_interactive_runas() -> None:
    runas = logon(0, logon_type="2", package="Negotiate", process="seclogo", ip="::1", host=SERVER,
                  subject_name="admin", subject_rid=500)
    pth = logon(1, "admin", 500, "0x99", logon_type="9", package="Negotiate", process="seclogo", ip="::1",
                host=SERVER, subject_name="admin", subject_rid=500)
    (a,) = alerts(run([runas, pth]), "pass-the-hash")
    assert a.details["variant"] == "injected" and a.details["logged_by"] == "SRV01"


def test_pass_the_hash_synthetic_keyless_ntlm_rules() -> None:
    quiet = [
        logon(0, "ANONYMOUS LOGON", 0, "0x1", package="NTLM", process="NtLmSsp", lm="NTLM V1", host=SERVER),
        logon(1, "WS1$", 1500, "0x2", package="NTLM", process="NtLmSsp", lm="NTLM V2", host=SERVER),  # relays
        logon(2, "eve", 1601, "0x3", package="NTLM", process="NtLmSsp", lm="NTLM V2", key_length="128", host=SERVER),
        logon(3, "eve", 1601, "0x4", package="Kerberos", process="Kerberos", host=SERVER),
    ]
    assert alerts(run(quiet), "pass-the-hash") == []
    keyless = logon(4, "eve", 1601, "0x5", package="NTLM", process="NtLmSsp", lm="NTLM V2", ip="10.0.0.66",
                    workstation="KALI", host=SERVER)
    (a,) = alerts(run([keyless]), "pass-the-hash")
    assert a.severity == "medium" and a.learning and a.hosts == ["10.0.0.66"]


def test_pass_the_hash_synthetic_keyless_device_learned_then_quiet_new_one_alerts() -> None:
    b = learned("pth-keyless:SRV01", 20)
    b.table("pth_keyless_ntlm")[("scan", "10.0.0.40")] = T0.timestamp() - 10 * DAY
    cfg = Detection()
    cfg.pass_the_hash.allowed_sources = ["10.0.0.41"]
    evs = [logon(i, acct, 1700 + i, f"0x{i + 10:x}", package="NTLM", process="NtLmSsp", lm="NTLM V2", ip=ip,
                 host=SERVER) for i, (acct, ip) in enumerate([("scan", "10.0.0.40"), ("scan", "10.0.0.41"),
                                                            ("eve", "10.0.0.66")])]
    (a,) = alerts(run(evs, cfg, b), "pass-the-hash")
    assert a.key == "eve|10.0.0.66" and not a.learning


def test_pass_the_hash_synthetic_unusual_ntlm_for_a_kerberos_account() -> None:
    cfg = Detection()
    profile = [kerberos(4768, i, "alice", "0x0", ip="::ffff:10.0.0.21") for i in range(20)]
    home = [kerberos(4768, 30, "WKS21$", "0x0", ip="::ffff:10.0.0.21", sid="S-1-5-21-1-2-3-1400")]
    own = ntlm_4776(40, "alice", "WKS21")  # her own computer: seen through its address
    other = ntlm_4776(50, "alice", "WKS99")
    e = run([*profile, *home, own, other], cfg)
    (a,) = alerts(e, "pass-the-hash")
    assert a.key == "alice|WKS99" and a.details["variant"] == "unusual-ntlm" and a.learning
    assert a.details["kerberos_before"] == 20 and a.dcs == ["DC01"]
    assert alerts(run([*profile[:19], other], cfg), "pass-the-hash") == []  # 19 < min_kerberos
    b = learned("pth-ntlm:DC01", 30)
    (a,) = alerts(run([*profile, other], cfg, b), "pass-the-hash")
    assert not a.learning
    mostly_ntlm = [ntlm_4776(i, "bob", "WKS5") for i in range(5)] + [kerberos(4768, 10 + i, "bob", "0x0")
                                                                       for i in range(20)]
    assert alerts(run([*mostly_ntlm, ntlm_4776(60, "bob", "WKS6")], cfg), "pass-the-hash") == []


# -- remote-service-installation ----------------------------------------------------------------

def test_remote_service_recording_sam_the_admin() -> None:
    (a,) = hunted("evtx/evtx-to-mitre-attack/ID47x,4661-4662,5136,4688,4697-SAM the admin (CVE-2021-42287).evtx",
                  "remote-service-installation")
    assert a.accounts == ["admmhorvath"] and a.hosts == ["10.23.123.11"] and a.dcs == ["ROOTDC1"]
    assert a.details["service"] == "BTOBTO" and a.severity == "high" and len(a.evidence) == 2


@pytest.mark.parametrize("rel", ["evtx/evtx-to-mitre-attack/ID7045-7036 PSexec service installation.evtx",
                                 "json/otrf-security-datasets/aptsimulator_cobaltstrike.zip",
                                 "evtx/omerbenamram-evtx/system.evtx"])
def test_remote_service_recordings_without_a_remote_trace_stay_quiet(rel: str) -> None:
    assert hunted(rel, "remote-service-installation") == []


def test_remote_service_synthetic_network_logon_any_image() -> None:
    evs = [logon(0, logon_id="0x1376020", ip="10.0.0.66", host=SERVER),
           installed_4697(1, "UpdateSvc", "C:\\Program Files\\Vendor\\update.exe")]
    (a,) = alerts(run(evs), "remote-service-installation")
    assert a.hosts == ["10.0.0.66"] and a.accounts == ["eve"] and a.severity == "medium" and a.dcs == []
    assert "UpdateSvc" in a.description and "SRV01" in a.description and a.protocol == "Kerberos"
    local = [logon(0, logon_id="0x1376020", logon_type="2", ip="-", host=SERVER),
             installed_4697(1, "UpdateSvc", "C:\\x.exe")]
    assert alerts(run(local), "remote-service-installation") == []


def test_remote_service_synthetic_twin_4697_after_7045_is_one_install() -> None:
    evs = [logon(0, logon_id="0x1376020", ip="10.0.0.66", package="NTLM", process="NtLmSsp", lm="NTLM V2",
                 host=SERVER),
           service_7045(1, "UpdateSvc", "C:\\x.exe", host=SERVER), installed_4697(1.2, "UpdateSvc", "C:\\x.exe")]
    (a,) = alerts(run(evs), "remote-service-installation")
    assert a.count == 1 and a.details["keyless_ntlm"] and a.severity == "high"


@pytest.mark.parametrize("delay, alerted", [(29.0, True), (31.0, False)])
def test_remote_service_synthetic_7045_after_svcctl_write_window(delay: float, alerted: bool) -> None:
    evs = [pipe_write(0), service_7045(delay, "UpdateSvc", "C:\\x.exe", host=SERVER)]
    got = alerts(run(evs), "remote-service-installation")
    assert bool(got) is alerted
    if got:
        assert got[0].hosts == ["10.0.0.66"] and got[0].accounts == ["eve"] and len(got[0].evidence) == 2


def test_remote_service_synthetic_svcctl_local_or_read_only_is_quiet() -> None:
    evs = [pipe_write(0, ip="127.0.0.1"), pipe_write(1, mask="0x1"), pipe_write(2, pipe="srvsvc"),
           service_7045(3, "UpdateSvc", "C:\\x.exe", host=SERVER)]
    assert alerts(run(evs), "remote-service-installation") == []


def test_remote_service_synthetic_learned_deployment_and_allowed_source() -> None:
    b = learned("remote-service", 10)
    b.table("remote_services")[("sccm_push", "10.0.0.5", "ccmsetup")] = T0.timestamp() - 9 * DAY
    cfg = Detection()
    cfg.remote_service.allowed_sources = ["PAW01"]
    evs = [logon(0, "sccm_push", 1750, "0x50", ip="10.0.0.5", host=SERVER),
           installed_4697(1, "ccmsetup", "C:\\Windows\\ccmsetup\\ccmsetup.exe", "sccm_push", 1750, "0x50"),
           logon(2, "admin", 500, "0x51", ip="10.0.0.8", workstation="PAW01", host=SERVER),
           installed_4697(3, "PSEXESVC", "%SystemRoot%\\PSEXESVC.exe", "admin", 500, "0x51"),
           logon(4, "sccm_push", 1750, "0x52", ip="10.0.0.77", host=SERVER),
           installed_4697(5, "ccmsetup", "C:\\Windows\\ccmsetup\\ccmsetup.exe", "sccm_push", 1750, "0x52")]
    (a,) = alerts(run(evs, cfg, b), "remote-service-installation")
    assert a.hosts == ["10.0.0.77"] and not a.learning


def test_dcsync_synthetic_dc_account_from_an_address_no_dc_used() -> None:
    dc_tgt = kerberos(4768, 0, "DC02$", "0x0", ip="::ffff:10.0.0.2",
                      sid="S-1-5-21-3457937927-2839227994-823803824-1001")
    promoted = account_event(4742, -10, "DC02$", "S-1-5-21-3457937927-2839227994-823803824-1001",
                             UserAccountControl="%%2088")
    partner = [logon(1, "DC02$", 1001, "0x60", ip="10.0.0.2"), access(2, "DC02$", 1001, "0x60")]
    assert alerts(run([promoted, dc_tgt, *partner]), "dcsync") == []
    stolen = [logon(3, "DC02$", 1001, "0x61", ip="10.0.0.66", package="NTLM", process="NtLmSsp", lm="NTLM V2",
                    key_length="128"), access(4, "DC02$", 1001, "0x61")]
    (a,) = alerts(run([promoted, dc_tgt, *partner, *stolen]), "dcsync")
    assert a.hosts == ["10.0.0.66"] and a.details["dc_account_elsewhere"] and not a.learning
    assert "Zerologon" in a.description
    assert alerts(run([*partner, *stolen]), "dcsync") == []  # the DC's addresses unknown: nothing tells


def test_remote_service_synthetic_4697_without_logon_but_svcctl_write_of_its_logon() -> None:
    evs = [pipe_write(0, logon_id="0x1376020"), installed_4697(1, "UpdateSvc", "C:\\x.exe", logon_id="0x1376020")]
    (a,) = alerts(run(evs), "remote-service-installation")
    assert a.hosts == ["10.0.0.66"] and a.details["evidence_path"] == "5145 svcctl write + service install"
    evs = [pipe_write(0, logon_id="0x1376020"), installed_4697(1, "UpdateSvc", "C:\\x.exe", logon_id="0x3e7")]
    assert alerts(run(evs), "remote-service-installation") == []


def test_remote_service_synthetic_svcctl_7045_then_its_4697_twin_is_one_install() -> None:
    evs = [logon(0, logon_id="0x1376020", ip="10.0.0.66", host=SERVER), pipe_write(0.5),
           service_7045(1, "UpdateSvc", "C:\\x.exe", host=SERVER), installed_4697(1.2, "UpdateSvc", "C:\\x.exe")]
    (a,) = alerts(run(evs), "remote-service-installation")
    assert a.count == 1 and len(a.evidence) == 2 and a.details["session"]["source_ip"] == "10.0.0.66"
    assert a.details["evidence_path"] == "5145 svcctl write + service install"
