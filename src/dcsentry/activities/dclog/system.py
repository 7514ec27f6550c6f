"""Cover-ups and trusts (reference/dc-log-alerts.md A7): 1102/104 log cleared, 4719 audit policy
changed, 4706/4865 trust added.

1102 and 104 have no EventData: their fields are UserData/LogFileCleared, which every reader
(EVTX, XML, Winlogbeat JSON) flattens to the bare names (`SubjectUserName`, `Channel`). NXLog JSON
carries only the rendered `Message` for them, so those clears come with no subject and, for 104,
no channel: the activity then says "unknown" rather than dropping the clear.
"""

from __future__ import annotations

from ...model import WindowsEvent
from .. import Activity, DcActivity, evidence_of
from ..readers import Stateless
from .fields import guid, number, short, sid

EVENTLOG = "Microsoft-Windows-Eventlog"

# 4719 AuditPolicyChanges: message-table codes and the words Windows renders for them.
_CHANGE_CODES = {"%%8448": ("success", False), "%%8449": ("success", True),
                 "%%8450": ("failure", False), "%%8451": ("failure", True)}


class LogCleared(DcActivity, kw_only=True):
    """An event log cleared (1102: the Security log; 104: any log, named in `channel`)."""

    channel: str = ""  # the log cleared; "" when the record does not say (NXLog 104)
    backup_path: str = ""  # 104: where the old log was saved, if it was
    event_id: int = 1102

    kind = "log-cleared"

    @property
    def subject(self) -> str:
        return self.channel or "unknown log"


class AuditPolicyChange(DcActivity, kw_only=True):
    """One subcategory of the system audit policy changed (4719)."""

    category: str = ""  # CategoryId as logged (%%82xx or words)
    subcategory: str = ""  # SubcategoryId as logged (%%12xxx or words)
    subcategory_guid: str = ""  # lower case, no braces
    removed: list[str] = []  # "success" / "failure" no longer audited
    added: list[str] = []  # "success" / "failure" now audited
    raw_changes: str = ""

    kind = "audit-policy"

    @property
    def subject(self) -> str:
        return self.subcategory_guid or self.subcategory


class TrustChange(DcActivity, kw_only=True):
    """A trust to another domain created (4706) or a forest trust name entry added (4865)."""

    event_id: int = 4706
    domain_name: str = ""  # 4706 DomainName; 4865 ForestRoot
    domain_sid: str = ""
    tdo_type: int | None = None  # 1 downlevel, 2 uplevel (AD), 3 MIT realm
    direction: int | None = None  # 0 disabled, 1 inbound, 2 outbound, 3 both
    attributes: int | None = None  # trustAttributes bits
    sid_filtering: str = ""  # SidFilteringEnabled as logged
    entry_type: str = ""  # 4865 EntryType (0 top-level name, 1 excluded name, 2 domain info)
    entry_name: str = ""  # 4865 TopLevelName / DnsName (NetbiosName)
    entry_sid: str = ""  # 4865 DomainSid
    operation_id: str = ""  # 4865 OperationId (ties the entries of one change)

    kind = "trust"

    @property
    def subject(self) -> str:
        return self.domain_name


def policy_changes(value: str) -> tuple[list[str], list[str]]:
    """`%%8448, %%8450` or `Success removed, Failure removed` -> (removed, added) kinds."""
    removed: list[str] = []
    added: list[str] = []
    for item in (value or "").replace(";", ",").split(","):
        t = item.strip()
        if not t or t == "-":
            continue
        hit = _CHANGE_CODES.get(t)
        if hit is None:
            low = t.lower()
            what = "success" if "success" in low else "failure" if "fail" in low else ""
            if not what:
                continue
            hit = (what, "removed" not in low)
        (added if hit[1] else removed).append(hit[0])
    return removed, added


def _subject(ev: WindowsEvent, reader: Stateless, host: str) -> dict:
    d = ev.data
    logon_id = d.get("SubjectLogonId", "")
    return dict(time=ev.time, host=host, actor=d.get("SubjectUserName", ""), actor_sid=sid(d.get("SubjectUserSid")),
                actor_domain=d.get("SubjectDomainName", ""), logon_id=logon_id,
                session=reader.ctx.sessions.get(host, logon_id, ev.time.timestamp()), evidence=[evidence_of(ev)])


class SystemReader(Stateless):
    ids = frozenset({1102, 104, 4719, 4706, 4865})

    def feed(self, ev: WindowsEvent) -> list[Activity]:
        eid = ev.event_id
        host = short(ev.computer)
        d = ev.data
        if eid in (1102, 104):
            if ev.provider and ev.provider != EVENTLOG:  # 104/1102 of other providers mean other things
                return []
            if eid == 1102 and ev.channel != "Security":
                return []
            channel = "Security" if eid == 1102 else (d.get("Channel") or "").strip()
            if eid == 104 and "SubjectUserName" not in d and "BackupPath" not in d:
                channel = ""  # NXLog: `Channel` is the envelope's (System), not the log that was cleared
            act = LogCleared(**_subject(ev, self, host), channel=channel,
                             backup_path=(d.get("BackupPath") or "").strip(), event_id=eid)
            if not act.actor_sid and ev.user_sid:
                act.actor_sid = sid(ev.user_sid)
            return [act]
        if ev.channel != "Security":
            return []
        if eid == 4719:
            raw = d.get("AuditPolicyChanges", "")
            removed, added = policy_changes(raw)
            return [AuditPolicyChange(**_subject(ev, self, host), category=d.get("CategoryId", ""),
                                      subcategory=d.get("SubcategoryId", ""),
                                      subcategory_guid=guid(d.get("SubcategoryGuid")), removed=removed,
                                      added=added, raw_changes=raw)]
        self.ctx.inventory.add_dc(host)  # trusts are logged by DCs only
        if eid == 4706:
            return [TrustChange(**_subject(ev, self, host), event_id=eid, domain_name=d.get("DomainName", ""),
                                domain_sid=sid(d.get("DomainSid")), tdo_type=number(d.get("TdoType")),
                                direction=number(d.get("TdoDirection")), attributes=number(d.get("TdoAttributes")),
                                sid_filtering=d.get("SidFilteringEnabled", ""))]
        name = next((v for k in ("TopLevelName", "DnsName") if (v := (d.get(k) or "").strip()) not in ("", "-")), "")
        netbios = (d.get("NetbiosName") or "").strip()
        if netbios not in ("", "-"):
            name = f"{name} ({netbios})" if name else netbios
        return [TrustChange(**_subject(ev, self, host), event_id=eid, domain_name=d.get("ForestRoot", ""),
                            domain_sid=sid(d.get("ForestRootSid")), entry_type=d.get("EntryType", ""),
                            entry_name=name, entry_sid=sid(d.get("DomainSid")),
                            operation_id=d.get("OperationId", ""))]
