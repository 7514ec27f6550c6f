"""What one processing step hands the store (`Batch`), and how records become rows."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from ..activities import Activity, AuthActivity, DcActivity, GroupChange, Logon
from ..alerts import Alert, Evidence
from ..catalogue import CATALOGUE, NTLM_DC_AUDIT_IDS
from ..formats.values import parse_time
from ..model import WindowsEvent, iso_utc

_enc = msgspec.json.Encoder()


def stored_event_ids() -> frozenset[int]:
    return frozenset(CATALOGUE) | NTLM_DC_AUDIT_IDS


@dataclass
class Batch:
    """What one processing step produced, committed all or nothing."""

    events: list[tuple[WindowsEvent, float, bool]] = field(default_factory=list)  # (event, received_at, trusted)
    activities: list[Activity] = field(default_factory=list)
    alerts: dict[str, Alert] = field(default_factory=dict)  # id -> alert (latest state)
    health: dict[tuple[str, int], list] = field(default_factory=dict)  # (dc, id) -> [first, last, last event time, n]
    checkpoint: int | None = None  # the spool position (progress 'spool') of a one-node service
    progress: dict[str, int] = field(default_factory=dict)  # other named positions (stream partitions)
    forward: bool = True  # False while replaying after a restart
    aliases: dict[str, str] = field(default_factory=dict)  # address -> host name learned (HostAliases)


RAW_EVENTS = ("none", "detector", "all")  # [serve] raw_events: which raw events the store keeps
HOLD_EVENTS = 20_000  # events not kept, held back in case a later batch's activity or alert names them
EventIn = tuple[WindowsEvent, float, bool]  # (event, received_at, trusted), as in Batch.events
EvidenceKey = tuple[str, int, int | None]  # (computer, event id, record id): what an evidence item names


class RawEvents:
    """Which of a batch's events the store keeps. `all`: every catalogue event (the full record);
    `detector`: the events behind the batch's activities and alerts (what detection read and a
    responder follows); `none`: only the evidence of alerts. Why a hold: an alert (or a 4776 joined
    with its 8004) often names events of earlier batches, so the last HOLD_EVENTS dropped events wait
    here and are written when named; older evidence shows as a bare reference, as after retention."""

    def __init__(self, policy: str = "all", hold: int = HOLD_EVENTS) -> None:
        if policy not in RAW_EVENTS:
            raise ValueError(f"raw_events must be one of {', '.join(RAW_EVENTS)}, not {policy!r}")
        self.policy = policy
        self.hold = hold
        self._held: OrderedDict[EvidenceKey, EventIn] = OrderedDict()

    def select(self, b: Batch) -> list[EventIn]:
        """The events of `b` to write, plus held ones that its activities or alerts name now."""
        if self.policy == "all":
            return b.events
        wanted: set[EvidenceKey] = set()
        _named(wanted, (e for a in b.alerts.values() for e in a.evidence))
        if self.policy == "detector":
            _named(wanted, (e for act in b.activities for e in act.evidence))
        kept: list[EventIn] = []
        held = self._held
        for item in b.events:
            ev = item[0]
            key = (ev.computer, ev.event_id, ev.record_id)
            if key in wanted:
                kept.append(item)
            elif ev.record_id is not None:  # without a record id no evidence can name it
                held[key] = item
                held.move_to_end(key)
        for key in wanted:
            named = held.pop(key, None)
            if named is not None:
                kept.append(named)
        while len(held) > self.hold:
            held.popitem(last=False)
        return kept


def _named(into: set[EvidenceKey], evidence: Iterable) -> None:
    for e in evidence:
        into.add((e.computer, e.event_id, e.record_id))


def event_row(e: WindowsEvent, received_at: float, trusted: bool = False) -> tuple:
    """An event without a record id (some SIEM layouts drop it) is keyed by a stable content hash;
    `trusted`: it came over an authenticated transport (identity.py)."""
    body = _enc.encode(e)
    rid = e.record_id
    if rid is None:
        rid = -int.from_bytes(hashlib.blake2b(body, digest_size=7).digest(), "big")
    return (e.computer, e.channel, rid, e.event_id, iso_utc(e.time), received_at,
            str(e.origin) if e.origin else None, body.decode(), int(trusted))


def activity_row(act: Activity) -> tuple:
    body = _enc.encode(act).decode()
    if isinstance(act, AuthActivity):
        return ("auth", iso_utc(act.time), act.account_key, act.source, act.reporter, body)
    if isinstance(act, GroupChange):
        return ("group", iso_utc(act.time), act.member.lower(), act.group_name, act.dc, body)
    if isinstance(act, Logon):
        return ("logon", iso_utc(act.time), act.account_key, act.source or act.host, act.host, body)
    if isinstance(act, DcActivity):
        return (act.kind, iso_utc(act.time), act.actor.lower(), act.subject, act.host, body)
    return ("service", iso_utc(act.time), (act.creator_name or act.creator_sid or "").lower(), act.host, act.host, body)


def activity_server(act: Activity) -> str | None:
    """The host an authentication reached: the server of a 4776+8004 join, or the host that logged a
    4625 (it is the host accessed). None for other activities and for a 4776 without its 8004."""
    if not isinstance(act, AuthActivity):
        return None
    if act.server:
        return act.server
    if act.evidence and act.evidence[0].event_id == 4625:
        return act.reporter or None
    return None


def alert_row(a: Alert, status: str, now: float) -> tuple[tuple, str]:
    """The alerts row (in the column order of the upsert) and the alert's JSON body."""
    d = a.to_dict()
    body = _enc.encode(d).decode()
    return ((a.id, a.type, a.kind, a.severity, status, d["start"], d["end"], a.count, a.revision, a.title,
             a.description, body, now), body)


def stored_time(text: str) -> datetime:
    """A time the store wrote (ISO 8601 UTC): unreadable only if the row was damaged."""
    t = parse_time(text)
    if t is None:
        raise ValueError(f"unreadable stored time {text!r}")
    return t


def alert_from_dict(d: dict) -> Alert:
    """Rebuild an Alert from its stored JSON (what sinks format)."""
    ent = d.get("entities", {})
    return Alert(type=d["type"], key=d.get("key", ""), title=d["title"], description=d["description"],
                 severity=d["severity"], technique=d.get("technique", ""), start=stored_time(d["start"]),
                 end=stored_time(d["end"]), count=d.get("count", 1), accounts=ent.get("accounts", []),
                 hosts=ent.get("hosts", []), dcs=ent.get("dcs", []),
                 evidence=[Evidence(e["event_id"], e["computer"], e.get("record_id"), stored_time(e["time"]),
                                    e.get("origin")) for e in d.get("evidence", [])],
                 protocol=d.get("protocol"), outcome=d.get("outcome"), learning=d.get("learning", False),
                 status=d.get("status", "open"), revision=d.get("revision", 0), details=d.get("details", {}),
                 kind=d.get("kind", "security"), incident=d.get("incident"))
