"""Shared plumbing of the syslog listener tests: a recording consumer, bounded waits, senders."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Coroutine
from typing import Any

from dcsentry.sources.syslog import ListenerSet, Received

LOCAL = [("127.0.0.1", 0)]


def arun(coro: Coroutine[Any, Any, Any], timeout: float = 20.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def until(pred: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class Sink:
    """A consumer that records batches; `gate` (when set) holds every call until it opens."""

    def __init__(self, gate: asyncio.Event | None = None, delay: float = 0.0) -> None:
        self.items: list[Received] = []
        self.batches: list[int] = []
        self.calls = 0
        self.gate, self.delay = gate, delay

    async def __call__(self, batch: list[Received]) -> None:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        self.batches.append(len(batch))
        self.items.extend(batch)

    @property
    def data(self) -> list[bytes]:
        return [r.data for r in self.items]


async def start(sink: Sink, **kw: Any) -> tuple[ListenerSet, dict[str, int]]:
    kinds = kw.pop("kinds", ("udp", "tcp"))
    ls = ListenerSet(sink, **kw)
    bound = await ls.start(**{k: LOCAL for k in kinds})
    return ls, {kind: port for kind, _, port in bound}


async def tcp_send(port: int, *chunks: bytes, ctx: ssl.SSLContext | None = None) -> None:
    _, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost" if ctx else None)
    for c in chunks:
        w.write(c)
        await w.drain()
    w.close()
    await w.wait_closed()


def octet(msg: bytes) -> bytes:
    return b"%d %s" % (len(msg), msg)


class any_close:
    """A refused connection reads as EOF or as a reset, depending on timing: both are fine."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, *_: object) -> bool:
        return kind is None or issubclass(kind, ConnectionError)


# a stream mixing every framing (and a digit-led newline frame), and the messages in it
STREAM = (octet(b"<13>one") + b"<13>two\n" + b"<13>three\r\n" + b"<13>four\0" + octet(b"<13>five\nwith LF\n")
          + b"2015-May-19 09:07:09 no PRI\n" + b"\n\r\n" + octet(b"<13>six") + b"<13>seven")
EXPECTED = [b"<13>one", b"<13>two", b"<13>three", b"<13>four", b"<13>five\nwith LF", b"2015-May-19 09:07:09 no PRI",
            b"<13>six"]
