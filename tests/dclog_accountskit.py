"""Synthetic account-management events (4720/4738/4741/4742/4781/4765/4766/4794 ...) and the few
directory events the DCShadow tests need, in the field order of reference/dc-log-alerts.md A4/A5
(obs. layouts of the EVTX-to-MITRE recordings), built through eventfactory's real XML reader."""

from __future__ import annotations

from datetime import datetime

from eventfactory import DC, DOMAIN_SID, FIELDS, _TASK, make
from dcsentry.model import WindowsEvent

SUBJECT = ("SubjectUserSid", "SubjectUserName", "SubjectDomainName", "SubjectLogonId")
_USER = ("SamAccountName", "DisplayName", "UserPrincipalName", "HomeDirectory", "HomePath", "ScriptPath",
         "ProfilePath", "UserWorkstations", "PasswordLastSet", "AccountExpires", "PrimaryGroupId",
         "AllowedToDelegateTo", "OldUacValue", "NewUacValue", "UserAccountControl", "UserParameters",
         "SidHistory", "LogonHours")
_TARGET = ("TargetUserName", "TargetDomainName", "TargetSid")
ACCOUNT_FIELDS: dict[int, tuple[str, ...]] = {
    4720: (*_TARGET, *SUBJECT, "PrivilegeList", *_USER),
    4738: ("Dummy", *_TARGET, *SUBJECT, "PrivilegeList", *_USER),
    4741: (*_TARGET, *SUBJECT, "PrivilegeList", *_USER, "DnsHostName", "ServicePrincipalNames"),
    4742: ("ComputerAccountChange", *_TARGET, *SUBJECT, "PrivilegeList", *_USER, "DnsHostName",
           "ServicePrincipalNames"),
    4722: (*_TARGET, *SUBJECT), 4725: (*_TARGET, *SUBJECT), 4724: (*_TARGET, *SUBJECT),
    4726: (*_TARGET, *SUBJECT, "PrivilegeList"), 4743: (*_TARGET, *SUBJECT, "PrivilegeList"),
    4781: ("OldTargetUserName", "NewTargetUserName", "TargetDomainName", "TargetSid", *SUBJECT, "PrivilegeList"),
    4765: ("SourceUserName", "SourceSid", *_TARGET, *SUBJECT, "PrivilegeList", "SidList"),
    4766: ("SourceUserName", *_TARGET, "SubjectUserName", "SubjectDomainName", "SubjectLogonId", "PrivilegeList"),
    4794: (*SUBJECT, "Workstation", "Status"),
}
for _eid, _names in ACCOUNT_FIELDS.items():
    FIELDS.setdefault(_eid, _names)
    _TASK.setdefault(_eid, 13825 if _eid in (4741, 4742, 4743) else 13824)
FIELDS.setdefault(4769, ("TargetUserName", "TargetDomainName", "ServiceName", "ServiceSid", "TicketOptions",
                         "TicketEncryptionType", "IpAddress", "IpPort", "Status", "LogonGuid",
                         "TransmittedServices"))
FIELDS.setdefault(4662, (*SUBJECT, "ObjectServer", "ObjectType", "ObjectName", "OperationType", "HandleId",
                         "AccessList", "AccessMask", "Properties", "AdditionalInfo", "AdditionalInfo2"))
FIELDS.setdefault(5136, ("OpCorrelationID", "AppCorrelationID", *SUBJECT, "DSName", "DSType", "ObjectDN",
                         "ObjectGUID", "ObjectClass", "AttributeLDAPDisplayName", "AttributeSyntaxOID",
                         "AttributeValue", "OperationType"))
FIELDS.setdefault(5137, ("OpCorrelationID", "AppCorrelationID", *SUBJECT, "DSName", "DSType", "ObjectDN",
                         "ObjectGUID", "ObjectClass"))

ADMIN = ("Administrator", f"{DOMAIN_SID}-500")
USER = ("eve", f"{DOMAIN_SID}-1601")


