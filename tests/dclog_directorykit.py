"""Synthetic Directory Service Changes (5136/5137/5139/5141), in the field order of
reference/dc-log-alerts.md A6 (obs. layouts of the EVTX-to-MITRE 5136 recordings), read back
through eventfactory's real XML reader; plus the 4624 / 4738 / 4768 the follow-ups need."""

from __future__ import annotations

import itertools
from datetime import datetime

from eventfactory import DC, DOMAIN_SID, FIELDS, _TASK, make, of_type, run
from dcsentry.activities.builder import ActivityBuilder
from dcsentry.activities.dclog.directory import DirectoryChange
from dcsentry.config import Detection
from dcsentry.model import WindowsEvent

SUBJECT = ("SubjectUserSid", "SubjectUserName", "SubjectDomainName", "SubjectLogonId")
_DS = ("OpCorrelationID", "AppCorrelationID", *SUBJECT, "DSName", "DSType", "ObjectDN", "ObjectGUID", "ObjectClass")
FIELDS.setdefault(5136, (*_DS, "AttributeLDAPDisplayName", "AttributeSyntaxOID", "AttributeValue", "OperationType"))
FIELDS.setdefault(5137, _DS)
FIELDS.setdefault(5141, (*_DS, "TreeDelete"))
FIELDS.setdefault(5139, ("OpCorrelationID", "AppCorrelationID", *SUBJECT, "DSName", "DSType", "OldObjectDN",
                         "NewObjectDN", "ObjectGUID", "ObjectClass"))
FIELDS.setdefault(4624, ("SubjectUserSid", "SubjectUserName", "SubjectDomainName", "SubjectLogonId",
                         "TargetUserSid", "TargetUserName", "TargetDomainName", "TargetLogonId", "LogonType",
                         "LogonProcessName", "AuthenticationPackageName", "WorkstationName", "LogonGuid",
                         "TransmittedServices", "LmPackageName", "KeyLength", "ProcessId", "ProcessName",
                         "IpAddress", "IpPort", "ImpersonationLevel"))
for _eid in (5136, 5137, 5139, 5141):
    _TASK.setdefault(_eid, 14081)
_TASK.setdefault(4624, 12544)

ROOT = "DC=contoso,DC=local"
ADMIN = ("Administrator", f"{DOMAIN_SID}-500")
EVE = ("eve", f"{DOMAIN_SID}-1601")
ADDED, DELETED = "%%14674", "%%14675"
_corr = itertools.count(1)


def sid(rid: int) -> str:
    return f"{DOMAIN_SID}-{rid}"


def correlation() -> str:
    """A fresh OpCorrelationID (one per LDAP operation)."""
    return f"{{4B2E27E2-4DE6-4434-BBF1-{next(_corr):012X}}}"


def _ds(dn: str, cls: str, actor: tuple[str, str], logon_id: str, corr: str, guid: str) -> dict[str, str]:
    return {"OpCorrelationID": corr, "AppCorrelationID": "-", "SubjectUserSid": actor[1], "SubjectUserName": actor[0],
            "SubjectDomainName": "CONTOSO", "SubjectLogonId": logon_id, "DSName": "contoso.local",
            "DSType": "%%14676", "ObjectDN": dn, "ObjectGUID": guid, "ObjectClass": cls}


def value(t: float | datetime, dn: str, cls: str, attr: str, val: str, *, op: str = ADDED, corr: str = "",
          actor: tuple[str, str] = ADMIN, logon_id: str = "0x3031e", syntax: str = "2.5.5.12",
          guid: str = "{0B32719A-29A5-4AD5-B9DC-56200EBA0CE0}", dc: str = DC) -> WindowsEvent:
    """One 5136: one value of `attr` added (`op` %%14674) or deleted (%%14675)."""
    data = {**_ds(dn, cls, actor, logon_id, corr or correlation(), guid), "AttributeLDAPDisplayName": attr,
            "AttributeSyntaxOID": syntax, "AttributeValue": val, "OperationType": op}
    return make(5136, data, t, computer=dc)


def replace(t: float | datetime, dn: str, cls: str, attr: str, old: str | None, new: str, **kw: object) -> list[WindowsEvent]:
    """A replace as the DC logs it: Value Deleted (old) then Value Added (new), one OpCorrelationID."""
    corr = str(kw.pop("corr", "") or correlation())
    out = [value(t, dn, cls, attr, old, op=DELETED, corr=corr, **kw)] if old is not None else []  # type: ignore[arg-type]
    return [*out, value(t, dn, cls, attr, new, corr=corr, **kw)]  # type: ignore[arg-type]


def sd_change(t: float | datetime, dn: str, cls: str, old: str, new: str, **kw: object) -> list[WindowsEvent]:
    return replace(t, dn, cls, "nTSecurityDescriptor", old, new, syntax="2.5.5.15", **kw)


