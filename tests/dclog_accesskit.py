"""Synthetic 4662 (directory / LSA secret access), 4624 (logon) and 5145 (share access) events for the
directory-access and lateral-movement tests, in the field order of reference/dc-log-alerts.md A1/A9
and events.md (obs. layouts of the EVTX-to-MITRE and OTRF recordings), read back through
eventfactory's real XML reader."""

from __future__ import annotations

from datetime import datetime

from eventfactory import DC, DOMAIN_SID, FIELDS, _TASK, make
from dcsentry.model import WindowsEvent

SUBJECT = ("SubjectUserSid", "SubjectUserName", "SubjectDomainName", "SubjectLogonId")
FIELDS.setdefault(4662, (*SUBJECT, "ObjectServer", "ObjectType", "ObjectName", "OperationType", "HandleId",
                         "AccessList", "AccessMask", "Properties", "AdditionalInfo", "AdditionalInfo2"))
FIELDS.setdefault(4624, (*SUBJECT, "TargetUserSid", "TargetUserName", "TargetDomainName", "TargetLogonId",
                         "LogonType", "LogonProcessName", "AuthenticationPackageName", "WorkstationName", "LogonGuid",
                         "TransmittedServices", "LmPackageName", "KeyLength", "ProcessId", "ProcessName",
                         "IpAddress", "IpPort", "ImpersonationLevel"))
FIELDS.setdefault(5145, (*SUBJECT, "ObjectType", "IpAddress", "IpPort", "ShareName", "ShareLocalPath",
                         "RelativeTargetName", "AccessMask", "AccessList", "AccessReason"))
_TASK.setdefault(4662, 14080)
_TASK.setdefault(4624, 12544)
_TASK.setdefault(5145, 12811)

DOMAIN_DNS = "%{19195a5b-6da0-11d0-afd3-00c04fd930c9}"
GROUP_CLASS = "%{bf967a9c-0de6-11d0-a285-00aa003049e2}"
ROOT_GUID = "%{0b32719a-29a5-4ad5-b9dc-56200eba0ce0}"
GET_CHANGES = "{1131f6aa-9c07-11d1-f79f-00c04fc2dcd2}"
GET_CHANGES_ALL = "{1131f6ad-9c07-11d1-f79f-00c04fc2dcd2}"
FILTERED_SET = "{89e95b76-444d-4c62-991a-0facbeda640c}"
SERVER = "SRV01.contoso.local"


def sid(rid: int) -> str:
    return f"{DOMAIN_SID}-{rid}"


def subject(name: str, rid: int, logon_id: str) -> dict[str, str]:
    return {"SubjectUserSid": sid(rid), "SubjectUserName": name, "SubjectDomainName": "CONTOSO",
            "SubjectLogonId": logon_id}


def access(t: float | datetime, actor: str = "eve", rid: int = 1601, logon_id: str = "0x11b8c741", *,
           right: str = GET_CHANGES_ALL, mask: str = "0x100", object_type: str = DOMAIN_DNS,
           object_name: str = ROOT_GUID, server: str = "DS", dc: str = DC) -> WindowsEvent:
    """A 4662 as a DCSync tool makes it (obs.: `%%7688`, the right GUID, the class GUID)."""
    cls = object_type if object_type.startswith("%{") else ""
    props = f"%%7688\r\n\t\t{right}\r\n\t{cls.lstrip('%')}\r\n" if mask != "0x0" else ""
    return make(4662, {**subject(actor, rid, logon_id), "ObjectServer": server, "ObjectType": object_type,
                       "ObjectName": object_name, "OperationType": "Object Access", "HandleId": "0x0",
                       "AccessList": "%%7688\r\n\t\t\t\t" if mask != "0x0" else "-", "AccessMask": mask,
                       "Properties": props or "-", "AdditionalInfo": "-", "AdditionalInfo2": ""}, t, computer=dc)


def secret_read(t: float | datetime, actor: str = "eve", rid: int = 1601, logon_id: str = "0x3f9ab",
                secret: str = "Policy\\Secrets\\G$BCKUPKEY_PREFERRED", dc: str = DC) -> WindowsEvent:
    """The LSA secret read of the DPAPI backup key (OTRF backupkeys layout: server LSA, SecretObject, 0x2)."""
    return make(4662, {**subject(actor, rid, logon_id), "ObjectServer": "LSA", "ObjectType": "SecretObject",
                       "ObjectName": secret, "OperationType": "Object Access", "HandleId": "0x0",
                       "AccessList": "%%4418\r\n\t\t\t\t", "AccessMask": "0x2", "Properties": "-",
                       "AdditionalInfo": "-", "AdditionalInfo2": ""}, t, computer=dc)


def logon(t: float | datetime, account: str = "eve", rid: int = 1601, logon_id: str = "0x11b8c741", *,
          logon_type: str = "3", package: str = "Kerberos", process: str = "Kerberos", ip: str = "10.0.0.66",
          workstation: str = "-", key_length: str = "0", lm: str = "-", host: str = DC,
          subject_name: str = "-", subject_rid: int = 0) -> WindowsEvent:
    """A successful logon on `host` (the computer that logs it)."""
    subj = ({"SubjectUserSid": "S-1-0-0", "SubjectUserName": "-", "SubjectDomainName": "-", "SubjectLogonId": "0x0"}
            if subject_name == "-" else subject(subject_name, subject_rid, "0x1f4c65f"))
    return make(4624, {**subj, "TargetUserSid": sid(rid), "TargetUserName": account, "TargetDomainName": "CONTOSO",
                       "TargetLogonId": logon_id, "LogonType": logon_type, "LogonProcessName": process,
                       "AuthenticationPackageName": package, "WorkstationName": workstation,
                       "LogonGuid": "{00000000-0000-0000-0000-000000000000}", "TransmittedServices": "-",
                       "LmPackageName": lm, "KeyLength": key_length, "ProcessId": "0x0", "ProcessName": "-",
                       "IpAddress": ip, "IpPort": "49832", "ImpersonationLevel": "%%1833"}, t, computer=host)


def pipe_write(t: float | datetime, account: str = "eve", rid: int = 1601, logon_id: str = "0x1376020", *,
               ip: str = "10.0.0.66", pipe: str = "svcctl", mask: str = "0x3", host: str = SERVER) -> WindowsEvent:
    """5145 on IPC$ (obs. SAM-the-admin layout: `svcctl`, 0x3, ReadData + WriteData)."""
    access_list = "%%4416\r\n\t\t\t\t%%4417\r\n\t\t\t\t" if int(mask, 16) & 2 else "%%4416\r\n\t\t\t\t"
    return make(5145, {**subject(account, rid, logon_id), "ObjectType": "File", "IpAddress": ip, "IpPort": "50013",
                       "ShareName": "\\\\*\\IPC$", "ShareLocalPath": "", "RelativeTargetName": pipe,
                       "AccessMask": mask, "AccessList": access_list, "AccessReason": "-"}, t, computer=host)


def installed_4697(t: float | datetime, name: str, image: str, account: str = "eve", rid: int = 1601,
                   logon_id: str = "0x1376020", host: str = SERVER) -> WindowsEvent:
    """4697 under the installer's logon id (eventfactory's own always says SYSTEM, 0x3e7)."""
    return make(4697, {**subject(account, rid, logon_id), "ServiceName": name, "ServiceFileName": image,
                       "ServiceType": "0x10", "ServiceStartType": "3", "ServiceAccount": "LocalSystem"},
                t, computer=host)
