"""Events -> activities: status decoding, the NTLM 4776+8004 join, de-duplication of double views,
group changes and services. Events are synthetic (tests/eventfactory.py) and read back through the
real XML reader; tests about 8004 and 4757, which no public recording holds, say `synthetic`."""

from __future__ import annotations

import pytest

from dcsentry.activities import AuthActivity, DcActivity, GroupChange, ServiceCreation
from dcsentry.activities.builder import ActivityBuilder
from dcsentry.activities.sensitive import SensitiveGroups
from dcsentry.model import WindowsEvent

from eventfactory import (DC, DOMAIN_SID, group_change, kerberos, logon_4625, ntlm_4776, ntlm_8004, service_4697,
                          service_7045)


def build(events: list[WindowsEvent], builder: ActivityBuilder | None = None) -> list:
    """Every activity the builder gives for `events`, including those released at the end."""
    b = builder or ActivityBuilder()
    out = [a for ev in events for a in b.feed(ev)]
    return out + b.flush()


def one(events: list[WindowsEvent], builder: ActivityBuilder | None = None):
    """The one activity of the 2020 sensor's views (a 4768 is also a DC-log `TicketRequest`)."""
    acts = [a for a in build(events, builder) if not isinstance(a, DcActivity)]
    assert len(acts) == 1, acts
    return acts[0]


# -- 4776 status codes (events.md "Winlogon Error Codes") ------------------------------------------
STATUS_4776 = [
    ("0x0", "success"), ("0xc0000064", "no-such-user"), ("0xc000006a", "wrong-password"),
    ("0xc000006d", "bad-credentials"), ("0xc000006f", "outside-logon-hours"),
    ("0xc0000070", "workstation-restricted"), ("0xc0000071", "password-expired"), ("0xc0000072", "disabled"),
    ("0xc0000193", "account-expired"), ("0xc0000224", "must-change-password"), ("0xc0000234", "locked"),
    ("0xc0000371", "no-secret"),
]


@pytest.mark.parametrize("status,result", STATUS_4776)
@pytest.mark.parametrize("case", [str.lower, str.upper], ids=["lower", "upper"])
def test_4776_status_decoding(status: str, result: str, case) -> None:
    text = "0x" + case(status[2:])
    act = one([ntlm_4776(0, "dadmin", "WIN81", text)])
    assert isinstance(act, AuthActivity)
    assert (act.result, act.protocol, act.account, act.source_host, act.reporter) == (
        result, "NTLM", "dadmin", "WIN81", "DC01")
    assert act.failed == (result != "success")
    assert act.server is None and act.source == "WIN81"


def test_4776_unknown_status_is_a_failure_of_kind_other() -> None:
    act = one([ntlm_4776(0, "dadmin", "WIN81", "0xc0000413")])
    assert act.result == "other" and act.failed


# -- NTLM join: 4776 + 8004 on the same DC ----------------------------------------------------------
def test_8004_after_4776_joins_synthetic() -> None:
    e1, e2 = ntlm_4776(0, "backup", "WIN-SHKRDLDI338", "0xc000006a"), ntlm_8004(1.5, "VICTIM_PC", "backup", "WIN-SHKRDLDI338")
    act = one([e1, e2])
    assert act.server == "VICTIM_PC" and act.result == "wrong-password"
    assert [(e.event_id, e.record_id) for e in act.evidence] == [(4776, e1.record_id), (8004, e2.record_id)]


def test_8004_before_4776_joins_synthetic() -> None:
    act = one([ntlm_8004(0, "FILESRV", "backup", "WIN81"), ntlm_4776(2, "backup", "WIN81")])
    assert act.server == "FILESRV" and act.result == "success"
    assert {e.event_id for e in act.evidence} == {4776, 8004}


@pytest.mark.parametrize("eid", [8005, 8006])
def test_8005_8006_share_the_8004_template_and_join_synthetic(eid: int) -> None:
    act = one([ntlm_4776(0, "backup", "WIN81"), ntlm_8004(0.2, "FILESRV", "backup", "WIN81", event_id=eid)])
    assert act.server == "FILESRV"


def test_8004_matches_case_and_backslash_insensitively_synthetic() -> None:
    """8004's WorkstationName may carry a leading `\\\\`; user names differ in case between views."""
    act = one([ntlm_4776(0, "Backup", "win81"), ntlm_8004(1, "filesrv", "BACKUP", "\\\\WIN81")])
    assert act.server == "FILESRV"


def test_8004_at_exactly_the_window_joins_just_after_does_not_synthetic() -> None:
    assert one([ntlm_4776(0, "bob", "WIN81"), ntlm_8004(5.0, "SRV", "bob", "WIN81")]).server == "SRV"
    assert one([ntlm_4776(0, "bob", "WIN81"), ntlm_8004(5.01, "SRV", "bob", "WIN81")]).server is None
    assert one([ntlm_8004(0, "SRV", "bob", "WIN81"), ntlm_4776(5.01, "bob", "WIN81")]).server is None


