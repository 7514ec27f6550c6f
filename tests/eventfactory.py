"""Synthetic Windows events for the detection tests.

Each event is written as the XML Windows renders (the field lists, providers, channels and sample
shapes of ../shared/reference/events.md) and read back through the real reader,
`dcsentry.formats.xml.parse_event_xml`, so the detectors see exactly what a forwarded event gives
them. Nothing here was recorded on a real machine: tests relying on it for events that have no
public recording at all (8004, 4757) carry `synthetic` in their names.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from xml.sax.saxutils import escape, quoteattr

from dcsentry.alerts import Alert
from dcsentry.config import Detection
from dcsentry.detectors.baseline import Baseline
from dcsentry.detectors.engine import DetectionEngine
from dcsentry.formats.xml import parse_event_xml
from dcsentry.model import WindowsEvent

T0 = datetime(2024, 3, 4, 9, 0, 0, tzinfo=timezone.utc)
DC = "DC01.contoso.local"
DOMAIN_SID = "S-1-5-21-3457937927-2839227994-823803824"
AUDITING = ("Microsoft-Windows-Security-Auditing", "{54849625-5478-4994-A5BA-3E3B0328C30D}")
NETLOGON = ("Microsoft-Windows-Security-Netlogon", "{e5ba83f6-07d0-46b1-8bc7-7e669a1d31dc}")
SCM = ("Service Control Manager", "{555908d1-a6d7-4695-8e1e-26931d2012f4}")
NTLM_CHANNEL = "Microsoft-Windows-NTLM/Operational"
AUDIT_SUCCESS = "0x8020000000000000"
AUDIT_FAILURE = "0x8010000000000000"

_GROUP = ("MemberName", "MemberSid", "TargetUserName", "TargetDomainName", "TargetSid", "SubjectUserSid",
          "SubjectUserName", "SubjectDomainName", "SubjectLogonId", "PrivilegeList")
# EventData names in the order the provider writes them (events.md).
FIELDS: dict[int, tuple[str, ...]] = {
    4776: ("PackageName", "TargetUserName", "Workstation", "Status"),
    8004: ("SChannelName", "UserName", "DomainName", "WorkstationName", "SChannelType"),
    **{eid: _GROUP for eid in (4728, 4729, 4732, 4733, 4756, 4757)},  # identical for all six
    7045: ("ServiceName", "ImagePath", "ServiceType", "StartType", "AccountName"),
    4697: ("SubjectUserSid", "SubjectUserName", "SubjectDomainName", "SubjectLogonId", "ServiceName",
           "ServiceFileName", "ServiceType", "ServiceStartType", "ServiceAccount"),
    4625: ("SubjectUserSid", "SubjectUserName", "SubjectDomainName", "SubjectLogonId", "TargetUserSid",
           "TargetUserName", "TargetDomainName", "Status", "FailureReason", "SubStatus", "LogonType",
           "LogonProcessName", "AuthenticationPackageName", "WorkstationName", "TransmittedServices",
           "LmPackageName", "KeyLength", "ProcessId", "ProcessName", "IpAddress", "IpPort"),
    4768: ("TargetUserName", "TargetDomainName", "TargetSid", "ServiceName", "ServiceSid", "TicketOptions",
           "Status", "TicketEncryptionType", "PreAuthType", "IpAddress", "IpPort", "CertIssuerName",
           "CertSerialNumber", "CertThumbprint"),
    4771: ("TargetUserName", "TargetSid", "ServiceName", "TicketOptions", "Status", "PreAuthType", "IpAddress",
           "IpPort", "CertIssuerName", "CertSerialNumber", "CertThumbprint"),
}
FIELDS[8005] = FIELDS[8006] = FIELDS[8004]
GROUP_IDS = (4728, 4729, 4732, 4733, 4756, 4757)
_TASK = {4776: 14336, 4625: 12544, 4768: 14339, 4771: 14339, 4697: 12289, 8004: 2, 8005: 2, 8006: 2,
         **{e: 13826 for e in GROUP_IDS}}
_records = itertools.count(100_000)


def at(seconds: float) -> datetime:
    """A moment `seconds` after the synthetic epoch T0."""
    return T0 + timedelta(seconds=seconds)


def _when(t: float | datetime) -> datetime:
    return t if isinstance(t, datetime) else at(t)


def event_xml(event_id: int, data: dict[str, str], t: float | datetime, *, computer: str = DC,
              channel: str = "Security", provider: tuple[str, str] = AUDITING, keywords: str = AUDIT_SUCCESS,
              level: int = 0, user_sid: str | None = None, qualifiers: str | None = None) -> str:
    """The rendered XML of one event; `data` keys must be names the event really carries."""
    names = FIELDS[event_id]
    unknown = set(data) - set(names)
    assert not unknown, f"{event_id} has no field(s) {sorted(unknown)}"
    stamp = _when(t).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
    eid = f"<EventID Qualifiers={quoteattr(qualifiers)}>" if qualifiers else "<EventID>"
    security = f"<Security UserID={quoteattr(user_sid)}/>" if user_sid else "<Security/>"
    rows = "".join(f"<Data Name={quoteattr(n)}>{escape(data.get(n, '-'))}</Data>" for n in names)
    return ("<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>"
            f"<Provider Name={quoteattr(provider[0])} Guid={quoteattr(provider[1])}/>"
            f"{eid}{event_id}</EventID><Version>0</Version><Level>{level}</Level>"
            f"<Task>{_TASK.get(event_id, 0)}</Task><Opcode>0</Opcode><Keywords>{keywords}</Keywords>"
            f"<TimeCreated SystemTime='{stamp}'/><EventRecordID>{next(_records)}</EventRecordID><Correlation/>"
            "<Execution ProcessID='812' ThreadID='3684'/>"
            f"<Channel>{escape(channel)}</Channel><Computer>{escape(computer)}</Computer>{security}"
            f"</System><EventData>{rows}</EventData></Event>")


def make(event_id: int, data: dict[str, str], t: float | datetime, **kw: object) -> WindowsEvent:
    """`event_xml` read back by the real XML reader."""
    return parse_event_xml(event_xml(event_id, data, t, **kw))  # type: ignore[arg-type]


def ntlm_4776_xml(t: float | datetime, account: str, workstation: str = "WIN81", status: str = "0x0",
                  dc: str = DC) -> str:
    """A DC's credential validation; Keywords say failure for any non-zero status."""
    kw = AUDIT_SUCCESS if int(status, 16) == 0 else AUDIT_FAILURE
    return event_xml(4776, {"PackageName": "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0", "TargetUserName": account,
                            "Workstation": workstation, "Status": status}, t, computer=dc, keywords=kw)


