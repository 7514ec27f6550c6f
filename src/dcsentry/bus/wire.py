"""What travels on the stream, which partition it goes to, and its deduplication id.

A message is one decoded Windows event in an envelope (msgpack). Its partition is a stable hash of
the *detection key*, so every event a detector counts together reaches the same worker:

- NTLM/Kerberos authentications (4776, 4625, 4768, 4771) and the NTLM audit 8004-8006 by their
  source: the address when the event has one, else the workstation name, exactly as
  `AuthActivity.source` (and the 4776/8004 join is on DC + account + workstation, so both halves
  meet). Brute force (source + account), spray and enumeration (source) stay on one partition.
- Group membership changes by the actor who made them (sensitive-group alerts and their baseline
  are per actor); service installs by the host they were installed on.
- Everything no detector counts by a key (4769, 4624, ... most of a DC's traffic) by its message
  id: spread evenly, so one busy DC does not make one partition hot.

An event of a honeytoken account is also sent, flagged, to the partition of the token, where only
the honeytoken detector sees it: one alert per token, whichever sources used it.

`Nats-Msg-Id` is the event's store key (computer, channel, record id), or a content hash when a
layout carries no record id: JetStream drops a re-publish inside its duplicate window, the worker
drops one it has already fed, and the store inserts an event once.
"""

from __future__ import annotations

import zlib

import msgspec

from ..activities.builder import _host, _ip, _short
from ..alerts import Alert
from ..catalogue import GROUP_ADD_IDS, GROUP_REMOVE_IDS, NTLM_CHANNEL, NTLM_DC_AUDIT_IDS
from ..config import Detection
from ..detectors.base import Incidents
from ..detectors.honeytoken import HoneytokenDetector
from ..identity import event_identity
from ..model import WindowsEvent

GROUP_IDS = GROUP_ADD_IDS | GROUP_REMOVE_IDS
SERVICE_IDS = frozenset({7045, 4697})
# account-management and directory-change events a honeytoken can be the object (or subject) of
TOKEN_ACCOUNT_IDS = frozenset({4720, 4722, 4724, 4725, 4726, 4738, 4741, 4742, 4743, 4781, 4765, 4766})
TOKEN_DIRECTORY_IDS = frozenset({5136, 5137, 5139, 5141})


class Envelope(msgspec.Struct, array_like=True, gc=False):
    event: WindowsEvent
    received_at: float
    peer: str  # the sending host, for per-peer counters
    dc: bool = False  # the event's computer is known to be a domain controller (ingest's view)
    token: bool = False  # the honeytoken copy: for the honeytoken detector only, not stored again
    trusted: bool = False  # came over an authenticated transport (identity.py)


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(Envelope)
_alert_dec = msgspec.msgpack.Decoder(Alert)
KIND_HEADER = "Dcsentry-Kind"  # "alert": the message is an alert raised on an ingest node, not an event


def encode(env: Envelope) -> bytes:
    return _enc.encode(env)


def decode(data: bytes) -> Envelope:
    """Raises msgspec.DecodeError for a message that is not an envelope."""
    return _dec.decode(data)


def encode_alert(alert: Alert) -> bytes:
    return _enc.encode(alert)


def decode_alert(data: bytes) -> Alert:
    """Raises msgspec.DecodeError / ValidationError for a message that is not an alert."""
    return _alert_dec.decode(data)


def msg_id(ev: WindowsEvent, trusted: bool = False) -> str:
    """`Nats-Msg-Id`: the event's identity in its source's trust class (identity.py)."""
    return event_identity(ev, trusted)


