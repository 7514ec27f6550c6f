"""The distributed mode's intake: received messages -> decoded, routed messages on the stream.

`consume(batch)` returns only when JetStream has acknowledged every message of the batch (PubAck:
stored on the server's disk), which is when the syslog listener reads on from that connection:
while the bus is away or slow, TCP/TLS senders are held by the kernel exactly as by a full spool
on a single node. A publish whose PubAck does not come in time is sent again with the same
`Nats-Msg-Id`; JetStream drops the copy if the first one was stored after all.

Decoding, the senders' checks and the routing are the single node's (runtime/decode.py); which
computers are DCs is shared between ingest nodes in a KV bucket.

Windows Event Forwarding: a delivery's messages are published like syslog ones; only when
JetStream has acknowledged every one of them is the client's row (bookmark, state, heartbeat)
written to this node's `spool.db`, and only then does the client get its Ack. A crash between the
PubAcks and that write makes the client re-send from its previous bookmark; JetStream drops the
copies inside its duplicate window, the detection cores after it (message ids), the store by its
key. The node's WEF clients are saved in the store (`wef:<node>`) for the health check.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import nats
from nats.aio.client import Client

from ..config import Config
from ..runtime.decode import IntakeDecoder, Message
from ..runtime.intake import WefRow, peer_of
from ..runtime.routing import ALERT, KIND_HEADER
from ..runtime.settings import SettingsWatch, follow
from ..sources.spool import Spool, WefUpdate
from ..sources.syslog.listeners import Received
from .connect import Names, bucket, connect, ensure_stream

ACK_TIMEOUT = 5.0
PUBLISH_WITHIN = 20.0  # seconds before a WEF delivery is refused (503): the client keeps it and re-sends


def silence_allowed(cfg: Config) -> float:
    w = cfg.wef
    return w.silent_after or 2 * w.heartbeat_interval + w.max_time


class BusIntake:
    def __init__(self, cfg: Config, node: str, announce: Callable[[str], None], store: object = None,
                 spool_path: Path | None = None) -> None:
        """`spool_path`: this node's spool.db, holding only its WEF clients' rows."""
        self.cfg = cfg
        self.node = node
        self.names = Names(cfg.bus.name)
        self.decoder = IntakeDecoder(cfg, cfg.bus.partitions, on_new_dc=self._new_dc)
        self.settings = SettingsWatch(store, cfg.detection) if store is not None else None
        self.spool = Spool(spool_path) if spool_path is not None else None
        self.announce = announce
        self.nc: Client | None = None
        self.counters: Counter = Counter()
        self._tasks: list[asyncio.Task] = []

    async def start(self, stop: asyncio.Event | None = None) -> None:
        self.nc = await connect(self.cfg.serve.bus, f"dcsentry-ingest-{self.node}", self.announce, stop)
        self.js = self.nc.jetstream(timeout=ACK_TIMEOUT)
        await ensure_stream(self.js, self.names, self.cfg.bus)
        self.dc_kv = await bucket(self.js, self.names.dcs)
        self._tasks.append(asyncio.create_task(self._watch_dcs()))
        if self.settings is not None:  # run-time honeytokens (console / API) for the routing
            self._tasks.append(await follow(self.settings, lambda eff: self.decoder.set_honeytokens(eff.honeytokens),
                                            self.counters))

    @property
    def ready(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    def accepting(self) -> bool:
        return self.ready

    # -- DCs: learnt from the traffic of every ingest node, shared in a bucket ---------------------
    async def _watch_dcs(self) -> None:
        while True:
            try:
                watcher = await self.dc_kv.watchall()
                async for entry in watcher:
                    if entry is not None and entry.key:
                        self.decoder.dcs.add(entry.key)
            except asyncio.CancelledError:
                raise
            except Exception:  # the bus went away: watch again once it is back
                await asyncio.sleep(1.0)

    def _new_dc(self, name: str) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(self._learn_dc(name)))

    async def _learn_dc(self, name: str) -> None:
        try:
            await self.dc_kv.put(name, b"1")
        except Exception:
            self.decoder.dcs.discard(name)  # put again with the next event of that DC

    # -- decode and publish -------------------------------------------------------------------------
    def _stream(self, msgs: list[Message]) -> list[tuple[str, bytes, dict]]:
        out = []
        for m in msgs:
            headers = {"Nats-Msg-Id": m.mid}
            if m.kind == ALERT:
                headers[KIND_HEADER] = ALERT
            out.append((self.names.subject(m.partition), m.data, headers))
        return out

    async def consume(self, batch: list[Received]) -> None:
        """Returns once JetStream acknowledged every message of the batch (retrying until then)."""
        msgs = self.decoder.decode_all([(r.data, r.received_at, peer_of(r), r.transport) for r in batch])
        await self.send(self._stream(msgs))

    async def consume_wef(self, rows: list[WefRow], update: WefUpdate) -> None:
        """Publish the delivery (events, and any sender alert they raise), then save the bookmark."""
        msgs = self.decoder.decode_all([(data, received_at, peer, "wef") for received_at, peer, _t, data in rows])
        if msgs:
            await self.send(self._stream(msgs), within=PUBLISH_WITHIN)
        if self.spool is not None:
            await asyncio.to_thread(self.spool.note_wef, update, time.time(), len(rows))

    async def wef_bookmark(self, client: str, subscription: str) -> str | None:
        if self.spool is None:
            return None
        return await asyncio.to_thread(self.spool.wef_bookmark, client, subscription)

    def wef_clients(self) -> list[dict]:
        """The clients and how long each may stay silent (this node's own setting)."""
        if self.spool is None:
            return []
        allowed = silence_allowed(self.cfg)
        return [{**r, "allowed": allowed} for r in self.spool.wef_clients()]

    async def send(self, msgs: list[tuple[str, bytes, dict]], within: float | None = None) -> None:
        """Publish until every message has its PubAck. `within` seconds: give up with RuntimeError
        (a WEF client then gets no Ack and re-sends; what was stored is dropped as a duplicate)."""
        self._tasks = [t for t in self._tasks if not t.done()]
        deadline = None if within is None else time.monotonic() + within
        pending = list(range(len(msgs)))
        delay = 0.1
        while pending:
            if deadline is not None and time.monotonic() > deadline:
                raise RuntimeError(f"the bus did not acknowledge {len(pending)} message(s) in {within:.0f} s")
            futures: dict[int, asyncio.Future] = {}
            for i in pending:
                subject, data, headers = msgs[i]
                try:
                    futures[i] = await self.js.publish_async(subject, data, headers=dict(headers),
                                                             wait_stall=ACK_TIMEOUT)
                except (nats.errors.Error, OSError):
                    break  # disconnected: what is left goes in the next round
            if futures:
                await asyncio.wait(futures.values(), timeout=ACK_TIMEOUT)
            retry = []
            for i in pending:
                f = futures.get(i)
                if f is None or not f.done() or f.cancelled() or f.exception() is not None:
                    if f is not None and not f.done():
                        f.cancel()
                    retry.append(i)
                elif f.result().duplicate:
                    self.counters["duplicates"] += 1
                else:
                    self.counters["published"] += 1
            if retry:
                self.counters["publish_retries"] += len(retry)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            pending = retry

    def snapshot(self) -> dict:
        """This node's intake counters; `parse` is added into the deployment's `processor` row."""
        parse = {**self.decoder.snapshot(), "published": self.counters["published"],
                 "duplicates": self.counters["duplicates"], "publish_retries": self.counters["publish_retries"],
                 "settings_version": self.settings.version if self.settings is not None else 0.0}
        return {"parse": parse}

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        if self.nc is not None:
            try:
                await self.nc.drain()
            except Exception:
                await self.nc.close()
        if self.spool is not None:
            self.spool.close()
