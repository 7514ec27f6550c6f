"""Where accepted messages are made durable: one interface, a spool or a stream behind it.

The listeners (syslog, RELP, WEF) hand each received batch to an `Intake`; when `consume` returns,
the batch's messages are decoded (runtime/decode.py) and durable, so the connection reads on (and a
WEF client gets its Ack). While the intake cannot take more (a full spool, the bus away) TCP/TLS
readers wait, so the kernel pushes back on the senders, and UDP datagrams are dropped and counted.

- `SpoolIntake` (single node): a SQLite spool the detection process reads (runtime/processor.py);
- `bus.ingest.BusIntake` (distributed): the JetStream stream the detect workers read.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Protocol

from ..config import Config
from ..sources.spool import Spool, WefUpdate
from ..sources.syslog.listeners import Received
from .decode import IntakeDecoder, Message

WefRow = tuple[float, str, str, bytes]  # received_at, peer, transport, data: a WEF delivery's event


class Intake(Protocol):
    async def start(self, stop: asyncio.Event) -> None: ...

    async def consume(self, batch: list[Received]) -> None: ...

    async def consume_wef(self, rows: list[WefRow], update: WefUpdate) -> None: ...

    async def wef_bookmark(self, client: str, subscription: str) -> str | None: ...

    def accepting(self) -> bool:
        """Whether a UDP datagram would be taken now (else it is dropped and counted)."""
        ...

    @property
    def ready(self) -> bool: ...

    def snapshot(self) -> dict:
        """The intake's own counters (depth, parse counters) for its `ingest:<node>` row."""
        ...

    def wef_clients(self) -> list[dict]: ...

    async def close(self) -> None: ...


def peer_of(r: Received) -> str:
    """A connection's peer as messages carry it: `scheme://host:port`, `#name` for a certificate."""
    return r.peer if r.peer_name is None else f"{r.peer}#{r.peer_name}"


class SpoolIntake:
    """The single node's intake: decoded messages into the spool, one durable row per batch."""

    def __init__(self, cfg: Config, spool: Spool, checkpoint: Callable[[], int]) -> None:
        self.cfg = cfg
        self.spool = spool
        self.max_rows = cfg.serve.spool_max_rows
        self.decoder = IntakeDecoder(cfg, partitions=1)
        self._checkpoint = checkpoint  # the detection process's position (in the store)
        self._checkpoint_value = checkpoint()
        self._checkpoint_read = 0.0
        self.last_seq = spool.last_seq()
        self._lock = threading.Lock()  # decoders' counters and the sender checks' state, across threads

    async def start(self, stop: asyncio.Event) -> None:
        return None

    @property
    def ready(self) -> bool:
        return True

    def depth(self) -> int:
        now = time.monotonic()
        if now - self._checkpoint_read > 0.1:
            self._checkpoint_value = self._checkpoint()
            self._checkpoint_read = now
        return max(0, self.last_seq - self._checkpoint_value)

    def accepting(self) -> bool:
        return self.depth() < self.max_rows

    def _decode(self, received: list[tuple[bytes, float, str, str]]) -> list[tuple[float, str, str, bytes]]:
        with self._lock:
            msgs: list[Message] = self.decoder.decode_all(received)
        return [(m.received_at, m.peer, m.kind, m.data) for m in msgs]

    def _append(self, batch: list[Received]) -> int:
        rows = self._decode([(r.data, r.received_at, peer_of(r), r.transport) for r in batch])
        return self.spool.append(rows) if rows else self.spool.last_seq()

    async def consume(self, batch: list[Received]) -> None:
        while self.depth() >= self.max_rows:  # backpressure: this connection reads nothing meanwhile
            await asyncio.sleep(0.05)
        last = await asyncio.to_thread(self._append, batch)
        self.last_seq = max(self.last_seq, last)  # connections commit concurrently: results come in any order

    def _append_wef(self, rows: list[WefRow], update: WefUpdate) -> int:
        decoded = self._decode([(data, received_at, peer, "wef") for received_at, peer, _t, data in rows])
        return self.spool.append_wef(decoded, update, time.time())

    async def consume_wef(self, rows: list[WefRow], update: WefUpdate) -> None:
        """A WEF delivery's events and its client's bookmark, in one spool transaction. A full spool
        holds the reply back for a while, then fails it (503: the client keeps the events and
        re-sends them from its last acknowledged bookmark)."""
        deadline = time.monotonic() + 20
        while rows and self.depth() >= self.max_rows:
            if time.monotonic() > deadline:
                raise RuntimeError("spool full")
            await asyncio.sleep(0.05)
        last = await asyncio.to_thread(self._append_wef, rows, update)
        if rows:
            self.last_seq = max(self.last_seq, last)

    async def wef_bookmark(self, client: str, subscription: str) -> str | None:
        return await asyncio.to_thread(self.spool.wef_bookmark, client, subscription)

    def wef_clients(self) -> list[dict]:
        return self.spool.wef_clients()

    def snapshot(self) -> dict:
        with self._lock:
            parse = self.decoder.snapshot()
        return {"spool_depth": self.depth(), "parse": parse}

    async def close(self) -> None:
        self.spool.close()
