"""What one processing step hands the store (`Batch`), and how records become rows."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import msgspec

from ..activities import Activity, AuthActivity, DcActivity, GroupChange, Logon
from ..catalogue import CATALOGUE, NTLM_DC_AUDIT_IDS
from ..alerts import Alert
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
    health: dict[tuple[str, int], list] = field(default_factory=dict)  # (dc, id) -> [first, last, last_utc, n]
    checkpoint: int | None = None  # the spool position (progress 'spool') of a one-node service
    progress: dict[str, int] = field(default_factory=dict)  # other named positions (stream partitions)
    forward: bool = True  # False while replaying after a restart
    aliases: dict[str, str] = field(default_factory=dict)  # address -> host name learned (HostAliases)


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
