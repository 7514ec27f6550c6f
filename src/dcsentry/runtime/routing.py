"""What the intake hands to detection, which partition it goes to, and its deduplication id.

A message is one decoded Windows event in an envelope (msgpack), or an alert the intake raised
(a sender check). Both modes write the same messages: the single node into its spool (one
partition), the distributed mode onto the JetStream stream. A message's partition is a stable hash
of the event's *detection key* (activities/keys.py), so every event a detector counts together
reaches the same detection core; events no detector counts by a key go by their message id, spread
evenly. An event naming a honeytoken is also sent, flagged, to the partition of the token, where
only the honeytoken engine sees it: one alert per token, whichever sources used it.

The message id is the event's identity in its source's trust class (identity.py): the stream drops
a re-publish inside its duplicate window, a detection core drops one it has already fed, and the
store inserts an event once.
"""

from __future__ import annotations

import zlib

import msgspec

from ..activities.keys import Honeytokens, detection_key
from ..alerts import Alert
from ..identity import event_identity
from ..model import WindowsEvent


class Envelope(msgspec.Struct, array_like=True, gc=False):
    event: WindowsEvent
    received_at: float
    peer: str  # the sending host, for per-peer counters
    dc: bool = False  # the event's computer is known to be a domain controller (the intake's view)
    token: bool = False  # the honeytoken copy: for the honeytoken engine only, not stored again
    trusted: bool = False  # came over an authenticated transport (identity.py)
    wef: bool = False  # delivered over Windows Event Forwarding (its duplicates are counted apart)


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(Envelope)
_alert_dec = msgspec.msgpack.Decoder(Alert)
KIND_HEADER = "Dcsentry-Kind"  # "alert": the message is an alert raised by the intake, not an event
EVENT, ALERT = "event", "alert"  # what a message holds (the spool's transport column, the bus header)


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


def msg_id(ev: WindowsEvent, trusted: bool = False, token: bool = False) -> str:
    """The message id: the event's identity in its source's trust class; a honeytoken copy apart."""
    mid = event_identity(ev, trusted)
    return mid + "|t" if token else mid


def alert_msg_id(alert: Alert) -> str:
    """One per state of an alert (its count), so a re-sent copy of the same state is dropped."""
    return f"alert|{alert.id}|{alert.count}"


def partition_of(key: str, partitions: int) -> int:
    """Stable across processes and versions (not Python's salted hash)."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % partitions


class Router:
    """Event -> [(partition, is the honeytoken copy)]."""

    def __init__(self, honeytokens: list[str], partitions: int) -> None:
        self.partitions = partitions
        self.tokens = Honeytokens(honeytokens)

    def set_honeytokens(self, honeytokens: list[str]) -> None:
        """The honeytoken list to route by (the file's, then the run-time one as it changes)."""
        self.tokens = Honeytokens(honeytokens)

    def token_of(self, ev: WindowsEvent) -> str | None:
        return self.tokens.token_of(ev)

    def route(self, ev: WindowsEvent, mid: str | None = None) -> list[tuple[int, bool]]:
        """With one partition every event reaches the one engine, which keeps the honeytoken list:
        no copies (runtime/core.py)."""
        if self.partitions == 1:
            return [(0, False)]
        out = [(partition_of(detection_key(ev) or "id:" + (mid or msg_id(ev)), self.partitions), False)]
        token = self.tokens.token_of(ev)
        if token is not None:
            out.append((partition_of("token:" + token, self.partitions), True))
        return out

    def alert_partition(self, alert: Alert) -> int:
        """One alert id always goes to one partition, so its states arrive in order."""
        return partition_of("alert:" + alert.id, self.partitions)