@pytest.mark.parametrize("kw", [{"dc": "DC02.contoso.local"}, {"user": "alice"}, {"workstation": "WIN82"}],
                         ids=["other-dc", "other-account", "other-workstation"])
def test_8004_for_something_else_does_not_join_synthetic(kw: dict) -> None:
    args = {"server": "SRV", "user": "bob", "workstation": "WIN81"} | kw
    acts = build([ntlm_4776(0, "bob", "WIN81"), ntlm_8004(1, **args)])
    assert [a.server for a in acts] == [None]


@pytest.mark.parametrize("channel", ["Security", "System", "Application"])
def test_8004_number_on_another_channel_is_not_the_ntlm_audit_synthetic(channel: str) -> None:
    acts = build([ntlm_8004(0, "SRV", "bob", "WIN81", channel=channel), ntlm_4776(1, "bob", "WIN81")])
    assert [(a.server, len(a.evidence)) for a in acts] == [(None, 1)]


def test_4776_without_8004_is_released_once_the_window_has_passed_synthetic() -> None:
    b = ActivityBuilder(join_window=5.0)
    assert b.feed(ntlm_4776(0, "bob", "WIN81", "0xc000006a")) == []  # held: its 8004 may still come
    early = b.feed(service_7045(4.9, "Spooler2", r"C:\Windows\System32\spoolsv.exe"))  # clock still in the window
    assert [type(a).__name__ for a in early] == ["ServiceCreation"]
    released = b.feed(ntlm_4776(5.5, "carol", "WIN82"))  # the stream's clock moved past the window
    assert [(a.account, a.server) for a in released] == [("bob", None)]
    late = b.feed(ntlm_8004(6, "SRV", "bob", "WIN81"))  # too late to join: nothing changes, nothing new
    assert late == [] and released[0].server is None
    assert [a.account for a in b.flush()] == ["carol"]


def test_4776_waiting_is_released_at_flush_synthetic() -> None:
    b = ActivityBuilder()
    assert b.feed(ntlm_4776(0, "bob", "WIN81")) == []
    acts = b.flush()
    assert [(a.account, a.server) for a in acts] == [("bob", None)]
    assert b.flush() == []


def test_one_8004_joins_one_4776_only_synthetic() -> None:
    acts = build([ntlm_4776(0, "bob", "WIN81", "0xc000006a"), ntlm_4776(3, "bob", "WIN81", "0xc000006a"),
                  ntlm_8004(3.5, "SRV", "bob", "WIN81")])
    assert sorted(str(a.server) for a in acts) == ["None", "SRV"]


def test_join_keeps_every_attempt_of_a_burst_synthetic() -> None:
    """Twenty attempts each with its 8004, interleaved: twenty activities, each with its server."""
    events = []
    for i in range(20):
        events += [ntlm_4776(i * 0.1, "bob", "WIN81", "0xc000006a"), ntlm_8004(i * 0.1 + 0.01, "SRV", "bob", "WIN81")]
    acts = build(events)
    assert len(acts) == 20 and all(a.server == "SRV" and len(a.evidence) == 2 for a in acts)


# -- the same failure seen twice: 4625 on the host accessed, 4776 on the DC ----------------------------
@pytest.mark.parametrize("first", ["4776", "4625"])
def test_4625_and_4776_of_one_failure_count_once(first: str) -> None:
    dc_view = ntlm_4776(0, "bob", "WIN81", "0xc000006a")
    host_view = logon_4625(1.5, "bob", workstation="WIN81")
    events = [dc_view, host_view] if first == "4776" else [logon_4625(0, "bob", workstation="WIN81"),
                                                          ntlm_4776(1.5, "bob", "WIN81", "0xc000006a")]
    act = one(events)
    assert act.result == "wrong-password" and act.evidence[0].event_id == int(first)


@pytest.mark.parametrize("gap,account,expected", [(2.5, "bob", 2), (0.5, "alice", 2), (2.0, "bob", 1)])
def test_4625_and_4776_apart_or_different_are_two(gap: float, account: str, expected: int) -> None:
    acts = build([ntlm_4776(0, "bob", "WIN81", "0xc000006a"), logon_4625(gap, account, workstation="WIN81")])
    assert len(acts) == expected


def test_two_real_failures_each_seen_twice_are_two() -> None:
    acts = build([ntlm_4776(0, "bob", "WIN81", "0xc000006a"), ntlm_4776(0.3, "bob", "WIN81", "0xc000006a"),
                  logon_4625(0.5, "bob", workstation="WIN81"), logon_4625(0.8, "bob", workstation="WIN81")])
    assert len(acts) == 2


