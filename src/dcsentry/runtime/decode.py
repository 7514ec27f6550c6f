"""The intake's decoding step, the same in both modes: received bytes -> routed messages.

Events are decoded where they arrive, before the durable write (the single node's spool or the
distributed mode's stream), for three reasons: the distributed mode must route by what an event
says; a message that fits no layout is counted and sampled per peer where the peer is known; and
the senders' checks ([serve] senders for syslog, the WEF client identity) need the connection.
What is written durably is then the same in both modes: envelopes and intake alerts
(runtime/routing.py), which the detection core reads.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..activities.keys import SERVICE_IDS, computer_key, dc_of
from ..alerts import Alert
from ..config import Config
from ..detectors.senders import SenderCheck
from ..detectors.wef_sender import WefSenderCheck
from ..formats.siem import parse_with_layout
from ..formats.xml import decode_wef
from ..identity import trusted_source
from ..model import Origin, WindowsEvent
from .routing import ALERT, EVENT, Envelope, Router, alert_msg_id, encode, encode_alert, msg_id

SAMPLES = 1000  # peers whose last unreadable message is kept for the operator


@dataclass(slots=True)
class Message:
    """One durable message: its partition, what it holds, its bytes and its deduplication id."""

    partition: int
    kind: str  # routing.EVENT or routing.ALERT
    data: bytes
    mid: str
    received_at: float
    peer: str


def peer_host(peer: str) -> str:
    """`tcp://10.0.0.5:50123#cn` -> `10.0.0.5` (IPv6 keeps its brackets)."""
    return peer.split("://", 1)[-1].split("#", 1)[0].rsplit(":", 1)[0]


class IntakeDecoder:
    """Decodes, checks and routes received messages; counts what it read by layout and peer.

    `dcs` is the set of computers known to be DCs (the distributed mode shares it between ingest
    nodes); `on_new_dc` hears of each one this decoder learns first."""

    def __init__(self, cfg: Config, partitions: int = 1, dcs: set[str] | None = None,
                 on_new_dc: Callable[[str], None] | None = None) -> None:
        self.router = Router(cfg.detection.honeytokens, partitions)
        self.senders = SenderCheck(cfg.serve.senders)
        self.wef = WefSenderCheck(cfg.detection, cfg.wef.intermediate_collectors)
        self.dcs = dcs if dcs is not None else set()
        self.on_new_dc = on_new_dc
        self.counters: Counter[str] = Counter()
        self.by_layout: Counter[str] = Counter()
        self.parsed_by_peer: Counter[str] = Counter()
        self.failed_by_peer: Counter[str] = Counter()
        self.samples: dict[str, str] = {}
        self._seq = 0
        self._alerts: dict[str, Alert] = {}  # intake alerts grown in the batch being decoded

    def set_honeytokens(self, honeytokens: list[str]) -> None:
        self.router.set_honeytokens(honeytokens)

    # -- one received message ---------------------------------------------------------------------
    def _read(self, read: Callable[[bytes, Origin], tuple[str, WindowsEvent]], data: bytes, peer: str,
              host: str) -> tuple[str, WindowsEvent] | None:
        """`read` the message, or count it as failed (per peer, a sample kept) and give None."""
        self._seq += 1
        try:
            return read(data, Origin(peer, self._seq))
        except ValueError as exc:
            self.failed(host, exc, data)
            return None

    def syslog(self, data: bytes, received_at: float, peer: str, transport: str, out: list[Message]) -> None:
        """`peer` is `scheme://host:port`, with `#name` when the client showed a certificate."""
        host = peer_host(peer)
        read = self._read(parse_with_layout, data, peer, host)
        if read is None:
            return
        layout, ev = read
        if self.senders.active:
            name = peer.split("#", 1)[1] if "#" in peer else None
            address = host.strip("[]")
            if not self.senders.allows(address, name, ev.computer):
                self.counters["sender_mismatch"] += 1
                a = self.senders.mismatch(ev, address, name)
                self._alerts[a.id] = a
                return
        self.event(ev, layout, received_at, peer, host, trusted_source(transport, peer), out)

    def wef_event(self, data: bytes, received_at: float, peer: str, out: list[Message]) -> None:
        """A WEF delivery's event (its XML); the client is authenticated (certificate or Kerberos)."""
        host = peer_host(peer)
        read = self._read(decode_wef, data, peer, host)
        if read is None:
            return
        layout, ev = read
        mismatch = self.wef.check(ev, peer)
        if mismatch is not None:
            self._alerts[mismatch.id] = mismatch
        self.event(ev, layout, received_at, peer, host, True, out, wef=True)

    def event(self, ev: WindowsEvent, layout: str, received_at: float, peer: str, host: str, trusted: bool,
              out: list[Message], wef: bool = False) -> None:
        self.counters["parsed"] += 1
        self.by_layout[layout] += 1
        self.parsed_by_peer[host] += 1
        dc = dc_of(ev)
        if dc is not None and dc not in self.dcs:
            self.dcs.add(dc)
            if self.on_new_dc is not None:
                self.on_new_dc(dc)
        is_dc = ev.event_id in SERVICE_IDS and computer_key(ev.computer) in self.dcs
        mid = msg_id(ev, trusted)
        for p, token in self.router.route(ev, mid):
            env = Envelope(ev, received_at, host, dc=is_dc, token=token, trusted=trusted, wef=wef)
            out.append(Message(p, EVENT, encode(env), mid + "|t" if token else mid, received_at, peer))

    def failed(self, host: str, exc: Exception, data: bytes) -> None:
        """A message that fits no layout: counted per peer, a sample kept, never written."""
        self.counters["failed"] += 1
        self.failed_by_peer[host] += 1
        if host not in self.samples or len(self.samples) < SAMPLES:
            self.samples[host] = f"{exc}: {data[:300]!r}"

    def alerts(self, received_at: float, out: list[Message]) -> None:
        """The intake alerts grown since the last call, each as a message of its latest state."""
        for a in self._alerts.values():
            out.append(Message(self.router.alert_partition(a), ALERT, encode_alert(a), alert_msg_id(a),
                               received_at, ""))
        self._alerts.clear()

    def decode_all(self, received: Iterable[tuple[bytes, float, str, str]]) -> list[Message]:
        """(data, received_at, peer, transport) of a batch -> its messages, intake alerts last."""
        out: list[Message] = []
        last = 0.0
        for data, received_at, peer, transport in received:
            last = received_at
            if transport == "wef":
                self.wef_event(data, received_at, peer, out)
            else:
                self.syslog(data, received_at, peer, transport, out)
        self.alerts(last, out)
        return out

    def snapshot(self) -> dict:
        """The parse counters (merged into the deployment's `processor` row: runtime/counters.py)."""
        c = self.counters
        return {"parsed": c["parsed"], "failed": c["failed"], "sender_mismatch": c["sender_mismatch"],
                "by_layout": dict(self.by_layout), "failed_by_peer": dict(self.failed_by_peer),
                "parsed_by_peer": dict(self.parsed_by_peer), "samples": dict(list(self.samples.items())[:50])}
