"""Honeytoken activity on every event that names the decoy (reference/dc-log-alerts.md B5): 4769 as
requester and as the SPN's owner, 4624, account changes (4738/4722/4724/4725/4781), 5136 on its
object, and the distributed router sending those events to the token's partition. Real recordings
first (a decoy named in them), then synthetic layouts from the reference."""

from __future__ import annotations

import pytest

from conftest import corpus
from dcsentry.activities.context import Inventory
from dcsentry.runtime.routing import Router
from dcsentry.config import Detection
from dcsentry.detectors.engine import DetectionEngine
from dcsentry.formats import ReadStats
from dcsentry.hunt import hunt
from eventfactory import DOMAIN_SID, FIELDS, kerberos, make, of_type, run

_SUBJECT = ("SubjectUserSid", "SubjectUserName", "SubjectDomainName", "SubjectLogonId")
for _eid, _names in {
    4769: ("TargetUserName", "TargetDomainName", "ServiceName", "ServiceSid", "TicketOptions", "TicketEncryptionType",
           "IpAddress", "IpPort", "Status", "LogonGuid", "TransmittedServices"),
    4624: ("SubjectUserSid", "SubjectUserName", "SubjectDomainName", "SubjectLogonId", "TargetUserSid",
           "TargetUserName", "TargetDomainName", "TargetLogonId", "LogonType", "LogonProcessName",
           "AuthenticationPackageName", "WorkstationName", "LogonGuid", "TransmittedServices", "LmPackageName",
           "KeyLength", "ProcessId", "ProcessName", "IpAddress", "IpPort", "ImpersonationLevel"),
    4738: ("Dummy", "TargetUserName", "TargetDomainName", "TargetSid", *_SUBJECT, "PrivilegeList", "SamAccountName",
           "DisplayName", "UserPrincipalName", "HomeDirectory", "HomePath", "ScriptPath", "ProfilePath",
           "UserWorkstations", "PasswordLastSet", "AccountExpires", "PrimaryGroupId", "AllowedToDelegateTo",
           "OldUacValue", "NewUacValue", "UserAccountControl", "UserParameters", "SidHistory", "LogonHours"),
    4722: ("TargetUserName", "TargetDomainName", "TargetSid", *_SUBJECT),
    4724: ("TargetUserName", "TargetDomainName", "TargetSid", *_SUBJECT),
    4725: ("TargetUserName", "TargetDomainName", "TargetSid", *_SUBJECT),
    4781: ("OldTargetUserName", "NewTargetUserName", "TargetDomainName", "TargetSid", *_SUBJECT, "PrivilegeList"),
    5136: ("OpCorrelationID", "AppCorrelationID", *_SUBJECT, "DSName", "DSType", "ObjectDN", "ObjectGUID",
           "ObjectClass", "AttributeLDAPDisplayName", "AttributeSyntaxOID", "AttributeValue", "OperationType"),
}.items():
    FIELDS.setdefault(_eid, _names)

HT = "svc-backup2"
HT_SID = f"{DOMAIN_SID}-7777"
HT_DN = "CN=Backup Service 2,OU=Service,DC=contoso,DC=local"
ADMIN = {"SubjectUserSid": f"{DOMAIN_SID}-1104", "SubjectUserName": "dadmin", "SubjectDomainName": "CONTOSO",
         "SubjectLogonId": "0x5a3b1"}


def tgs(t: float, account: str, service: str, ip: str = "::ffff:10.0.0.66", status: str = "0x0"):
    return make(4769, {"TargetUserName": f"{account}@CONTOSO.LOCAL", "TargetDomainName": "CONTOSO.LOCAL",
                       "ServiceName": service, "ServiceSid": f"{DOMAIN_SID}-7777" if service == HT else f"{DOMAIN_SID}-2001",
                       "TicketOptions": "0x40810000", "TicketEncryptionType": "0x17", "IpAddress": ip,
                       "IpPort": "50123", "Status": status, "LogonGuid": "{00000000-0000-0000-0000-000000000000}"}, t)


def logon(t: float, account: str, sid: str, ip: str = "10.0.0.66", logon_id: str = "0x99aa"):
    return make(4624, {"SubjectUserSid": "S-1-0-0", "TargetUserSid": sid, "TargetUserName": account,
                       "TargetDomainName": "CONTOSO", "TargetLogonId": logon_id, "LogonType": "3",
                       "LogonProcessName": "Kerberos", "AuthenticationPackageName": "Kerberos",
                       "WorkstationName": "-", "IpAddress": ip, "IpPort": "50124"}, t)


def account_event(eid: int, t: float, target: str = HT, sid: str = HT_SID, **extra: str):
    data = {"TargetUserName": target, "TargetDomainName": "CONTOSO", "TargetSid": sid, **ADMIN, **extra}
    if eid == 4781:
        data = {"OldTargetUserName": target, "NewTargetUserName": extra.get("new", "svc-backup3"),
                "TargetDomainName": "CONTOSO", "TargetSid": sid, **ADMIN}
    return make(eid, data, t)