def created(t: float | datetime, dn: str, cls: str, actor: tuple[str, str] = ADMIN, dc: str = DC) -> WindowsEvent:
    return make(5137, _ds(dn, cls, actor, "0x3031e", correlation(), "{6E0C9B7D-3C53-4F0B-9C4A-6A1D5D1E0A11}"), t,
                computer=dc)


def deleted(t: float | datetime, dn: str, cls: str, tree: str = "%%1843", actor: tuple[str, str] = ADMIN,
            dc: str = DC) -> WindowsEvent:
    return make(5141, {**_ds(dn, cls, actor, "0x3031e", correlation(), "{6E0C9B7D-3C53-4F0B-9C4A-6A1D5D1E0A11}"),
                       "TreeDelete": tree}, t, computer=dc)


def moved(t: float | datetime, old_dn: str, new_dn: str, cls: str, actor: tuple[str, str] = ADMIN,
          dc: str = DC) -> WindowsEvent:
    data = {k: v for k, v in _ds(old_dn, cls, actor, "0x3031e", correlation(), "{6E0C9B7D-3C53-4F0B-9C4A-6A1D5D1E0A11}").items()
            if k != "ObjectDN"}
    return make(5139, {**data, "OldObjectDN": old_dn, "NewObjectDN": new_dn}, t, computer=dc)


def logon(t: float | datetime, account: str, user_sid: str, logon_id: str = "0x3031e", ip: str = "10.0.0.66",
          dc: str = DC) -> WindowsEvent:
    """The 4624 (network, Kerberos) whose TargetLogonId a later 5136's SubjectLogonId names."""
    return make(4624, {"SubjectUserSid": "S-1-0-0", "TargetUserSid": user_sid, "TargetUserName": account,
                       "TargetDomainName": "CONTOSO", "TargetLogonId": logon_id, "LogonType": "3",
                       "LogonProcessName": "Kerberos", "AuthenticationPackageName": "Kerberos",
                       "WorkstationName": "-", "IpAddress": ip, "IpPort": "50124"}, t, computer=dc)


# Security descriptors in the shape 5136 logs them (obs. domain root, OU, GPO): short but real ACE forms.
ROOT_SD = ("O:BAG:BAD:AI(D;;DC;;;WD)(OA;;CR;1131f6aa-9c07-11d1-f79f-00c04fc2dcd2;;BA)"
           "(OA;;CR;1131f6ad-9c07-11d1-f79f-00c04fc2dcd2;;BA)(OA;;CR;1131f6aa-9c07-11d1-f79f-00c04fc2dcd2;;S-1-5-21-"
           "3457937927-2839227994-823803824-498)(OA;;CR;1131f6ab-9c07-11d1-f79f-00c04fc2dcd2;;ED)"
           "(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;DA)(A;CI;RPWPCRCCDCLCLORCWOWDSDSW;;;EA)(A;;RPRC;;;RU)"
           "S:AI(OU;CISA;WP;f30e3bbe-9ff0-11d1-b603-0000f80367c1;bf967aa5-0de6-11d0-a285-00aa003049e2;WD)")
OU_SD = ("O:DAG:DAD:AI(OA;;CCDC;bf967a86-0de6-11d0-a285-00aa003049e2;;AO)(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;DA)"
         "(A;;RPLCLORC;;;AU)(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;SY)")
GPO_SD = ("O:DAG:DAD:PAI(OA;CI;CR;edacfd8f-ffb3-11d1-b41d-00a0c968f939;;AU)"
          "(A;;CCDCLCSWRPWPDTLOSDRCWDWO;;;DA)(A;CI;LCRPLORC;;;ED)(A;CI;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;SY)")


# -- shared by the test_dclog_directory_* files -------------------------------------------------
USER_DN = "CN=bob,CN=Users,DC=contoso,DC=local"
PC_DN = "CN=WS01,OU=Workstations,DC=contoso,DC=local"
GPO = "{8A1C4E62-2F65-4C77-A1C0-3C5E2C7B1F10}"
GPO_DN = f"CN={GPO},CN=Policies,CN=System,DC=contoso,DC=local"
ATTACKER_PC = ("ATTACK01$", f"{DOMAIN_SID}-1701")
KCL = "B:828:0002000020000173E5A4D3C1B2A09F8E7D6C5B4A39281706F5E4D3C2B1A09F8E7D6C5B4A3928:" + USER_DN


def changes(events: list) -> list[DirectoryChange]:
    b = ActivityBuilder()
    out = []
    for ev in events:
        out += b.feed(ev)
    out += b.flush()
    return [a for a in out if isinstance(a, DirectoryChange)]


def alerts(events: list, type_: str, cfg: Detection | None = None) -> list:
    return of_type(run(events, cfg), type_)