# -- 4625 Status / SubStatus ------------------------------------------------------------------------------
@pytest.mark.parametrize("status,sub,result", [
    ("0xc000006d", "0xc000006a", "wrong-password"), ("0xC000006D", "0xC0000064", "no-such-user"),
    ("0xc000006e", "0xc0000072", "disabled"), ("0xc000006e", "0xc000006f", "outside-logon-hours"),
    ("0xc000006d", "0xc0000071", "password-expired"), ("0xc0000234", "0x0", "locked"),
    ("0xc000015b", "0x0", "logon-type-not-granted"), ("0xc000006d", "0x0", "bad-credentials"),
])
def test_4625_status_and_substatus(status: str, sub: str, result: str) -> None:
    act = one([logon_4625(0, "bob", status, sub, ip="::ffff:10.0.0.5", logon_type="3")])
    assert (act.result, act.protocol, act.source_ip, act.source, act.logon_type, act.reporter) == (
        result, "NTLM", "10.0.0.5", "10.0.0.5", 3, "SRV01")


def test_4625_without_address_falls_back_to_workstation() -> None:
    act = one([logon_4625(0, "bob", ip="-", workstation="\\\\Kali")])
    assert (act.source_ip, act.source_host, act.source) == ("", "KALI", "KALI")


def test_4625_kerberos_package_is_kerberos() -> None:
    assert one([logon_4625(0, "bob", package="Kerberos")]).protocol == "Kerberos"


# -- Kerberos 4768 / 4771 ----------------------------------------------------------------------------------
@pytest.mark.parametrize("eid,status,result", [
    (4768, "0x0", "success"), (4768, "0x6", "no-such-user"), (4768, "0x12", "revoked"),
    (4768, "0x17", "password-expired"), (4768, "0x25", "clock-skew"), (4771, "0x18", "wrong-password"),
    (4771, "0x12", "revoked"),
])
def test_kerberos_error_codes(eid: int, status: str, result: str) -> None:
    act = one([kerberos(eid, 0, "bob", status, ip="::ffff:10.0.0.60")])
    assert (act.protocol, act.result, act.source_ip, act.reporter, act.account) == (
        "Kerberos", result, "10.0.0.60", "DC01", "bob")


def test_kerberos_loopback_address() -> None:
    assert one([kerberos(4768, 0, "bob", "0x0", ip="::1")]).source == "localhost"


# -- group membership changes ------------------------------------------------------------------------------
@pytest.mark.parametrize("eid,scope,added", [(4728, "global", True), (4729, "global", False),
                                             (4732, "local", True), (4733, "local", False),
                                             (4756, "universal", True)])
def test_group_scope_and_direction_from_event_id(eid: int, scope: str, added: bool) -> None:
    gc = one([group_change(eid, 0, "Team", f"{DOMAIN_SID}-3001")])
    assert isinstance(gc, GroupChange)
    assert (gc.scope, gc.added, gc.dc, gc.member, gc.actor, gc.sensitive) == (
        scope, added, "DC01", "eve", "CONTOSO\\dadmin", None)


def test_4757_universal_removal_synthetic() -> None:
    """No public recording holds a 4757: built from events.md's group-event template."""
    gc = one([group_change(4757, 0, "Enterprise Admins", f"{DOMAIN_SID}-519")])
    assert (gc.scope, gc.added, gc.group_name) == ("universal", False, "Enterprise Admins")
    assert gc.sensitive and "519" in gc.sensitive


@pytest.mark.parametrize("sid", [f"S-1-5-32-{r}" for r in (544, 547, 548, 549, 550, 551, 552, 556, 557)])
def test_builtin_groups_sensitive_by_sid(sid: str) -> None:
    gc = one([group_change(4732, 0, "SomeName", sid, group_domain="Builtin")])
    assert gc.sensitive is not None and sid in gc.sensitive


@pytest.mark.parametrize("rid", [498, 512, 516, 518, 519, 520, 521, 526, 527])
def test_domain_groups_sensitive_by_rid(rid: int) -> None:
    gc = one([group_change(4728 if rid in (512, 516, 520, 521, 526) else 4756, 0, "Renamed", f"{DOMAIN_SID}-{rid}")])
    assert gc.sensitive is not None and str(rid) in gc.sensitive


@pytest.mark.parametrize("name,sid", [
    ("Domain Users", f"{DOMAIN_SID}-513"), ("Domain Computers", f"{DOMAIN_SID}-515"), ("Users", "S-1-5-32-545"),
    ("Remote Desktop Users", "S-1-5-32-555"), ("AccountOperators", f"{DOMAIN_SID}-6605"),
    ("Group01", f"{DOMAIN_SID}-1512"), ("Guests", "S-1-5-32-546"),
])
def test_ordinary_groups_are_not_sensitive(name: str, sid: str) -> None:
    """Incl. the MS doc sample's custom "AccountOperators" (RID 6605) and a RID merely ending in 512."""
    assert one([group_change(4732, 0, name, sid)]).sensitive is None


