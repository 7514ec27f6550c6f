"""Synthetic Kerberos ticket events (4768 TGT, 4769 service ticket, 4624 logon) for the Kerberos
detection tests, in the field order of reference/dc-log-alerts.md A2/A3 (obs. layouts of the
EVTX-to-MITRE and OTRF recordings), read back through eventfactory's real XML reader. Version-2
events (2025+ updates) append the v2 fields after the v0 ones, as the provider does; no public
recording of them exists in the corpus, so tests using `v2=` carry `synthetic` in their names."""

from __future__ import annotations

from datetime import datetime
from xml.sax.saxutils import escape, quoteattr

from conftest import corpus
from eventfactory import AUDIT_FAILURE, AUDIT_SUCCESS, DC, DOMAIN_SID, FIELDS, _TASK, event_xml
from dcsentry.activities.context import Inventory
from dcsentry.alerts import Alert
from dcsentry.config import Detection
from dcsentry.detectors.baseline import Baseline
from dcsentry.detectors.engine import DetectionEngine
from dcsentry.formats import ReadStats
from dcsentry.formats.xml import parse_event_xml
from dcsentry.hunt import hunt
from dcsentry.model import WindowsEvent

FIELDS.setdefault(4769, ("TargetUserName", "TargetDomainName", "ServiceName", "ServiceSid", "TicketOptions",
                         "TicketEncryptionType", "IpAddress", "IpPort", "Status", "LogonGuid",
                         "TransmittedServices"))
FIELDS.setdefault(4624, ("SubjectUserSid", "SubjectUserName", "SubjectDomainName", "SubjectLogonId",
                         "TargetUserSid", "TargetUserName", "TargetDomainName", "TargetLogonId", "LogonType",
                         "LogonProcessName", "AuthenticationPackageName", "WorkstationName", "LogonGuid",
                         "TransmittedServices", "LmPackageName", "KeyLength", "ProcessId", "ProcessName",
                         "IpAddress", "IpPort", "ImpersonationLevel"))
_TASK.setdefault(4769, 14337)
_TASK.setdefault(4624, 12544)

REALM = "CONTOSO.LOCAL"
ATTACKER = "::ffff:10.0.0.66"
CLIENT = "::ffff:10.0.0.21"


def sid(rid: int) -> str:
    return f"{DOMAIN_SID}-{rid}"


def _render(event_id: int, data: dict[str, str], t: float | datetime, v2: dict[str, str] | None, ok: bool,
            dc: str) -> WindowsEvent:
    xml = event_xml(event_id, data, t, computer=dc, keywords=AUDIT_SUCCESS if ok else AUDIT_FAILURE)
    if v2:  # version 2 appends its fields after the v0 ones
        rows = "".join(f"<Data Name={quoteattr(k)}>{escape(v)}</Data>" for k, v in v2.items())
        xml = xml.replace("<Version>0</Version>", "<Version>2</Version>").replace("</EventData>", rows + "</EventData>")
    return parse_event_xml(xml)  # type: ignore[return-value]


def tgs(t: float | datetime, account: str, service: str, *, etype: str = "0x17", ip: str = CLIENT,
        status: str = "0x0", realm: str = REALM, service_rid: int = 2001, dc: str = DC,
        v2: dict[str, str] | None = None) -> WindowsEvent:
    """4769: `account` (bare) asks a ticket for the SPN owned by `service`."""
    return _render(4769, {"TargetUserName": f"{account}@{realm}", "TargetDomainName": realm, "ServiceName": service,
                          "ServiceSid": sid(service_rid), "TicketOptions": "0x40810000", "TicketEncryptionType": etype,
                          "IpAddress": ip, "IpPort": "50123", "Status": status,
                          "LogonGuid": "{5D0E4B1A-0000-4000-8000-00000000A001}", "TransmittedServices": "-"},
                   t, v2, int(status, 16) == 0, dc)


