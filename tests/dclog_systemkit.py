"""Synthetic cover-up, trust and AD CS events in the layouts of reference/dc-log-alerts.md A7/A8
(field names and order as the obs. recordings and OSSEM show them), read back through the real
XML reader. 1102/104 are written with their UserData/LogFileCleared wrapper, as Windows renders
them. No public recording exists of 4882/4886/4887/4888/4890/4896/4899/4900: tests built on those
carry `synthetic` in their names; their Attributes/SubjectAlternativeName values are the ones the
reference quotes from the ESC recordings."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import datetime, timezone
from xml.sax.saxutils import escape, quoteattr

from eventfactory import DC, DOMAIN_SID, FIELDS, _TASK, at, make
from dcsentry.activities.context import Inventory
from dcsentry.alerts import Alert
from dcsentry.config import Detection
from dcsentry.detectors.engine import DetectionEngine
from dcsentry.formats.xml import parse_event_xml
from dcsentry.model import WindowsEvent

SUBJECT = ("SubjectUserSid", "SubjectUserName", "SubjectDomainName", "SubjectLogonId")
FIELDS.setdefault(4719, (*SUBJECT, "CategoryId", "SubcategoryId", "SubcategoryGuid", "AuditPolicyChanges"))
FIELDS.setdefault(4706, ("DomainName", "DomainSid", *SUBJECT, "TdoType", "TdoDirection", "TdoAttributes",
                         "SidFilteringEnabled"))
FIELDS.setdefault(4865, ("ForestRoot", "ForestRootSid", "OperationId", "EntryType", "Flags", "TopLevelName",
                         "DnsName", "NetbiosName", "DomainSid", *SUBJECT))
FIELDS.setdefault(4886, ("RequestId", "Requester", "Attributes", "Subject", "SubjectAlternativeName",
                         "CertificateTemplate", "RequestOSVersion", "RequestCSPProvider", "RequestClientInfo",
                         "AuthenticationService", "AuthenticationLevel", "DCOMorRPC"))
FIELDS.setdefault(4887, ("RequestId", "Requester", "Attributes", "Disposition", "SubjectKeyIdentifier", "Subject",
                         "SubjectAlternativeName", "CertificateTemplate", "SerialNumber", "AuthenticationService",
                         "AuthenticationLevel", "DCOMorRPC"))
FIELDS.setdefault(4888, ("RequestId", "Requester", "Attributes", "Disposition", "SubjectKeyIdentifier", "Subject",
                         "AuthenticationService", "AuthenticationLevel", "DCOMorRPC"))
FIELDS.setdefault(4882, (*SUBJECT, "SecuritySettings"))
FIELDS.setdefault(4885, ("AuditFilter", *SUBJECT))
FIELDS.setdefault(4890, ("EnableRestrictedPermissions", "RestrictedPermissions", *SUBJECT))
FIELDS.setdefault(4896, ("TableId", "Filter", "RowsDeleted", *SUBJECT))
_TEMPLATE = ("TemplateInternalName", "TemplateVersion", "TemplateSchemaVersion", "TemplateOID",
             "TemplateDSObjectFQDN", "DCDNSName")
FIELDS.setdefault(4898, (*_TEMPLATE, "TemplateContent", "SecurityDescriptor"))
FIELDS.setdefault(4899, (*_TEMPLATE, "NewTemplateContent", "OldTemplateContent"))
FIELDS.setdefault(4900, (*_TEMPLATE, "NewTemplateContent", "NewSecurityDescriptor", "OldTemplateContent",
                         "OldSecurityDescriptor"))
_TASK.setdefault(4719, 13568)
for _eid in (4706, 4865):
    _TASK.setdefault(_eid, 13569)
for _eid in (4882, 4885, 4886, 4887, 4888, 4890, 4896, 4898, 4899, 4900):
    _TASK.setdefault(_eid, 12805)

CA = "CA01.contoso.local"
EVENTLOG = ("Microsoft-Windows-Eventlog", "{fc65ddd8-d6ef-4962-83d5-6e5cfe9ce148}")
ADMIN = ("dadmin", f"{DOMAIN_SID}-1104")
GUIDS = {"Credential Validation": "0CCE923F-69AE-11D9-BED3-505054503030",
         "Security Group Management": "0CCE9237-69AE-11D9-BED3-505054503030",
         "Account Lockout": "0CCE9217-69AE-11D9-BED3-505054503030",
         "File System": "0CCE921D-69AE-11D9-BED3-505054503030",
         "Directory Service Changes": "0CCE923C-69AE-11D9-BED3-505054503030"}
_records = itertools.count(500_000)


def _subject(actor: tuple[str, str] = ADMIN, logon_id: str = "0x3031e") -> dict[str, str]:
    return {"SubjectUserSid": actor[1], "SubjectUserName": actor[0], "SubjectDomainName": "CONTOSO",
            "SubjectLogonId": logon_id}


def cleared(event_id: int, t: float | datetime, *, channel: str = "System", user: str = "dadmin",
            host: str = DC, backup: str = "") -> WindowsEvent:
    """1102 (Security) or 104 (System) as Windows renders it: fields under UserData/LogFileCleared."""
    when = (t if isinstance(t, datetime) else at(t)).astimezone(timezone.utc)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
    if event_id == 1102:
        fields = {"SubjectUserSid": ADMIN[1], "SubjectUserName": user, "SubjectDomainName": "CONTOSO",
                  "SubjectLogonId": "0x3031e"}
        log, kw = "Security", "0x4020000000000000"
    else:
        fields = {"SubjectUserName": user, "SubjectDomainName": "CONTOSO", "Channel": channel, "BackupPath": backup}
        log, kw = "System", "0x8000000000000000"
    body = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields.items())
    xml = ("<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>"
           f"<Provider Name={quoteattr(EVENTLOG[0])} Guid={quoteattr(EVENTLOG[1])}/>"
           f"<EventID>{event_id}</EventID><Version>{1 if event_id == 1102 else 0}</Version><Level>4</Level>"
           f"<Task>104</Task><Opcode>0</Opcode><Keywords>{kw}</Keywords><TimeCreated SystemTime='{stamp}'/>"
           f"<EventRecordID>{next(_records)}</EventRecordID><Correlation/><Execution ProcessID='1040' ThreadID='4'/>"
           f"<Channel>{log}</Channel><Computer>{escape(host)}</Computer><Security UserID={quoteattr(ADMIN[1])}/>"
           "</System><UserData><LogFileCleared xmlns='http://manifests.microsoft.com/win/2004/08/windows/eventlog'>"
           f"{body}</LogFileCleared></UserData></Event>")
    return parse_event_xml(xml)


def audit_change(t: float | datetime, subcategory: str, changes: str, *, host: str = DC,
                 actor: tuple[str, str] = ADMIN, guid: str | None = None) -> WindowsEvent:
    """4719: `changes` as logged (`%%8448, %%8450`) or rendered (`Success removed`)."""
    return make(4719, {**_subject(actor), "CategoryId": "%%8277", "SubcategoryId": "%%12800",
                       "SubcategoryGuid": "{" + (guid or GUIDS[subcategory]) + "}", "AuditPolicyChanges": changes},
                t, computer=host)


def trust(t: float | datetime, domain: str = "fabrikam.local", *, direction: str = "3", attributes: str = "8",
          tdo_type: str = "2", host: str = DC) -> WindowsEvent:
    return make(4706, {"DomainName": domain, "DomainSid": "S-1-5-21-392370121-190461309-2151315433",
                       **_subject(("Administrator", f"{DOMAIN_SID}-500")), "TdoType": tdo_type,
                       "TdoDirection": direction, "TdoAttributes": attributes, "SidFilteringEnabled": "%%1796"},
                t, computer=host)


def forest_entry(t: float | datetime, root: str = "fabrikam.local", *, entry_type: str = "2",
                 dns: str = "child.fabrikam.local", netbios: str = "CHILD", host: str = DC) -> WindowsEvent:
    return make(4865, {"ForestRoot": root, "ForestRootSid": "S-1-5-21-392370121-190461309-2151315433",
                       "OperationId": "0xffadf358", "EntryType": entry_type, "Flags": "0", "TopLevelName": "-",
                       "DnsName": dns, "NetbiosName": netbios, "DomainSid": "S-1-5-21-2047893623-4037909379-2884207733",
                       **_subject(("Administrator", f"{DOMAIN_SID}-500"))}, t, computer=host)


def request(event_id: int, t: float | datetime, requester: str, *, attributes: str = "", san: str = "",
            template: str = "User", request_id: str = "12", auth: str = "Kerberos", level: str = "Privacy",
            transport: str = "DCOM", subject: str = "CN=someone", host: str = CA) -> WindowsEvent:
    """4886 (received), 4887 (issued) or 4888 (denied) as the CA logs it (v1 layout)."""
    data = {"RequestId": request_id, "Requester": requester, "Attributes": attributes, "Subject": subject,
            "AuthenticationService": auth, "AuthenticationLevel": level, "DCOMorRPC": transport}
    if event_id != 4888:
        data["CertificateTemplate"] = template
    if event_id == 4886:
        data |= {"SubjectAlternativeName": san or "-", "RequestOSVersion": "10.0.17763.2",
                 "RequestCSPProvider": "Microsoft Enhanced Cryptographic Provider v1.0", "RequestClientInfo": "-"}
    elif event_id == 4887:
        data |= {"Disposition": "3", "SubjectKeyIdentifier": "1f 2e 3d", "SubjectAlternativeName": san or "-",
                 "SerialNumber": "1a000000c5d1e2f3a4b5c6000000000000c5"}
    else:
        data |= {"Disposition": "-2146875392", "SubjectKeyIdentifier": "-"}
    return make(event_id, data, t, computer=host)


def ca_change(event_id: int, t: float | datetime, *, host: str = CA, actor: tuple[str, str] = ADMIN,
              **fields: str) -> WindowsEvent:
    """4882/4885/4890/4896 (with Subject*) or 4898/4899/4900 (template, no subject)."""
    data = dict(fields)
    if "SubjectUserName" in FIELDS[event_id]:
        data |= _subject(actor)
    return make(event_id, data, t, computer=host)


TEMPLATE_ESC1 = ("\nV2 Template: ESC1Vuln\nflags = 0x2023a (131642)\nmsPKI-Enrollment-Flag = 0x0 (0)\n"
                 "msPKI-Certificate-Name-Flag = 0x1 (1)\n  CT_FLAG_ENROLLEE_SUPPLIES_SUBJECT -- 1\n"
                 "pKIExtendedKeyUsage =\n  1.3.6.1.5.5.7.3.2 Client Authentication\n")
TEMPLATE_SAFE = ("\nV2 Template: ESC1Vuln\nflags = 0x2023a (131642)\nmsPKI-Enrollment-Flag = 0x0 (0)\n"
                 "msPKI-Certificate-Name-Flag = 0x82000000 (-2113929216)\n"
                 "  CT_FLAG_SUBJECT_ALT_REQUIRE_UPN -- 2000000\n  CT_FLAG_SUBJECT_REQUIRE_DIRECTORY_PATH -- 80000000\n"
                 "pKIExtendedKeyUsage =\n  1.3.6.1.5.5.7.3.2 Client Authentication\n")


def run(events: Iterable[WindowsEvent], cfg: Detection | None = None, dcs: Iterable[str] = (),
        accounts: Iterable[str] = ()) -> list[Alert]:
    inv = Inventory()
    for d in dcs:
        inv.add_dc(d)
    for acc in accounts:
        inv.learn(acc)
    eng = DetectionEngine(cfg or Detection(), inventory=inv)
    for ev in events:
        eng.feed(ev)
    eng.finish()
    return sorted(eng.alerts.values(), key=lambda a: (a.start, a.type))


def of(alerts: list[Alert], type_: str) -> list[Alert]:
    return [a for a in alerts if a.type == type_]