@pytest.mark.parametrize("name", ["DnsAdmins", "dnsadmins", "Microsoft Exchange Servers"])
def test_groups_without_fixed_rid_sensitive_by_name(name: str) -> None:
    assert one([group_change(4732, 0, name, f"{DOMAIN_SID}-1101")]).sensitive is not None


@pytest.mark.parametrize("name,sid", [("Administrateurs", "S-1-5-32-544"), ("Administratoren", "S-1-5-32-544"),
                                      ("Domänen-Admins", f"{DOMAIN_SID}-512"), ("Opérateurs de sauvegarde", "S-1-5-32-551")])
def test_renamed_or_localised_builtin_still_sensitive_by_sid(name: str, sid: str) -> None:
    assert one([group_change(4732, 0, name, sid)]).sensitive is not None


def test_user_defined_sensitive_groups_by_name_and_sid() -> None:
    extra = SensitiveGroups(["Tier0-Operators", f"{DOMAIN_SID}-4242".lower()])
    b = ActivityBuilder(extra)
    by_name, by_sid, other = build([group_change(4728, 0, "tier0-operators", f"{DOMAIN_SID}-4100"),
                                    group_change(4728, 1, "Vault", f"{DOMAIN_SID}-4242"),
                                    group_change(4728, 2, "Vault2", f"{DOMAIN_SID}-4243")], b)
    assert by_name.sensitive and by_sid.sensitive and other.sensitive is None
    assert one([group_change(4728, 0, "Tier0-Operators", f"{DOMAIN_SID}-4100")]).sensitive is None  # default list


def test_member_without_dn_is_shown_by_sid() -> None:
    gc = one([group_change(4732, 0, "Administrators", "S-1-5-32-544", member_name="-", member_sid="S-1-5-20")])
    assert gc.member == "S-1-5-20" and gc.member_sid == "S-1-5-20"


# -- services ------------------------------------------------------------------------------------------------
def test_service_from_7045_field_names() -> None:
    svc = one([service_7045(0, "PSEXESVC", r"%SystemRoot%\PSEXESVC.exe", host="dc01.contoso.local",
                            user_sid=f"{DOMAIN_SID}-500")])
    assert isinstance(svc, ServiceCreation)
    assert (svc.host, svc.name, svc.image_path, svc.service_type, svc.start_type, svc.account, svc.creator_sid,
            svc.creator_name) == ("DC01", "PSEXESVC", r"%SystemRoot%\PSEXESVC.exe", "user mode service",
                                  "demand start", "LocalSystem", f"{DOMAIN_SID}-500", None)
    assert svc.evidence[0].event_id == 7045 and svc.evidence[0].computer == "dc01.contoso.local"


def test_service_from_4697_field_names() -> None:
    svc = one([service_4697(0, "AppHostSvc", r"%windir%\system32\svchost.exe -k apphost", subject="WIN-GG82$",
                            subject_sid="S-1-5-18")])
    assert (svc.host, svc.name, svc.image_path, svc.service_type, svc.start_type, svc.account, svc.creator_sid,
            svc.creator_name) == ("DC01", "AppHostSvc", r"%windir%\system32\svchost.exe -k apphost", "0x10", "3",
                                  "LocalSystem", "S-1-5-18", "WIN-GG82$")


@pytest.mark.parametrize("first", [7045, 4697])
def test_7045_and_its_4697_twin_are_one_service_creation(first: int) -> None:
    """One install logged by SCM (System) and by auditing (Security) is one creation, not two."""
    a = service_7045(0, "BTOBTO", r"%COMSPEC% /Q /c echo cd > \\127.0.0.1\C$\__output")
    b = service_4697(0.001, "BTOBTO", r"%COMSPEC% /Q /c echo cd > \\127.0.0.1\C$\__output")
    svc = one([a, b] if first == 7045 else [b, a])
    assert svc.evidence[0].event_id == first


def test_two_different_services_at_once_stay_two() -> None:
    acts = build([service_7045(0, "svcA", r"C:\a.exe"), service_4697(0.1, "svcB", r"C:\b.exe"),
                  service_7045(10, "svcB", r"C:\b.exe")])
    assert [a.name for a in acts] == ["svcA", "svcB", "svcB"]


def test_dc_set_learns_domain_controllers_only_from_dc_events() -> None:
    b = ActivityBuilder()
    build([kerberos(4768, 0, "bob", "0x0", dc="DC02.contoso.local"), group_change(4732, 1, "Users", "S-1-5-32-545",
                                                                                 dc="WKS7.contoso.local"),
           ntlm_8004(2, "SRV", "bob", "WIN81", dc=DC)], b)
    assert b.dcs == {"DC02", "DC01"}