def partition_of(key: str, partitions: int) -> int:
    """Stable across processes and versions (not Python's salted hash)."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % partitions


def detection_key(ev: WindowsEvent) -> str | None:
    """The key the detectors count this event by, or None when none does."""
    eid, d = ev.event_id, ev.data
    if eid == 4776 and ev.channel == "Security":
        return "src:" + (_host(d.get("Workstation", "")) or "unknown")
    if eid in NTLM_DC_AUDIT_IDS and ev.channel == NTLM_CHANNEL:
        return "src:" + (_host(d.get("WorkstationName", "")) or "unknown")
    if eid == 4625:
        return "src:" + (_ip(d.get("IpAddress", "")) or _host(d.get("WorkstationName", "")) or "unknown")
    if eid in (4768, 4771) and ev.channel == "Security":
        return "src:" + (_ip(d.get("IpAddress", "")) or "unknown")
    if eid in GROUP_IDS:
        sid = (d.get("SubjectUserSid", "") or "").strip()
        return "actor:" + (sid or d.get("SubjectUserName", "") or "unknown").upper()
    if eid in SERVICE_IDS:
        return "host:" + _short(ev.computer)
    if ev.channel == "Security" or eid == 104:
        return _dc_log_key(ev)
    return None


# DC-log events (activities/dclog/): what their detectors count together. A logon (4624) meets the
# actions done under it (4662, 5136) on the partition of (computer, logon id); a 5136 change made of
# several events stays whole on the partition of its OpCorrelationID; account changes go by the
# account changed, Kerberos tickets by client address, cover-ups and CA events by host.
_SESSION_IDS = frozenset({4624, 4662})
_ACCOUNT_IDS = frozenset({4720, 4722, 4724, 4725, 4726, 4738, 4741, 4742, 4743, 4765, 4766, 4781})
_HOST_IDS = frozenset({1102, 104, 4719, 4706, 4865, 4794, 4882, 4885, 4886, 4887, 4888, 4890, 4896, 4898,
                       4899, 4900})


def _dc_log_key(ev: WindowsEvent) -> str | None:
    eid, d = ev.event_id, ev.data
    if eid == 4769:
        return "src:" + (_ip(d.get("IpAddress", "")) or "unknown")
    if eid in _SESSION_IDS:
        logon_id = d.get("TargetLogonId" if eid == 4624 else "SubjectLogonId", "") or ""
        return "sess:" + _short(ev.computer) + "|" + logon_id.lower()
    if eid in (5136, 5137, 5141):
        return "dsop:" + (d.get("OpCorrelationID", "") or d.get("ObjectGUID", "") or "").lower()
    if eid in _ACCOUNT_IDS:
        name = d.get("OldTargetUserName", "") if eid == 4781 else d.get("TargetUserName", "")
        return "acct:" + (name or "").lower()
    if eid in _HOST_IDS:
        return "host:" + _short(ev.computer)
    return None


def dc_of(ev: WindowsEvent) -> str | None:
    """The computer when this event proves it is a DC (the rule of ActivityBuilder.dcs)."""
    eid = ev.event_id
    if (eid in (4768, 4769, 4771, 4662, 5136, 5137, 5141) and ev.channel == "Security") \
            or (eid in NTLM_DC_AUDIT_IDS and ev.channel == NTLM_CHANNEL) or (eid in GROUP_IDS and eid not in (4732, 4733)):
        return _short(ev.computer)
    return None


class Router:
    """Event -> [(partition, is the honeytoken copy)]."""

    def __init__(self, detection: Detection, partitions: int) -> None:
        self.partitions = partitions
        self.set_honeytokens(detection)

    def set_honeytokens(self, detection: Detection) -> None:
        """The honeytoken list to route by (the file's, then the run-time one as it changes)."""
        tokens = HoneytokenDetector(detection, Incidents(detection))
        self._tokens, self.has_tokens = tokens, bool(tokens.names or tokens.sids)

    def token_of(self, ev: WindowsEvent) -> str | None:
        if not self.has_tokens:
            return None
        eid, d = ev.event_id, ev.data
        if eid in (4776, 4625, 4768, 4771):
            return self._tokens._match(d.get("TargetUserName", ""), d.get("TargetSid", "") or d.get("TargetUserSid", ""))
        if eid in NTLM_DC_AUDIT_IDS:
            return self._tokens._match(d.get("UserName", ""))
        if eid in GROUP_IDS:
            return self._tokens._match(d.get("MemberName", ""), d.get("MemberSid", ""))
        if eid == 4769:  # the requester (`user@REALM`), or the account owning the SPN asked for
            return (self._tokens._match(d.get("TargetUserName", ""))
                    or self._tokens._match(d.get("ServiceName", ""), d.get("ServiceSid", "")))
        if eid == 4624:
            return self._tokens._match(d.get("TargetUserName", ""), d.get("TargetUserSid", ""))
        if eid in TOKEN_ACCOUNT_IDS:  # a change to the account (4781: either name), or made by it
            return (self._tokens._match(d.get("TargetUserName", "") or d.get("NewTargetUserName", ""),
                                        d.get("TargetSid", ""))
                    or self._tokens._match(d.get("OldTargetUserName", ""))
                    or self._tokens._match(d.get("SubjectUserName", ""), d.get("SubjectUserSid", "")))
        if eid in TOKEN_DIRECTORY_IDS:
            return (self._tokens.match_dn(d.get("ObjectDN", "") or d.get("OldObjectDN", ""))
                    or self._tokens.match_dn(d.get("NewObjectDN", ""))
                    or self._tokens._match(d.get("SubjectUserName", ""), d.get("SubjectUserSid", "")))
        return None

    def route(self, ev: WindowsEvent, mid: str | None = None) -> list[tuple[int, bool]]:
        key = detection_key(ev) or "id:" + (mid or msg_id(ev))
        out = [(partition_of(key, self.partitions), False)]
        token = self.token_of(ev)
        if token is not None:
            out.append((partition_of("token:" + token, self.partitions), True))
        return out