def ntlm_4776(t: float | datetime, account: str, workstation: str = "WIN81", status: str = "0x0",
              dc: str = DC) -> WindowsEvent:
    return parse_event_xml(ntlm_4776_xml(t, account, workstation, status, dc))


def ntlm_8004_xml(t: float | datetime, server: str, user: str, workstation: str, dc: str = DC,
                  channel: str = NTLM_CHANNEL, event_id: int = 8004, domain: str = "NULL") -> str:
    """Synthetic: the Netlogon NTLM audit in the shape of events.md's sample (no public recording)."""
    return event_xml(event_id, {"SChannelName": server, "UserName": user, "DomainName": domain,
                                "WorkstationName": workstation, "SChannelType": "2"}, t, computer=dc,
                     channel=channel, provider=NETLOGON, keywords="0x8000000000000000", level=4, user_sid="S-1-5-18")


def ntlm_8004(t: float | datetime, server: str, user: str, workstation: str, dc: str = DC,
              channel: str = NTLM_CHANNEL, event_id: int = 8004, domain: str = "NULL") -> WindowsEvent:
    return parse_event_xml(ntlm_8004_xml(t, server, user, workstation, dc, channel, event_id, domain))


def logon_4625(t: float | datetime, account: str, status: str = "0xc000006d", sub_status: str = "0xc000006a",
               workstation: str = "WIN81", ip: str = "10.0.0.50", host: str = "SRV01.contoso.local",
               logon_type: str = "3", package: str = "NTLM", account_sid: str = "S-1-0-0") -> WindowsEvent:
    """A failed logon logged by the host accessed."""
    return make(4625, {"SubjectUserSid": "S-1-0-0", "TargetUserSid": account_sid, "TargetUserName": account,
                       "TargetDomainName": "CONTOSO", "Status": status, "FailureReason": "%%2313",
                       "SubStatus": sub_status, "LogonType": logon_type, "LogonProcessName": "NtLmSsp ",
                       "AuthenticationPackageName": package, "WorkstationName": workstation,
                       "LmPackageName": "-", "KeyLength": "0", "ProcessId": "0x0", "IpAddress": ip,
                       "IpPort": "49152"}, t, computer=host, keywords=AUDIT_FAILURE)