def tgt(t: float | datetime, account: str, *, etype: str = "0x12", preauth: str = "2", ip: str = CLIENT,
        status: str = "0x0", realm: str = REALM, rid: int = 1105, dc: str = DC,
        v2: dict[str, str] | None = None) -> WindowsEvent:
    """4768: a TGT for `account`, pre-authenticated (`preauth` 2) or not (0)."""
    ok = int(status, 16) == 0
    null = "S-1-0-0"
    return _render(4768, {"TargetUserName": account, "TargetDomainName": realm, "TargetSid": sid(rid) if ok else null,
                          "ServiceName": "krbtgt" if ok else f"krbtgt/{realm}", "ServiceSid": sid(502) if ok else null,
                          "TicketOptions": "0x40810010", "Status": status,
                          "TicketEncryptionType": etype if ok else "0xffffffff", "PreAuthType": preauth if ok else "-",
                          "IpAddress": ip, "IpPort": "49667"}, t, v2, ok, dc)


def logon(t: float | datetime, account: str, user_sid: str, *, ip: str = "10.0.0.66", host: str = DC,
          package: str = "Kerberos") -> WindowsEvent:
    return _render(4624, {"SubjectUserSid": "S-1-0-0", "TargetUserSid": user_sid, "TargetUserName": account,
                          "TargetDomainName": "CONTOSO", "TargetLogonId": "0x99aa", "LogonType": "3",
                          "LogonProcessName": "Kerberos", "AuthenticationPackageName": package,
                          "WorkstationName": "-", "IpAddress": ip, "IpPort": "50124"}, t, None, True, host)


# v2 field values as observed (reference A3): AES-capable account, Rubeus /rc4, RC4-only account.
V2_AES_KEYS = {"AccountSupportedEncryptionTypes": "0x27 (DES, RC4, AES-Sk)", "AccountAvailableKeys": "AES-SHA1, RC4",
               "ServiceSupportedEncryptionTypes": "0x1F (DES, RC4, AES128-SHA96, AES256-SHA96)",
               "ServiceAvailableKeys": "AES-SHA1, RC4",
               "DCSupportedEncryptionTypes": "0x1F (DES, RC4, AES128-SHA96, AES256-SHA96)",
               "DCAvailableKeys": "AES-SHA1, RC4"}
ADVERTIZED_AES = {"ClientAdvertizedEncryptionTypes": "\n\t\t\tAES256-CTS-HMAC-SHA1-96\n\t\t\tRC4-HMAC-NT"}
ADVERTIZED_RC4 = {"ClientAdvertizedEncryptionTypes": "\n\t\t\tRC4-HMAC-NT"}
V2_RC4_KEYS = {**V2_AES_KEYS, "AccountAvailableKeys": "RC4", "ServiceAvailableKeys": "RC4"}


def v2_tgt(keys: dict[str, str], advertized: dict[str, str], preauth_etype: str = "0x17") -> dict[str, str]:
    return {"ResponseTicket": "-", **keys, **advertized, "SessionKeyEncryptionType": preauth_etype,
            "PreAuthEncryptionType": preauth_etype}


def v2_tgs(keys: dict[str, str], advertized: dict[str, str]) -> dict[str, str]:
    return {"RequestTicketHash": "-", "ResponseTicketHash": "-", **keys, **advertized,
            "SessionKeyEncryptionType": "0x17"}


# -- shared by the test_dclog_kerberos_* files ---------------------------------------------------
DAY = 86400.0
KERBEROS_TYPES = ("kerberoasting", "asrep-roasting", "golden-ticket", "overpass-the-hash")
EVTX = "dc-log/evtx/evtx-to-mitre-attack/"


def hunted(rel: str, type_: str) -> list[Alert]:
    alerts, _ = hunt([str(corpus(rel))], Detection(), ReadStats())
    return [a for a in alerts if a.type == type_]


def engine_with(inv: Inventory | None = None, cfg: Detection | None = None) -> DetectionEngine:
    return DetectionEngine(cfg or Detection(), Baseline(), inventory=inv)


def feed(engine: DetectionEngine, events: list) -> DetectionEngine:
    for ev in events:
        engine.feed(ev)
    engine.finish()
    return engine
