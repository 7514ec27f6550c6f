"""Windows Event Forwarding on an ingest node of the distributed mode.

A delivery's events are decoded here, their sender checked (this node is where the client's
certificate or Kerberos principal is known), and published like syslog events (same routing, same
`Nats-Msg-Id`). Only when JetStream has acknowledged every one of them is the client's row
(bookmark, state, heartbeat) written to this node's `spool.db`, and only then does the client get
its Ack. A crash between the PubAcks and that write makes the client re-send from its previous
bookmark; JetStream drops the copies inside its duplicate window, the workers after it (message
ids, then the store's key on computer, channel, record id).

A sender mismatch raises `wef-sender-mismatch` here and publishes the alert's latest state as a
message of its own (header `Dcsentry-Kind: alert`, partition of the alert id): the worker of that
partition upserts it by id in its batch transaction, so it reaches the store once and is forwarded
like any alert.

The node's client rows are also saved to the store (counters row `wef:<node>`) every few seconds,
so that the leader's health check can say "DC02 stopped forwarding" (docs/scaling.md).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from ..alerts import Alert
from ..config import Config
from ..sources.wef.identity import WefChecks, decode_wef
from ..store.spool import Spool, WefUpdate
from .ingest import BusIngest, peer_host

PUBLISH_WITHIN = 20.0  # seconds before a delivery is refused (503): the client keeps it and re-sends


def silence_allowed(cfg: Config) -> float:
    w = cfg.wef
    return w.silent_after or 2 * w.heartbeat_interval + w.max_time


class BusWef:
    """The WEF collector's sink and bookmark source on an ingest node."""

    def __init__(self, cfg: Config, publisher: BusIngest, spool_path: Path) -> None:
        self.cfg = cfg
        self.publisher = publisher
        self.spool = Spool(spool_path)  # wef_clients only: the events live in the stream
        # Only the sender check runs here; duplicates are dropped downstream by message id.
        self.checks = WefChecks(cfg.detection, cfg.wef.intermediate_collectors, lambda *_: False, lambda *_: None)
        self.unsent: dict[str, Alert] = {}  # sender alerts whose latest state JetStream has not acknowledged

    async def consume(self, rows: list[tuple[float, str, str, bytes]], update: WefUpdate) -> None:
        """Publish the delivery (events, and any sender alert they raise), then save the bookmark."""
        pub = self.publisher
        msgs = []
        for received_at, peer, _transport, data in rows:
            host = peer_host(peer)
            try:
                layout, ev = decode_wef(data, pub.next_origin(peer))
            except ValueError as exc:
                pub.failed(host, exc, data)
                continue
            # A re-sent event (lost Ack) is published again (the bus drops it) but not counted again.
            if not self.checks.duplicate(ev, replay=True):
                mismatch = self.checks.check_sender(ev, peer)
                if mismatch is not None:
                    self.unsent[mismatch.id] = mismatch
            msgs.extend(pub.messages(ev, layout, received_at, host, trusted=True))  # WEF: an authenticated client
        sending = {alert_id: a.count for alert_id, a in self.unsent.items()}
        msgs.extend(pub.alert_message(a) for a in self.unsent.values())
        if msgs:
            await pub.send(msgs, within=PUBLISH_WITHIN)
        for alert_id, count in sending.items():  # acknowledged, unless it grew meanwhile (sent again next time)
            a = self.unsent.get(alert_id)
            if a is not None and a.count == count:
                del self.unsent[alert_id]
        await asyncio.to_thread(self.spool.note_wef, update, time.time(), len(rows))

    async def bookmark(self, client: str, subscription: str) -> str | None:
        return await asyncio.to_thread(self.spool.wef_bookmark, client, subscription)

    def snapshot(self) -> dict:
        """For the store's `wef:<node>` row: the clients and how long each may stay silent."""
        allowed = silence_allowed(self.cfg)
        return {"clients": [{**r, "allowed": allowed} for r in self.spool.wef_clients()], "saved_at": time.time()}

    def close(self) -> None:
        self.spool.close()


def stored_wef_clients(counters: dict[str, dict]) -> list[dict]:
    """Every ingest node's WEF clients, from their `wef:<node>` rows (for the leader's health check).
    A client that moved to another node is in two rows; the health check goes by its latest delivery."""
    out: list[dict] = []
    for name, data in counters.items():
        if name.startswith("wef:"):
            out.extend(r for r in data.get("clients", []) if isinstance(r, dict))
    return out