def kerberos(event_id: int, t: float | datetime, account: str, status: str, ip: str = "::ffff:10.0.0.60",
             sid: str = f"{DOMAIN_SID}-1105", dc: str = DC) -> WindowsEvent:
    """4768 (TGT request) or 4771 (pre-authentication failed)."""
    data = {"TargetUserName": account, "TargetSid": sid, "ServiceName": "krbtgt", "TicketOptions": "0x40810010",
            "Status": status, "PreAuthType": "2", "IpAddress": ip, "IpPort": "49667"}
    if event_id == 4768:
        data |= {"TargetDomainName": "CONTOSO.LOCAL", "ServiceSid": f"{DOMAIN_SID}-502",
                 "TicketEncryptionType": "0x12"}
    kw = AUDIT_SUCCESS if int(status, 16) == 0 else AUDIT_FAILURE
    return make(event_id, data, t, computer=dc, keywords=kw)


def group_change(event_id: int, t: float | datetime, group_name: str, group_sid: str, *,
                 member_sid: str = f"{DOMAIN_SID}-1601", member_name: str = "CN=eve,CN=Users,DC=contoso,DC=local",
                 actor: str = "dadmin", actor_sid: str = f"{DOMAIN_SID}-1104", group_domain: str = "CONTOSO",
                 dc: str = DC) -> WindowsEvent:
    """One member added to / removed from a group (4728/4729, 4732/4733, 4756/4757)."""
    return make(event_id, {"MemberName": member_name, "MemberSid": member_sid, "TargetUserName": group_name,
                           "TargetDomainName": group_domain, "TargetSid": group_sid, "SubjectUserSid": actor_sid,
                           "SubjectUserName": actor, "SubjectDomainName": "CONTOSO", "SubjectLogonId": "0x3031e",
                           "PrivilegeList": "-"}, t, computer=dc)


def service_7045(t: float | datetime, name: str, image: str, host: str = DC,
                 user_sid: str = f"{DOMAIN_SID}-500", service_type: str = "user mode service",
                 start_type: str = "demand start", account: str = "LocalSystem") -> WindowsEvent:
    """The System-log service install (Service Control Manager, classic event with Qualifiers)."""
    return make(7045, {"ServiceName": name, "ImagePath": image, "ServiceType": service_type,
                       "StartType": start_type, "AccountName": account}, t, computer=host, channel="System",
                provider=SCM, keywords="0x8080000000000000", level=4, user_sid=user_sid, qualifiers="16384")


def service_4697(t: float | datetime, name: str, image: str, host: str = DC, subject: str = "dadmin",
                 subject_sid: str = f"{DOMAIN_SID}-1104") -> WindowsEvent:
    """The Security-log twin of 7045 (numeric type and start values, other field names)."""
    return make(4697, {"SubjectUserSid": subject_sid, "SubjectUserName": subject, "SubjectDomainName": "CONTOSO",
                       "SubjectLogonId": "0x3e7", "ServiceName": name, "ServiceFileName": image,
                       "ServiceType": "0x10", "ServiceStartType": "3", "ServiceAccount": "LocalSystem"},
                t, computer=host)


def run(events: Iterable[WindowsEvent], cfg: Detection | None = None,
        baseline: Baseline | None = None) -> DetectionEngine:
    """Feed every event through the real detection chain, then end the input."""
    engine = DetectionEngine(cfg or Detection(), baseline)
    for ev in events:
        engine.feed(ev)
    engine.finish()
    return engine


def of_type(engine: DetectionEngine, type_: str) -> list[Alert]:
    """The alerts of one type an engine raised, oldest first."""
    return sorted((a for a in engine.alerts.values() if a.type == type_), key=lambda a: a.start)