def ds_change(t: float, dn: str, attribute: str = "servicePrincipalName", value: str = "MSSQLSvc/db9:1433"):
    return make(5136, {"OpCorrelationID": "{5c3b7a7e-0000-4000-8000-00000000a001}", "AppCorrelationID": "-", **ADMIN,
                       "DSName": "contoso.local", "DSType": "%%14676", "ObjectDN": dn,
                       "ObjectGUID": "{6a1b0d32-7d3a-4c39-9a77-1f1e0b6a0c55}", "ObjectClass": "user",
                       "AttributeLDAPDisplayName": attribute, "AttributeSyntaxOID": "2.5.5.12",
                       "AttributeValue": value, "OperationType": "%%14674"}, t)


def one(engine) -> object:
    alerts = of_type(engine, "honeytoken-activity")
    assert len(alerts) == 1, [(a.key, a.count) for a in alerts]
    return alerts[0]


# -- real recordings -------------------------------------------------------------------------------------------------
def hunt_with(rel: str, tokens: list[str]):
    alerts, _ = hunt([str(corpus(rel))], Detection(honeytokens=tokens), ReadStats())
    return [a for a in alerts if a.type == "honeytoken-activity"]


def test_spn_written_on_honeytoken_4738_and_5136_recording() -> None:
    """honey-pot1 gets an SPN from lambda-user: two 4738 and two 5136 values, one High alert."""
    alerts = hunt_with("dc-log/evtx/evtx-to-mitre-attack/ID4738,5136-SPN set on user account.evtx", ["honey-pot1"])
    assert len(alerts) == 1
    a = alerts[0]
    assert a.severity == "high" and a.count >= 3
    assert "lambda-user" in a.accounts and "servicePrincipalName" in a.description
    assert a.details["kinds"] == ["attribute-change"]


def test_ticket_for_honeytoken_spn_recording() -> None:
    """Kerberoasting the decoy's SPN (admmig asks a RC4 ticket for Svc-SQL-DB01)."""
    alerts = hunt_with("dc-log/evtx/evtx-to-mitre-attack/ID4769-Kerberoast ticket with low encryption.evtx",
                       ["OFFSEC\\Svc-SQL-DB01"])
    assert len(alerts) == 1
    a = alerts[0]
    assert a.severity == "high" and "admmig" in a.accounts and "10.23.23.9" in a.hosts
    assert "Kerberoasting" in a.description and a.protocol == "Kerberos"


def test_honeytoken_renamed_recording() -> None:
    """4781 hacker42 -> adminupn42 and the 4738 of the rename: the decoy listed under its old name."""
    alerts = hunt_with("dc-log/evtx/evtx-to-mitre-attack/ID4781-4738-User renamed to admin or likely.evtx",
                       ["hacker42"])
    assert len(alerts) == 1 and "renamed from hacker42" in alerts[0].description


def test_honeytoken_password_reset_and_logon_by_sid_recording() -> None:
    rel = "dc-log/evtx/evtx-to-mitre-attack/ID4724-5145-password reset with setNTLM (Mimikatz).evtx"
    reset = hunt_with(rel, ["S-1-5-21-4230534742-2542757381-3142984815-1242"])
    assert len(reset) == 1 and "password-reset" in reset[0].description and "admmig" in reset[0].accounts
    logons = hunt_with(rel, ["S-1-5-21-4230534742-2542757381-3142984815-1111"])  # admmig's own 4624s (and it acts)
    assert len(logons) == 1 and "Logged on to ROOTDC1 from 10.23.23.9" in logons[0].description


def test_honeytoken_sign_in_4624_recording() -> None:
    alerts = hunt_with("dc-log/evtx/evtx-to-mitre-attack/ID4662-4624-Honeypot account property read.evtx",
                       ["lambda-user"])
    assert len(alerts) == 1 and alerts[0].severity == "high" and alerts[0].details["kinds"] == ["sign-in"]


# -- synthetic layouts -----------------------------------------------------------------------------------------------
def test_4769_requested_by_honeytoken_synthetic() -> None:
    a = one(run([tgs(0, HT, "SQL01$")], Detection(honeytokens=[HT])))
    assert a.severity == "high" and a.accounts == [HT] and "Service ticket to SQL01$" in a.description


def test_4769_for_honeytoken_spn_synthetic() -> None:
    a = one(run([tgs(0, "eve", HT)], Detection(honeytokens=[HT])))
    assert a.accounts == [HT, "eve"] and "Kerberoasting" in a.description and a.hosts == ["10.0.0.66"]


