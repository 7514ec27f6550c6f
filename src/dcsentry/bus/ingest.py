"""The ingest side: a batch of syslog messages -> Windows events -> the stream, acknowledged.

`publish(batch)` returns only when JetStream has acknowledged every event of the batch (PubAck:
stored on the server's disk), which is when the syslog listener reads on from that connection:
while the bus is away or slow, TCP/TLS senders are held by the kernel exactly as by a full spool
in the one-process service. A publish whose PubAck does not come in time is sent again with the
same `Nats-Msg-Id`; JetStream drops the copy if the first one was stored after all.

Messages that fit no layout are counted per peer (and a sample kept) here, where they are decoded:
the detect side never sees them.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

import nats
from nats.aio.client import Client

from ..alerts import Alert
from ..config import Config
from ..detectors.senders import SenderCheck
from ..identity import trusted_source
from ..model import Origin, WindowsEvent
from ..service.decode import decode_message
from ..service.settings_watch import SettingsWatch, follow
from ..sources.syslog.listeners import Received
from .connect import Names, bucket, connect, ensure_stream
from .wire import KIND_HEADER, SERVICE_IDS, Envelope, Router, dc_of, encode, encode_alert, msg_id, partition_of

ACK_TIMEOUT = 5.0


def peer_host(peer: str) -> str:
    return peer.split("://", 1)[-1].rsplit(":", 1)[0]


class BusIngest:
    def __init__(self, cfg: Config, node: str, announce: Callable[[str], None], store: object = None) -> None:
        self.cfg = cfg
        self.node = node
        self.names = Names(cfg.bus.name)
        self.router = Router(cfg.detection, cfg.bus.partitions)
        self.senders = SenderCheck(cfg.serve.senders)  # [serve] senders, checked where events are decoded
        self.settings = SettingsWatch(store, cfg.detection) if store is not None else None
        self.announce = announce
        self.nc: Client | None = None
        self.dcs: set[str] = set()
        self.counters: Counter = Counter()
        self.by_layout: Counter = Counter()
        self.parsed_by_peer: Counter = Counter()
        self.failed_by_peer: Counter = Counter()
        self.samples: dict[str, str] = {}
        self._seq = 0
        self._tasks: list[asyncio.Task] = []

    async def start(self, stop: asyncio.Event | None = None) -> None:
        self.nc = await connect(self.cfg.serve.bus, f"dcsentry-ingest-{self.node}", self.announce, stop)
        self.js = self.nc.jetstream(timeout=ACK_TIMEOUT)
        await ensure_stream(self.js, self.names, self.cfg.bus)
        self.dc_kv = await bucket(self.js, self.names.dcs)
        self._tasks.append(asyncio.create_task(self._watch_dcs()))
        if self.settings is not None:  # run-time honeytokens (console / API) for the routing
            self._tasks.append(await follow(self.settings, self.router.set_honeytokens, self.counters))

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    # -- DCs: learnt from the traffic of every ingest node, shared in a bucket ---------------------
    async def _watch_dcs(self) -> None:
        while True:
            try:
                watcher = await self.dc_kv.watchall()
                async for entry in watcher:
                    if entry is not None and entry.key:
                        self.dcs.add(entry.key)
            except asyncio.CancelledError:
                raise
            except Exception:  # the bus went away: watch again once it is back
                await asyncio.sleep(1.0)

    async def _learn_dc(self, name: str) -> None:
        try:
            await self.dc_kv.put(name, b"1")
        except Exception:
            self.dcs.discard(name)  # put again with the next event of that DC

    # -- decode and publish -------------------------------------------------------------------------
    def _decode(self, batch: list[Received]) -> list[tuple[str, bytes, dict]]:
        out: list[tuple[str, bytes, dict]] = []
        for r in batch:
            peer = r.peer if r.peer_name is None else f"{r.peer}#{r.peer_name}"
            host = peer_host(r.peer)
            self._seq += 1
            try:
                layout, ev = decode_message(r.data, Origin(peer, self._seq))
            except ValueError as exc:
                self.failed(host, exc, r.data)
                continue
            if not self.senders.allows(host.strip("[]"), r.peer_name, ev.computer):
                self.counters["sender_mismatch"] += 1
                out.append(self.alert_message(self.senders.mismatch(ev, host.strip("[]"), r.peer_name)))
                continue
            out.extend(self.messages(ev, layout, r.received_at, host, trusted_source(r.transport, peer)))
        return out

    def failed(self, host: str, exc: Exception, data: bytes) -> None:
        """A message that fits no layout: counted per peer, a sample kept, never published."""
        self.counters["failed"] += 1
        self.failed_by_peer[host] += 1
        if host not in self.samples or len(self.samples) < 1000:
            self.samples[host] = f"{exc}: {data[:300]!r}"

    def next_origin(self, peer: str) -> Origin:
        self._seq += 1
        return Origin(peer, self._seq)

    def messages(self, ev: WindowsEvent, layout: str, received_at: float, host: str,
                 trusted: bool = False) -> list[tuple[str, bytes, dict]]:
        """One decoded event -> its stream message(s): routed, with its dedup id (syslog and WEF alike)."""
        self.counters["parsed"] += 1
        self.by_layout[layout] += 1
        self.parsed_by_peer[host] += 1
        dc = dc_of(ev)
        if dc is not None and dc not in self.dcs:
            self.dcs.add(dc)
            self._tasks.append(asyncio.get_running_loop().create_task(self._learn_dc(dc)))
        is_dc = ev.event_id in SERVICE_IDS and ev.computer.split(".", 1)[0].upper() in self.dcs
        mid = msg_id(ev, trusted)
        out = []
        for p, token in self.router.route(ev, mid):
            env = Envelope(ev, received_at, host, dc=is_dc, token=token, trusted=trusted)
            out.append((self.names.subject(p), encode(env), {"Nats-Msg-Id": mid + "|t" if token else mid}))
        return out

    def alert_message(self, alert: Alert) -> tuple[str, bytes, dict]:
        """An alert raised here (WEF sender check): the worker of its partition upserts it by id.
        One id always goes to one partition, so its states arrive in order; the message id
        (alert id + count) drops a re-sent copy of the same state."""
        p = partition_of("alert:" + alert.id, self.cfg.bus.partitions)
        return (self.names.subject(p), encode_alert(alert),
                {"Nats-Msg-Id": f"alert|{alert.id}|{alert.count}", KIND_HEADER: "alert"})

    async def publish(self, batch: list[Received]) -> None:
        """Returns once JetStream acknowledged every event of the batch (retrying until then)."""
        await self.send(self._decode(batch))

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
                    futures[i] = await self.js.publish_async(subject, data, headers=dict(headers), wait_stall=ACK_TIMEOUT)
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
        """This node's share of the processor-style counters (merged across nodes for the console)."""
        return {"parsed": self.counters["parsed"], "failed": self.counters["failed"], "by_layout": dict(self.by_layout),
                "failed_by_peer": dict(self.failed_by_peer), "parsed_by_peer": dict(self.parsed_by_peer),
                "samples": dict(list(self.samples.items())[:50]), "published": self.counters["published"],
                "duplicates": self.counters["duplicates"],
                "sender_mismatch": self.counters["sender_mismatch"], "publish_retries": self.counters["publish_retries"],
                "settings_version": self.settings.version if self.settings is not None else 0.0,
                "saved_at": time.time()}

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        if self.nc is not None:
            try:
                await self.nc.drain()
            except Exception:
                await self.nc.close()