def subject(actor: tuple[str, str] = ADMIN, logon_id: str = "0x3031e") -> dict[str, str]:
    return {"SubjectUserSid": actor[1], "SubjectUserName": actor[0], "SubjectDomainName": "CONTOSO",
            "SubjectLogonId": logon_id}


def account(event_id: int, t: float | datetime, target: str, target_sid: str, *,
            actor: tuple[str, str] = ADMIN, dc: str = DC, **fields: str) -> WindowsEvent:
    """One account event; `fields` are the changed values (the rest render as `-`)."""
    data = {"TargetUserName": target, "TargetDomainName": "CONTOSO", "TargetSid": target_sid,
            **subject(actor), "PrivilegeList": "-", **fields}
    names = set(FIELDS[event_id])
    return make(event_id, {k: v for k, v in data.items() if k in names}, t, computer=dc)


def rename(t: float | datetime, old: str, new: str, target_sid: str, *, actor: tuple[str, str] = USER,
           dc: str = DC) -> WindowsEvent:
    return make(4781, {"OldTargetUserName": old, "NewTargetUserName": new, "TargetDomainName": "CONTOSO",
                       "TargetSid": target_sid, **subject(actor), "PrivilegeList": "-"}, t, computer=dc)


def tgt(t: float | datetime, name: str, sid: str, ip: str = "::ffff:10.0.0.66", dc: str = DC) -> WindowsEvent:
    return make(4768, {"TargetUserName": name, "TargetDomainName": "CONTOSO.LOCAL", "TargetSid": sid,
                       "ServiceName": "krbtgt", "ServiceSid": f"{DOMAIN_SID}-502", "TicketOptions": "0x50800000",
                       "Status": "0x0", "TicketEncryptionType": "0x12", "PreAuthType": "2", "IpAddress": ip,
                       "IpPort": "50268"}, t, computer=dc)


def access_4662(t: float | datetime, actor: tuple[str, str], right: str, *, object_type: str,
                mask: str = "0x100", dc: str = DC) -> WindowsEvent:
    return make(4662, {**subject(actor), "ObjectServer": "DS", "ObjectType": f"%{{{object_type}}}",
                       "ObjectName": "%{0b32719a-29a5-4ad5-b9dc-56200eba0ce0}", "OperationType": "Object Access",
                       "HandleId": "0x0", "AccessList": "%%7688\r\n\t\t\t\t", "AccessMask": mask,
                       "Properties": f"%%7688\r\n\t\t{{{right}}}\r\n\t{{{object_type}}}\r\n"}, t, computer=dc)


def created_5137(t: float | datetime, dn: str, object_class: str, actor: tuple[str, str] = ADMIN,
                 dc: str = DC) -> WindowsEvent:
    return make(5137, {"OpCorrelationID": "B960A203-A3DF-4586-A2ED-740024D6C42A", **subject(actor),
                       "DSName": "contoso.local", "DSType": "%%14676", "ObjectDN": dn,
                       "ObjectGUID": "590B1EF4-6143-4C18-B554-1EE0A59BB7F8", "ObjectClass": object_class},
                t, computer=dc)


def spn_5136(t: float | datetime, dn: str, value: str, op: str = "%%14674", actor: tuple[str, str] = ADMIN,
             dc: str = DC) -> WindowsEvent:
    return make(5136, {"OpCorrelationID": "C41EADE4-162A-4D70-8488-F92F6AF8FF49", **subject(actor),
                       "DSName": "contoso.local", "DSType": "%%14676", "ObjectDN": dn,
                       "ObjectGUID": "EAC0F94E-A686-463D-801C-91A1B85FE87D", "ObjectClass": "computer",
                       "AttributeLDAPDisplayName": "servicePrincipalName", "AttributeSyntaxOID": "2.5.5.12",
                       "AttributeValue": value, "OperationType": op}, t, computer=dc)