def test_4769_of_others_and_4768_counted_once_synthetic() -> None:
    """A TGT for the decoy is one AuthActivity (4768), not a second count from its TicketRequest view."""
    engine = run([tgs(0, "eve", "SQL01$"), kerberos(4768, 1, HT, "0x0", sid=HT_SID)], Detection(honeytokens=[HT]))
    assert one(engine).count == 1


def test_4624_by_sid_synthetic() -> None:
    a = one(run([logon(0, "whatever", HT_SID)], Detection(honeytokens=[HT_SID.lower()])))
    assert a.severity == "high" and "Logged on to DC01 from 10.0.0.66" in a.description
    assert a.hosts == ["10.0.0.66", "DC01"]  # DC01 is not known as a DC from one 4624: the host logged on to


@pytest.mark.parametrize("eid,word", [(4738, "attributes changed"), (4722, "enabled"), (4724, "password-reset"),
                                      (4725, "disabled"), (4781, "renamed from svc-backup2")])
def test_account_changes_of_honeytoken_synthetic(eid: int, word: str) -> None:
    extra = {"UserAccountControl": "%%2089", "OldUacValue": "0x10", "NewUacValue": "0x210"} if eid == 4738 else {}
    for tokens in ([HT], [HT_SID]):
        a = one(run([account_event(eid, 0, **extra)], Detection(honeytokens=tokens)))
        assert a.severity == "high" and word in a.description and "dadmin" in a.accounts
        assert a.details["kinds"] == ["attribute-change"]
    if eid == 4738:
        assert "Don't Expire Password set" in a.description


def test_5136_on_honeytoken_by_dn_cn_or_inventory_synthetic() -> None:
    by_dn = one(run([ds_change(0, HT_DN)], Detection(honeytokens=[HT_DN])))
    assert "attribute servicePrincipalName modified by dadmin" in by_dn.description
    by_cn = run([ds_change(0, "CN=svc-backup2,OU=Service,DC=contoso,DC=local")], Detection(honeytokens=[HT]))
    assert one(by_cn).severity == "high"
    # the CN differs from the sAMAccountName: only an imported inventory knows the DN is the decoy's
    inv = Inventory()
    acc = inv.learn(HT, HT_SID, source="imported")
    acc.dn = HT_DN
    inv.index_dn(acc)
    engine = DetectionEngine(Detection(honeytokens=[HT]), inventory=inv)
    engine.feed(ds_change(0, HT_DN))
    engine.finish()
    assert one(engine).key == HT
    assert of_type(run([ds_change(0, HT_DN)], Detection(honeytokens=[HT])), "honeytoken-activity") == []


def test_one_alert_for_every_kind_of_activity_synthetic() -> None:
    events = [kerberos(4768, 0, HT, "0x0", sid=HT_SID), tgs(1, HT, "SQL01$"), logon(2, HT, HT_SID),
              account_event(4724, 3), ds_change(4, "CN=svc-backup2,OU=Service,DC=contoso,DC=local")]
    a = one(run(events, Detection(honeytokens=[HT])))
    assert a.count == 5 and a.details["kinds"] == ["sign-in", "attribute-change"]


def test_lookalikes_stay_quiet_synthetic() -> None:
    cfg = Detection(honeytokens=[HT])
    events = [tgs(0, "svc-backup", "SQL01$"), tgs(1, "eve", "svc-backup20"), logon(2, "svc-backup22", f"{DOMAIN_SID}-1"),
              account_event(4738, 3, target="svc-backup", sid=f"{DOMAIN_SID}-2"),
              ds_change(4, "CN=svc-backup,OU=Service,DC=contoso,DC=local")]
    assert of_type(run(events, cfg), "honeytoken-activity") == []
    assert of_type(run(events, Detection()), "honeytoken-activity") == []


# -- distributed routing ---------------------------------------------------------------------------------------------
def test_router_sends_every_honeytoken_event_to_the_token_partition_synthetic() -> None:
    router = Router([HT, HT_DN], 16)
    hits = [tgs(0, HT, "SQL01$"), tgs(0, "eve", HT), logon(0, HT, HT_SID), account_event(4738, 0),
            account_event(4722, 0), account_event(4724, 0), account_event(4725, 0), account_event(4781, 0),
            ds_change(0, HT_DN), ds_change(0, "CN=svc-backup2,OU=x,DC=contoso,DC=local")]
    tokens = [router.token_of(ev) for ev in hits]
    assert tokens[:-2] == [HT] * 8 and all(tokens)
    misses = [tgs(0, "eve", "SQL01$"), logon(0, "eve", f"{DOMAIN_SID}-3"), account_event(4738, 0, "eve", "S-1-5-21-1"),
              ds_change(0, "CN=eve,DC=contoso,DC=local")]
    assert [router.token_of(ev) for ev in misses] == [None] * 4
    assert len(router.route(hits[0])) == 2 and len(router.route(misses[0])) == 1
